"""The outcome rules of checks/expect.py, written once for every family: what is a real
decline (``unsupported``), what is a finding (``fail``) and what is no verdict (``error``).

The exchanges are built as the transport records them; the same rules are exercised end to
end over real sockets by the fault variants in tests/test_faults.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks.expect import (
    CredentialsRejected,
    ModelUnavailable,
    cut_finding,
    expect_client_error,
    names_sent,
    raise_for_status,
)
from conformance.errors import Failure, Unsupported
from conformance.exchange import Exchange, TimedEvent

ANTHROPIC_HEADERS = {"authorization": "Bearer ***", "anthropic-version": "2023-06-01",
                     "content-type": "application/json", "user-agent": "conformance/0"}


def answer(status: int, body: Any, *, headers: dict[str, str] | None = None,
           request: Any = None, sent_key: bool = True) -> Exchange:
    return Exchange(
        method="POST", url="http://127.0.0.1:1/v1/x",
        request_headers=headers or {"authorization": "Bearer ***",
                                    "content-type": "application/json"},
        request_body=request if request is not None else {"model": "m", "stop": ["7"],
                                                          "messages": []},
        stream=False, status=status, json=body, text=str(body), sent_key=sent_key,
        headers={"content-type": "application/json"},
    )


def openai_error(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": code}}


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_owner(exchange: Exchange) -> str | None:
    body = exchange.json
    return "an Anthropic error body" if isinstance(body, dict) and body.get("type") == "error" \
        else None


@pytest.mark.parametrize("message, code", [
    ("Unsupported parameter: 'stop' is not supported with this model.", "unsupported_parameter"),
    ("litellm.UnsupportedParamsError: openai does not support parameters: ['stop']", None),
    ("Invalid value: 'developer'. Supported values are: 'system', 'user'.", None),
    ("当前模型不支持该参数", None),
    ("The model `gpt-4o` does not support image input.", None),
    ("gpt-4o: tools are not available", "unsupported_model"),
])
def test_a_4xx_that_says_unsupported_is_a_decline(message: str, code: str | None) -> None:
    with pytest.raises(Unsupported, match="stop declined: HTTP 400"):
        raise_for_status(answer(400, openai_error(message, code)), "stop")


@pytest.mark.parametrize("message, code", [
    ("当前分组 default 下对于模型 gpt-4o-mini 无可用渠道", None),
    ("当前分组 default 下对于模型 gpt-4o-mini 无可用渠道", "get_channel_failed"),
    ("The model `gpt-4o-mini` does not exist or you do not have access to it.",
     "model_not_found"),
    ("model not found", "model_not_found"),
])
def test_the_configured_model_missing_is_no_verdict_on_a_feature(message: str,
                                                                  code: str | None) -> None:
    """Not a decline of the feature (nor, for core behaviour, a fail): the user's model."""
    request = {"model": "gpt-4o-mini", "stop": ["7"], "messages": []}
    for status in (400, 404):
        missing = answer(status, openai_error(message, code), request=request)
        with pytest.raises(ModelUnavailable, match="the model 'gpt-4o-mini' is not available"):
            raise_for_status(missing, "stop")
        with pytest.raises(ModelUnavailable):
            raise_for_status(missing)
        with pytest.raises(ModelUnavailable):  # an errors.* check expecting 400 or 422
            expect_client_error(answer(404, openai_error(message, code), request=request),
                                "request without messages")
    # a check that names a made-up model on purpose judges the answer
    made_up = answer(422, openai_error(message, code), request=request)
    with pytest.raises(Failure, match="expected HTTP 404 or 400, got HTTP 422"):
        expect_client_error(made_up, "unknown model", statuses=(404, 400),
                            configured_model=False)


