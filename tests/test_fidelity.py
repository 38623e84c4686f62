"""The fidelity family against relays in front of a recording reference, over real sockets: a
faithful relay and the reference itself pass every check; each deviation of
:mod:`tests.fidelity_relay` fails exactly the checks it should, with the right message; an
upstream the suite cannot ask, or a relay pointed elsewhere, is one clear ``error``."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.checks.registry import all_checks
from conformance.reference.server import ReferenceServer
from tests.conftest import RunOutput, run_suite, write_providers
from tests.fidelity_relay import DEVIATIONS, INJECTED, FidelityRelay

RELAY_KEY = "sk-relay-" + secrets.token_hex(12)
UPSTREAM_KEY = "sk-upstream-" + secrets.token_hex(12)
ENV = {"RELAY_KEY": RELAY_KEY, "UPSTREAM_KEY": UPSTREAM_KEY}
FIDELITY = sorted(c.id for c in all_checks() if c.behavior == "fidelity")

#: deviation → {check that must fail: words its message must contain}; every other fidelity
#: check must pass.
EXPECTED: dict[str, dict[str, str]] = {
    "drop_user_metadata": {"fidelity.user_metadata": "dropped: user, metadata"},
    "developer_to_system": {"fidelity.roles": 'messages[1] developer → "system"'},
    "inject_system": {"fidelity.no_injected_messages":
                      "the first before the client's messages: system 'You are HelpfulBot"},
    "substitute_model": {"fidelity.model": "the relay asked the upstream for \"ref-2\""},
    "inflate_usage": {"fidelity.usage": "1.50× the upstream's total",
                      "fidelity.stream_usage": "1.50× the upstream's total"},
    "finish_cut_stream": {"fidelity.cut_stream": "finished a broken stream as if complete"},
    "hang_cut_stream": {"fidelity.cut_stream": "the relay left the client's stream open without "
                                               "a byte more (stream stalled: no data for 2s"},
    "strip_headers": {"fidelity.response_headers": "missing: x-request-id"},
    "swallow_retry_after": {"fidelity.rate_limit": "without its Retry-After header"},
    "errors_as_500": {"fidelity.upstream_error": "the client got HTTP 500",
                      "fidelity.rate_limit": "the client got HTTP 500"},
    "server_errors_as_200": {"fidelity.server_error": "the client got HTTP 200"},
    "drop_response_format": {"fidelity.response_format": "dropped: response_format"},
    "merge_chunks": {"fidelity.stream": "re-chunked"},
    "parts_to_string": {"fidelity.messages": "messages[4].content changed on the way",
                        "fidelity.image": "the image part never reached the upstream"},
    "shorten_history": {"fidelity.messages": "history shortened: messages [0, 1, 2]"},
    "strip_images": {"fidelity.image": "the image part never reached the upstream"},
    "convert_max_tokens": {
        "fidelity.max_tokens_names": "max_tokens=16 was not forwarded as max_tokens (the "
                                     "upstream received max_completion_tokens=16)",
        "fidelity.sampling_params": "dropped: max_tokens"},
    "force_reasoning": {"fidelity.reasoning_effort":
                        'rewritten: reasoning_effort "low" → "high"'},
    "drop_sampling": {"fidelity.sampling_params": "dropped: seed, logit_bias"},
    "drop_logprobs": {"fidelity.logprobs": "reached the client changed: logprobs: {"},
    "tool_args_object": {"fidelity.tools": "reached the client as"},
    "drop_fingerprint": {"fidelity.system_fingerprint": "reached the client as null"},
    "rewrite_content": {"fidelity.answer": "[Sponsored"},
    "rewrite_unknown": {"fidelity.unknown_fields": "x_conformance_probe rewritten"},
    "messages_bearer": {"fidelity.messages_api": "no x-api-key header reached the upstream "
                                                 "(it used Authorization instead)"},
    "drop_anthropic_version": {"fidelity.messages_api": "anthropic-version 2023-06-01 reached "
                                                        "the upstream as null"},
    "responses_default_instructions": {"fidelity.responses_instructions": "instructions 'Be "
                                       "brief.' reached the upstream as \"You are HelpfulBot"},
    "responses_system_to_developer": {"fidelity.responses_instructions": "input[0] system → "
                                      "'developer' on the way to the upstream"},
    "responses_stream_inside": {"fidelity.responses_stream": "stream: false reached the "
                                "upstream as stream true: the gateway streams inside"},
    "responses_force_reasoning": {"fidelity.responses_reasoning": 'reasoning {"effort": "low"} '
                                  'reached the upstream as {"effort": "high"}'},
    "responses_drop_previous_id": {"fidelity.responses_previous_response_id":
                                   "previous_response_id was dropped on the way to the "
                                   "upstream"},
}


def _relayed(name: str, base_url: str, **upstream: Any) -> dict[str, Any]:
    return {"name": name, "base_url": base_url, "api_key": "${RELAY_KEY}", "model": "gpt-4o-mini",
            "upstream": {"api_key": "${UPSTREAM_KEY}", "model": "ref-1", **upstream}}


@pytest.fixture(scope="module")
def upstream() -> Any:
    with ReferenceServer(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def fidelity_run(upstream: ReferenceServer, tmp_path_factory: pytest.TempPathFactory
                 ) -> RunOutput:
    base = tmp_path_factory.mktemp("fidelity")
    with FidelityRelay(upstream.origin, key=RELAY_KEY, upstream_key=UPSTREAM_KEY,
                       models={"gpt-4o-mini": "ref-1"}) as relay:
        providers = [
            {"name": "reference-itself", "base_url": upstream.base_url,
             "api_key": "${UPSTREAM_KEY}", "model": "ref-1",
             "upstream": {"url": upstream.origin, "api_key": "${UPSTREAM_KEY}"}},
            _relayed("faithful", relay.url(), url=upstream.origin),
            *(_relayed(name.replace("_", "-"), relay.url(name), url=upstream.origin)
              | ({"timeouts": {"stall": 2}} if name == "hang_cut_stream" else {})
              for name in DEVIATIONS),
            {"name": "no-upstream", "base_url": relay.url(), "api_key": "${RELAY_KEY}",
             "model": "gpt-4o-mini"},
        ]
        path = write_providers(base / "providers.yaml", providers)
        out = run_suite(path, base / "r", "-k", "fidelity", env=ENV)
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-3000:]
    return out


def _verdicts(out: RunOutput, provider: str) -> dict[str, tuple[str, str]]:
    return {c: v for (p, c), v in out.outcomes().items() if p == provider}


def test_every_deviation_is_listed_and_every_check_is_broken_by_one() -> None:
    assert sorted(EXPECTED) == sorted(DEVIATIONS)
    broken = {c for checks in EXPECTED.values() for c in checks}
    assert broken <= set(FIDELITY)
    assert set(FIDELITY) - broken == set()


@pytest.mark.parametrize("provider", ["reference-itself", "faithful"])
def test_a_faithful_path_passes_every_fidelity_check(fidelity_run: RunOutput,
                                                     provider: str) -> None:
    verdicts = _verdicts(fidelity_run, provider)
    assert sorted(verdicts) == FIDELITY
    assert {c: v for c, v in verdicts.items() if v[0] != "pass"} == {}


@pytest.mark.parametrize("deviation", sorted(DEVIATIONS))
def test_each_deviation_fails_its_checks_for_the_right_reason(fidelity_run: RunOutput,
                                                             deviation: str) -> None:
    verdicts = _verdicts(fidelity_run, deviation.replace("_", "-"))
    failed = {c: m for c, (o, m) in verdicts.items() if o != "pass"}
    expected = EXPECTED[deviation]
    assert sorted(failed) == sorted(expected), failed
    for check_id, words in expected.items():
        outcome, message = verdicts[check_id]
        assert outcome == "fail" and words in message, (check_id, outcome, message)


def test_without_upstream_the_family_is_skipped_with_a_reason(fidelity_run: RunOutput) -> None:
    verdicts = _verdicts(fidelity_run, "no-upstream")
    assert sorted(verdicts) == FIDELITY
    assert {v for v in verdicts.values()} == {
        ("skip", "no upstream: configured for this provider (fidelity checks need a relay in "
                 "front of a conformance reference; see README, 'Testing your own relay')")}


def test_the_injected_prompt_and_the_keys_are_evidence_not_leaks(fidelity_run: RunOutput
                                                                 ) -> None:
    result = next(r for r in fidelity_run.data["results"]
                  if r["provider"] == "inject-system"
                  and r["check"] == "fidelity.no_injected_messages")
    assert INJECTED in json.dumps(result["evidence"]), "the upstream's record is the evidence"
    for report in fidelity_run.report_dir.iterdir():
        if report.is_file():
            text = report.read_text(encoding="utf-8", errors="replace")
            assert RELAY_KEY not in text and UPSTREAM_KEY not in text, report.name


def test_the_family_costs_at_most_30_relay_requests(fidelity_run: RunOutput) -> None:
    sent: set[str] = set()
    for result in fidelity_run.data["results"]:
        if result["provider"] != "faithful":
            continue
        for exchange in result["evidence"].get("exchanges", []):
            if "/__conformance/" not in exchange["request"]["url"]:
                sent.add(exchange["id"])
    assert 10 <= len(sent) <= 30, len(sent)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_builtin_upstream_on_a_fixed_port_needs_one_command(tmp_path: Path) -> None:
    port = _free_port()
    with FidelityRelay(f"http://127.0.0.1:{port}", key=RELAY_KEY, upstream_key=UPSTREAM_KEY,
                       models={"gpt-4o-mini": "ref-1"}) as relay:
        path = write_providers(tmp_path / "providers.yaml", [
            _relayed("gw", relay.url(), builtin="reference", port=port)])
        out = run_suite(path, tmp_path / "r", "-k", "fidelity", env=ENV)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    verdicts = _verdicts(out, "gw")
    assert sorted(verdicts) == FIDELITY
    assert {c: v for c, v in verdicts.items() if v[0] != "pass"} == {}


def test_an_upstream_the_suite_cannot_ask_is_one_clear_error(upstream: ReferenceServer,
                                                            tmp_path: Path) -> None:
    with ReferenceServer(api_key=UPSTREAM_KEY) as elsewhere, FidelityRelay(
            elsewhere.origin, key=RELAY_KEY, upstream_key=UPSTREAM_KEY,
            models={"gpt-4o-mini": "ref-1"}) as relay:
        path = write_providers(tmp_path / "providers.yaml", [
            _relayed("wrong-key", relay.url(), url=upstream.origin, api_key="sk-not-it"),
            _relayed("elsewhere", relay.url(), url=upstream.origin)])
        out = run_suite(path, tmp_path / "r", "-k", "fidelity and (model or sampling)",
                        env=ENV)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    for check_id, (outcome, message) in _verdicts(out, "wrong-key").items():
        assert outcome == "error", (check_id, message)
        assert "refused the key in upstream.api_key (HTTP 401)" in message
    for check_id, (outcome, message) in _verdicts(out, "elsewhere").items():
        assert outcome == "error", (check_id, message)
        assert "reached the upstream" in message and "does not point at the reference" in message


def test_serve_reference_in_one_shell_and_the_run_in_another(tmp_path: Path) -> None:
    """The README's steps with real processes: `conformance serve-reference --port P
    --api-key K`, a relay pointed at it, `conformance run` with `upstream: {url: ...}`."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "conformance", "serve-reference", "--port", str(port),
         "--api-key", UPSTREAM_KEY], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}/v1" in line, line
        origin = f"http://127.0.0.1:{port}"
        with FidelityRelay(origin, key=RELAY_KEY, upstream_key=UPSTREAM_KEY,
                           models={"gpt-4o-mini": "ref-1"}) as relay:
            path = write_providers(tmp_path / "providers.yaml",
                                   [_relayed("gw", relay.url(), url=origin)])
            out = run_suite(path, tmp_path / "r", "-k", "fidelity.model or fidelity.usage "
                            "or fidelity.no_injected", env=ENV)
    finally:
        server.terminate()
        server.wait(10)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    verdicts = _verdicts(out, "gw")
    assert len(verdicts) >= 3 and {o for o, _ in verdicts.values()} == {"pass"}, verdicts


def test_a_shared_request_keeps_its_records_however_busy_the_reference(tmp_path: Path) -> None:
    """A request shared by several fidelity checks (the conversation, the usage probe, ...) is
    judged by each when its turn comes, maybe after many other requests; a reference keeping
    few records (many providers or models through one reference do the same to 1,000) has
    dropped its records by then.  They are fetched once, after the first answer, for all:
    fails without (later checks were 'error: no request carrying the marker ... reached the
    upstream')."""
    with ReferenceServer(api_key=UPSTREAM_KEY, record_limit=8) as upstream:
        path = write_providers(tmp_path / "providers.yaml", [
            {"name": "reference-itself", "base_url": upstream.base_url,
             "api_key": "${UPSTREAM_KEY}", "model": "ref-1", "concurrency": 1,
             "upstream": {"url": upstream.origin, "api_key": "${UPSTREAM_KEY}"}}])
        out = run_suite(path, tmp_path / "r", "-k", "fidelity", env=ENV)
    verdicts = _verdicts(out, "reference-itself")
    assert set(verdicts) == set(FIDELITY), out.stdout[-2000:]
    assert {c: v for c, v in verdicts.items() if v[0] != "pass"} == {}
