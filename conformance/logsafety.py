"""The logging module's table of loggers, safe to read while other threads add to it.

pytest's logging plugin (pytest 9 here) walks ``logging.Logger.manager.loggerDict.values()`` at
the start of every test phase, in the main thread, to attach its capture handler to loggers
that do not propagate. During a run other threads create loggers: the openai SDK's warm-up
imports the SDK (:mod:`conformance.warmup`: ``logging.getLogger`` in module after module) and
the engine's thread imports what a check or a builtin server needs. A logger added during that
walk ends the phase with ``RuntimeError: dictionary changed size during iteration`` — the item
errors in pytest's own code and its result, already judged and paid for, never reaches the
result files (seen about once in a hundred runs on two busy cores; a test of 154 checks found
153).

While a run is on, :func:`guard` puts a :class:`SnapshotDict` in the table's place: the same
entries, added to as before (under the logging module's lock, as ``getLogger`` does), whose
``keys()``, ``values()``, ``items()`` and iteration read a copy taken in one step (a C call
holding the GIL), so a walk never sees the table change under it.  :func:`restore` puts a
plain dict back, loggers created meanwhile included.  This module never imports pytest.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values


class SnapshotDict(dict[str, Any]):  # logging's table: name → Logger | PlaceHolder
    """A dict whose views and iteration are of a copy made at once, never of the live table."""

    def _snapshot(self) -> dict[str, Any]:
        # One C call holding the GIL: no other thread runs while the pairs are copied.
        # (Not dict.copy: with __iter__ overridden it would come back through keys().)
        return dict(dict.items(self))

    def keys(self) -> dict_keys[str, Any]:
        return self._snapshot().keys()

    def values(self) -> dict_values[str, Any]:
        return self._snapshot().values()

    def items(self) -> dict_items[str, Any]:
        return self._snapshot().items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshot())


def _lock() -> contextlib.AbstractContextManager[Any]:
    """The logging module's own lock, which ``getLogger`` holds while it adds a logger."""
    lock: contextlib.AbstractContextManager[Any] | None = getattr(logging, "_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


def guard() -> bool:
    """Put a :class:`SnapshotDict` in place of the logger table; whether this call did (for
    :func:`restore`: not when one is already there)."""
    manager = logging.Logger.manager
    with _lock():
        if isinstance(manager.loggerDict, SnapshotDict):
            return False
        manager.loggerDict = SnapshotDict(manager.loggerDict)
    return True


def restore(guarded: bool) -> None:
    """Undo :func:`guard` (``guarded``: what it returned)."""
    if not guarded:
        return
    manager = logging.Logger.manager
    with _lock():
        if isinstance(manager.loggerDict, SnapshotDict):
            manager.loggerDict = dict(manager.loggerDict)
