"""matrix.html: the compatibility matrix, rendered with Jinja2 from result data only.

One self-contained file (inline CSS and JS, no CDN, works from file:// offline).  Rows are
behaviour families, expandable to their checks; columns are providers (with their models).  The
table itself is plain HTML; the evidence of every cell (deduplicated exchanges, by id) is
embedded once as JSON in a ``<script type="application/json">`` block, escaped so that no
provider text can close it, and a little inline JS renders the evidence panel, the filters and
the family toggles from it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from markupsafe import Markup

from conformance.report.billing import billed_vs_counted, costs, money
from conformance.report.common import (
    DEVIATIONS,
    MEANINGS,
    SCORE_EXPLAINED,
    SCORE_FORMULA,
    SYMBOLS,
    incomplete_note,
    ran_checks,
    ran_providers,
    score,
)
from conformance.report.diff import MARK_MEANINGS, MARKS, Change, RunDiff
from conformance.results import OUTCOMES, Result, RunData, outcome_counts, token_totals

__all__ = ["SYMBOLS", "render_matrix", "score", "script_json"]

#: Strings longer than this in the embedded evidence are cut (results.json keeps them whole).
MAX_STRING = 60_000
#: Stream events kept per exchange in the embedded evidence.
MAX_EVENTS = 2_000
#: Below this many check rows every family starts expanded; above it only those with
#: deviations or changes do.
EXPAND_ALL_BELOW = 60

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("conformance.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


#: The catalogue fields the matrix shows for a check.
CHECK_FIELDS = ("id", "title", "behavior", "spec", "proves", "severity")


def script_json(value: Any) -> Markup:
    """JSON safe to embed in a ``<script>`` element: ``<``, ``>`` and ``&`` (and the JS line
    separators) are written as ``\\u`` escapes, so no string can contain ``</script>`` or
    ``<!--``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return Markup(text)


@dataclass
class Column:
    index: int
    name: str
    model: str
    overrides: list[tuple[str, str]]
    base_url: str
    docs: str
    skipped: str
    counts: dict[str, int]
    score: str
    tokens: int
    requests: int
    new: bool
    cost: str = ""
    billed: str = ""


@dataclass
class Cell:
    index: int | None = None
    outcome: str | None = None
    mark: str | None = None
    not_run: bool = False  # planned, but the run ended before it


@dataclass
class Row:
    check: dict[str, str]
    cells: list[Cell]
    deviation: bool
    changed: bool
    new: bool


@dataclass
class FamilyCell:
    counts: dict[str, int]
    score: str
    empty: bool
    worst: str | None


@dataclass
class Family:
    name: str
    rows: list[Row] = field(default_factory=list)
    cells: list[FamilyCell] = field(default_factory=list)
    expanded: bool = True

    @property
    def deviation(self) -> bool:
        return any(r.deviation for r in self.rows)


def _cap(value: Any) -> Any:
    """Evidence with over-long strings and event lists cut for embedding."""
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            return value[:MAX_STRING] + f"… [{len(value) - MAX_STRING} more characters in " \
                "results.json]"
        return value
    if isinstance(value, dict):
        out = {k: _cap(v) for k, v in value.items()}
        events = out.get("events")
        if isinstance(events, list) and len(events) > MAX_EVENTS:
            out["events"] = events[:MAX_EVENTS]
            out["events_cut"] = len(events) - MAX_EVENTS
        return out
    if isinstance(value, list):
        return [_cap(v) for v in value]
    return value


class _Exchanges:
    """Exchanges embedded once each, by id (shared requests appear in several results)."""

    def __init__(self) -> None:
        self.table: dict[str, Any] = {}

    def add(self, exchange: Any) -> str:
        if not isinstance(exchange, dict):
            exchange = {"response": {"body": exchange}}
        key = str(exchange.get("id") or f"x{len(self.table)}")
        if key in self.table and self.table[key] != _cap(exchange):
            key = f"{key}~{len(self.table)}"  # same id, different content: keep both
        if key not in self.table:
            self.table[key] = _cap(exchange)
        return key


def _worst(counts: dict[str, int]) -> str | None:
    for outcome in ("fail", "error", "unsupported", "pass", "skip"):
        if counts.get(outcome):
            return outcome
    return None


