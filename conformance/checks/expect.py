"""Judging helpers shared by the checks: they turn an :class:`Exchange` into data or a verdict.

Outcome rules (docs/CONTRACT.md, "Outcomes"), written once here for every family:

* ``unsupported`` is a real decline only: a 404/405 for an optional route that does not exist
  (:func:`raise_for_status` with ``route=``), or a 4xx error whose message or code says the
  feature is not supported, for the model or at all (:data:`DECLINE_WORDS`).
* ``fail``: a 5xx; a 4xx that names a header or field the suite did send (a relay that dropped
  or mangled it — "anthropic-version: header is required"); a 4xx that does not say what is
  unsupported; an error body in another API's format answered by an upstream behind the relay;
  an error inside an HTTP 200; a body or stream the provider cut; a silently ignored feature.
* ``error`` (no verdict): the configured key refused (401/403 to a request that carried it —
  the user's problem, never the provider's fault), the configured model not available to it
  (``model_not_found``, "无可用渠道": :func:`check_model_unavailable`, for a feature's request
  too) and rate limiting after retries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from conformance import jsontext
from conformance.errors import Failure, Finding, NotApplicable, SuiteError, Unsupported
from conformance.exchange import Exchange, TimedEvent
from conformance.validation import first_violation


class CredentialsRejected(SuiteError):
    """The provider refused the configured key on an ordinary request: fix providers.yaml."""


class RateLimited(SuiteError):
    """Still rate limited after the configured retries."""


class OutOfCredit(SuiteError):
    """The account behind the configured key has no balance or quota left: top it up; no
    verdict about the provider."""


class ModelUnavailable(SuiteError):
    """The provider says the configured model does not exist or is not open to this key: fix
    ``model:`` in providers.yaml (or ``--model``); no verdict about the provider."""


def snippet(value: Any, limit: int = 160) -> str:
    """A one-line, length-limited rendering of a body or value for messages."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def contains_answer(text: str, expected: str) -> bool:
    """Case-insensitive containment, tolerant of punctuation and extra words."""
    return expected.lower() in text.lower()


async def unreached(missed: str, expected: str, control: Awaitable[str]) -> Finding:
    """The verdict on an answer without the ``expected`` word that a fact given elsewhere in
    the request (a system message, an earlier turn, another content part) should have
    produced.  ``control`` sends the same fact stated in the question itself
    (:data:`~conformance.checks.prompts.FACT_IN_QUESTION`) and gives its answer: when it has
    the word, the model uses such facts and the request lost this one — a :class:`Failure`
    (``missed`` says what); when it has not, the model does not answer the question at all
    and nothing is proven — inconclusive (:class:`NotApplicable`), never a fail blamed on the
    provider.  A control the provider fails is a fail saying both."""
    try:
        answer = await control
    except Failure as exc:
        return Failure(f"{missed}; the control (the fact in the question itself) failed too: "
                       f"{exc}")
    if contains_answer(answer, expected):
        return Failure(f"{missed}; with the fact in the question itself the model answers "
                       f"{snippet(answer, 40)} (control)")
    return NotApplicable(f"inconclusive: {missed}, but the model does not answer {expected!r} "
                         f"with the fact in the question itself either (control: "
                         f"{snippet(answer, 60) if answer else 'no text'})")


def expect_ended(exchange: Exchange, readers: str) -> None:
    """Fail a complete stream whose response body was left open after its last event
    (:attr:`Exchange.open_after_end`): ``readers`` — the clients that read a stream to the end
    of its body — would wait for their own timeout."""
    if exchange.open_after_end:
        raise Failure(f"the response did not end after its last event: "
                      f"{exchange.open_after_end} ({readers} read a stream to the end of its "
                      "body and would wait for their timeout)")


def expect_no_bom(exchange: Exchange, what: str) -> None:
    """Fail a JSON body that begins with a byte order mark (RFC 8259 §8.1: a sender MUST NOT
    add one).  Every other check reads past it, as the openai SDKs do; the checks of a body's
    form (``chat.basic``, ``models.list``) say it once."""
    if exchange.bom:
        raise Failure(f"{what} begins with a byte order mark (U+FEFF), which JSON sent over a "
                      "network must not (RFC 8259 §8.1): the openai SDKs read past it, Go's "
                      "encoding/json and other strict parsers refuse the whole body")


