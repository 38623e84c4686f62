"""Hostile or broken providers cannot break the run, exhaust the machine or stretch a check.

One small Starlette app on 127.0.0.1 serves one hostile provider per path prefix
(``/<kind>/v1``): a 200 MB body, an endless fast stream, one giant SSE line, a gzip bomb,
``429 Retry-After: 3600``, an unknown charset, an HTML page for ``GET /models/{id}``,
non-object ``choices`` (a list of scalars, or a mapping), plain JSON labelled
``Content-Encoding: gzip`` and JSON nested 100,000 deep.  The whole suite runs once
(``conformance run`` in a subprocess) against all of them next to the builtin reference, with
small configured limits; each test then looks at one provider's column.  Transport unit
tests below check each limit at the seam.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conformance.bodies import decode_text
from conformance.checks.registry import Check
from conformance.config import Limits, Timeouts
from conformance.engine import Engine
from conformance.exchange import Exchange
from conformance.reference.server import ThreadedServer
from conformance.transport import ProviderClient
from tests import hostile as guard
from tests.conftest import KEY_ENV, SELFTEST_KEY, provider_config, write_providers
from tests.hostile import HostileRun

MiB = 1024 * 1024
KINDS = ("huge", "endless", "giant_line", "gzip_bomb", "retry_after", "charset", "html_model",
         "odd_choices", "dict_choices", "false_gzip", "deep")
#: Arrays nested 100,000 deep (200 KB, under the 256 KiB line limit): every CPython's json
#: parser, which the openai SDK uses, raises RecursionError on them. 5,000 is not enough:
#: 3.13 parses 5,000 levels and 3.14 parses 20,000 (their C recursion limits are higher).
DEEP = "[" * 100_000 + "]" * 100_000


def _gzip_bomb(inflated_mib: int = 1024) -> bytes:
    """A gzip body that inflates to ``inflated_mib`` MiB of zeros (about 1 MiB compressed).
    Full flushes make every 1 MiB block compress to the same bytes, so it is built fast."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + block * (inflated_mib - 1) + compressor.flush()


BOMB = _gzip_bomb()


def completion(choices: list[Any] | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "ref-1",
            "choices": choices if choices is not None else [
                {"index": 0, "message": {"role": "assistant", "content": "Hi"},
                 "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


async def huge_body(mib: int = 200) -> AsyncIterator[bytes]:
    yield b'{"choices": [{"message": {"content": "'
    block = b"x" * (64 * 1024)
    for _ in range(mib * 16):
        yield block
    yield b'"}}]}'


async def endless_stream() -> AsyncIterator[bytes]:
    chunk = (b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"ref-1",'
             b'"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}\n\n')
    block = chunk * 100
    while True:
        yield block
        await asyncio.sleep(0)


async def giant_line(mib: int = 50) -> AsyncIterator[bytes]:
    yield b'data: {"choices": "'
    block = b"x" * (64 * 1024)
    for _ in range(mib * 16):
        yield block


async def models(request: Request) -> Response:
    kind = request.path_params["kind"]
    body = {"object": "list", "data": [{"id": "ref-1", "object": "model", "created": 0,
                                        "owned_by": "hostile"}]}
    if kind == "charset":
        return Response(json.dumps(body), media_type="application/json; charset=base64")
    return JSONResponse(body)


async def model(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind == "html_model":
        return Response("<!doctype html><html><body><h1>Welcome</h1></body></html>",
                        media_type="text/html")
    body = {"id": request.path_params["model"], "object": "model", "created": 0,
            "owned_by": "hostile"}
    if kind == "charset":
        return Response(json.dumps(body), media_type="application/json; charset=base64")
    return JSONResponse(body)


async def chat(request: Request) -> Response:
    kind = request.path_params["kind"]
    try:
        body = await request.json()
    except ValueError:
        body = None
    stream = isinstance(body, dict) and body.get("stream") is True
    if kind == "huge":
        return StreamingResponse(huge_body(), media_type="application/json")
    if kind == "endless":
        return StreamingResponse(endless_stream(), media_type="text/event-stream")
    if kind == "giant_line":
        return StreamingResponse(giant_line(), media_type="text/event-stream")
    if kind == "gzip_bomb":
        return Response(BOMB, media_type="application/json",
                        headers={"content-encoding": "gzip"})
    if kind == "false_gzip":  # plain bytes labelled gzip: no client can read them
        if stream:
            chunk = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0,
                                "model": "ref-1", "choices": [{"index": 0, "delta": {
                                    "role": "assistant", "content": "Hi"},
                                    "finish_reason": "stop"}]})
            return Response(f"data: {chunk}\n\ndata: [DONE]\n\n",
                            media_type="text/event-stream", headers={"content-encoding": "gzip"})
        return Response(json.dumps(completion()), media_type="application/json",
                        headers={"content-encoding": "gzip"})
    if kind == "retry_after":
        return JSONResponse({"error": {"message": "slow down", "type": "rate_limit"}},
                            status_code=429, headers={"retry-after": "3600"})
    if kind == "odd_choices":
        if stream:
            chunk = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0,
                                "model": "ref-1", "choices": [1, "x"]})
            return Response(f"data: {chunk}\n\ndata: [DONE]\n\n",
                            media_type="text/event-stream")
        return JSONResponse(completion([1, "x"]))
    if kind == "deep":  # a completion, a chunk or tool-call arguments nested 100,000 deep
        if stream:
            chunk = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0,
                                "model": "ref-1", "choices": [{"index": 0, "delta": {
                                    "role": "assistant", "content": "Hi"},
                                    "finish_reason": "stop"}], "x": None})
            return Response(f"data: {chunk.replace('null', DEEP)}\n\ndata: [DONE]\n\n",
                            media_type="text/event-stream")
        if isinstance(body, dict) and body.get("tools"):
            call = {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": ' + DEEP + "}"}}
            return JSONResponse(completion([{"index": 0, "finish_reason": "tool_calls",
                                             "logprobs": None, "message": {
                                                 "role": "assistant", "content": None,
                                                 "tool_calls": [call]}}]))
        text = json.dumps({**completion(), "x": 0})
        return Response(text.replace('"x": 0', '"x": ' + DEEP), media_type="application/json")
    if kind == "dict_choices":
        return JSONResponse({**completion(), "choices": {"0": 1}})
    if kind == "charset":
        return Response(json.dumps(completion()),
                        media_type="application/json; charset=base64")
    return JSONResponse(completion())


