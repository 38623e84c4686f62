"""The one transport seam: every byte to and from a provider passes through here.

:class:`ProviderClient` wraps one ``httpx.AsyncClient`` per provider with the configured
timeouts (connect, read, whole request, stream stall) and retries, decodes event streams with
:mod:`conformance.sse`, and returns an :class:`Exchange` — the redacted record of one request and
its response (:mod:`conformance.exchange`) that checks judge and reports show as evidence.
httpx's exceptions are mapped to :class:`~conformance.errors.TransportError` here, once, with
secrets already removed.  A third-party client (the openai SDK) is given an httpx client whose
transport sends through this one (:meth:`ProviderClient.recording_client`,
:mod:`conformance.recording_transport`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from conformance import __version__
from conformance.bodies import (
    ACCEPT_ENCODING,
    Overflow,
    Undecodable,
    decode_text,
    decoded_chunks,
    keep_text,
    size_text,
)
from conformance.clientsetup import context_for, proxy_mounts, quick_cookies, quick_readable
from conformance.config import ProviderConfig
from conformance.connections import (
    FRESH_CONNECTION,
    HEAD_TOO_LARGE,
    ConnectionPool,
    MalformedBody,
    MalformedHead,
)
from conformance.errors import (
    ConnectFailed,
    MalformedAnswer,
    RequestTimeout,
    StreamStalled,
    TransportError,
)
from conformance.exchange import (
    Auth,
    Exchange,
    TimedEvent,
    cut_summary,
    redact_stream,
)
from conformance.loopwatch import LoopWatch
from conformance.redact import Redactor
from conformance.slots import Slots
from conformance.sse import SSEDecoder

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
USER_AGENT = f"conformance/{__version__} (+https://github.com/conformance)"


def malformed_text(exc: MalformedHead, redactor: Redactor) -> str:
    """The verdict on a response head that could not be read (:class:`MalformedAnswer`)."""
    detail = redactor.text(str(exc))
    if detail == HEAD_TOO_LARGE:  # a limit, as the body's: no head of an API answer is near it
        return detail
    return f"the answer is not HTTP/1.1 a client can read (RFC 9112): {detail}"


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


def retry_delay(response: httpx.Response | None, attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1-based); honours Retry-After up to 30 s."""
    if response is not None:
        asked = retry_after(response)
        if asked is not None:
            return min(RETRY_AFTER_CAP, asked)
    if response is None:  # a failure to connect: a short pause is enough to ride out a blip
        return float(min(2.0, 0.1 * 2 ** (attempt - 1) + random.random() * 0.05))
    return float(min(8.0, 0.5 * 2 ** (attempt - 1) + random.random() * 0.25))


#: How long a stream's body may stay open after its last event (``data: [DONE]``, a Messages
#: or Responses stream's final event) before reading stops: the stream is then complete and
#: judged (``Exchange.open_after_end``), where waiting for ``timeouts.stall`` would make it a
#: stall with no verdict.  Events that arrive meanwhile are kept (streaming.nothing_after_done).
END_GRACE = 3.0
#: The ``event:`` names that end a Messages or a Responses API stream.
FINAL_EVENTS = frozenset({"message_stop", "response.completed", "response.incomplete",
                          "response.failed"})


def final_event(data: str, event: str | None) -> str | None:
    """What names an event as a stream's last (None for any other event)."""
    if data.strip() == "[DONE]":
        return "data: [DONE]"
    if event in FINAL_EVENTS:
        return f"event: {event}"
    return None


