"""Expectations for the families of the foundation: models, chat, streaming, stop,
max_tokens, usage, errors, auth."""

from __future__ import annotations

from tests.expectations import Expect

#: fault → {check id: (outcome, fragment of the message)}; every other check must pass.
EXPECTED: dict[str, Expect] = {
    "models_wrong_shape": {
        "models.list": ("fail", "GET /models deviates from the OpenAI schema"),
        "models.lists_configured": ("fail", "GET /models deviates from the OpenAI schema"),
    },
    "models_missing_configured": {
        "models.lists_configured": ("fail", "model 'ref-1' is not in GET /models"),
    },
    "models_retrieve_html_404": {
        "models.retrieve": ("fail", "expected HTTP 200, got HTTP 404 text/html"),
    },
    "chat_wrong_object": {
        "chat.basic": ("fail", "$.object"),
        "chat.schema_strict": ("fail", "$.object"),
    },
    "omit_nullable_fields": {
        "chat.schema_strict": ("fail", "'refusal' is a required property"),
    },
    "drop_system": {
        "chat.system_message": ("fail", "system message ignored"),
    },
    "last_message_only": {
        "chat.system_message": ("fail", "system message ignored"),
        "chat.multi_turn": ("fail", "earlier turn ignored"),
    },
    "first_text_part_only": {
        "chat.content_parts": ("fail", "a text part was lost"),
    },
    "stream_json_content_type": {
        "streaming.content_type": ("fail", "Content-Type is 'application/json'"),
    },
    "chunk_wrong_object": {
        "streaming.chunk_schema": ("fail", "chunk 0 deviates from the OpenAI schema at $.object"),
    },
    "no_role_chunk": {
        "streaming.role_first": ("fail", "no delta has a role"),
    },
    "chunk_ids_vary": {
        "streaming.consistent_ids": ("fail", "different 'id' values"),
    },
    "stream_no_finish_reason": {
        "streaming.finish_reason": ("fail", "no chunk carries a finish_reason"),
        "streaming.reassembled": ("fail", "finish_reason"),
        "stop.stream": ("fail", "finish_reason is None"),
        "max_tokens.stream": ("fail", "finish_reason is None"),
    },
    "no_done": {
        "streaming.done_sentinel": ("fail", "stream ended without data: [DONE]"),
        "streaming.nothing_after_done": ("skip", "no data: [DONE] was sent"),
    },
    "events_after_done": {
        "streaming.done_sentinel": ("fail", "data: [DONE] is not the last event"),
        "streaming.nothing_after_done": ("fail", "event(s) after data: [DONE]"),
    },
    "delta_text_field": {
        "streaming.reassembled": ("fail", "the deltas carry no delta.content text"),
        "streaming.incremental": ("fail", "arrived in 0 content chunk(s)"),
        "stop.stream": ("fail", "no answer text at all"),
        "max_tokens.stream": ("fail", "no text at all"),
    },
    "stream_single_chunk": {
        "streaming.incremental": ("fail", "arrived in 1 content chunk(s)"),
    },
    "ignore_stop": {
        "stop.string": ("fail", "stop='7' ignored"),
        "stop.list": ("fail", "stop=['xyzzy', '7'] ignored"),
        "stop.stream": ("fail", "stop='7' ignored"),
    },
    "stop_first_only": {
        "stop.list": ("fail", "stop=['xyzzy', '7'] ignored"),
    },
    "ignore_stop_stream": {
        "stop.stream": ("fail", "stop='7' ignored"),
    },
    "reject_stop": {
        "stop.string": ("unsupported", "stop declined: HTTP 400"),
        "stop.list": ("unsupported", "stop as a list declined: HTTP 400"),
        "stop.stream": ("unsupported", "stop declined: HTTP 400"),
    },
    "ignore_max_tokens": {
        "max_tokens.length": ("fail", "max_tokens=5 ignored or unreported"),
        "max_tokens.stream": ("fail", "max_tokens=5 ignored or unreported"),
    },
    "ignore_max_completion_tokens": {
        "max_tokens.max_completion_tokens": ("fail", "max_completion_tokens=5 ignored"),
    },
    "stream_length_as_stop": {
        "max_tokens.stream": ("fail", "finish_reason is 'stop' (expected 'length')"),
    },
    "no_usage": {
        "usage.present": ("fail", "the completion has no usage object"),
        "usage.arithmetic": ("fail", "no usage object"),
        "usage.stream_matches_nonstream": ("fail", "non-stream usage: no usage object"),
    },
    "usage_bad_total": {
        "usage.arithmetic": ("fail", "≠ prompt_tokens"),
        "usage.stream_include_usage": ("fail", "stream usage total_tokens"),
    },
    "ignore_include_usage": {
        "usage.stream_include_usage": ("fail", "include_usage ignored"),
        "usage.stream_matches_nonstream": ("fail", "the stream reports no usage"),
    },
    "usage_on_content_chunk": {
        "usage.stream_include_usage": ("fail", "usage came on a chunk with choices"),
    },
    "stream_usage_inflated": {
        "usage.stream_matches_nonstream": ("fail", "prompt_tokens differ"),
    },
    "errors_as_html": {
        **{c: ("fail", "with a non-JSON body") for c in (
            "errors.malformed_json", "errors.missing_messages", "errors.invalid_role",
            "errors.wrong_type", "errors.temperature_range", "errors.envelope_schema",
            "auth.wrong_key", "auth.missing_key")},
        "errors.unknown_model": ("fail", "with a non-JSON body"),
    },
    "error_in_200": {
        c: ("fail", "error reported inside HTTP 200") for c in (
            "errors.malformed_json", "errors.missing_messages", "errors.invalid_role",
            "errors.wrong_type", "errors.temperature_range", "errors.unknown_model",
            "errors.envelope_schema", "auth.wrong_key", "auth.missing_key")
    },
    "malformed_json_500": {
        "errors.malformed_json": ("fail", "server error instead of a client error"),
    },
    "accept_invalid_role": {
        "errors.invalid_role": ("fail", "role 'wizard' was accepted"),
    },
    "accept_wrong_types": {
        "errors.wrong_type": ("fail", "messages as a string was accepted"),
    },
    "temperature_unchecked": {
        "errors.temperature_range": ("fail", "temperature 5 was accepted"),
    },
    "unknown_model_503": {
        "errors.unknown_model": ("fail", "server error instead of a client error"),
    },
    "envelope_minimal": {
        "errors.envelope_schema": ("fail", "'param' is a required property"),
    },
    "accept_any_key": {
        "auth.wrong_key": ("fail", "SECURITY: a wrong API key was accepted"),
    },
    "no_auth": {
        "auth.wrong_key": ("fail", "SECURITY: a wrong API key was accepted"),
        "auth.missing_key": ("fail", "SECURITY: a request without an API key was accepted"),
    },
    # Exposes the key in bodies and headers; redaction must hide it, verdicts stay the same.
    "echo_key": {},
    # Deviations in features whose checks belong to later families (tools, n, vision,
    # json_mode): the families here must be unaffected.
    "tool_args_object": {},
    "ignore_n": {},
    "strip_images": {},
    "ignore_response_format": {},
}
