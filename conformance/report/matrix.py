"""matrix.html: the compatibility matrix, rendered with Jinja2 from result data only.

One self-contained file (inline CSS and JS, no CDN, works from file:// offline).  Rows are
behaviour families, expandable to their checks; columns are providers (with their models).  The
table itself is plain HTML; the evidence of every cell (deduplicated exchanges, by id) is
embedded once as JSON in a ``<script type="application/json">`` block, escaped so that no
provider text can close it, and a little inline JS renders the evidence panel (with "copy as
curl" and the stream event a verdict is about highlighted), the filters, the family toggles and
the column sort from it. Past ``FOLD`` real providers the script folds the columns beyond the
top ones (one style rule, no cell touched; all of them show without JS).

Columns are ranked server-side by weighted score (report/common.py), the builtin reference last
and apart; providers not run at all are chips, not columns. Each column head carries a bar
chart of its families and the latency chart sits below the table, both inline SVG whose
coordinates are computed here (readable without JS). Everything is one pass over the results
and one over providers × checks.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from markupsafe import Markup

from conformance import i18n
from conformance.i18n import N_, _, check_text, localize
from conformance.report.billing import billed_vs_counted, costs, money
from conformance.report.common import (
    DEVIATIONS,
    MEANINGS,
    PANEL_WORDS,
    REFERENCE_EXPLAINED,
    REFERENCE_LABEL,
    SCORE_EXPLAINED,
    SCORE_FORMULA,
    SYMBOLS,
    WEIGHTED_EXPLAINED,
    WEIGHTED_FORMULA,
    incomplete_note,
    is_reference,
    meaning,
    outcome_name,
    ran_checks,
    ran_providers,
    score,
    score_value,
    severities,
    shade,
    unrun_reason,
    weighted_score,
)
from conformance.report.diff import MARK_MEANINGS, MARKS, Change, RunDiff
from conformance.report.flaky import MEANING as FLAKY_MEANING
from conformance.report.flaky import score_of
from conformance.report.speed import SPEED_EXPLAINED, Speed, ms, rate, speeds
from conformance.results import (
    OUTCOMES,
    Result,
    RunData,
    Sanitized,
    outcome_counts,
    token_totals,
)
from conformance.stability import label

__all__ = ["SYMBOLS", "render_matrix", "score"]

#: Strings longer than this in the embedded evidence are cut (results.json keeps them whole).
MAX_STRING = 60_000
#: Stream events kept per exchange in the embedded evidence.
MAX_EVENTS = 2_000
#: Below this many check rows every family starts expanded; above it only those with
#: deviations or changes do.
EXPAND_ALL_BELOW = 60
#: Past this many real providers the page shows the top ones (in the current sort order) and
#: folds the rest: hidden by one style rule, still in the page, brought back by name, by a
#: click in the list of folded providers or by a deep link (JS only: without it all show).
FOLD = 12

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("conformance.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["ms"] = ms
_env.filters["rate"] = rate
# The template's {% trans %}, _(), ngettext and pgettext read the language active when the
# page is rendered (conformance.i18n.activate), not the one active when this module loaded.
i18n.install_jinja(_env)


#: The catalogue fields the matrix shows for a check.
CHECK_FIELDS = ("id", "title", "behavior", "spec", "proves", "severity")


#: Words the page's script writes (the evidence panel, tooltips, the filter count): embedded
#: with the data, translated when the page is rendered.
SCRIPT_WORDS: dict[str, str] = {
    "noResponse": N_("no response"),
    "sseEvents": N_("{n} SSE events"),
    # --repeat K: the run of the K an exchange belongs to (its record's "repeat", 1-based).
    "repeatRun": N_("run {n}"),
    "tokens": N_("{n} tokens"),
    "transportError": N_("transport error: {error}"),
    "request": N_("request"),
    "response": N_("response"),
    "firstByte": N_("first byte after {n} ms"),
    "sseComments": N_("{n} SSE comment lines"),
    "trailingData": N_("unterminated data at the end of the stream"),
    "eventsCut": N_("{n} more events in results.json"),
    "sseHeading": N_("server-sent events (time since request)"),
    "body": N_("body"),
    "close": N_("close"),
    "closeEsc": N_("close (Esc)"),
    "model": N_("model {model}"),
    "noMessage": N_("(no message)"),
    "notRun": N_("not run"),
    "inBaseline": N_("in baseline {id}: {was}"),
    "proves": N_("proves"),
    "spec": N_("spec"),
    "family": N_("family"),
    "severity": N_("severity"),
    "duration": N_("duration"),
    "evidenceOne": N_("Evidence: 1 exchange (redacted)"),
    "evidenceMany": N_("Evidence: {n} exchanges (redacted)"),
    "noRequest": N_("No request was needed for this verdict"),
    "otherEvidence": N_("Other evidence"),
    "clickEvidence": N_("(click for the evidence)"),
    "shown": N_("{shown} of {total} checks shown"),
    "total": N_("{total} checks"),
    "foldCount": N_("{shown} of {total} providers"),
    "showAll": N_("show all"),
    "showTop": N_("show top {n}"),
    "folded": N_("{n} folded"),
}


def _script_parts(value: Any, depth: int) -> Iterator[str]:
    if depth and isinstance(value, dict):
        yield "{"
        for number, (key, item) in enumerate(value.items()):
            yield ("," if number else "") + _script_text(str(key)) + ":"
            yield from _script_parts(item, depth - 1)
        yield "}"
    elif depth and isinstance(value, list):
        yield "["
        for number, item in enumerate(value):
            if number:
                yield ","
            yield from _script_parts(item, depth - 1)
        yield "]"
    else:
        yield _script_text(value)


class Payload:
    """The page's embedded data, written into the page as it is encoded
    (:func:`matrix_parts`): in the template it stands for itself as :attr:`slot`, a marker
    no provider can have written into the page (random, per page)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.slot = f"\x00conformance-payload-{secrets.token_hex(8)}\x00"

    def __html__(self) -> str:
        return self.slot

    def parts(self) -> Iterator[str]:
        """The JSON text, member by member: safe in a ``<script>`` element (``<``, ``>``,
        ``&`` and the JS line separators written as ``\\u`` escapes, so no string can
        contain ``</script>`` or ``<!--``); encoded at once, the payload of 100 providers took
        ~180 MB in the encoder's pieces for 25 MB of text."""
        return _script_parts(self.value, depth=2)