def status_retry(response: httpx.Response, exchange: Exchange, deadline: float,
                 total: float) -> float | None:
    """The pause before sending again a request answered with a retried status
    (:data:`RETRY_STATUSES`), or None — with ``exchange.retry_stopped`` saying why — when
    its Retry-After asks for more than :data:`RETRY_AFTER_CAP` or the wait would pass the
    request's ``deadline`` (``timeouts.total``, every attempt included)."""
    asked = retry_after(response)
    pause = retry_delay(response, exchange.attempts)
    if exchange.out_of_credit:  # read when the body was (not yet for the openai SDK's)
        exchange.retry_stopped = ("not retried: out of balance or quota, which waiting does "
                                  "not change")
        return None
    if asked is not None and asked > RETRY_AFTER_CAP:
        exchange.retry_stopped = (f"not retried: Retry-After {asked:g}s exceeds "
                                  f"the {RETRY_AFTER_CAP:g}s the suite waits")
        return None
    if time.perf_counter() + pause >= deadline:
        exchange.retry_stopped = (f"not retried: waiting {pause:g}s would pass the request's "
                                  f"{total:g}s deadline (timeouts.total)")
        return None
    return pause


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
        quick_cookies(self._client)  # no urllib adapters for a response setting no cookie
        #: At most ``concurrency`` requests in flight (:mod:`conformance.slots`).
        self.slots = Slots(provider.concurrency)
        #: A copy of the last 429 this client received (retried or not), for the checks that
        #: judge rate limiting; rate limits cannot be provoked safely, only observed.
        self.rate_limited: Exchange | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    def recording_client(self, record: Callable[[Exchange], None], *,
                         retries: int | None = None) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` for a third-party client such as the official ``openai``
        SDK (``AsyncOpenAI(http_client=...)``), whose requests are retried as :meth:`request`
        retries (``retries``: default the provider's; 0 for a request that provokes a 429).

        Its requests go out through this provider's client (same pool, proxies and limits), and
        each is recorded like :meth:`request`'s: a redacted :class:`Exchange`, handed to
        ``record`` when the request is sent and completed as the response body is read (the
        events of a stream included).  The third-party client sees the body exactly as sent,
        content-decoded.  Closing the returned client leaves this one open.
        """
        from conformance.recording_transport import RecordingTransport  # only the sdk family

        t = self._timeouts
        client = httpx.AsyncClient(
            transport=RecordingTransport(self, record, retries),
            # Every request goes to the recording transport (which sends it through this
            # client, proxies from the environment included): no proxy mount of its own, and
            # no read of os.environ on the engine thread while pytest changes it.
            trust_env=False,
            headers=dict(self.provider.headers),
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.total),
            follow_redirects=False,
        )
        quick_cookies(client)
        return client

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
            except MalformedHead as exc:  # the provider answered wrongly: judged, not resent
                raise self._malformed(exc, exchange) from None
            except RETRY_ERRORS as exc:
                if exchange.first_byte_ms is not None and isinstance(exc, CUT_ERRORS):
                    broken = isinstance(exc, MalformedBody)  # the same every time: not resent
                    if attempt < attempts and not resent_cut and not broken:
                        resent_cut = True
                        exchange.restart()
                        continue
                    exchange.cut = cut_summary(exchange, exc, self.redactor, framing=broken,
                                               resent=resent_cut)
                    break
                pause = retry_delay(None, attempt)
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
                wait = status_retry(response, exchange, deadline, self._timeouts.total)
                if wait is not None:
                    await asyncio.sleep(wait)
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
                    exchange.read_json(text)
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
        #: When the stream's last event arrived (perf_counter), and which it was.
        ended: tuple[float, str] | None = None
        try:
            while True:
                wait = self._timeouts.stall
                if ended is not None:
                    wait = min(wait, max(0.0, ended[0] + END_GRACE - time.perf_counter()))
                try:
                    chunk = await asyncio.wait_for(iterator.__anext__(), timeout=wait)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if ended is not None:  # complete: judged as it stands, not a stall
                        waited = min(self._timeouts.stall, END_GRACE)  # at least this long
                        exchange.open_after_end = (
                            f"the body was still open {waited:g}s after {ended[1]}")
                        break
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
                for ev in fed if ended is None else ():
                    last = final_event(ev.data, ev.event)
                    if last is not None:
                        ended = (time.perf_counter(), last)
                        break
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
            whole = redact_stream(exchange, [e.data for e in events], "".join(raw_parts),
                                  self.redactor, limits.evidence)
        if exchange.overflow is not None:
            return
        exchange.sse_comments = decoder.comments
        exchange.trailing_data = decoder.trailing_garbage
        if not events and exchange.content_type == "application/json":
            # An error (or a whole completion) answered as plain JSON to a stream request.
            exchange.read_json(whole)

    def _malformed(self, exc: MalformedHead, exchange: Exchange) -> MalformedAnswer:
        """The finding for an answer whose head is not HTTP/1.1 a client can read."""
        finding = MalformedAnswer(malformed_text(exc, self.redactor))
        exchange.error = finding.message
        finding.exchange = exchange
        return finding

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
