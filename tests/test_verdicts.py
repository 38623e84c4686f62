"""Verdicts a user can act on when the trouble is not the provider's conformance: a rejected
key, a host that is down, rate limiting seen late in a run (issue "Verdicts users can trust
on real relays").  Each runs the suite as a user would, over real sockets."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from conformance.reference.server import ReferenceServer
from tests.conftest import SELFTEST_KEY, external, run_suite, write_providers

WRONG_KEY_ENV = "CONFORMANCE_ROTATED_KEY"


def test_a_rejected_key_is_one_error_and_never_a_fail(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    path = write_providers(tmp_path / "providers.yaml", [
        {**external("rotated", reference_server.base_url),
         "api_key": "${" + WRONG_KEY_ENV + "}"}])
    out = run_suite(path, tmp_path / "r", env={WRONG_KEY_ENV: "sk-rotated-" + "0" * 32})
    assert out.returncode == 0, out.stderr[-2000:]
    outcomes = out.outcomes()
    assert not [c for (_, c), (o, _) in outcomes.items() if o == "fail"]
    # The auth checks send deliberately wrong keys: their verdicts stand.
    still_judged = {c: o for (_, c), (o, _) in outcomes.items() if o != "error"}
    assert still_judged == {"auth.wrong_key": "pass", "auth.missing_key": "pass",
                            "sdk.auth_error": "pass"}
    errors = [m for (_, c), (o, m) in outcomes.items() if o == "error"]
    assert len(errors) == len(outcomes) - 3
    assert {m.split(":")[0] for m in errors} == {f"the key in {WRONG_KEY_ENV} was rejected"}
    # Said once on the terminal, not per check; and only three requests beyond the auth checks.
    said = [line for line in out.stdout.splitlines() if "was rejected" in line]
    assert len(said) == 1 and WRONG_KEY_ENV in said[0], out.stdout[-3000:]
    assert out.data["run"]["tokens"]["rotated"]["requests"] <= 6


def test_a_closed_port_finishes_fast_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = write_providers(tmp_path / "providers.yaml", [
        external("down", f"http://127.0.0.1:{port}/v1")])
    started = time.monotonic()
    out = run_suite(path, tmp_path / "r")
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr[-2000:]
    outcomes = out.outcomes()
    assert {o for o, _ in outcomes.values()} == {"error"}
    assert all(m.startswith("provider unreachable, no check was run: cannot connect to")
               for _, m in outcomes.values())
    said = [line for line in out.stdout.splitlines() if "unreachable" in line]
    assert len(said) == 1, out.stdout[-3000:]
    assert out.data["run"]["tokens"].get("down", {}).get("requests", 0) <= 1
    assert elapsed < 5, f"{elapsed:.1f}s"


@pytest.mark.parametrize("concurrency", [1, 4])
def test_rate_limit_verdict_does_not_depend_on_scheduling(tmp_path: Path,
                                                         concurrency: int) -> None:
    """The 429 arrives in a check that is scheduled after sdk.rate_limit (the Messages
    stop_sequences request); sdk.rate_limit must judge it at any concurrency.  A server of its
    own: the quirk limits each request body once per server."""
    with ReferenceServer(api_key=SELFTEST_KEY) as server:
        path = write_providers(tmp_path / "providers.yaml", [
            external("limited", server.variant_url(["rate_limited_once"]),
                     concurrency=concurrency)])
        out = run_suite(path, tmp_path / "r", "-k", "sdk.rate_limit or messages_api")
    verdict = out.outcomes()[("limited", "sdk.rate_limit")]
    assert verdict == ("pass", "a 429 seen earlier in this run → openai.RateLimitError")
