"""Request slots: at most ``concurrency`` requests of one provider in flight at once.

A provider's ``concurrency:`` (providers.yaml, docs/CONTRACT.md) bounds what the provider sees:
requests in flight.  The engine admits several checks per slot, so a check waiting on another's
shared request, or judging, holds no slot; each request takes one for as long as it is in
flight (its retries and their pauses included, so a rate-limited provider is not sent more
while it asks the suite to wait).  A free slot goes to a shared request first (others wait on
it), then to the check with the most requests still to send, then to the check that has sent
the most, then to the check submitted first (:class:`Priority`): the longest chains of
dependent requests start first and a chain under way is finished before new checks begin,
which keeps the run as short as its longest chain.

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
    """Who goes first for a free slot: the check with the longest chain of requests still to
    send (what it is expected to send, :mod:`conformance.cost_table`, less what it has sent:
    a check of five dependent requests starts before the single-request ones, so the run's
    longest chain is not pushed back behind them), then the check that has sent the most (a
    chain under way is finished), then the check submitted first."""

    __slots__ = ("expected", "hops", "index")

    def __init__(self, index: int, hops: int = 0, expected: float = 0.0) -> None:
        self.index = index
        self.hops = hops
        self.expected = expected

    def key(self) -> tuple[float, int, int]:
        if self.hops >= SHARED_HOPS:  # a request several checks wait on: before any check's
            return (-float(SHARED_HOPS), 0, self.index)
        return (-max(self.expected - self.hops, 1.0), -self.hops, self.index)


#: The running check's priority (the engine sets it in each check's task; tasks a check starts
#: inherit it) and its wait accumulator.
PRIORITY: contextvars.ContextVar[Priority | None] = contextvars.ContextVar(
    "conformance_priority", default=None)
WAITING: contextvars.ContextVar[Waiting | None] = contextvars.ContextVar("conformance_waiting",
                                                                         default=None)
#: The hops of a request several checks share (a probe, a control): before any check's.
SHARED_HOPS = 1 << 30
#: How long free slots may wait for the checks starting together to queue their requests.
SETTLE = 0.05
#: Loop iterations without a new request after which they have (a shared request is queued
#: two or three iterations after the check that creates it).
QUIET = 3
#: Where a request outside any check queues (after every check's).
_OUTSIDE = (0.0, 0, 1 << 62)


def add_hop() -> None:
    """The running check has sent one more request (see :class:`Priority`)."""
    priority = PRIORITY.get()
    if priority is not None:
        priority.hops += 1


class Slots:
    """A semaphore of ``size`` slots handing a free slot to the waiter of first
    :class:`Priority` (then first come).  Used on one event loop."""

    def __init__(self, size: int) -> None:
        self._free = max(1, size)
        self._waiters: list[tuple[tuple[float, int, int], int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._dispatch_due = False

    async def acquire(self) -> None:
        """Take a slot, in priority order.  Free slots are handed out a moment later, once a few
        iterations of the event loop have queued no new request (:data:`SETTLE` at most): checks
        that start together all queue first, so the shared requests they create and the
        longest chains go before the others' single requests."""
        loop = asyncio.get_running_loop()
        if self._free > 0 and not self._dispatch_due:
            self._dispatch_due = True
            loop.call_soon(self._settle, loop, -1, 0, time.perf_counter() + SETTLE)
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

    def _settle(self, loop: asyncio.AbstractEventLoop, queued: int, quiet: int,
                until: float) -> None:
        """Dispatch once :data:`QUIET` loop iterations in a row added no waiter (or at
        ``until``)."""
        quiet = quiet + 1 if len(self._waiters) == queued else 0
        if quiet < QUIET and time.perf_counter() < until:
            loop.call_soon(self._settle, loop, len(self._waiters), quiet, until)
        else:
            self._dispatch()

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
