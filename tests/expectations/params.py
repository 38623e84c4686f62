"""Expectations for the params family, streaming.matches_nonstream and the sdk family; and the
effects of the params and sdk faults on the other families."""

from __future__ import annotations

from tests.expectations import Expect

_500 = "expected HTTP 200, got HTTP 500"
_NO_EXCEPTION = "the openai SDK raised no exception"

#: fault → {check id: (outcome, fragment of the message)}; every other check must pass.
EXPECTED: dict[str, Expect] = {
    # -- faults of these families ------------------------------------------------------------
    "model_substitution": {
        "params.model_echo": ("fail", "model substitution? 'ref-1' was requested but the "
                              "completion says 'ref-mini'"),
    },
    "seed_ignored": {
        "params.seed": ("fail", "seed ignored or sampling nondeterministic"),
    },
    "ignore_logprobs": {
        "params.logprobs": ("fail", "logprobs: true ignored"),
    },
    "logprobs_tokens_mismatch": {
        "params.logprobs": ("fail", "logprobs tokens do not concatenate to the content"),
    },
    "ignore_logit_bias": {
        "params.logit_bias": ("fail", "logit_bias {1000: 100} ignored"),
        "params.logit_bias_ban": ("skip", "the +100 probe did not reveal"),
    },
    "logit_bias_positive_only": {
        "params.logit_bias_ban": ("fail", "logit_bias {1000: -100} ignored: token ' tok1000' "
                                  "is still generated"),
    },
    "temperature_limit_off": {
        "params.temperature_bounds": ("fail", "temperature 2.5 was accepted"),
    },
    "reject_developer_role": {
        "params.developer_role": ("unsupported", "the developer role declined: HTTP 400"),
    },
    "sampling_params_500": {
        "params.top_p": ("fail", _500),
        "params.penalties": ("fail", _500),
    },
    "user_500": {
        "params.user": ("fail", _500),
    },
    "name_500": {
        "params.message_name": ("fail", _500),
    },
    "reasoning_effort_500": {
        "params.reasoning_effort": ("fail", _500),
    },
    "unknown_param_500": {
        "params.unknown_parameter": ("fail", "server error instead of a client error"),
    },
    "stream_options_500": {
        "params.stream_options_without_stream": ("fail", "server error instead of a client "
                                                 "error"),
    },
    # Also caught by the n and json_mode families' streamed checks.
    "stream_drops_first_content": {
        "streaming.matches_nonstream": ("fail", "the streamed answer (empty) lacks 'paris'"),
        "n.stream": ("fail", "choice 0"),
        "json_mode.json_schema_stream": ("fail", "json_schema"),
    },
    "sse_invalid_utf8": {
        "sdk.stream": ("fail", "the openai SDK cannot parse the stream: UnicodeDecodeError"),
    },
    # Only the SDK's requests carry the headers; 400 is a sensible status for the unknown model
    # and the malformed request, and the simulated rate limit is then never reached.
    "sdk_headers_rejected": {
        "sdk.completion": ("fail", "expected HTTP 200, got HTTP 400"),
        "sdk.stream": ("fail", "expected HTTP 200, got HTTP 400"),
        "sdk.models": ("fail", "GET /models: the openai SDK raised openai.BadRequestError"),
        "sdk.auth_error": ("fail", "HTTP 400 → openai.BadRequestError; expected HTTP 401"),
        "sdk.rate_limit": ("skip", "no 429 seen in this run"),
    },
    "wrong_key_403": {
        "auth.wrong_key": ("fail", "expected HTTP 401, got HTTP 403"),
        "sdk.auth_error": ("fail", "HTTP 403 → openai.PermissionDeniedError; expected HTTP 401 "
                           "→ openai.AuthenticationError"),
    },
    "rate_limit_500": {
        "sdk.rate_limit": ("fail", "rate limiting answered HTTP 500 instead of 429, so the "
                           "openai SDK raises openai.InternalServerError"),
    },
    # -- the foundation's faults, seen by these families --------------------------------------
    "accept_any_key": {
        "sdk.auth_error": ("fail", _NO_EXCEPTION),
    },
    "no_auth": {
        "sdk.auth_error": ("fail", _NO_EXCEPTION),
    },
    "accept_wrong_types": {
        "sdk.bad_request": ("fail", _NO_EXCEPTION),
    },
    "unknown_model_503": {
        "sdk.not_found": ("fail", "HTTP 503 → openai.InternalServerError"),
    },
    "error_in_200": {
        "params.temperature_bounds": ("fail", "temperature 2.5: error reported inside HTTP 200"),
        "params.unknown_parameter": ("fail", "error reported inside HTTP 200"),
        "params.stream_options_without_stream": ("fail", "error reported inside HTTP 200"),
        "sdk.auth_error": ("fail", _NO_EXCEPTION),
        "sdk.not_found": ("fail", _NO_EXCEPTION),
        "sdk.bad_request": ("fail", _NO_EXCEPTION),
        "sdk.rate_limit": ("fail", "rate limiting answered HTTP 200 instead of 429"),
    },
    "errors_as_html": {
        "params.temperature_bounds": ("fail", "temperature 2.5: HTTP 400 with a non-JSON body"),
        "params.unknown_parameter": ("fail", "with a non-JSON body"),
        "params.stream_options_without_stream": ("fail", "with a non-JSON body"),
    },
    "temperature_unchecked": {
        "params.temperature_bounds": ("fail", "temperature 2.5 was accepted"),
    },
    "drop_system": {
        "params.developer_role": ("fail", "developer message ignored"),
    },
    "last_message_only": {
        "params.developer_role": ("fail", "developer message ignored"),
    },
    "models_wrong_shape": {
        "sdk.models": ("fail", "the openai SDK cannot parse the model list"),
    },
    "stream_no_finish_reason": {
        "streaming.matches_nonstream": ("fail", "the stream never sends a finish_reason"),
    },
    "delta_text_field": {
        "streaming.matches_nonstream": ("fail", "the streamed answer (empty) lacks 'paris'"),
        "sdk.stream": ("fail", "carry no delta.content"),
    },
}
