"""errors: invalid requests are refused with a 4xx status and the OpenAI error envelope
``{"error": {"message", "type", "param", "code"}}`` (ErrorResponse, Error).  No request here
can produce a completion, so the family costs no tokens on a conforming provider.

The ``errors.code_*`` checks judge what an envelope *says*, not only its shape: clients branch
on ``type`` and ``code`` (fall back to another model on ``model_not_found``, ask for a new key
on ``invalid_api_key`` rather than for a top-up on ``insufficient_quota``) and point users at
``param``.  They read the envelopes that ``errors.unknown_model``, ``errors.missing_messages``
and ``auth.wrong_key`` provoke (the identical requests, sent once), so they cost no request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from conformance.checks import auth, prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    check_key_refused,
    check_rate_limited,
    describe,
    error_envelope,
    expect_client_error,
    expect_schema,
    snippet,
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable
from conformance.exchange import Exchange

#: A model id no provider serves.
UNKNOWN_MODEL = "conformance-no-such-model-4f1c"


@dataclass(frozen=True)
class Documented:
    """The ``type``, ``code`` and ``param`` an error for one situation may carry."""

    situation: str
    types: tuple[str, ...]
    #: ``None``: any code that names the error (a word, not a number) or null.
    codes: tuple[str, ...] | None
    #: Besides null.  A param such as ``messages[0].role`` counts by its root, ``messages``.
    params: tuple[str, ...]
    source: str


#: What OpenAI answers, plus what the relays' own docs document (51API, API易, the sk-relay
#: relay and EZmodel; their tables list 400 invalid_request_error, 401 invalid_api_key,
#: 401 insufficient_quota, 429 rate_limit_exceeded).  Anything else is missed by clients that
#: branch on these values.
DOCUMENTED: Mapping[str, Documented] = MappingProxyType({
    "unknown_model": Documented(
        "an unknown model", ("invalid_request_error",), ("model_not_found",), ("model",),
        "OpenAI: 404 {type: invalid_request_error, code: model_not_found, param: null}; "
        "the 51API and API易 docs (API易's with param 'model')"),
    "wrong_key": Documented(
        "a wrong API key", ("invalid_request_error", "authentication_error"),
        ("invalid_api_key",), ("authorization",),
        "OpenAI: 401 {type: invalid_request_error, code: invalid_api_key, param: null}; the "
        "EZmodel docs (param 'authorization'); the sk-relay docs give type authentication_error"),
    "missing_messages": Documented(
        "a request without messages", ("invalid_request_error",), None, ("messages",),
        "OpenAI: 400 {type: invalid_request_error, param: messages, code: "
        "missing_required_parameter}; the 51API, API易 and EZmodel docs: 400 "
        "invalid_request_error"),
})

_NO_VALUE = ("", "none", "null", "undefined")


def _passed(envelope: dict[str, object], status: int | None) -> str:
    return f"HTTP {status}: {snippet(str(envelope.get('message')), 70)}"


def _alternatives(values: tuple[str, ...]) -> str:
    return " or ".join(repr(v) for v in values)


def type_problem(error: dict[str, Any], doc: Documented) -> str | None:
    """Why ``error['type']`` is not a type documented for ``doc``'s situation, or None."""
    value = error.get("type")
    if value in doc.types:
        return None
    got = ("no type" if "type" not in error
           else f"type {value!r}" if isinstance(value, str) else f"type {snippet(value, 40)}")
    return f"{got}; OpenAI's type for {doc.situation} is {_alternatives(doc.types[:1])}" + (
        f" ({_alternatives(doc.types[1:])} is documented by a relay)" if doc.types[1:] else "")


def code_problem(error: dict[str, Any], status: int | None, doc: Documented) -> str | None:
    """Why ``error['code']`` is not a documented code, or None: a number or the HTTP status
    as a string, the string "None", or (where one code is documented) another code."""
    value = error.get("code")
    expected = (f"OpenAI's code for {doc.situation} is {_alternatives(doc.codes)}" if doc.codes
                else "Error.code is a string naming the error, or null")
    if isinstance(value, bool) or (value is not None and not isinstance(value, (str, int,
                                                                               float))):
        return f"code {snippet(value, 40)} is not a string; {expected}"
    if isinstance(value, (int, float)):
        what = "the HTTP status as a number" if value == status else "a number"
        return f"code {value!r} is {what}; {expected}"
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        what = ("the HTTP status as a string" if int(value) == status
                else "a number as a string")
        return f"code {value!r} is {what}; {expected}"
    if isinstance(value, str) and value.strip().lower() in _NO_VALUE:
        return f"code is the string {value!r} (no code is JSON null); {expected}"
    if doc.codes is None or value in doc.codes:
        return None
    got = "no code" if "code" not in error else f"code {value!r}"
    return f"{got}; {expected}"


