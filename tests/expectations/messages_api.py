"""Expectations for the messages_api family (Anthropic's POST /v1/messages)."""

from __future__ import annotations

from tests.expectations import Expect

CHECKS = ("message", "system", "stream", "stream_event_names", "stop_sequences", "max_tokens",
          "error_format", "auth", "x_api_key")
_BASIC_FAILED = "the basic request failed (see messages_api.message): "


def _all(outcome: str, fragment: str, *, first: tuple[str, str] | None = None) -> Expect:
    """Every check of the family with one verdict (``first`` for messages_api.message)."""
    out = {f"messages_api.{name}": (outcome, fragment) for name in CHECKS}
    if first is not None:
        out["messages_api.message"] = first
    return out


#: fault → {check id: (outcome, fragment of the message)}; every other check must pass.
EXPECTED: dict[str, Expect] = {
    # Faults of the foundation that reach the Messages endpoint too.
    "errors_as_html": {
        "messages_api.error_format": ("fail", "a request without messages: HTTP 400 with a "
                                      "non-JSON body"),
        "messages_api.auth": ("fail", "a wrong API key: HTTP 401 with a non-JSON body"),
    },
    "error_in_200": {
        "messages_api.error_format": ("fail", "a request without messages: error reported "
                                      "inside HTTP 200"),
        "messages_api.auth": ("fail", "a wrong API key: error reported inside HTTP 200"),
    },
    "accept_any_key": {
        "messages_api.auth": ("fail", "SECURITY: a wrong API key was accepted and answered"),
    },
    "no_auth": {
        "messages_api.auth": ("fail", "SECURITY: a wrong API key was accepted and answered"),
    },
    "wrong_key_403": {
        "messages_api.auth": ("fail", "a wrong API key: expected HTTP 401, got HTTP 403"),
    },
    # Declines: one probe, and every check is unsupported.
    "no_messages_api": _all("unsupported", "POST /messages is not offered: HTTP 404 "
                            'application/json {"error": {"message": "Invalid URL'),
    "no_messages_api_bare": _all("unsupported", 'POST /messages is not offered: HTTP 404 '
                                 'application/json {"detail": "Not Found"} (no error envelope)'),
    # The Messages API broken.
    "messages_openai_format": _all(
        "skip", _BASIC_FAILED + "the answer is an OpenAI chat.completion (choices[])",
        first=("fail", "the answer is an OpenAI chat.completion (choices[]), not an Anthropic "
               "Message")),
    "messages_stop_reason_openai": _all(
        "skip", _BASIC_FAILED + "the answer is not a valid Message at $.stop_reason",
        first=("fail", "the answer is not a valid Message at $.stop_reason: 'stop' is not one "
               "of ['end_turn'")),
    "messages_drop_system": {
        "messages_api.system": ("fail", "the system prompt did not reach the model: asked for "
                                "the secret word it gives, got I don't know"),
    },
    "messages_ignore_stop_sequences": {
        "messages_api.stop_sequences": ("fail", "stop_sequences ignored: the answer contains "
                                        "'7': 1, 2, 3, 4, 5, 6, 7"),
    },
    "messages_ignore_max_tokens": {
        "messages_api.max_tokens": ("fail", "stop_reason is 'end_turn' with max_tokens 5, "
                                    "expected 'max_tokens' (max_tokens ignored)"),
    },
    "messages_stream_openai_chunks": {
        "messages_api.stream": ("fail", "streamed OpenAI chat.completion.chunk events, not "
                                "Anthropic message events"),
        "messages_api.stream_event_names": ("fail", "streamed OpenAI chat.completion.chunk "
                                            "events"),
    },
    "messages_stream_no_event_names": {
        "messages_api.stream_event_names": ("fail", "a message_start event has event name "
                                            "None; the SDKs skip events"),
    },
    "messages_stream_no_usage": {
        "messages_api.stream": ("fail", "message_delta.usage.output_tokens is null"),
    },
    "messages_stream_overloaded": {
        c: ("fail", 'the stream reported an error: {"type": "error", "error": {"type": '
                    '"overloaded_error", "message": "Overloaded"}}')
        for c in ("messages_api.stream", "messages_api.stream_event_names")
    },
    "messages_errors_openai_envelope": {
        "messages_api.error_format": ("fail", 'the error body lacks the top-level "type": '
                                      '"error" of Anthropic errors'),
    },
    "messages_accept_any_key": {
        "messages_api.auth": ("fail", "SECURITY: a wrong API key was accepted and answered"),
    },
    "messages_bearer_only": {
        "messages_api.x_api_key": ("fail", "x-api-key is not accepted (only Bearer): HTTP 401"),
    },
}
