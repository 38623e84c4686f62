"""Combine several runs (e.g. one CI job per provider) into one run directory.

Providers and checks are united in the order they first appear; when two inputs hold a result
for the same (provider, check), the later input wins and a note says so.  The merged run has
its own id and records where it came from in ``run.merged_from``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conformance.results import Result, RunData


def merge_runs(runs: Sequence[RunData], run_id: str) -> tuple[RunData, list[str]]:
    """The merged run and notes about overridden results (one line each)."""
    if not runs:
        raise ValueError("nothing to merge")
    notes: list[str] = []
    providers: dict[str, dict[str, Any]] = {}
    checks: dict[str, dict[str, Any]] = {}
    results: dict[tuple[str, str], Result] = {}
    origin: dict[tuple[str, str], str] = {}
    for data in runs:
        source = str(data.run.get("id", "?"))
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
                notes.append(f"{result.check} [{result.provider}]: result of {origin[key]} "
                             f"replaced by {source}")
            results[key] = result
            origin[key] = source
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
        complete=all(d.complete for d in runs),
    )
    return merged, notes
