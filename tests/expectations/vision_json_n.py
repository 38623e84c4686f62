"""Expectations for the n, vision and json_mode families."""

from __future__ import annotations

from tests.expectations import Expect

#: fault → {check id: (outcome, fragment of the message)}; every other check must pass.
EXPECTED: dict[str, Expect] = {
    # Faults of the foundation that also reach these families.
    "chat_wrong_object": {
        "n.choices": ("fail", "the completion deviates from the OpenAI schema at $.object"),
    },
    "no_usage": {
        "n.usage": ("fail", "n=1 usage: no usage object"),
    },
    "delta_text_field": {
        "n.stream": ("fail", "choice 0: expected an answer containing 'paris', got no "
                     "delta.content text"),
        "json_mode.json_schema_stream": ("fail", "the answer has no content text at all"),
    },
    "stream_no_finish_reason": {
        "n.stream": ("fail", "choice 0 ended with finish_reason None, expected exactly one "
                     "'stop'"),
    },
    # n.stream reads each choice's first delta: without any role, choice 0 already fails.
    "no_role_chunk": {
        "n.stream": ("fail", "choice 0's first delta has no role, expected role 'assistant'"),
    },
    "errors_as_html": {
        "vision.invalid_image": ("fail", "an undecodable image: HTTP 400 with a non-JSON body"),
    },
    "error_in_200": {
        "vision.invalid_image": ("fail", "an undecodable image: error reported inside HTTP 200"),
    },
    # n
    "ignore_n": {
        "n.choices": ("fail", "n=2 ignored: 1 choice(s) returned, expected 2"),
        "n.usage": ("skip", "n=2 returned 1 choice (see n.choices)"),
        "n.stream": ("fail", "n=2 ignored when streaming: only choice 0 was streamed"),
    },
    "stream_choice_index_zero": {
        "n.stream": ("fail", "all 2 choices were streamed under index 0"),
    },
    "n_stream_role_first_only": {
        "n.stream": ("fail", "choice 1's first delta has no role, expected role 'assistant'"),
    },
    "usage_first_choice_only": {
        "n.usage": ("fail", "usage.completion_tokens is 19, but the 2 answers"),
    },
    # vision
    "strip_images": {
        "vision.data_url": ("fail", "the data-URL image did not reach the model"),
        "vision.image_url": ("fail", "the image URL did not reach the model"),
        "vision.detail": ("fail", "the image with detail 'high' did not reach the model"),
        "vision.multiple_images": ("fail", "neither image reached the model"),
        "vision.invalid_image": ("fail", "an undecodable image was accepted: HTTP 200"),
    },
    "first_image_only": {
        "vision.multiple_images": ("fail", "only 1 of 2 images reached the model (saw red)"),
    },
    "drop_url_images": {
        "vision.image_url": ("fail", "the image URL did not reach the model"),
    },
    "detail_images_dropped": {
        "vision.detail": ("fail", "the image with detail 'high' did not reach the model"),
    },
    "invalid_image_500": {
        "vision.invalid_image": ("fail", "server error instead of a client error"),
    },
    # json_mode
    "ignore_response_format": {
        "json_mode.json_object": ("fail", "response_format json_object ignored: the content is "
                                  "not valid JSON"),
        "json_mode.json_schema": ("fail", "response_format json_schema ignored"),
        "json_mode.json_schema_stream": ("fail", "response_format json_schema ignored"),
    },
    "ignore_response_format_stream": {
        "json_mode.json_schema_stream": ("fail", "response_format json_schema ignored"),
    },
    "json_schema_as_json_object": {
        "json_mode.json_schema": ("fail", "does not match the schema at $: 'continent' is a "
                                  "required property"),
        "json_mode.json_schema_stream": ("fail", "does not match the schema"),
    },
    "json_fenced": {
        "json_mode.json_object": ("fail", "wrapped in a Markdown code fence"),
        "json_mode.json_schema": ("fail", "wrapped in a Markdown code fence"),
        "json_mode.json_schema_stream": ("fail", "wrapped in a Markdown code fence"),
    },
}
