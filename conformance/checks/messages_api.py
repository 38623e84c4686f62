"""messages_api: Anthropic's native Messages API, which relays serve next to the OpenAI routes.

API易 (seed 001, "Claude 原生格式") documents ``POST /v1/messages`` with an ``anthropic-version:
2023-06-01`` header and its Bearer key.  The contract is Anthropic's API reference
(https://docs.anthropic.com/en/api/messages, .../messages-streaming, .../errors): a ``Message``
object, named stream events, ``{"type": "error", "error": {...}}`` bodies.  A relay that routes
the endpoint to an OpenAI backend without converting the answer is a ``fail``; one that does
not offer it answers 404 (or declines with a 4xx error) and every check is ``unsupported``,
decided by one shared probe so such a provider is sent a single request.

Set the model with ``models: {messages_api: <a Claude model>}`` in providers.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from conformance.checks import prompts
from conformance.checks.auth import WRONG_KEY, expect_refused, require_key
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    at_event,
    describe,
    expect_client_error,
    expect_ended,
    named_event_payloads,
    named_stream_events,
    obj,
    raise_for_status,
    snippet,
    unreached,
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable
from conformance.exchange import Auth, Exchange
from conformance.validation import violations_of

PATH = "/messages"
VERSION = "2023-06-01"
DOCS = "Anthropic Messages API"
#: Stream events a client must understand; others (``ping``, future types) are to be ignored
#: (Messages streaming, "Other events").
EVENTS = ("message_start", "content_block_start", "content_block_delta", "content_block_stop",
          "message_delta", "message_stop")
STOP_REASONS = ("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal")

_COUNT = {"type": "integer", "minimum": 0}
#: The ``Message`` object (API reference, Messages → Response); extra fields are allowed.
MESSAGE_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["id", "type", "role", "content", "model", "stop_reason", "usage"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "type": {"const": "message"},
        "role": {"const": "assistant"},
        "model": {"type": "string", "minLength": 1},
        "content": {"type": "array", "items": {
            "type": "object", "required": ["type"],
            "properties": {"type": {"type": "string"}},
            "if": {"properties": {"type": {"const": "text"}}},
            "then": {"required": ["text"], "properties": {"text": {"type": "string"}}},
        }},
        "stop_reason": {"enum": [*STOP_REASONS, None]},
        "stop_sequence": {"type": ["string", "null"]},
        "usage": {"type": "object", "required": ["input_tokens", "output_tokens"],
                  "properties": {"input_tokens": _COUNT, "output_tokens": _COUNT}},
    },
}
_VALIDATOR = Draft202012Validator(MESSAGE_SCHEMA)


async def _post(ctx: CheckContext, *, stream: bool = False, auth: Auth = "key",
                headers: Mapping[str, str] | None = None, share: bool = False,
                **fields: Any) -> Exchange:
    """POST /messages as the seed documents it (Bearer key, ``anthropic-version``), with the
    provider's ``temperature`` default (greedy answers) unless ``fields`` set one."""
    body: dict[str, Any] = {"model": ctx.model}
    temperature = ctx.provider.request_defaults.get("temperature")
    if isinstance(temperature, (int, float)) and 0 <= temperature <= 1:
        body["temperature"] = temperature
    body.update(fields)
    if stream:
        body["stream"] = True
    return await ctx.request("POST", PATH, json_body=body, auth=auth, stream=stream,
                             share=share, headers={"anthropic-version": VERSION, **(headers or {})})


def _anthropic_error(exchange: Exchange) -> str | None:
    """Whose error body this is, when it is Anthropic's own format (``{"type": "error",
    "error": {...}}``): behind a 404 it shows the route exists and an upstream answered."""
    body = exchange.json
    if isinstance(body, dict) and body.get("type") == "error" and isinstance(
            body.get("error"), dict):
        return f"an Anthropic error body ({snippet(body['error'].get('type'), 40)})"
    return None


