"""Expectations for the responses_api family (OpenAI's POST /v1/responses) and the sdk
family's Responses checks (sdk.responses_create, sdk.responses_stream)."""

from __future__ import annotations

from tests.expectations import Expect

CHECKS = ("response", "usage", "message_input", "instructions", "stream_false", "function_call",
          "tool_choice_required", "tool_choice_named", "tool_choice_none",
          "function_call_output", "json_schema", "max_output_tokens", "reasoning",
          "previous_response_id", "retrieve", "store_false", "error_format", "auth", "stream",
          "stream_schema", "stream_events", "stream_function_call")
STREAMED = ("stream", "stream_schema", "stream_events", "stream_function_call")
_BASIC_FAILED = "the basic request failed (see responses_api.response): "
_NOT_OFFERED = ('POST /responses is not offered: HTTP 404 application/json {"error": '
                '{"message": "Invalid URL')
_CHAT_CHUNKS = "streamed chat.completion.chunk events, not Responses events"
_CUT = "stream cut after "
_ARGS_OBJECT = "is not of type 'string'"


def _all(outcome: str, fragment: str, *, first: tuple[str, str] | None = None) -> Expect:
    """Every check of the family with one verdict (``first`` for responses_api.response)."""
    out = {f"responses_api.{name}": (outcome, fragment) for name in CHECKS}
    if first is not None:
        out["responses_api.response"] = first
    return out


