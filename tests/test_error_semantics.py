"""The judgement of error ``type``, ``code`` and ``param`` (conformance.checks.errors): the
faults of the reference show the HTTP-status code, renamed types and the "None" param end to
end (tests/expectations/core.py); these pin the cases no fault produces."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks.errors import (
    DOCUMENTED,
    judge_semantics,
    semantics_problems,
)
from conformance.checks.expect import CredentialsRejected, RateLimited
from conformance.errors import Failure, NotApplicable
from conformance.exchange import Exchange

UNKNOWN_MODEL = DOCUMENTED["unknown_model"]
WRONG_KEY = DOCUMENTED["wrong_key"]
MISSING = DOCUMENTED["missing_messages"]


def error(**fields: Any) -> dict[str, Any]:
    return {"message": "m", "type": "invalid_request_error", "param": None, "code": None,
            **fields}


def exchange(status: int, body: Any, *, sent_key: bool = True) -> Exchange:
    """An answer to a request sent with the configured key (``sent_key``) or without it."""
    return Exchange(method="POST", url="u", request_headers={}, request_body=None, stream=False,
                    status=status, headers={"content-type": "application/json"}, json=body,
                    sent_key=sent_key)


@pytest.mark.parametrize(("envelope", "doc"), [
    (error(code="model_not_found"), UNKNOWN_MODEL),
    (error(code="model_not_found", param="model"), UNKNOWN_MODEL),  # seed 001
    (error(code="invalid_api_key"), WRONG_KEY),
    (error(type="authentication_error", code="invalid_api_key"), WRONG_KEY),  # seed 002
    (error(code="invalid_api_key", param="authorization"), WRONG_KEY),  # seed 004
    (error(code="missing_required_parameter", param="messages"), MISSING),
    (error(), MISSING),
    ({"message": "m", "type": "invalid_request_error"}, MISSING),  # absent reads as null
    (error(code="invalid_value", param="messages[0].role"), MISSING),
], ids=["openai-model", "param-model", "openai-key", "authentication_error",
        "param-authorization", "openai-missing", "nulls", "absent", "nested-param"])
def test_documented_semantics_pass(envelope: dict[str, Any], doc: Any) -> None:
    assert semantics_problems(envelope, 400, doc) == []


@pytest.mark.parametrize(("envelope", "status", "doc", "fragment"), [
    (error(code="404"), 404, UNKNOWN_MODEL,
     "code '404' is the HTTP status as a string; OpenAI's code for an unknown model is "
     "'model_not_found'"),
    (error(code=400), 400, MISSING, "code 400 is the HTTP status as a number"),
    (error(code=40001), 400, MISSING, "code 40001 is a number"),
    (error(code="10003"), 400, MISSING, "code '10003' is a number as a string"),
    (error(code="None"), 400, MISSING, "code is the string 'None' (no code is JSON null)"),
    (error(code=True), 400, MISSING, "code true is not a string"),
    (error(code=None), 404, UNKNOWN_MODEL, "code None; OpenAI's code for an unknown model"),
    ({"message": "m", "type": "invalid_request_error"}, 401, WRONG_KEY,
     "no code; OpenAI's code for a wrong API key is 'invalid_api_key'"),
    (error(code="insufficient_quota"), 401, WRONG_KEY, "code 'insufficient_quota'"),
    (error(type="throttling_error", code="model_not_found"), 404, UNKNOWN_MODEL,
     "type 'throttling_error'; OpenAI's type for an unknown model is 'invalid_request_error'"),
    (error(type="auth_error", code="invalid_api_key"), 401, WRONG_KEY,
     "type 'auth_error'; OpenAI's type for a wrong API key is 'invalid_request_error' "
     "('authentication_error' is documented by a relay)"),
    ({"message": "m", "code": "model_not_found"}, 404, UNKNOWN_MODEL, "no type"),
    (error(param="null"), 400, MISSING, "param is the string 'null'"),
    (error(param=""), 400, MISSING, "param is the string ''"),
    (error(param="model"), 400, MISSING,
     "param 'model' is not the parameter at fault; expected null or 'messages'"),
    (error(param="api_key", code="invalid_api_key"), 401, WRONG_KEY,
     "param 'api_key' is not the parameter at fault"),
    (error(param=["messages"]), 400, MISSING, "param [\"messages\"] is not a string"),
], ids=["status-string", "status-number", "number", "number-string", "none-code", "bool-code",
        "null-code", "absent-code", "other-code", "renamed-type", "auth_error", "no-type",
        "null-param", "empty-param", "wrong-param", "unknown-param", "list-param"])
def test_wrong_semantics_are_named(envelope: dict[str, Any], status: int, doc: Any,
                                   fragment: str) -> None:
    assert fragment in "; ".join(semantics_problems(envelope, status, doc))


def test_every_problem_is_reported_on_one_line() -> None:
    problems = semantics_problems(error(type="new_api_error", code="503", param="None"), 503,
                                  UNKNOWN_MODEL)
    assert len(problems) == 3
    with pytest.raises(Failure, match=r"^type 'new_api_error'.*; code '503'.*; param is"):
        judge_semantics(exchange(503, {"error": error(type="new_api_error", code="503",
                                                      param="None")}),
                        UNKNOWN_MODEL, "errors.unknown_model")


def test_pass_message_names_the_values() -> None:
    message = judge_semantics(exchange(404, {"error": error(code="model_not_found")}),
                              UNKNOWN_MODEL, "errors.unknown_model")
    assert message == "HTTP 404: type 'invalid_request_error', code 'model_not_found', param None"


def test_no_envelope_is_not_judged() -> None:
    html = Exchange(method="POST", url="u", request_headers={}, request_body=None, stream=False,
                    status=404, headers={"content-type": "text/html"}, text="<h1>404</h1>")
    with pytest.raises(NotApplicable, match=r"without an error envelope.*see errors\.unknown"):
        judge_semantics(html, UNKNOWN_MODEL, "errors.unknown_model")
    with pytest.raises(NotApplicable, match="was accepted"):
        judge_semantics(exchange(200, {"choices": []}, sent_key=False), WRONG_KEY,
                        "auth.wrong_key")


def test_refused_key_and_rate_limit_are_no_verdict() -> None:
    """A 401/403 to a request sent with the configured key is about the key, not the code."""
    refused = exchange(401, {"error": error(code="invalid_api_key")})
    with pytest.raises(CredentialsRejected):
        judge_semantics(refused, UNKNOWN_MODEL, "errors.unknown_model")
    with pytest.raises(CredentialsRejected):
        judge_semantics(exchange(403, {"error": error(code="401")}), MISSING, "x")
    wrong = exchange(401, {"error": error(code="invalid_api_key")}, sent_key=False)
    assert "invalid_api_key" in judge_semantics(wrong, WRONG_KEY, "auth.wrong_key")
    with pytest.raises(RateLimited):
        judge_semantics(exchange(429, {"error": error(code="rate_limit_exceeded")}), MISSING,
                        "x")


def test_error_inside_200_is_still_read() -> None:
    """errors.* judge the status; the code checks judge what the envelope says."""
    assert "model_not_found" in judge_semantics(
        exchange(200, {"error": error(code="model_not_found")}), UNKNOWN_MODEL, "x")
