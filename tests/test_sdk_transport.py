"""The official openai SDK talks through the transport seam: its traffic is recorded as
redacted exchanges (bodies content-decoded, stream events timed), retried like the suite's own
requests on a reset connection or a 429, and a 429 it is left with is remembered for the
rate-limit check."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conformance.config import Limits, ProviderConfig, Timeouts
from conformance.exchange import Exchange
from conformance.reference.server import ThreadedServer
from conformance.transport import ProviderClient
from tests.conftest import provider_config
from tests.rawserver import RawServer

KEY = "sk-sdk-transport-test-8d1e77c2"
T = TypeVar("T")

COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris",
                                         "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
}

#: Requests seen per rate-limited model name.
SEEN: dict[str, int] = {}


async def completions(request: Request) -> Response:
    body = await request.json()
    if request.headers.get("authorization") != f"Bearer {KEY}":
        return JSONResponse({"error": {"message": f"bad key {request.headers['authorization']}",
                                       "type": "invalid_request_error", "param": None,
                                       "code": "invalid_api_key"}}, 401)
    model = str(body.get("model"))
    if model.startswith("busy"):  # busy: always; busy-N: the first N times; busy-long: 1 h
        SEEN[model] = SEEN.get(model, 0) + 1
        limit = int(model.split("-")[1]) if model[5:].isdigit() else None
        if limit is None or SEEN[model] <= limit:
            return JSONResponse(
                {"error": {"message": "Rate limit reached", "type": "requests",
                           "param": None, "code": "rate_limit_exceeded"}}, 429,
                headers={"retry-after": "3600" if model == "busy-long" else "0"})
    if body.get("stream"):
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data)}\n\n".encode()

        async def events() -> Any:
            yield b": keep-alive\n\n"
            yield chunk({"role": "assistant", "content": ""})
            for piece in ("1, ", "2"):
                yield chunk({"content": piece})
            yield chunk({}, "stop")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    if model == "long":  # a body longer than the test's limits.evidence
        return JSONResponse({**COMPLETION, "choices": [{
            **COMPLETION["choices"][0], "message": {"role": "assistant", "content": "x" * 9000,
                                                    "refusal": None}}]})
    return Response(gzip.compress(json.dumps(COMPLETION).encode()), 200,
                    media_type="application/json", headers={"content-encoding": "gzip"})


APP = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with ThreadedServer(APP) as server:
        yield f"http://127.0.0.1:{server.port}/v1"


def provider(base_url: str, **overrides: object) -> ProviderConfig:
    values: dict[str, object] = {
        "retries": 1, "timeouts": Timeouts(connect=2, read=5, total=10, stall=5), **overrides}
    return provider_config(base_url, KEY, **values)


def with_sdk(config: ProviderConfig,
             use: Callable[[openai.AsyncOpenAI, ProviderClient], Awaitable[T]],
             api_key: str = KEY, retries: int | None = None) -> tuple[T, list[Exchange]]:
    """Run ``use`` with an SDK client on ``config``; return its result and the exchanges."""
    async def go() -> tuple[T, list[Exchange]]:
        client = ProviderClient(config)
        recorded: list[Exchange] = []
        http = client.recording_client(recorded.append, retries=retries)
        try:
            async with openai.AsyncOpenAI(
                    api_key=api_key, base_url=client.base_url, max_retries=0,
                    http_client=http,  # type: ignore[arg-type]
            ) as sdk:
                result = await use(sdk, client)
            # Closing the SDK's client leaves the provider's own client usable.
            await client.request("POST", "/chat/completions", json_body={"model": "m"})
            return result, recorded
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_sdk_completion_is_recorded_decoded_and_redacted(base_url: str) -> None:
    async def use(sdk: openai.AsyncOpenAI, _: ProviderClient) -> ChatCompletion:
        return await sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}])

    result, (exchange,) = with_sdk(provider(base_url), use)
    assert isinstance(result, ChatCompletion) and result.choices[0].message.content == "Paris"
    assert exchange.status == 200 and exchange.json == COMPLETION  # gzip decoded
    assert exchange.request_headers["authorization"] == "Bearer ***"
    assert exchange.request_body == {"model": "m", "messages": [{"role": "user",
                                                                 "content": "hi"}]}
    assert exchange.request_headers["user-agent"].startswith("AsyncOpenAI/Python")
    assert KEY not in repr(exchange.to_evidence())


def test_a_body_past_the_evidence_limit_is_read_whole(base_url: str) -> None:
    """The evidence keeps limits.evidence characters; the checks read the whole body."""
    async def use(sdk: openai.AsyncOpenAI, _: ProviderClient) -> ChatCompletion:
        return await sdk.chat.completions.create(
            model="long", messages=[{"role": "user", "content": "hi"}])

    limits = Limits(body=1024 * 1024, stream=1024 * 1024, events=1000, event=64 * 1024,
                    evidence=4000)
    result, (exchange, *_) = with_sdk(provider(base_url, limits=limits), use)
    assert result.choices[0].message.content == "x" * 9000
    assert exchange.truncated and len(exchange.text) < 4100
    assert isinstance(exchange.json, dict)
    assert exchange.json["choices"][0]["message"]["content"] == "x" * 9000


def test_sdk_stream_events_are_recorded(base_url: str) -> None:
    async def use(sdk: openai.AsyncOpenAI, _: ProviderClient) -> list[ChatCompletionChunk]:
        stream = await sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        return [chunk async for chunk in stream]

    chunks, (exchange,) = with_sdk(provider(base_url), use)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "1, 2"
    assert exchange.stream and exchange.events is not None
    assert [e.data for e in exchange.events][-1] == "[DONE]"
    assert len(exchange.chunks()) == 4 and exchange.sse_comments == 1
    assert all(e.t_ms > 0 for e in exchange.events)


def test_sdk_errors_are_recorded_with_echoed_keys_redacted(base_url: str) -> None:
    wrong = "sk-wrong-but-configured-secret-0000"

    async def use(sdk: openai.AsyncOpenAI, _: ProviderClient) -> type[Exception]:
        with pytest.raises(openai.AuthenticationError) as info:
            await sdk.chat.completions.create(model="m", messages=[])
        return type(info.value)

    config = provider(base_url, secrets=(KEY, wrong))
    kind, (exchange,) = with_sdk(config, use, api_key=wrong)
    assert kind is openai.AuthenticationError and exchange.status == 401
    assert exchange.json["error"]["message"] == "bad key Bearer ***"


def test_a_429_is_retried_as_the_suites_own_requests_are(base_url: str) -> None:
    """The SDK's own retries are off; the transport retries a 429 for it, as it does for the
    suite's requests (``retries:``), so an sdk check is judged after a passing rate limit."""
    async def use(sdk: openai.AsyncOpenAI, client: ProviderClient) -> ChatCompletion:
        answer = await sdk.chat.completions.create(model="busy-1", messages=[])
        assert client.rate_limited is None  # retried away: no 429 reached the SDK
        return answer

    result, (exchange,) = with_sdk(provider(base_url), use)
    assert result.choices[0].message.content == "Paris"
    assert exchange.status == 200 and exchange.attempts == 2 and SEEN["busy-1"] == 2