async def other(request: Request) -> Response:
    return JSONResponse({"error": {"message": "not found", "type": "invalid_request_error"}},
                        status_code=404)


APP = Starlette(routes=[
    Route("/{kind}/v1/models", models),
    Route("/{kind}/v1/models/{model:path}", model),
    Route("/{kind}/v1/chat/completions", chat, methods=["POST"]),
    Route("/{kind}/v1/{rest:path}", other, methods=["GET", "POST"]),
])


@pytest.fixture(scope="module")
def hostile() -> Iterator[ThreadedServer]:
    with ThreadedServer(APP) as server:
        yield server


@pytest.fixture(scope="module")
def hostile_run(hostile: ThreadedServer, tmp_path_factory: pytest.TempPathFactory
                ) -> HostileRun:
    base = tmp_path_factory.mktemp("hostile")
    entries: list[dict[str, Any]] = [{"name": "reference", "builtin": "reference"}]
    entries += [{"name": kind.replace("_", "-"), "base_url": f"{hostile.origin}/{kind}/v1",
                 "api_key": "${" + KEY_ENV + "}", "model": "ref-1"} for kind in KINDS]
    defaults = {"limits": {"body": "1 MiB", "stream": "1 MiB", "events": 2000,
                           "event": "256 KiB", "evidence": 20_000},
                "timeouts": {"total": 20, "stall": 5, "check": 40}}
    providers = write_providers(base / "providers.yaml", entries, defaults)
    run = guard.run_measured(providers, base / "report", "-n", "2")
    assert run.out.returncode == 0, run.out.stdout[-3000:] + run.out.stderr[-3000:]
    return run


def column(run: HostileRun, provider: str) -> dict[str, tuple[str, str]]:
    return {check: v for (p, check), v in run.out.outcomes().items() if p == provider}


def test_the_run_finishes_with_every_artefact_and_the_reference_unharmed(
        hostile_run: HostileRun) -> None:
    guard.assert_sound(hostile_run, keys=[SELFTEST_KEY])
    results_mb = (hostile_run.out.report_dir / "results.json").stat().st_size / MiB
    assert results_mb < 40, results_mb  # evidence is truncated


