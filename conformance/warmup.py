"""Heavy libraries a check needs, loaded off the event loop while the run's first requests
are in flight.

A check may name a ``prepare`` function (:func:`conformance.checks.registry.check`): work
that must happen once per process before it runs, such as importing the official ``openai``
SDK and building its pydantic models (~0.8 s of CPU).  Done inside a check, that work would
hold the engine's event loop, and every provider's requests with it; done before the run, it
would delay the start of a run that does not select the check.  The engine calls
:func:`start` when such a check is submitted (the work begins in a thread of its own while the
preflight waits on the network) and awaits :func:`ready` before judging it (the loop runs
the other checks meanwhile).  This module never imports pytest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable

Prepare = Callable[[], None]

_started: dict[Prepare, concurrent.futures.Future[None]] = {}
_lock = threading.Lock()


def start(prepare: Prepare) -> concurrent.futures.Future[None]:
    """Run ``prepare`` once per process in a daemon thread; its future (done when it
    returned, or with what it raised)."""
    with _lock:
        future = _started.get(prepare)
        if future is None:
            future = concurrent.futures.Future()
            _started[prepare] = future
            threading.Thread(target=_run, args=(prepare, future), daemon=True,
                             name=f"conformance-prepare-{prepare.__name__}").start()
    return future


def _run(prepare: Prepare, future: concurrent.futures.Future[None]) -> None:
    try:
        prepare()
    except BaseException as exc:  # handed to the checks that wait for it (a suite fault)
        future.set_exception(exc)
    else:
        future.set_result(None)


async def ready(prepare: Prepare) -> None:
    """Wait, without holding the event loop, until ``prepare`` has run (started if not yet);
    raises what it raised.  A waiter cancelled meanwhile (an interrupted run) leaves the
    work and the other waiters alone."""
    await asyncio.shield(asyncio.wrap_future(start(prepare)))