def param_problem(error: dict[str, Any], doc: Documented) -> str | None:
    """Why ``error['param']`` is neither null nor the parameter at fault, or None."""
    value = error.get("param")
    if value is None:
        return None
    expected = f"expected null or {_alternatives(doc.params)}"
    if not isinstance(value, str):
        return f"param {snippet(value, 40)} is not a string; {expected}"
    if value.strip().lower() in _NO_VALUE:
        return f"param is the string {value!r} (a param that does not apply is JSON null)"
    if re.split(r"[.\[]", value, maxsplit=1)[0] in doc.params:
        return None
    return f"param {value!r} is not the parameter at fault; {expected}"


def semantics_problems(error: dict[str, Any], status: int | None,
                       doc: Documented) -> list[str]:
    """Everything wrong with the type, code and param of one error envelope."""
    found = (type_problem(error, doc), code_problem(error, status, doc),
             param_problem(error, doc))
    return [problem for problem in found if problem]


def judge_semantics(exchange: Exchange, doc: Documented, see: str) -> str:
    """Judge the envelope of ``exchange`` against ``doc``.  No envelope (an accepted request,
    an HTML page) is ``skip``: ``see`` judges that.  A 401/403 to a request sent with the
    configured key, and a 429, are about the key or the pace, not the request (``error``)."""
    status = exchange.status
    check_key_refused(exchange, f"the error for {doc.situation} says nothing")
    check_rate_limited(exchange)
    error = error_envelope(exchange)
    if error is None:
        what = "accepted" if exchange.ok else "answered without an error envelope"
        raise NotApplicable(f"{doc.situation} was {what}, so there is no type or code to read "
                            f"(see {see}): {describe(exchange)}")
    problems = semantics_problems(error, status, doc)
    if problems:
        raise Failure("; ".join(problems))
    return (f"HTTP {status}: type {error.get('type')!r}, code {error.get('code')!r}, "
            f"param {error.get('param')!r}")


async def _without_messages(ctx: CheckContext) -> Exchange:
    """The request without messages (shared by every check that reads its error)."""
    return await ctx.request("POST", "/chat/completions", json_body={"model": ctx.model},
                             share=True)


async def _unknown_model(ctx: CheckContext) -> Exchange:
    """The request for :data:`UNKNOWN_MODEL` (shared by every check that reads its error)."""
    return await ctx.request(
        "POST", "/chat/completions",
        json_body={"model": UNKNOWN_MODEL, "messages": prompts.CAPITAL, "max_tokens": 1},
        share=True,
    )


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
    "errors.array_body",
    severity="degrades",
    title="A JSON array as the body is refused with 400",
    spec="POST /chat/completions requestBody: CreateChatCompletionRequest (an object)",
    proves="A body that is a JSON array holding one valid request is refused with 400 (or "
    "422) and an envelope — not a 5xx from a handler that expected an object, and not "
    "answered as if it were the request inside.",
)
async def array_body(ctx: CheckContext) -> str:
    request = {"model": ctx.model, "messages": prompts.CAPITAL, "max_tokens": 1}
    exchange = await ctx.request("POST", "/chat/completions", json_body=[request])
    return _passed(expect_client_error(exchange, "a JSON array as the body"), exchange.status)


@check(
    "errors.missing_messages",
    severity="degrades",
    title="A request without messages is refused with 400",
    spec="CreateChatCompletionRequest.required: [model, messages]",
    proves="Omitting the required messages field is a 400 invalid_request_error with an "
    "envelope, not a completion and not a server error.",
)
async def missing_messages(ctx: CheckContext) -> str:
    exchange = await _without_messages(ctx)
    return _passed(expect_client_error(exchange, "request without messages"), exchange.status)