def build(data: RunData, diff: RunDiff | None = None) -> dict[str, Any]:
    """The template context and the embedded payload."""
    providers = ran_providers(data)
    checks = ran_checks(data)
    marks: dict[tuple[str, str], Change] = diff.marks() if diff else {}
    new_providers = set(diff.new_providers) if diff else set()
    new_checks = set(diff.new_checks) if diff else set()
    tokens = token_totals(data.results)
    by_provider: dict[str, list[Result]] = defaultdict(list)
    for result in data.results:
        by_provider[result.provider].append(result)

    run_costs = costs(data)
    columns: list[Column] = []
    for i, entry in enumerate(providers):
        name = str(entry["name"])
        models = entry.get("models") if isinstance(entry.get("models"), dict) else {}
        assert isinstance(models, dict)
        default = str(models.get("default") or "")
        if not default and by_provider[name]:
            default = by_provider[name][0].model
        overrides = [(str(k), str(v)) for k, v in models.items()
                     if k != "default" and v and v != default]
        spent = tokens.get(name, {})
        counts = outcome_counts(by_provider[name])
        columns.append(Column(
            index=i, name=name, model=default, overrides=overrides,
            base_url=str(entry.get("base_url") or ""), docs=str(entry.get("docs") or ""),
            skipped=str(entry.get("skipped") or ""),
            counts=counts, score=score(counts),
            tokens=spent.get("prompt", 0) + spent.get("completion", 0),
            requests=spent.get("requests", 0), new=name in new_providers,
            cost=money(run_costs[name]) if name in run_costs else "",
            billed=billed_vs_counted(data, name) or "",
        ))

    cells_by_key = {(r.check, r.provider): r for r in data.results}
    not_run = set(data.not_run)
    exchanges = _Exchanges()
    payload_results: list[dict[str, Any]] = []
    families: dict[str, Family] = {}
    for check_index, check in enumerate(checks):
        family = families.setdefault(check["behavior"], Family(check["behavior"]))
        cells: list[Cell] = []
        for column in columns:
            found = cells_by_key.get((check["id"], column.name))
            if found is None:
                cells.append(Cell(not_run=(check["id"], column.name) in not_run))
                continue
            result = found
            change = marks.get((column.name, check["id"]))
            evidence = dict(result.evidence)
            raw = evidence.pop("exchanges", [])
            item: dict[str, Any] = {
                "c": check_index, "p": column.index, "o": result.outcome,
                "m": result.message, "model": result.model, "d": result.duration_ms,
                "x": [exchanges.add(x) for x in (raw if isinstance(raw, list) else [raw])],
            }
            if evidence:
                item["e"] = _cap(evidence)
            if change is not None:
                item["k"] = change.kind
                item["b"] = [change.old, change.old_message]
            payload_results.append(item)
            cells.append(Cell(index=len(payload_results) - 1, outcome=result.outcome,
                              mark=change.kind if change else None))
        family.rows.append(Row(
            check=check, cells=cells,
            deviation=any(c.outcome in DEVIATIONS for c in cells),
            changed=any(c.mark for c in cells), new=check["id"] in new_checks,
        ))

    for family in families.values():
        for column in columns:
            judged = [cells_by_key[(row.check["id"], column.name)] for row in family.rows
                      if (row.check["id"], column.name) in cells_by_key]
            counts = outcome_counts(judged)
            family.cells.append(FamilyCell(counts=counts, score=score(counts),
                                           empty=not judged, worst=_worst(counts)))
    total_rows = sum(len(f.rows) for f in families.values())
    for family in families.values():
        family.expanded = total_rows < EXPAND_ALL_BELOW or family.deviation or any(
            r.changed or r.new for r in family.rows)

    totals = outcome_counts(data.results)
    run = {"id": "?", "started_at": None, "finished_at": None, "suite_version": "?",
           **data.run}
    payload = {
        "providers": [{"name": c.name, "model": c.model} for c in columns],
        "checks": [{k: check.get(k, "") for k in CHECK_FIELDS} for check in checks],
        "results": payload_results,
        "exchanges": exchanges.table,
        "symbols": SYMBOLS,
        "marks": MARKS,
        "markMeanings": MARK_MEANINGS,
        "baseline": {"id": diff.old.id, "source": diff.old.source} if diff else None,
    }
    total_tokens = sum(c.tokens for c in columns)
    return {
        "run": run,
        "incomplete": incomplete_note(data),
        "columns": columns,
        "families": list(families.values()),
        "outcomes": OUTCOMES,
        "symbols": SYMBOLS,
        "meanings": MEANINGS,
        "marks": MARKS,
        "mark_meanings": MARK_MEANINGS,
        "totals": totals,
        "overall": score(totals),
        "judged": totals["pass"] + totals["fail"],
        "formula": SCORE_FORMULA,
        "score_explained": SCORE_EXPLAINED,
        "total_tokens": total_tokens,
        "total_requests": sum(c.requests for c in columns),
        "duration": _duration(run.get("duration_ms")),
        "diff": diff,
        "diff_counts": diff.counts() if diff else {},
        "n_checks": total_rows,
        "payload": script_json(payload),
    }


def _duration(ms: object) -> str:
    if not isinstance(ms, int | float):
        return ""
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def render_matrix(data: RunData, diff: RunDiff | None = None,
                  trends: Mapping[str, Markup] | None = None) -> str:
    """matrix.html for ``data``; with ``diff``, cells that changed since the baseline are
    marked."""
    # trends: provider → its history sparkline (conformance.report.history), in the column head
    return _env.get_template("matrix.html.j2").render(**build(data, diff),
                                                      trends=dict(trends or {}))
