"""A check's ``prepare`` (conformance/warmup.py): heavy work such as importing the openai SDK
runs once per process in a thread of its own, begins when the check is submitted, never holds
the engine's event loop (other checks are judged meanwhile), and what it raises is that
check's ``error``, not the end of the run."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import pytest

from conformance import warmup
from conformance.checks.registry import REGISTRY, Check
from conformance.engine import Engine
from conformance.reference.server import ReferenceServer
from tests.conftest import provider_config

KEY = "sk-warmup-unit-0123456789"


class Prepared:
    """A prepare function taking ``seconds`` of its thread's time; remembers its calls."""

    def __init__(self, seconds: float, fail: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.calls: list[str] = []
        self.done_at = 0.0

    def __call__(self) -> None:
        self.calls.append(threading.current_thread().name)
        time.sleep(self.seconds)
        self.done_at = time.perf_counter()
        if self.fail:
            raise RuntimeError("the library would not load")


def _check(name: str, prepare: Any = None) -> Check:
    async def one_request(ctx: Any) -> str:
        exchange = await ctx.chat(messages=[{"role": "user", "content": "hi"}], max_tokens=5)
        if exchange.status != 200:
            raise AssertionError(exchange.status)
        return "answered"

    return Check(id=f"warmup.{name}", title=name, behavior="chat", spec="-", proves="-",
                 func=one_request, module="tests", prepare=prepare)


def test_prepare_runs_once_off_the_loop_while_other_checks_are_judged(
        reference_server: ReferenceServer) -> None:
    prepare = Prepared(1.0)
    prepare.__name__ = "slow_library"  # type: ignore[attr-defined]
    heavy = _check("heavy", prepare)
    light = _check("light")
    engine = Engine([provider_config(reference_server.base_url, reference_server.api_key,
                                     name="a", model="ref-1"),
                     provider_config(reference_server.base_url, reference_server.api_key,
                                     name="b", model="ref-1")])
    try:
        started = time.perf_counter()
        heavy_futures = [engine.submit(heavy, p) for p in ("a", "b")]
        light_result = engine.submit(light, "a").result(timeout=30)
        light_done = time.perf_counter()
        heavy_results = [f.result(timeout=30) for f in heavy_futures]
    finally:
        engine.close()
    assert light_result.outcome == "pass", light_result.message
    # the light check was judged while prepare still ran: the loop was not held
    assert light_done < prepare.done_at, (light_done - started, prepare.done_at - started)
    assert [r.outcome for r in heavy_results] == ["pass", "pass"]
    # once for both providers, in its own thread, not the engine's loop thread
    assert prepare.calls == ["conformance-prepare-slow_library"]
    assert min(r.duration_ms for r in heavy_results) < 900  # its wait is not its own time


def test_a_failing_prepare_is_that_checks_error(reference_server: ReferenceServer) -> None:
    prepare = Prepared(0.0, fail=True)
    prepare.__name__ = "broken_library"  # type: ignore[attr-defined]
    engine = Engine([provider_config(reference_server.base_url, reference_server.api_key,
                                     name="a", model="ref-1")])
    try:
        broken = engine.submit(_check("broken", prepare), "a").result(timeout=30)
        fine = engine.submit(_check("fine"), "a").result(timeout=30)
    finally:
        engine.close()
    assert broken.outcome == "error"
    assert "suite fault" in broken.message and "would not load" in broken.message
    assert fine.outcome == "pass"


def test_a_skipped_provider_starts_no_prepare() -> None:
    prepare = Prepared(0.0)
    prepare.__name__ = "unused_library"  # type: ignore[attr-defined]
    config = provider_config("http://127.0.0.1:9/v1", KEY, name="nokey",
                             skip_reason="set CONFORMANCE_UNSET_KEY")
    engine = Engine([config])
    try:
        result = engine.submit(_check("skipped", prepare), "nokey").result(timeout=30)
    finally:
        engine.close()
    assert result.outcome == "skip"
    assert prepare.calls == []


def test_the_sdk_checks_load_the_openai_sdk_as_their_prepare() -> None:
    """Every sdk check names it, so no check imports the SDK on the event loop."""
    from conformance.checks.registry import load_checks
    from conformance.checks.sdk import load_openai

    load_checks()
    sdk = [c for c in REGISTRY.values() if c.behavior == "sdk"]
    assert sdk and all(c.prepare is load_openai for c in sdk)
    assert all(c.prepare is None for c in REGISTRY.values() if c.behavior != "sdk")


def test_a_cancelled_waiter_leaves_the_work_and_other_waiters_alone() -> None:
    """An interrupted run cancels the checks waiting for a prepare: the prepare still ends
    normally (its thread raises nothing) and a later waiter gets it."""
    prepare = Prepared(0.3)
    prepare.__name__ = "interrupted_library"  # type: ignore[attr-defined]

    async def go() -> None:
        waiter = asyncio.ensure_future(warmup.ready(prepare))
        await asyncio.sleep(0.05)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        await asyncio.wait_for(warmup.ready(prepare), 5)

    asyncio.run(go())
    future = warmup.start(prepare)
    assert future.done() and not future.cancelled() and future.result() is None
    assert len(prepare.calls) == 1


_BUILT_ON_FIRST_USE = r'''
import json, sys
import pydantic
from conformance.checks.registry import all_checks
from conformance.checks.sdk import load_openai
from conformance.engine import Engine
from conformance.reference.server import ReferenceServer
from tests.conftest import provider_config

def models():
    found, stack = {}, [pydantic.BaseModel]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found:
                found[sub] = bool(getattr(sub, "__pydantic_complete__", False))
                stack.append(sub)
    return found

load_openai()
before = models()
with ReferenceServer(api_key="sk-warmup-models-0123456789") as server:
    engine = Engine([provider_config(server.base_url, "sk-warmup-models-0123456789",
                                     model="ref-1", name="p")])
    futures = [engine.submit(c, "p") for c in all_checks() if c.behavior == "sdk"]
    outcomes = [f.result(timeout=120).outcome for f in futures]
    engine.close()
built = [f"{c.__module__}.{c.__qualname__}" for c, done in models().items()
         if done and not before.get(c) and c.__module__.startswith("openai.types")]
print(json.dumps({"outcomes": outcomes, "built": built}))
'''


def test_the_sdk_prepare_builds_the_models_the_checks_read() -> None:
    """After load_openai, judging every sdk check against the reference provider builds no
    model of ``openai.types`` on first use (on the event loop): each one the SDK reads is in
    ``sdk._MODELS``.  A new SDK version that reads other models fails here: add them."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO, child_env

    proc = subprocess.run([sys.executable, "-c", _BUILT_ON_FIRST_USE], cwd=REPO,
                          env=child_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["outcomes"] and set(found["outcomes"]) == {"pass"}, found
    assert found["built"] == [], found["built"]


class IntervalWitness(Prepared):
    """Remembers the GIL switch interval it ran under; waits for ``gate`` when given."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__(0.0)
        self.gate = gate
        self.interval: float | None = None

    def __call__(self) -> None:
        self.interval = sys.getswitchinterval()
        if self.gate is not None:
            self.gate.wait(10)
        super().__call__()


def test_a_prepare_runs_at_a_short_switch_interval_and_the_callers_comes_back() -> None:
    """The event loop's thread is not held up to 5 ms per socket event while a prepare holds
    the GIL (warmup's docstring); two prepares at once restore the interval only when the
    last one ends, however their threads are scheduled."""
    before = sys.getswitchinterval()
    gate = threading.Event()
    first, second = IntervalWitness(gate), IntervalWitness()
    first.__name__ = "first_library"  # type: ignore[attr-defined]
    second.__name__ = "second_library"  # type: ignore[attr-defined]
    try:
        running = warmup.start(first)
        # short from start() on, not from whenever the new thread first runs: a second
        # prepare ending before the first one's thread began had put 5 ms back meanwhile
        assert sys.getswitchinterval() == pytest.approx(warmup.SWITCH_INTERVAL)
        warmup.start(second).result(timeout=10)
        # the first still runs (the interval is kept in microseconds)
        assert sys.getswitchinterval() == pytest.approx(warmup.SWITCH_INTERVAL)
        gate.set()
        running.result(timeout=10)
    finally:
        gate.set()
    assert first.interval == second.interval == pytest.approx(warmup.SWITCH_INTERVAL)
    assert sys.getswitchinterval() == before
