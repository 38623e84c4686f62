"""The whole suite against a real inference server no one here wrote: llama.cpp's server
(llama-cpp-python) with SmolLM2-135M-Instruct, started on 127.0.0.1 by conformance.localpeer.

Every verdict must equal the committed expectation in ``peers/llamacpp-smollm2.yaml`` (checks
not listed there must pass), and no check may end in ``error``: a suite fault on a real server
is a bug in the suite.  Marked ``realpeer``; ``make realpeer`` installs the peer and runs it.
Without the peer installed the tests skip, unless CONFORMANCE_REQUIRE_REALPEER=1 (CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import localpeer
from tests.conftest import REPO, RunOutput, expectation_mismatches, run_suite

pytestmark = pytest.mark.realpeer

EXPECTATIONS = REPO / "peers" / "llamacpp-smollm2.yaml"
VENV = Path(os.environ.get("CONFORMANCE_PEER_VENV", REPO / localpeer.DEFAULT_VENV))


def load_expectations() -> dict[str, dict[str, dict[str, str]]]:
    data: dict[str, Any] = yaml.safe_load(EXPECTATIONS.read_text(encoding="utf-8"))
    return data["providers"]


@pytest.fixture(scope="module")
def peer_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if not localpeer.venv_python(VENV).exists():
        if os.environ.get("CONFORMANCE_REQUIRE_REALPEER") == "1":
            pytest.fail(f"the real peer is not installed in {VENV} (make realpeer installs it)")
        pytest.skip(f"the real peer is not installed in {VENV}: run scripts/local-peer install")
    logs = tmp_path_factory.mktemp("peer-logs")
    with localpeer.running(VENV, logs) as peers:
        yield localpeer.environment(peers)


@pytest.fixture(scope="module")
def peer_run(peer_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    out = run_suite(REPO / "providers.local.yaml", tmp_path_factory.mktemp("peer") / "report",
                    env=peer_env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_expectations_file_is_well_formed() -> None:
    from conformance.checks.registry import all_checks

    known = {c.id for c in all_checks()}
    for provider, checks in load_expectations().items():
        assert provider in ("llamacpp-smollm2", "llamacpp-smollm2-fc")
        for check_id, entry in checks.items():
            assert check_id in known, f"{provider}: unknown check {check_id}"
            assert entry["outcome"] in ("fail", "unsupported", "skip"), (check_id, entry)
            assert entry.get("reason") and entry.get("message"), (check_id, entry)
            assert entry.get("verified"), f"{provider}/{check_id}: say how it was verified"


def test_no_check_ends_in_error(peer_run: RunOutput) -> None:
    errors = {k: m for k, (o, m) in peer_run.outcomes().items() if o == "error"}
    assert errors == {}


def test_every_verdict_matches_the_expectations(peer_run: RunOutput) -> None:
    mismatches = expectation_mismatches(peer_run, load_expectations())
    assert mismatches == [], "\n".join(mismatches)
