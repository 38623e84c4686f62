"""Renderers of a run: results.json, junit.xml, matrix.html, summary.md and the terminal summary.

They read only result data (:class:`~conformance.results.RunData`, itself read from the result
files by :func:`~conformance.results.load_run`), never the live run, and never import pytest.
"""

from __future__ import annotations

from pathlib import Path

from conformance.report.diff import RunDiff, Snapshot, diff_runs, save_baseline
from conformance.report.junit import render_junit
from conformance.report.matrix import render_matrix
from conformance.report.summary import render_summary_md
from conformance.results import RunData, write_json


def write_reports(directory: Path, data: RunData, baseline: Snapshot | None = None
                  ) -> list[Path]:
    """Write results.json, junit.xml, matrix.html and summary.md into ``directory``; return
    their paths.

    With a ``baseline``, it is stored as ``baseline.json`` (so ``conformance report`` renders
    the same marks later), matrix.html marks the cells that changed and summary.md lists the
    changes.
    """
    directory.mkdir(parents=True, exist_ok=True)
    diff: RunDiff | None = None
    if baseline is not None:
        save_baseline(directory, baseline)
        diff = diff_runs(baseline, Snapshot.from_run(data, source=str(directory)))
    paths = [directory / "results.json", directory / "junit.xml", directory / "matrix.html",
             directory / "summary.md"]
    write_json(paths[0], data.to_json())
    paths[1].write_text(render_junit(data), encoding="utf-8")
    paths[2].write_text(render_matrix(data, diff), encoding="utf-8")
    paths[3].write_text(render_summary_md(data, diff), encoding="utf-8")
    return paths
