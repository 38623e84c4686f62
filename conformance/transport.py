"""The one transport seam: every byte to and from a provider passes through here.

:class:`ProviderClient` wraps one ``httpx.AsyncClient`` per provider with the configured
timeouts (connect, read, whole request, stream stall) and retries, decodes event streams with
:mod:`conformance.sse`, and returns an :class:`Exchange` — the redacted record of one request and
its response that checks judge and reports show as evidence.  httpx's exceptions are mapped to
:class:`~conformance.errors.TransportError` here, once, with secrets already removed.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from conformance import __version__, jsontext
from conformance.bodies import (
    ACCEPT_ENCODING,
    Overflow,
    Undecodable,
    decode_text,
    decoded_chunks,
    keep_text,
    marker,
    size_text,
)
from conformance.clientsetup import context_for, proxy_mounts, quick_readable
from conformance.config import Limits, ProviderConfig
from conformance.connections import FRESH_CONNECTION, ConnectionPool
from conformance.errors import ConnectFailed, RequestTimeout, StreamStalled, TransportError
from conformance.loopwatch import LoopWatch, Stall
from conformance.redact import Redactor
from conformance.results import sanitized
from conformance.slots import Slots
from conformance.sse import SSEDecoder

#: Largest response body kept in an Exchange's evidence by default (``limits.evidence``); the
#: rest is cut off with a visible marker.  Judging reads the whole body (up to ``limits.body``).
MAX_BODY_CHARS = Limits().evidence
#: Characters of an answer that exceeded a limit kept as evidence (at most
#: ``limits.evidence``): enough to see what it was, never megabytes per check.
OVERFLOW_EVIDENCE = 16_000
#: Longest Retry-After honoured; a provider asking for more is not retried.
RETRY_AFTER_CAP = 30.0
#: Statuses retried with backoff (rate limiting); 5xx are verdicts, not retried.  Besides
#: these, only failures to connect are retried, never a request that timed out.
RETRY_STATUSES = frozenset({429})
#: Connection failures retried when no byte of the answer has arrived.  A ReadError then is
#: usually a kept-alive connection the server closed just as the request went out (a reset).
RETRY_ERRORS: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)
#: The connection closed after the answer began: the body (or stream) was cut.  Sent again
#: once (when retries are configured); cut again, the partial answer is returned to be judged.
CUT_ERRORS: tuple[type[httpx.HTTPError], ...] = (httpx.RemoteProtocolError, httpx.ReadError)
#: How deep an exchange's record sits in a result's evidence (``evidence.exchanges[i]``).
RECORD_DEPTH = 2
#: Client stalls kept in an exchange's evidence (the longest).
MAX_STALLS = 20
USER_AGENT = f"conformance/{__version__} (+https://github.com/conformance)"

Auth = Literal["key", "none"] | str


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
    events: list[TimedEvent] | None = None
    sse_comments: int = 0
    trailing_data: bool = False
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
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def restart(self) -> None:
        """Forget a broken attempt's answer before the request is sent again."""
        self.status, self.headers, self.text, self.json = None, {}, "", None
        self.events, self.sse_comments, self.trailing_data = None, 0, False
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


def _redact_stream(exchange: Exchange, data: list[str], text: str, redactor: Redactor,
                   limit: int) -> None:
    """Mask a stream's events (``data``: each one's raw data) and raw ``text`` as a whole (a
    secret may be split over several events), then keep ``limit`` characters of the text."""
    masked, joined = redactor.stream(data, text)
    exchange.text, exchange.truncated = keep_text(joined, limit)
    if exchange.events is not None:
        exchange.events[:] = [replace(ev, data=d) for ev, d in zip(exchange.events, masked,
                                                                    strict=False)]


def _cut_summary(exchange: Exchange, exc: BaseException, redactor: Redactor) -> str:
    """``connection closed after 412 bytes (the retry too): peer closed connection ...``."""
    detail = redactor.text(str(exc)) or type(exc).__name__
    tries = " (the retry too)" if exchange.attempts > 1 else ""
    return f"connection closed after {len(exchange.text.encode())} bytes{tries}: {detail}"