@pytest.mark.parametrize("message, named", [
    ("anthropic-version: header is required", "anthropic-version"),
    ("'stop' must be a string or an array", "stop"),
    ("messages: field required", "messages"),
])
def test_a_4xx_naming_what_was_sent_is_a_fail(message: str, named: str) -> None:
    headers = {**ANTHROPIC_HEADERS}
    exchange = answer(400, anthropic_error("invalid_request_error", message), headers=headers)
    with pytest.raises(Failure, match=f"says '{named}' is wrong or missing, but the request "
                                      f"carried a valid '{named}'"):
        raise_for_status(exchange, "the Messages API")


def test_plain_words_are_not_taken_for_field_names() -> None:
    exchange = answer(400, openai_error("This model cannot do that right now"))
    assert names_sent("This model cannot do that right now", exchange) is None
    with pytest.raises(Failure, match="refused a valid request without saying that anything "
                                      "is unsupported"):
        raise_for_status(exchange, "stop")


def test_a_5xx_is_a_fail_even_for_a_feature() -> None:
    with pytest.raises(Failure, match="expected HTTP 200, got HTTP 500"):
        raise_for_status(answer(500, openai_error("not supported")), "stop")


def test_a_4xx_without_an_envelope_is_a_fail() -> None:
    with pytest.raises(Failure, match="expected HTTP 200, got HTTP 400") as info:
        raise_for_status(answer(400, None), "stop")
    # says why a decline in words is not taken for one
    assert info.value.message.endswith("(not a well-formed decline: no OpenAI error envelope "
                                       '{"error": {"message": ...}})')
    with pytest.raises(Failure) as info:
        raise_for_status(answer(500, None), "stop")
    assert "well-formed" not in info.value.message


@pytest.mark.parametrize("body", [
    {"detail": "Not Found"},
    openai_error("Invalid URL (POST /v1/messages)"),
    None,
])
def test_a_404_on_an_optional_route_is_a_decline(body: Any) -> None:
    with pytest.raises(Unsupported, match="POST /messages is not offered: HTTP 404"):
        raise_for_status(answer(404, body), "the Messages API", route="POST /messages",
                         foreign=anthropic_owner)


def test_a_404_in_the_routes_own_format_came_from_an_upstream() -> None:
    exchange = answer(404, anthropic_error("not_found_error", "Not Found"))
    with pytest.raises(Failure, match="POST /messages exists but HTTP 404 came with an "
                                      "Anthropic error body"):
        raise_for_status(exchange, "the Messages API", route="POST /messages",
                         foreign=anthropic_owner)
    unknown_model = answer(404, anthropic_error("not_found_error", "model: claude-x does not "
                                                "exist"), request={"model": "claude-x"})
    with pytest.raises(ModelUnavailable, match="the model 'claude-x' is not available"):
        raise_for_status(unknown_model, "the Messages API", route="POST /messages",
                         foreign=anthropic_owner)


def test_a_refused_configured_key_is_no_verdict() -> None:
    refused = answer(401, openai_error("Incorrect API key provided", "invalid_api_key"))
    with pytest.raises(CredentialsRejected):
        raise_for_status(refused, "stop")
    with pytest.raises(CredentialsRejected):  # an errors.* check expecting 400
        expect_client_error(refused, "request without messages")
    # A deliberately wrong key (auth.*) is judged: its 401 is the expected answer.
    wrong = answer(401, openai_error("Incorrect API key provided"), sent_key=False)
    assert expect_client_error(wrong, "a wrong key", statuses=(401,))["message"]


def test_a_cut_stream_is_a_finding_unless_its_end_arrived() -> None:
    events = [TimedEvent(1, '{"choices": [{"index": 0, "delta": {"role": "assistant"}, '
                            '"finish_reason": null}]}')]
    exchange = answer(200, None)
    exchange.events, exchange.cut = events, "connection closed after 80 bytes (the retry too)"
    finding = cut_finding(exchange)
    assert finding is not None
    assert str(finding).startswith("stream cut after 1 events, no finish_reason, no [DONE]")
    exchange.events = [*events, TimedEvent(2, "[DONE]")]
    assert cut_finding(exchange) is None  # everything a client needs had arrived
