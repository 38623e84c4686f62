"""Renderers of a run: results.json, junit.xml, matrix.html and the terminal summary.

They read only result data (:class:`~conformance.results.RunData`, itself read from the result
files by :func:`~conformance.results.load_run`), never the live run, and never import pytest.
"""

from __future__ import annotations

from pathlib import Path

from conformance.report.junit import render_junit
from conformance.report.matrix import render_matrix
from conformance.results import RunData, write_json


def write_reports(directory: Path, data: RunData) -> list[Path]:
    """Write results.json, junit.xml and matrix.html into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "results.json", directory / "junit.xml", directory / "matrix.html"]
    write_json(paths[0], data.to_json())
    paths[1].write_text(render_junit(data), encoding="utf-8")
    paths[2].write_text(render_matrix(data), encoding="utf-8")
    return paths
