"""The reference provider's Anthropic Messages API: ``POST /v1/messages``.

API易 (seed 001) documents Claude's native format next to the OpenAI one: ``POST /v1/messages``
with an ``anthropic-version`` header.  This module follows Anthropic's API reference
(https://docs.anthropic.com/en/api/messages, .../messages-streaming, .../errors): request
validation, the ``Message`` object and the named stream events.  It is pure logic; HTTP
(routing, authentication) stays in :mod:`conformance.reference.app`, error rendering in
:mod:`conformance.reference.envelopes`, SSE bytes in :mod:`conformance.reference.streaming`.
The messages_* faults of :mod:`conformance.reference.faults` are applied here, each at one place.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conformance.reference import model
from conformance.reference.faults import ALL_MODEL_IDS, Variant, answering_model

#: The version the seed's example sends; the only one the reference knows.
VERSIONS = ("2023-06-01",)
#: Top-level request fields of the Messages API the reference accepts (others are rejected,
#: as Anthropic does with "Extra inputs are not permitted").
FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "metadata", "tools", "tool_choice", "thinking", "service_tier",
})
#: HTTP status → Anthropic ``error.type`` (API reference, "Errors").
ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
}
#: OpenAI finish_reason names, which the messages_stop_reason_openai fault leaks.
_OPENAI_REASONS = {"end_turn": "stop", "max_tokens": "length", "stop_sequence": "stop"}


class MessagesError(Exception):
    """A request the Messages API refuses: rendered by the app as an Anthropic error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> dict[str, Any]:
    """``{"type": "error", "error": {"type": ..., "message": ...}}`` (API reference, Errors)."""
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": message},
            "request_id": "req_" + secrets.token_hex(12)}


@dataclass
class Call:
    """A validated Messages request, answered."""

    requested_model: str
    stream: bool
    text: str
    tokens: list[str]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int


