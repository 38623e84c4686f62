"""The trend of each provider over earlier runs (``--history DIR...``): score and latency.

Each history entry is an earlier report directory (its ``results.json``, or what a killed run
left, read by :func:`~conformance.results.load_run`).  Per provider and run, ordered by the
run's ``started_at`` (the run being reported last):

- **score**: :data:`SCORE` of the provider's results, by default the pass rate of
  :func:`~conformance.report.common.score_value` (pass ÷ (pass + fail)); a function of
  ``(run, provider)``, so a weighted score can replace it in one place;
- **latency**: :data:`LATENCY`, by default the median total time of the provider's answered
  requests (:mod:`conformance.report.speed`: request sent → answer read).

A run in which the provider has no judged check (or no timed request) leaves a gap.  Shown as
a sparkline (inline SVG, no script) in the matrix column head and as a table in summary.md.
This module reads result data only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from markupsafe import Markup

from conformance.i18n import _
from conformance.report.common import score_value
from conformance.report.diff import md_cell, md_code
from conformance.report.speed import ms, speeds
from conformance.results import Result, RunData, load_run, outcome_counts

#: A provider's figure in one run: given the run (holding that provider's results only, see
#: :func:`trends`) and the provider's name.
Metric = Callable[[RunData, str], float | None]


def pass_rate(data: RunData, provider: str) -> float | None:
    """The provider's score in ``data``: pass ÷ (pass + fail), in percent."""
    return score_value(outcome_counts(r for r in data.results if r.provider == provider))


def median_latency(data: RunData, provider: str) -> float | None:
    """The median total time (ms) of the provider's answered requests in ``data``."""
    figures = speeds(data).get(provider)
    return figures.total_median if figures is not None else None


#: The score and the latency the trend follows (swap for another function of (run, provider)).
SCORE: Metric = pass_rate
LATENCY: Metric = median_latency


@dataclass(frozen=True)
class Point:
    """One run of a provider's trend."""

    run_id: str
    started_at: str
    score: float | None
    latency: float | None


def load_history(directories: Sequence[str | Path]) -> tuple[list[RunData], list[str]]:
    """The runs of ``directories`` that can be read, and one line for each that cannot (the
    rest still renders)."""
    runs: list[RunData] = []
    problems: list[str] = []
    for directory in directories:
        path = Path(directory)
        try:
            if not path.is_dir():
                raise ValueError(_("no such directory"))
            runs.append(load_run(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(_("history {path}: {detail} (left out of the trend)").format(
                path=path, detail=detail))
    return runs, problems


def _started(data: RunData) -> str:
    return str(data.run.get("started_at") or "")


def trends(current: RunData, history: Sequence[RunData], *, score: Metric | None = None,
           latency: Metric | None = None) -> dict[str, list[Point]]:
    """provider → its points over ``history`` and ``current`` (oldest first), for the
    providers of ``current``; a run given twice (same id) counts once."""
    score = score or SCORE
    latency = latency or LATENCY
    runs: dict[str, RunData] = {}
    for data in history:
        runs[str(data.run.get("id") or id(data))] = data
    runs.pop(str(current.run.get("id") or id(current)), None)
    ordered = [*sorted(runs.values(), key=_started), current]
    providers = list(dict.fromkeys(r.provider for r in current.results))
    # Each run split by provider once: a metric is then given the provider's results only
    # (a scan of the whole run per provider and metric was quadratic in providers).
    split = [(d, _by_provider(d)) for d in ordered]
    out: dict[str, list[Point]] = {}
    for provider in providers:
        out[provider] = [Point(str(d.run.get("id") or "?"), _started(d),
                               score(own, provider), latency(own, provider))
                         for d, parts in split if (own := parts.get(provider)) is not None]
    return out


def _by_provider(data: RunData) -> dict[str, RunData]:
    """``data`` as one run per provider, each holding that provider's results only."""
    results: dict[str, list[Result]] = {}
    for result in data.results:
        results.setdefault(result.provider, []).append(result)
    return {provider: RunData(data.run, data.providers, data.checks, own, data.complete)
            for provider, own in results.items()}


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


WIDTH, HEIGHT = 64, 16


def _polyline(values: Sequence[float | None], low: float, high: float) -> list[str]:
    """SVG point lists, one per run of consecutive values (a None breaks the line)."""
    step = (WIDTH - 4) / max(1, len(values) - 1)
    span = (high - low) or 1.0
    lines: list[str] = []
    current: list[str] = []
    for n, value in enumerate(values):
        if value is None:
            if current:
                lines.append(" ".join(current))
            current = []
            continue
        x = 2 + n * step
        y = HEIGHT - 2 - (value - low) / span * (HEIGHT - 4)
        current.append(f"{x:.1f},{y:.1f}")
    if current:
        lines.append(" ".join(current))
    return lines


def sparkline(points: Sequence[Point]) -> Markup:
    """A tiny inline SVG of the score over the runs (0–100 %), its title listing every run's
    score and latency; empty for fewer than two runs."""
    if len(points) < 2:
        return Markup("")
    scores = [p.score for p in points]
    title = _("trend over {n} runs (oldest first): ").format(n=len(points)) + "; ".join(
        f"{p.run_id}: {_percent(p.score)}, {ms(p.latency)}" for p in points)
    parts = [f'<svg class="spark" role="img" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{escape(title)}">'
             f"<title>{escape(title)}</title>"]
    for line in _polyline(scores, 0.0, 100.0):
        parts.append(f'<polyline points="{line}" fill="none" stroke="currentColor" '
                     'stroke-width="1.5"/>')
    last = next(((n, s) for n, s in reversed(list(enumerate(scores))) if s is not None), None)
    if last is not None:
        x, y = _polyline([None] * last[0] + [last[1]], 0.0, 100.0)[0].split(",")
        parts.append(f'<circle cx="{x}" cy="{y}" r="2" fill="currentColor"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def sparklines(current: RunData, history: Sequence[RunData]) -> dict[str, Markup]:
    """provider → its sparkline (for the matrix column heads); {} without history."""
    if not history:
        return {}
    return {p: sparkline(points) for p, points in trends(current, history).items()}


def render_history_md(current: RunData, history: Sequence[RunData]) -> str:
    """summary.md's trend table: per provider, score and median latency over the runs."""
    if not history:
        return ""
    table = trends(current, history)
    count = max((len(points) for points in table.values()), default=0)
    lines = [_("### Trend over the last {n} runs").format(n=count), "",
             _("Score (pass ÷ judged) and median latency (request → answer) per run, oldest "
               "first; the last is this run."), "",
             "| " + " | ".join((_("provider"), _("score"), _("median latency"), _("runs")))
             + " |", "|---|---|---|---|"]
    for provider, points in table.items():
        scores = " → ".join(_percent(p.score) for p in points)
        latency = " → ".join(ms(p.latency) for p in points)
        runs = ", ".join(f"`{md_code(p.run_id, 40)}`" for p in points)
        lines.append(f"| {md_cell(provider)} | {scores} | {latency} | {runs} |")
    return "\n".join(lines) + "\n"