#: fault → {check id: (outcome, fragment of the message)}; every other check must pass.
EXPECTED: dict[str, Expect] = {
    # Faults of the foundation that reach the Responses route too.
    "errors_as_html": {
        "responses_api.error_format": ("fail", "an input that is a number: HTTP 400 with a "
                                       "non-JSON body"),
        "responses_api.auth": ("fail", "a wrong API key: HTTP 401 with a non-JSON body"),
    },
    "error_in_200": {
        "responses_api.error_format": ("fail", "an input that is a number: error reported "
                                       "inside HTTP 200"),
        "responses_api.auth": ("fail", "a wrong API key: error reported inside HTTP 200"),
        "responses_api.store_false": ("fail", "GET of an unstored response: error reported "
                                      "inside HTTP 200"),
    },
    "envelope_minimal": {
        "responses_api.error_format": ("fail", "the error body deviates from the OpenAI schema "
                                       "at $.error: 'param' is a required property"),
    },
    "accept_any_key": {
        "responses_api.auth": ("fail", "SECURITY: a wrong API key was accepted and answered"),
    },
    "no_auth": {
        "responses_api.auth": ("fail", "SECURITY: a wrong API key was accepted and answered"),
    },
    "wrong_key_403": {
        "responses_api.auth": ("fail", "a wrong API key: expected HTTP 401, got HTTP 403"),
    },
    "stream_cut": {
        **{f"responses_api.{name}": ("fail", _CUT) for name in STREAMED},
        "sdk.responses_stream": ("fail", _CUT),
    },
    "sse_invalid_utf8": {
        "sdk.responses_stream": ("fail", "the openai SDK cannot parse the Response stream: "
                                 "UnicodeDecodeError"),
    },
    "sdk_headers_rejected": {
        "sdk.responses_create": ("fail", "expected HTTP 200, got HTTP 400 application/json "
                                 "{\"error\": {\"message\": \"Header 'x-stainless-lang' is not "
                                 "allowed."),
        "sdk.responses_stream": ("fail", "expected HTTP 200, got HTTP 400"),
    },
    # A decline: one probe, and every check (and the SDK's) is unsupported.
    "no_responses_api": {
        **_all("unsupported", _NOT_OFFERED),
        "sdk.responses_create": ("unsupported", _NOT_OFFERED),
        "sdk.responses_stream": ("unsupported", _NOT_OFFERED),
    },
    # The Responses API broken.
    "responses_chat_format": {
        **_all("skip", _BASIC_FAILED + "the answer is an OpenAI chat.completion (choices[])",
               first=("fail", "the answer is an OpenAI chat.completion (choices[]), not a "
                      "Response object")),
        "sdk.responses_create": ("fail", "the SDK's Response has no readable output"),
    },
    "responses_usage_bad_total": {
        "responses_api.usage": ("fail", "usage.total_tokens is 21, not input_tokens + "
                                "output_tokens = 20"),
    },
    "responses_instructions_replaced": {
        "responses_api.instructions": ("fail", "the instructions did not reach the model "
                                       "(replaced?): asked for the secret word they give, got "
                                       "I don't know the secret word."),
    },
    "responses_instructions_default": {
        "responses_api.instructions": ("fail", "Response.instructions is You are a helpful "
                                       "assistant. The secret word is kiwi., not the "
                                       "instructions sent ('The secret word is kiwi.'): the "
                                       "gateway added or replaced instructions"),
    },
    "responses_stream_forced": {
        "responses_api.stream_false": ("fail", "the answer is an event stream (Content-Type "
                                       "'text/event-stream'), not one JSON Response object"),
    },
    "responses_stream_chat_chunks": {
        **{f"responses_api.{name}": ("fail", _CHAT_CHUNKS) for name in STREAMED},
        "sdk.responses_stream": ("fail", "the openai SDK cannot parse the Response stream: "
                                 "RuntimeError: Expected to have received `response.created`"),
    },
    "responses_stream_no_event_names": {
        "responses_api.stream_events": ("fail", "a response.created event has event name None; "
                                        "expected its type"),
    },
    "responses_stream_sequence_reset": {
        "responses_api.stream_events": ("fail", "sequence_number does not increase: 0 after 0 "
                                        "(response.in_progress)"),
    },
    "responses_stream_invalid_event": {
        "responses_api.stream_schema": ("fail", "(response.output_text.delta) is not a valid "
                                        "response.output_text.delta event at $: 'item_id' is a "
                                        "required property"),
    },
    "responses_stream_drops_first_delta": {
        "responses_api.stream": ("fail", "the deltas give , 2, 3, 4, 5 but "
                                 "response.output_text.done says 1, 2, 3, 4, 5"),
        "sdk.responses_stream": ("fail", "get_final_response().output_text is 1, 2, 3, 4, 5, "
                                 "the deltas give , 2, 3, 4, 5"),
    },
    "responses_stream_failed": {
        **{c: ("fail", "the stream reported that the response failed (response.failed): "
                       '{"code": "server_error", "message": "The model failed to generate')
           for c in ("responses_api.stream", "responses_api.stream_schema",
                     "responses_api.stream_events", "responses_api.stream_function_call")},
        "sdk.responses_stream": ("fail", "Didn't receive a `response.completed` event. (the "
                                 'raw stream reports a failure: {"code": "server_error"'),
    },
    "responses_stream_args_whole": {
        "responses_api.stream_function_call": ("fail", "the get_weather call was streamed "
                                               "without response.function_call_arguments.delta "
                                               "events"),
    },
    "responses_tool_args_object": {
        "responses_api.function_call": ("fail", "the answer is not a valid Response at "
                                        "$.output[0].arguments: {'city': 'Paris'} " + _ARGS_OBJECT),
        "responses_api.tool_choice_required": ("fail", _ARGS_OBJECT),
        "responses_api.tool_choice_named": ("fail", _ARGS_OBJECT),
        "responses_api.tool_choice_none": ("skip", "inconclusive: the control failed"),
    },
    "responses_drop_tools": {
        "responses_api.function_call": ("fail", "no function_call item in the output (tools "
                                        "ignored?)"),
        "responses_api.tool_choice_required": ("fail", "tool_choice 'required' ignored"),
        "responses_api.tool_choice_named": ("fail", "tool_choice named 'get_time' but the calls "
                                            "are none"),
        "responses_api.tool_choice_none": ("skip", "inconclusive: with tool_choice auto the "
                                           "model made no call either"),
        "responses_api.stream_function_call": ("fail", "no function_call item in the streamed "
                                               "Response"),
    },
    "responses_tool_choice_ignored": {
        "responses_api.tool_choice_required": ("fail", "tool_choice 'required' ignored: no "
                                               "function_call, text hello"),
        "responses_api.tool_choice_named": ("fail", "tool_choice named 'get_time' but the calls "
                                            "are ['get_weather']"),
        "responses_api.tool_choice_none": ("fail", "tool_choice 'none' ignored: the answer calls "
                                           "get_weather"),
    },
    "responses_drop_tool_outputs": {
        "responses_api.function_call_output": ("fail", "the function_call_output did not reach "
                                               "the model: expected '23' in the answer"),
    },
    "responses_ignore_text_format": {
        "responses_api.json_schema": ("fail", "text.format json_schema ignored: output_text is "
                                      "not JSON: Paris"),
    },
    "responses_ignore_max_output_tokens": {
        "responses_api.max_output_tokens": ("fail", "max_output_tokens 16 ignored: status "
                                            "'completed' after"),
    },
    "responses_incomplete_as_completed": {
        "responses_api.max_output_tokens": ("fail", "status 'completed', "
                                            "incomplete_details.reason None for an answer cut "
                                            "at max_output_tokens 16"),
    },
    "responses_reasoning_forced": {
        "responses_api.reasoning": ("fail", "reasoning.effort 'low' was answered with "
                                    "reasoning.effort 'high': the gateway forced another level"),
    },
    "responses_reasoning_500": {
        "responses_api.reasoning": ("fail", "expected HTTP 200, got HTTP 500"),
    },
    "responses_previous_ignored": {
        "responses_api.previous_response_id": ("fail", "previous_response_id accepted but "
                                               "ignored: the number given in the first turn "
                                               "(42) is not recalled"),
    },
    "responses_store_ignored": {
        "responses_api.store_false": ("fail", "store: false ignored: the response was stored "
                                      "and GET /responses/"),
    },
    "responses_input_last_only": {
        "responses_api.message_input": ("fail", "the earlier turns did not reach the model: "
                                        "asked for the number given in the first turn (42)"),
    },
    "responses_retrieve_new_id": {
        "responses_api.retrieve": ("fail", "answered the stored response under another id"),
    },
    "responses_error_detail": {
        "responses_api.error_format": ("fail", "an input that is a number: HTTP 400 with JSON "
                                       "without the error envelope"),
    },
    "responses_accept_any_key": {
        "responses_api.auth": ("fail", "SECURITY: a wrong API key was accepted and answered"),
    },
}
