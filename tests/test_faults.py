"""Every check fails on a provider that breaks it, for the right reason, and nothing else moves.

One real reference server serves the faithful API and, under ``/variant/<fault>/v1``, one
deliberately broken variant per fault and one legal variation per quirk.  The suite runs once
(as ``conformance run`` in a subprocess, over real sockets) against all of them; each test
then compares one provider's column with the faithful reference column.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.checks.registry import all_checks
from conformance.reference.faults import FAULTS, QUIRKS
from conformance.reference.server import ReferenceServer
from tests.conftest import (
    SELFTEST_KEY,
    RunOutput,
    external,
    judged,
    run_suite,
    write_providers,
)
from tests.expectations import merged

EXPECTED = merged()
#: Stated in the README ("Token budget"); raise them only with a reason in the CHANGELOG
#: (2,500 tokens and 80 requests before the Responses API checks, whose own budget is below;
#: 5 more requests for streaming.real_time's resends, sent only when the client stalled).
TOKEN_BUDGET = 3300
REQUEST_BUDGET = 107
#: The Responses API checks (responses_api and the sdk family's responses_*), per model.
RESPONSES_TOKEN_BUDGET = 800
RESPONSES_REQUEST_BUDGET = 25


#: Faults judged from arrival times, proven in a run of their own: in the one run of every fault
#: (~200 providers on one engine loop, the reference server in the same machine) the client is
#: so busy that ``streaming.real_time`` rightly reads its stream as inconclusive (``skip``, never
#: a false ``fail``); see :func:`test_fake_streaming_fails_in_a_run_of_its_own`.
ALONE = frozenset({"stream_buffered_burst"})


@pytest.fixture(scope="session")
def fault_run(reference_server: ReferenceServer, tmp_path_factory: pytest.TempPathFactory
              ) -> RunOutput:
    """The whole suite, once, against the reference and every fault and quirk variant."""
    base = tmp_path_factory.mktemp("faults")
    entries = [external("reference", reference_server.base_url)]
    entries += [external(f"fault.{f}", reference_server.variant_url([f])) for f in FAULTS
                if f not in ALONE]
    entries += [external(f"quirk.{q}", reference_server.variant_url([q])) for q in QUIRKS]
    providers = write_providers(base / "providers.yaml", entries)
    out = run_suite(providers, base / "report")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def column(out: RunOutput, provider: str) -> dict[str, tuple[str, str]]:
    return {check: v for (p, check), v in out.outcomes().items() if p == provider}


def test_reference_passes_every_check(fault_run: RunOutput) -> None:
    ref = column(fault_run, "reference")
    assert set(ref) == {c.id for c in all_checks()}
    assert {c: v for c, v in judged(ref).items() if v[0] != "pass"} == {}


@pytest.mark.parametrize("fault", sorted(set(FAULTS) - ALONE))
def test_fault_breaks_exactly_its_checks(fault_run: RunOutput, fault: str) -> None:
    assert_breaks_exactly(fault_run, fault)


def test_fake_streaming_fails_in_a_run_of_its_own(reference_server: ReferenceServer,
                                                  tmp_path: Path) -> None:
    """The faults of :data:`ALONE`, each next to the reference, in a run of the streaming
    family: the fault breaks exactly its checks, the reference passes them all."""
    entries = [external("reference", reference_server.base_url)]
    entries += [external(f"fault.{f}", reference_server.variant_url([f])) for f in sorted(ALONE)]
    out = run_suite(write_providers(tmp_path / "providers.yaml", entries), tmp_path / "report",
                    "-k", "streaming")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ref = column(out, "reference")
    assert ref and {c: v for c, v in judged(ref).items() if v[0] != "pass"} == {}
    for fault in sorted(ALONE):
        assert_breaks_exactly(out, fault, among=set(ref))


def assert_breaks_exactly(out: RunOutput, fault: str, among: set[str] | None = None) -> None:
    """Fault ``fault``'s column of ``out`` differs from all-pass in exactly its expected checks
    (of those run, ``among``), each with its outcome and message fragment."""
    assert fault in EXPECTED, f"no expectation written for fault {fault!r}"
    got = column(out, f"fault.{fault}")
    changed = {c: v for c, v in judged(got).items() if v[0] != "pass"}
    expected = {c: v for c, v in EXPECTED[fault].items() if among is None or c in among}
    assert set(changed) == set(expected), {c: changed.get(c) for c in set(changed) ^ set(expected)}
    for check_id, (outcome, fragment) in expected.items():
        got_outcome, message = changed[check_id]
        assert got_outcome == outcome, (check_id, message)
        assert fragment in message, (check_id, message)


@pytest.mark.parametrize("quirk", sorted(QUIRKS))
def test_legal_quirk_changes_nothing(fault_run: RunOutput, quirk: str) -> None:
    got = column(fault_run, f"quirk.{quirk}")
    assert {c: v for c, v in judged(got).items() if v[0] != "pass"} == {}


def test_every_check_is_broken_by_some_fault() -> None:
    broken = {check for expect in EXPECTED.values() for check, (o, _) in expect.items()
              if o == "fail"}
    # fidelity is judged behind a relay (tests/test_fidelity.py breaks each check there);
    # billing on an OpenAI-named model (tests/test_billing.py), not on this run's ref-1.
    assert {c.id for c in all_checks()
            if c.behavior not in ("fidelity", "billing")} - broken == set()


def test_every_expectation_names_a_real_fault() -> None:
    assert set(EXPECTED) - set(FAULTS) == set()


def test_no_secret_in_any_artefact(fault_run: RunOutput) -> None:
    """The echo_key variant puts the configured key into bodies and headers; no file under
    the report dir, and nothing printed, may contain it."""
    echoed = [r for r in fault_run.data["results"] if r["provider"] == "fault.echo_key"]
    assert any("***" in str(r["evidence"]) for r in echoed), "echo_key did not echo anything"
    for path in fault_run.report_dir.rglob("*"):
        if path.is_file():
            assert SELFTEST_KEY not in path.read_text(encoding="utf-8", errors="replace"), path
    assert SELFTEST_KEY not in fault_run.stdout + fault_run.stderr


def test_messages_are_one_line(fault_run: RunOutput) -> None:
    for result in fault_run.data["results"]:
        assert "\n" not in result["message"] and result["message"], result


def test_evidence_records_the_exchanges(fault_run: RunOutput) -> None:
    results = {(r["provider"], r["check"]): r for r in fault_run.data["results"]}
    stream = results[("reference", "streaming.done_sentinel")]["evidence"]["exchanges"][0]
    assert stream["request"]["headers"]["authorization"] == "Bearer ***"
    events = stream["response"]["events"]
    assert events[-1]["data"] == "[DONE]" and all("t_ms" in e for e in events)
    basic = results[("reference", "chat.basic")]["evidence"]["exchanges"][0]
    assert basic["response"]["status"] == 200 and basic["usage"]["total_tokens"] > 0


def test_results_json_follows_the_contract(fault_run: RunOutput) -> None:
    data = fault_run.data
    assert data["format"] == "conformance-results/1"
    assert {"id", "started_at", "finished_at", "suite_version"} <= set(data["run"])
    for provider in data["providers"]:
        assert {"name", "base_url", "models"} <= set(provider)
    for entry in data["checks"]:
        assert {"id", "behavior", "title", "spec"} <= set(entry) and all(entry.values())
    keys = {"provider", "model", "check", "behavior", "outcome", "message", "duration_ms",
            "evidence"}
    for result in data["results"]:
        assert set(result) == keys
        assert result["outcome"] in ("pass", "fail", "unsupported", "skip", "error")
    lines = (fault_run.report_dir / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(data["results"])
    for name in ("junit.xml", "matrix.html", "run.json"):
        assert (fault_run.report_dir / name).exists(), name


def test_reference_run_stays_within_token_budget(fault_run: RunOutput) -> None:
    """The budget the README states (a real provider's tokeniser counts differently, but the
    number of requests and the prompt sizes are the suite's own)."""
    tokens = fault_run.data["run"]["tokens"]["reference"]
    assert tokens["prompt"] + tokens["completion"] < TOKEN_BUDGET, tokens
    assert tokens["requests"] <= REQUEST_BUDGET, tokens


def _is_responses_check(check_id: str) -> bool:
    return check_id.startswith(("responses_api.", "sdk.responses_"))


def test_responses_checks_stay_within_their_budget(fault_run: RunOutput) -> None:
    """The Responses API checks cost at most 25 requests and 800 tokens per model (the
    README's "Token budget"); every exchange counted once (shared requests appear in the
    evidence of several checks)."""
    seen: set[str] = set()
    requests = tokens = 0
    for result in fault_run.data["results"]:
        if result["provider"] != "reference" or not _is_responses_check(result["check"]):
            continue
        for exchange in result["evidence"].get("exchanges", []):
            if exchange["id"] in seen:
                continue
            seen.add(exchange["id"])
            requests += 1
            usage = exchange.get("usage") or {}
            tokens += usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    assert 20 <= requests <= RESPONSES_REQUEST_BUDGET, requests
    assert 0 < tokens <= RESPONSES_TOKEN_BUDGET, tokens
