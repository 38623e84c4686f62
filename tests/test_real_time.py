"""``streaming.real_time`` and the client's own stalls (conformance/loopwatch.py).

The judgement on hand-made arrival times first; then, over real sockets against the paced
reference, that a client whose event loop is blocked while the stream arrives never takes the
compressed stream for fake streaming; and that under deliberate load (two busy processes and a
thread hogging the GIL in the client's process) the reference passes and the buffering fault
fails, every time.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from conformance.checks import prompts
from conformance.checks.registry import all_checks
from conformance.checks.streaming import Pacing, decide_pacing, judge_pacing
from conformance.connections import ConnectionPool
from conformance.engine import Engine
from conformance.errors import Failure, NotApplicable
from conformance.exchange import Exchange, TimedEvent
from conformance.loopwatch import STALL_MS, LoopWatch, blind_since
from conformance.reference.server import ReferenceServer
from conformance.transport import ProviderClient
from tests.conftest import SELFTEST_KEY, provider_config

ROLE = json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})


def _chunk(content: str) -> str:
    return json.dumps({"object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {"content": content}}]})


def _stream(times: list[float], stalls: list[tuple[float, float]] | None = None) -> Exchange:
    exchange = Exchange("POST", "u", {}, {}, True, status=200)
    exchange.events = ([TimedEvent(times[0], ROLE)] + [TimedEvent(t, _chunk("x")) for t in times]
                       + [TimedEvent(times[-1], "[DONE]")])
    exchange.client_stalls = [] if stalls is None else stalls
    return exchange


def test_a_burst_after_a_wait_while_the_client_kept_time_is_a_burst() -> None:
    pacing = judge_pacing(_stream([300.0] * 8 + [301.0]))
    assert pacing.kind == "burst"
    assert pacing.message == ("all 9 content chunks arrived within 1 ms after 300 ms of silence "
                              "(301 ms in all)")


def test_a_burst_read_at_the_end_of_a_client_stall_is_no_evidence() -> None:
    # the client's loop was held up from 120 ms to 298 ms: the chunks may have come meanwhile
    pacing = judge_pacing(_stream([300.0] * 9, stalls=[(40.0, 60.0), (120.0, 298.0)]))
    assert pacing.kind == "stalled"
    assert "held up from 120 ms" in pacing.message and "over 180 ms" in pacing.message
    # a short stall long before the burst does not excuse it
    assert judge_pacing(_stream([300.0] * 9, stalls=[(40.0, 70.0)])).kind == "burst"
    # nor does a stall that ended long enough before it for the reader to catch up
    assert judge_pacing(_stream([300.0] * 9, stalls=[(100.0, 200.0)])).kind == "burst"
    # a request nobody watched cannot be judged a burst
    unwatched = _stream([300.0] * 9)
    unwatched.client_stalls = None
    assert judge_pacing(unwatched).kind == "stalled"


def test_chunks_spread_over_the_answer_are_streamed_even_after_a_long_wait() -> None:
    assert judge_pacing(_stream([2000.0 + 15 * n for n in range(9)])) == Pacing(
        "streamed", "9 content chunks over 120 ms (first after 2000 ms, last after 2120 ms)")
    # one token per event, as llama.cpp writes them, at a few ms a token
    assert judge_pacing(_stream([400.0 + 30 * n for n in range(20)])).message.startswith(
        "20 content chunks over 570 ms")


def test_an_instant_answer_and_a_single_chunk() -> None:
    quick = judge_pacing(_stream([3.0, 3.0, 3.5, 4.0]))
    assert quick.kind == "quick" and "within 4 ms" in quick.message
    exchange = Exchange("POST", "u", {}, {}, True, status=200)
    stop = json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    exchange.events = [TimedEvent(5.0, ROLE), TimedEvent(60.0, _chunk("all")),
                       TimedEvent(80.0, stop), TimedEvent(80.0, "[DONE]")]
    exchange.client_stalls = []
    assert judge_pacing(exchange).message.startswith("3 chunks over 75 ms")


BURST = Pacing("burst", "all 9 content chunks arrived within 0 ms after 180 ms of silence")
STALLED = Pacing("stalled", "all 9 content chunks arrived within 0 ms …, but the client …")
STREAMED = Pacing("streamed", "9 content chunks over 160 ms")


def test_two_clean_bursts_fail_one_streamed_stream_passes() -> None:
    with pytest.raises(Failure, match=r"^fake streaming: all 9 content chunks arrived within 0 ms "
                       r"after 180 ms of silence, and again on a fresh request"):
        decide_pacing([BURST, BURST])
    with pytest.raises(Failure):
        decide_pacing([STALLED, BURST, STALLED, BURST])
    assert decide_pacing([STREAMED]) == "9 content chunks over 160 ms"
    assert decide_pacing([BURST, STREAMED]) == (
        "9 content chunks over 160 ms; an earlier stream was read in one burst (all 9 content "
        "chunks arrived within 0 ms after 180 ms of silence)")


def test_a_stalled_client_resends_and_is_never_a_fail() -> None:
    assert decide_pacing([BURST]) is None
    assert decide_pacing([STALLED]) is None
    assert decide_pacing([STALLED, STALLED]) is None
    assert decide_pacing([BURST, STALLED, STALLED]) is None
    assert decide_pacing([STALLED] * 4) is None
    for seen in ([STALLED] * 5, [BURST] + [STALLED] * 5):
        with pytest.raises(NotApplicable, match=r"^inconclusive: .*the client"):
            decide_pacing(seen)
    with pytest.raises(NotApplicable, match=r"^inconclusive: the whole answer arrived within"):
        decide_pacing([Pacing("quick", "the whole answer arrived within 4 ms, too quickly …")])


def test_the_watch_records_a_blocked_loop() -> None:
    async def main() -> list[tuple[float, float]]:
        started = time.perf_counter()
        with LoopWatch.of().watching(started) as stalls:
            await asyncio.sleep(0.03)
            time.sleep(0.15)  # the loop is blocked: no task runs
            await asyncio.sleep(0.03)
        return stalls

    stalls = asyncio.run(main())
    assert any(b - a >= 150 for a, b in stalls), stalls
    assert all(b - a > STALL_MS for a, b in stalls)
    longest = max(stalls, key=lambda s: s[1] - s[0])
    assert blind_since(stalls, longest[1], longest[1] + 1) == longest[0]
    assert blind_since(None, 0, 1) is None


def test_evidence_keeps_the_longest_stalls_in_time_order() -> None:
    exchange = _stream([100.0, 200.0, 300.0],
                       stalls=[(float(n), float(n) + 21 + n % 7) for n in range(0, 3000, 100)])
    record = exchange.to_evidence()
    kept = record["client_stalls"]
    assert len(kept) == 20 and record["client_stalls_total"] == 30
    assert kept == sorted(kept) and min(b - a for a, b in kept) >= 21 + 2
    assert "client_stalls" not in _stream([1.0, 2.0, 3.0]).to_evidence()


COUNT = {"model": "ref-1", "messages": prompts.COUNT_TO_5, "max_tokens": 32, "stream": True}


def test_a_stream_read_by_a_blocked_client_is_never_a_burst() -> None:
    """The failure the first version had: the paced reference read by a client whose event
    loop was blocked while the answer arrived, so every chunk was read at once. Blocked at
    every offset into the stream, the reading is streamed or stalled, never a burst."""
    kinds: Counter[str] = Counter()

    async def block(pool: ConnectionPool, after: float) -> None:
        # The request is on the wire (the first chunk follows ~3 ms later) and its stream is
        # watched; on a busy machine the block at offset 0 would otherwise come before the
        # request was written, and nothing would be compressed.
        while not (pool.sent and LoopWatch.of().active):
            await asyncio.sleep(0)
        await asyncio.sleep(after)
        time.sleep(0.4)  # holds the whole loop: nothing is read meanwhile

    async def read(url: str, block_after: float) -> Pacing:
        client = ProviderClient(provider_config(url, SELFTEST_KEY, model="ref-1"))
        pool = client._client._transport  # type: ignore[attr-defined]
        assert isinstance(pool, ConnectionPool)
        blocker = asyncio.ensure_future(block(pool, block_after))
        try:
            exchange = await client.request("POST", "/chat/completions", json_body=COUNT,
                                            stream=True)
        finally:
            await blocker
            await client.aclose()
        return judge_pacing(exchange)

    with ReferenceServer(api_key=SELFTEST_KEY) as server:
        for step in range(12):
            pacing = asyncio.run(read(server.base_url, step * 0.02))
            assert pacing.kind in ("streamed", "stalled"), pacing
            kinds[pacing.kind] += 1
    assert kinds["stalled"] >= 1, kinds  # the blocks did compress streams


@pytest.fixture
def loaded_machine() -> Iterator[None]:
    """Two busy processes and, in this process, a thread that never releases the GIL but when
    the interpreter forces it to."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    stop = threading.Event()

    def hog() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    thread = threading.Thread(target=hog, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        for process in busy:
            process.kill()
            process.wait()
        thread.join()


RUNS = 20


@pytest.mark.usefixtures("loaded_machine")
def test_under_load_the_reference_passes_and_the_burst_fails_every_time() -> None:
    check = next(c for c in all_checks() if c.id == "streaming.real_time")
    verdicts: Counter[tuple[str, str]] = Counter()
    with ReferenceServer(api_key=SELFTEST_KEY) as server:
        for _ in range(RUNS):
            providers = [
                provider_config(server.base_url, SELFTEST_KEY, name="paced", model="ref-1"),
                provider_config(server.variant_url(["stream_buffered_burst"]), SELFTEST_KEY,
                                name="burst", model="ref-1")]
            engine = Engine(providers)  # fresh: nothing shared between the runs
            try:
                for provider in providers:
                    result = engine.result(check, provider.name)
                    verdicts[(provider.name, result.outcome)] += 1
                    if provider.name == "paced":
                        assert result.outcome == "pass", result.message
                    else:
                        assert result.outcome == "fail", result.message
                        assert result.message.startswith("fake streaming: all 9 content chunks")
            finally:
                engine.close()
    assert verdicts == {("paced", "pass"): RUNS, ("burst", "fail"): RUNS}


def test_a_saturated_engine_loop_does_not_hide_the_burst() -> None:
    """The engine's loop busy with other checks (here blocked 150 ms of every 160 ms), as in a
    run of a hundred providers: the shared stream is read late, so the resends go out on a
    quiet loop of their own (CheckContext.chat_apart) and still catch the burst, while the
    paced reference passes."""
    check = next(c for c in all_checks() if c.id == "streaming.real_time")

    async def busy() -> None:
        while True:
            time.sleep(0.15)
            await asyncio.sleep(0.01)

    with ReferenceServer(api_key=SELFTEST_KEY) as server:
        for _ in range(3):
            providers = [
                provider_config(server.base_url, SELFTEST_KEY, name="paced", model="ref-1"),
                provider_config(server.variant_url(["stream_buffered_burst"]), SELFTEST_KEY,
                                name="burst", model="ref-1")]
            engine = Engine(providers)
            engine._thread.start()
            hog = asyncio.run_coroutine_threadsafe(busy(), engine._loop)
            try:
                paced, burst = (engine.result(check, p.name) for p in providers)
            finally:
                hog.cancel()
                engine.close()
            assert paced.outcome == "pass", paced.message
            assert burst.outcome == "fail", burst.message
