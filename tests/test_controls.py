"""Checks whose fact reaches the model from elsewhere in the request (a system or developer
message, an earlier turn, a first content part) blame the provider only when a control proves
the model answers the fact at all: the same fact stated in the question itself, sent only when
the check's answer misses it.  A model that answers nothing useful is inconclusive, never a
fail; a relay that drops the message still fails.  Likewise ``tools.auto``: an answer in text
is the model's choice when the same request with tool_choice required calls the tool.  Relays
on 127.0.0.1 in front of the faithful reference, one run."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.reference.server import ReferenceServer
from tests.conftest import RunOutput, external, run_suite, write_providers
from tests.relays import Relay

CHECKS = ("chat.system_message", "chat.multi_turn", "chat.content_parts",
          "params.developer_role", "messages_api.system", "responses_api.message_input",
          "responses_api.instructions", "responses_api.previous_response_id")
UNSURE = "I am not sure."
AUTO = "tools.auto"
#: Parameters whose request must still answer the capital question (params._answers).
PARAMS = ("params.top_p", "params.user")


def _unsure(body: Any) -> Any:
    """A model that answers every question with the same words (a weak or broken model), in
    each API's answer: chat.completion, Anthropic's message, the Responses API's response."""
    if not isinstance(body, dict):
        return body
    if body.get("object") == "chat.completion":
        for choice in body["choices"]:
            choice["message"]["content"] = UNSURE
    elif body.get("type") == "message":
        body["content"] = [{"type": "text", "text": UNSURE}]
    elif body.get("object") == "response":
        for item in body.get("output", []):
            for part in item.get("content", []) if item.get("type") == "message" else []:
                if part.get("type") == "output_text":
                    part["text"] = UNSURE
    return body


def _without(*roles: str) -> Any:
    """Drops the messages of ``roles``, and with "system" the Messages API's ``system`` and
    the Responses API's ``instructions``."""
    def rewrite(body: Any) -> Any:
        if isinstance(body, dict) and isinstance(body.get("messages"), list):
            body["messages"] = [m for m in body["messages"] if m.get("role") not in roles]
        if isinstance(body, dict) and "system" in roles:
            body.pop("system", None)
            body.pop("instructions", None)
        return body
    return rewrite


def _auto_as_none(body: Any) -> Any:
    """tool_choice auto becomes none: the model answers in text, as one that chose to."""
    if isinstance(body, dict) and body.get("tool_choice") == "auto":
        body["tool_choice"] = "none"
    return body


def _no_tools(body: Any) -> Any:
    if isinstance(body, dict):
        body.pop("tools", None)
        body.pop("tool_choice", None)
    return body


def _top_p_garbles(body: Any) -> Any:
    """A request with top_p reaches the model as another question."""
    if isinstance(body, dict) and "top_p" in body:
        body["messages"] = [{"role": "user", "content": "Say hello."}]
    return body


