"""The garbage collector's thresholds during a run (conformance/gcpolicy.py): raised while the
suite runs, under ``conformance run`` and plain ``pytest`` alike, a higher threshold of the
user's kept, and the caller's put back afterwards.  The time it saves is printed by
``make bench``, not asserted here."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import gcpolicy
from conformance.reference.server import ReferenceServer
from tests.conftest import external, run_cli, run_pytest, write_providers

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 14),
                                reason="3.14's incremental collector keeps its defaults")

#: A user's plugin: writes the collector's thresholds as the session finishes (mid-run).
WITNESS = '''
import gc, json

def pytest_sessionfinish(session):
    with open("thresholds.json", "w") as fh:
        json.dump(gc.get_threshold(), fh)
'''


@pytest.fixture
def thresholds() -> Iterator[None]:
    """Whatever a test sets, this process's thresholds are as before afterwards."""
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)


def test_relax_raises_each_threshold_and_restore_puts_them_back(thresholds: None) -> None:
    gc.set_threshold(700, 10, 10)
    before = gcpolicy.relax()
    assert before == (700, 10, 10)
    assert gc.get_threshold() == gcpolicy.RUN_THRESHOLDS
    gcpolicy.restore(before)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_threshold_already_higher_is_kept(thresholds: None) -> None:
    gc.set_threshold(50_000, 5, 40)
    before = gcpolicy.relax()
    assert gc.get_threshold() == (50_000, gcpolicy.RUN_THRESHOLDS[1], 40)
    gcpolicy.restore(before)
    assert gc.get_threshold() == (50_000, 5, 40)
    gc.set_threshold(*(n + 1 for n in gcpolicy.RUN_THRESHOLDS))
    assert gcpolicy.relax() is None  # nothing to raise, nothing to put back


@pytest.mark.parametrize("runner", ["conformance run", "pytest"])
def test_a_run_raises_the_thresholds_while_it_runs(runner: str, tmp_path: Path,
                                                   reference_server: ReferenceServer) -> None:
    (tmp_path / "gc_witness.py").write_text(WITNESS)
    providers = write_providers(tmp_path / "providers.yaml",
                                [external("ref", reference_server.base_url)])
    args = ["--providers", str(providers), "--report-dir", "r", "-q", "-p", "no:cacheprovider",
            "-p", "gc_witness", "-k", "stop.list"]
    if runner == "pytest":
        proc = run_pytest(["conformance", *args], cwd=tmp_path)
    else:
        proc = run_cli(["run", *args], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    during = json.loads((tmp_path / "thresholds.json").read_text())
    assert all(now >= least for now, least in zip(during, gcpolicy.RUN_THRESHOLDS,
                                                  strict=True)), during