def error_envelope(exchange: Exchange) -> dict[str, Any] | None:
    """The ``error`` object when the body is an OpenAI error envelope with a message."""
    body = exchange.json
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error: dict[str, Any] = body["error"]
        if isinstance(error.get("message"), str):
            return error
    return None


def describe(exchange: Exchange) -> str:
    """``HTTP 400 application/json {"error": ...}`` — what came back, in one line."""
    if exchange.status is None:
        return "no response"
    ctype = exchange.content_type or "no content-type"
    if exchange.overflow:
        return f"HTTP {exchange.status} {ctype}, {exchange.overflow}"
    body = exchange.json if exchange.json is not None else exchange.text
    return f"HTTP {exchange.status} {ctype} {snippet(body, 120)}".rstrip()


#: Words by which an error says the model itself does not exist.
MODEL_MISSING = re.compile(
    r"does ?n[o']t exist|no such model|unknown model|model[_ ]not[_ ]found|不存在",
    re.IGNORECASE,
)
#: Words by which an error says a feature, parameter or model is not offered: OpenAI's
#: "Unsupported parameter" / "Supported values are", LiteLLM's "does not support parameters",
#: vLLM's "not implemented", and the seed relays' Chinese ("不支持", "无可用渠道", "未开放").
DECLINE_WORDS = re.compile(
    r"support|not (?:available|enabled|implemented|allowed|permitted)|deprecated|disabled|"
    r"不支持|暂不支持|未开放|不可用|无可用渠道|未启用|" + MODEL_MISSING.pattern,
    re.IGNORECASE,
)
#: Error codes that are declines whatever the message says.
DECLINE_CODES = frozenset({"unsupported_parameter", "unsupported_value", "model_not_found",
                           "unsupported_model", "not_implemented"})
#: Request headers every client sends; an error naming one of them says nothing about
#: what the check sent.
_ROUTINE_HEADERS = frozenset({"user-agent", "accept", "accept-encoding", "connection",
                              "content-length", "host"})


def sent_names(exchange: Exchange) -> set[str]:
    """The header names and body field names (at any depth) a request carried."""
    names = {k.lower() for k in exchange.request_headers} - _ROUTINE_HEADERS

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield str(key)
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    names.update(walk(exchange.request_body))
    return names


def names_sent(message: str, exchange: Exchange) -> str | None:
    """A header or field the request carried that ``message`` names as the problem, if any.

    A name counts when it is quoted (``'temperature'``), starts a ``name: problem`` clause
    (``anthropic-version: header is required``) or is a hyphenated header name; plain words
    such as "model" in "this model ..." do not.
    """
    for name in sorted(sent_names(exchange), key=len, reverse=True):
        if len(name) < 2:
            continue
        word = re.escape(name)
        quoted = rf"['\"`]{word}['\"`]"
        clause = rf"(?<![\w.-]){word}\s*:"
        header = rf"(?<![\w-]){word}(?![\w-])" if "-" in name else None
        patterns = [quoted, clause, *([header] if header else [])]
        if any(re.search(p, message, re.IGNORECASE) for p in patterns):
            return name
    return None


def is_decline(envelope: dict[str, Any]) -> bool:
    """The error's message or code says a feature or model is not offered."""
    code = envelope.get("code")
    if isinstance(code, str) and code.lower() in DECLINE_CODES:
        return True
    said = " ".join(str(envelope.get(k) or "") for k in ("message", "type", "code"))
    return bool(DECLINE_WORDS.search(said))


def check_out_of_credit(exchange: Exchange, what: str = "") -> None:
    """``error`` (:class:`OutOfCredit`, no verdict) when a request with the configured key
    was refused because its account has no balance or quota left
    (:attr:`~conformance.exchange.Exchange.out_of_credit`)."""
    if exchange.sent_key and exchange.out_of_credit:
        prefix = f"{what}: " if what else ""
        envelope = error_envelope(exchange)
        said = snippet(envelope.get("message") or envelope if envelope else exchange.text, 140)
        raise OutOfCredit(f"{prefix}the account behind the configured key is out of balance "
                          f"or quota, no verdict (top it up, or configure another key): HTTP "
                          f"{exchange.status} {said}")