def _script_text(value: Any) -> str:
    text = value.json_text() if isinstance(value, Sanitized) else json.dumps(
        value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        if char in text:
            text = text.replace(char, escape)
    return text


@dataclass
class Column:
    index: int          # stable: data-col in the page, the provider's index in the payload
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
    reference: bool = False
    weighted: str = "—"
    weighted_value: float | None = None
    rate_value: float | None = None
    security: list[tuple[str, str]] = field(default_factory=list)
    speed: Speed | None = None
    bars: list[Bar] = field(default_factory=list)
    key_env: str = ""

    @property
    def sort_keys(self) -> dict[str, str]:
        """data-* values the page sorts by (empty: unknown, sorted last)."""
        def num(value: float | None) -> str:
            return "" if value is None else f"{value:.3f}"
        return {"score": num(self.weighted_value), "rate": num(self.rate_value),
                "speed": num(self.speed.total_median if self.speed else None)}

    @property
    def security_title(self) -> str:
        return "; ".join(f"{check}: {message}" for check, message in self.security)


@dataclass
class Bar:
    """One family's bar in a provider's chart (the template writes its words)."""

    family: str
    value: float | None   # weighted score, percent
    shade: int | None
    weighted: str
    score: str
    counts: dict[str, int]


@dataclass
class Chip:
    """A provider that was not run, with the reason (``set API51_API_KEY``)."""

    name: str
    reason: str


@dataclass
class Cell:
    col: int
    index: int | None = None
    outcome: str | None = None
    mark: str | None = None
    not_run: bool = False  # planned, but the run ended before it
    repeat: str = ""  # --repeat K: "2/3" (passes/K)
    flaky: bool = False  # the K runs disagreed (conformance.stability)


@dataclass
class Row:
    check: dict[str, str]
    cells: list[Cell]
    deviation: bool
    changed: bool
    new: bool


@dataclass
class FamilyCell:
    col: int
    counts: dict[str, int]
    score: str
    weighted: str
    shade: int | None
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


@dataclass
class LatencyRow:
    """One provider's row of the latency chart (SVG coordinates precomputed)."""

    name: str
    reference: bool
    y: int
    ttft: tuple[float, float] | None   # (median width, p95 x)
    total: tuple[float, float] | None
    speed: Speed


def _cap(value: Any) -> Any:
    """Evidence with over-long strings and event lists cut for embedding; what needs no cut
    is the same object, not a copy (a matrix of 100 providers copied ~100 MB of evidence)."""
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            return value[:MAX_STRING] + f"… [{len(value) - MAX_STRING} more characters in " \
                "results.json]"
        return value
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for key, item in value.items():
            capped = _cap(item)
            if capped is not item:
                if out is None:
                    out = dict(value)
                out[key] = capped
        events = (value if out is None else out).get("events")
        if isinstance(events, list) and len(events) > MAX_EVENTS:
            out = dict(value if out is None else out)
            out["events"] = events[:MAX_EVENTS]
            out["events_cut"] = len(events) - MAX_EVENTS
        return value if out is None else out
    if isinstance(value, list):
        items: list[Any] | None = None
        for index, item in enumerate(value):
            capped = _cap(item)
            if capped is not item:
                if items is None:
                    items = list(value)
                items[index] = capped
        return value if items is None else items
    return value


class _Exchanges:
    """Exchanges embedded once each, by id (shared requests appear in several results)."""

    def __init__(self) -> None:
        self.table: dict[str, Any] = {}
        #: The exchange each key was made from, so a shared one is compared, not capped again.
        self._raw: dict[str, Any] = {}

    def add(self, exchange: Any) -> str:
        if not isinstance(exchange, dict):
            exchange = {"response": {"body": exchange}}
        key = str(exchange.get("id") or f"x{len(self.table)}")
        if key in self._raw:
            raw = self._raw[key]
            if raw is exchange or raw == exchange:
                return key
            key = f"{key}~{len(self.table)}"  # same id, different content: keep both
        self._raw[key] = exchange
        self.table[key] = exchange if _short(exchange) else _cap(exchange)
        return key


#: A record whose JSON text is no longer than this holds no string longer than
#: :data:`MAX_STRING` and no list longer than :data:`MAX_EVENTS` (each item takes at least
#: one character and a comma; escapes only lengthen a string).
_SHORT = min(MAX_STRING, 2 * MAX_EVENTS)


def _short(exchange: Any) -> bool:
    """Whether ``exchange`` certainly needs no cut: a record whose JSON text is already
    encoded (for results.jsonl) and short, so :func:`_cap` need not walk it."""
    return isinstance(exchange, Sanitized) and len(exchange.json_text()) <= _SHORT


def _worst(counts: dict[str, int]) -> str | None:
    for outcome in ("fail", "error", "unsupported", "pass", "skip"):
        if counts.get(outcome):
            return outcome
    return None


def _order(columns: list[Column]) -> list[Column]:
    """The default order of the real providers: weighted score, then pass rate (highest
    first; none judged last), then name."""
    return sorted(columns, key=lambda c: (
        c.weighted_value is None, -(c.weighted_value or 0.0),
        c.rate_value is None, -(c.rate_value or 0.0), c.name))


#: Geometry of the latency chart (SVG user units).
CHART_LABEL = 150
CHART_BARS = 300
CHART_WIDTH = 720
CHART_ROW = 30


def _latency(columns: list[Column]) -> tuple[list[LatencyRow], int, float]:
    """Rows of the latency chart (TTFT and total time, median bar and p95 whisker, one scale),
    its height and its scale's maximum (ms)."""
    timed = [c for c in columns if c.speed is not None]
    top = max((v for c in timed if c.speed for v in (c.speed.total_p95, c.speed.ttft_p95,
                                                     c.speed.total_median) if v), default=0.0)
    rows: list[LatencyRow] = []
    for i, column in enumerate(timed):
        figures = column.speed
        assert figures is not None

        def bar(median: float | None, p95: float | None) -> tuple[float, float] | None:
            if median is None or not top:
                return None
            return (round(max(1.0, CHART_BARS * median / top), 1),
                    round(CHART_LABEL + CHART_BARS * (p95 if p95 is not None else median) / top,
                          1))

        rows.append(LatencyRow(
            name=column.name, reference=column.reference, y=i * CHART_ROW,
            ttft=bar(figures.ttft_median, figures.ttft_p95),
            total=bar(figures.total_median, figures.total_p95),
            speed=figures,
        ))
    return rows, len(rows) * CHART_ROW, top


def build(data: RunData, diff: RunDiff | None = None) -> dict[str, Any]:
    """The template context and the embedded payload."""
    providers = ran_providers(data)
    checks = ran_checks(data)
    severity = severities(data)
    marks: dict[tuple[str, str], Change] = diff.marks() if diff else {}
    new_providers = set(diff.new_providers) if diff else set()
    new_checks = set(diff.new_checks) if diff else set()
    tokens = token_totals(data.results)
    by_provider: dict[str, list[Result]] = defaultdict(list)
    for result in data.results:
        by_provider[result.provider].append(result)

    run_costs = costs(data)
    run_speeds = speeds(data)
    columns: list[Column] = []
    chips: list[Chip] = []
    for entry in providers:
        name = str(entry["name"])
        reason = unrun_reason(entry, by_provider[name])
        if reason is not None:
            chips.append(Chip(name, localize(reason)))
            continue
        models = entry.get("models") if isinstance(entry.get("models"), dict) else {}
        assert isinstance(models, dict)
        default = str(models.get("default") or "")
        if not default and by_provider[name]:
            default = by_provider[name][0].model
        overrides = [(str(k), str(v)) for k, v in models.items()
                     if k != "default" and v and v != default]
        spent = tokens.get(name, {})
        counts = outcome_counts(by_provider[name])
        weighted = weighted_score(by_provider[name], severity)
        columns.append(Column(
            index=len(columns), name=name, model=default, overrides=overrides,
            base_url=str(entry.get("base_url") or ""), docs=str(entry.get("docs") or ""),
            skipped=str(entry.get("skipped") or ""),
            counts=counts, score=score_of(by_provider[name]),
            tokens=spent.get("prompt", 0) + spent.get("completion", 0),
            requests=spent.get("requests", 0), new=name in new_providers,
            cost=money(run_costs[name]) if name in run_costs else "",
            billed=billed_vs_counted(data, name) or "",
            reference=is_reference(entry),
            weighted=weighted.text, weighted_value=weighted.value,
            rate_value=score_value(counts),
            security=[(r.check, localize(r.message)) for r in by_provider[name]
                      if r.outcome == "fail" and severity.get(r.check) == "security"],
            speed=run_speeds.get(name),
            key_env=str(entry.get("api_key_env") or ""),
        ))
    real = _order([c for c in columns if not c.reference])
    reference = [c for c in columns if c.reference]
    ordered = real + reference

    cells_by_key = {(r.check, r.provider): r for r in data.results}
    not_run = set(data.not_run)
    exchanges = _Exchanges()
    payload_results: list[dict[str, Any]] = []
    families: dict[str, Family] = {}
    for check_index, check in enumerate(checks):
        family = families.setdefault(check["behavior"], Family(check["behavior"]))
        cells: list[Cell] = []
        for column in ordered:
            found = cells_by_key.get((check["id"], column.name))
            if found is None:
                cells.append(Cell(column.index,
                                  not_run=(check["id"], column.name) in not_run))
                continue
            result = found
            change = marks.get((column.name, check["id"]))
            evidence = dict(result.evidence)
            raw = evidence.pop("exchanges", [])
            item: dict[str, Any] = {
                "c": check_index, "p": column.index, "o": result.outcome,
                "m": localize(result.message), "model": result.model, "d": result.duration_ms,
                "x": [exchanges.add(x) for x in (raw if isinstance(raw, list) else [raw])],
            }
            if evidence:
                item["e"] = _cap(evidence)
            if change is not None:
                item["k"] = change.kind
                item["b"] = [change.old, localize(change.old_message or "")]
            if result.runs:
                item["runs"] = [dict(run) for run in result.runs]
            payload_results.append(item)
            cells.append(Cell(column.index, index=len(payload_results) - 1,
                              outcome=result.outcome, mark=change.kind if change else None,
                              repeat=label(result), flaky=result.flaky))
        family.rows.append(Row(
            check=check, cells=cells,
            deviation=any(c.outcome in DEVIATIONS or c.flaky for c in cells),
            changed=any(c.mark for c in cells), new=check["id"] in new_checks,
        ))

    for family in families.values():
        for column in ordered:
            judged = [cells_by_key[(row.check["id"], column.name)] for row in family.rows
                      if (row.check["id"], column.name) in cells_by_key]
            counts = outcome_counts(judged)
            weighted = weighted_score(judged, severity)
            family.cells.append(FamilyCell(
                col=column.index, counts=counts, score=score_of(judged), weighted=weighted.text,
                shade=shade(weighted.value), empty=not judged, worst=_worst(counts)))
            column.bars.append(Bar(
                family=family.name, value=weighted.value, shade=shade(weighted.value),
                weighted=weighted.text, score=score_of(judged), counts=counts))
    total_rows = sum(len(f.rows) for f in families.values())
    for family in families.values():
        family.expanded = total_rows < EXPAND_ALL_BELOW or family.deviation or any(
            r.changed or r.new for r in family.rows)

    # Overall figures: the real providers only (the reference is there for comparison).
    counted = [r for c in real for r in by_provider[c.name]]
    totals = outcome_counts(counted)
    overall_weighted = weighted_score(counted, severity)
    latency, chart_height, chart_top = _latency(ordered)
    for check in checks:  # the catalogue's words in the reader's language (ids stay)
        check["title"] = check_text(check["id"], check.get("title", ""))
        check["proves"] = check_text(check["id"], check.get("proves", ""))
    run = {"id": "?", "started_at": None, "finished_at": None, "suite_version": "?",
           **data.run}
    payload = {
        "providers": [{"name": c.name, "model": c.model, "keyEnv": c.key_env,
                       "reference": c.reference} for c in columns],
        "checks": [{k: check.get(k, "") for k in CHECK_FIELDS} for check in checks],
        "outcomeNames": {o: outcome_name(o) for o in OUTCOMES},
        "results": payload_results,
        "exchanges": exchanges.table,
        "symbols": SYMBOLS,
        "marks": MARKS,
        "markMeanings": {k: _(v) for k, v in MARK_MEANINGS.items()},
        "words": {k: _(v) for k, v in {**PANEL_WORDS, **SCRIPT_WORDS}.items()},
        "baseline": {"id": diff.old.id, "source": diff.old.source} if diff else None,
    }
    total_tokens = sum(c.tokens for c in columns)
    return {
        "run": run,
        "incomplete": incomplete_note(data),
        "columns": ordered,
        "real_count": len(real),
        "fold": FOLD,
        "chips": chips,
        "families": list(families.values()),
        "outcomes": OUTCOMES,
        "symbols": SYMBOLS,
        "meanings": {o: meaning(o) for o in MEANINGS},
        "outcome_names": {o: outcome_name(o) for o in OUTCOMES},
        "marks": MARKS,
        "mark_meanings": {k: _(v) for k, v in MARK_MEANINGS.items()},
        "totals": totals,
        "overall": score_of(counted),
        "overall_weighted": overall_weighted.text,
        "flaky": sum(r.flaky for r in data.results),
        "flaky_meaning": _(FLAKY_MEANING),
        "judged": totals["pass"] + totals["fail"],
        "formula": _(SCORE_FORMULA),
        "score_explained": _(SCORE_EXPLAINED),
        "weighted_formula": _(WEIGHTED_FORMULA),
        "weighted_explained": _(WEIGHTED_EXPLAINED),
        "reference_label": _(REFERENCE_LABEL),
        "reference_explained": _(REFERENCE_EXPLAINED),
        "speed_note": _(SPEED_EXPLAINED),
        "lang": i18n.active(),
        "security_total": sum(len(c.security) for c in real),
        "latency": latency,
        "chart": {"label": CHART_LABEL, "bars": CHART_BARS, "width": CHART_WIDTH,
                  "row": CHART_ROW, "height": chart_height, "top": ms(chart_top)},
        "total_tokens": total_tokens,
        "total_requests": sum(c.requests for c in columns),
        "duration": _duration(run.get("duration_ms")),
        "diff": diff,
        "diff_counts": diff.counts() if diff else {},
        "n_checks": total_rows,
        "payload": Payload(payload),
    }


def _duration(ms: object) -> str:
    if not isinstance(ms, int | float):
        return ""
    seconds = ms / 1000
    if seconds < 120:
        return _("{seconds} s").format(seconds=f"{seconds:.1f}")
    return _("{minutes} min {seconds} s").format(minutes=int(seconds // 60),
                                                 seconds=int(seconds % 60))


def render_matrix(data: RunData, diff: RunDiff | None = None,
                  trends: Mapping[str, Markup] | None = None) -> str:
    """matrix.html for ``data``; with ``diff``, cells that changed since the baseline are
    marked."""
    return "".join(matrix_parts(data, diff, trends))


def matrix_parts(data: RunData, diff: RunDiff | None = None,
                 trends: Mapping[str, Markup] | None = None) -> Iterator[str]:
    """matrix.html as the template renders it, piece by piece: a writer never holds the whole
    page (~27 MB at 100 providers), nor its embedded data as one string."""
    # trends: provider → its history sparkline (conformance.report.history), in the column head
    context = build(data, diff)
    payload: Payload = context["payload"]
    for chunk in _env.get_template("matrix.html.j2").generate(**context,
                                                             trends=dict(trends or {})):
        if payload.slot in chunk:  # the payload, encoded as it is written
            before, after = chunk.split(payload.slot, 1)
            yield before
            yield from payload.parts()
            yield after
        else:
            yield chunk
