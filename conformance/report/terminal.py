"""The terminal summary: one row per behaviour family, one column per provider."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conformance.i18n import _, localize, ngettext
from conformance.report.billing import billed_vs_counted, costs, money
from conformance.report.common import (
    SYMBOLS,
    incomplete_note,
    not_run_by_provider,
    outcome_name,
    ran_providers,
    score_formula,
)
from conformance.report.flaky import score_of
from conformance.report.flaky import terminal_lines as flaky_lines
from conformance.report.speed import median_p95, rate, speeds
from conformance.results import OUTCOMES, RunData, outcome_counts, printable, token_totals

STYLES = {"pass": "green", "fail": "bold red", "unsupported": "magenta", "skip": "dim",
          "error": "bold yellow"}


def shown(text: object) -> str:
    """Text from a run's data as rich markup that shows it literally: control characters
    (a provider's ANSI escapes) as their escape, ``[`` not read as markup."""
    return escape(printable(str(text)))


def render_summary(data: RunData, *, width: int = 120, color: bool = False) -> str:
    ran = {r.behavior for r in data.results}
    families = [f for f in dict.fromkeys(c["behavior"] for c in data.checks) if f in ran]
    families += sorted(ran.difference(families))
    providers = [str(p["name"]) for p in ran_providers(data)]
    table = Table(title=_("conformance matrix"), title_justify="left")
    table.add_column(_("family"), no_wrap=True)
    for provider in providers:
        table.add_column(shown(provider), justify="center", overflow="fold")
    for family in families:
        row = [shown(family)]
        for provider in providers:
            counts = Counter(r.outcome for r in data.results
                             if r.provider == provider and r.behavior == family)
            parts = [f"[{STYLES[o]}]{SYMBOLS[o]}{counts[o]}[/]" for o in OUTCOMES if counts[o]]
            other = sum(n for o, n in counts.items() if o not in STYLES)
            parts += [f"?{other}"] if other else []
            row.append(" ".join(parts) or "·")
        table.add_row(*row)
    tokens = token_totals(data.results)
    table.add_section()
    table.add_row(_("score"), *[
        score_of(r for r in data.results if r.provider == p) for p in providers
    ])
    if any(r.flaky for r in data.results):
        table.add_row(_("flaky"), *[
            str(sum(r.flaky for r in data.results if r.provider == p)) for p in providers])
    table.add_row(_("tokens"), *[
        str(tokens.get(p, {}).get("prompt", 0) + tokens.get(p, {}).get("completion", 0))
        for p in providers
    ])
    cost = costs(data)
    if cost:
        table.add_row(_("cost"), *[money(cost[p]) if p in cost else "·" for p in providers])
    fast = speeds(data)
    if fast:
        table.add_row(_("TTFT (median · p95)"), *[
            median_p95(fast[p].ttft_median, fast[p].ttft_p95) if p in fast else "·"
            for p in providers])
        table.add_row(_("total (median · p95)"), *[
            median_p95(fast[p].total_median, fast[p].total_p95) if p in fast else "·"
            for p in providers])
        table.add_row(_("output tok/s"), *[rate(fast[p].tokens_per_s) if p in fast else "·"
                                           for p in providers])
    billed = {p: billed_vs_counted(data, p) for p in providers}
    if any(billed.values()):
        table.add_row(_("billed vs counted"), *[billed[p] or "·" for p in providers])
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color,
                      highlight=False)
    console.print(table)
    totals = outcome_counts(data.results)
    console.print("  ".join(f"{SYMBOLS[o]} {outcome_name(o)} {totals[o]}" for o in OUTCOMES))
    console.print(_("score = {formula}; unsupported, skip and error are not counted").format(
        formula=score_formula()))
    for line in flaky_lines(data):
        console.print(f"[yellow]{escape(line)}[/]" if color else escape(line))
    if cost:
        console.print(_("cost of this run: {cost} in all (tokens × price: per 1M tokens)")
                      .format(cost=money(sum(cost.values()))))
    for entry in data.providers:
        if entry.get("skipped") and entry["name"] in providers:
            console.print(_("{provider}: skipped ({reason})").format(
                provider=shown(entry["name"]), reason=shown(localize(str(entry["skipped"])))))
    for provider, (message, count) in provider_problems(data).items():
        console.print(ngettext("{provider}: {message} ({count} check not run)",
                               "{provider}: {message} ({count} checks not run)", count).format(
                                   provider=printable(provider),
                                   message=printable(localize(message)), count=count),
                      markup=False)
    note = incomplete_note(data)
    if note is not None:
        missing = not_run_by_provider(data)
        where = (_("; not run: ") + ", ".join(f"{shown(p)} {n}" for p, n in missing.items())
                 if missing else "")
        console.print(f"[bold yellow]{note}{where}[/]" if color else f"{note}{where}",
                      markup=True)
    return buffer.getvalue()


def provider_problems(data: RunData) -> dict[str, tuple[str, int]]:
    """provider → (its one-line problem, the number of checks it stopped), for providers whose
    host was unreachable or whose key was rejected (:mod:`conformance.preflight`)."""
    out: dict[str, tuple[str, int]] = {}
    for result in data.results:
        if result.provider_problem:
            _message, count = out.get(result.provider, (result.message, 0))
            out[result.provider] = (result.message, count + 1)
    return out
