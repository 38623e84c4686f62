"""The transport seam against real servers on 127.0.0.1: timeouts, stalls, retries, exception
mapping and redaction at the boundary."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from types import MappingProxyType

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conformance.config import ProviderConfig, Timeouts
from conformance.errors import ConnectFailed, RequestTimeout, StreamStalled
from conformance.exchange import Exchange
from conformance.redact import Redactor
from conformance.reference.server import ThreadedServer
from conformance.reference.streaming import CutStream
from conformance.transport import ProviderClient
from tests.conftest import provider_config
from tests.rawserver import RawServer, read_request_head

KEY = "sk-transport-test-5f0c2e9a7b"
HEADER_SECRET = "hdr-secret-31415926"
calls: dict[str, int] = {}


async def echo(request: Request) -> Response:
    """Echoes the credentials back, as careless providers do in error messages."""
    auth = request.headers.get("authorization", "")
    return JSONResponse(
        {"error": {"message": f"Invalid key {auth.removeprefix('Bearer ')}", "type": "x",
                   "param": None, "code": None}, "seen": request.headers.get("x-secret")},
        status_code=401, headers={"x-debug-key": auth},
    )


async def flaky(request: Request) -> Response:
    name = request.path_params["name"]
    calls[name] = calls.get(name, 0) + 1
    if name == "always" or calls[name] < 3:
        return JSONResponse({"error": {"message": "slow down"}}, status_code=429,
                            headers={"retry-after": "0"})
    return JSONResponse({"ok": True, "attempt": calls[name]})


async def stall(request: Request) -> Response:
    async def body() -> Iterator[bytes]:  # type: ignore[misc]
        yield b'data: {"n": 1}\n\n'
        await asyncio.sleep(3)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")


async def held_open(request: Request) -> Response:
    """A complete stream whose body is then left open (``/held/<kind>``): after data: [DONE],
    after a Messages stream's message_stop, or (``none``) with no final event at all."""
    kind = request.path_params["kind"]
    last = {"done": b"data: [DONE]\n\n",
            "message_stop": b'event: message_stop\ndata: {"type": "message_stop"}\n\n',
            "none": b""}[kind]

    async def body() -> Iterator[bytes]:  # type: ignore[misc]
        yield b'data: {"n": 1}\n\n' + last
        await asyncio.sleep(0.2)
        yield b": still here\n\n"
        await asyncio.sleep(60)

    return StreamingResponse(body(), media_type="text/event-stream")


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return JSONResponse({"late": True})


async def cut(request: Request) -> Response:
    """``/cut/<name>/<times>``: the first ``times`` calls are cut after one event."""
    name, times = request.path_params["name"], int(request.path_params["times"])
    calls[name] = calls.get(name, 0) + 1
    events = [b'data: {"n": 1}\n\n', b'data: {"n": 2}\n\n', b"data: [DONE]\n\n"]
    if request.headers.get("accept") != "text/event-stream":
        if calls[name] <= times:
            return CutStream([b'{"choices": [{"ind'], "application/json", {})
        return JSONResponse({"choices": [], "attempt": calls[name]})
    if calls[name] <= times:
        return CutStream(events[:1], "text/event-stream", {})
    return StreamingResponse(iter(events), media_type="text/event-stream")


async def sse_as_json(request: Request) -> Response:
    return JSONResponse({"error": {"message": "streaming unsupported"}}, status_code=200)


APP = Starlette(routes=[
    Route("/v1/echo", echo, methods=["POST", "GET"]),
    Route("/v1/flaky/{name}", flaky),
    Route("/v1/stall", stall, methods=["POST"]),
    Route("/v1/held/{kind}", held_open, methods=["POST"]),
    Route("/v1/slow", slow),
    Route("/v1/json", sse_as_json, methods=["POST"]),
    Route("/v1/cut/{name}/{times:int}", cut, methods=["POST"]),
])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with ThreadedServer(APP) as server:
        yield f"http://127.0.0.1:{server.port}/v1"