def _break_controls(body: Any) -> Any:
    """The control requests (the fact stated in the question itself) become invalid: 400."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list) and len(messages) == 1 and str(
            messages[0].get("content")).startswith(("The secret word is", "Remember this")):
        body["messages"] = "not a list"
    return body


def _last_only(body: Any) -> Any:
    """Forwards only the last message (or input item), and no previous_response_id."""
    if isinstance(body, dict):
        for field in ("messages", "input"):
            if isinstance(body.get(field), list):
                body[field] = body[field][-1:]
        body.pop("previous_response_id", None)
    return body


@pytest.fixture(scope="module")
def controlled(reference_server: ReferenceServer, tmp_path_factory: pytest.TempPathFactory
               ) -> RunOutput:
    base = tmp_path_factory.mktemp("controls")
    url = reference_server.base_url
    with Relay(url, answer_json=_unsure) as unsure, \
            Relay(url, request_json=_without("developer")) as no_developer, \
            Relay(url, request_json=_without("system", "developer")) as no_system, \
            Relay(url, request_json=_last_only) as last_only, \
            Relay(url, request_json=_auto_as_none) as auto_as_none, \
            Relay(url, request_json=_no_tools) as no_tools, \
            Relay(url, request_json=_top_p_garbles) as top_p_garbles, \
            Relay(url, request_json=_break_controls, answer_json=_unsure) as control_refused:
        path = write_providers(base / "providers.yaml", [
            external("faithful", url), external("unsure", unsure.base_url),
            external("no-developer", no_developer.base_url),
            external("no-system", no_system.base_url),
            external("last-only", last_only.base_url),
            external("auto-as-none", auto_as_none.base_url),
            external("no-tools", no_tools.base_url),
            external("top-p-garbles", top_p_garbles.base_url),
            external("control-refused", control_refused.base_url)])
        out = run_suite(path, base / "r", "-k", " or ".join((*CHECKS, AUTO, *PARAMS)))
    assert out.returncode in (0, 1), out.stderr[-2000:]
    return out


def _column(run: RunOutput, provider: str) -> dict[str, tuple[str, str, int]]:
    """check → (outcome, message, requests sent) for one provider."""
    return {r["check"]: (r["outcome"], r["message"], len(r["evidence"]["exchanges"]))
            for r in run.data["results"] if r["provider"] == provider and r["check"] in CHECKS}


def test_a_model_that_answers_the_fact_passes(controlled: RunOutput) -> None:
    column = _column(controlled, "faithful")
    assert {c: o for c, (o, _, _) in column.items()} == {c: "pass" for c in CHECKS}


def test_a_model_that_answers_nothing_is_inconclusive_not_a_fail(controlled: RunOutput
                                                                 ) -> None:
    faithful = _column(controlled, "faithful")
    unsure = _column(controlled, "unsure")
    assert set(unsure) == set(CHECKS)
    for check, (outcome, message, sent) in unsure.items():
        assert outcome == "skip", (check, outcome, message)
        assert sent == faithful[check][2] + 1, check  # the control, sent only on a miss
        assert message.startswith("inconclusive: ") and "with the fact in the question " \
            f"itself either (control: {UNSURE})" in message, message


def _failed(run: RunOutput, provider: str) -> dict[str, str]:
    """check → message of the checks that failed (every other one passed)."""
    column = _column(run, provider)
    assert {o for o, _, _ in column.values()} <= {"pass", "fail"}, column
    return {c: m for c, (o, m, _) in column.items() if o == "fail"}


def test_a_relay_dropping_the_message_fails_and_the_control_says_why(controlled: RunOutput
                                                                     ) -> None:
    no_developer = _failed(controlled, "no-developer")
    assert list(no_developer) == ["params.developer_role"]
    message = no_developer["params.developer_role"]
    assert message.startswith("developer message ignored: expected an answer containing "
                              "'mango'") and message.endswith(
        "with the fact in the question itself the model answers mango (control)"), message

    no_system = _failed(controlled, "no-system")
    assert set(no_system) == {"chat.system_message", "params.developer_role",
                              "messages_api.system", "responses_api.instructions"}
    assert no_system["chat.system_message"].startswith("system message ignored")
    assert no_system["messages_api.system"].startswith(
        "the system prompt did not reach the model")
    assert all(m.endswith("the model answers kiwi (control)") for c, m in no_system.items()
               if c != "params.developer_role")

    last_only = _failed(controlled, "last-only")
    assert set(last_only) == {"chat.system_message", "chat.multi_turn", "params.developer_role",
                              "responses_api.message_input",
                              "responses_api.previous_response_id"}
    assert last_only["chat.multi_turn"].endswith("the model answers 42 (control)")
    assert last_only["responses_api.previous_response_id"].startswith(
        "previous_response_id accepted but ignored")


def test_tools_auto_answered_in_text_is_inconclusive_when_required_calls(
        controlled: RunOutput) -> None:
    verdicts = {p: (r["outcome"], r["message"], len(r["evidence"]["exchanges"]))
                for r in controlled.data["results"] if r["check"] == AUTO
                for p in [r["provider"]]}
    assert verdicts["faithful"][:1] == ("pass",) and verdicts["faithful"][2] == 1
    outcome, message, sent = verdicts["auto-as-none"]
    assert outcome == "skip" and sent == 2, message
    assert message.startswith("inconclusive: under tool_choice auto the model answered in text")
    assert "with tool_choice required calls get_weather(" in message
    outcome, message, sent = verdicts["no-tools"]
    assert outcome == "fail" and sent == 2, message
    assert message.startswith("no tool call under tool_choice auto although the prompt asks")
    assert message.endswith("with tool_choice required it makes no call either (control)")


def test_a_parameter_is_blamed_only_when_the_plain_question_is_answered(
        controlled: RunOutput) -> None:
    verdicts = {(r["provider"], r["check"]): (r["outcome"], r["message"])
                for r in controlled.data["results"] if r["check"] in PARAMS}
    assert {c: verdicts["faithful", c][0] for c in PARAMS} == {c: "pass" for c in PARAMS}
    for check in PARAMS:
        outcome, message = verdicts["unsure", check]
        assert outcome == "skip" and message.startswith("inconclusive: with ") and \
            message.endswith(f"and without it too: {UNSURE} (control)"), message
    outcome, message = verdicts["top-p-garbles", "params.top_p"]
    assert outcome == "fail" and message.startswith(
        "with top_p the answer to the capital of France is ") and message.endswith(
        "; without it: Paris (control)"), message
    assert verdicts["top-p-garbles", "params.user"][0] == "pass"


def test_a_control_the_provider_fails_is_a_fail_saying_both(controlled: RunOutput) -> None:
    for check in ("chat.system_message", "chat.multi_turn", "params.developer_role"):
        outcome, message, sent = _column(controlled, "control-refused")[check]
        assert outcome == "fail" and sent == 2, (check, message)
        assert "; the control (the fact in the question itself) failed too: expected HTTP " \
            "200, got HTTP 400" in message, message
