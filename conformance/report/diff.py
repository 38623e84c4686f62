"""Run-to-run comparison: regressions, fixes, new and removed checks, new and missing providers.

A *regression* is a check that passed in the baseline and does not now (docs/CONTRACT.md:
``conformance run --baseline DIR`` exits 1 on one), including a check of a provider missing
from the new run (a nightly job that did not run is no verdict of "still passes") or planned
there but not finished (a killed or interrupted run); only a check removed from the suite's
catalogue is merely reported as removed.  A *fix* is the reverse.  A *flaky* pass (``--repeat
K``: some runs passed, some did not; :mod:`conformance.stability`) still counts as passing, so
a check that turns flaky is a change, not a regression, unless the comparison is asked to
treat flaky as not passing (``--flaky-is-regression``): then it is one, and a flaky check
that passes steadily again is a fix.
Comparisons work on :class:`Snapshot`\\ s — the outcomes of a run without evidence — so a
baseline can be stored next to a run as ``baseline.json`` and the matrix re-rendered with its
change marks later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from conformance.i18n import (
    N_,
    PROVIDER_MISSING,
    RUN_UNFINISHED,
    _,
    localize,
    ngettext,
    pgettext,
    pgettext_marker,
)
from conformance.report.common import SYMBOLS, outcome_label
from conformance.results import RunData, load_run, one_line, printable, write_json
from conformance.stability import label

SNAPSHOT_FORMAT = "conformance-baseline/1"
BASELINE_FILE = "baseline.json"
Kind = Literal["regression", "fix", "changed", "added", "dropped"]
#: The mark a changed cell carries in the matrix and the summaries (readable without colour).
MARKS: dict[str, str] = {"regression": "↓", "fix": "↑", "changed": "~", "added": "+",
                         "dropped": "−"}
#: The change kinds, for extraction (summary.md shows them translated).
_KIND_NAMES = (pgettext_marker("change", "regression"), pgettext_marker("change", "fix"),
               pgettext_marker("change", "changed"), pgettext_marker("change", "added"),
               pgettext_marker("change", "dropped"))
#: What each mark means (English; renderers show ``_(MARK_MEANINGS[kind])``).
MARK_MEANINGS: dict[str, str] = {
    "regression": N_("regression: passed in the baseline, does not now"),
    "fix": N_("fixed: did not pass in the baseline, passes now"),
    "changed": N_("changed outcome since the baseline"),
    "added": N_("not run in the baseline"),
    "dropped": N_("ran in the baseline, not in this run"),
}


@dataclass(frozen=True)
class Snapshot:
    """The outcomes of one run, without evidence."""

    run: dict[str, Any]
    providers: list[str]
    checks: list[str]
    outcomes: dict[tuple[str, str], tuple[str, str]]  # (provider, check) → (outcome, message)
    source: str = ""
    #: (provider, check) pairs the run planned but did not finish.
    not_run: list[tuple[str, str]] = field(default_factory=list)
    #: (provider, check) → "2/3" for the flaky passes of a ``--repeat`` run.
    flaky: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.run.get("id") or "?")

    @classmethod
    def from_run(cls, data: RunData, source: str = "") -> Snapshot:
        outcomes = {(r.provider, r.check): (str(r.outcome), r.message) for r in data.results}
        providers = list(dict.fromkeys(
            [r.provider for r in data.results] + [p for _, p in data.planned or []]))
        checks = list(dict.fromkeys(
            [str(c["id"]) for c in data.checks] + [r.check for r in data.results]))
        run = {k: data.run.get(k) for k in ("id", "started_at", "finished_at", "suite_version")}
        return cls(run=run, providers=providers, checks=checks, outcomes=outcomes,
                   source=source, not_run=[(p, c) for c, p in data.not_run],
                   flaky={(r.provider, r.check): label(r) for r in data.results if r.flaky})

    def only(self, providers: Iterable[str]) -> Snapshot:
        """This snapshot restricted to ``providers`` (a run that selected them on purpose,
        ``--provider``, is compared with their part of the baseline only)."""
        keep = set(providers)
        return replace(
            self, providers=[p for p in self.providers if p in keep],
            outcomes={k: v for k, v in self.outcomes.items() if k[0] in keep},
            not_run=[(p, c) for p, c in self.not_run if p in keep],
            flaky={k: v for k, v in self.flaky.items() if k[0] in keep})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "source": self.source,
            "run": self.run,
            "providers": self.providers,
            "checks": self.checks,
            "results": [
                {"provider": p, "check": c, "outcome": o, "message": m,
                 **({"flaky": self.flaky[(p, c)]} if (p, c) in self.flaky else {})}
                for (p, c), (o, m) in self.outcomes.items()
            ],
        }
        if self.not_run:
            out["not_run"] = [{"provider": p, "check": c} for p, c in self.not_run]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a {SNAPSHOT_FORMAT} file (format {data.get('format')!r})")
        return cls(
            run=dict(data.get("run") or {}),
            providers=[str(p) for p in data.get("providers", [])],
            checks=[str(c) for c in data.get("checks", [])],
            outcomes={(str(r["provider"]), str(r["check"])):
                      (str(r["outcome"]), str(r.get("message", "")))
                      for r in data.get("results", [])},
            source=str(data.get("source", "")),
            not_run=[(str(r["provider"]), str(r["check"])) for r in data.get("not_run", [])],
            flaky={(str(r["provider"]), str(r["check"])): str(r["flaky"])
                   for r in data.get("results", []) if r.get("flaky")},
        )


def load_snapshot(path: Path) -> Snapshot:
    """A run directory (any state :func:`load_run` reads) or a ``baseline.json`` file."""
    if path.is_file():
        return Snapshot.from_json(json.loads(path.read_text(encoding="utf-8")))
    return Snapshot.from_run(load_run(path), source=str(path))


def save_baseline(directory: Path, baseline: Snapshot) -> Path:
    path = directory / BASELINE_FILE
    write_json(path, baseline.to_json())
    return path


def stored_baseline(directory: Path) -> Snapshot | None:
    """The ``baseline.json`` a ``--baseline`` run left in its report dir, if any."""
    path = directory / BASELINE_FILE
    return load_snapshot(path) if path.is_file() else None


@dataclass(frozen=True)
class Change:
    """One (provider, check) pair whose outcome differs between the runs."""

    provider: str
    check: str
    old: str | None
    new: str | None
    message: str = ""
    old_message: str = ""
    #: A pair that passed in the baseline has no result now and that counts as a regression
    #: (its provider is missing from the new run, or the run did not finish it); ``message``
    #: says which.
    not_run: bool = False
    #: "2/3" when the old / new outcome is a flaky pass (``--repeat``), else "".
    old_flaky: str = ""
    new_flaky: str = ""
    #: ``--flaky-is-regression``: a flaky pass counts as not passing.
    flaky_is_regression: bool = False

    def _passes(self, outcome: str | None, flaky: str) -> bool:
        return outcome == "pass" and not (flaky and self.flaky_is_regression)

    @property
    def kind(self) -> Kind:
        old_pass = self._passes(self.old, self.old_flaky)
        if self.old is None:
            return "added"
        if self.new is None:
            return "regression" if self.not_run and old_pass else "dropped"
        new_pass = self._passes(self.new, self.new_flaky)
        if old_pass and not new_pass:
            return "regression"
        if new_pass and not old_pass:
            return "fix"
        return "changed"

    @property
    def old_label(self) -> str:
        """``✓ pass (flaky 2/3)``, ``✗ fail``."""
        return _label(self.old, self.old_flaky)

    @property
    def new_label(self) -> str:
        return _label(self.new, self.new_flaky)


def _label(outcome: str | None, flaky: str) -> str:
    return outcome_label(outcome) + (_(" (flaky {passes})").format(passes=flaky) if flaky else "")


@dataclass
class RunDiff:
    """What changed from ``old`` to ``new``."""

    old: Snapshot
    new: Snapshot
    changes: list[Change] = field(default_factory=list)
    new_checks: list[str] = field(default_factory=list)
    removed_checks: list[str] = field(default_factory=list)
    new_providers: list[str] = field(default_factory=list)
    removed_providers: list[str] = field(default_factory=list)

    def of_kind(self, kind: Kind) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def regressions(self) -> list[Change]:
        return self.of_kind("regression")

    @property
    def fixes(self) -> list[Change]:
        return self.of_kind("fix")

    @property
    def lost_providers(self) -> list[str]:
        """Providers of the baseline with a judged result there (not only skips) that are
        missing from the new run: each is a regression even when none of its checks passed
        (a nightly job that vanished is not "nothing changed")."""
        judged = {p for (p, _), (o, _) in self.old.outcomes.items() if o != "skip"}
        return [p for p in self.removed_providers if p in judged]

    @property
    def regressed(self) -> bool:
        """A regression or a lost provider: what makes ``conformance diff``, ``run
        --baseline`` and ``merge --baseline`` exit 1."""
        return bool(self.regressions or self.lost_providers)

    def marks(self) -> dict[tuple[str, str], Change]:
        """(provider, check) → change, for the cells of the new run (dropped pairs have no
        cell)."""
        return {(c.provider, c.check): c for c in self.changes if c.new is not None}

    def counts(self) -> dict[str, int]:
        kinds: tuple[Kind, ...] = ("regression", "fix", "changed", "added", "dropped")
        return {kind: len(self.of_kind(kind)) for kind in kinds}

    def headline(self) -> str:
        """``2 regressions, 1 fix, 0 other changes`` (plus new/removed checks, new/missing
        providers)."""
        return ", ".join(self.headline_parts())

    def headline_parts(self) -> list[str]:
        n = self.counts()
        parts = [ngettext("{n} regression", "{n} regressions", n["regression"]),
                 ngettext("{n} fix", "{n} fixes", n["fix"]),
                 ngettext("{n} other change", "{n} other changes", n["changed"])]
        parts = [part.format(n=count) for part, count in
                 zip(parts, (n["regression"], n["fix"], n["changed"]), strict=True)]
        if n["added"]:
            parts.append(_("{n} newly run").format(n=n["added"]))
        if n["dropped"]:
            parts.append(_("{n} no longer run").format(n=n["dropped"]))
        for items, one, many in (
                (self.new_checks, N_("{n} new check"), N_("{n} new checks")),
                (self.removed_checks, N_("{n} removed check"), N_("{n} removed checks")),
                (self.new_providers, N_("{n} new provider"), N_("{n} new providers")),
                (self.removed_providers, N_("{n} missing provider"),
                 N_("{n} missing providers"))):
            if items:
                parts.append(ngettext(one, many, len(items)).format(n=len(items)))
        return parts

    def to_json(self) -> dict[str, Any]:
        return {
            "old": {"id": self.old.id, "source": self.old.source},
            "new": {"id": self.new.id, "source": self.new.source},
            "changes": [{"provider": c.provider, "check": c.check, "kind": c.kind,
                         "old": c.old, "new": c.new, "message": c.message,
                         **({"old_flaky": c.old_flaky} if c.old_flaky else {}),
                         **({"new_flaky": c.new_flaky} if c.new_flaky else {})}
                        for c in self.changes],
            "new_checks": self.new_checks, "removed_checks": self.removed_checks,
            "new_providers": self.new_providers, "removed_providers": self.removed_providers,
        }


def diff_runs(old: Snapshot, new: Snapshot, *, flaky_is_regression: bool = False) -> RunDiff:
    """Compare two snapshots (pairs in new-run order, then dropped ones in old-run order).

    A pair that passes in both but turned flaky (or steady) is a change; it is a regression
    (a fix) only with ``flaky_is_regression``."""
    strict = flaky_is_regression
    result = RunDiff(
        old=old, new=new,
        new_checks=[c for c in new.checks if c not in set(old.checks)],
        removed_checks=[c for c in old.checks if c not in set(new.checks)],
        new_providers=[p for p in new.providers if p not in set(old.providers)],
        removed_providers=[p for p in old.providers if p not in set(new.providers)],
    )
    removed_checks, removed_providers = set(result.removed_checks), set(result.removed_providers)
    unfinished = set(new.not_run)
    new_checks, new_providers = set(result.new_checks), set(result.new_providers)
    for key, (outcome, message) in new.outcomes.items():
        before = old.outcomes.get(key)
        if before is None:
            # A whole new check or provider is reported once, not pair by pair.
            if key[0] not in new_providers and key[1] not in new_checks:
                result.changes.append(Change(*key, None, outcome, message,
                                             new_flaky=new.flaky.get(key, ""),
                                             flaky_is_regression=strict))
        elif before[0] != outcome or bool(old.flaky.get(key)) != bool(new.flaky.get(key)):
            result.changes.append(Change(*key, before[0], outcome, message, before[1],
                                         old_flaky=old.flaky.get(key, ""),
                                         new_flaky=new.flaky.get(key, ""),
                                         flaky_is_regression=strict))
    for key, (outcome, message) in old.outcomes.items():
        provider, check = key
        if key in new.outcomes or check in removed_checks:
            continue  # a check removed from the catalogue is reported once, as removed
        if provider in removed_providers:
            # What passed there is not known to pass any more; the rest of a missing
            # provider is reported once, as missing.
            if outcome == "pass":
                result.changes.append(Change(
                    provider, check, outcome, None,
                    PROVIDER_MISSING.format(provider=provider), message,
                    not_run=True, old_flaky=old.flaky.get(key, ""), flaky_is_regression=strict))
            continue
        if key in unfinished and outcome == "pass":
            result.changes.append(Change(provider, check, outcome, None,
                                         RUN_UNFINISHED, message,
                                         not_run=True, old_flaky=old.flaky.get(key, ""),
                                         flaky_is_regression=strict))
            continue
        result.changes.append(Change(provider, check, outcome, None, "", message,
                                     old_flaky=old.flaky.get(key, ""), flaky_is_regression=strict))
    return result


def _shown_message(change: Change) -> str:
    """The message a change is listed with: the new one, or why the pair is gone."""
    return localize(change.message if change.new is not None or change.not_run
                    else change.old_message)


# -- text ----------------------------------------------------------------------------------

_SECTIONS: tuple[tuple[Kind, str], ...] = (
    ("regression", N_("regressions (passed in the baseline, not now)")),
    ("fix", N_("fixes (pass now, did not in the baseline)")),
    ("changed", N_("other changes")),
    ("added", N_("newly run (check and provider both existed in the baseline)")),
    ("dropped", N_("no longer run")),
)
_LISTS = (N_("new checks"), N_("removed checks"), N_("new providers"),
          N_("providers missing from the new run"))
_LIST_HEADS = (N_("New checks"), N_("Removed checks"), N_("New providers"),
               N_("Providers missing from the new run"))


def _describe(run: Snapshot) -> str:
    where = f" ({run.source})" if run.source else ""
    return _("{id}{where}, {n} results").format(id=run.id, where=where, n=len(run.outcomes))


def render_text(diff: RunDiff) -> str:
    """The plain-text report of ``conformance diff``."""
    lines = [_("old: {run}").format(run=_describe(diff.old)),
             _("new: {run}").format(run=_describe(diff.new)), ""]
    for kind, title in _SECTIONS:
        changes = diff.of_kind(kind)
        if not changes and kind not in ("regression", "fix"):
            continue
        lines.append(f"{MARKS[kind]} {_(title)}: {len(changes)}")
        width = max((len(c.check) for c in changes), default=0)
        for c in changes:
            message = _shown_message(c)
            tail = f"  {one_line(message, 160)}" if message else ""
            lines.append(f"    {c.check:<{width}}  [{c.provider}]  "
                         f"{c.old_label} → {c.new_label}{tail}")
    lists = (diff.new_checks, diff.removed_checks, diff.new_providers, diff.removed_providers)
    for items, title in zip(lists, _LISTS, strict=True):
        if items:
            lines.append(f"{_(title)}: {', '.join(items)}")
    if diff.lost_providers:
        lines.append(_("a regression: {providers} had judged results in the baseline and none "
                       "now").format(providers=", ".join(diff.lost_providers)))
    lines += ["", diff.headline()]
    return "\n".join(lines) + "\n"


#: Brackets start every Markdown link and image (inline, reference, ``![x](...)``); escaped
#: with a backslash (and the backslash itself), a provider's link is shown as text and an
#: image is never fetched.  Autolinks ``<http://...>`` need ``<``, which becomes ``&lt;``.
_MD_SPECIAL = re.compile(r"([\\\[\]])")


def md_cell(text: str, limit: int = 200) -> str:
    """Text made safe for one Markdown table cell: one line, printable, no pipes, no HTML
    (``&<>`` as entities) and no link or image syntax (brackets backslash-escaped)."""
    flat = printable(one_line(text, limit))
    flat = _MD_SPECIAL.sub(r"\\\1", flat)
    return (flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("`", "'"))


def md_code(text: str, limit: int = 200) -> str:
    """Text made safe for a Markdown code span inside a table cell (`` `{md_code(x)}` ``):
    nothing renders in a code span, so only backticks and pipes are changed."""
    return printable(one_line(text, limit)).replace("`", "'").replace("|", "\\|")


#: Rows of the "since baseline" table before "… and N more".
MARKDOWN_ROWS = 100


def shown_changes(diff: RunDiff, limit: int = MARKDOWN_ROWS) -> list[Change]:
    """The changes :func:`render_markdown` lists as rows, in its order (regressions first)."""
    return [c for kind, _ in _SECTIONS for c in diff.of_kind(kind)][:limit]


def render_markdown(diff: RunDiff, *, limit: int = MARKDOWN_ROWS, heading: str = "###") -> str:
    """The diff as Markdown (the "since baseline" section of summary.md, ``diff --markdown``)."""
    n = diff.counts()
    lines = [heading + " " + _("Since baseline `{id}`").format(id=md_code(diff.old.id)), ""]
    parts = diff.headline_parts()
    if n["regression"]:
        parts[0] = f"**{parts[0]}**"
    lost = ngettext("{n} missing provider", "{n} missing providers",
                    len(diff.lost_providers)).format(n=len(diff.lost_providers))
    if diff.lost_providers and lost in parts:
        parts[parts.index(lost)] = f"**{lost}**" + _(" (a regression)")
    lines.append(", ".join(parts))
    lines.append("")
    shown = [c for kind, _ in _SECTIONS for c in diff.of_kind(kind)]
    if shown:
        lines += ["| | {check} | {provider} | {was} | {now} | {message} |".format(
            check=_("check"), provider=_("provider"), was=_("was"), now=_("now"),
            message=_("message")), "|---|---|---|---|---|---|"]
        for c in shown_changes(diff, limit):
            message = _shown_message(c)
            kind = pgettext("change", c.kind)
            lines.append(
                f"| {MARKS[c.kind]} {kind} | `{md_code(c.check)}` | {md_cell(c.provider)} | "
                f"{c.old_label} | {c.new_label} | {md_cell(message)} |")
        if len(shown) > limit:
            lines.append("\n" + _("… and {n} more (`conformance diff` lists all).").format(
                n=len(shown) - limit))
        lines.append("")
    lists = (diff.new_checks, diff.removed_checks, diff.new_providers, diff.removed_providers)
    for items, title in zip(lists, _LIST_HEADS, strict=True):
        if items:
            lines.append(f"{_(title)}: " + ", ".join(f"`{md_code(i)}`" for i in items) + "  ")
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["BASELINE_FILE", "MARKS", "MARK_MEANINGS", "SYMBOLS", "Change", "RunDiff",
           "Snapshot", "diff_runs", "load_snapshot", "md_cell", "md_code", "render_markdown",
           "render_text", "save_baseline", "shown_changes", "stored_baseline"]