def check_key_refused(exchange: Exchange, what: str = "") -> None:
    """``error`` (no verdict) when the configured key went out with the request and was
    refused (401/403, :class:`CredentialsRejected`) or its account is out of balance or quota
    (:class:`OutOfCredit`): the user's problem, never the provider's fault."""
    check_out_of_credit(exchange, what)
    prefix = f"{what}: " if what else ""
    if exchange.status in (401, 403) and exchange.sent_key:
        raise CredentialsRejected(f"{prefix}the provider refused the configured key (HTTP "
                                  f"{exchange.status}), no verdict: {describe(exchange)}")


def check_rate_limited(exchange: Exchange) -> None:
    """``error`` (:class:`RateLimited`, no verdict) for a 429 still standing after retries."""
    if exchange.status == 429:
        stopped = f" ({exchange.retry_stopped})" if exchange.retry_stopped else ""
        raise RateLimited(f"rate limited after {exchange.attempts} attempts{stopped}: "
                          f"{describe(exchange)}")


#: What an error says when a feature is declined for a model (not that the model is missing).
_FEATURE_WORDS = re.compile(r"support|不支持|未开放|未启用", re.IGNORECASE)


def check_model_unavailable(exchange: Exchange, envelope: dict[str, Any], *,
                            feature: bool = False) -> None:
    """``error`` (:class:`ModelUnavailable`) when a 4xx declines the model the request named
    (``model_not_found``, "does not exist", "无可用渠道" next to the model's name): the key may
    not use that model, which the user configured; it says nothing of the provider.  With
    ``feature`` (a request for an optional feature) only an error about the model itself
    counts, not one saying the model does not support something ("does not support image
    input" is the feature's decline)."""
    body = exchange.request_body
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model or not is_decline(envelope):
        return
    message = str(envelope.get("message") or "")
    code = str(envelope.get("code") or "").lower()
    if feature and (_FEATURE_WORDS.search(message) or code.startswith("unsupported")):
        return
    if model in message or code in ("model_not_found", "unsupported_model") or \
            "无可用渠道" in message:
        raise ModelUnavailable(f"the model {model!r} is not available to this key (set model: "
                               f"in providers.yaml or --model): HTTP {exchange.status} "
                               f"{snippet(message, 140)}")


def raise_for_status(
    exchange: Exchange,
    feature: str | None = None,
    *,
    route: str | None = None,
    foreign: Callable[[Exchange], str | None] | None = None,
) -> None:
    """The verdict for a non-2xx answer to a valid request (nothing for a 2xx).

    401/403 to the configured key and 429 are ``error`` (no verdict).  Without ``feature``
    (core behaviour) anything else is a ``fail``.  With ``feature`` a 4xx is ``unsupported``
    only when it is a real decline (module docstring).  ``route`` names an optional endpoint
    (``POST /messages``): a 404/405 there means it is not offered, unless ``foreign`` — which
    recognises an error body in the endpoint's own API format and says whose it is — shows
    the route exists and an upstream behind it answered.
    """
    if exchange.ok:
        return
    status = exchange.status or 0
    envelope = error_envelope(exchange)
    check_key_refused(exchange)
    check_rate_limited(exchange)
    if feature is None and 400 <= status < 500 and envelope is not None:
        check_model_unavailable(exchange, envelope)
    if status >= 500 or feature is None:
        raise Failure(f"expected HTTP 200, got {describe(exchange)}")
    if feature is not None and 400 <= status < 500 and envelope is not None:
        # the configured model missing is the user's to fix, not the feature's decline
        check_model_unavailable(exchange, envelope, feature=True)
    if route and status in (404, 405):
        upstream = foreign(exchange) if foreign else None
        if upstream is None:
            bare = "" if envelope else " (no error envelope)"
            raise Unsupported(f"{route} is not offered: {describe(exchange)}{bare}")
        if envelope is not None and is_decline(envelope):
            raise Unsupported(f"{feature} declined: HTTP {status} "
                              f"{snippet(envelope['message'], 140)}")
        raise Failure(f"{route} exists but HTTP {status} came with {upstream}: the relay "
                      f"forwarded the request to an upstream that does not serve it: "
                      f"{describe(exchange)}")
    if not 400 <= status < 500 or envelope is None:
        bare = (" (not a well-formed decline: no OpenAI error envelope {\"error\": "
                "{\"message\": ...}})" if 400 <= status < 500 else "")
        raise Failure(f"expected HTTP 200, got {describe(exchange)}{bare}")
    message = str(envelope["message"])
    named = names_sent(message, exchange)
    if is_decline(envelope):
        raise Unsupported(f"{feature} declined: HTTP {status} {snippet(message, 140)}")
    if named is not None:
        raise Failure(f"HTTP {status} says {named!r} is wrong or missing, but the request "
                      f"carried a valid {named!r} (dropped or altered on the way?): "
                      f"{snippet(message, 120)}")
    raise Failure(f"{feature}: HTTP {status} refused a valid request without saying that "
                  f"anything is unsupported: {snippet(message, 140)}")