def _parse_json(text: str) -> Any:
    try:
        return jsontext.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python can parse
        return None


def retry_after(response: httpx.Response) -> float | None:
    """The seconds a Retry-After header asks for (seconds or an HTTP date), if it is valid."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError, OverflowError):
            return None


def _retry_delay(response: httpx.Response | None, attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1-based); honours Retry-After up to 30 s."""
    if response is not None:
        asked = retry_after(response)
        if asked is not None:
            return min(RETRY_AFTER_CAP, asked)
    if response is None:  # a failure to connect: a short pause is enough to ride out a blip
        return float(min(2.0, 0.1 * 2 ** (attempt - 1) + random.random() * 0.05))
    return float(min(8.0, 0.5 * 2 ** (attempt - 1) + random.random() * 0.25))


class ProviderClient:
    """Talks to one provider; one instance per provider per event loop."""

    def __init__(
        self,
        provider: ProviderConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if provider.base_url is None:
            raise ValueError(f"provider {provider.name!r} has no base_url")
        self.provider = provider
        self.base_url = provider.base_url.rstrip("/")
        self.redactor = Redactor(provider.secrets)
        t = provider.timeouts
        self._timeouts = t
        self._limits = provider.limits
        # As many connections as request slots (no more requests are ever in flight, see
        # conformance.slots), every one kept alive (httpx keeps 20 by default) so a burst
        # reuses them.
        connections = max(2, provider.concurrency)
        verify = context_for(self.base_url)  # one per process, not a CA load per provider
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.total),
            limits=limits,
            headers={"user-agent": USER_AGENT, "accept-encoding": ACCEPT_ENCODING,
                     **dict(provider.headers)},
            # The suite's own HTTP/1.1 pool (conformance.connections); a URL the environment
            # proxies goes through httpx's proxy transport instead.
            transport=transport or ConnectionPool(verify, max_connections=connections,
                                                  max_keepalive=connections),
            mounts=proxy_mounts(verify, limits) if transport is None else None,
            follow_redirects=False,
            verify=verify,
        )
        quick_readable(self._client)  # the proxy pools' check of idle connections
        #: At most ``concurrency`` requests in flight (:mod:`conformance.slots`).
        self.slots = Slots(provider.concurrency)
        #: A copy of the last 429 this client received (retried or not), for the checks that
        #: judge rate limiting; rate limits cannot be provoked safely, only observed.
        self.rate_limited: Exchange | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    def recording_client(self, record: Callable[[Exchange], None]) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` for a third-party client such as the official ``openai``
        SDK (``AsyncOpenAI(http_client=...)``).

        Its requests go out through this provider's client (same pool, proxies and limits), and
        each is recorded like :meth:`request`'s: a redacted :class:`Exchange`, handed to
        ``record`` when the request is sent and completed as the response body is read (the
        events of a stream included).  The third-party client sees the body exactly as sent,
        content-decoded.  Closing the returned client leaves this one open.
        """
        t = self._timeouts
        return httpx.AsyncClient(
            transport=_RecordingTransport(self, record),
            # Every request goes to the recording transport (which sends it through this
            # client, proxies from the environment included): no proxy mount of its own, and
            # no read of os.environ on the engine thread while pytest changes it.
            trust_env=False,
            headers=dict(self.provider.headers),
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.total),
            follow_redirects=False,
        )

    def _sends_key(self, headers: Mapping[str, str]) -> bool:
        key = self.provider.api_key
        if not key:
            return False
        return any(k.lower() in ("authorization", "x-api-key", "api-key") and key in v
                   for k, v in headers.items())

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: Auth = "key",
        stream: bool = False,
        retries: int | None = None,
    ) -> Exchange:
        """Send one request (with retries) and return its redacted :class:`Exchange`.

        ``retries`` overrides the provider's ``retries`` for this request.

        ``auth``: ``"key"`` sends the configured key as a bearer token, ``"none"`` sends no
        Authorization header, any other string is sent as the bearer token itself.
        """
        url = self.url(path)
        req_headers: dict[str, str] = {}
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode()
            req_headers["content-type"] = "application/json"
        if auth == "key":
            if self.provider.api_key:
                req_headers["authorization"] = f"Bearer {self.provider.api_key}"
        elif auth != "none":
            req_headers["authorization"] = f"Bearer {auth}"
        if stream:
            req_headers["accept"] = "text/event-stream"
        req_headers.update(headers or {})
        r = self.redactor
        body_record: Any
        if json_body is not None:
            body_record = r.data(json_body)
        elif content is not None:
            body_record = r.text(content.decode("utf-8", "replace"))
        else:
            body_record = None
        exchange = Exchange(
            method=method,
            url=r.text(url),
            request_headers=r.headers({**dict(self._client.headers), **req_headers}),
            request_body=body_record,
            stream=stream,
            sent_key=self._sends_key(req_headers),
            evidence_chars=self._limits.evidence,
        )
        # One request slot (``concurrency:``) for the whole request, its retries included.
        async with self.slots.slot():
            return await self._attempts(method, url, content, req_headers, stream, exchange,
                                        retries)

    async def _attempts(self, method: str, url: str, content: bytes | None,
                        req_headers: dict[str, str], stream: bool, exchange: Exchange,
                        retries: int | None) -> Exchange:
        attempts = 1 + max(0, self.provider.retries if retries is None else retries)
        resent_cut = False
        # ``total`` bounds the whole request: every attempt and every wait between them.
        deadline = time.perf_counter() + self._timeouts.total
        for attempt in range(1, attempts + 1):
            exchange.attempts = attempt
            started = time.perf_counter()
            try:
                response = await asyncio.wait_for(
                    self._send(method, url, content, req_headers, stream, exchange, started,
                               fresh=attempts == 1),
                    timeout=max(0.001, deadline - started),
                )
            except RETRY_ERRORS as exc:
                if exchange.first_byte_ms is not None and isinstance(exc, CUT_ERRORS):
                    if attempt < attempts and not resent_cut:
                        resent_cut = True
                        exchange.restart()
                        continue
                    exchange.cut = _cut_summary(exchange, exc, self.redactor)
                    break
                pause = _retry_delay(None, attempt)
                if (attempt < attempts and not exchange.first_byte_ms
                        and time.perf_counter() + pause < deadline):
                    await asyncio.sleep(pause)
                    continue
                raise self._map(exc, exchange, started) from None
            except (httpx.TimeoutException, TimeoutError, StreamStalled) as exc:
                # Not retried: the request reached the provider, which may be generating (and
                # billing) a long answer; sending it again would multiply the cost.
                raise self._map(exc, exchange, started) from None
            except httpx.HTTPError as exc:
                raise self._map(exc, exchange, started) from None
            finally:
                exchange.elapsed_ms = (time.perf_counter() - started) * 1000
            if response.status_code == 429:
                self.rate_limited = replace(exchange)
            if response.status_code in RETRY_STATUSES and attempt < attempts:
                asked = retry_after(response)
                pause = _retry_delay(response, attempt)
                if asked is not None and asked > RETRY_AFTER_CAP:
                    exchange.retry_stopped = (f"not retried: Retry-After {asked:g}s exceeds "
                                              f"the {RETRY_AFTER_CAP:g}s the suite waits")
                elif time.perf_counter() + pause >= deadline:
                    exchange.retry_stopped = (
                        f"not retried: waiting {pause:g}s would pass the request's "
                        f"{self._timeouts.total:g}s deadline (timeouts.total)")
                else:
                    await asyncio.sleep(pause)
                    continue
            break
        return exchange

    async def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        stream: bool,
        exchange: Exchange,
        started: float,
        *,
        fresh: bool = False,
    ) -> httpx.Response:
        if not stream:
            return await self._exchange(method, url, content, headers, stream, exchange, started,
                                        fresh=fresh)
        with LoopWatch.of().watching(started) as stalls:
            exchange.client_stalls = stalls
            return await self._exchange(method, url, content, headers, stream, exchange,
                                        started, fresh=fresh)

    async def _exchange(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        stream: bool,
        exchange: Exchange,
        started: float,
        *,
        fresh: bool = False,
    ) -> httpx.Response:
        """Send once.  ``fresh``: the request may not be sent again (no retries), so it goes out
        on a new connection: an idle one the server is closing just then (some close right
        after an error answer, without saying so) would fail it before any answer."""
        r = self.redactor
        request = self._client.build_request(method, url, content=content, headers=headers)
        if fresh:
            request.extensions[FRESH_CONNECTION] = True
        if stream:
            # A stream may run long; only silence is bounded (per chunk) besides the total.
            request.extensions["timeout"] = httpx.Timeout(
                connect=self._timeouts.connect, read=self._timeouts.stall,
                write=self._timeouts.read, pool=self._timeouts.total,
            ).as_dict()
        response = await self._client.send(request, stream=True)
        try:
            exchange.first_byte_ms = (time.perf_counter() - started) * 1000
            exchange.status = response.status_code
            exchange.headers = r.headers(response.headers.multi_items())
            if stream and 200 <= response.status_code < 300:
                await self._read_events(response, exchange, started)
            else:
                parts: list[bytes] = []
                text = ""
                try:
                    async for piece in decoded_chunks(response, self._limits.body,
                                                      "response body"):
                        parts.append(piece)
                except Overflow as exc:
                    exchange.overflow = f"{exc} (limits.body)"
                except Undecodable as exc:
                    exchange.overflow = str(exc)
                finally:  # a cut body keeps what arrived, as evidence
                    text = r.text(decode_text(b"".join(parts), response.charset_encoding))
                    del parts
                    exchange.text, exchange.truncated = keep_text(text, self._limits.evidence)
                if exchange.overflow is None:
                    exchange.json = _parse_json(text)
        finally:
            await response.aclose()
        return response

    async def _read_events(
        self, response: httpx.Response, exchange: Exchange, started: float
    ) -> None:
        """Decode an event stream, timing each event; silence longer than ``stall`` raises.

        The stream's size, its number of events and the size of one line or event are
        bounded by the provider's limits: past one, reading stops and ``overflow`` says which.
        """
        limits = self._limits
        decoder = SSEDecoder()
        events: list[TimedEvent] = []
        raw_parts: list[str] = []
        size = 0
        exchange.events = events
        iterator: AsyncIterator[bytes] = decoded_chunks(response, limits.stream, "stream")
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(
                        iterator.__anext__(), timeout=self._timeouts.stall
                    )
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise StreamStalled(
                        f"stream stalled: no data for {self._timeouts.stall:g}s after "
                        f"{len(events)} events"
                    ) from None
                except Overflow as exc:
                    exchange.overflow = f"{exc} after {len(events)} events (limits.stream)"
                    break
                except Undecodable as exc:
                    exchange.overflow = f"{exc} after {len(events)} events"
                    break
                now = (time.perf_counter() - started) * 1000
                if size <= limits.evidence + self.redactor.margin:
                    piece = chunk.decode("utf-8", "replace")
                    raw_parts.append(piece)
                    size += len(piece)
                fed = decoder.feed(chunk)
                if decoder.pending > limits.event or any(len(e.data) > limits.event
                                                         for e in fed):
                    exchange.overflow = (
                        f"SSE line or event larger than {size_text(limits.event)}: read "
                        f"stopped after {len(events)} events (limits.event)")
                    break
                # Raw here; masked once, as a whole stream, on the way out (below).
                events += [TimedEvent(now, ev.data, ev.event) for ev in fed]
                if len(events) > limits.events:
                    del events[limits.events:]
                    exchange.overflow = (f"stream longer than {limits.events} events: read "
                                         f"stopped (limits.events)")
                    break
            if exchange.overflow is None:
                end = (time.perf_counter() - started) * 1000
                events += [TimedEvent(end, ev.data, ev.event) for ev in decoder.close()]
            else:
                decoder.discard()
        finally:  # every way out (a cut or stalled stream too) masks what arrived, once,
            # before the evidence is cut: a secret may be split over several events
            _redact_stream(exchange, [e.data for e in events], "".join(raw_parts),
                           self.redactor, limits.evidence)
        if exchange.overflow is not None:
            return
        exchange.sse_comments = decoder.comments
        exchange.trailing_data = decoder.trailing_garbage
        if not events and exchange.content_type == "application/json":
            # An error (or a whole completion) answered as plain JSON to a stream request.
            exchange.json = _parse_json(exchange.text)

    def _map(self, exc: BaseException, exchange: Exchange, started: float) -> TransportError:
        """Map an httpx/asyncio exception to the suite's tree, redacted, once."""
        elapsed = time.perf_counter() - started
        if isinstance(exc, StreamStalled):
            mapped: TransportError = StreamStalled(self.redactor.text(str(exc)))
        elif isinstance(exc, httpx.ConnectTimeout):
            mapped = ConnectFailed(f"connect timeout after {elapsed:.1f}s to {exchange.url}")
        elif isinstance(exc, httpx.ConnectError):
            detail = self.redactor.text(str(exc)) or "refused"
            if "WRONG_VERSION_NUMBER" in detail:  # the TLS handshake met plain HTTP
                detail += " (the server does not speak TLS there: is the base_url http://?)"
            mapped = ConnectFailed(f"cannot connect to {exchange.url}: {detail}")
        elif isinstance(exc, httpx.TimeoutException | TimeoutError):
            mapped = RequestTimeout(f"no complete answer after {elapsed:.1f}s from {exchange.url}")
        else:
            detail = self.redactor.text(str(exc)) or type(exc).__name__
            mapped = TransportError(f"{type(exc).__name__}: {detail}")
        if exchange.attempts > 1:
            mapped = type(mapped)(f"{mapped} (after {exchange.attempts} attempts)")
        exchange.error = str(mapped)
        mapped.exchange = exchange
        return mapped


#: Response headers that no longer describe the body once it has been content-decoded.
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class _RecordingTransport(httpx.AsyncBaseTransport):
    """Sends a third-party client's requests through a :class:`ProviderClient` and records
    each as a redacted :class:`Exchange` (see :meth:`ProviderClient.recording_client`)."""

    def __init__(self, owner: ProviderClient, record: Callable[[Exchange], None]) -> None:
        self._owner = owner
        self._record = record

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        r = self._owner.redactor
        raw = request.content.decode("utf-8", "replace") if request.content else ""
        parsed = _parse_json(raw) if raw else None
        stream = isinstance(parsed, dict) and parsed.get("stream") is True
        exchange = Exchange(
            method=request.method,
            url=r.text(str(request.url)),
            request_headers=r.headers(request.headers.multi_items()),
            request_body=r.data(parsed) if parsed is not None else (r.text(raw) or None),
            stream=stream,
            sent_key=self._owner._sends_key(request.headers),
        )
        exchange.evidence_chars = self._owner._limits.evidence
        self._record(exchange)
        # Only codings that can be inflated with a size bound (see ACCEPT_ENCODING).
        request.headers["accept-encoding"] = ACCEPT_ENCODING
        # A request slot (``concurrency:``) until the body is read or closed.
        slots = self._owner.slots
        await slots.acquire()
        try:
            response, started = await self._send(request, exchange)
        except BaseException:
            slots.release()
            raise
        events = stream and 200 <= response.status_code < 300
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in _ENCODING_HEADERS]
        return httpx.Response(
            response.status_code, headers=headers, extensions=response.extensions,
            stream=_RecordingStream(response, exchange, r, events, started,
                                    self._owner._limits, slots.release),
        )

    async def _send(self, request: httpx.Request, exchange: Exchange
                    ) -> tuple[httpx.Response, float]:
        """Send (with the provider's retries); the response and when the first attempt began."""
        r = self._owner.redactor
        started = time.perf_counter()
        attempts = 1 + max(0, self._owner.provider.retries)
        for attempt in range(1, attempts + 1):
            exchange.attempts = attempt
            try:
                response = await self._owner._client.send(request, stream=True)
                break
            except RETRY_ERRORS as exc:  # the client's own retries are off: these stand in
                if attempt < attempts:
                    await asyncio.sleep(_retry_delay(None, attempt))
                    continue
                failure: httpx.HTTPError = exc
            except httpx.HTTPError as exc:
                failure = exc
            exchange.elapsed_ms = (time.perf_counter() - started) * 1000
            exchange.error = r.text(f"{type(failure).__name__}: {failure}") or \
                type(failure).__name__
            raise failure
        exchange.first_byte_ms = (time.perf_counter() - started) * 1000
        exchange.status = response.status_code
        exchange.headers = r.headers(response.headers.multi_items())
        return response, started


class _RecordingStream(httpx.AsyncByteStream):
    """Passes a response body through, content-decoded, and completes its Exchange."""

    def __init__(self, response: httpx.Response, exchange: Exchange, redactor: Redactor,
                 events: bool, started: float, limits: Limits,
                 release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release
        self._response = response
        self._limits = limits
        self._exchange = exchange
        self._redactor = redactor
        self._decoder = SSEDecoder() if events else None
        self._started = started
        self._parts: list[str] = []
        self._data: list[str] = []
        self._size = 0
        self._done = False
        if events:
            exchange.events = []

    def _timed(self, data: str, event: str | None) -> TimedEvent:
        self._data.append(data)
        now = (time.perf_counter() - self._started) * 1000
        return TimedEvent(now, self._redactor.text(data), event)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limits, exchange = self._limits, self._exchange
        limit, what = ((limits.stream, "stream") if self._decoder is not None
                       else (limits.body, "response body"))
        key = "limits.stream" if self._decoder is not None else "limits.body"
        try:
            async for chunk in decoded_chunks(self._response, limit, what):
                if self._size <= limits.evidence + self._redactor.margin:
                    piece = chunk.decode("utf-8", "replace")
                    self._parts.append(piece)
                    self._size += len(piece)
                if self._decoder is not None and exchange.events is not None:
                    fed = self._decoder.feed(chunk)
                    if self._decoder.pending > limits.event or any(
                            len(e.data) > limits.event for e in fed):
                        raise Overflow(f"SSE line or event larger than "
                                       f"{size_text(limits.event)}: read stopped "
                                       f"(limits.event)")
                    exchange.events += [self._timed(e.data, e.event) for e in fed]
                    if len(exchange.events) > limits.events:
                        raise Overflow(f"stream longer than {limits.events} events: read "
                                       f"stopped (limits.events)")
                yield chunk
            self._give_back()  # read to its end: the provider is done with it
        except Overflow as exc:  # the third-party client sees a failed read; we record why
            message = str(exc) if "(limits." in str(exc) else f"{exc} ({key})"
            exchange.overflow = message
            if self._decoder is not None:
                self._decoder.discard()
            raise httpx.ReadError(message) from None
        except Undecodable as exc:  # as httpx's own decoders would tell the client
            exchange.overflow = str(exc)
            if self._decoder is not None:
                self._decoder.discard()
            raise httpx.DecodingError(str(exc)) from None
        except CUT_ERRORS as exc:  # the third-party client sees the failure; we record it
            _redact_stream(exchange, self._data, "".join(self._parts), self._redactor,
                           limits.evidence)
            exchange.cut = _cut_summary(exchange, exc, self._redactor)
            raise

    def _give_back(self) -> None:
        """Release the request slot (once)."""
        release, self._release = self._release, None
        if release is not None:
            release()

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            self._give_back()
        if self._done:
            return
        self._done = True
        exchange, r = self._exchange, self._redactor
        exchange.elapsed_ms = (time.perf_counter() - self._started) * 1000
        exchange.text, exchange.truncated = keep_text(r.text("".join(self._parts)),
                                                      self._limits.evidence)
        if exchange.overflow is not None:
            return
        if self._decoder is not None and exchange.events is not None:
            exchange.events += [self._timed(e.data, e.event) for e in self._decoder.close()]
            _redact_stream(exchange, self._data, "".join(self._parts), r, self._limits.evidence)
            exchange.sse_comments = self._decoder.comments
            exchange.trailing_data = self._decoder.trailing_garbage
            if not exchange.events and exchange.content_type == "application/json":
                exchange.json = _parse_json(exchange.text)
        else:
            exchange.json = _parse_json(exchange.text)
