"""The HTTP/1.1 connections the provider clients send through: an ``httpx`` transport built
on asyncio and h11 (RFC 9112 framing), without httpcore's pool.

Why not httpcore's: at every request and every response close, its pool walks all its
connections and, for each idle one, asks the socket whether the server closed it (a system
call that releases the GIL) and counts the connections again (quadratic in the pool size);
each read and write opens an anyio cancel scope.  At 20 providers of 32 connections that was a
third of the engine thread's CPU.  Here each connection is an :class:`asyncio.Protocol` that
keeps reading while idle, so the event loop tells it when the server hangs up; taking an idle
connection is a list pop, and timeouts are timer handles.

Behaviour kept from httpx's default transport (what the checks' verdicts rest on):
keep-alive with a 5 s idle expiry and at most ``max_keepalive`` idle connections; at most
``max_connections`` open, a request waiting for one at most the ``pool`` timeout; the
``connect``/``read``/``write``/``pool`` timeouts of the request's ``timeout`` extension; the
same ``httpx`` exceptions for the same faults (a refused connection is a
:class:`httpx.ConnectError`, silence a :class:`httpx.ReadTimeout`, a body cut short or a
malformed answer a :class:`httpx.RemoteProtocolError` with h11's words — a response head it
refuses as :class:`MalformedHead`, a provider's wrong answer rather than a network failure —
or, for an answer that does not begin as HTTP at all, words a user can act on: TLS records
from an https:// server given as http://, another service's banner).  A connection whose
answer was not read to its end, or that was cancelled, is closed, never reused.

Proxies are not this module's: :class:`~conformance.transport.ProviderClient` leaves a proxied
URL to httpx's own transports (:func:`conformance.clientsetup.proxy_mounts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import h11
import httpx

#: Idle connections older than this are closed, not reused (httpx's ``keepalive_expiry``).
KEEPALIVE_EXPIRY = 5.0
#: A request extension: ``True`` sends the request on a new connection, never an idle one.
#: For a request that may not be sent again (no retries): a server may close a kept-alive
#: connection at any moment (some right after an error answer, without ``Connection:
#: close``), and a request written just then fails before any answer.
FRESH_CONNECTION = "conformance.fresh_connection"
#: Reading from the socket pauses while this many bytes wait to be parsed.
READ_SIZE = 64 * 1024
#: The most a response head (or a chunk header) may take: httpcore's limit, so an answer
#: it read is read here too.
MAX_HEAD = 100 * 1024
HEAD_TOO_LARGE = f"response head larger than {MAX_HEAD // 1024} KiB: read stopped"

Origin = tuple[str, str, int]  # scheme, host, port


class MalformedHead(httpx.RemoteProtocolError):
    """An answer that began as HTTP (``HTTP/``) whose response head h11 refuses: an illegal
    status or header line, conflicting Content-Length headers, a head larger than
    :data:`MAX_HEAD`.  The provider answered wrongly: never sent again, and judged (the
    transport's :class:`~conformance.errors.MalformedAnswer`), not taken for a network
    failure."""


class MalformedBody(httpx.RemoteProtocolError):
    """A body whose HTTP/1.1 framing h11 refuses (an illegal chunk header, bytes where the
    chunked body's end should be): the provider's fault, the same on every attempt, so the
    body is judged as cut where it broke without being asked for again."""


class _Closed(Exception):
    """The connection ended before the answer began (see :meth:`_Connection.response`);
    its argument is the start of what the server sent instead of a response head, if any."""


def _not_http(sent: bytes) -> str:
    """What to say of an answer that does not begin as HTTP: TLS records (an https:// server
    given as http://), else its first bytes (a banner: the port is another service's)."""
    if sent[:1] in (b"\x15", b"\x16"):  # a TLS alert or handshake record
        return "the server answered in TLS, not plain HTTP (is the base_url https://?)"
    return f"the server answered something that is not HTTP: {sent[:40]!r}"


def _head_problem(exc: h11.RemoteProtocolError) -> str:
    """h11's words for a response head it refused, its buffer limit said as ours."""
    if str(exc) == "Receive buffer too long":
        return HEAD_TOO_LARGE
    return str(exc)


def _closed_message(sent: bytes) -> str:
    """What to say of a connection closed before a response head: httpcore's words when the
    server sent nothing (or the start of a head), else :func:`_not_http`."""
    if not sent or sent.startswith(b"HTTP/") or b"HTTP/".startswith(sent):
        return "Server disconnected without sending a response."
    return f"{_not_http(sent)}, then closed"


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: a protocol reading into a buffer, and an h11 state machine."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self.origin = origin
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self._buffer = bytearray()
        #: The first bytes received while waiting for a response head (for :class:`_Closed`).
        self._unparsed = b""
        self._eof = False
        #: The last read found the server's end closed (h11's error then is about a cut).
        self._closed_seen = False
        self._lost: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused = False
        #: When it last became idle (``time.monotonic()``); None while it answers a request.
        self.idle_since: float | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= READ_SIZE and self._transport is not None and \
                not self._transport.is_closing():
            self._transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._lost = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        if self._drained is None or self._drained.done():
            self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- state -----------------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        """Idle, open, not expired, and the server has said nothing since (no end, no stray
        bytes: either means it is closing)."""
        return (self.idle_since is not None and not self._eof and not self._buffer
                and self._transport is not None and not self._transport.is_closing()
                and time.monotonic() - self.idle_since < KEEPALIVE_EXPIRY)

    def close(self) -> None:
        self.idle_since = None
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close without waiting to flush (a cancelled or failed exchange)."""
        self.idle_since = None
        if self._transport is not None:
            self._transport.abort()

    # -- I/O -------------------------------------------------------------------------------
    async def _wait(self, future: asyncio.Future[None], timeout: float | None,
                    error: type[httpx.TimeoutException], what: str) -> None:
        if timeout is None:
            await future
            return
        # A cancellation from outside that meets the expiry (a caller's own timeout due at
        # the same moment) is the caller's: it stays a cancellation (as asyncio.timeout does).
        task = asyncio.current_task()
        outside = task.cancelling() if task is not None else 0
        expired = False

        def expire() -> None:
            nonlocal expired
            if not future.done():
                expired = True
                future.cancel()

        handle = self._loop.call_at(self._loop.time() + timeout, expire)
        try:
            await future
        except asyncio.CancelledError:
            if expired and (task is None or task.cancelling() <= outside):
                raise error(f"timed out {what} ({timeout:g} s)") from None
            raise
        finally:
            handle.cancel()

    async def _read(self, timeout: float | None) -> bytes:
        """What the server sent since the last read; b"" once it closed its end."""
        if not self._buffer and not self._eof:
            self._waiter = self._loop.create_future()
            try:
                await self._wait(self._waiter, timeout, httpx.ReadTimeout, "reading")
            finally:
                self._waiter = None
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            if self._paused and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
            return data
        if self._lost is not None:  # a reset: what httpcore reports as a read error too
            raise httpx.ReadError(_lost_message(self._lost))
        return b""

    async def _send(self, event: h11.Event, timeout: float | None) -> None:
        try:
            data = self._h11.send(event)
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        if not data:
            return
        if self._transport is None or self._transport.is_closing():
            raise httpx.WriteError(_lost_message(self._lost))
        self._transport.write(data)
        if self._drained is not None and not self._drained.done():
            await self._wait(self._drained, timeout, httpx.WriteTimeout, "writing")
            if self._transport.is_closing():
                raise httpx.WriteError(_lost_message(self._lost))

    async def _next_event(self, timeout: float | None) -> Any:
        while True:
            waiting = self._h11.their_state is h11.SEND_RESPONSE
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                if waiting and not self._unparsed.startswith(b"HTTP/"):
                    raise httpx.RemoteProtocolError(_not_http(self._unparsed)) from exc
                if waiting:
                    raise MalformedHead(_head_problem(exc)) from exc
                if not self._closed_seen:  # (h11 has put their state to ERROR by now)
                    raise MalformedBody(str(exc)) from exc
                raise httpx.RemoteProtocolError(str(exc)) from exc  # closed mid-body: a cut
            if event is not h11.NEED_DATA:
                return event
            data = await self._read(timeout)
            if not data and waiting:
                raise _Closed(self._unparsed)  # h11's words would be about its own states
            self._closed_seen = not data
            if waiting and len(self._unparsed) < 64:
                self._unparsed += data[:64]
            self._h11.receive_data(data)

    async def send_request(self, request: httpx.Request, timeouts: dict[str, Any]) -> None:
        self.idle_since = None
        write = timeouts.get("write")
        headers = list(request.headers.raw)
        await self._send(h11.Request(method=request.method, target=request.url.raw_path,
                                     headers=headers), write)
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for chunk in request.stream:
            if chunk:
                await self._send(h11.Data(data=chunk), write)
        await self._send(h11.EndOfMessage(), write)

    async def response(self, timeouts: dict[str, Any]) -> h11.Response:
        """The response head (informational responses skipped)."""
        read = timeouts.get("read")
        while True:
            event = await self._next_event(read)
            if isinstance(event, h11.Response):
                # h11 bounds only a head still incomplete: one that arrived whole in one read
                # may be larger, so its size is checked here, whatever the reads were
                if len(event.reason) + sum(len(n) + len(v) + 4 for n, v in event.headers) \
                        > MAX_HEAD - 16:
                    raise MalformedHead(HEAD_TOO_LARGE)
                return event
            if isinstance(event, h11.ConnectionClosed):
                raise _Closed(self._unparsed)
            # h11.InformationalResponse (100 Continue, 103 Early Hints): the answer follows

    async def body(self, timeouts: dict[str, Any]) -> AsyncIterator[bytes]:
        read = timeouts.get("read")
        while True:
            event = await self._next_event(read)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return

    def reusable(self) -> bool:
        """Whether the exchange ended cleanly with both sides willing to go on; if so, the
        connection is made ready for the next request."""
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE and \
                not self._h11.trailing_data[0]:  # bytes past the answer's end: not HTTP
            self._h11.start_next_cycle()
            self._unparsed = b""
            self.idle_since = time.monotonic()
            return self.usable
        return False


def _lost_message(exc: BaseException | None) -> str:
    return (str(exc) or type(exc).__name__) if exc is not None else "the connection closed"


class _Body(httpx.AsyncByteStream):
    """A response body: its connection goes back to the pool once the body was read to its
    end, and is closed if it was left unread or the reading failed."""

    def __init__(self, pool: ConnectionPool, connection: _Connection,
                 timeouts: dict[str, Any]) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._timeouts = timeouts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx.StreamClosed()
        try:
            async for chunk in connection.body(self._timeouts):
                yield chunk
        except BaseException:  # a fault, a cancellation, or the reader stopped early
            self._release()
            raise

    async def aclose(self) -> None:
        self._release()

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.release(connection)


class ConnectionPool(httpx.AsyncBaseTransport):
    """HTTP/1.1 connections per origin for one ``httpx.AsyncClient`` (see the module
    docstring); ``ssl_context`` is used for ``https`` URLs."""

    def __init__(self, ssl_context: ssl.SSLContext, *, max_connections: int,
                 max_keepalive: int) -> None:
        self._ssl = ssl_context
        self._max = max(1, max_connections)
        self._max_idle = max(0, max_keepalive)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._active: set[_Connection] = set()
        self._connecting = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False
        #: Requests written to the wire in full so far.
        self.sent = 0

    @property
    def connections(self) -> int:
        """Connections open now, idle or answering (tests read it)."""
        return len(self._active) + sum(len(idle) for idle in self._idle.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme}://'.")
        if self._closed:
            raise RuntimeError("the connection pool is closed")
        port = request.url.port or (443 if scheme == "https" else 80)
        origin: Origin = (scheme, request.url.host, port)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        connection = await self._acquire(origin, timeouts,
                                         fresh=bool(request.extensions.get(FRESH_CONNECTION)))
        try:
            # A server may answer (an early 4xx) and close before reading the whole body: its
            # answer is what counts (as in httpcore; without one, it "disconnected").
            with contextlib.suppress(httpx.WriteError):
                await connection.send_request(request, timeouts)
                self.sent += 1
            try:
                head = await connection.response(timeouts)
            except _Closed as closed:
                raise httpx.RemoteProtocolError(_closed_message(closed.args[0])) from None
        except BaseException:
            self._discard(connection)
            raise
        return httpx.Response(
            head.status_code,
            headers=head.headers.raw_items(),
            stream=_Body(self, connection, timeouts),
            extensions={"http_version": b"HTTP/" + head.http_version,
                        "reason_phrase": head.reason},
        )

    async def _acquire(self, origin: Origin, timeouts: dict[str, Any], *, fresh: bool = False
                       ) -> _Connection:
        """An idle connection to ``origin`` that is still good (unless ``fresh``), else a new
        one (waiting for room under ``max_connections`` at most the pool timeout)."""
        idle = None if fresh else self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable:
                self._active.add(connection)
                return connection
            connection.close()
        await self._room(timeouts.get("pool"))
        self._connecting += 1
        try:
            connection = await self._connect(origin, timeouts.get("connect"))
        finally:
            self._connecting -= 1
            self._wake_one()
        self._active.add(connection)
        return connection

    async def _room(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.connections + self._connecting >= self._max:
            if self._close_one_idle():
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                await asyncio.wait_for(waiter, left)
            except TimeoutError:
                raise httpx.PoolTimeout(
                    f"no connection free within the pool timeout ({timeout:g} s)") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _close_one_idle(self) -> bool:
        oldest: tuple[float, Origin] | None = None
        for origin, idle in self._idle.items():
            if idle and idle[0].idle_since is not None and \
                    (oldest is None or idle[0].idle_since < oldest[0]):
                oldest = (idle[0].idle_since, origin)
        if oldest is None:
            return False
        self._idle[oldest[1]].pop(0).close()
        return True

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        connection = _Connection(loop, origin)
        tls = scheme == "https"
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: connection, host, port,
                    ssl=self._ssl if tls else None,
                    server_hostname=host if tls else None,
                    happy_eyeballs_delay=0.25,
                    ssl_handshake_timeout=timeout if tls and timeout else None)
        except TimeoutError:
            connection.abort()
            raise httpx.ConnectTimeout(f"timed out connecting ({timeout:g} s)") from None
        except OSError as exc:  # refused, unreachable, unknown host, TLS (ssl.SSLError)
            connection.abort()
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        return connection

    def release(self, connection: _Connection) -> None:
        """A body's end: the connection goes back to idle if it may be reused."""
        self._active.discard(connection)
        if not self._closed and connection.reusable():
            idle = self._idle.setdefault(connection.origin, [])
            idle.append(connection)
            if sum(len(i) for i in self._idle.values()) > self._max_idle:
                self._close_one_idle()
        else:  # unread, failed, or the server closes it: never reused
            connection.abort()
        self._wake_one()

    def _discard(self, connection: _Connection) -> None:
        self._active.discard(connection)
        connection.abort()
        self._wake_one()

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        for connection in list(self._active):
            connection.abort()
        self._active.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(httpx.PoolTimeout("the connection pool was closed"))
        self._waiters.clear()