def cut_finding(exchange: Exchange, what: str = "stream", *,
                end: tuple[str, Callable[[Exchange], bool]] | None = None) -> Failure | None:
    """A ``fail`` for a body or stream the provider cut (see :attr:`Exchange.cut`) or that
    exceeded the configured limits (:attr:`Exchange.overflow`: the read was stopped, nothing
    of it is judged), or None.

    ``end`` names the stream's own end marker and tells whether it arrived before the cut
    (default: OpenAI's finish_reason and ``data: [DONE]``); a client has everything then.
    """
    if exchange.overflow:
        return Failure(exchange.overflow)
    if not exchange.cut:
        return None
    if exchange.events is None:
        return Failure(f"response body cut: {exchange.cut}")
    count = len(exchange.data_events())
    if end is not None:
        name, arrived = end
        if arrived(exchange):
            return None
        return Failure(f"{what} cut after {count} events, no {name}: {exchange.cut}")
    if _saw_done(exchange):
        return None
    finished = any(isinstance(c, dict) and c.get("finish_reason") is not None
                   for chunk in exchange.chunks() for c in arr(chunk.get("choices")))
    missing = "no [DONE]" if finished else "no finish_reason, no [DONE]"
    return Failure(f"{what} cut after {count} events, {missing}: {exchange.cut}")


def named_stream_events(exchange: Exchange, end: tuple[str, Callable[[Exchange], bool]]
                        ) -> list[TimedEvent]:
    """The data events of a stream of named events (Anthropic's Messages, OpenAI's
    Responses), whose status was judged already: a cut stream without its ``end`` marker
    (:func:`cut_finding`) and a stream without any data event are a ``fail``."""
    cut = cut_finding(exchange, end=end)
    if cut is not None:
        raise cut
    events = exchange.data_events()
    if not events:
        raise Failure(f"stream: true answered without any SSE data event: {describe(exchange)}")
    return events


def stream_failure(payload: dict[str, Any]) -> Any:
    """What a stream event reports when it says the request failed after its HTTP 200, else
    None: a chat chunk carrying ``error`` (how the LiteLLM proxy passes on an upstream that
    failed mid-stream; the openai SDK raises APIError on it), an ``error`` event (Anthropic's
    ``overloaded_error``; the Responses API's ResponseErrorEvent) or ``response.failed``
    (its Response's ``error``)."""
    kind = payload.get("type")
    if kind == "response.failed":
        return obj(payload.get("response")).get("error") or payload
    if kind == "error":
        return payload.get("error") or payload
    if payload.get("error") and not payload.get("choices"):
        return payload["error"]
    return None


