"""``-n auto`` in a conformance run starts no more xdist workers than there are providers, and
none for one provider (conformance.pytest_support.auto_workers); an explicit ``-n N`` and every
other pytest run are left as xdist makes them."""

from __future__ import annotations

from pathlib import Path

from conformance.reference.server import ReferenceServer
from tests.conftest import (
    external,
    run_cli,
    run_pytest,
    run_suite,
    write_providers,
)

#: xdist's own count for ``-n auto`` (its CPU count otherwise: the machine's, not the test's).
FOUR = {"PYTEST_XDIST_AUTO_NUM_WORKERS": "4"}
#: What xdist prints when it starts workers, with ``-q`` ("created: N/N workers" without).
XDIST_STARTS = "bringing up nodes"


def test_one_provider_runs_in_this_process(reference_server: ReferenceServer,
                                           tmp_path: Path) -> None:
    providers = write_providers(tmp_path / "providers.yaml",
                                [external("reference", reference_server.base_url)])
    auto = run_suite(providers, tmp_path / "auto", "-n", "auto", "-k", "stop", env=FOUR)
    assert auto.returncode == 0, auto.stdout[-3000:]
    assert XDIST_STARTS not in auto.stdout
    assert ("conformance: -n auto: one provider, so its checks run in this process"
            in auto.stdout)
    # The control: the user's own -n 2 is kept, and the witness sees xdist start.
    explicit = run_suite(providers, tmp_path / "explicit", "-n", "2", "-k", "stop", env=FOUR)
    assert explicit.returncode == 0, explicit.stdout[-3000:]
    assert XDIST_STARTS in explicit.stdout
    assert "-n auto" not in explicit.stdout
    assert auto.outcomes() == explicit.outcomes()
    assert len(auto.outcomes()) >= 4


def test_workers_are_at_most_the_providers(reference_server: ReferenceServer,
                                           tmp_path: Path) -> None:
    providers = write_providers(tmp_path / "providers.yaml", [
        external("reference", reference_server.base_url),
        external("again", reference_server.base_url),
    ])
    # Without -q: xdist says how many workers it created.
    out = run_cli(["run", "--providers", str(providers), "--report-dir",
                   str(tmp_path / "report"), "-p", "no:cacheprovider", "-n", "auto",
                   "-k", "stop"], cwd=tmp_path, env=FOUR)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "created: 2/2 workers" in out.stdout
    assert "conformance: -n auto: 2 workers, one per provider (xdist would start 4)" in out.stdout
    # --provider leaves one: the run stays in this process again.
    one = run_cli(["run", "--providers", str(providers), "--provider", "again",
                   "--report-dir", str(tmp_path / "one"), "-p", "no:cacheprovider",
                   "-n", "logical", "-k", "stop"], cwd=tmp_path, env=FOUR)
    assert one.returncode == 0, one.stdout[-3000:]
    assert "created:" not in one.stdout
    assert "conformance: -n logical: one provider" in one.stdout


def test_other_pytest_runs_keep_xdists_count(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text("def test_one():\n    pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    out = run_pytest(["-p", "no:cacheprovider", "-n", "auto", "test_mine.py"], cwd=tmp_path,
                     env=FOUR)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "created: 4/4 workers" in out.stdout
    assert "conformance" not in out.stdout.replace("plugins: conformance", "")


def test_unreadable_providers_are_one_line_as_without_n(tmp_path: Path) -> None:
    bad = tmp_path / "providers.yaml"
    bad.write_text("providers:\n  - name: a\n    base_url: http://127.0.0.1:9/v1\n")
    out = run_cli(["run", "--providers", str(bad), "-n", "auto"], cwd=tmp_path, env=FOUR)
    plain = run_cli(["run", "--providers", str(bad)], cwd=tmp_path, env=FOUR)
    assert out.returncode == plain.returncode != 0
    assert "providers.yaml:2: providers[0].model: missing" in out.stderr + out.stdout
    assert (out.stdout, out.stderr) == (plain.stdout, plain.stderr)
    assert "Traceback" not in out.stderr + out.stdout
    # Plain pytest reads the file in xdist's hook first: still pytest's one usage error.
    direct = run_pytest(["-p", "no:cacheprovider", "--providers", str(bad), "-n", "auto",
                         "conformance"], cwd=tmp_path, env=FOUR)
    assert direct.returncode == 4, direct.stdout + direct.stderr
    assert "providers.yaml:2: providers[0].model: missing" in direct.stderr
    assert "Traceback" not in direct.stderr + direct.stdout