def provider(base_url: str, **overrides: object) -> ProviderConfig:
    values: dict[str, object] = {
        "retries": 2, "timeouts": Timeouts(connect=2, read=2, total=5, stall=0.5),
        "headers": MappingProxyType({"x-secret": HEADER_SECRET}),
        "secrets": (KEY, HEADER_SECRET), **overrides}
    return provider_config(base_url, KEY, **values)


def send(config: ProviderConfig, method: str, path: str, **kwargs: object) -> Exchange:
    async def go() -> Exchange:
        client = ProviderClient(config)
        try:
            return await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_secrets_echoed_by_the_provider_are_redacted(base_url: str) -> None:
    exchange = send(provider(base_url), "POST", "/echo", json_body={"hello": KEY})
    evidence = repr(exchange.to_evidence())
    assert KEY not in evidence and HEADER_SECRET not in evidence
    assert exchange.request_headers["authorization"] == "Bearer ***"
    assert exchange.headers["x-debug-key"] == "Bearer ***"
    assert exchange.json["error"]["message"] == "Invalid key ***"
    assert exchange.json["seen"] == "***"
    assert exchange.request_body == {"hello": "***"}


def test_429_is_retried_honouring_retry_after(base_url: str) -> None:
    exchange = send(provider(base_url), "GET", "/flaky/ok")
    assert exchange.status == 200 and exchange.attempts == 3
    assert exchange.json == {"ok": True, "attempt": 3}


def test_429_after_all_retries_is_returned_as_is(base_url: str) -> None:
    exchange = send(provider(base_url, retries=1), "GET", "/flaky/always")
    assert exchange.status == 429 and exchange.attempts == 2


def test_stream_stall_is_a_transport_error_with_what_arrived(base_url: str) -> None:
    with pytest.raises(StreamStalled, match=r"no data for 0.5s after 1 events") as info:
        send(provider(base_url), "POST", "/stall", json_body={}, stream=True)
    exchange = info.value.exchange
    assert isinstance(exchange, Exchange) and exchange.events and exchange.events[0].data


@pytest.mark.parametrize(("kind", "said"), [("done", "data: [DONE]"),
                                            ("message_stop", "event: message_stop")])
