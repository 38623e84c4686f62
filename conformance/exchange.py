"""The record of one request and its answer: :class:`Exchange`, what checks judge and reports
show as evidence.

An exchange is made by the transport (:mod:`conformance.transport`, or
:mod:`conformance.recording_transport` for a third-party client such as the openai SDK), already
redacted; a check reads its status, headers, JSON body or stream events (:class:`TimedEvent`,
each stamped with when the reader got to it), and the engine nests its
:meth:`Exchange.evidence_record` in every result it is evidence for.  This module never
imports pytest or httpx.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from conformance import jsontext
from conformance.bodies import keep_text, marker
from conformance.config import Limits
from conformance.loopwatch import Stall
from conformance.redact import Redactor
from conformance.results import sanitized

#: Largest response body kept in an Exchange's evidence by default (``limits.evidence``); the
#: rest is cut off with a visible marker.  Judging reads the whole body (up to ``limits.body``).
MAX_BODY_CHARS = Limits().evidence
#: Characters of an answer that exceeded a limit kept as evidence (at most
#: ``limits.evidence``): enough to see what it was, never megabytes per check.
OVERFLOW_EVIDENCE = 16_000
#: How deep an exchange's record sits in a result's evidence (``evidence.exchanges[i]``).
RECORD_DEPTH = 2
#: What an error says when the account has no balance or quota left
#: (:attr:`Exchange.out_of_credit`).
OUT_OF_CREDIT = re.compile(
    r"insufficient[ _](?:quota|balance|credit|funds)|exceeded your current quota|"
    r"credit balance is too low|余额不足|额度不足|额度已用尽|配额不足|欠费", re.IGNORECASE)
#: Client stalls kept in an exchange's evidence (the longest).
MAX_STALLS = 20

#: U+FEFF, the byte order mark (EF BB BF in UTF-8).
BOM = "\ufeff"

Auth = Literal["key", "none"] | str
"""How a request authenticates: the configured key, none, or a literal key to send instead."""


@dataclass(frozen=True)
class TimedEvent:
    """One SSE event with the time it arrived, in ms since the request was sent."""

    t_ms: float
    data: str
    event: str | None = None


@dataclass
class Exchange:
    """A redacted record of one request and its response (or of its transport failure)."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: Any
    stream: bool
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    json: Any = None
    json_reason: str = ""
    """Why the body (read whole, before ``text`` was cut to the evidence limit) is not JSON,
    where :func:`jsontext.explain` says more than a snippet of ``text`` can
    (`` (nested deeper than 64 levels, ...)``); else ``""``.  Set by :meth:`read_json`."""
    events: list[TimedEvent] | None = None
    sse_comments: int = 0
    trailing_data: bool = False
    open_after_end: str | None = None
    """Set when a stream's body stayed open after its last event (``data: [DONE]``, or the
    Messages/Responses stream's final event): reading stopped there and the stream is judged
    as it stands; what it says (``the body was still open 3 s after data: [DONE]``)."""
    elapsed_ms: float = 0.0
    first_byte_ms: float | None = None
    attempts: int = 1
    error: str | None = None
    sent_key: bool = False
    """The configured API key went out with the request (a 401 then means it was refused)."""
    cut: str | None = None
    """Set when the provider closed the connection before the body was complete, on the
    retry as well: what arrived stays in ``text``/``events`` and is judged, not discarded."""
    overflow: str | None = None
    """Set when the answer exceeded one of the provider's :class:`~conformance.config.Limits`
    (``response body larger than 8 MiB (limits.body): read stopped``) or could not be
    content-decoded (plain JSON labelled ``Content-Encoding: gzip``): reading stopped there;
    what arrived is evidence only, and the checks that read the answer fail."""
    retry_stopped: str | None = None
    """Why a 429 was not retried although retries were left (a Retry-After beyond the
    request's deadline)."""
    truncated: bool = False
    """``text`` was cut to ``limits.evidence`` characters (it ends with a marker)."""
    evidence_chars: int = MAX_BODY_CHARS
    """The provider's ``limits.evidence``: how much of a body or stream evidence keeps."""
    client_stalls: list[Stall] | None = None
    """For a stream read by :meth:`ProviderClient.request`: the periods (ms since the request
    was sent) in which the client's own event loop was held up (:mod:`conformance.loopwatch`),
    so events that arrived meanwhile were stamped late; None when not watched."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _record: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def bom(self) -> bool:
        """The (non-stream) body begins with a byte order mark, which RFC 8259 §8.1 forbids a
        sender to write (:func:`parse_json` reads past it)."""
        return self.events is None and self.text.startswith(BOM)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def out_of_credit(self) -> bool:
        """The answer says the account behind the key has no balance or quota left: HTTP 402
        Payment Required (余额不足 in the relays' docs), or a 400/401/403/429 whose error says
        so (OpenAI's 429 ``insufficient_quota``, a relay's 401 ``insufficient_quota`` or
        403 用户额度不足, Anthropic's "credit balance is too low")."""
        if self.status == 402:
            return True
        if self.status not in (400, 401, 403, 429):
            return False
        body = self.json
        error = body.get("error", body) if isinstance(body, dict) else self.text[:2000]
        text = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
        return bool(OUT_OF_CREDIT.search(text))

    def read_json(self, text: str) -> None:
        """Set :attr:`json` from the whole (redacted) body ``text``, read as :func:`parse_json`
        reads it, and :attr:`json_reason` when it is not JSON for a reason worth naming."""
        try:
            self.json, self.json_reason = _body_json(text), ""
        except ValueError as exc:  # NaN, nesting deeper than MAX_DEPTH, or simply not JSON
            self.json, self.json_reason = None, jsontext.explain(exc)

    def restart(self) -> None:
        """Forget a broken attempt's answer before the request is sent again."""
        self.status, self.headers, self.text, self.json = None, {}, "", None
        self.json_reason = ""
        self.events, self.sse_comments, self.trailing_data = None, 0, False
        self.open_after_end = None
        self.first_byte_ms, self.cut, self.overflow, self.truncated = None, None, None, False
        self.client_stalls = None
        self._record = None

    def _evidence_room(self) -> int:
        if self.overflow:
            return min(self.evidence_chars, OVERFLOW_EVIDENCE)
        return self.evidence_chars

    def data_events(self) -> list[TimedEvent]:
        """Events carrying data (everything a client would look at)."""
        return [e for e in self.events or [] if e.data != ""]

    def chunks(self) -> list[dict[str, Any]]:
        """Parsed JSON payloads of the stream, up to (not including) ``[DONE]``.

        Payloads that are not JSON objects are skipped here; ``streaming.chunk_schema`` reports
        them.
        """
        return [payload for _, payload in self.chunk_events()]

    def chunk_events(self) -> list[tuple[TimedEvent, dict[str, Any]]]:
        """Each chunk of :meth:`chunks` with the event it came in, in the same order."""
        out: list[tuple[TimedEvent, dict[str, Any]]] = []
        for event in self.data_events():
            if event.data.strip() == "[DONE]":
                break
            try:
                payload = jsontext.loads(event.data)
            except ValueError:
                continue
            if isinstance(payload, dict):
                out.append((event, payload))
        return out

    def usage(self) -> dict[str, Any] | None:
        """The usage object the provider reported (for a stream: the last one sent).

        Anthropic's ``input_tokens``/``output_tokens`` (Messages API; in a stream split over
        message_start and message_delta) and those of OpenAI's Responses API (in a stream: the
        ``response`` of its last event) are also given as ``prompt_tokens``/
        ``completion_tokens``/``total_tokens``, so token totals count them.  A GET (a stored
        Response read back) bills nothing: None.
        """
        if self.method == "GET":
            return None
        if isinstance(self.json, dict) and isinstance(self.json.get("usage"), dict):
            return _with_openai_names(dict(self.json["usage"]))
        if self.events is not None:
            chunks = self.chunks()
            ended = [c["response"]["usage"] for c in chunks
                     if isinstance(c.get("response"), dict)
                     and isinstance(c["response"].get("usage"), dict)]
            if ended:
                return _with_openai_names(dict(ended[-1]))
            found = [c["usage"] for c in chunks if isinstance(c.get("usage"), dict)]
            starts = [c["message"]["usage"] for c in chunks
                      if c.get("type") == "message_start" and isinstance(c.get("message"), dict)
                      and isinstance(c["message"].get("usage"), dict)]
            if starts:
                return _with_openai_names({**starts[0], **(found[-1] if found else {})})
            return dict(found[-1]) if found else None
        return None

    def evidence_record(self, redactor: Redactor) -> dict[str, Any]:
        """:meth:`to_evidence`, redacted again by ``redactor`` and made safe to nest in a
        result's ``evidence.exchanges`` (:func:`~conformance.results.sanitized`): made once
        per exchange, however many checks' results it is evidence for.  Call it once the
        exchange is complete."""
        if self._record is None:
            self._record = sanitized(redactor.data(self.to_evidence()), RECORD_DEPTH)
        record: dict[str, Any] = self._record
        return record

    def to_evidence(self) -> dict[str, Any]:
        """The JSON-ready evidence record (already redacted)."""
        response: dict[str, Any] = {"status": self.status, "headers": self.headers}
        if self.events is not None:
            kept: list[dict[str, Any]] = []
            room = self._evidence_room()
            for e in self.events:
                data = e.data if len(e.data) <= room else e.data[:room] + marker(
                    len(e.data) - room, "characters")
                kept.append({"t_ms": round(e.t_ms, 1), "data": data,
                             **({"event": e.event} if e.event else {})})
                room -= len(data)
                if room <= 0:
                    break
            if len(kept) < len(self.events):
                kept.append({"truncated": marker(len(self.events) - len(kept), "events")})
            response["events"] = kept
            if self.sse_comments:
                response["sse_comments"] = self.sse_comments
            if self.trailing_data:
                response["trailing_data"] = True
            if self.open_after_end:
                response["open_after_end"] = self.open_after_end
            if self.json is not None:
                response["body"] = self.json
        elif self.truncated or self.json is None:
            response["body"], _ = keep_text(self.text, self._evidence_room())
        else:
            response["body"] = self.json
        record: dict[str, Any] = {
            "id": self.id,
            "request": {
                "method": self.method,
                "url": self.url,
                "headers": self.request_headers,
                "body": self.request_body,
            },
            "response": response,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }
        if self.first_byte_ms is not None:
            record["first_byte_ms"] = round(self.first_byte_ms, 1)
        usage = self.usage()
        if usage is not None:
            record["usage"] = {
                k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")
                if isinstance(usage.get(k), int)
            }
        if self.attempts > 1:
            record["attempts"] = self.attempts
        if self.error:
            record["error"] = self.error
        if self.cut:
            record["cut"] = self.cut
        if self.overflow:
            record["overflow"] = self.overflow
        if self.retry_stopped:
            record["retry_stopped"] = self.retry_stopped
        if self.client_stalls:
            # The longest ones, in time order: a stream read for minutes on a busy machine
            # may have thousands.
            longest = sorted(sorted(self.client_stalls, key=lambda s: s[0] - s[1])[:MAX_STALLS])
            record["client_stalls"] = [list(stall) for stall in longest]
            if len(self.client_stalls) > MAX_STALLS:
                record["client_stalls_total"] = len(self.client_stalls)
        return record


def _with_openai_names(usage: dict[str, Any]) -> dict[str, Any]:
    """Add OpenAI's names to an Anthropic usage object (input/output_tokens)."""
    if "prompt_tokens" in usage or "input_tokens" not in usage:
        return usage
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        usage.update(prompt_tokens=prompt, completion_tokens=completion,
                     total_tokens=prompt + completion)
    return usage


def redact_stream(exchange: Exchange, data: list[str], text: str, redactor: Redactor,
                   limit: int) -> str:
    """Mask a stream's events (``data``: each one's raw data) and raw ``text`` as a whole (a
    secret may be split over several events), then keep ``limit`` characters of the text;
    the whole masked text is returned."""
    masked, joined = redactor.stream(data, text)
    exchange.text, exchange.truncated = keep_text(joined, limit)
    if exchange.events is not None:
        exchange.events[:] = [replace(ev, data=d) for ev, d in zip(exchange.events, masked,
                                                                    strict=False)]
    return joined


def cut_summary(exchange: Exchange, exc: BaseException, redactor: Redactor, *,
                framing: bool = False, resent: bool = False) -> str:
    """``connection closed after 412 bytes (the retry too): peer closed connection ...``, or
    with ``framing`` (the body's HTTP/1.1 framing broke, not the connection) ``HTTP/1.1
    framing broken after 412 bytes: illegal chunk header ...``.  ``resent``: the request was
    sent again after a first answer was cut too ("the retry too"); an earlier attempt that
    failed otherwise (a kept-alive connection the server had closed, a 429) is not a cut."""
    detail = redactor.text(str(exc)) or type(exc).__name__
    tries = " (the retry too)" if resent else ""
    what = "HTTP/1.1 framing broken" if framing else "connection closed"
    return f"{what} after {len(exchange.text.encode())} bytes{tries}: {detail}"


def parse_json(text: str) -> Any:
    """A body's JSON, or None.  A leading byte order mark is skipped, as RFC 8259 §8.1 lets a
    parser do and the clients do (httpx's ``Response.json()``, the openai SDK's; a browser's
    ``fetch().json()``, the Node SDK's); :attr:`Exchange.bom` records it for the checks that
    judge the body's form."""
    try:
        return _body_json(text)
    except ValueError:  # not JSON (jsontext: NaN, or nested deeper than MAX_DEPTH, included)
        return None


def _body_json(text: str) -> Any:
    """:func:`jsontext.loads` of a body, past a leading byte order mark."""
    return jsontext.loads(text.removeprefix(BOM))
