"""Flaky cells in the reports (``--repeat K``; the rules are :mod:`conformance.stability`'s).

A flaky cell is a pass whose runs disagreed ("2/3 flaky"): never listed as a deviation, never a
failure in junit, but shown apart everywhere: its own section in summary.md, a row and a list
in the terminal summary, a class and a legend entry in matrix.html.  Scores count it as
``passes / verdicts`` of a pass (:func:`score_of`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from conformance.i18n import N_, _, localize, ngettext
from conformance.report.common import outcome_name
from conformance.report.diff import md_cell, md_code
from conformance.results import Result, RunData, printable
from conformance.stability import flaky_results, judged_counts, label

#: What a flaky cell means, in one line (legend, tooltips, summary.md).
MEANING = N_("flaky: the check ran K times (--repeat K) and the runs disagreed — some passed, "
             "some failed; counted as passes/K of a pass in the score, not as a fail")
#: Flaky cells listed in the terminal before "… and N more".
MAX_TERMINAL = 10


def score_value_of(results: Iterable[Result]) -> float | None:
    """pass ÷ (pass + fail) in percent, a flaky cell counting ``passes / verdicts`` of a pass
    (:func:`conformance.stability.judged_counts`); None when nothing was judged."""
    counts = judged_counts(results)
    judged = counts["pass"] + counts["fail"]
    return 100 * counts["pass"] / judged if judged else None


def score_of(results: Iterable[Result]) -> str:
    """The score as text, rounded down (``"92%"``; ``"—"`` when nothing was judged): equal to
    :func:`conformance.report.common.score` of the outcome counts when nothing is flaky."""
    value = score_value_of(results)
    return "—" if value is None else f"{math.floor(round(value, 6))}%"


def repeat_of_run(data: RunData) -> int:
    """K of a ``--repeat K`` run (1 otherwise)."""
    value = data.run.get("repeat")
    if isinstance(value, int) and value > 1:
        return value
    return max((len(r.runs) for r in data.results), default=1) or 1


def terminal_lines(data: RunData) -> list[str]:
    """Plain lines for the terminal summary: the flaky cells, a few by name."""
    flaky = flaky_results(data.results)
    if not flaky:
        return []
    lines = [ngettext("flaky: {n} check passed some of its {k} runs, not all (scored as "
                      "passes/K, not as fails):",
                      "flaky: {n} checks passed some of their {k} runs, not all (scored as "
                      "passes/K, not as fails):", len(flaky)).format(
        n=len(flaky), k=repeat_of_run(data))]
    for result in flaky[:MAX_TERMINAL]:
        failed = [run for run in result.runs if run["outcome"] != "pass"]
        said = (printable(" ".join(localize(str(failed[0]["message"])).split()))[:60]
                if failed else "")
        lines.append(f"  {label(result)} {printable(result.check)} [{printable(result.provider)}]"
                     f"  {said}")
    if len(flaky) > MAX_TERMINAL:
        lines.append("  " + _("… and {n} more in summary.md").format(
            n=len(flaky) - MAX_TERMINAL))
    return lines


def summary_section(data: RunData) -> list[str]:
    """The "Flaky" section of summary.md (no lines when nothing is flaky)."""
    flaky = flaky_results(data.results)
    if not flaky:
        return []
    lines = [_("### Flaky ({n})").format(n=len(flaky)), "",
             _("Checks whose {k} runs (`--repeat`) disagreed: they passed some runs and failed "
               "others. Not deviations and not failures in junit.xml; the score counts each as "
               "passes/K of a pass.").format(k=repeat_of_run(data)), "",
             "| " + " | ".join((_("check"), _("provider"), _("passes"),
                                _("a run that did not pass"))) + " |", "|---|---|---|---|"]
    for result in flaky:
        failed = [(i, run) for i, run in enumerate(result.runs, 1) if run["outcome"] != "pass"]
        said = (_("run {n} {outcome}: {message}").format(
            n=failed[0][0], outcome=outcome_name(str(failed[0][1]["outcome"])),
            message=localize(str(failed[0][1]["message"]))) if failed else "")
        lines.append(f"| `{md_code(result.check)}` | {md_cell(result.provider)} | "
                     f"{label(result)} | {md_cell(said)} |")
    return [*lines, ""]