def _raise_for_status(exchange: Exchange) -> None:
    """:func:`raise_for_status` for the optional route: a 404/405 in OpenAI's or a server's
    own format means the endpoint is not offered (a decline); one with an Anthropic error body
    came from an upstream behind the relay (a ``fail``)."""
    raise_for_status(exchange, "the Messages API", route=f"POST {PATH}",
                     foreign=_anthropic_error)


def _saw_message_stop(exchange: Exchange) -> bool:
    return any('"message_stop"' in e.data for e in exchange.data_events())


def expect_message(exchange: Exchange, what: str = "the answer") -> dict[str, Any]:
    """The ``Message`` object of a successful answer, or the verdict."""
    _raise_for_status(exchange)
    body = exchange.json
    if not isinstance(body, dict):
        raise Failure(f"HTTP {exchange.status} but {what} is not a JSON object"
                      f"{exchange.json_reason}: {describe(exchange)}")
    if "choices" in body or body.get("object") == "chat.completion":
        raise Failure(f"{what} is an OpenAI chat.completion (choices[]), not an Anthropic "
                      f"Message: {snippet(body, 100)}")
    if body.get("type") == "error" or ("error" in body and "content" not in body):
        raise Failure(f"error reported inside HTTP {exchange.status}: {snippet(body)}")
    found = violations_of(_VALIDATOR, body)
    if found:
        raise Failure(f"{what} is not a valid Message at {found[0]}")
    return body


def text_of(body: Mapping[str, Any]) -> str:
    """The concatenated text blocks of a Message."""
    return "".join(b["text"] for b in body["content"] if b.get("type") == "text")


async def _probe(ctx: CheckContext) -> dict[str, Any]:
    """The seed's request (one user turn, max_tokens), shared by every check of the family:
    its verdict decides whether the endpoint is offered at all."""
    exchange = await _post(ctx, max_tokens=prompts.SHORT, messages=prompts.CAPITAL, share=True)
    return expect_message(exchange)


async def _offered(ctx: CheckContext) -> None:
    """Stop with ``unsupported`` (or the probe's failure, as not applicable) unless the
    endpoint answered the probe with a Message."""
    try:
        await _probe(ctx)
    except Failure as exc:
        raise NotApplicable(f"the basic request failed (see messages_api.message): {exc}") \
            from None


@check(
    "messages_api.message",
    severity="breaks-clients",
    title="POST /messages answers with an Anthropic Message",
    spec=f"{DOCS}: POST /v1/messages (anthropic-version: {VERSION}) → Message",
    proves="The request API易 documents (model, max_tokens, messages; anthropic-version header) "
    "is answered 200 with a Message: id, type 'message', role 'assistant', text content blocks "
    "that answer the question, stop_reason 'end_turn' (not an OpenAI finish_reason) and usage "
    "input_tokens/output_tokens; not an OpenAI chat.completion.",
)
async def message(ctx: CheckContext) -> str:
    body = await _probe(ctx)
    text = text_of(body)
    if prompts.CAPITAL_ANSWER not in text.lower():
        raise Failure(f"expected an answer containing {prompts.CAPITAL_ANSWER!r}, got "
                      f"{snippet(text, 80) if text else 'no text block'}")
    usage = body["usage"]
    if body["stop_reason"] != "end_turn" and not (
            body["stop_reason"] == "max_tokens" and usage["output_tokens"] >= prompts.SHORT):
        raise Failure(f"stop_reason is {body['stop_reason']!r} for a complete short answer, "
                      "expected 'end_turn'")
    if usage["output_tokens"] == 0:
        raise Failure(f"usage.output_tokens is 0 for the answer {snippet(text, 40)}")
    return (f"{snippet(text, 40)} (model {body['model']}, {usage['input_tokens']}+"
            f"{usage['output_tokens']} tokens)")