def test_a_stream_left_open_after_its_last_event_is_complete_not_stalled(
        base_url: str, kind: str, said: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its events are judged (streaming.nothing_after_done says the body stayed open); what
    arrives within the grace is still read.  Without a final event it is a stall, as before."""
    monkeypatch.setattr("conformance.transport.END_GRACE", 0.6)
    config = provider(base_url, timeouts=Timeouts(connect=2, read=2, total=20, stall=10))
    started = time.monotonic()
    exchange = send(config, "POST", f"/held/{kind}", json_body={}, stream=True)
    assert time.monotonic() - started < 5
    assert exchange.open_after_end == f"the body was still open 0.6s after {said}"
    assert exchange.sse_comments == 1  # the comment 0.2 s after the last event was read
    assert exchange.to_evidence()["response"]["open_after_end"] == exchange.open_after_end
    # A stall shorter than the grace ends the wait first: the message says what is known.
    quick = provider(base_url, timeouts=Timeouts(connect=2, read=2, total=20, stall=0.4))
    assert send(quick, "POST", f"/held/{kind}", json_body={}, stream=True
                ).open_after_end == f"the body was still open 0.4s after {said}"
    with pytest.raises(StreamStalled, match=r"no data for 0.5s after 1 events"):
        send(provider(base_url), "POST", "/held/none", json_body={}, stream=True)


def test_whole_request_timeout(base_url: str) -> None:
    config = provider(base_url, retries=0, timeouts=Timeouts(connect=2, read=10, total=0.5,
                                                             stall=10))
    with pytest.raises(RequestTimeout, match="no complete answer after"):
        send(config, "GET", "/slow")


def test_connection_refused_maps_to_connect_failed_without_secrets() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = provider(f"http://127.0.0.1:{port}/v1", retries=1)
    with pytest.raises(ConnectFailed) as info:
        send(config, "GET", "/models")
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "after 2 attempts" in message
    assert KEY not in message


def test_stream_request_answered_with_json_keeps_the_body(base_url: str) -> None:
    exchange = send(provider(base_url), "POST", "/json", json_body={}, stream=True)
    assert exchange.events == []
    assert exchange.json == {"error": {"message": "streaming unsupported"}}


def test_redactor_first_character_in_every_case_form() -> None:
    """The redactor's patterns begin with an exact-case literal (for speed); a secret's first
    letter is still matched in every form case-insensitive matching gives it: both cases, and
    the Unicode folds of i, k and s (fails when those are left out of redact._FOLDS)."""
    for secret, forms in (("sk-fold-123456", ["SK-FOLD-123456", "\u017fk-fold-123456"]),
                          ("key-fold-123456", ["\u212aey-fold-123456", "KEY-FOLD-123456"]),
                          ("id-fold-123456", ["\u0130d-fold-123456", "\u0131d-fold-123456"]),
                          ("é-fold-123456", ["É-FOLD-123456"]),
                          ("7-fold-123456", ["%37-fold-123456", "&#55;-FOLD-123456"])):
        r = Redactor([secret])
        for form in [secret, *forms]:
            assert r.text(f"<{form}>") == "<***>", (secret, form)
    assert Redactor(["sk-fold-123456"]).text("tk-fold-123456") == "tk-fold-123456"


def test_redactor_masks_json_escaped_and_header_forms() -> None:
    r = Redactor(["sk-a/b\"c", "short"])
    assert r.text('{"k": "sk-a/b\\"c"}') == '{"k": "***"}'  # as it appears inside JSON
    assert r.text('key sk-a/b"c end') == "key *** end"
    assert r.text("short") == "short"  # below the minimum length: not substituted in text
    assert r.headers({"Authorization": "Bearer x", "api-key": "y", "X-Other": "sk-a/b\"c"}) == {
        "authorization": "Bearer ***", "api-key": "***", "x-other": "***"}


def test_usage_reads_anthropic_counts() -> None:
    """Token totals count the Messages API too: input/output_tokens, in a stream split over
    message_start and message_delta, are also given under OpenAI's names."""
    from conformance.exchange import TimedEvent

    def exchange(**fields: object) -> Exchange:
        return Exchange(method="POST", url="u", request_headers={}, request_body=None,
                        stream=False, **fields)  # type: ignore[arg-type]

    body = exchange(json={"type": "message", "usage": {"input_tokens": 7, "output_tokens": 2}})
    assert body.usage() == {"input_tokens": 7, "output_tokens": 2, "prompt_tokens": 7,
                            "completion_tokens": 2, "total_tokens": 9}
    events = [
        TimedEvent(1, '{"type":"message_start","message":{"usage":{"input_tokens":7,'
                      '"output_tokens":1}}}', "message_start"),
        TimedEvent(2, '{"type":"message_delta","delta":{},"usage":{"output_tokens":3}}',
                   "message_delta"),
    ]
    stream = exchange(events=events)
    assert stream.to_evidence()["usage"] == {"prompt_tokens": 7, "completion_tokens": 3,
                                             "total_tokens": 10}
    openai = exchange(json={"usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                      "total_tokens": 2}})
    assert openai.usage() == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}


def test_a_cut_stream_is_sent_again_once_and_then_served(base_url: str) -> None:
    exchange = send(provider(base_url), "POST", "/cut/once/1", json_body={}, stream=True)
    assert exchange.cut is None and exchange.attempts == 2
    assert [e.data for e in exchange.data_events()] == ['{"n": 1}', '{"n": 2}', "[DONE]"]


def test_a_stream_cut_twice_is_returned_with_what_arrived(base_url: str) -> None:
    """Not an error: the partial stream is the evidence of a finding (checks judge it)."""
    exchange = send(provider(base_url), "POST", "/cut/twice/9", json_body={}, stream=True)
    assert exchange.status == 200 and exchange.attempts == 2
    assert exchange.cut and "connection closed after" in exchange.cut
    assert "(the retry too)" in exchange.cut
    assert [e.data for e in exchange.data_events()] == ['{"n": 1}']
    assert exchange.to_evidence()["cut"] == exchange.cut
    assert calls["twice"] == 2  # sent again once, never more


def test_a_cut_body_is_returned_with_what_arrived(base_url: str) -> None:
    exchange = send(provider(base_url), "POST", "/cut/body/9", json_body={})
    assert exchange.cut and exchange.text == '{"choices": [{"ind' and exchange.json is None


def test_without_retries_a_cut_stream_is_not_sent_again(base_url: str) -> None:
    exchange = send(provider(base_url, retries=0), "POST", "/cut/noretry/9", json_body={},
                    stream=True)
    assert exchange.cut and exchange.attempts == 1 and calls["noretry"] == 1


def test_redactor_masks_data_nested_deeper_than_the_recursion_limit() -> None:
    """A provider's JSON may nest arbitrarily deep; masking it never recurses per level."""
    deep: object = {"key": "sk-a/b\"c"}
    for _ in range(100_000):
        deep = [deep]
    masked = Redactor(["sk-a/b\"c"]).data({"a": deep, "t": ("sk-a/b\"c",)})
    node = masked["a"]
    for _ in range(100_000):
        node = node[0]
    assert node == {"key": "***"} and masked["t"] == ["***"]


def _answer_then_hang_up(conn: socket.socket, number: int) -> None:
    """Answer one request, then close the connection without saying so (no
    ``Connection: close``): the client's pool must notice the idle connection is dead (its
    socket reads as readable: the end) and open a new one for the next request."""
    read_request_head(conn)
    body = b'{"object": "list", "data": []}'
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _answered_after_hang_ups(get: Callable[[str], Awaitable[int | None]],
                             close: Callable[[], Awaitable[None]]) -> None:
    """Three requests through ``get`` (base URL in, status out) to a server that hangs up
    after each answer, then ``close``: each is answered, each on a new connection."""
    server = RawServer(_answer_then_hang_up)

    async def go() -> list[int | None]:
        statuses = []
        for _ in range(3):
            statuses.append(await get(server.base_url))
            await asyncio.sleep(0.05)  # the server has closed its end by now
        await close()
        return statuses

    try:
        assert asyncio.run(go()) == [200, 200, 200]
        assert server.connections == 3
    finally:
        server.close()


def test_the_pool_drops_a_connection_the_server_closed() -> None:
    """The provider client's own pool (conformance.connections) tells a connection the server
    closed while it was idle: each request after the server hung up goes out on a new
    connection and is answered."""
    from conformance.connections import ConnectionPool

    clients: list[ProviderClient] = []

    async def get(base_url: str) -> int | None:
        if not clients:
            clients.append(ProviderClient(provider_config(base_url, KEY)))
        pool = clients[0]._client._transport
        assert isinstance(pool, ConnectionPool)
        # retries=1: a request that may be sent again reuses idle connections (one that may
        # not goes out on a new one), and its one attempt shows the pool saw the hang-up
        exchange = await clients[0].request("GET", "/models", retries=1)
        assert exchange.attempts == 1
        return exchange.status

    async def close() -> None:
        await clients[0].aclose()

    _answered_after_hang_ups(get, close)


def _answer_then_hang_up_late(conn: socket.socket, number: int) -> None:
    """Answer one request, wait, then close the connection without saying so, a request
    written meanwhile unread (the kernel answers it with a reset): a relay that closes its
    end only after logging an error, say."""
    _answer_then_hang_up(conn, number)
    time.sleep(0.3)


def test_https_to_a_plain_http_server_says_so(base_url: str) -> None:
    """The commonest base_url mistake, https:// for a plain HTTP server, is named in the one
    line the user reads (OpenSSL's own words are "wrong version number")."""
    with pytest.raises(ConnectFailed, match=r"WRONG_VERSION_NUMBER.*\(the server does not speak "
                       r"TLS there: is the base_url http://\?\)"):
        send(provider(base_url.replace("http://", "https://"), retries=0), "GET", "/models")


def test_a_request_that_may_not_be_resent_goes_out_on_a_new_connection() -> None:
    """With retries=0 (the fidelity checks' armed requests) nothing may be sent twice, so a
    kept-alive connection the server is closing must not be written to: fails without
    conformance.connections.FRESH_CONNECTION (the second request meets a reset)."""
    server = RawServer(_answer_then_hang_up_late)

    async def go() -> list[int | None]:
        client = ProviderClient(provider_config(server.base_url, KEY))
        try:
            first = await client.request("GET", "/models", retries=0)
            await asyncio.sleep(0.1)  # the server has not closed its end yet
            second = await client.request("GET", "/models", retries=0)
            return [first.status, second.status]
        finally:
            await client.aclose()

    try:
        assert asyncio.run(go()) == [200, 200]
        assert server.connections == 2
    finally:
        server.close()


def test_quick_readable_tells_a_closed_connection_to_httpcore() -> None:
    """A proxied provider's requests go through httpcore's pools (httpx's proxy mounts), which
    get the quick readability test (conformance.clientsetup.quick_readable): it tells a
    connection the server closed, so each request goes out on a new one and is answered
    (fails when the test always says "open": the second request meets a closed socket)."""
    import httpx

    from conformance.clientsetup import QuickReadable, quick_readable

    client = httpx.AsyncClient()
    quick_readable(client)
    assert isinstance(client._transport._pool._network_backend,  # type: ignore[attr-defined]
                      QuickReadable)

    async def get(base_url: str) -> int:
        return (await client.get(base_url + "/models")).status_code

    _answered_after_hang_ups(get, client.aclose)


def test_a_cookie_a_provider_sets_is_kept_and_sent_back() -> None:
    """The provider clients keep httpx's cookie behaviour with the quicker store
    (conformance.clientsetup.QuickCookies): a relay's ``Set-Cookie`` (a CDN's bot cookie,
    say) is stored and sent with the next request, on the suite's client and on the one the
    openai SDK is given.  Fails if the store skipped the header it looks for (no ``cookie``
    on the second request)."""
    from conformance.clientsetup import QuickCookies

    heads: list[bytes] = []

    def answer(conn: socket.socket, number: int) -> None:
        heads.append(read_request_head(conn).lower())
        cookie = b"set-cookie: relay_session=abc123; Path=/\r\n" if number in (1, 3) else b""
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + cookie
                     + b"content-length: 2\r\nconnection: close\r\n\r\n{}")

    server = RawServer(answer)

    async def go() -> None:
        client = ProviderClient(provider_config(server.base_url, KEY))
        try:
            assert isinstance(client._client.cookies, QuickCookies)
            await client.request("GET", "/models", retries=0)  # sets the cookie
            await client.request("GET", "/models", retries=0)  # sends it back
            sdk_side = client.recording_client(lambda exchange: None)
            assert isinstance(sdk_side.cookies, QuickCookies)
            await sdk_side.get(server.base_url + "/models")  # sets it on the SDK's client
            await sdk_side.get(server.base_url + "/models")
            assert [c.name for c in sdk_side.cookies.jar] == ["relay_session"]
            await sdk_side.aclose()
        finally:
            await client.aclose()

    try:
        asyncio.run(go())
        assert b"cookie: relay_session=abc123" not in heads[0]
        assert b"cookie: relay_session=abc123" in heads[1]
        assert b"cookie: relay_session=abc123" in heads[3]
    finally:
        server.close()


def test_a_cut_after_a_retried_hang_up_does_not_claim_the_retry_was_cut() -> None:
    """"(the retry too)" says a cut answer was asked for again and cut again.  When the first
    attempt got no answer at all (the server closed the connection: resent, as nothing was
    read) and the second one's body broke, the cut is the second attempt's alone (fails when
    the summary counted attempts: a relay that drops one connection looked like it had cut
    the same answer twice)."""
    def answer(conn: socket.socket, number: int) -> None:
        read_request_head(conn)
        if number == 1:
            return  # closed without a word: retried, nothing was read
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n"
                     b"10\r\ndata: {\"n\": 1}\n\n\r\nzz\r\n")

    server = RawServer(answer)
    try:
        exchange = send(provider(server.base_url, retries=2), "POST", "/chat/completions",
                        json_body={}, stream=True)
    finally:
        server.close()
    assert exchange.attempts == 2 and exchange.cut is not None, exchange.cut
    assert "HTTP/1.1 framing broken after" in exchange.cut
    assert "(the retry too)" not in exchange.cut
