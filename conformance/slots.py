"""Request slots: at most ``concurrency`` requests of one provider in flight at once.

A provider's ``concurrency:`` (providers.yaml, docs/CONTRACT.md) bounds what the provider sees:
requests in flight.  The engine admits several checks per slot, so a check waiting on another's
shared request, or judging, holds no slot; each request takes one for as long as it is in
flight (its retries and their pauses included, so a rate-limited provider is not sent more
while it asks the suite to wait).  A free slot goes to the waiting request whose check started
first: a check that has begun finishes before new ones begin, which keeps the longest chain of
dependent requests short and the results in order.

The time a check spends waiting for a slot is not its own: :class:`Waiting` adds it up so the
check's deadline (``timeouts.check``) can leave it out.  This module never imports pytest.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Waiting:
    """The seconds a check has waited for request slots (its requests' and, through
    :meth:`ProviderRuntime.shared`, the shared requests' it awaited)."""

    def __init__(self) -> None:
        self._total = 0.0
        self._since: float | None = None
        self._depth = 0

    def seconds(self) -> float:
        """Waited so far, a wait still in progress included."""
        now = time.perf_counter()
        return self._total + (now - self._since if self._since is not None else 0.0)

    def add(self, seconds: float) -> None:
        self._total += max(0.0, seconds)

    def begin(self) -> None:
        # Overlapping waits of one check (concurrent requests) count once.
        if self._depth == 0:
            self._since = time.perf_counter()
        self._depth += 1

    def end(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._since is not None:
            self._total += time.perf_counter() - self._since
            self._since = None


#: The running check's priority (lower goes first) and its wait accumulator; the engine sets
#: both in each check's task, and tasks a check starts (shared requests) inherit them.
PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar("conformance_priority",
                                                                default=1 << 62)
#: The priority of a request several checks share (a probe, a control): before any check's.
SHARED_PRIORITY = -1
WAITING: contextvars.ContextVar[Waiting | None] = contextvars.ContextVar("conformance_waiting",
                                                                         default=None)


class Slots:
    """A semaphore of ``size`` slots handing a free slot to the waiter of lowest priority
    number (then first come).  Used on one event loop."""

    def __init__(self, size: int) -> None:
        self._free = max(1, size)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self) -> None:
        """Take a slot, waiting (in priority order) if none is free."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiting = WAITING.get()
        if waiting is not None:
            waiting.begin()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (PRIORITY.get(), next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a slot as it was cancelled: pass it on
            else:
                future.cancel()  # its heap entry is skipped when reached
            raise
        finally:
            if waiting is not None:
                waiting.end()

    def release(self) -> None:
        """Give a slot back: to the first live waiter, else to the pool."""
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
