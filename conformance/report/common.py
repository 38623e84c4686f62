"""Vocabulary shared by every renderer: outcome symbols, the scores (plain and weighted by
severity) and their formulas, which providers are the reference or were not run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from conformance.i18n import N_, _, pgettext, pgettext_marker
from conformance.results import Outcome, Result, RunData
from conformance.stability import pass_fraction

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


# -- severity, the weighted score, providers apart -------------------------------------------

#: How much a check's verdict weighs in the weighted score, by the check's severity.
SEVERITY_WEIGHTS: dict[str, int] = {"security": 8, "breaks-clients": 4, "degrades": 2,
                                    "cosmetic": 1}
#: The weight of a check without a (known) severity.
DEFAULT_WEIGHT = 1
WEIGHTED_FORMULA = N_("Σ w·pass ÷ Σ w·(pass + fail), w = 8 security, 4 breaks-clients, "
                      "2 degrades, 1 cosmetic")
WEIGHTED_EXPLAINED = N_(
    "Weighted score = Σ w·pass ÷ Σ w·(pass + fail), each check weighted by its severity: "
    "w = 8 for security, 4 for breaks-clients, 2 for degrades, 1 for cosmetic. A security "
    "failure costs eight times a cosmetic one; unsupported, skip and error are not counted."
)
#: Label of the builtin reference's group (shown apart, left out of every overall figure).
REFERENCE_LABEL = N_("reference, for comparison")
REFERENCE_EXPLAINED = N_(
    "The builtin reference provider runs inside the suite: it is shown for comparison and is "
    "left out of the overall figures."
)
#: How the speed figures are computed (result data only: the run's own requests).
def severity_weight(severity: object) -> int:
    """The weight of a check of ``severity`` in the weighted score."""
    return SEVERITY_WEIGHTS.get(str(severity), DEFAULT_WEIGHT)


class Weighted:
    """Running sums of the weighted score: Σ w·pass and Σ w·(pass + fail)."""

    __slots__ = ("judged", "passed")

    def __init__(self) -> None:
        self.passed = 0.0
        self.judged = 0

    def add(self, fraction: float | None, weight: int) -> None:
        """Count a result worth ``fraction`` of a pass (1 pass, 0 fail, passes/K for a flaky
        pass; None: not judged) at ``weight``."""
        if fraction is not None:
            self.passed += weight * fraction
            self.judged += weight

    @property
    def value(self) -> float | None:
        """In percent, or None when nothing was judged."""
        return 100 * self.passed / self.judged if self.judged else None

    @property
    def text(self) -> str:
        """Rounded down, as :func:`score`: ``"87%"`` or ``"—"``."""
        value = self.value
        return "—" if value is None else f"{math.floor(value)}%"


def severities(data: RunData) -> dict[str, str]:
    """check id → severity, from the run's catalogue."""
    return {str(c.get("id")): str(c.get("severity") or "") for c in data.checks}


def weighted_score(results: Iterable[Result], severity: Mapping[str, str]) -> Weighted:
    """The weighted score of ``results`` (see :data:`WEIGHTED_EXPLAINED`)."""
    total = Weighted()
    for result in results:
        total.add(pass_fraction(result), severity_weight(severity.get(result.check)))
    return total


def shade(value: float | None) -> int | None:
    """The shading step (0–10) of a score in percent: 0 is 0–9 %, 10 is 100 %; None when
    nothing was judged. Rounded down, so only a perfect score gets the last step."""
    if value is None:
        return None
    return min(10, max(0, math.floor(value / 10)))


def is_reference(entry: Mapping[str, object]) -> bool:
    """True for the builtin reference provider: ``builtin: reference`` in providers.yaml,
    written as base_url ``builtin:reference`` in results.json, without ``faults`` (a builtin
    with faults stands in for a broken provider and is ranked like one)."""
    return entry.get("base_url") == "builtin:reference" and not entry.get("faults")


def unrun_reason(entry: Mapping[str, object], results: Iterable[Result]) -> str | None:
    """Why a provider was not run at all (``set API51_API_KEY``), or None when it was: a
    provider skipped for its configuration (``skipped`` in results.json), or one whose every
    result is a skip without a request sent."""
    if entry.get("skipped"):
        return str(entry["skipped"])
    messages: set[str] = set()
    count = 0
    for result in results:
        if result.outcome != "skip" or result.evidence.get("exchanges"):
            return None
        messages.add(result.message)
        count += 1
    if not count:
        return None
    return messages.pop() if len(messages) == 1 else "not run"


def security_failures(data: RunData) -> list[Result]:
    """The failed checks of severity ``security``, in result order."""
    severity = severities(data)
    return [r for r in data.results if r.outcome == "fail"
            and severity.get(r.check) == "security"]


#: Words the matrix's script writes into the evidence panel (embedded with the data).
PANEL_WORDS: dict[str, str] = {
    "copyCurl": N_("copy as curl"),
    "copied": N_("copied to the clipboard"),
    "selectToCopy": N_("select the command to copy it"),
    "curlNote": N_("The key is written as $VAR: set the variable before running the command. "
                   "The evidence is redacted (***), so other masked values must be filled in."),
    "eventAbout": N_("The verdict is about event #%n (highlighted)."),
}
