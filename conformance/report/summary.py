"""summary.md: the run in Markdown, short enough for ``$GITHUB_STEP_SUMMARY``.

Overall score, one table row per provider, the changes since the baseline (when there is one)
and the deviations (fail, error, unsupported) with their one-line messages.
"""

from __future__ import annotations

from conformance.i18n import _, localize, ngettext
from conformance.report.billing import costs, money, money_findings, overbilling_cost
from conformance.report.common import (
    DEVIATIONS,
    SYMBOLS,
    incomplete_note,
    not_run_by_provider,
    outcome_name,
    ran_checks,
    ran_providers,
    score,
    score_explained,
)
from conformance.report.diff import RunDiff, md_cell, md_code, render_markdown
from conformance.results import OUTCOMES, RunData, outcome_counts, token_totals

#: Rows of the deviations table before "… and N more" (GitHub caps a step summary at 1 MiB).
MAX_ROWS = 200


def _duration(ms: object) -> str:
    if not isinstance(ms, int | float):
        return ""
    seconds = ms / 1000
    return (_("{n} s").format(n=f"{seconds:.1f}") if seconds < 120
            else _("{n} min").format(n=f"{seconds / 60:.1f}"))


def render_summary_md(data: RunData, diff: RunDiff | None = None) -> str:
    run = data.run
    providers = ran_providers(data)
    checks = ran_checks(data)
    totals = outcome_counts(data.results)
    tokens = token_totals(data.results)
    judged = totals["pass"] + totals["fail"]
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
    lines.append(_("**Overall compatibility: {score}** — {passed} of {judged} judged checks "
                   "pass.").format(score=score(totals), passed=totals["pass"], judged=judged)
                 + " " + score_explained())
    lines.append("")
    header = " | ".join(f"{SYMBOLS[o]} {outcome_name(o)}" for o in OUTCOMES)
    cost = costs(data)
    priced = " " + _("cost") + " |" if cost else ""
    names = {"provider": _("provider"), "model": _("model"), "score": _("score"),
             "tokens": _("tokens (requests)"), "check": _("check"), "message": _("message"),
             "outcome": _("outcome")}
    lines += ["| {provider} | {model} | {score} | ".format(**names) + header
              + " | {tokens} |".format(**names) + priced,
              "|---" * (len(OUTCOMES) + 4 + (1 if cost else 0)) + "|"]
    for entry in providers:
        name = str(entry["name"])
        counts = outcome_counts([r for r in data.results if r.provider == name])
        models = entry.get("models") or {}
        model = models.get("default", "") if isinstance(models, dict) else ""
        spent = tokens.get(name, {})
        used = spent.get("prompt", 0) + spent.get("completion", 0)
        note = (_(" (skipped: {reason})").format(reason=md_cell(localize(str(entry["skipped"]))))
                if entry.get("skipped") else "")
        lines.append(
            f"| {md_cell(name)}{note} | {md_cell(str(model))} | {score(counts)} | "
            + " | ".join(str(counts[o]) for o in OUTCOMES)
            + f" | {used} ({spent.get('requests', 0)}) |"
            + (f" {money(cost[name])} |" if name in cost else " |" if cost else ""))
    lines.append("")
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
    if diff is not None:
        lines.append(render_markdown(diff))
    deviations = [r for r in data.results if r.outcome in DEVIATIONS]
    if deviations:
        lines += [_("### Deviations ({n})").format(n=len(deviations)), "", "<details open>"
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
    else:
        lines += [_("No deviations: every judged check passed."), ""]
    lines.append(_("Open `matrix.html` from the report directory for the evidence of every "
                   "cell."))
    return "\n".join(lines) + "\n"