@check(
    "errors.empty_messages",
    severity="degrades",
    title="An empty messages array is refused with 400",
    spec="CreateChatCompletionRequest.messages (minItems: 1)",
    proves="messages: [] is refused with 400 (or 422) and an envelope — not passed on to a "
    "model that answers nothing in particular, and not a 5xx.",
)
async def empty_messages(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=[], max_tokens=1)
    return _passed(expect_client_error(exchange, "messages: []"), exchange.status)


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
    "errors.temperature_type",
    severity="degrades",
    title="A temperature of the wrong type is refused with 400",
    spec="CreateChatCompletionRequest.temperature (number or null)",
    proves="temperature 'hot' (a string where the spec wants a number) is refused with 400 "
    "and an envelope — not dropped or defaulted so that the request is answered anyway, and "
    "not a 5xx.",
)
async def temperature_type(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=1, temperature="hot")
    return _passed(expect_client_error(exchange, "temperature 'hot'"), exchange.status)


@check(
    "errors.unknown_model",
    severity="degrades",
    title="An unknown model is refused with 404 (or 400)",
    spec="POST /chat/completions: model_not_found (OpenAI answers 404)",
    proves="A model id that does not exist is answered 404 (400/403 accepted) with an "
    "envelope — not a 5xx that clients retry, and not a completion from another model.",
)
async def unknown_model(ctx: CheckContext) -> str:
    exchange = await _unknown_model(ctx)
    envelope = expect_client_error(exchange, f"unknown model {UNKNOWN_MODEL!r}",
                                   statuses=(404, 400, 403), configured_model=False)
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
    exchange = await _without_messages(ctx)
    envelope = expect_client_error(exchange, "request without messages")
    expect_schema("error", exchange.json, "the error envelope", strict=True)
    return f"type {envelope.get('type')!r}, param {envelope.get('param')!r}, " \
           f"code {envelope.get('code')!r}"


@check(
    "errors.code_unknown_model",
    severity="degrades",
    title="An unknown model is reported as model_not_found",
    spec="Error.type/code: invalid_request_error, model_not_found (OpenAI; the 51API and "
    "API易 docs)",
    proves="The error for an unknown model (errors.unknown_model's request) has type "
    "invalid_request_error, code model_not_found and param null or 'model' — not the HTTP "
    "status as the code, a renamed type or the string 'None'.  Degrades: clients fall back "
    "to another model on model_not_found, and tell it from an outage by it.",
)
async def code_unknown_model(ctx: CheckContext) -> str:
    return judge_semantics(await _unknown_model(ctx), DOCUMENTED["unknown_model"],
                           "errors.unknown_model")


@check(
    "errors.code_wrong_key",
    severity="degrades",
    title="A wrong API key is reported as invalid_api_key",
    spec="Error.type/code: invalid_request_error, invalid_api_key (OpenAI; the EZmodel docs)",
    proves="The error for a wrong key (auth.wrong_key's request) has code invalid_api_key, "
    "type invalid_request_error (or authentication_error, which a relay documents) and param "
    "null (or 'authorization').  Degrades: relays answer a wrong key and an exhausted quota "
    "both with 401 (the EZmodel docs), so only the code tells a client to ask for a new key.",
)
async def code_wrong_key(ctx: CheckContext) -> str:
    auth.require_key(ctx)
    return judge_semantics(await auth.attempt(ctx, auth.WRONG_KEY), DOCUMENTED["wrong_key"],
                           "auth.wrong_key")


@check(
    "errors.code_invalid_request",
    severity="cosmetic",
    title="An invalid request is typed invalid_request_error with a real param",
    spec="Error.type invalid_request_error; Error.code string or null; Error.param (OpenAI; "
    "the 51API, API易 and EZmodel docs)",
    proves="The error for a request without messages (errors.missing_messages' request) has "
    "type invalid_request_error, a code that names the error or null (never the HTTP status), "
    "and param null or 'messages' (never the string 'None').  Cosmetic: the 400 status "
    "already tells clients the request is at fault; type, code and param refine the message.",
)
async def code_invalid_request(ctx: CheckContext) -> str:
    return judge_semantics(await _without_messages(ctx), DOCUMENTED["missing_messages"],
                           "errors.missing_messages")