def test_a_429_after_the_retries_is_raised_and_remembered(base_url: str) -> None:
    async def use(sdk: openai.AsyncOpenAI, client: ProviderClient) -> Exchange | None:
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(model="busy", messages=[])
        return client.rate_limited

    seen, (exchange,) = with_sdk(provider(base_url), use)
    assert seen is exchange and exchange.status == 429 and exchange.attempts == 2
    assert seen.headers["retry-after"] == "0"
    assert seen.json["error"]["code"] == "rate_limit_exceeded"  # read by the SDK, for replay


def test_a_client_without_retries_sends_once(base_url: str) -> None:
    """``retries=0`` (sdk.rate_limit's probe, which provokes the 429 it judges)."""
    async def use(sdk: openai.AsyncOpenAI, _: ProviderClient) -> None:
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(model="busy-2", messages=[])

    _, (exchange,) = with_sdk(provider(base_url, retries=3), use, retries=0)
    assert exchange.attempts == 1 and SEEN["busy-2"] == 1


def test_a_429_asking_past_the_cap_is_not_waited_for(base_url: str) -> None:
    async def use(sdk: openai.AsyncOpenAI, _: ProviderClient) -> None:
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(model="busy-long", messages=[])

    _, (exchange,) = with_sdk(provider(base_url, retries=3), use)
    assert exchange.attempts == 1 and SEEN["busy-long"] == 1
    assert exchange.retry_stopped is not None and "Retry-After 3600s" in exchange.retry_stopped


def _reset_the_first(conn: socket.socket, number: int) -> None:
    """Reset the first connection after reading its request (as a server closing a
    kept-alive connection does); answer later ones."""
    conn.recv(65536)
    if number == 1:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return
    body = json.dumps(COMPLETION).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                 b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


@pytest.mark.parametrize("via", ["request", "sdk"])
def test_a_reset_before_the_answer_is_retried(via: str) -> None:
    server = RawServer(_reset_the_first)
    config = provider(f"http://127.0.0.1:{server.port}/v1")

    async def use(sdk: openai.AsyncOpenAI, client: ProviderClient) -> int:
        if via == "sdk":
            result = await sdk.chat.completions.create(model="m", messages=[])
            return len(result.choices)
        exchange = await client.request("POST", "/chat/completions", json_body={})
        return len(exchange.json["choices"]) if exchange.attempts == 2 else 0

    async def go() -> int:
        client = ProviderClient(config)
        try:
            async with openai.AsyncOpenAI(
                    api_key=KEY, base_url=client.base_url, max_retries=0,
                    http_client=client.recording_client(lambda e: None),  # type: ignore[arg-type]
            ) as sdk:
                return await use(sdk, client)
        finally:
            await client.aclose()

    try:
        assert asyncio.run(go()) == 1 and server.connections == 2
    finally:
        server.close()