@check(
    "messages_api.system",
    severity="breaks-clients",
    title="The top-level system prompt reaches the model",
    spec=f"{DOCS}: system (top-level parameter; there is no system role)",
    proves="A fact given only in the top-level `system` parameter is used in the answer, so "
    "relays that convert the request do not drop the system prompt. An answer without it is "
    "a fail only when the same fact stated in the question itself is answered (the control, "
    "sent only then); otherwise the check is inconclusive.",
)
async def system(ctx: CheckContext) -> str:
    await _offered(ctx)
    instruction, question = prompts.SECRET_SYSTEM
    exchange = await _post(ctx, max_tokens=prompts.SHORT, system=instruction["content"],
                           messages=[question])
    text = text_of(expect_message(exchange))
    if prompts.SECRET_SYSTEM_ANSWER not in text.lower():
        async def control() -> str:
            asked = await _post(ctx, max_tokens=prompts.SHORT, messages=prompts.user(
                prompts.FACT_IN_QUESTION[prompts.SECRET_SYSTEM_ANSWER]))
            return text_of(expect_message(asked))

        missed = (f"the system prompt did not reach the model: asked for the secret word it "
                  f"gives, got {snippet(text, 80) if text else 'no text'}")
        raise await unreached(missed, prompts.SECRET_SYSTEM_ANSWER, control())
    return f"answer: {snippet(text, 40)}"


class _Stream:
    """A Messages event stream, parsed: payloads with their event names, text, stop data."""

    def __init__(self, exchange: Exchange) -> None:
        _raise_for_status(exchange)
        self.exchange = exchange
        self.events, self.timed, self.done = named_event_payloads(
            exchange, named_stream_events(exchange, end=("message_stop", _saw_message_stop)),
            "OpenAI chat.completion.chunk events, not Anthropic message events")
        self.types = [p.get("type") for _, p in self.events if p.get("type") != "ping"]

    def about(self, index: int) -> tuple[str, int] | None:
        """Where the ``index``-th of :attr:`events` is in the evidence (``Failure(event=)``)."""
        return at_event(self.exchange, self.timed[index])

    def text(self) -> str:
        return "".join(
            text for _, p in self.events
            if p.get("type") == "content_block_delta" and obj(p.get("delta")).get("type")
            == "text_delta" and isinstance(text := p["delta"].get("text"), str))

    def last(self, kind: str) -> dict[str, Any]:
        found = [p for _, p in self.events if p.get("type") == kind]
        if not found:
            raise Failure(f"no {kind} event in the stream (got {', '.join(map(str, self.types))})")
        return found[-1]


async def _stream(ctx: CheckContext) -> _Stream:
    await _offered(ctx)
    exchange = await _post(ctx, stream=True, max_tokens=prompts.SHORT, messages=prompts.CAPITAL,
                           share=True)
    return _Stream(exchange)


@check(
    "messages_api.stream",
    severity="breaks-clients",
    title="stream: true gives Anthropic's event sequence",
    spec=f"{DOCS}: Messages streaming (message_start … message_stop)",
    proves="A streamed answer is the documented sequence — message_start (a Message with usage), "
    "content_block_start, content_block_delta text_deltas, content_block_stop, message_delta "
    "with stop_reason 'end_turn' and usage.output_tokens, message_stop — whose text answers "
    "the question; not OpenAI chunks. The response ends there: Anthropic's SDKs read a stream "
    "to the end of its body.",
)
async def stream(ctx: CheckContext) -> str:
    parsed = await _stream(ctx)
    core = [t for t in parsed.types if t in EVENTS]
    if not core or core[0] != "message_start" or core[-1] != "message_stop":
        raise Failure(f"the stream must open with message_start and end with message_stop, got "
                      f"{', '.join(map(str, parsed.types))}")
    blocks = [t for t in core if t.startswith("content_block")]
    if (not blocks or blocks[0] != "content_block_start" or blocks[-1] != "content_block_stop"
            or "content_block_delta" not in blocks):
        raise Failure(f"no content block was opened, filled and closed: {', '.join(core)}")
    start = parsed.last("message_start").get("message")
    if not isinstance(start, dict) or start.get("role") != "assistant" or not isinstance(
            obj(start.get("usage")).get("input_tokens"), int):
        raise Failure(f"message_start.message lacks role 'assistant' or usage.input_tokens: "
                      f"{snippet(start, 100)}")
    text = parsed.text()
    if prompts.CAPITAL_ANSWER not in text.lower():
        raise Failure(f"the text_deltas give {snippet(text, 80) if text else 'no text'}, "
                      f"expected an answer containing {prompts.CAPITAL_ANSWER!r}")
    final = parsed.last("message_delta")
    reason = obj(final.get("delta")).get("stop_reason")
    if reason != "end_turn":
        raise Failure(f"message_delta.delta.stop_reason is {reason!r}, expected 'end_turn'")
    output = obj(final.get("usage")).get("output_tokens")
    if isinstance(output, bool) or not isinstance(output, int) or output <= 0:
        raise Failure(f"message_delta.usage.output_tokens is {snippet(output)}, expected the "
                      "count of generated tokens")
    expect_ended(parsed.exchange, "Anthropic's SDKs")
    return f"{len(parsed.events)} events, text {snippet(text, 30)}, {output} output tokens"


