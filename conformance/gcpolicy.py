"""The cyclic garbage collector's thresholds during a run.

A run allocates millions of short-lived objects (requests, parsed bodies, evidence records)
and keeps every result until the reports are written.  At CPython's default thresholds
(700, 10, 10; 2000 on 3.13) a young collection runs every ~700 net allocations and an older
one every ~7,000, and each older one walks every object that survived since the last.
Measured with ``gc.callbacks`` on 20 instant providers (2,926 checks): 1,200 young, 109 middle
and 9 full collections, ~1.9 s of a 7 s run.  With at least (10,000, 10, 10) the same run takes
~5.9 s, and 100 providers at 300 ms 29.6 s instead of 34.2 s; garbage cycles wait longer for
their collection, which raised that run's peak memory from 469 to 485 MB.  (10,000, 100, 10)
saved ~4 % more CPU at 20 providers but peaked ~16-20 MB higher at 100 (506 MB then, above
the 500 MB ``make bench`` allows; 457 MB once the engine stopped keeping finished futures).

Python 3.14's incremental collector gives the second and third threshold another meaning, so
there the defaults stay.  A threshold a user or a host program already raised is kept.  This
module never imports pytest.
"""

from __future__ import annotations

import gc
import sys

#: The least thresholds a run sets (generation 0, 1, 2).
RUN_THRESHOLDS = (10_000, 10, 10)


def relax() -> tuple[int, int, int] | None:
    """Raise each threshold to at least :data:`RUN_THRESHOLDS`; the thresholds before, for
    :func:`restore` (None when nothing changed)."""
    if sys.version_info >= (3, 14):
        return None
    before = gc.get_threshold()
    wanted = tuple(max(now, least) for now, least in zip(before, RUN_THRESHOLDS, strict=True))
    if wanted == before:
        return None
    gc.set_threshold(*wanted)
    return before


def restore(before: tuple[int, int, int] | None) -> None:
    """Undo :func:`relax` (``before``: what it returned)."""
    if before is not None:
        gc.set_threshold(*before)