def test_no_hostile_answer_is_a_suite_fault(hostile_run: HostileRun) -> None:
    faults = {(p, c): m for (p, c), (o, m) in hostile_run.out.outcomes().items()
              if "suite fault" in m or "Traceback" in m}
    assert faults == {}


@pytest.mark.parametrize(("provider", "check", "fragment"), [
    ("huge", "chat.basic", "response body larger than 1 MiB: read stopped (limits.body)"),
    ("gzip-bomb", "chat.basic", "response body larger than 1 MiB: read stopped (limits.body)"),
    ("endless", "streaming.done_sentinel", "(limits.events)"),
    ("giant-line", "streaming.done_sentinel", "larger than 256 KiB"),
    ("odd-choices", "chat.basic", "expected a non-empty 'choices' list"),
    ("html-model", "models.retrieve", "text/html"),
    ("odd-choices", "streaming.role_first", "'choices' must be a list of objects"),
    ("dict-choices", "sdk.completion", "ChatCompletion"),
    ("false-gzip", "chat.basic", "the body is not gzip data, though its Content-Encoding says"),
    ("false-gzip", "streaming.done_sentinel", "the body is not gzip data"),
    ("deep", "chat.basic", "(nested deeper than 64 levels, the limit RFC 8259 §9 lets a parser"),
    ("deep", "streaming.done_sentinel", "(nested deeper than 64 levels"),
    ("deep", "tools.call_shape", "arguments is not valid JSON (nested deeper than 64 levels"),
    ("deep", "sdk.stream", "(the raw stream has no JSON chunk either (nested deeper than 64"),
])
def test_affected_checks_fail_naming_the_limit(hostile_run: HostileRun, provider: str,
                                               check: str, fragment: str) -> None:
    outcome, message = column(hostile_run, provider)[check]
    assert outcome == "fail" and fragment in message, (outcome, message)


def test_an_undecodable_body_is_the_providers_fault_not_an_error(hostile_run: HostileRun
                                                                 ) -> None:
    errors = {c: m for c, (o, m) in column(hostile_run, "false-gzip").items() if o == "error"}
    assert errors == {}


def test_retry_after_beyond_the_deadline_is_not_waited_for(hostile_run: HostileRun) -> None:
    outcome, message = column(hostile_run, "retry-after")["chat.basic"]
    assert outcome == "error" and "Retry-After 3600s" in message, message


def test_an_unknown_charset_is_read_as_utf8(hostile_run: HostileRun) -> None:
    col = column(hostile_run, "charset")
    assert col["chat.basic"][0] == "pass", col["chat.basic"]
    assert col["models.list"][0] == "pass", col["models.list"]


# --- the transport seam -------------------------------------------------------------------


def send(base: str, limits: Limits, method: str, path: str, *, retries: int = 0,
         total: float = 20, **kwargs: Any) -> Exchange:
    config = provider_config(base, "sk-hostile-unit-0123456789", limits=limits,
                             retries=retries, timeouts=Timeouts(total=total, stall=5))

    async def go() -> Exchange:
        client = ProviderClient(config)
        try:
            return await client.request(method, path, **kwargs)
        finally:
            await client.aclose()

    return asyncio.run(go())


SMALL = Limits(body=256 * 1024, stream=256 * 1024, events=500, event=64 * 1024,
               evidence=4000)


def test_a_huge_body_stops_at_the_body_limit(hostile: ThreadedServer) -> None:
    started = time.monotonic()
    exchange = send(f"{hostile.origin}/huge/v1", SMALL, "POST", "/chat/completions",
                    json_body={})
    assert time.monotonic() - started < 5
    assert exchange.overflow == "response body larger than 256 KiB: read stopped (limits.body)"
    assert exchange.json is None and exchange.truncated
    assert exchange.text.endswith("characters not kept]") and len(exchange.text) < 4100
    assert exchange.to_evidence()["overflow"] == exchange.overflow


def test_a_gzip_bomb_never_inflates_past_the_limit(hostile: ThreadedServer) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    exchange = send(f"{hostile.origin}/gzip_bomb/v1", SMALL, "POST", "/chat/completions",
                    json_body={})
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert exchange.overflow and "(limits.body)" in exchange.overflow
    assert grown_kib < 200 * 1024  # never the 1 GiB the bomb inflates to


