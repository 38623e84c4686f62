"""Expectations for the families of the foundation: models, chat, streaming, stop,
max_tokens, usage, errors, auth."""

from __future__ import annotations

from tests.expectations import Expect

#: The checks that read a chat stream (``expect.expect_stream``), sdk.stream aside.
STREAM_READERS = (
    "streaming.matches_nonstream",
    "streaming.content_type",
    "streaming.chunk_schema",
    "streaming.role_first",
    "streaming.consistent_ids",
    "streaming.finish_reason",
    "streaming.done_sentinel",
    "streaming.nothing_after_done",
    "streaming.reassembled",
    "streaming.incremental",
    "streaming.real_time",
    "stop.stream",
    "max_tokens.stream",
    "n.stream",
    "tools.stream_index",
    "tools.stream_once",
    "tools.stream_arguments",
    "json_mode.json_schema_stream",
    "usage.stream_include_usage",
    "usage.stream_matches_nonstream",
    "params.model_echo",
)

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
    "models_retrieve_missing": {
        "models.retrieve": ("fail", "GET /models lists 'ref-1', but GET /models/ref-1 says it "
                                    "does not exist: HTTP 404 The model 'ref-1' does not exist"),
    },
    "json_bom": {  # read past by every other check, as the openai SDKs do
        "chat.basic": ("fail", "the completion begins with a byte order mark (U+FEFF)"),
        "models.list": ("fail", "GET /models begins with a byte order mark (U+FEFF)"),
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
    "stream_ignored": {
        **{c: ("fail", "stream: true answered with a single non-stream JSON completion")
           for c in STREAM_READERS},
        "sdk.stream": ("fail", "the openai SDK read no chunk: stream=True was answered without "
                               "any SSE event, HTTP 200 application/json"),
    },
    "stream_error_event": {  # every check reading a chat stream: the request failed
        **{c: ("fail", "chunk 2 of the HTTP 200 stream is an error, not an answer: "
                       '{"message": "upstream error: do request failed')
           for c in STREAM_READERS},
        "sdk.stream": ("fail", "openai.APIError: upstream error: do request failed"),
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
    "stream_buffered_burst": {
        "streaming.real_time": ("fail", "fake streaming: all 9 content chunks arrived within"),
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
            "errors.malformed_json", "errors.array_body", "errors.missing_messages",
            "errors.empty_messages", "errors.invalid_role", "errors.wrong_type",
            "errors.temperature_range", "errors.temperature_type", "errors.unknown_model",
            "errors.envelope_schema", "auth.wrong_key", "auth.missing_key")},
        # No envelope, so no type or code to read: the shape checks above carry the verdict.
        **{c: ("skip", "answered without an error envelope, so there is no type or code") for c
           in ("errors.code_unknown_model", "errors.code_wrong_key",
               "errors.code_invalid_request")},
    },
    # The envelopes inside the 200s say the right type and code: only the status is wrong.
    "error_in_200": {
        c: ("fail", "error reported inside HTTP 200") for c in (
            "errors.malformed_json", "errors.array_body", "errors.missing_messages",
            "errors.empty_messages", "errors.invalid_role", "errors.wrong_type",
            "errors.temperature_range", "errors.temperature_type", "errors.unknown_model",
            "errors.envelope_schema", "auth.wrong_key", "auth.missing_key")
    },
    "malformed_json_500": {
        "errors.malformed_json": ("fail", "server error instead of a client error"),
    },
    "accept_invalid_role": {
        "errors.invalid_role": ("fail", "role 'wizard' was accepted"),
    },
    # The coercion drops a temperature that does not parse as a number and answers.
    "accept_wrong_types": {
        "errors.wrong_type": ("fail", "messages as a string was accepted"),
        "errors.temperature_type": ("fail", "temperature 'hot' was accepted"),
    },
    "temperature_unchecked": {
        "errors.temperature_range": ("fail", "temperature 5 was accepted"),
    },
    # new-api's 503 body says type "new_api_error" and no code, so clients cannot see
    # model_not_found in it either.
    "unknown_model_503": {
        "errors.unknown_model": ("fail", "server error instead of a client error"),
        "errors.code_unknown_model": ("fail", "type 'new_api_error'; OpenAI's type for an "
                                      "unknown model is 'invalid_request_error'; no code; "
                                      "OpenAI's code for an unknown model is 'model_not_found'"),
    },
    # Without code, model_not_found and invalid_api_key are lost; the request without messages
    # has no code to lose (absent reads as null there; envelope_schema reports the absence).
    "envelope_minimal": {
        "errors.envelope_schema": ("fail", "'param' is a required property"),
        "errors.code_unknown_model": ("fail", "no code; OpenAI's code for an unknown model is "
                                      "'model_not_found'"),
        "errors.code_wrong_key": ("fail", "no code; OpenAI's code for a wrong API key is "
                                  "'invalid_api_key'"),
    },
    "error_code_is_status": {
        "errors.code_unknown_model": ("fail", "code '404' is the HTTP status as a string; "
                                      "OpenAI's code for an unknown model is 'model_not_found'"),
        "errors.code_wrong_key": ("fail", "code '401' is the HTTP status as a string; OpenAI's "
                                  "code for a wrong API key is 'invalid_api_key'"),
        "errors.code_invalid_request": ("fail", "code '400' is the HTTP status as a string"),
    },
    "error_type_renamed": {
        "errors.code_unknown_model": ("fail", "type 'invalid_request'; OpenAI's type for an "
                                      "unknown model is 'invalid_request_error'"),
        "errors.code_wrong_key": ("fail", "type 'auth_error'; OpenAI's type for a wrong API key "
                                  "is 'invalid_request_error'"),
        "errors.code_invalid_request": ("fail", "type 'invalid_request'; OpenAI's type for a "
                                        "request without messages is 'invalid_request_error'"),
    },
    # Only null params become "None"; the request without messages has param "messages".
    "error_param_none_string": {
        "errors.code_unknown_model": ("fail", "param is the string 'None'"),
        "errors.code_wrong_key": ("fail", "param is the string 'None'"),
    },
    "array_body_500": {
        "errors.array_body": ("fail", "a JSON array as the body: server error instead of a "
                              "client error"),
    },
    "empty_messages_accepted": {
        "errors.empty_messages": ("fail", "messages: [] was accepted"),
    },
    # A wrong key that is answered leaves no error to read: auth.wrong_key carries the verdict.
    "accept_any_key": {
        "auth.wrong_key": ("fail", "SECURITY: a wrong API key was accepted"),
        "errors.code_wrong_key": ("skip", "a wrong API key was accepted, so there is no type or "
                                  "code to read (see auth.wrong_key)"),
    },
    "no_auth": {
        "auth.wrong_key": ("fail", "SECURITY: a wrong API key was accepted"),
        "auth.missing_key": ("fail", "SECURITY: a request without an API key was accepted"),
        "errors.code_wrong_key": ("skip", "a wrong API key was accepted"),
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
