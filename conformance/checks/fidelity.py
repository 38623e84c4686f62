"""fidelity: what a relay does between its client and its upstream, judged exactly.

A provider with ``upstream:`` is a relay (中转站) one of whose channels points at a conformance
reference server that records what it receives and answers (:mod:`conformance.upstream`).
Each check plants a marker in a message's text, sends one request through the relay and
compares, field by field, what the client sent with what the upstream received, and what the
upstream answered with what the client got (OpenAI API reference, "Create chat completion":
https://platform.openai.com/docs/api-reference/chat/create).  There is nothing to guess: a
dropped ``user``, a ``developer`` message turned into ``system``, a system prompt of the relay's
own, another model asked for, usage billed above what the upstream reported or a cut stream
finished off with ``[DONE]`` are differences between two records.

Without ``upstream:`` every check is ``skip``.  When no request carrying the marker reaches the
upstream, no verdict is possible (``error``): the relay's channel does not point at the
reference, or the relay removed the marker from the message text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from conformance import i18n
from conformance.checks.context import CheckContext
from conformance.checks.expect import raise_for_status, snippet
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable, StreamStalled, SuiteError
from conformance.exchange import Auth, Exchange
from conformance.reference.images import data_url, solid_png
from conformance.upstream import Record, UpstreamClient, new_marker

DOCS = "https://platform.openai.com/docs/api-reference/chat/create"
ANTHROPIC_VERSION = "2023-06-01"

#: Request fields, grouped by the request that carries them (one request per group).
SAMPLING: dict[str, Any] = {
    "temperature": 0.3, "top_p": 0.9, "seed": 7, "stop": ["zzq"], "presence_penalty": 0.1,
    "frequency_penalty": 0.2, "logit_bias": {"1734": -1}, "n": 1, "max_tokens": 16,
}
IDENTITY: dict[str, Any] = {
    "user": "conformance-user-7", "metadata": {"purpose": "conformance"}, "store": False,
    "max_completion_tokens": 16,
}
LOGPROBS: dict[str, Any] = {"logprobs": True, "top_logprobs": 2, "max_tokens": 8}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}
TOOLS: dict[str, Any] = {
    "tools": [WEATHER_TOOL], "parallel_tool_calls": False,
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
}
FORMAT: dict[str, Any] = {"response_format": {"type": "json_schema", "json_schema": {
    "name": "answer", "strict": True, "schema": {
        "type": "object", "properties": {"answer": {"type": "string"}},
        "required": ["answer"], "additionalProperties": False}}}}
REASONING: dict[str, Any] = {"reasoning_effort": "low", "max_completion_tokens": 16}
UNKNOWN_FIELD = "x_conformance_probe"
STREAM: dict[str, Any] = {"stream_options": {"include_usage": True}, "max_tokens": 16}
#: The OpenAI response headers a client reads (rate-limit guides, support requests).
FORWARDED_HEADERS = ("x-request-id", "x-ratelimit-limit-requests",
                     "x-ratelimit-remaining-requests", "x-ratelimit-limit-tokens",
                     "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests",
                     "x-ratelimit-reset-tokens")


# --------------------------------------------------------------------------- sending and records

#: Why every fidelity check skips a provider without ``upstream:``.
NO_UPSTREAM = i18n.NO_UPSTREAM


def upstream_of(ctx: CheckContext) -> UpstreamClient:
    if ctx.upstream is None:
        raise NotApplicable(NO_UPSTREAM)
    return ctx.upstream


def _conversation(marker: str) -> list[dict[str, Any]]:
    """Every kind of message a relay may rewrite: system, developer, a named user, an assistant
    turn, and content as a parts array; the marker sits in the last message (the one a relay
    that shortens history keeps)."""
    return [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "name": "alice", "content": "Say OK."},
        {"role": "assistant", "content": "OK"},
        {"role": "user", "content": [{"type": "text", "text": f"Say OK once more. (request "
                                                              f"{marker})"}]},
    ]


def simple(marker: str, text: str = "Say OK.") -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{text} (request {marker})"}]


class Sent:
    """One request through the relay: what the client sent and got, and what the upstream
    received and answered (every attempt the relay made, oldest first)."""

    def __init__(self, body: dict[str, Any], exchange: Exchange, records: list[Record],
                 marker: str, stalled: str | None = None) -> None:
        self.body = body
        self.exchange = exchange
        self.records = records
        self.marker = marker
        #: The stream went silent for ``timeouts.stall`` (the transport's message), when the
        #: request was sent with ``stall_ok``; else None.
        self.stalled = stalled

    @property
    def last(self) -> Record:
        return self.records[-1]

    @property
    def received(self) -> dict[str, Any]:
        body = self.last.get("body")
        if not isinstance(body, dict):
            raise Failure(f"the upstream received a body that is not a JSON object: "
                          f"{snippet(self.last.get('body_text') or body, 80)}")
        return body

    @property
    def answered(self) -> dict[str, Any]:
        response = self.last.get("response")
        return response if isinstance(response, dict) else {}


async def through(ctx: CheckContext, name: str, *, path: str = "/chat/completions",
                   stream: bool = False, share: bool = True, retries: int | None = None,
                   arm: dict[str, Any] | None = None, messages: Any = None,
                   headers: dict[str, str] | None = None, auth: Auth = "key",
                   stall_ok: bool = False, **fields: Any) -> Sent:
    """Send request ``name`` (shared by the checks that judge it) through the relay and fetch
    what the upstream recorded for it.  ``stall_ok``: a stream that goes silent for
    ``timeouts.stall`` is judged as it stands (:attr:`Sent.stalled`), not an ``error``."""
    upstream = upstream_of(ctx)
    marker = ctx.token(f"fidelity.{name}", new_marker)
    if arm is not None:
        params = {k: v for k, v in arm.items() if k != "behaviour"}
        await upstream.arm(marker, arm["behaviour"], ctx.record, **params)
    body: dict[str, Any] = {"model": ctx.model,
                            "messages": simple(marker) if messages is None else messages(marker),
                            **fields}
    if stream:
        body["stream"] = True
    await upstream.start()  # a builtin upstream must listen before the relay forwards to it
    stalled: str | None = None
    try:
        exchange = await ctx.request("POST", path, json_body=body, stream=stream, share=share,
                                     retries=retries, headers=headers, auth=auth)
    except StreamStalled as exc:
        if not stall_ok or not isinstance(exc.exchange, Exchange):
            raise
        exchange, stalled = exc.exchange, str(exc)
    records = await upstream.records(marker, ctx.record, share=share)
    return Sent(body, exchange, records, marker, stalled)


def reached(sent: Sent, feature: str | None = None) -> Sent:
    """``sent`` when the upstream received it; else the relay's own answer is judged (a real
    decline is ``unsupported``) or, when the relay answered 2xx without asking the upstream,
    no verdict is possible."""
    if sent.records:
        status = sent.answered.get("status")
        if not sent.last.get("injected") and isinstance(status, int) and status >= 400:
            body = sent.answered.get("body")
            raise NotForwarded(
                f"the upstream itself refused the relay's request with HTTP {status} "
                f"({show(body, 120)}): check upstream.model and the relay's channel settings")
        return sent
    raise_for_status(sent.exchange, feature)
    raise NotForwarded(
        f"no request carrying the marker {sent.marker} reached the upstream (the relay answered "
        f"HTTP {sent.exchange.status} itself): its channel does not point at the reference, or "
        "it removed the marker from the message text")


class NotForwarded(SuiteError):
    """No record to compare with: the relay is not pointed at the reference (``error``)."""


def difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where JSON values ``a`` and ``b`` first differ (``"logprobs.content[0].token: 'OK' →
    'Ok'"``), or None: 1 == 1.0, key order is ignored, True is not 1, and a key whose value
    is null counts as absent (the spec's nullable fields may be either)."""
    where = path or "value"
    if isinstance(a, bool) or isinstance(b, bool):
        return None if a is b else f"{where}: {show(a, 30)} → {show(b, 30)}"
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return None if float(a) == float(b) else f"{where}: {a} → {b}"
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted({*a, *b}, key=str):
            if a.get(key) is None and b.get(key) is None:
                continue
            if key not in b:
                return f"{path + '.' if path else ''}{key}: dropped"
            if key not in a:
                return f"{path + '.' if path else ''}{key}: added {show(b[key], 30)}"
            found = difference(a[key], b[key], f"{path + '.' if path else ''}{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items → {len(b)}"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {show(a, 30)} → {show(b, 30)}"


def same(a: Any, b: Any) -> bool:
    """JSON equality as :func:`difference` sees it."""
    return difference(a, b) is None


def show(value: Any, limit: int = 60) -> str:
    return snippet(json.dumps(value, ensure_ascii=False, sort_keys=True), limit)


def fields_judged(sent: Sent, fields: Sequence[str]) -> str:
    """Each of ``fields`` the client sent reached the upstream with the same value."""
    received = sent.received
    dropped = [f for f in fields if f in sent.body and f not in received]
    changed = [f"{f} {show(sent.body[f], 40)} → {show(received[f], 40)}" for f in fields
               if f in sent.body and f in received and not same(sent.body[f], received[f])]
    problems = []
    if dropped:
        problems.append("dropped: " + ", ".join(dropped))
    if changed:
        problems.append("rewritten: " + "; ".join(changed))
    if problems:
        raise Failure("the upstream did not receive what the client sent: " + "; ".join(problems))
    return "reached the upstream unchanged: " + ", ".join(f for f in fields if f in sent.body)


def client_body(sent: Sent) -> Any:
    if sent.exchange.status is None or not 200 <= sent.exchange.status < 300:
        raise Failure(f"the upstream answered HTTP {sent.answered.get('status')}, the client got "
                      f"HTTP {sent.exchange.status}: {snippet(sent.exchange.text, 100)}")
    return sent.exchange.json


def choices(body: Any) -> list[dict[str, Any]]:
    choices = body.get("choices") if isinstance(body, dict) else None
    return [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []


def tool_calls(choices: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    message = choices[0].get("message") if choices else None
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    out = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            out.append((function.get("name"), function.get("arguments")))
    return out


# --------------------------------------------------------------------------- the request

def message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def _align(sent: list[Any], received: list[Any]) -> tuple[list[tuple[int, int]], list[int],
                                                          list[int]]:
    """Match each sent message to a received one by its text, in order: (pairs, indexes of
    received messages no client sent, indexes of sent messages that never arrived)."""
    pairs: list[tuple[int, int]] = []
    start = 0
    for i, message in enumerate(sent):
        text = message_text(message)
        for j in range(start, len(received)):
            if message_text(received[j]) == text:
                pairs.append((i, j))
                start = j + 1
                break
    matched_sent = {i for i, _ in pairs}
    matched_received = {j for _, j in pairs}
    added = [j for j in range(len(received)) if j not in matched_received]
    lost = [i for i in range(len(sent)) if i not in matched_sent]
    return pairs, added, lost


async def conversation_sent(ctx: CheckContext) -> tuple[Sent, list[Any], list[Any]]:
    sent = reached(await through(ctx, "conversation", messages=_conversation, max_tokens=16))
    received = sent.received.get("messages")
    if not isinstance(received, list):
        raise Failure(f"the upstream received no messages list: {show(received)}")
    return sent, sent.body["messages"], received


@check(
    "fidelity.model",
    severity="breaks-clients",
    title="The upstream is asked for the configured model",
    spec=f"{DOCS} (model)",
    proves="The model the relay asked the upstream for is upstream.model (else the model the "
    "client asked for): another one is a substitution, shown with both names.",
)
async def model(ctx: CheckContext) -> str:
    sent, _, _ = await conversation_sent(ctx)
    upstream = upstream_of(ctx)
    expected = upstream.expected_model or ctx.model
    asked = sent.received.get("model")
    if asked != expected:
        raise Failure(f"model substituted: the client asked for {ctx.model!r}, the relay asked "
                      f"the upstream for {show(asked, 40)} (expected {expected!r})")
    return f"the upstream was asked for {expected!r}"


@check(
    "fidelity.no_injected_messages",
    severity="breaks-clients",
    title="No message is added to the conversation",
    spec=f"{DOCS} (messages)",
    proves="The upstream receives exactly the client's messages: no system prompt of the "
    "relay's own before them (billed to the client as prompt tokens), nothing between or after.",
)
async def no_injected_messages(ctx: CheckContext) -> str:
    _, sent, received = await conversation_sent(ctx)
    _, added, _ = _align(sent, received)
    if added:
        first = received[added[0]]
        where = "before the client's messages" if added[0] == 0 else f"at messages[{added[0]}]"
        role = first.get("role") if isinstance(first, dict) else None
        raise Failure(f"{len(added)} message(s) the client did not send reached the upstream, "
                      f"the first {where}: {role} {snippet(message_text(first), 100)!r}")
    return f"the upstream received the client's {len(sent)} messages and no others"


@check(
    "fidelity.roles",
    severity="degrades",
    title="Message roles are not rewritten",
    spec=f"{DOCS} (messages[].role: developer, system, user, assistant)",
    proves="Each message reaches the upstream with its role: developer stays developer, "
    "system stays system.",
)
async def roles(ctx: CheckContext) -> str:
    _, sent, received = await conversation_sent(ctx)
    pairs, _, _ = _align(sent, received)
    changed = [f"messages[{i}] {sent[i].get('role')} → {show(received[j].get('role'), 20)}"
               for i, j in pairs if isinstance(received[j], dict)
               and received[j].get("role") != sent[i].get("role")]
    if changed:
        raise Failure("roles rewritten: " + "; ".join(changed))
    return "roles kept: " + ", ".join(str(m.get("role")) for m in sent)


@check(
    "fidelity.messages",
    severity="degrades",
    title="Messages reach the upstream unchanged",
    spec=f"{DOCS} (messages[].name, content as a string or parts)",
    proves="Every message arrives (history not shortened) with its name and its content exactly "
    "as sent: a string stays a string, a parts array stays a parts array.",
)
async def messages(ctx: CheckContext) -> str:
    _, sent, received = await conversation_sent(ctx)
    pairs, _, lost = _align(sent, received)
    if lost:
        raise Failure(f"history shortened: messages {lost} of {len(sent)} never reached the "
                      f"upstream ({snippet(message_text(sent[lost[0]]), 60)!r})")
    for i, j in pairs:
        got = received[j]
        for key in ("name", "content"):
            if key in sent[i] and not same(sent[i][key], got.get(key)):
                raise Failure(f"messages[{i}].{key} changed on the way: sent "
                              f"{show(sent[i][key])}, the upstream received "
                              f"{show(got.get(key))}")
    return f"all {len(sent)} messages arrived unchanged (names and content parts kept)"


@check(
    "fidelity.image",
    severity="breaks-clients",
    title="Images reach the upstream byte for byte",
    spec=f"{DOCS} (content part image_url)",
    proves="A user message with a text part and a base64 PNG image part arrives with the same "
    "parts: the image data URL and its detail are identical.",
)
async def image(ctx: CheckContext) -> str:
    url = data_url(solid_png((220, 30, 30), 16))

    def with_image(marker: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [
            {"type": "text", "text": f"What colour is this image? One word. (request {marker})"},
            {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}]

    sent = reached(await through(ctx, "image", messages=with_image, max_tokens=8),
                    "image input")
    received = sent.received.get("messages")
    carrying = [m for m in received if sent.marker in message_text(m)] if isinstance(
        received, list) else []
    got = carrying[0].get("content") if carrying else received
    parts = got if isinstance(got, list) else []
    images = [p for p in parts if isinstance(p, dict) and p.get("type") == "image_url"]
    if not images:
        raise Failure(f"the image part never reached the upstream: it received {show(got, 100)}")
    arrived = images[0].get("image_url")
    if not same(arrived, {"url": url, "detail": "low"}):
        shown = arrived.get("url", "")[:40] if isinstance(arrived, dict) else arrived
        raise Failure(f"the image changed on the way: sent a {len(url)}-character data URL "
                      f"(detail low), the upstream received {show(shown)}")
    return f"the {len(url)}-character image data URL arrived identical"


@check(
    "fidelity.sampling_params",
    severity="breaks-clients",
    title="Sampling parameters are forwarded unchanged",
    spec=f"{DOCS} (temperature, top_p, seed, stop, presence_penalty, frequency_penalty, "
    "logit_bias, n, max_tokens)",
    proves="A request with every sampling parameter set to a non-default value reaches the "
    "upstream with each one present and equal.",
)
async def sampling_params(ctx: CheckContext) -> str:
    sent = reached(await through(ctx, "sampling", **SAMPLING), "sampling parameters")
    return fields_judged(sent, list(SAMPLING))


@check(
    "fidelity.user_metadata",
    severity="degrades",
    title="user, metadata and store are forwarded",
    spec=f"{DOCS} (user, metadata, store)",
    proves="The end-user id, the metadata map and store reach the upstream as sent (relays "
    "often drop them, breaking abuse tracking and stored completions).",
)
async def user_metadata(ctx: CheckContext) -> str:
    sent = reached(await through(ctx, "identity", **IDENTITY), "user/metadata")
    return fields_judged(sent, ["user", "metadata", "store"])


@check(
    "fidelity.max_tokens_names",
    severity="degrades",
    title="max_tokens and max_completion_tokens are not converted",
    spec=f"{DOCS} (max_tokens, deprecated; max_completion_tokens)",
    proves="A request with max_tokens arrives with max_tokens, one with max_completion_tokens "
    "arrives with max_completion_tokens, each with its value.",
)
async def max_tokens_names(ctx: CheckContext) -> str:
    for name, fields in (("sampling", SAMPLING), ("identity", IDENTITY)):
        sent = reached(await through(ctx, name, **fields), "token limits")
        key = "max_tokens" if "max_tokens" in fields else "max_completion_tokens"
        other = "max_completion_tokens" if key == "max_tokens" else "max_tokens"
        received = sent.received
        if key not in received:
            moved = f" (the upstream received {other}={received[other]})" if other in received \
                else ""
            raise Failure(f"{key}={fields[key]} was not forwarded as {key}{moved}")
        if not same(received[key], fields[key]):
            raise Failure(f"{key} changed: sent {fields[key]}, the upstream received "
                          f"{show(received[key], 20)}")
    return "max_tokens and max_completion_tokens each arrived under its own name"


@check(
    "fidelity.logprobs",
    severity="degrades",
    title="logprobs are forwarded and returned unchanged",
    spec=f"{DOCS} (logprobs, top_logprobs; choices[].logprobs)",
    proves="logprobs/top_logprobs reach the upstream, and the client gets the upstream's "
    "logprobs object unchanged.",
)
async def logprobs(ctx: CheckContext) -> str:
    sent = reached(await through(ctx, "logprobs", **LOGPROBS), "logprobs")
    fields_judged(sent, ["logprobs", "top_logprobs"])
    upstream = choices(sent.answered.get("body"))
    client = choices(client_body(sent))
    want = upstream[0].get("logprobs") if upstream else None
    got = client[0].get("logprobs") if client else None
    changed = difference(want, got, "logprobs")
    if changed:
        raise Failure(f"the logprobs the upstream answered reached the client changed: {changed}")
    return "logprobs forwarded both ways"


@check(
    "fidelity.tools",
    severity="breaks-clients",
    title="Tools are forwarded and tool calls returned unchanged",
    spec=f"{DOCS} (tools, tool_choice, parallel_tool_calls; message.tool_calls)",
    proves="tools, a named tool_choice and parallel_tool_calls reach the upstream as sent; the "
    "tool call the upstream answered reaches the client with the same name and the same "
    "arguments string.",
)
async def tools(ctx: CheckContext) -> str:
    sent = reached(await through(ctx, "tools", max_tokens=64, **TOOLS), "tools")
    fields_judged(sent, list(TOOLS))
    want = tool_calls(choices(sent.answered.get("body")))
    got = tool_calls(choices(client_body(sent)))
    if not want:
        raise NotApplicable("inconclusive: the upstream answered no tool call")
    if want != got:
        raise Failure(f"the tool calls the upstream answered {show(want, 100)} reached the "
                      f"client as {show(got, 100)}")
    return f"tools forwarded; the tool call came back unchanged: {show(want, 60)}"


@check(
    "fidelity.response_format",
    severity="breaks-clients",
    title="response_format is forwarded unchanged",
    spec=f"{DOCS} (response_format json_schema)",
    proves="A strict json_schema response_format reaches the upstream identical.",
)
async def response_format(ctx: CheckContext) -> str:
    sent = reached(await through(ctx, "format", max_tokens=32, **FORMAT), "response_format")
    return fields_judged(sent, ["response_format"])


@check(
    "fidelity.reasoning_effort",
    severity="degrades",
    title="reasoning_effort is forwarded unchanged",
    spec=f"{DOCS} (reasoning_effort)",
    proves="reasoning_effort 'low' reaches the upstream as 'low' (relays force their own "
    "level for some models); a relay may decline it with a proper error.",
)
async def reasoning_effort(ctx: CheckContext) -> str:
    sent = reached(await through(ctx, "reasoning", **REASONING), "reasoning_effort")
    return fields_judged(sent, ["reasoning_effort"])


@check(
    "fidelity.unknown_fields",
    severity="cosmetic",
    title="Unknown request fields: forwarded unchanged or dropped",
    spec=f"{DOCS} (a field OpenAI does not define)",
    proves="A field no spec defines either reaches the upstream with its value or is dropped "
    "(both are legal; the result says which); it is never rewritten.",
)
async def unknown_fields(ctx: CheckContext) -> str:
    value = {"probe": 1}
    extra: dict[str, Any] = {UNKNOWN_FIELD: value}
    sent = await through(ctx, "unknown", max_tokens=8, **extra)
    if not sent.records:
        raise_for_status(sent.exchange, "unknown request fields")
        raise NotForwarded(f"no request carrying the marker {sent.marker} reached the upstream")
    received = sent.received
    if UNKNOWN_FIELD not in received:
        return f"dropped: {UNKNOWN_FIELD} did not reach the upstream"
    if not same(received[UNKNOWN_FIELD], value):
        raise Failure(f"{UNKNOWN_FIELD} rewritten: sent {show(value)}, the upstream received "
                      f"{show(received[UNKNOWN_FIELD])}")
    return (f"forwarded: {UNKNOWN_FIELD} reached the upstream unchanged "
            f"(it answered HTTP {sent.answered.get('status')})")