@pytest.mark.parametrize("stream", [False, True])
def test_a_body_not_in_its_content_coding_stops_the_read(hostile: ThreadedServer,
                                                         stream: bool) -> None:
    exchange = send(f"{hostile.origin}/false_gzip/v1", SMALL, "POST", "/chat/completions",
                    json_body={"stream": stream}, stream=stream)
    assert exchange.overflow and exchange.overflow.startswith(
        "the body is not gzip data, though its Content-Encoding says so (Error -3 while "
        "decompressing data: incorrect header check): read stopped")
    assert exchange.json is None and exchange.error is None


def test_an_endless_stream_stops_at_the_event_limit(hostile: ThreadedServer) -> None:
    exchange = send(f"{hostile.origin}/endless/v1", SMALL, "POST", "/chat/completions",
                    json_body={"stream": True}, stream=True)
    assert exchange.overflow == "stream longer than 500 events: read stopped (limits.events)"
    assert exchange.events is not None and len(exchange.events) == 500
    events = exchange.to_evidence()["response"]["events"]
    assert "more events not kept" in events[-1]["truncated"]


def test_a_stream_stops_at_the_stream_byte_limit(hostile: ThreadedServer) -> None:
    limits = Limits(body=MiB, stream=64 * 1024, events=100_000, event=MiB, evidence=4000)
    exchange = send(f"{hostile.origin}/endless/v1", limits, "POST", "/chat/completions",
                    json_body={"stream": True}, stream=True)
    assert exchange.overflow and exchange.overflow.startswith("stream larger than 64 KiB")
    assert "(limits.stream)" in exchange.overflow


def test_one_giant_sse_line_stops_at_the_event_limit(hostile: ThreadedServer) -> None:
    exchange = send(f"{hostile.origin}/giant_line/v1", SMALL, "POST", "/chat/completions",
                    json_body={"stream": True}, stream=True)
    assert exchange.overflow == ("SSE line or event larger than 64 KiB: read stopped after 0 "
                                 "events (limits.event)")


def test_retry_after_past_the_deadline_is_not_waited_for(hostile: ThreadedServer) -> None:
    started = time.monotonic()
    exchange = send(f"{hostile.origin}/retry_after/v1", SMALL, "POST", "/chat/completions",
                    json_body={}, retries=3)
    assert time.monotonic() - started < 3
    assert exchange.status == 429 and exchange.attempts == 1
    assert exchange.retry_stopped and "Retry-After 3600s" in exchange.retry_stopped


def test_unknown_and_non_text_charsets_decode_as_utf8() -> None:
    assert decode_text("é".encode(), "base64") == "é"
    assert decode_text("é".encode(), "no-such-charset") == "é"
    assert decode_text("é".encode("latin-1"), "latin-1") == "é"


def test_a_check_past_its_deadline_is_an_error(hostile: ThreadedServer) -> None:
    async def slow(ctx: Any) -> str:
        await asyncio.sleep(30)
        return "never"

    check = Check(id="hostile.slow", title="slow", behavior="chat", spec="-", proves="-",
                  func=slow, module="tests")
    config = provider_config(f"{hostile.origin}/plain/v1", "sk-hostile-unit-0123456789",
                             timeouts=Timeouts(total=1, check=0.5))
    engine = Engine([config])
    try:
        started = time.monotonic()
        result = engine.result(check, "t")
        assert time.monotonic() - started < 5
    finally:
        engine.close()
    assert result.outcome == "error"
    assert result.message == ("check exceeded its 0.5 s deadline (timeouts.check): the provider "
                              "was too slow to judge")


def test_limits_merge_from_defaults_and_are_validated_with_file_and_line() -> None:
    from conformance.config import parse_providers
    from conformance.errors import ConfigError

    text = ("defaults:\n  limits: {body: 2 MiB, events: 50}\n  timeouts: {check: 9}\n"
            "providers:\n  - name: a\n    builtin: reference\n    limits: {event: 4096}\n")
    (provider,) = parse_providers(text, filename="p.yaml").providers
    assert provider.limits == Limits(body=2 * MiB, events=50, event=4096)
    assert provider.timeouts.check_deadline == 9
    assert Timeouts(total=100).check_deadline == 200
    with pytest.raises(ConfigError) as info:
        parse_providers(text.replace("event: 4096", "evnt: 4096"), filename="p.yaml")
    assert "p.yaml:7" in str(info.value) and "did you mean 'event'" in str(info.value)
