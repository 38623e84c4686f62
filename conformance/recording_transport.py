"""The httpx transport a third-party client (the official ``openai`` SDK) is given: its
requests go out through a :class:`~conformance.transport.ProviderClient` (the provider's pool,
request slots, retries, proxies and limits) and each is recorded as a redacted
:class:`~conformance.exchange.Exchange`, completed as the client reads the body.

Built by :meth:`ProviderClient.recording_client` for the sdk family only.  The client sees the
body as sent, content-decoded; an exceeded limit or an undecodable body reaches it as httpx's
``ReadError``/``DecodingError`` and is recorded on the exchange (``overflow``), a cut body as
the read error it was (``cut``).  It is the transport's friend: it sends through the
provider client's httpx client and reads its limits and key test.  This module never imports
pytest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx

from conformance import transport
from conformance.bodies import (
    ACCEPT_ENCODING,
    Overflow,
    Undecodable,
    decoded_chunks,
    keep_text,
    size_text,
)
from conformance.config import Limits
from conformance.connections import MalformedBody, MalformedHead
from conformance.exchange import Exchange, TimedEvent, cut_summary, parse_json, redact_stream
from conformance.redact import Redactor
from conformance.sse import SSEDecoder
from conformance.transport import (
    CUT_ERRORS,
    RETRY_ERRORS,
    RETRY_STATUSES,
    ProviderClient,
    retry_delay,
    status_retry,
)

#: Response headers that no longer describe the body once it has been content-decoded.
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class RecordingTransport(httpx.AsyncBaseTransport):
    """Sends a third-party client's requests through a :class:`ProviderClient` and records
    each as a redacted :class:`Exchange` (see :meth:`ProviderClient.recording_client`)."""

    def __init__(self, owner: ProviderClient, record: Callable[[Exchange], None],
                 retries: int | None = None) -> None:
        self._owner = owner
        self._record = record
        self._retries = owner.provider.retries if retries is None else retries

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        r = self._owner.redactor
        raw = request.content.decode("utf-8", "replace") if request.content else ""
        parsed = parse_json(raw) if raw else None
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
            stream=RecordingStream(response, exchange, r, events, started,
                                    self._owner._limits, slots.release),
        )

    async def _send(self, request: httpx.Request, exchange: Exchange
                    ) -> tuple[httpx.Response, float]:
        """Send (with the provider's retries, as the suite's own requests: a failure to
        connect, a 429 within ``timeouts.total``); the response and when its attempt began
        (the exchange's times are the answer's own, as the suite's requests record them)."""
        r = self._owner.redactor
        deadline = time.perf_counter() + self._owner._timeouts.total
        attempts = 1 + max(0, self._retries)
        for attempt in range(1, attempts + 1):
            exchange.attempts = attempt
            started = time.perf_counter()
            try:
                response = await self._owner._client.send(request, stream=True)
                if response.status_code not in RETRY_STATUSES or attempt == attempts:
                    break
                pause = status_retry(response, exchange, deadline, self._owner._timeouts.total)
                if pause is None:
                    break
                await response.aclose()
                await asyncio.sleep(pause)
                continue
            except MalformedHead as exc:  # the provider answered wrongly: not sent again
                failure: httpx.HTTPError = exc
            except RETRY_ERRORS as exc:  # the client's own retries are off: these stand in
                if attempt < attempts:
                    await asyncio.sleep(retry_delay(None, attempt))
                    continue
                failure = exc
            except httpx.HTTPError as exc:
                failure = exc
            exchange.elapsed_ms = (time.perf_counter() - started) * 1000
            exchange.error = r.text(f"{type(failure).__name__}: {failure}") or \
                type(failure).__name__
            raise failure
        exchange.first_byte_ms = (time.perf_counter() - started) * 1000
        exchange.status = response.status_code
        exchange.headers = r.headers(response.headers.multi_items())
        if response.status_code == 429:  # for sdk.rate_limit; its body fills in as it is read
            self._owner.rate_limited = exchange
        return response, started


class RecordingStream(httpx.AsyncByteStream):
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
        chunks = decoded_chunks(self._response, limit, what)
        #: When the stream's last event arrived, and which (see transport.END_GRACE).
        ended: tuple[float, str] | None = None
        try:
            while True:
                try:
                    if ended is None:
                        chunk = await chunks.__anext__()
                    else:
                        left = max(0.0, ended[0] + transport.END_GRACE - time.perf_counter())
                        chunk = await asyncio.wait_for(chunks.__anext__(), timeout=left)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    # The client reads on although the stream is complete (the openai SDK
                    # does after a Responses stream's last event): it would wait for its own
                    # timeout; it is told now, and the check says why.
                    assert ended is not None  # only then is the read timed
                    exchange.open_after_end = (f"the body was still open "
                                               f"{transport.END_GRACE:g}s after {ended[1]}")
                    raise httpx.ReadError(exchange.open_after_end) from None
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
                    for e in fed if ended is None else ():
                        last = transport.final_event(e.data, e.event)
                        if last is not None:
                            ended = (time.perf_counter(), last)
                            break
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
            redact_stream(exchange, self._data, "".join(self._parts), self._redactor,
                           limits.evidence)
            exchange.cut = cut_summary(exchange, exc, self._redactor,
                                       framing=isinstance(exc, MalformedBody))
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
        joined = "".join(self._parts)
        if exchange.overflow is None and self._decoder is not None \
                and exchange.events is not None:
            exchange.events += [self._timed(e.data, e.event) for e in self._decoder.close()]
            whole = redact_stream(exchange, self._data, joined, r, self._limits.evidence)
            exchange.sse_comments = self._decoder.comments
            exchange.trailing_data = self._decoder.trailing_garbage
            if not exchange.events and exchange.content_type == "application/json":
                exchange.read_json(whole)
            return
        whole = r.text(joined)
        exchange.text, exchange.truncated = keep_text(whole, self._limits.evidence)
        if exchange.overflow is None:  # the whole body, not the evidence cut of it
            exchange.read_json(whole)
