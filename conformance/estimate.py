"""What a run will cost, said before it sends anything (``--repeat K``, ``--max-tokens``).

The per-check figures in :mod:`conformance.cost_table` are measured from a run of the whole
suite against the reference provider (``scripts/cost-table`` writes them; a self-test keeps
them in step with the registry and with a real run): each check's requests to the provider
and the tokens its answers reported, a request shared by n checks counted 1/n to each, so
the figures of every check add up to the run's own (79 requests, about 2,040 tokens for the
README's 98 checks).  A provider's estimate is the sum over the checks selected that apply
to it — ``fidelity`` only with ``upstream:``, ``billing`` only for a model with a public
tokenizer — times K.  A real model writes longer answers than the reference's scripted one,
so the token figure is a floor, not a bill.  This module never imports pytest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from conformance import tokens
from conformance.config import ProviderConfig
from conformance.cost_table import COSTS
from conformance.i18n import _


@dataclass(frozen=True)
class Cost:
    """Requests and tokens of one run of some checks against one provider."""

    requests: float = 0.0
    tokens: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.requests + other.requests, self.tokens + other.tokens)

    def __mul__(self, k: int) -> Cost:
        return Cost(self.requests * k, self.tokens * k)


def applies(check_id: str, provider: ProviderConfig) -> bool:
    """Whether the check sends requests to ``provider`` (the families that ``skip`` without
    any request: ``fidelity`` without ``upstream:``, ``billing`` for a model without a public
    tokenizer)."""
    family = check_id.split(".", 1)[0]
    if family == "fidelity":
        return provider.upstream is not None
    if family == "billing":
        return tokens.encoding_for(provider.model_for("billing")) is not None
    return True


def estimate(check_ids: Iterable[str], provider: ProviderConfig, repeat: int = 1) -> Cost:
    """The cost of the checks ``check_ids`` against ``provider``, ``repeat`` times (nothing
    for a provider that is skipped: no key)."""
    if provider.skip_reason:
        return Cost()
    total = Cost()
    for check_id in dict.fromkeys(check_ids):
        figures = COSTS.get(check_id)
        if figures is not None and applies(check_id, provider):
            total += Cost(*figures)
    return total * repeat


def _tokens(value: float) -> str:
    """``~6,100``: to 2-3 significant figures (it is an estimate)."""
    step = 100 if value >= 1000 else 10 if value >= 100 else 1
    return f"{round(value / step) * step:,}"


def _cost(cost: Cost) -> str:
    return _("~{requests} requests, ~{tokens} tokens").format(
        requests=f"{round(cost.requests):,}", tokens=_tokens(cost.tokens))


def cost_line(pairs: Sequence[tuple[str, str]], providers: Sequence[ProviderConfig],
              repeat: int, max_tokens: int | None = None) -> str | None:
    """The line a run prints before it starts, e.g. ``--repeat 3: ~237 requests, ~6,100
    tokens per provider (3 × ~79 requests, ~2,040 tokens)``; None when no provider would be
    sent anything.  ``pairs`` are the (check id, provider) pairs selected."""
    by_name = {p.name: p for p in providers}
    selected: dict[str, list[str]] = {}
    for check_id, name in pairs:
        if name in by_name and not by_name[name].skip_reason:
            selected.setdefault(name, []).append(check_id)
    if not selected:
        return None
    single = {name: estimate(ids, by_name[name]) for name, ids in selected.items()}
    head = f"--repeat {repeat}" if repeat > 1 else _("this run")
    shown = {(round(c.requests), _tokens(c.tokens)) for c in single.values()}
    if len(shown) == 1:
        one = next(iter(single.values()))
        per = _("per provider") if len(single) > 1 else _("at {provider}").format(
            provider=next(iter(single)))
        line = f"{head}: {_cost(one * repeat)} {per}"
        if repeat > 1:
            line += f" ({repeat} × {_cost(one)})"
    else:
        line = f"{head}: " + "; ".join(f"{name} {_cost(cost * repeat)}"
                                       for name, cost in single.items())
    total = sum(c.tokens for c in single.values()) * repeat
    if max_tokens is not None and total > max_tokens:
        line += _("; that is more than --max-tokens {budget}: once it is spent, the "
                  "remaining runs skip").format(budget=f"{max_tokens:,}")
    return line + _(" (estimated from the reference provider's run)")
