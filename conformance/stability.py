"""Stability: ``--repeat K`` runs each check K times and folds the runs into one result.

A check judged K times against a provider has K *runs*, each with its own outcome, message and
duration (and its own requests: nothing is shared across repeats).  The result of the pair is
one outcome, chosen by :func:`fold` by these rules (README, "Stability: --repeat"):

- Only runs that reached a verdict about the provider count: ``pass``, ``fail`` and
  ``unsupported``.  ``error`` (no verdict: timeout, network) and ``skip`` (e.g. the
  ``--max-tokens`` budget spent before that run) never turn a verdict into another; they are
  listed in ``runs`` and named in the message.
- No run reached a verdict: ``error`` if any run errored, else ``skip``.
- Every verdict the same: that outcome (``pass`` with all K passing shows "3/3").
- At least one pass and at least one fail or unsupported: **flaky** — outcome ``pass`` with
  ``flaky: true`` ("2/3 flaky"): the provider can behave as specified and does not always,
  which is not a failure to report as one (junit: a passed test) but is never shown as a
  plain pass either.
- Fails and unsupported without any pass: ``fail`` (it deviated, and never passed).

A flaky cell counts in a score as ``passes / verdicts`` of a pass and the rest as a fail
(:func:`pass_fraction`, :func:`judged_counts`).  This module never imports pytest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.results import Outcome, Result

#: ``--repeat`` accepts 1..MAX_REPEAT.
MAX_REPEAT = 20
#: Outcomes that are a verdict about the provider (the others are "no verdict").
VERDICTS = frozenset({"pass", "fail", "unsupported"})


def parse_repeat(value: object) -> int:
    """``--repeat`` as an int in 1..MAX_REPEAT; ValueError with one line otherwise."""
    text = str(value).strip()
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"--repeat takes a whole number from 1 to {MAX_REPEAT}, got "
                         f"{text[:40]!r}") from None
    if not 1 <= number <= MAX_REPEAT:
        raise ValueError(f"--repeat takes a whole number from 1 to {MAX_REPEAT}, got {number}")
    return number


@dataclass(frozen=True)
class Folded:
    """The result of K runs: outcome, message, whether flaky, and the run it speaks for."""

    outcome: Outcome
    message: str
    flaky: bool
    representative: int
    """Index of the run whose message (and measured facts) the result carries."""


def fold(runs: Sequence[Mapping[str, Any]]) -> Folded:
    """One outcome for the runs ``[{outcome, message, duration_ms}, ...]`` (module rules)."""
    if not runs:
        raise ValueError("fold() needs at least one run")
    outcomes = [str(r["outcome"]) for r in runs]
    k = len(runs)
    verdicts = [i for i, o in enumerate(outcomes) if o in VERDICTS]
    passes = outcomes.count("pass")
    flaky = False
    if not verdicts:
        outcome = "error" if "error" in outcomes else "skip"
        index = outcomes.index(outcome)
    elif {outcomes[i] for i in verdicts} == {outcomes[verdicts[0]]}:
        outcome = outcomes[verdicts[0]]
        index = verdicts[0]
    elif passes:
        outcome, flaky = "pass", True
        index = next(i for i in verdicts if outcomes[i] != "pass")
    else:
        outcome = "fail"
        index = outcomes.index("fail")
    message = " ".join(str(runs[index]["message"]).split())
    if flaky:
        message = (f"flaky: passed {passes} of {k} runs; run {index + 1} "
                   f"{outcomes[index]}: {message}")
    else:  # unanimous verdicts keep their message; the runs that differ are named after it
        others = [_said(runs, i) for i in range(k) if outcomes[i] != outcome]
        if others:
            message += f" ({'; '.join(others)})"
    return Folded(outcome, message, flaky, index)  # type: ignore[arg-type]


def _said(runs: Sequence[Mapping[str, Any]], i: int) -> str:
    text = " ".join(str(runs[i]["message"]).split())
    return f"run {i + 1} {runs[i]['outcome']}: {text[:120]}"


# -- reading results ---------------------------------------------------------------------


def repeat_of(result: Result) -> int:
    """How many times the result's check ran (1 without ``--repeat``)."""
    return len(result.runs) or 1


def passes_of(result: Result) -> int:
    """Runs that passed (1 or 0 without ``--repeat``)."""
    if not result.runs:
        return int(result.outcome == "pass")
    return sum(r.get("outcome") == "pass" for r in result.runs)


def label(result: Result) -> str:
    """``"3/3"``, ``"2/3"`` for a repeated result, ``""`` for a single run."""
    return f"{passes_of(result)}/{repeat_of(result)}" if result.runs else ""


def pass_fraction(result: Result) -> float | None:
    """What a result counts for in a score: 1.0 a pass, 0.0 a fail, passes / verdicts for a
    flaky pass (2 of 3 runs passed: 0.67); None for what a score does not count
    (unsupported, skip, error)."""
    if result.outcome == "fail":
        return 0.0
    if result.outcome != "pass":
        return None
    if not result.flaky:
        return 1.0
    verdicts = [r for r in result.runs if r.get("outcome") in VERDICTS]
    return passes_of(result) / len(verdicts) if verdicts else 1.0


def judged_counts(results: Iterable[Result]) -> dict[str, float]:
    """``{"pass": p, "fail": f}`` where a flaky cell adds its :func:`pass_fraction` to
    ``pass`` and the rest to ``fail`` (what :func:`conformance.report.common.score_value`
    reads, with fractions)."""
    counts = {"pass": 0.0, "fail": 0.0}
    for result in results:
        fraction = pass_fraction(result)
        if fraction is not None:
            counts["pass"] += fraction
            counts["fail"] += 1.0 - fraction
    return counts


def flaky_results(results: Iterable[Result]) -> list[Result]:
    """The flaky results, in the order given."""
    return [r for r in results if r.flaky]
