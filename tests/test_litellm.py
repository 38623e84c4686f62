"""The whole suite against a real relay no one here wrote: the LiteLLM proxy (conformance.
litellm_peer) in front of the reference provider, both on 127.0.0.1.

Every verdict must equal the committed expectation in ``peers/litellm-<version>.yaml`` (checks
not listed there must pass), and no check may end in ``error``: a suite fault on a real server
is a bug in the suite or in the proxy's configuration.  LiteLLM must reach nothing but
127.0.0.1: its client libraries are pointed at a trap proxy that records every other request.
Marked ``realpeer``; ``make realpeer`` installs LiteLLM and runs it.  Without LiteLLM installed
the tests skip, unless CONFORMANCE_REQUIRE_REALPEER=1 (CI).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import litellm_peer
from conformance.reference.server import ReferenceServer
from tests.conftest import REPO, RunOutput, expectation_mismatches, run_suite

pytestmark = pytest.mark.realpeer

EXPECTATIONS = REPO / "peers" / f"litellm-{litellm_peer.VERSION}.yaml"
VENV = Path(os.environ.get("CONFORMANCE_LITELLM_VENV", REPO / litellm_peer.DEFAULT_VENV))
#: The reference's key, known to LiteLLM only (the suite is given LiteLLM's master key).
UPSTREAM_KEY = "sk-upstream-" + secrets.token_hex(16)
#: What a client library says when it resolved a host name itself instead of using the proxy.
RESOLVER_ERRORS = ("Name or service not known", "Temporary failure in name resolution",
                   "nodename nor servname")


def load_expectations() -> dict[str, dict[str, dict[str, str]]]:
    data: dict[str, Any] = yaml.safe_load(EXPECTATIONS.read_text(encoding="utf-8"))
    return data["providers"]


class Relay:
    """The running proxy, its trap and its working directory (config.yaml, litellm.log)."""

    def __init__(self, proxy: litellm_peer.Proxy, trap: litellm_peer.Trap) -> None:
        self.proxy = proxy
        self.trap = trap

    @property
    def log(self) -> str:
        return (Path(self.proxy.workdir) / "litellm.log").read_text(encoding="utf-8",
                                                                     errors="replace")


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    if not (VENV / "bin" / "litellm").exists():
        if os.environ.get("CONFORMANCE_REQUIRE_REALPEER") == "1":
            pytest.fail(f"LiteLLM is not installed in {VENV} (make realpeer installs it)")
        pytest.skip(f"LiteLLM is not installed in {VENV}: run scripts/litellm-peer install")
    workdir = tmp_path_factory.mktemp("litellm")
    trap = litellm_peer.Trap().start()
    try:
        with ReferenceServer(api_key=UPSTREAM_KEY) as upstream, \
                litellm_peer.running(upstream.base_url, UPSTREAM_KEY, VENV, workdir,
                                     trap) as proxy:
            yield Relay(proxy, trap)
    finally:
        trap.stop()


@pytest.fixture(scope="module")
def relay_run(relay: Relay, tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    out = run_suite(REPO / "providers.litellm.yaml",
                    tmp_path_factory.mktemp("litellm-run") / "report",
                    env=litellm_peer.environment(relay.proxy))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_expectations_file_is_well_formed() -> None:
    from conformance.checks.registry import all_checks

    known = {c.id for c in all_checks()}
    for provider, checks in load_expectations().items():
        assert provider == "litellm"
        for check_id, entry in checks.items():
            assert check_id in known, f"{provider}: unknown check {check_id}"
            assert entry["outcome"] in ("fail", "unsupported", "skip"), (check_id, entry)
            assert entry.get("reason") and entry.get("message"), (check_id, entry)
            assert entry.get("verified"), f"{provider}/{check_id}: say how it was verified"


def test_the_pinned_version_is_the_one_installed(relay: Relay) -> None:
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    installed = subprocess.run([str(litellm_peer.venv_python(VENV)), "-c", code], check=True,
                               capture_output=True, text=True).stdout.strip()
    assert installed == litellm_peer.VERSION, f"re-record {EXPECTATIONS.name} for {installed}"


def test_no_check_ends_in_error(relay_run: RunOutput) -> None:
    errors = {k: m for k, (o, m) in relay_run.outcomes().items() if o == "error"}
    assert errors == {}


def test_every_verdict_matches_the_expectations(relay_run: RunOutput) -> None:
    mismatches = expectation_mismatches(relay_run, load_expectations())
    assert mismatches == [], "\n".join(mismatches)


def test_litellm_reached_nothing_but_loopback(relay: Relay, relay_run: RunOutput) -> None:
    """After a whole run: no request came to the trap and no host name was looked up."""
    assert relay.trap.requests == []
    log = relay.log
    assert not [e for e in RESOLVER_ERRORS if e in log], log[-3000:]
