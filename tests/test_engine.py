"""The engine's bookkeeping (conformance/engine.py): a judged check is kept as its Result, not
as the future and task that ran it (a finished concurrent future holds its asyncio task, a
Condition and a deque: ~2.6 KB per check, 40 MB at 100 providers); a check is still judged
once however often it is submitted, and ``finished()`` lists results in submission order."""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

from conformance.checks.registry import Check
from conformance.engine import Engine
from conformance.reference.server import ReferenceServer
from tests.conftest import provider_config


def _counting_check(name: str, calls: list[str]) -> Check:
    async def one_request(ctx: Any) -> str:
        calls.append(name)
        exchange = await ctx.chat(messages=[{"role": "user", "content": "hi"}], max_tokens=5)
        if exchange.status != 200:
            raise AssertionError(exchange.status)
        return "answered"

    return Check(id=f"engine.{name}", title=name, behavior="chat", spec="-", proves="-",
                 func=one_request, module="tests")


def test_a_judged_check_is_kept_as_its_result_and_judged_once(
        reference_server: ReferenceServer) -> None:
    calls: list[str] = []
    checks = [_counting_check(name, calls) for name in ("first", "second", "third")]
    engine = Engine([
        provider_config(reference_server.base_url, reference_server.api_key, name="ref",
                        model="ref-1"),
        provider_config("http://127.0.0.1:9/v1", "sk-engine-unit-0123456789", name="nokey",
                        skip_reason="set CONFORMANCE_UNSET_KEY"),
    ])
    try:
        futures = [engine.submit(check, "ref") for check in checks]
        # a skipped provider's checks end at once (the future may be done before the engine
        # adds its callback: it must not wait for its own lock)
        skipped = [engine.submit(check, "nokey") for check in checks]
        results = [future.result(timeout=30) for future in futures]
        assert [f.result(timeout=30).outcome for f in skipped] == ["skip"] * 3
        watched = weakref.ref(futures[0])
        del futures, skipped
        # The loop thread swaps the future for its result just after waking result() up.
        deadline = time.monotonic() + 10
        while watched() is not None and time.monotonic() < deadline:
            gc.collect()
            time.sleep(0.01)
        assert watched() is None  # the engine no longer holds the future (nor its task)
        assert [r.outcome for r in results] == ["pass"] * 3
        # submitted again: the same Result, nothing sent again
        again = engine.submit(checks[0], "ref")
        assert again.done() and again.result() is results[0]
        assert engine.result(checks[1], "ref") is results[1]
        assert sorted(calls) == ["first", "second", "third"]
        finished = engine.finished()
        assert [(r.check, r.provider) for r in finished] == [
            *((c.id, "ref") for c in checks), *((c.id, "nokey") for c in checks)]
    finally:
        engine.close()