def named_event_payloads(exchange: Exchange, events: list[TimedEvent], chunks: str
                         ) -> tuple[list[tuple[str | None, dict[str, Any]]], list[TimedEvent],
                                    bool]:
    """The (event name, JSON payload) pairs of a stream of named events
    (:func:`named_stream_events` of ``exchange``), the event each pair came from, and whether
    a ``[DONE]`` came (it is no event of theirs).  A payload that is not a JSON object, an
    OpenAI chat chunk (the fail says ``streamed {chunks}``) or an ``error`` event is a
    ``fail`` about that event."""
    pairs: list[tuple[str | None, dict[str, Any]]] = []
    timed: list[TimedEvent] = []
    done = False
    for event in events:
        if event.data.strip() == "[DONE]":
            done = True
            continue
        try:
            payload = jsontext.loads(event.data)
        except ValueError:
            payload = None
        about = at_event(exchange, event)
        if not isinstance(payload, dict):
            raise Failure(f"a stream event is not a JSON object{jsontext.reason(event.data)}: "
                          f"{snippet(event.data, 80)}",
                          event=about)
        if payload.get("object") == "chat.completion.chunk" or "choices" in payload:
            raise Failure(f"streamed {chunks}: {snippet(payload, 80)}", event=about)
        if payload.get("type") == "error":
            raise Failure(f"the stream reported an error: {snippet(payload, 120)}", event=about)
        if payload.get("type") == "response.failed":
            raise Failure(f"the stream reported that the response failed (response.failed): "
                          f"{snippet(stream_failure(payload), 120)}", event=about)
        pairs.append((event.event, payload))
        timed.append(event)
    return pairs, timed, done


def _saw_done(exchange: Exchange) -> bool:
    return any(e.data.strip() == "[DONE]" for e in exchange.data_events())


def expect_completion(exchange: Exchange, *, feature: str | None = None) -> dict[str, Any]:
    """An HTTP 200 JSON body with a non-empty ``choices`` list, or a verdict.

    ``feature`` names what the request exercises: with it, a well-formed 4xx is
    ``unsupported``; without it (core behaviour) any non-200 is a ``fail``.
    """
    raise_for_status(exchange, feature)
    cut = cut_finding(exchange)
    if cut is not None:
        raise cut
    body = exchange.json
    if not isinstance(body, dict):
        raise Failure(f"HTTP {exchange.status} but the body is not a JSON object"
                      f"{exchange.json_reason}: {describe(exchange)}")
    if "error" in body and "choices" not in body:
        raise Failure(f"error reported inside HTTP {exchange.status} (must be 4xx/5xx): "
                      f"{snippet(body)}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not all(
        isinstance(c, dict) for c in choices
    ):
        raise Failure(f"expected a non-empty 'choices' list, got {snippet(choices)}")
    wrong = _mistyped_choice(choices, "message")
    if wrong:
        raise Failure(wrong)
    return body


def message_text(choice: dict[str, Any]) -> str:
    """The text of a choice's message (string content, or text parts joined)."""
    message = choice.get("message")
    if not isinstance(message, dict):
        raise Failure(f"choices[{choice.get('index', 0)}].message missing: {snippet(choice)}")
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def answer_text(body: dict[str, Any]) -> str:
    """The text of the first choice."""
    return message_text(body["choices"][0])


def expect_stream(exchange: Exchange, *, feature: str | None = None) -> list[dict[str, Any]]:
    """The parsed chunks of a successful event stream, or a verdict (a cut stream fails)."""
    raise_for_status(exchange, feature)
    cut = cut_finding(exchange)
    if cut is not None:
        raise cut
    if not exchange.data_events():
        body = exchange.json
        if isinstance(body, dict) and "error" in body:
            raise Failure(f"error reported inside HTTP {exchange.status} instead of a stream: "
                          f"{snippet(body)}")
        if isinstance(body, dict) and "choices" in body:
            raise Failure("stream: true answered with a single non-stream JSON completion")
        raise Failure(f"stream: true answered without any SSE data event: {describe(exchange)}")
    chunks = exchange.chunks()
    if not chunks:
        first = next((e.data for e in exchange.data_events()), "")
        raise Failure(f"no JSON chunk in the event stream{jsontext.reason(first)}: "
                      f"{snippet(exchange.text)}")
    for n, chunk in enumerate(chunks):
        error = stream_failure(chunk)
        if error is not None:
            raise Failure(f"chunk {n} of the HTTP {exchange.status} stream is an error, not "
                          f"an answer: {snippet(error)}", event=chunk_at(exchange, n))
        choices = chunk.get("choices")
        if choices is not None and (not isinstance(choices, list)
                                    or not all(isinstance(c, dict) for c in choices)):
            raise Failure(f"chunk {n}: 'choices' must be a list of objects, got "
                          f"{snippet(choices)}", event=chunk_at(exchange, n))
        wrong = _mistyped_choice(choices or [], "delta")
        if wrong:
            raise Failure(f"chunk {n}: {wrong}", event=chunk_at(exchange, n))
    return chunks


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}``: a part a provider sent with another type
    reads as absent, so the check's own test of what it holds fails (never a suite fault)."""
    return value if isinstance(value, dict) else {}