def _text_blocks(value: Any, where: str) -> list[str]:
    """A string, or a list of content blocks of which the text blocks are read."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise MessagesError(400, f"{where}: Input should be a valid string or a non-empty list "
                            "of content blocks")
    texts = []
    for number, block in enumerate(value):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise MessagesError(400, f"{where}.{number}: Input should be a content block object")
        if block["type"] == "text":
            if not isinstance(block.get("text"), str):
                raise MessagesError(400, f"{where}.{number}.text: Field required")
            texts.append(block["text"])
    return texts


def _int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessagesError(400, f"{key}: Input should be a valid integer")
    return value


def parse(body: Any, headers: Mapping[str, str], variant: Variant) -> Call:
    """Validate a request as Anthropic does and generate the answer (faults applied)."""
    if headers.get("anthropic-version") not in VERSIONS:
        got = headers.get("anthropic-version")
        raise MessagesError(400, "anthropic-version: header is required" if got is None
                            else f"anthropic-version: invalid version {got!r}")
    if not isinstance(body, dict):
        raise MessagesError(400, "Input should be a valid dictionary")
    extra = sorted(set(body) - FIELDS)
    if extra:
        raise MessagesError(400, f"{extra[0]}: Extra inputs are not permitted")
    requested = body.get("model")
    if not isinstance(requested, str):
        raise MessagesError(400, "model: Field required")
    limit = _int(body, "max_tokens")
    if limit is None and "max_tokens" not in body:
        raise MessagesError(400, "max_tokens: Field required")
    if limit is None or limit < 1:
        raise MessagesError(400, "max_tokens: Input should be greater than or equal to 1")
    raw = body.get("messages")
    if "messages" not in body:
        raise MessagesError(400, "messages: Field required")
    if not isinstance(raw, list) or not raw:
        raise MessagesError(400, "messages: Input should be a non-empty list")
    seen: list[model.Message] = []
    if body.get("system") is not None:
        system = _text_blocks(body["system"], "system")
        if "messages_drop_system" not in variant:
            seen.append(model.Message("system", [*system]))
    for number, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise MessagesError(400, f"messages.{number}.role: Input should be 'user' or "
                                "'assistant'")
        parts = _text_blocks(message.get("content"), f"messages.{number}.content")
        seen.append(model.Message(message["role"], [*parts]))
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise MessagesError(400, "stop_sequences: Input should be a valid list of strings")
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(
            temperature, (int, float)) or not 0 <= temperature <= 1):
        raise MessagesError(400, "temperature: Input should be less than or equal to 1")
    if requested not in ALL_MODEL_IDS:
        raise MessagesError(404, f"model: {requested}")
    if "messages_ignore_stop_sequences" in variant:
        stops = []
    if "messages_ignore_max_tokens" in variant:
        limit = 4096
    text = model.generate(model.Request(seen, [], "none", None, True, None)).content or ""
    tokens, matched, limited = model.truncate(text, stops, limit)
    reason = "max_tokens" if limited else "stop_sequence" if matched is not None else "end_turn"
    return Call(str(requested), body.get("stream") is True, "".join(tokens), tokens, reason,
                matched, input_tokens=model.prompt_tokens(seen))


def _model_name(call: Call) -> str:
    return answering_model(call.requested_model)


def _reason(reason: str | None, variant: Variant) -> str | None:
    if reason is not None and "messages_stop_reason_openai" in variant:
        return _OPENAI_REASONS[reason]
    return reason


def message(call: Call, variant: Variant) -> dict[str, Any]:
    """The ``Message`` object of a non-streamed answer."""
    if "messages_openai_format" in variant:
        return {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion",
                "created": int(time.time()), "model": _model_name(call),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": call.text},
                             "finish_reason": _OPENAI_REASONS[call.stop_reason]}],
                "usage": {"prompt_tokens": call.input_tokens,
                          "completion_tokens": len(call.tokens),
                          "total_tokens": call.input_tokens + len(call.tokens)}}
    return {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": _model_name(call),
        "content": [{"type": "text", "text": call.text}],
        "stop_reason": _reason(call.stop_reason, variant),
        "stop_sequence": call.stop_sequence,
        "usage": {"input_tokens": call.input_tokens, "output_tokens": len(call.tokens)},
    }


def stream_events(call: Call, variant: Variant) -> list[tuple[str | None, dict[str, Any] | str]]:
    """The named events of a streamed answer (Messages streaming: message_start,
    content_block_start, ping, content_block_delta…, content_block_stop, message_delta,
    message_stop)."""
    if "messages_stream_openai_chunks" in variant:
        return _openai_chunks(call)
    start = message(call, variant)
    start.update(content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = {"input_tokens": call.input_tokens, "output_tokens": 1}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": token}})
               for token in call.tokens if token]
    usage: dict[str, Any] = {"output_tokens": len(call.tokens)}
    if "messages_stream_no_usage" in variant:
        usage = {}
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": _reason(call.stop_reason, variant),
                                     "stop_sequence": call.stop_sequence},
                           "usage": usage}),
        ("message_stop", {"type": "message_stop"}),
    ]
    if "messages_stream_overloaded" in variant:  # message_start … the first text_delta
        events = [*events[:4], ("error", {"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded"}})]
    if "messages_stream_no_event_names" in variant:
        return [(None, payload) for _, payload in events]
    return events


def _openai_chunks(call: Call) -> list[tuple[str | None, dict[str, Any] | str]]:
    """messages_stream_openai_chunks: the stream a relay sends when it forwards /messages to
    an OpenAI backend without converting the answer."""
    base = {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion.chunk",
            "created": int(time.time()), "model": call.requested_model}
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""},
                                                        None)]
    deltas += [({"content": token}, None) for token in call.tokens if token]
    deltas.append(({}, _OPENAI_REASONS[call.stop_reason]))
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        for delta, finish in deltas]
    events.append((None, "[DONE]"))
    return events
