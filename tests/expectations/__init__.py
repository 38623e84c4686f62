"""What each reference fault must do to the suite: one module per group of families.

Each module defines ``EXPECTED: dict[fault, dict[check id, (outcome, message fragment)]]``
for the checks of its families; a fault may appear in several modules (its effects on each
family), and :func:`merged` combines them.  A fault listed with ``{}`` must change nothing in
that module's families.  Every check of the registry must be failed by some fault.
"""

from __future__ import annotations

import importlib
import pkgutil

Expect = dict[str, tuple[str, str]]


def merged() -> dict[str, Expect]:
    """All modules' expectations, per fault."""
    out: dict[str, Expect] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for fault, expect in module.EXPECTED.items():
            slot = out.setdefault(fault, {})
            overlap = set(slot) & set(expect)
            if overlap:
                raise AssertionError(f"{info.name}: {fault}: {sorted(overlap)} set twice")
            slot.update(expect)
    return out