@check(
    "messages_api.stream_event_names",
    severity="breaks-clients",
    title="Every stream event is named by an event: line",
    spec=f"{DOCS}: Messages streaming (each event has a named event type and matching "
    "data.type)",
    proves="Each SSE event carries an `event:` line equal to its data's `type`; Anthropic's SDKs "
    "dispatch on that name and silently skip unnamed events, so a stream without it reads as "
    "an empty answer.",
)
async def stream_event_names(ctx: CheckContext) -> str:
    parsed = await _stream(ctx)
    for index, (name, payload) in enumerate(parsed.events):
        if name != payload.get("type"):
            raise Failure(f"a {payload.get('type')} event has event name {name!r}; the SDKs "
                          "skip events whose name is not their type", event=parsed.about(index))
    return f"{len(parsed.events)} events, all named"


async def _count(ctx: CheckContext, **fields: Any) -> dict[str, Any]:
    await _offered(ctx)
    exchange = await _post(ctx, messages=prompts.COUNT_TO_10,
                           **{"max_tokens": prompts.COUNT_CAP, **fields},
                           share=not fields)
    return expect_message(exchange)


@check(
    "messages_api.stop_sequences",
    severity="breaks-clients",
    title="stop_sequences ends the answer and is reported",
    spec=f"{DOCS}: stop_sequences; Message.stop_reason 'stop_sequence', stop_sequence",
    proves=f"Counting to 10 with stop_sequences [{prompts.STOP_TEXT!r}] ends before "
    f"{prompts.STOP_TEXT!r} with stop_reason 'stop_sequence' and stop_sequence naming it; the "
    f"same request without it (the control) shows {prompts.STOP_TEXT!r} does appear.",
)
async def stop_sequences(ctx: CheckContext) -> str:
    control = text_of(await _count(ctx))
    if prompts.STOP_TEXT not in control:
        raise NotApplicable(f"inconclusive: the control count has no {prompts.STOP_TEXT!r}: "
                            f"{snippet(control, 60)}")
    body = await _count(ctx, stop_sequences=[prompts.STOP_TEXT])
    text = text_of(body)
    if prompts.STOP_TEXT in text:
        raise Failure(f"stop_sequences ignored: the answer contains {prompts.STOP_TEXT!r}: "
                      f"{snippet(text, 60)}")
    if body["stop_reason"] != "stop_sequence" or body.get("stop_sequence") != prompts.STOP_TEXT:
        raise Failure(f"stop_reason {body['stop_reason']!r}, stop_sequence "
                      f"{body.get('stop_sequence')!r}; expected 'stop_sequence' and "
                      f"{prompts.STOP_TEXT!r}")
    return f"stopped at {prompts.STOP_TEXT!r}: {snippet(text, 40)}"


