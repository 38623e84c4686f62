"""summary.md: the run in Markdown, short enough for ``$GITHUB_STEP_SUMMARY``.

The weighted score and pass rate (the builtin reference left out), security failures first,
one table row per provider (ranked by weighted score, the reference last, with its speed
figures), one line for the providers not run, the changes since the baseline (when there is
one), the flaky checks of a ``--repeat`` run and the deviations (fail, error, unsupported) with
their one-line messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.i18n import _, localize, ngettext, pgettext
from conformance.report.billing import costs, money, money_findings, overbilling_cost
from conformance.report.common import (
    DEVIATIONS,
    REFERENCE_LABEL,
    SYMBOLS,
    WEIGHTED_EXPLAINED,
    Weighted,
    incomplete_note,
    is_reference,
    not_run_by_provider,
    outcome_name,
    ran_checks,
    ran_providers,
    score_explained,
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


def full_stop() -> str:
    """``"."`` in the active language (msgctxt ``sentence end``)."""
    return pgettext("sentence end", ".")


def _duration(ms: object) -> str:
    if not isinstance(ms, int | float):
        return ""
    seconds = ms / 1000
    return (_("{n} s").format(n=f"{seconds:.1f}") if seconds < 120
            else _("{n} min").format(n=f"{seconds / 60:.1f}"))


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
    lines = [_("## Conformance matrix — run `{id}`").format(id=md_code(str(run.get("id", "?")))),
             ""]
    note = incomplete_note(data)
    if note is not None:
        missing = not_run_by_provider(data)
        where = (_("; not run: ") + ", ".join(f"{md_cell(p)} {n}" for p, n in missing.items())
                 if missing else "")
        lines += [f"> **{note}**{where}. " + _("The run did not finish: only the checks that "
                                               "finished are counted."), ""]
    facts = [_("suite {version}").format(version=md_cell(str(run.get("suite_version", "?")))),
             _("started {time}").format(time=md_cell(str(run.get("started_at") or "?")))]
    if _duration(run.get("duration_ms")):
        facts.append(_duration(run.get("duration_ms")))
    facts.append(_("{providers} providers × {checks} checks").format(
        providers=len(providers), checks=len(checks)))
    lines.append(" · ".join(facts))
    lines.append("")
    if artifacts:
        lines += [_("Reports of this run (matrix.html, results.json, junit.xml): the artifacts "
                    "of {link}.").format(link=f"[{md_cell(artifacts)}]({artifacts}#artifacts)"),
                  ""]

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
    counted = [r for row in ranked for r in by_provider.get(str(row[0]["name"]), [])]
    reference_names = {str(row[0]["name"]) for row in reference}
    totals = outcome_counts(counted)
    judged = totals["pass"] + totals["fail"]
    weighted = weighted_score(counted, severity)
    apart = _(" (the reference is left out)") if reference else ""
    flaky = sum(r.flaky for r in counted)
    of_them = (_("; {n} of them flaky, counted as passes/K").format(n=flaky) if flaky else "")
    if reference and not ranked:
        lines.append(_("**Overall compatibility: —** — only the builtin reference was run; its "
                       "own figures are in its row."))
    else:
        lines.append(_("**Overall compatibility: {weighted} weighted by severity, {rate} pass "
                       "rate** — {passed} of {judged} judged checks pass").format(
            weighted=weighted.text, rate=score_of(counted), passed=totals["pass"],
            judged=judged) + apart + of_them + full_stop())
    lines.append("")
    lines.append(f"{_(WEIGHTED_EXPLAINED)} {score_explained()}")
    lines.append("")
    names = {"provider": _("provider"), "model": _("model"), "score": _("score"),
             "rate": _("pass rate"), "tokens": _("tokens (requests)"), "check": _("check"),
             "message": _("message"), "outcome": _("outcome")}

    security = [r for r in security_failures(data) if r.provider not in reference_names]
    if security:
        lines += [_("### ⚠ Security failures ({n})").format(n=len(security)), "",
                  "| {check} | {provider} | {message} |".format(**names), "|---|---|---|"]
        for r in security:
            lines.append(f"| `{md_code(r.check)}` | {md_cell(r.provider)} | "
                         f"{md_cell(localize(r.message))} |")
        lines.append("")

    header = " | ".join(f"{SYMBOLS[o]} {outcome_name(o)}" for o in OUTCOMES)
    cost = costs(data)
    priced = " " + _("cost") + " |" if cost else ""
    fast = speeds(data)
    lines += ["| {provider} | {model} | {score} | {rate} | ".format(**names) + header
              + " | {tokens} |".format(**names) + priced + " "
              + _("TTFT (median · p95)") + " | " + _("total time (median · p95)") + " | "
              + _("output tok/s") + " |",
              "|---" * (len(OUTCOMES) + 8 + (1 if cost else 0)) + "|"]
    for entry, mine_weighted, counts in ranked + reference:
        name = str(entry["name"])
        models = entry.get("models") or {}
        model = models.get("default", "") if isinstance(models, dict) else ""
        spent = tokens.get(name, {})
        used = spent.get("prompt", 0) + spent.get("completion", 0)
        marks = ""
        if is_reference(entry):
            marks += f" ({_(REFERENCE_LABEL)})"
        failed = sum(1 for r in security if r.provider == name)
        if failed:
            marks += " " + _("⚠ {n} security").format(n=failed)
        lines.append(
            f"| {md_cell(name)}{marks} | {md_cell(str(model))} | {mine_weighted.text} | "
            f"{score_of(by_provider.get(name, []))} | "
            + " | ".join(str(counts[o]) for o in OUTCOMES)
            + f" | {used} ({spent.get('requests', 0)}) |"
            + (f" {money(cost[name])} |" if name in cost else " |" if cost else "")
            + _speed_cells(fast.get(name)))
    lines.append("")
    if unrun:
        lines += [_("{n} not run: ").format(n=len(unrun)) + ", ".join(
            f"{md_cell(name)} ({md_cell(localize(reason))})" for name, reason in unrun)
            + full_stop(),
            ""]
    if fast:
        lines += [_(SPEED_EXPLAINED), ""]
    if history:
        lines.append(render_history_md(data, history))
    if cost:
        lines += [_("Cost of this run: {cost} in all (tokens × each provider's `price:` per "
                    "1M tokens).").format(cost=money(sum(cost.values()))), ""]
    findings = money_findings(data)
    if findings:
        lines += [_("### Billing and model identity ({n})").format(n=len(findings)), "",
                  "| {check} | {provider} | {message} |".format(**names), "|---|---|---|"]
        for r in findings:
            extra = overbilling_cost(data, r.provider) if r.check == "billing.prompt_tokens" \
                else None
            shown = md_cell(r.message) + (_(" — costs {cost}").format(cost=md_cell(extra))
                                          if extra else "")
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
    also = (_(" ({n} more listed above, since the baseline)").format(n=above) if above
            else "")
    if deviations:
        lines += [_("### Deviations ({n})").format(n=len(deviations)) + also, "",
                  "<details open>"
                  if len(deviations) <= 30 else "<details>",
                  "<summary>" + ngettext("{n} check failed, errored or was declined",
                                         "{n} checks failed, errored or were declined",
                                         len(deviations)).format(n=len(deviations))
                  + "</summary>", "",
                  "| {check} | {provider} | {outcome} | {message} |".format(**names),
                  "|---|---|---|---|"]
        for r in deviations[:MAX_ROWS]:
            lines.append(f"| `{md_code(r.check)}` | {md_cell(r.provider)} | "
                         f"{SYMBOLS.get(r.outcome, '?')} {outcome_name(r.outcome)} | "
                         f"{md_cell(localize(r.message))} |")
        if len(deviations) > MAX_ROWS:
            lines.append("\n" + _("… and {n} more in matrix.html.").format(
                n=len(deviations) - MAX_ROWS))
        lines += ["", "</details>", ""]
    elif above:
        lines += [_("No other deviations than the {n} listed since the baseline.").format(
            n=above), ""]
    else:
        lines += [_("No deviations: every judged check passed."), ""]
    lines.append(_("Open `matrix.html` from the report directory for the evidence of every "
                   "cell."))
    return "\n".join(lines) + "\n"
