"""Combine several runs (e.g. one CI job per provider) into one run directory.

Providers and checks are united in the order they first appear; when two inputs hold a result
for the same (provider, check), the later input wins and one note per pair of inputs says how
many results (of which providers) it replaced.  Planned checks that no input finished stay
"not run" in the merged run.  The merged run has its own id and records where it came from in
``run.merged_from``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conformance.results import Result, RunData


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def merge_runs(runs: Sequence[RunData], run_id: str, sources: Sequence[str] = ()
               ) -> tuple[RunData, list[str]]:
    """The merged run and notes about overridden results: one line per input whose results
    replaced those of an earlier input, e.g. ``92 results of run A from runs/a (provider x)
    replaced by run B from runs/b``.  ``sources`` name the inputs (their directories)."""
    if not runs:
        raise ValueError("nothing to merge")
    labels = [f"run {d.run.get('id', '?')}" + (f" from {sources[i]}" if i < len(sources) else "")
              for i, d in enumerate(runs)]
    providers: dict[str, dict[str, Any]] = {}
    checks: dict[str, dict[str, Any]] = {}
    results: dict[tuple[str, str], Result] = {}
    origin: dict[tuple[str, str], int] = {}
    # (replaced input, replacing input) → providers of the replaced results, with counts.
    replaced: dict[tuple[int, int], dict[str, int]] = {}
    for index, data in enumerate(runs):
        for entry in data.providers:
            name = str(entry.get("name"))
            # An entry that ran beats one that was only configured in another input.
            if name not in providers or any(r.provider == name for r in data.results):
                providers[name] = dict(entry)
        for entry in data.checks:
            checks.setdefault(str(entry.get("id")), dict(entry))
        for result in data.results:
            key = (result.provider, result.check)
            if key in results:
                by_provider = replaced.setdefault((origin[key], index), {})
                by_provider[result.provider] = by_provider.get(result.provider, 0) + 1
            results[key] = result
            origin[key] = index
    notes = [
        f"{_plural(sum(counts.values()), 'result')} of {labels[old]} "
        f"({'provider' if len(counts) == 1 else 'providers'} {', '.join(counts)}) "
        f"replaced by {labels[new]}"
        for (old, new), counts in replaced.items()
    ]
    started = [str(d.run["started_at"]) for d in runs if d.run.get("started_at")]
    finished = [str(d.run["finished_at"]) for d in runs if d.run.get("finished_at")]
    durations = [int(d.run["duration_ms"]) for d in runs
                 if isinstance(d.run.get("duration_ms"), int | float)]
    versions = list(dict.fromkeys(str(d.run.get("suite_version", "?")) for d in runs))
    run: dict[str, Any] = {
        "id": run_id,
        "started_at": min(started) if started else None,
        "finished_at": max(finished) if finished else None,
        "suite_version": " + ".join(versions),
        "merged_from": [
            {"id": d.run.get("id"), "providers": list(dict.fromkeys(r.provider
                                                                    for r in d.results))}
            for d in runs
        ],
    }
    if durations:
        # Merged jobs ran side by side: the longest one is the wall time.
        run["duration_ms"] = max(durations)
    merged = RunData(
        run=run,
        providers=list(providers.values()),
        checks=list(checks.values()),
        results=list(results.values()),
        # An input that recorded its plan is incomplete exactly where a planned pair has no
        # result, which a later input may fill; one without a plan taints the merge.
        complete=all(d.complete or d.planned is not None for d in runs),
        planned=([pair for d in runs for pair in (d.planned or [])]
                 if any(d.planned is not None for d in runs) else None),
    )
    return merged, notes
