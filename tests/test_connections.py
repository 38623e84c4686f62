"""The suite's HTTP/1.1 pool (conformance.connections) against raw servers on 127.0.0.1:
what httpx's default transport does for the same answers (reuse, faults, timeouts, limits)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from conformance.connections import ConnectionPool
from tests.rawserver import RawServer, read_request_head

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _pool(**kwargs: int) -> ConnectionPool:
    return ConnectionPool(ssl.create_default_context(), max_connections=kwargs.get("max", 4),
                          max_keepalive=kwargs.get("idle", 4))


def _run(server: RawServer, go: Callable[[httpx.AsyncClient], object], **kwargs: int
         ) -> object:
    async def main() -> object:
        async with httpx.AsyncClient(transport=_pool(**kwargs), timeout=2.0) as client:
            return await go(client)  # type: ignore[misc]

    try:
        return asyncio.run(main())
    finally:
        server.close()


def _keep_alive(conn: socket.socket, number: int) -> None:
    """Answers every request on the connection until the client closes it."""
    while read_request_head(conn):
        conn.sendall(OK)


def test_one_connection_serves_requests_one_after_another() -> None:
    server = RawServer(_keep_alive)

    async def go(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get(server.base_url + "/models")).text for _ in range(3)]

    assert _run(server, go) == ["ok", "ok", "ok"]
    assert server.connections == 1


def test_a_body_cut_short_is_a_protocol_error_and_the_connection_is_not_reused() -> None:
    def answer(conn: socket.socket, number: int) -> None:
        read_request_head(conn)
        if number == 1:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")
        else:
            conn.sendall(OK)

    server = RawServer(answer)

    async def go(client: httpx.AsyncClient) -> str:
        with pytest.raises(httpx.RemoteProtocolError, match="peer closed connection"):
            await client.get(server.base_url + "/models")
        return (await client.get(server.base_url + "/models")).text

    assert _run(server, go) == "ok"
    assert server.connections == 2


def test_an_answer_left_unread_closes_its_connection() -> None:
    def answer(conn: socket.socket, number: int) -> None:
        while read_request_head(conn):
            body = b"x" * 100_000
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + body)
            except OSError:
                return

    server = RawServer(answer)

    async def go(client: httpx.AsyncClient) -> int:
        async with client.stream("GET", server.base_url + "/models") as response:
            async for _ in response.aiter_raw():
                break  # stop reading: the rest of the body is still on the wire
        return len((await client.get(server.base_url + "/models")).content)

    assert _run(server, go) == 100_000
    assert server.connections == 2


def _read_then_hang_up(conn: socket.socket, number: int) -> None:
    read_request_head(conn)


def test_no_answer_at_all_is_a_disconnect() -> None:
    server = RawServer(_read_then_hang_up)

    async def go(client: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.RemoteProtocolError,
                           match="Server disconnected without sending a response"):
            await client.get(server.base_url + "/models")

    _run(server, go)


@pytest.mark.parametrize(("sent", "said"), [
    (b"SSH-2.0-OpenSSH_9.2\r\nProtocol mismatch.\r\n",
     "the server answered something that is not HTTP: b'SSH-2.0-OpenSSH_9.2"),
    (b"SSH-2.0", "the server answered something that is not HTTP: b'SSH-2.0', then closed"),
    (b"HTTP/1.1 200 O", "Server disconnected without sending a response."),
    (b"\x15\x03\x01\x00\x02\x02\x46", "the server answered in TLS, not plain HTTP (is the "
     "base_url https://?)"),
    (b"<html>hello</html>\r\n\r\n", "the server answered something that is not HTTP: "
     "b'<html>hello</html>"),
])
def test_an_answer_that_is_not_http_is_named(sent: bytes, said: str) -> None:
    """A base_url at another service's port (a banner), or an https:// server given as
    http:// (a TLS alert): said, not "disconnected without sending a response"."""
    def answer(conn: socket.socket, number: int) -> None:
        read_request_head(conn)
        conn.sendall(sent)

    server = RawServer(answer)

    async def go(client: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.RemoteProtocolError) as raised:
            await client.get(server.base_url + "/models")
        assert str(raised.value).startswith(said), str(raised.value)

    _run(server, go)


def test_a_reset_is_a_read_error() -> None:
    def answer(conn: socket.socket, number: int) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    server = RawServer(answer)

    async def go(client: httpx.AsyncClient) -> None:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(server.base_url + "/models")

    _run(server, go)


def test_silence_is_a_read_timeout() -> None:
    release = threading.Event()

    def answer(conn: socket.socket, number: int) -> None:
        read_request_head(conn)
        release.wait(5)

    server = RawServer(answer)

    async def go(client: httpx.AsyncClient) -> None:
        try:
            with pytest.raises(httpx.ReadTimeout, match="timed out reading"):
                await client.get(server.base_url + "/models", timeout=httpx.Timeout(0.2))
        finally:
            release.set()

    _run(server, go)


