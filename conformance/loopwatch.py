"""How late the client itself was while it read a stream: a heartbeat on its event loop.

The transport stamps each SSE event with the time its reader got to it, not the time the bytes
reached the machine.  When the client's event loop is held up — another task computing on the
same loop, the thread descheduled by a busy machine, waiting for the GIL another thread holds —
the events that arrived meanwhile wait in the socket and are all read, and stamped, at once
afterwards: a stream the provider paced looks like a burst.  ``streaming.real_time`` must not
mistake the client's stall for the provider's buffering, so every streamed request is read
under a :class:`LoopWatch`: a task on the same loop wakes every :data:`TICK_S` and then lets
the loop turn :data:`TURNS` more times.  Each turn the loop also reads the sockets that are
ready and steps every task that can run, the stream's reader included, which needs fewer turns
than that to stamp the bytes that were waiting.  So whatever had arrived when the heartbeat
woke has been stamped when its turns are done, and the bytes stamped after that arrived after
the wake-up.  A period from one wake-up to the end of the next heartbeat's turns longer than
:data:`STALL_MS` is a *stall*; stalls are kept on the
:class:`~conformance.transport.Exchange` as ``client_stalls`` (ms since the request was sent).
A burst read at the end of a stall may have arrived any time during it.

The heartbeat runs only while at least one stream is being read, one per event loop.  This
module is pure asyncio: no pytest, no httpx.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

#: The heartbeat's period.
TICK_S = 0.01
#: Loop turns the heartbeat waits after each wake-up.  Bytes that arrived before it woke are
#: read from the socket in the next turn at the latest, and the stream reader stamps them
#: three turns after that (the read returns through the transport, ``wait_for`` hands it over, the
#: reader stamps it): five turns, and one more to spare.
TURNS = 6
#: A period from one heartbeat's wake-up to the end of the next one's turns longer than this
#: (ms) is a stall of the client: a responsive loop takes :data:`TICK_S` plus a few ms of
#: scheduling delay (a busy machine, a thread holding the GIL for its 5 ms switch interval).
STALL_MS = 20.0

Stall = tuple[float, float]
"""(from, to): ms since the watched request was sent."""

_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWatch] = (
    weakref.WeakKeyDictionary())


class _Watcher:
    """One watched request: its start (perf_counter seconds) and the stalls seen since."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.stalls: list[Stall] = []

    def note(self, begin: float, end: float) -> None:
        begin = max(begin, self.started)
        if (end - begin) * 1000 > STALL_MS:
            self.stalls.append((round((begin - self.started) * 1000, 1),
                                round((end - self.started) * 1000, 1)))


class LoopWatch:
    """The heartbeat of one event loop (see the module docstring); :meth:`of` gives it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watchers: set[_Watcher] = set()
        self._task: asyncio.Task[None] | None = None
        self._last = time.perf_counter()

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop | None = None) -> LoopWatch:
        """The watch of ``loop`` (the running loop by default), made on first use."""
        loop = loop or asyncio.get_running_loop()
        watch = _WATCHES.get(loop)
        if watch is None:
            watch = _WATCHES[loop] = cls(loop)
        return watch

    @property
    def active(self) -> bool:
        """A request is being watched."""
        return bool(self._watchers)

    @contextmanager
    def watching(self, started: float) -> Iterator[list[Stall]]:
        """Note the loop's stalls from ``started`` (perf_counter seconds) until the block
        ends, the one in progress then included; yields the list they are appended to."""
        watcher = _Watcher(started)
        if not self._watchers:
            self._last = time.perf_counter()
        self._watchers.add(watcher)
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._beat())
        try:
            yield watcher.stalls
        finally:
            self._watchers.discard(watcher)
            watcher.note(self._last, time.perf_counter())

    async def _beat(self) -> None:
        while self._watchers:
            await asyncio.sleep(TICK_S)
            woke = time.perf_counter()
            for _ in range(TURNS):
                await asyncio.sleep(0)
            done = time.perf_counter()
            if (done - self._last) * 1000 > STALL_MS:
                for watcher in self._watchers:
                    watcher.note(self._last, done)
            self._last = woke


def blind_since(stalls: list[Stall] | None, begin: float, end: float) -> float | None:
    """The start (ms since the request) of the earliest client stall overlapping ``[begin,
    end]``: bytes stamped in that window may have arrived as early as that.  ``begin`` when
    no stall overlaps it; None when the request was not watched."""
    if stalls is None:
        return None
    return min([a for a, b in stalls if a <= end and b >= begin] + [begin])
