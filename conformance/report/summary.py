"""summary.md: the run in Markdown, short enough for ``$GITHUB_STEP_SUMMARY``.

The weighted score and pass rate (the builtin reference left out), security failures first,
one table row per provider (ranked by weighted score, the reference last, with its speed
figures), one line for the providers not run, the changes since the baseline (when there is
one), the flaky checks of a ``--repeat`` run and the deviations (fail, error, unsupported) with
their one-line messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.report.billing import costs, money, money_findings, overbilling_cost
from conformance.report.common import (
    DEVIATIONS,
    REFERENCE_LABEL,
    SCORE_EXPLAINED,
    SYMBOLS,
    WEIGHTED_EXPLAINED,
    Weighted,
    incomplete_note,
    is_reference,
    not_run_by_provider,
    ran_checks,
    ran_providers,
    security_failures,
    severities,
    unrun_reason,
    weighted_score,
)
from conformance.report.diff import RunDiff, md_cell, md_code, render_markdown, shown_changes
from conformance.report.flaky import score_of, score_value_of
from conformance.report.flaky import summary_section as flaky_section
from conformance.report.history import render_history_md
from conformance.report.speed import SPEED_EXPLAINED, Speed, median_p95, rate, speeds
from conformance.results import OUTCOMES, Result, RunData, outcome_counts, token_totals

#: Rows of the deviations table before "… and N more" (GitHub caps a step summary at 1 MiB).
MAX_ROWS = 200


def _duration(ms: object) -> str:
    if not isinstance(ms, int | float):
        return ""
    seconds = ms / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _speed_cells(figures: Speed | None) -> str:
    if figures is None:
        return " — | — | — |"
    return (f" {median_p95(figures.ttft_median, figures.ttft_p95)} | "
            f"{median_p95(figures.total_median, figures.total_p95)} | "
            f"{rate(figures.tokens_per_s)} |")


def render_summary_md(data: RunData, diff: RunDiff | None = None, *,
                      artifacts: str | None = None, history: Sequence[RunData] = ()) -> str:
    """The summary; ``artifacts``: the CI run's page, linked as where the reports are (set by
    :func:`conformance.report.write_reports` inside GitHub Actions); ``history``: earlier runs,
    for the trend table (:mod:`conformance.report.history`)."""
    run = data.run
    providers = ran_providers(data)
    checks = ran_checks(data)
    severity = severities(data)
    tokens = token_totals(data.results)
    by_provider: dict[str, list[Result]] = {}
    for result in data.results:
        by_provider.setdefault(result.provider, []).append(result)
    lines = [f"## Conformance matrix — run `{md_code(str(run.get('id', '?')))}`", ""]
    note = incomplete_note(data)
    if note is not None:
        missing = not_run_by_provider(data)
        where = ("; not run: " + ", ".join(f"{md_cell(p)} {n}" for p, n in missing.items())
                 if missing else "")
        lines += [f"> **{note}**{where}. The run did not finish: only the checks that "
                  "finished are counted.", ""]
    facts = [f"suite {md_cell(str(run.get('suite_version', '?')))}",
             f"started {md_cell(str(run.get('started_at') or '?'))}"]
    if _duration(run.get("duration_ms")):
        facts.append(_duration(run.get("duration_ms")))
    facts.append(f"{len(providers)} providers × {len(checks)} checks")
    lines.append(" · ".join(facts))
    lines.append("")
    if artifacts:
        lines += [f"Reports of this run (matrix.html, results.json, junit.xml): the artifacts of "
                  f"[{md_cell(artifacts)}]({artifacts}#artifacts).", ""]

    # Who is ranked, who is the reference, who was not run (as in matrix.html).
    unrun: list[tuple[str, str]] = []
    ranked: list[tuple[dict[str, object], Weighted, dict[str, int]]] = []
    reference: list[tuple[dict[str, object], Weighted, dict[str, int]]] = []
    for entry in providers:
        name = str(entry["name"])
        mine = by_provider.get(name, [])
        reason = unrun_reason(entry, mine)
        if reason is not None:
            unrun.append((name, reason))
            continue
        row = (entry, weighted_score(mine, severity), outcome_counts(mine))
        (reference if is_reference(entry) else ranked).append(row)

    def rate_of(row: tuple[dict[str, object], Weighted, dict[str, int]]) -> float | None:
        return score_value_of(by_provider.get(str(row[0]["name"]), []))

    ranked.sort(key=lambda r: (r[1].value is None, -(r[1].value or 0.0),
                               rate_of(r) is None, -(rate_of(r) or 0.0), str(r[0]["name"])))
    counted = [r for entry, _, _ in ranked for r in by_provider.get(str(entry["name"]), [])]
    totals = outcome_counts(counted)
    judged = totals["pass"] + totals["fail"]
    weighted = weighted_score(counted, severity)
    apart = " (the reference is left out)" if reference else ""
    flaky = sum(r.flaky for r in counted)
    of_them = f"; {flaky} of them flaky, counted as passes/K" if flaky else ""
    if reference and not ranked:
        lines.append("**Overall compatibility: —** — only the builtin reference was run; its "
                     "own figures are in its row.")
    else:
        lines.append(f"**Overall compatibility: {weighted.text} weighted by severity, "
                     f"{score_of(counted)} pass rate** — {totals['pass']} of {judged} judged "
                     f"checks pass{apart}{of_them}.")
    lines.append("")
    lines.append(f"{WEIGHTED_EXPLAINED} {SCORE_EXPLAINED}")
    lines.append("")

    security = [r for r in security_failures(data)
                if not any(str(e["name"]) == r.provider for e, _, _ in reference)]
    if security:
        lines += [f"### ⚠ Security failures ({len(security)})", "",
                  "| check | provider | message |", "|---|---|---|"]
        for r in security:
            lines.append(f"| `{md_code(r.check)}` | {md_cell(r.provider)} | "
                         f"{md_cell(r.message)} |")
        lines.append("")

    header = " | ".join(f"{SYMBOLS[o]} {o}" for o in OUTCOMES)
    cost = costs(data)
    priced = " cost |" if cost else ""
    fast = speeds(data)
    lines += [f"| provider | model | score | pass rate | {header} | tokens (requests) |{priced}"
              " TTFT (median · p95) | total time (median · p95) | output tok/s |",
              "|---" * (len(OUTCOMES) + 8 + (1 if cost else 0)) + "|"]
    for entry, mine_weighted, counts in ranked + reference:
        name = str(entry["name"])
        models = entry.get("models") or {}
        model = models.get("default", "") if isinstance(models, dict) else ""
        spent = tokens.get(name, {})
        used = spent.get("prompt", 0) + spent.get("completion", 0)
        marks = ""
        if is_reference(entry):
            marks += f" ({REFERENCE_LABEL})"
        failed = sum(1 for r in security if r.provider == name)
        if failed:
            marks += f" ⚠ {failed} security"
        lines.append(
            f"| {md_cell(name)}{marks} | {md_cell(str(model))} | {mine_weighted.text} | "
            f"{score_of(by_provider.get(name, []))} | "
            + " | ".join(str(counts[o]) for o in OUTCOMES)
            + f" | {used} ({spent.get('requests', 0)}) |"
            + (f" {money(cost[name])} |" if name in cost else " |" if cost else "")
            + _speed_cells(fast.get(name)))
    lines.append("")
    if unrun:
        lines += [f"{len(unrun)} not run: " + ", ".join(
            f"{md_cell(name)} ({md_cell(reason)})" for name, reason in unrun) + ".", ""]
    if fast:
        lines += [SPEED_EXPLAINED, ""]
    if history:
        lines.append(render_history_md(data, history))
    if cost:
        lines += [f"Cost of this run: {money(sum(cost.values()))} in all (tokens × each "
                  "provider's `price:` per 1M tokens).", ""]
    findings = money_findings(data)
    if findings:
        lines += [f"### Billing and model identity ({len(findings)})", "",
                  "| check | provider | message |", "|---|---|---|"]
        for r in findings:
            extra = overbilling_cost(data, r.provider) if r.check == "billing.prompt_tokens" \
                else None
            shown = md_cell(r.message) + (f" — costs {md_cell(extra)}" if extra else "")
            lines.append(f"| `{md_code(r.check)}` | {md_cell(r.provider)} | {shown} |")
        lines.append("")
    listed: set[tuple[str, str]] = set()
    if diff is not None:
        lines.append(render_markdown(diff))
        listed = {(c.provider, c.check) for c in shown_changes(diff)}
    lines += flaky_section(data)
    deviations = [r for r in data.results if r.outcome in DEVIATIONS]
    above = sum(1 for r in deviations if (r.provider, r.check) in listed)
    # A row of the "since baseline" table is not repeated here.
    deviations = [r for r in deviations if (r.provider, r.check) not in listed]
    also = f" ({above} more listed above, since the baseline)" if above else ""
    if deviations:
        lines += [f"### Deviations ({len(deviations)}){also}", "", "<details open>"
                  if len(deviations) <= 30 else "<details>",
                  f"<summary>{len(deviations)} checks failed, errored or were declined"
                  "</summary>", "",
                  "| check | provider | outcome | message |", "|---|---|---|---|"]
        for r in deviations[:MAX_ROWS]:
            lines.append(f"| `{md_code(r.check)}` | {md_cell(r.provider)} | "
                         f"{SYMBOLS.get(r.outcome, '?')} {r.outcome} | {md_cell(r.message)} |")
        if len(deviations) > MAX_ROWS:
            lines.append(f"\n… and {len(deviations) - MAX_ROWS} more in matrix.html.")
        lines += ["", "</details>", ""]
    elif above:
        lines += [f"No other deviations than the {above} listed since the baseline.", ""]
    else:
        lines += ["No deviations: every judged check passed.", ""]
    lines.append("Open `matrix.html` from the report directory for the evidence of every cell.")
    return "\n".join(lines) + "\n"