def test_a_caller_timeout_due_with_the_read_timeout_stays_the_callers() -> None:
    """The stream reader bounds each chunk with its own ``wait_for`` as long as the read
    timeout: when both expire together the caller sees its TimeoutError (a stalled stream),
    not the transport's ReadTimeout (fails without the cancelling() comparison)."""
    release = threading.Event()

    def answer(conn: socket.socket, number: int) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
        release.wait(5)

    server = RawServer(answer)

    async def go(client: httpx.AsyncClient) -> None:
        try:
            async with client.stream("GET", server.base_url + "/models",
                                     timeout=httpx.Timeout(0.3)) as response:
                chunks = response.aiter_raw()
                assert await chunks.__anext__() == b"ok"
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(chunks.__anext__(), 0.3)
        finally:
            release.set()

    _run(server, go)


def test_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        async with httpx.AsyncClient(transport=_pool()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/v1/models")

    asyncio.run(main())


def test_at_most_max_connections_and_a_wait_beyond_the_pool_timeout_fails() -> None:
    release = threading.Event()
    served: list[int] = []

    def answer(conn: socket.socket, number: int) -> None:
        read_request_head(conn)
        served.append(number)
        release.wait(5)
        conn.sendall(OK)

    server = RawServer(answer)

    async def go(client: httpx.AsyncClient) -> None:
        first = asyncio.ensure_future(client.get(server.base_url + "/models"))
        await asyncio.sleep(0.1)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(server.base_url + "/models",
                             timeout=httpx.Timeout(2.0, pool=0.2))
        waiting = asyncio.ensure_future(client.get(server.base_url + "/models"))
        await asyncio.sleep(0.1)
        assert served == [1]  # the third waits for the one connection
        release.set()
        assert (await first).text == "ok"
        assert (await waiting).text == "ok"

    _run(server, go, max=1, idle=1)


def test_informational_answers_are_skipped_and_trailing_bytes_end_reuse() -> None:
    def answer(conn: socket.socket, number: int) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK
                     + (b"GARBAGE" if number == 1 else b""))
        while read_request_head(conn):
            conn.sendall(OK)

    server = RawServer(answer)

    async def go(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get(server.base_url + "/models")).text for _ in range(2)]

    assert _run(server, go) == ["ok", "ok"]
    assert server.connections == 2


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_with_the_clients_context(tmp_path: Path) -> None:
    """TLS with the context handed to the pool: a certificate it trusts is accepted, one it
    does not is a connect error."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)

    def answer(conn: socket.socket, number: int) -> None:
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                while read_request_head(tls):
                    tls.sendall(OK)
        except (ssl.SSLError, OSError):
            return

    server = RawServer(answer)
    url = f"https://localhost:{server.port}/v1/models"
    trusting = ssl.create_default_context(cafile=str(cert))

    async def main() -> None:
        pool = ConnectionPool(trusting, max_connections=2, max_keepalive=2)
        async with httpx.AsyncClient(transport=pool) as client:
            assert [(await client.get(url)).text for _ in range(2)] == ["ok", "ok"]
        async with httpx.AsyncClient(transport=_pool()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(url)

    try:
        asyncio.run(main())
        assert server.connections == 2
    finally:
        server.close()


def test_a_proxied_provider_goes_through_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy in the environment, the provider client's requests go to the proxy (httpx's
    own proxy transport, ``trust_env``), not through the suite's pool to the host."""
    from conformance.transport import ProviderClient
    from tests.conftest import provider_config

    heads: list[bytes] = []

    def proxy(conn: socket.socket, number: int) -> None:
        heads.append(read_request_head(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2\r\n\r\n{}")

    server = RawServer(proxy)
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY",
                "https_proxy", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")

    async def get(base_url: str) -> int | None:
        client = ProviderClient(provider_config(base_url, "sk-proxy-123456"))
        try:
            return (await client.request("GET", "/models", retries=0)).status
        finally:
            await client.aclose()

    direct = RawServer(_keep_alive)
    try:
        assert asyncio.run(get("http://provider.invalid/v1")) == 200
        assert len(heads) == 1 and heads[0].startswith(b"GET http://provider.invalid/v1/models ")
        # A host NO_PROXY names is reached directly, through the suite's own pool.
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert asyncio.run(get(direct.base_url)) == 200
        assert len(heads) == 1 and direct.connections == 1
    finally:
        server.close()
        direct.close()


def test_a_body_ended_by_closing_the_connection_is_read_whole() -> None:
    """An answer without Content-Length or chunking ends where the server closes the
    connection (RFC 9112 §6.3): read whole, and the next request opens a new connection."""
    def answer(conn: socket.socket, number: int) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        conn.sendall(b"until ")
        conn.sendall(b"the end")

    server = RawServer(answer)

    async def go(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get(server.base_url + "/models")).text for _ in range(2)]

    assert _run(server, go) == ["until the end", "until the end"]
    assert server.connections == 2
