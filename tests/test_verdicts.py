"""Verdicts a user can act on when the trouble is not the provider's conformance: a rejected
key, a host that is down, rate limiting seen late in a run (issue "Verdicts users can trust
on real relays").  Each runs the suite as a user would, over real sockets."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from conformance.reference.server import ReferenceServer, ThreadedServer
from tests.conftest import (
    SELFTEST_KEY,
    RunOutput,
    external,
    not_for_this_provider,
    run_suite,
    write_providers,
)
from tests.expectations.messages_api import CHECKS as MESSAGES_CHECKS
from tests.relays import Relay

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
    # Bound but not listening: connections are refused, and while it stays bound no server of
    # a test running in parallel can take the port.
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
    # The run itself (configure to report) within 5 s; the process as a whole, interpreter
    # start included and sharing the CPU with a parallel test, within 10 s (it took ~35 s of
    # retries before the preflight).
    assert out.data["run"]["duration_ms"] < 5000, out.data["run"]["duration_ms"]
    assert elapsed < 10, f"{elapsed:.1f}s"


def test_a_base_url_without_its_path_is_one_error_not_a_column_of_fails(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """The reference's origin without ``/v1``: every route is 404, which is the user's
    base_url, not the provider's conformance.  A provider with no ``GET /models`` but a
    chat route (the relay below) and one whose chat route answers 404 about the model run as
    usual, their 404s judged check by check (the controls)."""
    with Relay(reference_server.base_url, models_404=True) as relay:
        path = write_providers(tmp_path / "providers.yaml", [
            external("no-v1", reference_server.origin),
            external("no-models", relay.base_url),
            {**external("unknown-model", relay.base_url), "model": "no-such-model"},
            {**external("missing-model", reference_server.base_url), "model": "no-such-model"},
        ])
        out = run_suite(path, tmp_path / "r")
    assert out.returncode == 0, out.stderr[-2000:]
    by_provider: dict[str, dict[str, tuple[str, str]]] = {}
    for (provider, check), verdict in out.outcomes().items():
        by_provider.setdefault(provider, {})[check] = verdict
    wrong = by_provider["no-v1"]
    assert {o for o, _ in wrong.values()} == {"error"}
    expected = (f"no OpenAI-compatible API at {reference_server.origin}, no check was run: it "
                "answers HTTP 404 to both GET /models and POST /chat/completions; check the "
                "base_url (most end in /v1)")
    assert {m for _, m in wrong.values()} == {expected}
    said = [line for line in out.stdout.splitlines() if "no OpenAI-compatible API" in line]
    assert len(said) == 1, out.stdout[-3000:]
    assert out.data["run"]["tokens"]["no-v1"]["requests"] == 2  # /models and messages: []
    # the controls: judged check by check
    no_models = by_provider["no-models"]
    assert no_models["models.list"][0] == "unsupported", no_models["models.list"]
    assert no_models["chat.basic"][0] == "pass", no_models["chat.basic"]
    unknown = by_provider["unknown-model"]
    # a 404 about the model is the model's (ModelUnavailable, per check), not a missing API
    assert unknown["chat.basic"][1].startswith(
        "ModelUnavailable: the model 'no-such-model' is not available"), unknown["chat.basic"]
    assert not [m for _, m in unknown.values() if "no OpenAI-compatible API" in m]
    # a model the provider does not have, said the same everywhere: no feature "declined"
    # and no GET /models/{model} "declined" for it
    missing = by_provider["missing-model"]
    declined = {c: m for c, (o, m) in missing.items() if o == "unsupported"}
    assert declined == {}, declined
    assert missing["models.retrieve"][1].startswith(
        "ModelUnavailable: the model 'no-such-model' is not available"), missing["models.retrieve"]
    assert missing["tools.auto"][1].startswith(
        "ModelUnavailable: the model 'no-such-model' is not available"), missing["tools.auto"]


CHALLENGE = ("<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking "
             "your browser before accessing the API.</body></html>")


async def _challenge(request: Request) -> Response:
    """``/<status>/...``: a CDN's bot challenge (or a proxy's error page) on every path."""
    return HTMLResponse(CHALLENGE, status_code=int(request.path_params["status"]),
                        headers={"cf-mitigated": "challenge"})


def test_an_html_page_in_front_of_the_api_is_one_error_not_a_column_of_fails(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """A bot challenge answering every request (403, as Cloudflare's; 503 from a proxy whose
    upstream is down): no API answered, so no fail and no "key rejected", the auth checks
    included; said once per provider.  The control: the reference's errors_as_html variant,
    whose GET /models is JSON, is still judged check by check."""
    app = Starlette(routes=[Route("/{status:int}/{path:path}", _challenge,
                                  methods=["GET", "POST"])])
    with ThreadedServer(app) as wall:
        path = write_providers(tmp_path / "providers.yaml", [
            external("challenge-403", f"{wall.origin}/403/v1"),
            external("proxy-503", f"{wall.origin}/503/v1"),
            external("html-errors", reference_server.variant_url(["errors_as_html"]))])
        out = run_suite(path, tmp_path / "r")
    assert out.returncode == 0, out.stderr[-2000:]
    for name, status in (("challenge-403", 403), ("proxy-503", 503)):
        verdicts = {c: v for (p, c), v in out.outcomes().items() if p == name}
        assert {o for o, _ in verdicts.values()} == {"error"}, verdicts
        expected = (f"no OpenAI-compatible API answers at {wall.origin}/{status}/v1, no check "
                    f"was run: both GET /models and POST /chat/completions get HTTP {status} "
                    "with an HTML page (Just a moment...), not an API error: a bot challenge, "
                    "a login page or a proxy's error page stands in front of it")
        assert {m for _, m in verdicts.values()} == {expected}
        said = [line for line in out.stdout.splitlines() if line.startswith(f"{name}: no ")]
        assert len(said) == 1, out.stdout[-3000:]
    judged = {c: o for (p, c), (o, _) in out.outcomes().items() if p == "html-errors"}
    assert judged["chat.basic"] == "pass" and judged["errors.malformed_json"] == "fail"


#: What an account without credit gets: 402 as the relays' docs list it (余额不足), and
#: OpenAI's own 429 insufficient_quota.
BROKE = {
    "balance-402": (402, {"error": {"message": "用户余额不足,请前往控制台充值",
                                    "type": "new_api_error", "param": None,
                                    "code": "insufficient_user_quota"}}),
    "quota-429": (429, {"error": {
        "message": "You exceeded your current quota, please check your plan and billing "
                   "details.", "type": "insufficient_quota", "param": None,
        "code": "insufficient_quota"}}),
}


async def _broke(request: Request) -> Response:
    """``/<kind>/v1/...``: GET /models is free and answered; every other request with the
    key is refused for want of credit (a wrong or missing key gets 401)."""
    if request.url.path.endswith("/models"):
        return JSONResponse({"object": "list", "data": [
            {"id": "ref-1", "object": "model", "created": 0, "owned_by": "broke"}]})
    if request.headers.get("authorization") != f"Bearer {SELFTEST_KEY}" and \
            request.headers.get("x-api-key") != SELFTEST_KEY:
        return JSONResponse({"error": {"message": "Incorrect API key provided",
                                       "type": "invalid_request_error", "param": None,
                                       "code": "invalid_api_key"}}, status_code=401)
    status, body = BROKE[request.path_params["kind"]]
    return JSONResponse(body, status_code=status)


def test_an_account_out_of_credit_is_an_error_never_a_fail(tmp_path: Path) -> None:
    """402 余额不足 and 429 insufficient_quota to every request with the configured key: the
    user's account is empty, which says nothing of the provider's conformance — every check
    that sends the key is ``error`` saying so; the 429 is not retried (waiting cannot fix an
    empty account)."""
    app = Starlette(routes=[Route("/{kind}/v1/{path:path}", _broke, methods=["GET", "POST"])])
    with ThreadedServer(app) as broke:
        path = write_providers(tmp_path / "providers.yaml", [
            external(kind, f"{broke.origin}/{kind}/v1", retries=2) for kind in BROKE])
        out = run_suite(path, tmp_path / "r")
    assert out.returncode == 0, out.stderr[-2000:]
    for kind, (status, _) in BROKE.items():
        verdicts = {c: v for (p, c), v in out.outcomes().items() if p == kind}
        assert not {c: m for c, (o, m) in verdicts.items() if o == "fail"}
        errors = {c: m for c, (o, m) in verdicts.items() if o == "error"}
        assert "chat.basic" in errors and "errors.missing_messages" in errors, verdicts
        assert "sdk.completion" in errors and "streaming.done_sentinel" in errors, verdicts
        assert "models.retrieve" in errors, verdicts  # GET /models/{model} refused too
        for check, message in errors.items():
            assert "the account behind the configured key is out of balance or quota, no " \
                   f"verdict (top it up, or configure another key): HTTP {status}" in message, \
                (check, message)
        # the wrong-key checks are still judged
        assert verdicts["auth.wrong_key"][0] == "pass", verdicts["auth.wrong_key"]
    for result in out.data["results"]:
        if result["provider"] == "quota-429" and result["check"] == "chat.basic":
            attempts = [e.get("attempts", 1) for e in result["evidence"]["exchanges"]]
            assert attempts == [1], attempts


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


@pytest.fixture(scope="module")
def relay_run(reference_server: ReferenceServer, tmp_path_factory: pytest.TempPathFactory
              ) -> RunOutput:
    """The whole suite through three small relays in front of the faithful reference: one
    drops the Anthropic headers on the way, one cuts every stream, one leaves every stream's
    body open after its last event."""
    base = tmp_path_factory.mktemp("relays")
    with Relay(reference_server.base_url, drop_headers=("anthropic-version", "x-api-key")
               ) as dropper, Relay(reference_server.base_url, cut_streams=True) as cutter, \
            Relay(reference_server.base_url, hold_open=True) as holder:
        image = f"{reference_server.origin}/assets/color/red.png"
        path = write_providers(base / "providers.yaml", [
            external("drops-headers", dropper.base_url, vision_url=image),
            external("cuts", cutter.base_url, vision_url=image),
            external("holds-open", holder.base_url, vision_url=image)])
        out = run_suite(path, base / "r")
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_a_relay_dropping_anthropic_version_fails_messages_api(relay_run: RunOutput) -> None:
    changed = {c: v for (p, c), v in relay_run.outcomes().items()
               if p == "drops-headers" and v[0] != "pass"}
    outcome, message = changed.pop("messages_api.message")
    assert outcome == "fail" and "says 'anthropic-version' is wrong or missing, but the " \
        "request carried a valid 'anthropic-version'" in message
    assert {c for c in changed if c.startswith("messages_api.")} == {
        f"messages_api.{name}" for name in MESSAGES_CHECKS if name != "message"}
    assert {c: o for c, (o, _) in changed.items() if o != "skip"} == {}


def test_a_stream_left_open_after_done_is_judged_not_stalled(relay_run: RunOutput) -> None:
    """Every stream complete, its body then left open: nothing stalled (an error for every
    streaming check, no verdict, before).  streaming.nothing_after_done says so; so do the
    Messages and Responses streams' checks, whose SDKs read a stream to the end of its body,
    and sdk.responses_stream, where the openai SDK would wait for its own timeout (a chat
    stream it leaves at [DONE])."""
    changed = {c: v for (p, c), v in relay_run.outcomes().items()
               if p == "holds-open" and v[0] not in ("pass", "skip")}
    assert sorted(changed) == ["messages_api.stream", "responses_api.stream",
                               "sdk.responses_stream", "streaming.nothing_after_done"], changed
    for check, last in (("messages_api.stream", "event: message_stop"),
                        ("responses_api.stream", "event: response.completed")):
        assert changed[check][1].startswith(
            f"the response did not end after its last event: the body was still open 3s "
            f"after {last} ("), changed[check]
    outcome, message = changed["streaming.nothing_after_done"]
    assert outcome == "fail" and message.startswith(
        "the response did not end after data: [DONE]: the body was still open 3s after "
        "data: [DONE]"), message
    outcome, message = changed["sdk.responses_stream"]
    assert outcome == "fail" and message.startswith(
        "the openai SDK reads the stream to the end of its body, which the provider left "
        "open: the body was still open 3s after event: response.completed"), message


def test_a_relay_cutting_every_stream_fails_every_streaming_check(relay_run: RunOutput) -> None:
    results = [r for r in relay_run.data["results"] if r["provider"] == "cuts"]
    streamed = {r["check"] for r in results if any(
        e["request"]["body"] and isinstance(e["request"]["body"], dict)
        and e["request"]["body"].get("stream") for e in r["evidence"]["exchanges"])}
    assert len(streamed) > 20
    for result in results:
        if result["check"] in streamed:
            assert result["outcome"] == "fail", result
            assert "stream cut after" in result["message"], result["message"]
            cut = [e for e in result["evidence"]["exchanges"] if e.get("cut")]
            assert cut and cut[0]["response"]["events"], "the partial stream is the evidence"
        elif not not_for_this_provider((result["outcome"], result["message"])):
            assert result["outcome"] == "pass", result


def test_a_suite_fault_is_that_checks_error_and_the_run_goes_on(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """Two checks that are bugs in the suite (tests/suite_fault_plugin.py) next to the whole
    chat family: each is one ``error`` line, every other check still gets its verdict, the
    reports are written and pytest ends normally (no INTERNALERROR)."""
    path = write_providers(tmp_path / "providers.yaml",
                           [external("reference", reference_server.base_url)])
    out = run_suite(path, tmp_path / "r", "-p", "tests.suite_fault_plugin", "-k", "chat")
    console = out.stdout + out.stderr
    assert out.returncode == 0, console[-3000:]
    assert "INTERNALERROR" not in console and "Traceback" not in console, console[-3000:]
    outcomes = out.outcomes()
    assert outcomes[("reference", "chat.zz_suite_bug")] == (
        "error", "suite fault: LookupError: unknown encoding: x-hostile")
    assert outcomes[("reference", "chat.zz_unprintable_bug")] == (
        "error", "suite fault: Unprintable: (its message cannot be shown: str() raised "
                 "RuntimeError)")
    others = {c: o for (_, c), (o, _) in outcomes.items() if "zz_" not in c}
    assert len(others) >= 5 and set(others.values()) == {"pass"}, others
    for name in ("results.json", "junit.xml", "matrix.html", "summary.md"):
        assert (out.report_dir / name).is_file(), name


def test_a_model_the_key_may_not_use_is_an_error_not_a_fail(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """The relays answer a model the key may not use with their own message (model_not_found,
    "无可用渠道"): a configuration problem of the user's, shown with that message."""
    path = write_providers(tmp_path / "providers.yaml", [
        external("wrong-model", reference_server.base_url, model="gpt-9-nonexistent")])
    out = run_suite(path, tmp_path / "r", "-k", "chat")
    assert out.returncode == 0, out.stderr[-2000:]
    verdicts = {c: v for (_, c), v in out.outcomes().items()}
    assert verdicts["chat.basic"][0] == "error"
    assert "the model 'gpt-9-nonexistent' is not available to this key" in \
        verdicts["chat.basic"][1]
    assert "does not exist or you do not have access to it" in verdicts["chat.basic"][1]
    assert not [c for c, (o, _) in verdicts.items() if o == "fail"]
