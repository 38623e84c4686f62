"""Request slots: at most ``concurrency`` requests of one provider in flight at once.

A provider's ``concurrency:`` (providers.yaml, docs/CONTRACT.md) bounds what the provider sees:
requests in flight.  The engine admits several checks per slot, so a check waiting on another's
shared request, or judging, holds no slot; each request takes one for as long as it is in
flight (its retries and their pauses included, so a rate-limited provider is not sent more
while it asks the suite to wait).  A free slot goes to a shared request first (others wait on
it), then to the check that has sent the most requests, then to the check submitted first: a
chain of dependent requests under way is finished before new checks begin, which keeps the
longest chain short.

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


class Priority:
    """Who goes first for a free slot: the check that has sent the most requests (a long
    chain of dependent requests is under way: finish it), then the check submitted first."""

    __slots__ = ("hops", "index")

    def __init__(self, index: int, hops: int = 0) -> None:
        self.index = index
        self.hops = hops

    def key(self) -> tuple[int, int]:
        return (-self.hops, self.index)


#: The running check's priority (the engine sets it in each check's task; tasks a check starts
#: inherit it) and its wait accumulator.
PRIORITY: contextvars.ContextVar[Priority | None] = contextvars.ContextVar(
    "conformance_priority", default=None)
#: The hops of a request several checks share (a probe, a control): before any check's.
SHARED_HOPS = 1 << 30
#: Where a request outside any check queues (after every check's).
_OUTSIDE = (0, 1 << 62)


def add_hop() -> None:
    """The running check has sent one more request (see :class:`Priority`)."""
    priority = PRIORITY.get()
    if priority is not None:
        priority.hops += 1
WAITING: contextvars.ContextVar[Waiting | None] = contextvars.ContextVar("conformance_waiting",
                                                                         default=None)


class Slots:
    """A semaphore of ``size`` slots handing a free slot to the waiter of first
    :class:`Priority` (then first come).  Used on one event loop."""

    def __init__(self, size: int) -> None:
        self._free = max(1, size)
        self._waiters: list[tuple[tuple[int, int], int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._dispatch_due = False

    async def acquire(self) -> None:
        """Take a slot, in priority order.  Free slots are handed out a moment later (after the
        event loop has run what was ready, twice): checks that start together all queue first,
        so a shared request one of them creates goes before the others' own requests."""
        loop = asyncio.get_running_loop()
        if self._free > 0 and not self._dispatch_due:
            self._dispatch_due = True
            loop.call_soon(loop.call_soon, self._dispatch)
        waiting = WAITING.get()
        if waiting is not None:
            waiting.begin()
        future: asyncio.Future[None] = loop.create_future()
        priority = PRIORITY.get()
        heapq.heappush(self._waiters, (priority.key() if priority is not None else _OUTSIDE,
                                       next(self._order), future))
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
        if not self._hand_over():
            self._free += 1

    def _hand_over(self) -> bool:
        """Give a slot to the first live waiter; False when none waits."""
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return True
        return False

    def _dispatch(self) -> None:
        """Hand the free slots to the first waiters."""
        self._dispatch_due = False
        while self._free > 0 and self._hand_over():
            self._free -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
