"""Renderers of a run: results.json, junit.xml, matrix.html, summary.md and the terminal summary.

They read only result data (:class:`~conformance.results.RunData`, itself read from the result
files by :func:`~conformance.results.load_run`), never the live run, and never import pytest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from markupsafe import Markup

from conformance.i18n import _
from conformance.report.ci import run_url
from conformance.report.diff import RunDiff, Snapshot, diff_runs, save_baseline
from conformance.report.history import sparklines
from conformance.report.junit import render_junit
from conformance.report.summary import render_summary_md
from conformance.results import RunData, printable, write_results_json


def write_reports(directory: Path, data: RunData, baseline: Snapshot | None = None,
                  history: Sequence[RunData] = (), *,
                  flaky_is_regression: bool = False) -> list[Path]:
    """Write results.json, junit.xml, matrix.html and summary.md into ``directory``; return
    the paths written.  Each file is written independently: a failure in one is said in one
    line on stderr and the others are still written.

    With a ``baseline``, it is stored as ``baseline.json`` (so ``conformance report`` renders
    the same marks later), matrix.html marks the cells that changed and summary.md lists the
    changes (a flaky pass is a regression only with ``flaky_is_regression``).  With
    ``history`` (earlier runs), matrix.html's column heads and summary.md show each
    provider's trend (:mod:`conformance.report.history`).  Inside GitHub Actions summary.md
    links to the run's artifacts.
    """
    directory.mkdir(parents=True, exist_ok=True)
    diff: RunDiff | None = None
    if baseline is not None:
        try:
            save_baseline(directory, baseline)
            diff = diff_runs(baseline, Snapshot.from_run(data, source=str(directory)),
                             flaky_is_regression=flaky_is_regression)
        except Exception as exc:  # the reports are written without the marks
            _said(_("baseline.json and the changes since the baseline"), exc)
    renderers: list[tuple[str, Callable[[Path], None]]] = [
        ("results.json", lambda path: write_results_json(path, data)),
        ("junit.xml", lambda path: _write(path, render_junit(data))),
        ("matrix.html", lambda path: _write(path, _matrix(
            data, diff, sparklines(data, history)))),
        ("summary.md", lambda path: _write(path, render_summary_md(
            data, diff, artifacts=run_url(os.environ), history=history))),
    ]
    written: list[Path] = []
    for name, render in renderers:
        # Each file on its own: one renderer's failure costs that file, never the others.
        try:
            render(directory / name)
        except Exception as exc:  # said in one line; the next file is still written
            _said(name, exc)
        else:
            written.append(directory / name)
    return written


def _matrix(data: RunData, diff: RunDiff | None, trends: Mapping[str, Markup]
            ) -> Iterable[str]:
    # jinja2 is imported when a matrix is written, not by every process that imports this
    # package (xdist workers write no report).
    from conformance.report.matrix import matrix_parts

    return matrix_parts(data, diff, trends=trends)


def _write(path: Path, text: str | Iterable[str]) -> None:
    """Write ``text`` (or its parts, as they come) atomically, so a failed render never
    leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            if isinstance(text, str):
                fh.write(text)
            else:
                fh.writelines(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def _said(what: str, exc: BaseException) -> None:
    message = printable(" ".join(str(exc).split()))[:300]
    print(_("conformance: could not write {what}: {error}").format(
        what=what, error=f"{type(exc).__name__}: {message}"), file=sys.stderr)
