"""Vocabulary shared by every renderer: outcome symbols, the score and its formula."""

from __future__ import annotations

import math
from collections.abc import Mapping

from conformance.i18n import N_, _, pgettext, pgettext_marker
from conformance.results import Outcome, RunData

#: One symbol per outcome, so the matrix reads without colour.
SYMBOLS: dict[str, str] = {"pass": "✓", "fail": "✗", "unsupported": "⊘", "skip": "–",
                           "error": "!"}
#: What each outcome means, in one line (legend, tooltips).
MEANINGS: dict[str, str] = {
    "pass": N_("behaves as the OpenAI spec says"),
    "fail": N_("deviates: the message names expected vs got"),
    "unsupported": N_("declined the feature with a proper 4xx error"),
    "skip": N_("not applicable, not configured (no key) or inconclusive"),
    "error": N_("no verdict: network failure, timeout, rejected key"),
}
#: The outcome names, for extraction (msgctxt "outcome"); :func:`outcome_name` reads them.
_OUTCOME_NAMES = (pgettext_marker("outcome", "pass"), pgettext_marker("outcome", "fail"),
                  pgettext_marker("outcome", "unsupported"), pgettext_marker("outcome", "skip"),
                  pgettext_marker("outcome", "error"))
#: Outcomes a user should look at ("only deviations").
DEVIATIONS: frozenset[str] = frozenset({"fail", "error", "unsupported"})
SCORE_FORMULA = N_("pass ÷ (pass + fail)")
SCORE_EXPLAINED = N_(
    "Compatibility score = pass ÷ (pass + fail): the share of judged checks that behave as "
    "specified. unsupported (declined with a proper error), skip and error are not counted "
    "either way."
)


def outcome_name(outcome: str) -> str:
    """An outcome's name in the active language (results.json keeps the id)."""
    return pgettext("outcome", outcome) if outcome in SYMBOLS else outcome


def meaning(outcome: str) -> str:
    """What ``outcome`` means (:data:`MEANINGS`), in the active language."""
    return _(MEANINGS[outcome]) if outcome in MEANINGS else ""


def score_explained() -> str:
    """:data:`SCORE_EXPLAINED` in the active language."""
    return _(SCORE_EXPLAINED)


def score_formula() -> str:
    """:data:`SCORE_FORMULA` in the active language."""
    return _(SCORE_FORMULA)


def score_value(counts: Mapping[str, int]) -> float | None:
    """pass / (pass + fail) in percent, or None when nothing was judged."""
    judged = counts.get("pass", 0) + counts.get("fail", 0)
    return 100 * counts.get("pass", 0) / judged if judged else None


def score(counts: Mapping[str, int]) -> str:
    """The score as text: ``"92%"``, or ``"—"`` when nothing was judged.

    Rounded down, so a provider with any failure never shows 100%.
    """
    value = score_value(counts)
    return "—" if value is None else f"{math.floor(value)}%"


def outcome_label(outcome: Outcome | str | None) -> str:
    """``"✗ fail"``; ``"· not run"`` for a missing result."""
    if outcome is None:
        return "· " + _("not run")
    return f"{SYMBOLS.get(outcome, '?')} {outcome_name(outcome)}"


def ran_providers(data: RunData) -> list[dict[str, object]]:
    """Provider entries that have at least one result or planned check, in run order
    (deduplicated by name), followed by any provider that only appears in the results."""
    with_results = {r.provider for r in data.results} | {p for _check, p in data.planned or []}
    seen: set[str] = set()
    out: list[dict[str, object]] = []
    for entry in data.providers:
        name = str(entry.get("name"))
        if name in with_results and name not in seen:
            seen.add(name)
            out.append(dict(entry))
    for result in data.results:
        if result.provider not in seen:
            seen.add(result.provider)
            out.append({"name": result.provider, "base_url": "",
                        "models": {"default": result.model}})
    for _check, provider in data.not_run:
        if provider not in seen:
            seen.add(provider)
            out.append({"name": provider, "base_url": "", "models": {}})
    return out


def ran_checks(data: RunData) -> list[dict[str, str]]:
    """Catalogue entries of the checks that have a result or were planned (catalogue order),
    then any check only known from the results."""
    with_results = {r.check for r in data.results} | {c for c, _ in data.planned or []}
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for entry in data.checks:
        cid = str(entry.get("id"))
        if cid in with_results and cid not in seen:
            seen.add(cid)
            out.append({k: str(v) for k, v in entry.items()})
    for result in data.results:
        if result.check not in seen:
            seen.add(result.check)
            out.append({"id": result.check, "behavior": result.behavior, "title": result.check,
                        "spec": "", "proves": ""})
    for check, _provider in data.not_run:
        if check not in seen:
            seen.add(check)
            out.append({"id": check, "behavior": check.split(".")[0], "title": check,
                        "spec": "", "proves": ""})
    return out


def incomplete_note(data: RunData) -> str | None:
    """``Incomplete run: 40 of 92 checks finished`` for a run that did not finish or did not
    judge every planned check; None for a complete run."""
    if not data.incomplete:
        return None
    finished, planned = data.progress()
    if planned is None:
        return _("Incomplete run: {finished} checks finished (how many were planned is "
                 "unknown)").format(finished=finished)
    return _("Incomplete run: {finished} of {planned} checks finished").format(
        finished=finished, planned=planned)


def not_run_by_provider(data: RunData) -> dict[str, int]:
    """Planned checks without a result, counted per provider (run order)."""
    counts: dict[str, int] = {}
    for _check, provider in data.not_run:
        counts[provider] = counts.get(provider, 0) + 1
    return counts
