"""What a run cost and what the billing findings mean in money, read from result data only.

Cost = the tokens a provider's answers reported (:func:`conformance.results.token_totals`)
× its ``price:`` (per 1M tokens, in the user's currency; results.json ``providers[].price``).
An over-billing finding (``billing.prompt_tokens`` measured an excess of prompt tokens per
request) is priced per 1M requests: excess × input price.  "Billed vs counted" is the
``billing.prompt_tokens`` measurement: prompt tokens billed against the client's count.
"""

from __future__ import annotations

from typing import Any

from conformance.i18n import _
from conformance.results import Result, RunData, token_totals

#: Verdicts about what the user is billed for or which model answered: first in summary.md.
MONEY_CHECKS = (
    "billing.prompt_tokens", "billing.completion_tokens", "billing.tokenizer",
    "fidelity.model", "fidelity.no_injected_messages", "fidelity.usage", "fidelity.stream_usage",
)


def _price(entry: dict[str, Any]) -> tuple[float, float] | None:
    price = entry.get("price")
    if not isinstance(price, dict):
        return None
    try:
        return float(price["input"]), float(price["output"])
    except (KeyError, TypeError, ValueError):
        return None


def costs(data: RunData) -> dict[str, float]:
    """What the run cost per provider that has a ``price:`` (absent: no price)."""
    spent = token_totals(data.results)
    out: dict[str, float] = {}
    for entry in data.providers:
        price = _price(entry)
        if price is None:
            continue
        used = spent.get(str(entry["name"]), {})
        out[str(entry["name"])] = (used.get("prompt", 0) * price[0]
                                   + used.get("completion", 0) * price[1]) / 1e6
    return out


def money(value: float) -> str:
    """A cost in the user's currency, with enough digits for a cheap run."""
    return f"{value:,.4f}" if value < 1 else f"{value:,.2f}"


def _facts(data: RunData, provider: str) -> dict[str, Any]:
    result = data.result_of("billing.prompt_tokens", provider)
    facts = result.evidence.get("billing") if result is not None else None
    return facts if isinstance(facts, dict) else {}


def billed_vs_counted(data: RunData, provider: str) -> str | None:
    """``"+12 % prompt"`` (billed against counted prompt tokens), or None when not measured."""
    facts = _facts(data, provider)
    billed, counted = facts.get("prompt_billed"), facts.get("prompt_counted")
    if not isinstance(billed, int) or not isinstance(counted, int) or counted <= 0:
        return None
    return _("{percent} % prompt").format(percent=f"{100 * (billed - counted) / counted:+.0f}")


def overbilling_cost(data: RunData, provider: str) -> str | None:
    """What a measured prompt excess costs per 1M requests at the provider's price."""
    excess = _facts(data, provider).get("prompt_excess")
    entry = next((p for p in data.providers if p.get("name") == provider), {})
    price = _price(entry)
    if not isinstance(excess, int) or excess <= 0 or price is None:
        return None
    return _("{cost} per 1M requests ({excess} extra prompt tokens each)").format(
        cost=money(excess * price[0]), excess=excess)


def money_findings(data: RunData) -> list[Result]:
    """The run's failed verdicts about billing and model identity, worst first."""
    order = {check: i for i, check in enumerate(MONEY_CHECKS)}
    found = [r for r in data.results if r.check in order and r.outcome == "fail"]
    return sorted(found, key=lambda r: (order[r.check], r.provider))
