"""errors: invalid requests are refused with a 4xx status and the OpenAI error envelope
``{"error": {"message", "type", "param", "code"}}`` (ErrorResponse, Error).  No request here
can produce a completion, so the family costs no tokens on a conforming provider.
"""

from __future__ import annotations

from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import expect_client_error, expect_schema, snippet
from conformance.checks.registry import check

#: A model id no provider serves.
UNKNOWN_MODEL = "conformance-no-such-model-4f1c"


def _passed(envelope: dict[str, object], status: int | None) -> str:
    return f"HTTP {status}: {snippet(str(envelope.get('message')), 70)}"


@check(
    "errors.malformed_json",
    severity="degrades",
    title="A body that is not JSON is refused with 400",
    spec="ErrorResponse (invalid_request_error)",
    proves="A truncated JSON body is answered 400 (or 422) with a JSON error envelope, not "
    "with a 5xx, an HTML page or a 200.",
)
async def malformed_json(ctx: CheckContext) -> str:
    exchange = await ctx.request(
        "POST", "/chat/completions", content=b'{"model": "x", "messages": [',
        headers={"content-type": "application/json"},
    )
    return _passed(expect_client_error(exchange, "malformed JSON body"), exchange.status)


@check(
    "errors.missing_messages",
    severity="degrades",
    title="A request without messages is refused with 400",
    spec="CreateChatCompletionRequest.required: [model, messages]",
    proves="Omitting the required messages field is a 400 invalid_request_error with an "
    "envelope, not a completion and not a server error.",
)
async def missing_messages(ctx: CheckContext) -> str:
    exchange = await ctx.request("POST", "/chat/completions", json_body={"model": ctx.model},
                                 share=True)
    return _passed(expect_client_error(exchange, "request without messages"), exchange.status)


@check(
    "errors.invalid_role",
    severity="degrades",
    title="An unknown message role is refused with 400",
    spec="ChatCompletionRequestMessage (role ∈ developer, system, user, assistant, tool, function)",
    proves="A message with role 'wizard' is refused with 400 and an envelope instead of being "
    "silently treated as a user message.",
)
async def invalid_role(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=[{"role": "wizard", "content": "Hello"}], max_tokens=1)
    return _passed(expect_client_error(exchange, "role 'wizard'"), exchange.status)


@check(
    "errors.wrong_type",
    severity="degrades",
    title="A field of the wrong type is refused with 400",
    spec="CreateChatCompletionRequest.messages (array)",
    proves="messages given as a plain string instead of an array is refused with 400 and an "
    "envelope instead of being coerced.",
)
async def wrong_type(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages="Hello", max_tokens=1)
    return _passed(expect_client_error(exchange, "messages as a string"), exchange.status)


@check(
    "errors.temperature_range",
    severity="degrades",
    title="An out-of-range temperature is refused with 400",
    spec="CreateChatCompletionRequest.temperature (0 ≤ x ≤ 2)",
    proves="temperature 5 (the spec allows 0 to 2) is refused with 400 and an envelope instead "
    "of being clamped or passed on.",
)
async def temperature_range(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=1, temperature=5)
    return _passed(expect_client_error(exchange, "temperature 5"), exchange.status)


@check(
    "errors.unknown_model",
    severity="degrades",
    title="An unknown model is refused with 404 (or 400)",
    spec="POST /chat/completions: model_not_found (OpenAI answers 404)",
    proves="A model id that does not exist is answered 404 (400/403 accepted) with an "
    "envelope — not a 5xx that clients retry, and not a completion from another model.",
)
async def unknown_model(ctx: CheckContext) -> str:
    exchange = await ctx.request(
        "POST", "/chat/completions",
        json_body={"model": UNKNOWN_MODEL, "messages": prompts.CAPITAL, "max_tokens": 1},
    )
    envelope = expect_client_error(exchange, f"unknown model {UNKNOWN_MODEL!r}",
                                   statuses=(404, 400, 403))
    return _passed(envelope, exchange.status)


@check(
    "errors.envelope_schema",
    severity="cosmetic",
    title="Error envelopes carry message, type, param and code",
    spec="ErrorResponse → Error (required: type, message, param, code; param/code nullable)",
    proves="The error for a request without messages validates against the OpenAI Error "
    "schema: message and type strings, param and code present (null allowed).",
)
async def envelope_schema(ctx: CheckContext) -> str:
    exchange = await ctx.request("POST", "/chat/completions", json_body={"model": ctx.model},
                                 share=True)
    envelope = expect_client_error(exchange, "request without messages")
    expect_schema("error", exchange.json, "the error envelope", strict=True)
    return f"type {envelope.get('type')!r}, param {envelope.get('param')!r}, " \
           f"code {envelope.get('code')!r}"
