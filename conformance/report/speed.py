"""How fast each provider answered, read from what the run already recorded (result data only).

Every exchange in the results' ``evidence.exchanges`` is counted once (shared requests appear
in several results; they carry an ``id``). Only answered generation requests are timed: a
``POST`` that got a 2xx without a transport error. Per provider:

- **time to first token (TTFT)**: for a stream, the arrival of the first event that carries
  content (``delta.content``, a tool call or refusal, a Messages ``content_block_delta``; the
  first event if none does); for a non-streamed answer, the first byte of the response, which
  carries the whole answer. Median and p95 (nearest rank), in ms since the request was sent.
- **total time**: ``elapsed_ms`` of the exchange (request sent → answer read), median and p95.
- **output tokens per second**: Σ completion tokens ÷ Σ generation time over the streams that
  reported usage, generation time being the time from the first to the last content event;
  without such streams, Σ completion tokens ÷ Σ total time of the non-streamed answers with
  usage (which then includes the wait before the answer, so it is a lower bound).

The suite's prompts are short and its answers a few dozen tokens, on a run whose checks go
concurrently: the figures compare providers under the suite's load, they are not a benchmark.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from conformance import jsontext
from conformance.i18n import N_
from conformance.results import Result, RunData


@dataclass(frozen=True)
class Speed:
    """One provider's speed figures (ms; None when nothing was measured)."""

    requests: int
    ttft_median: float | None
    ttft_p95: float | None
    total_median: float | None
    total_p95: float | None
    tokens_per_s: float | None


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _carries_content(data: object) -> bool:
    try:
        payload = jsontext.loads(data) if isinstance(data, str) else None
    except ValueError:
        return False
    if not isinstance(payload, dict):
        return False
    if payload.get("type") == "content_block_delta":
        return True
    choices = payload.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and any(delta.get(k) for k in
                                           ("content", "tool_calls", "refusal")):
            return True
    return False


def _timed(exchange: Mapping[str, Any]) -> tuple[float, float, int, float] | None:
    """(TTFT, total, completion tokens, generation ms) of an answered POST, else None.
    Generation ms is negative for a non-streamed answer (its total is used)."""
    request = exchange.get("request")
    response = exchange.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        return None
    status = response.get("status")
    total = _number(exchange.get("elapsed_ms"))
    if (request.get("method") != "POST" or not isinstance(status, int)
            or not 200 <= status < 300 or exchange.get("error") or total is None):
        return None
    usage = exchange.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    tokens = tokens if isinstance(tokens, int) and tokens > 0 else 0
    events = response.get("events")
    if isinstance(events, list):
        times = [t for e in events if isinstance(e, dict) and _carries_content(e.get("data"))
                 and (t := _number(e.get("t_ms"))) is not None]
        every = [t for e in events if isinstance(e, dict)
                 and (t := _number(e.get("t_ms"))) is not None]
        if not every:
            return None
        first = times[0] if times else every[0]
        generation = times[-1] - times[0] if len(times) > 1 else 0.0
        return first, total, tokens, generation
    first_byte = _number(exchange.get("first_byte_ms"))
    return (first_byte if first_byte is not None else total), total, tokens, -1.0


#: How deep :func:`exchange_records` looks for exchanges inside a result's evidence.
_MAX_DEPTH = 6


def _is_exchange(value: Mapping[str, Any]) -> bool:
    return (isinstance(value.get("request"), dict) and isinstance(value.get("response"), dict)
            and "elapsed_ms" in value)


def exchange_records(evidence: object) -> list[dict[str, Any]]:
    """Every exchange record in a result's evidence: ``evidence.exchanges`` and those of any
    nested record holding more (e.g. one per repeat under ``--repeat``), not looking inside an
    exchange itself (its bodies are the provider's data)."""
    found: list[dict[str, Any]] = []
    stack: list[tuple[object, int]] = [(evidence, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if _is_exchange(value) and depth:
                found.append(value)
            elif depth < _MAX_DEPTH:
                stack += [(v, depth + 1) for v in reversed(list(value.values()))
                          if isinstance(v, dict | list)]
        elif isinstance(value, list) and depth < _MAX_DEPTH:
            stack += [(v, depth + 1) for v in reversed(value) if isinstance(v, dict | list)]
    return found


def exchanges_by_provider(results: Iterable[Result]) -> dict[str, list[dict[str, Any]]]:
    """Each provider's exchanges, each counted once (by ``id``), in result order; a result's
    repeats (``runs``), when it carries them, included."""
    out: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for result in results:
        bucket = out.setdefault(result.provider, [])
        records = exchange_records(result.evidence)
        runs = getattr(result, "runs", None)
        if isinstance(runs, list):
            records += exchange_records(runs)
        for exchange in records:
            key = exchange.get("id")
            if isinstance(key, str) and key:
                if key in seen:
                    continue
                seen.add(key)
            bucket.append(exchange)
    return out


def speed_of(exchanges: Iterable[Mapping[str, Any]]) -> Speed:
    """The figures of one provider's exchanges (see the module docstring)."""
    ttfts: list[float] = []
    totals: list[float] = []
    streamed = [0, 0.0]
    plain = [0, 0.0]
    for exchange in exchanges:
        timed = _timed(exchange)
        if timed is None:
            continue
        first, total, tokens, generation = timed
        ttfts.append(first)
        totals.append(total)
        if tokens and generation > 0:
            streamed[0] += tokens
            streamed[1] += generation
        elif tokens and generation < 0 and total > 0:
            plain[0] += tokens
            plain[1] += total
    rate = None
    if streamed[1] > 0:
        rate = streamed[0] / (streamed[1] / 1000)
    elif plain[1] > 0:
        rate = plain[0] / (plain[1] / 1000)
    return Speed(
        requests=len(totals),
        ttft_median=statistics.median(ttfts) if ttfts else None,
        ttft_p95=percentile(ttfts, 0.95),
        total_median=statistics.median(totals) if totals else None,
        total_p95=percentile(totals, 0.95),
        tokens_per_s=rate,
    )


def speeds(data: RunData) -> dict[str, Speed]:
    """provider → its figures, for every provider with a timed request."""
    return {provider: figures for provider, exchanges in
            exchanges_by_provider(data.results).items()
            if (figures := speed_of(exchanges)).requests}


def ms(value: float | None) -> str:
    """``"120 ms"``, ``"2.3 s"``, or ``"—"``."""
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def rate(value: float | None) -> str:
    """``"45 tok/s"`` or ``"—"``."""
    return "—" if value is None else f"{value:,.0f} tok/s"


def median_p95(median: float | None, p95: float | None) -> str:
    """``"120 ms · p95 340 ms"``."""
    return "—" if median is None else f"{ms(median)} · p95 {ms(p95)}"


def speed_line(figures: Speed) -> str:
    """``"TTFT 120 ms · p95 340 ms · 45 tok/s"`` for a column head."""
    parts = [f"TTFT {median_p95(figures.ttft_median, figures.ttft_p95)}"]
    if figures.tokens_per_s is not None:
        parts.append(rate(figures.tokens_per_s))
    return " · ".join(parts)


#: How the figures are computed, in one line (summary.md, matrix legend).
SPEED_EXPLAINED = N_(
    "Speed from the run's own requests (answered POSTs, each once): TTFT = first content event "
    "of a stream or first byte of a plain answer; total = request sent → answer read; median "
    "and p95; tok/s = completion tokens ÷ time from first to last content event of streams "
    "with usage. Measured under the suite's concurrent load, not a benchmark."
)
