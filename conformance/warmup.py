"""Heavy libraries a check needs, loaded off the event loop while the run's first requests
are in flight.

A check may name a ``prepare`` function (:func:`conformance.checks.registry.check`): work
that must happen once per process before it runs, such as importing the official ``openai``
SDK and building its pydantic models (~0.8 s of CPU).  Done inside a check, that work would
hold the engine's event loop, and every provider's requests with it; done before the run, it
would delay the start of a run that does not select the check.  The engine calls
:func:`start` when such a check is submitted (the work begins in a thread of its own while the
preflight waits on the network) and awaits :func:`ready` before judging it (the loop runs
the other checks meanwhile).

A prepare is CPU-bound Python (imports, pydantic model builds) beside the event loop's thread,
which needs the GIL for a moment after each socket event.  At CPython's default switch interval
(5 ms) the loop's thread waits up to that long for every one (the convoy effect, bpo-7946):
one provider at 300 ms per request took ~0.4 s longer whenever the SDK checks ran (median of 8:
3.35 s vs 2.94 s), the first requests of its longest chain held back.  While a prepare runs the
interval is :data:`SWITCH_INTERVAL`, set by :func:`start` itself (not by the new thread when it
first runs).  This module never imports pytest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Callable

Prepare = Callable[[], None]

#: The GIL switch interval (seconds) while a prepare runs.
SWITCH_INTERVAL = 0.0002

_started: dict[Prepare, concurrent.futures.Future[None]] = {}
_lock = threading.Lock()
#: Prepares running, and the switch interval from before the first of them began.
_running = 0
_interval_before = 0.0


def start(prepare: Prepare) -> concurrent.futures.Future[None]:
    """Run ``prepare`` once per process in a daemon thread; its future (done when it
    returned, or with what it raised)."""
    with _lock:
        future = _started.get(prepare)
        if future is None:
            future = concurrent.futures.Future()
            _started[prepare] = future
            _shorten_switch_interval()  # now, not when the thread first runs: no window
            threading.Thread(target=_run, args=(prepare, future), daemon=True,
                             name=f"conformance-prepare-{prepare.__name__}").start()
    return future


def _run(prepare: Prepare, future: concurrent.futures.Future[None]) -> None:
    try:
        try:
            prepare()
        finally:
            _restore_switch_interval()  # before any waiter resumes
    except BaseException as exc:  # handed to the checks that wait for it (a suite fault)
        future.set_exception(exc)
    else:
        future.set_result(None)


def _shorten_switch_interval() -> None:
    """Called with ``_lock`` held, by :func:`start`."""
    global _running, _interval_before
    if _running == 0:
        _interval_before = sys.getswitchinterval()
        sys.setswitchinterval(min(_interval_before, SWITCH_INTERVAL))
    _running += 1


def _restore_switch_interval() -> None:
    global _running
    with _lock:
        _running -= 1
        if _running == 0:
            sys.setswitchinterval(_interval_before)


async def ready(prepare: Prepare) -> None:
    """Wait, without holding the event loop, until ``prepare`` has run (started if not yet);
    raises what it raised.  A waiter cancelled meanwhile (an interrupted run) leaves the
    work and the other waiters alone."""
    await asyncio.shield(asyncio.wrap_future(start(prepare)))