def arr(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else ``[]`` (as :func:`obj`)."""
    return value if isinstance(value, list) else []


def _mistyped_choice(choices: list[dict[str, Any]], part: str) -> str | None:
    """What is wrongly typed in the fields of ``choices`` every check reads (``index`` an
    integer, ``part`` — ``message`` or ``delta`` — an object, ``finish_reason`` a string or
    null; absent ones are left to the checks that need them), else None.  A client indexes
    choices and switches on finish_reason: another type there is no answer it can read."""
    for i, choice in enumerate(choices):
        index = choice.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            return f"choices[{i}].index is {snippet(index, 40)}, expected an integer"
        if part in choice and not isinstance(choice[part], dict):
            return f"choices[{i}].{part} is {snippet(choice[part], 40)}, expected an object"
        reason = choice.get("finish_reason")
        if reason is not None and not isinstance(reason, str):
            return (f"choices[{i}].finish_reason is {snippet(reason, 40)}, expected a string "
                    "or null")
    return None


class Reassembled:
    """The text, finish reasons and roles of a stream, per choice index."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.content: dict[int, str] = {}
        self.finish: dict[int, list[str]] = {}
        self.roles: dict[int, list[str]] = {}
        self.usage: list[Any] = []
        #: The position of each chunk with a usage object (for :func:`chunk_at`).
        self.usage_at: list[int] = []
        #: Per choice index, the positions of the chunks that gave a finish_reason.
        self.finish_at: dict[int, list[int]] = {}
        #: Per choice index, (where each piece of text ends, the position of its chunk).
        self._pieces: dict[int, list[tuple[int, int]]] = {}
        for n, chunk in enumerate(chunks):
            if chunk.get("usage") is not None:
                self.usage.append(chunk["usage"])
                self.usage_at.append(n)
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict):
                    continue
                index = choice.get("index", 0)
                index = index if isinstance(index, int) else 0
                delta = choice.get("delta") or {}
                if isinstance(delta, dict):
                    text = delta.get("content")
                    if isinstance(text, str) and text:
                        self.content[index] = self.content.get(index, "") + text
                        self._pieces.setdefault(index, []).append(
                            (len(self.content[index]), n))
                    role = delta.get("role")
                    if isinstance(role, str):
                        self.roles.setdefault(index, []).append(role)
                reason = choice.get("finish_reason")
                if reason is not None:
                    self.finish.setdefault(index, []).append(str(reason))
                    self.finish_at.setdefault(index, []).append(n)

    def text(self, index: int = 0) -> str:
        return self.content.get(index, "")

    def finish_reason(self, index: int = 0) -> str | None:
        reasons = self.finish.get(index)
        return reasons[-1] if reasons else None

    @property
    def content_chunks(self) -> dict[int, int]:
        """Per choice index, how many chunks carried a piece of its text."""
        return {index: len(pieces) for index, pieces in self._pieces.items()}

    def chunk_of(self, index: int, offset: int) -> int | None:
        """The position, among the chunks given, of the chunk whose ``delta.content`` holds
        character ``offset`` of choice ``index``'s text (for :func:`chunk_at`)."""
        for end, n in self._pieces.get(index, []):
            if offset < end:
                return n
        return None