@check(
    "messages_api.max_tokens",
    severity="breaks-clients",
    title="max_tokens cuts the answer with stop_reason max_tokens",
    spec=f"{DOCS}: max_tokens (required); Message.stop_reason 'max_tokens'",
    proves=f"Counting to 10 with max_tokens {prompts.LENGTH_LIMIT} stops with stop_reason "
    f"'max_tokens' and usage.output_tokens ≤ {prompts.LENGTH_LIMIT}, while the same request "
    "with a larger limit (the control) runs longer and ends with 'end_turn'.",
)
async def max_tokens(ctx: CheckContext) -> str:
    control = await _count(ctx)
    if control["usage"]["output_tokens"] <= prompts.LENGTH_LIMIT:
        raise NotApplicable(f"inconclusive: the control count used only "
                            f"{control['usage']['output_tokens']} output tokens")
    body = await _count(ctx, max_tokens=prompts.LENGTH_LIMIT)
    used = body["usage"]["output_tokens"]
    if body["stop_reason"] != "max_tokens":
        ignored = " (max_tokens ignored)" if used > prompts.LENGTH_LIMIT else ""
        raise Failure(f"stop_reason is {body['stop_reason']!r} with max_tokens "
                      f"{prompts.LENGTH_LIMIT}, expected 'max_tokens'{ignored}")
    if used > prompts.LENGTH_LIMIT:
        raise Failure(f"usage.output_tokens is {used}, more than max_tokens "
                      f"{prompts.LENGTH_LIMIT}")
    return f"{used} output tokens (control {control['usage']['output_tokens']}), stop_reason " \
        "max_tokens"


@check(
    "messages_api.error_format",
    severity="degrades",
    title="An invalid request gets 400 with Anthropic's error body",
    spec=f"{DOCS}: Errors (400 invalid_request_error; "
    '{"type": "error", "error": {"type", "message"}})',
    proves="A request without `messages` is refused with HTTP 400 and the documented body — "
    "top-level type 'error' and an error object with string type and message — not a 200, a "
    "5xx, HTML or OpenAI's envelope.",
)
async def error_format(ctx: CheckContext) -> str:
    await _offered(ctx)
    exchange = await _post(ctx, max_tokens=prompts.SHORT)
    error = expect_client_error(exchange, "a request without messages", statuses=(400,))
    body = exchange.json
    if not isinstance(body, dict) or body.get("type") != "error":
        raise Failure('the error body lacks the top-level "type": "error" of Anthropic errors: '
                      f"{snippet(body, 100)}")
    if not isinstance(error.get("type"), str):
        raise Failure(f"error.type is {snippet(error.get('type'))}, expected a string such as "
                      "'invalid_request_error'")
    return f"HTTP 400 {error['type']}: {snippet(error['message'], 60)}"


@check(
    "messages_api.auth",
    severity="security",
    title="A wrong API key is refused with 401 on /messages",
    spec=f"{DOCS}: Errors (401 authentication_error)",
    proves="The Messages endpoint checks the key like the OpenAI routes: a wrong key is answered "
    "401 with an error body; a relay whose /messages handler accepts any key is flagged as a "
    "security failure.",
)
async def auth(ctx: CheckContext) -> str:
    require_key(ctx)
    await _offered(ctx)
    exchange = await _post(ctx, auth=WRONG_KEY, max_tokens=1, messages=prompts.CAPITAL)
    return expect_refused(exchange, "a wrong API key")


@check(
    "messages_api.x_api_key",
    severity="breaks-clients",
    title="The key is accepted in Anthropic's x-api-key header",
    spec=f"{DOCS}: authentication header x-api-key",
    proves="The same request authenticated with `x-api-key: <key>` (what Anthropic's SDKs and "
    "tools send) instead of a Bearer token is answered with a Message.",
)
async def x_api_key(ctx: CheckContext) -> str:
    key = require_key(ctx)
    await _offered(ctx)
    exchange = await _post(ctx, auth="none", headers={"x-api-key": key},
                           max_tokens=prompts.SHORT, messages=prompts.CAPITAL)
    if exchange.status in (401, 403):
        raise Failure(f"x-api-key is not accepted (only Bearer): {describe(exchange)}; "
                      "Anthropic SDK users must pass the key as auth_token instead")
    body = expect_message(exchange)
    return f"Message with x-api-key: {snippet(text_of(body), 40)}"