def expect_schema(name: str, instance: Any, what: str, *, strict: bool = False) -> None:
    """Fail with the JSON path of the first deviation from the generated OpenAI schema.

    Unless ``strict``, a missing property whose schema admits null counts as null (the
    official SDKs read both alike); ``chat.schema_strict`` reports such omissions separately.
    """
    if instance is None:  # no JSON at all (an HTML page, a cut body): never valid
        raise Failure(f"{what} deviates from the OpenAI schema at $: no JSON value")
    violation = first_violation(name, instance, absent_as_null=not strict)
    if violation is not None:
        raise Failure(f"{what} deviates from the OpenAI schema at {violation}")


def usage_numbers(usage: Any, where: str) -> tuple[int, int, int]:
    """(prompt, completion, total) of a usage object, or a ``fail`` naming what is wrong."""
    if not isinstance(usage, dict):
        raise Failure(f"{where}: no usage object (got {snippet(usage)})")
    numbers = []
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise Failure(f"{where}: usage.{key} must be a non-negative integer, got "
                          f"{snippet(value)}")
        numbers.append(value)
    return numbers[0], numbers[1], numbers[2]


def expect_client_error(
    exchange: Exchange, what: str, statuses: tuple[int, ...] = (400, 422), *,
    configured_model: bool = True,
) -> dict[str, Any]:
    """A 4xx (one of ``statuses``) with the OpenAI error envelope, or a ``fail`` saying why.

    OpenAI answers invalid requests with 400 (``invalid_request_error``); 422 is what many
    validating frameworks send and clients treat alike.  A 5xx for a client mistake is a fail:
    clients retry 5xx.  An error inside an HTTP 200 and a non-JSON body are fails.  Another
    4xx saying the request's model is not available is ``error`` (the user's model), unless
    ``configured_model`` is False (the request named a made-up model on purpose).
    """
    status = exchange.status or 0
    body = exchange.json
    if status not in statuses:
        check_key_refused(exchange, what)
        envelope = error_envelope(exchange)
        if configured_model and 400 <= status < 500 and envelope is not None:
            check_model_unavailable(exchange, envelope)
    if 200 <= status < 300:
        if isinstance(body, dict) and "error" in body:
            raise Failure(f"{what}: error reported inside HTTP {status} (must be 4xx): "
                          f"{snippet(body)}")
        raise Failure(f"{what} was accepted: {describe(exchange)}")
    expected = " or ".join(str(s) for s in statuses)
    if status >= 500:
        raise Failure(f"{what}: server error instead of a client error (expected {expected}): "
                      f"{describe(exchange)}")
    if status not in statuses:
        raise Failure(f"{what}: expected HTTP {expected}, got {describe(exchange)}")
    envelope = error_envelope(exchange)
    if envelope is None:
        kind = (f"a non-JSON body{exchange.json_reason}" if body is None
                else "JSON without the error envelope")
        raise Failure(f"{what}: HTTP {status} with {kind} (expected "
                      f"{{\"error\": {{\"message\": …}}}}): {describe(exchange)}")
    return envelope


def at_event(exchange: Exchange, event: TimedEvent | None) -> tuple[str, int] | None:
    """What a finding about one stream event carries (``Failure(..., event=...)``): the
    exchange's id and the event's index in :attr:`Exchange.events` (the evidence's
    ``response.events``); None when the event is not one of the exchange's."""
    if event is None:
        return None
    for index, candidate in enumerate(exchange.events or []):
        if candidate is event:
            return exchange.id, index
    return None


def chunk_events(exchange: Exchange) -> list[TimedEvent]:
    """The event of each chunk :meth:`Exchange.chunks` returns, in the same order."""
    return [event for event, _ in exchange.chunk_events()]


def chunk_at(exchange: Exchange, n: int | None) -> tuple[str, int] | None:
    """:func:`at_event` of the ``n``-th chunk of the stream (None for no such chunk)."""
    if n is None:
        return None
    events = chunk_events(exchange)
    return at_event(exchange, events[n]) if 0 <= n < len(events) else None
