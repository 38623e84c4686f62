"""responses_api: OpenAI's Responses API, ``POST /v1/responses`` (and ``GET /v1/responses/{id}``).

What the SDK's ``client.responses.create()``, agents and Codex-style clients (``wire_api =
"responses"``) call; API易 (seed 001) documents it next to chat completions.  The contract is
the official spec (``createResponse``: ``CreateResponse`` → ``Response`` or a stream of
``ResponseStreamEvent``s; ``getResponse``), whose schemas the checks validate against
(``schemas/Response.schema.json``, ``schemas/ResponseStreamEvent.schema.json``).  The gateway
behaviours the seed relays' docs describe are judged by what a client sees: a default
``instructions`` added or put in place of the user's, ``stream: false`` answered as a stream,
``reasoning.effort`` forced, ``previous_response_id`` silently ignored.

One shared probe first (as for messages_api): a provider without the route is sent one request
and every check reads ``unsupported``.  Set the model with ``models: {responses_api: M}``.
Streamed checks are in :mod:`conformance.checks.responses_stream`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from conformance import jsontext
from conformance.checks import prompts
from conformance.checks.auth import WRONG_KEY, expect_refused, require_key
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    arr,
    check_key_refused,
    check_rate_limited,
    describe,
    error_envelope,
    expect_client_error,
    expect_schema,
    is_decline,
    obj,
    raise_for_status,
    snippet,
    unreached,
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable, Unsupported
from conformance.exchange import Auth, Exchange
from conformance.validation import Violation, violations

PATH = "/responses"
ROUTE = f"POST {PATH}"
DOCS = "OpenAI API reference, Responses"
FEATURE = "the Responses API"
#: OpenAI's minimum max_output_tokens; room for a one-word answer.
SHORT = 16
#: Room for one function call (or a one-sentence answer).
TOOL_CAP = 64
CITY_PARAMS: dict[str, Any] = {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
}
WEATHER = "get_weather"
TIME = "get_time"
#: Responses function tools are flat (no ``function`` wrapper) and strict unless told not to
#: be (strict schemas need additionalProperties false: more tokens on every request).
WEATHER_TOOL: dict[str, Any] = {"type": "function", "name": WEATHER, "parameters": CITY_PARAMS,
                                "strict": False}
TIME_TOOL: dict[str, Any] = {"type": "function", "name": TIME, "strict": False,
                             "parameters": {"type": "object", "properties": {}}}
ONE_CITY = "What is the weather in Paris? Use the tool."
HELLO = "Say hello."
CALL_ID = "call00001"
TOOL_RESULT = '{"temperature_c": 23}'
TOOL_RESULT_VALUE = "23"
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
    "additionalProperties": False,
}
_CITY_VALIDATOR = Draft202012Validator(CITY_PARAMS)
_ANSWER_VALIDATOR = Draft202012Validator(ANSWER_SCHEMA)


def text_of(prompt: list[dict[str, Any]]) -> str:
    """The text of a one-message prompt of :mod:`prompts` (a string ``input``)."""
    return str(prompt[-1]["content"])


async def post(ctx: CheckContext, *, stream: bool | None = None, auth: Auth = "key",
               share: bool = False, **fields: Any) -> Exchange:
    """POST /responses with the check's model and the provider's ``temperature`` default;
    ``stream`` True or False is sent as the field (None: not sent), True reads a stream."""
    body: dict[str, Any] = {"model": ctx.model}
    temperature = ctx.provider.request_defaults.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        body["temperature"] = temperature
    body.update(fields)
    if stream is not None:
        body["stream"] = stream
    return await ctx.request("POST", PATH, json_body=body, auth=auth, stream=stream is True,
                             share=share)


def _foreign(exchange: Exchange) -> str | None:
    """A 404 that names the model came from a backend that serves the route."""
    envelope = error_envelope(exchange)
    if envelope is not None and (envelope.get("code") == "model_not_found"
                                 or envelope.get("param") == "model"):
        return f"an error about the model ({snippet(envelope.get('message'), 60)})"
    return None


def raise_route(exchange: Exchange) -> None:
    """:func:`raise_for_status` for the optional route (a 404/405 means not offered)."""
    raise_for_status(exchange, FEATURE, route=ROUTE, foreign=_foreign)


def without_nulls(value: Any, depth: int = 0) -> Any:
    """``value`` with every object member whose value is null removed: null is read as absent
    (the SDKs read both alike; the API itself sends ``usage: null`` while a response is in
    progress, relays such as LiteLLM ``namespace: null``), so an optional field sent as null
    passes and a required one whose schema admits null passes as absent (``absent_as_null``),
    while a required non-nullable field sent as null still fails as missing.  Beyond 64
    levels the value is kept as it is."""
    if depth > 64:
        return value
    if isinstance(value, dict):
        return {k: without_nulls(v, depth + 1) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v, depth + 1) for v in value]
    return value


def schema_problems(name: str, instance: Any) -> list[Violation]:
    """Violations of ``name`` ("response"), null read as absent (:func:`without_nulls`)."""
    return violations(name, without_nulls(instance), absent_as_null=True)


def expect_response(exchange: Exchange, what: str = "the answer") -> dict[str, Any]:
    """The ``Response`` object of a successful non-streamed answer, or the verdict."""
    raise_route(exchange)
    if exchange.events is not None or exchange.content_type == "text/event-stream" or (
            exchange.json is None and exchange.text.lstrip().startswith(("event:", "data:"))):
        raise Failure(f"{what} is an event stream (Content-Type "
                      f"{exchange.content_type or 'missing'!r}), not one JSON Response object, "
                      "though the request did not ask for a stream")
    body = exchange.json
    if not isinstance(body, dict):
        raise Failure(f"HTTP {exchange.status} but {what} is not a JSON object"
                      f"{exchange.json_reason}: {describe(exchange)}")
    if "choices" in body or body.get("object") == "chat.completion":
        raise Failure(f"{what} is an OpenAI chat.completion (choices[]), not a Response object: "
                      f"{snippet(body, 100)}")
    if "error" in body and body.get("object") != "response":
        raise Failure(f"error reported inside HTTP {exchange.status}: {snippet(body)}")
    found = schema_problems("response", body)
    if found:
        raise Failure(f"{what} is not a valid Response at {found[0]}")
    return body


def output_text(body: Mapping[str, Any]) -> str:
    """The concatenated ``output_text`` parts of the Response's message items."""
    return "".join(part["text"] for item in arr(body.get("output"))
                   if isinstance(item, dict) and item.get("type") == "message"
                   for part in arr(item.get("content"))
                   if isinstance(part, dict) and part.get("type") == "output_text"
                   and isinstance(part.get("text"), str))


def function_calls(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [i for i in arr(body.get("output")) if isinstance(i, dict)
            and i.get("type") == "function_call"]


def expect_arguments(arguments: Any, where: str) -> dict[str, Any]:
    """``arguments``: a string of JSON valid against the tool's parameters (FunctionToolCall)."""
    if not isinstance(arguments, str):
        raise Failure(f"{where}: arguments is {type(arguments).__name__}, expected a string of "
                      f"JSON: {snippet(arguments, 60)}")
    try:
        value = jsontext.loads(arguments)
    except ValueError:
        raise Failure(f"{where}: arguments is not JSON{jsontext.reason(arguments)}: "
                      f"{snippet(arguments, 60)}") from None
    problems = sorted(_CITY_VALIDATOR.iter_errors(value), key=lambda e: list(e.path))
    if problems:
        raise Failure(f"{where}: arguments do not match the tool's schema: "
                      f"{problems[0].message}")
    return dict(value)


# --------------------------------------------------------------------------- the probe


async def probe(ctx: CheckContext) -> dict[str, Any]:
    """A string ``input`` with max_output_tokens, shared by every check of the family: its
    verdict decides whether the route is offered at all."""
    exchange = await post(ctx, input=text_of(prompts.CAPITAL), max_output_tokens=SHORT,
                          share=True)
    return expect_response(exchange)


async def offered(ctx: CheckContext) -> None:
    """Stop with ``unsupported`` (or the probe's failure, as not applicable) unless the route
    answered the probe with a Response."""
    try:
        await probe(ctx)
    except Failure as exc:
        raise NotApplicable(f"the basic request failed (see responses_api.response): {exc}") \
            from None


async def answer(ctx: CheckContext, *, share: bool = False, **fields: Any) -> dict[str, Any]:
    await offered(ctx)
    return expect_response(await post(ctx, share=share, **fields))


async def _control(ctx: CheckContext, expected: str) -> str:
    """The answer to the fact stated in the question itself (the control of
    :func:`~conformance.checks.expect.unreached`), sent only when a check's answer missed it."""
    return output_text(await answer(ctx, input=prompts.FACT_IN_QUESTION[expected],
                                    max_output_tokens=SHORT))


@check(
    "responses_api.response",
    severity="breaks-clients",
    title="POST /responses answers a string input with a Response",
    spec=f"{DOCS}: POST /v1/responses (input: string) → Response",
    proves="A string `input` is answered 200 with a Response object valid against the spec's "
    "schema: object 'response', status 'completed', an output message item whose "
    "output_text answers the question ('Paris'); not a chat.completion.",
)
async def response(ctx: CheckContext) -> str:
    body = await probe(ctx)
    text = output_text(body)
    if body.get("status") != "completed":
        raise Failure(f"status is {body.get('status')!r} for a complete one-word answer, "
                      "expected 'completed'")
    if prompts.CAPITAL_ANSWER not in text.lower():
        raise Failure(f"expected output_text containing {prompts.CAPITAL_ANSWER!r}, got "
                      f"{snippet(text, 80) if text else 'no output_text part'}")
    return f"{snippet(text, 40)} (model {body.get('model')}, status completed)"


@check(
    "responses_api.usage",
    severity="degrades",
    title="A Response's usage adds up",
    spec=f"{DOCS}: ResponseUsage (input_tokens, output_tokens, total_tokens)",
    proves="The Response carries usage with positive input_tokens and output_tokens whose sum "
    "is total_tokens, so bills computed from either agree.",
)
async def usage(ctx: CheckContext) -> str:
    await offered(ctx)
    counts = (await probe(ctx)).get("usage")
    if not isinstance(counts, dict):
        raise Failure(f"the Response has no usage object: {snippet(counts)}")
    numbers = [counts.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        raise Failure(f"usage input/output/total_tokens are not integers: {snippet(counts)}")
    given, made, total = (int(n or 0) for n in numbers)
    if given <= 0 or made <= 0:
        raise Failure(f"usage counts {given} input and {made} output tokens; both must be "
                      "positive")
    if given + made != total:
        raise Failure(f"usage.total_tokens is {total}, not input_tokens + output_tokens = "
                      f"{given + made}")
    return f"{given}+{made}={total} tokens"


@check(
    "responses_api.message_input",
    severity="breaks-clients",
    title="A message-array input keeps every turn",
    spec=f"{DOCS}: input (array of input messages: role user/assistant, content)",
    proves="An `input` array of user and assistant messages reaches the model whole: a number "
    "given in the first user turn is recalled in the answer to the last. An answer without it "
    "is a fail only when the same fact stated in the question itself is answered (the control, "
    "sent only then); otherwise the check is inconclusive.",
)
async def message_input(ctx: CheckContext) -> str:
    body = await answer(ctx, input=[{"role": m["role"], "content": m["content"]}
                                    for m in prompts.MULTI_TURN], max_output_tokens=SHORT)
    text = output_text(body)
    if prompts.MULTI_TURN_ANSWER not in text:
        missed = (f"the earlier turns did not reach the model: asked for the number given in "
                  f"the first turn ({prompts.MULTI_TURN_ANSWER}), got {snippet(text, 80)}")
        raise await unreached(missed, prompts.MULTI_TURN_ANSWER,
                              _control(ctx, prompts.MULTI_TURN_ANSWER))
    return f"answer: {snippet(text, 40)}"


@check(
    "responses_api.instructions",
    severity="breaks-clients",
    title="instructions reach the model, unchanged",
    spec=f"{DOCS}: instructions (a system or developer message inserted into the model's "
    "context); Response.instructions",
    proves="A fact given only in `instructions` is used in the answer, and the Response echoes "
    "the instructions as sent: a gateway that replaces them with its default prompt, or puts "
    "its own before them, is caught. An answer without the fact is a fail only when the same "
    "fact stated in the question itself is answered (the control, sent only then); otherwise "
    "the check is inconclusive.",
)
async def instructions(ctx: CheckContext) -> str:
    instruction, question = prompts.SECRET_SYSTEM
    sent = instruction["content"]
    body = await answer(ctx, instructions=sent, input=question["content"],
                        max_output_tokens=SHORT)
    text = output_text(body)
    if prompts.SECRET_SYSTEM_ANSWER not in text.lower():
        missed = (f"the instructions did not reach the model (replaced?): asked for the secret "
                  f"word they give, got {snippet(text, 80) if text else 'no text'}")
        raise await unreached(missed, prompts.SECRET_SYSTEM_ANSWER,
                              _control(ctx, prompts.SECRET_SYSTEM_ANSWER))
    echoed = body.get("instructions")
    if echoed != sent:
        raise Failure(f"Response.instructions is {snippet(echoed, 80)}, not the instructions "
                      f"sent ({sent!r}): the gateway added or replaced instructions")
    return f"answer: {snippet(text, 40)}, instructions echoed"


@check(
    "responses_api.stream_false",
    severity="breaks-clients",
    title="stream: false is answered with one JSON object",
    spec=f"{DOCS}: stream (\"If set to true, the model response data will be streamed\"); "
    "200 application/json → Response",
    proves="A request with `stream: false` is answered with one JSON Response object "
    "(application/json), not with server-sent events: a gateway that streams every request "
    "inside serves clients that did not ask for it a body they cannot parse.",
)
async def stream_false(ctx: CheckContext) -> str:
    body = await answer(ctx, input=text_of(prompts.CAPITAL), max_output_tokens=SHORT,
                        stream=False)
    return f"one Response object: {snippet(output_text(body), 40)}"


# --------------------------------------------------------------------------- function tools


async def _tool_answer(ctx: CheckContext) -> dict[str, Any]:
    """ONE_CITY with get_weather and tool_choice auto (shared: the control of tool_choice
    none)."""
    return await answer(ctx, input=ONE_CITY, tools=[WEATHER_TOOL], max_output_tokens=TOOL_CAP,
                        share=True)


@check(
    "responses_api.function_call",
    severity="breaks-clients",
    title="A function tool is called with a function_call item",
    spec=f"{DOCS}: tools (type function); FunctionToolCall (call_id, name, arguments)",
    proves="Asked for the weather in Paris with a get_weather function tool, the model answers "
    "with a function_call output item carrying a call_id, the tool's name and arguments that "
    "are a JSON string valid against the tool's parameters schema (city Paris).",
)
async def function_call(ctx: CheckContext) -> str:
    body = await _tool_answer(ctx)
    calls = function_calls(body)
    if not calls:
        raise Failure(f"no function_call item in the output (tools ignored?): "
                      f"{snippet(output_text(body), 80) or snippet(body.get('output'), 80)}")
    call = calls[0]
    if not isinstance(call.get("call_id"), str) or not call["call_id"]:
        raise Failure(f"the function_call has no call_id: {snippet(call, 100)}")
    if call.get("name") != WEATHER:
        raise Failure(f"the function_call names {call.get('name')!r}, expected {WEATHER!r}")
    args = expect_arguments(call.get("arguments"), "function_call")
    if "paris" not in str(args.get("city", "")).lower():
        raise Failure(f"function_call arguments {snippet(args)} do not name Paris")
    return f"{WEATHER}({call['arguments']}), call_id {snippet(call['call_id'], 30)}"


@check(
    "responses_api.tool_choice_required",
    severity="breaks-clients",
    title='tool_choice "required" forces a function call',
    spec=f"{DOCS}: tool_choice (ToolChoiceOptions 'required')",
    proves="'Say hello.' with get_weather and tool_choice 'required' is answered with a "
    "function_call item, though nothing in the prompt calls for the tool.",
)
async def tool_choice_required(ctx: CheckContext) -> str:
    body = await answer(ctx, input=HELLO, tools=[WEATHER_TOOL], tool_choice="required",
                        max_output_tokens=TOOL_CAP)
    calls = function_calls(body)
    if not calls:
        raise Failure(f"tool_choice 'required' ignored: no function_call, text "
                      f"{snippet(output_text(body), 60)}")
    return f"called {calls[0].get('name')}"


@check(
    "responses_api.tool_choice_named",
    severity="breaks-clients",
    title="A named tool_choice calls that function",
    spec=f"{DOCS}: tool_choice (ToolChoiceFunction: type function, name)",
    proves="With get_weather and get_time offered, a weather question and tool_choice "
    "{type: function, name: get_time} is answered with a call of get_time only.",
)
async def tool_choice_named(ctx: CheckContext) -> str:
    body = await answer(ctx, input=ONE_CITY, tools=[WEATHER_TOOL, TIME_TOOL],
                        tool_choice={"type": "function", "name": TIME},
                        max_output_tokens=TOOL_CAP)
    names = [c.get("name") for c in function_calls(body)]
    if names != [TIME] * len(names) or not names:
        raise Failure(f"tool_choice named {TIME!r} but the calls are {names or 'none'}")
    return f"called {', '.join(map(str, names))}"


@check(
    "responses_api.tool_choice_none",
    severity="breaks-clients",
    title='tool_choice "none" prevents function calls',
    spec=f"{DOCS}: tool_choice (ToolChoiceOptions 'none')",
    proves="The weather question that, with tool_choice auto (control), calls get_weather is "
    "answered in text without any function_call when tool_choice is 'none'.",
)
async def tool_choice_none(ctx: CheckContext) -> str:
    try:
        control = function_calls(await _tool_answer(ctx))
    except Failure as exc:
        raise NotApplicable(f"inconclusive: the control failed: {exc}") from None
    if not control:
        raise NotApplicable("inconclusive: with tool_choice auto the model made no call either")
    body = await answer(ctx, input=ONE_CITY, tools=[WEATHER_TOOL], tool_choice="none",
                        max_output_tokens=SHORT)
    calls = function_calls(body)
    if calls:
        raise Failure(f"tool_choice 'none' ignored: the answer calls {calls[0].get('name')}")
    return f"text answer: {snippet(output_text(body), 40)}"


@check(
    "responses_api.function_call_output",
    severity="breaks-clients",
    title="A function_call_output result is used in the answer",
    spec=f"{DOCS}: input items function_call and function_call_output (call_id, output)",
    proves="An input that replays a get_weather function_call and its function_call_output "
    f"({TOOL_RESULT}) is answered with the result: the answer gives {TOOL_RESULT_VALUE} "
    "degrees, a value the model cannot guess.",
)
async def function_call_output(ctx: CheckContext) -> str:
    body = await answer(ctx, tools=[WEATHER_TOOL], max_output_tokens=TOOL_CAP, input=[
        {"role": "user", "content": ONE_CITY},
        {"type": "function_call", "call_id": CALL_ID, "name": WEATHER,
         "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": CALL_ID, "output": TOOL_RESULT},
    ])
    text = output_text(body)
    if TOOL_RESULT_VALUE not in text:
        extra = " (it called the tool again)" if function_calls(body) else ""
        raise Failure(f"the function_call_output did not reach the model{extra}: expected "
                      f"{TOOL_RESULT_VALUE!r} in the answer, got {snippet(text, 80)}")
    return f"answer: {snippet(text, 50)}"


# --------------------------------------------------------------------------- output controls


@check(
    "responses_api.json_schema",
    severity="breaks-clients",
    title="text.format json_schema (strict) is honoured",
    spec=f"{DOCS}: text.format (TextResponseFormatJsonSchema: name, schema, strict)",
    proves="With text.format {type: json_schema, strict: true} and a one-field schema, the "
    "output_text is JSON valid against the schema, not prose.",
)
async def json_schema(ctx: CheckContext) -> str:
    body = await answer(ctx, input=text_of(prompts.CAPITAL), max_output_tokens=TOOL_CAP,
                        text={"format": {"type": "json_schema", "name": "answer",
                                         "strict": True, "schema": ANSWER_SCHEMA}})
    text = output_text(body)
    try:
        value = jsontext.loads(text)
    except ValueError:
        raise Failure(f"text.format json_schema ignored: output_text is not JSON"
                      f"{jsontext.reason(text)}: {snippet(text, 80)}") from None
    problems = list(_ANSWER_VALIDATOR.iter_errors(value))
    if problems:
        raise Failure(f"output_text does not match the schema: {problems[0].message}")
    return f"JSON: {snippet(text, 50)}"


@check(
    "responses_api.max_output_tokens",
    severity="breaks-clients",
    title="max_output_tokens ends the Response as incomplete",
    spec=f"{DOCS}: max_output_tokens; Response.status 'incomplete', incomplete_details.reason "
    "'max_output_tokens'",
    proves=f"A story request with max_output_tokens {SHORT} (the API's minimum) stops with "
    "status 'incomplete', incomplete_details.reason 'max_output_tokens' and "
    f"usage.output_tokens ≤ {SHORT}.",
)
async def max_output_tokens(ctx: CheckContext) -> str:
    body = await answer(ctx, input=text_of(prompts.STORY), max_output_tokens=SHORT)
    used = obj(body.get("usage")).get("output_tokens")
    status = body.get("status")
    reason = obj(body.get("incomplete_details")).get("reason")
    if status == "incomplete" and reason == "max_output_tokens":
        if isinstance(used, int) and used > SHORT:
            raise Failure(f"usage.output_tokens is {used}, more than max_output_tokens {SHORT}")
        return f"incomplete after {used} output tokens"
    if isinstance(used, int) and used > SHORT:
        raise Failure(f"max_output_tokens {SHORT} ignored: status {status!r} after {used} "
                      "output tokens")
    if status == "completed" and isinstance(used, int) and used < SHORT:
        raise NotApplicable(f"inconclusive: the story ended after {used} tokens")
    raise Failure(f"status {status!r}, incomplete_details.reason {reason!r} for an answer cut at "
                  f"max_output_tokens {SHORT}; expected 'incomplete' and 'max_output_tokens'")


@check(
    "responses_api.reasoning",
    severity="degrades",
    title="reasoning.effort is honoured or properly declined",
    spec=f"{DOCS}: reasoning.effort (ReasoningEffort); Response.reasoning",
    proves="A request with reasoning {effort: 'low'} is answered with a Response whose "
    "reasoning, when echoed, says 'low' (not a level the gateway forced), or is declined with "
    "a 4xx that says it is not supported; never a 5xx.",
)
async def reasoning(ctx: CheckContext) -> str:
    await offered(ctx)
    exchange = await post(ctx, input=text_of(prompts.CAPITAL), max_output_tokens=TOOL_CAP,
                          reasoning={"effort": "low"})
    raise_for_status(exchange, "reasoning.effort")
    body = expect_response(exchange)
    echoed = body.get("reasoning")
    effort = echoed.get("effort") if isinstance(echoed, dict) else None
    if effort not in (None, "low"):
        raise Failure(f"reasoning.effort 'low' was answered with reasoning.effort {effort!r}: "
                      "the gateway forced another level")
    return f"accepted (reasoning.effort {effort!r})"


# --------------------------------------------------------------------------- state


async def _first_turn(ctx: CheckContext) -> dict[str, Any]:
    """A stored response that states a fact (shared by the state checks)."""
    return await answer(ctx, input=text_of(prompts.MULTI_TURN[:1]), max_output_tokens=SHORT,
                        share=True)


def _refused(exchange: Exchange, what: str) -> None:
    """A well-formed 4xx error refusing ``what`` is a decline; a 5xx or a malformed one fails."""
    if exchange.ok:
        return
    check_key_refused(exchange)
    check_rate_limited(exchange)
    envelope = error_envelope(exchange)
    if envelope is not None and 400 <= (exchange.status or 0) < 500:
        verb = "declined" if is_decline(envelope) else "refused"
        raise Unsupported(f"{what} {verb}: HTTP {exchange.status} "
                          f"{snippet(envelope.get('message'), 120)}")
    raise Failure(f"{what}: expected HTTP 200 or a 4xx error refusing it, got "
                  f"{describe(exchange)}")


@check(
    "responses_api.previous_response_id",
    severity="breaks-clients",
    title="previous_response_id continues the conversation (or is refused)",
    spec=f"{DOCS}: previous_response_id (\"Use this to create multi-turn conversations\")",
    proves="A number given in a first (stored) response is recalled when the next request "
    "names it in previous_response_id; a provider that keeps no state must refuse the field "
    "with an error — accepting it and answering without the earlier turn is a fail (when the "
    "same fact stated in the question itself is answered: the control, sent only then; "
    "otherwise the check is inconclusive).",
)
async def previous_response_id(ctx: CheckContext) -> str:
    first = await _first_turn(ctx)
    exchange = await post(ctx, previous_response_id=first["id"], max_output_tokens=SHORT,
                          input=text_of(prompts.MULTI_TURN))
    _refused(exchange, "previous_response_id")
    text = output_text(expect_response(exchange))
    if prompts.MULTI_TURN_ANSWER not in text:
        missed = (f"previous_response_id accepted but ignored: the number given in the first "
                  f"turn ({prompts.MULTI_TURN_ANSWER}) is not recalled: {snippet(text, 80)}")
        raise await unreached(missed, prompts.MULTI_TURN_ANSWER,
                              _control(ctx, prompts.MULTI_TURN_ANSWER))
    return f"continued: {snippet(text, 40)}"


async def _retrieve(ctx: CheckContext, response_id: str, *, share: bool = False) -> Exchange:
    return await ctx.request("GET", f"{PATH}/{response_id}", share=share)


@check(
    "responses_api.retrieve",
    severity="degrades",
    title="GET /responses/{id} returns a stored response (or 404)",
    spec=f"{DOCS}: GET /v1/responses/{{response_id}} → Response",
    proves="A response created with store (the default) is returned by GET /responses/{id} "
    "with the same id and output text; a provider that does not keep responses answers 404 "
    "(unsupported), never a 5xx or another response.",
)
async def retrieve(ctx: CheckContext) -> str:
    first = await _first_turn(ctx)
    exchange = await _retrieve(ctx, first["id"], share=True)
    raise_for_status(exchange, "GET /responses/{id}", route="GET /responses/{id}")
    body = expect_response(exchange, "the stored response")
    if output_text(body) != output_text(first):
        raise Failure(f"GET returned another response: text {snippet(output_text(body), 40)}, "
                      f"created with {snippet(output_text(first), 40)}")
    if body.get("id") != first["id"]:
        raise Failure(f"GET /responses/{snippet(first['id'], 24)} answered the stored response "
                      f"under another id, {snippet(body.get('id'), 24)}: a client that matches "
                      "ids does not find it")
    return f"stored response {snippet(first['id'], 30)} returned"


@check(
    "responses_api.store_false",
    severity="degrades",
    title="store: false is respected",
    spec=f"{DOCS}: store (\"Whether to store the generated model response for later "
    "retrieval via API\")",
    proves="A response created with store: false cannot be retrieved (GET /responses/{id} "
    "answers 404), while a stored one can (the retrieve check's control).",
)
async def store_false(ctx: CheckContext) -> str:
    first = await _first_turn(ctx)
    if not (await _retrieve(ctx, first["id"], share=True)).ok:
        raise NotApplicable("inconclusive: GET /responses/{id} does not return stored "
                            "responses either (see responses_api.retrieve)")
    body = await answer(ctx, input=text_of(prompts.CAPITAL), max_output_tokens=SHORT,
                        store=False)
    exchange = await _retrieve(ctx, str(body.get("id")))
    _not_an_answer(exchange, "GET of an unstored response")
    if exchange.ok:
        raise Failure("store: false ignored: the response was stored and GET "
                      f"/responses/{snippet(body.get('id'), 40)} returns it")
    if (exchange.status or 0) >= 500:
        raise Failure(f"GET of an unstored response: {describe(exchange)}")
    return f"not stored: GET answers HTTP {exchange.status}"


# --------------------------------------------------------------------------- errors and auth


def _not_an_answer(exchange: Exchange, what: str) -> None:
    """An error envelope inside a 2xx is a fail (a Response's ``"error": null`` is not one)."""
    body = exchange.json
    if exchange.ok and isinstance(body, dict) and isinstance(body.get("error"), dict) and \
            body.get("object") != "response":
        raise Failure(f"{what}: error reported inside HTTP {exchange.status} (must be 4xx): "
                      f"{snippet(body)}")


def _answered(exchange: Exchange) -> bool:
    return exchange.ok and isinstance(exchange.json, dict) and \
        exchange.json.get("object") == "response"


@check(
    "responses_api.error_format",
    severity="degrades",
    title="An invalid request gets 400 with the error envelope",
    spec=f"{DOCS}: errors (ErrorResponse: error.message, type, param, code)",
    proves="A request whose `input` is a number is refused with HTTP 400 and the error object "
    "the spec defines (message, type, param, code) — not a 200, a 5xx, HTML or another "
    "framework's body.",
)
async def error_format(ctx: CheckContext) -> str:
    await offered(ctx)
    exchange = await post(ctx, input=42, max_output_tokens=SHORT)
    if _answered(exchange):
        raise Failure(f"an input that is a number was accepted: {describe(exchange)}")
    error = expect_client_error(exchange, "an input that is a number", statuses=(400,))
    expect_schema("error", exchange.json, "the error body", strict=True)
    return f"HTTP 400 {error.get('type')}: {snippet(error['message'], 60)}"


@check(
    "responses_api.auth",
    severity="security",
    title="A wrong API key is refused with 401 on /responses",
    spec=f"{DOCS}: Authentication (401)",
    proves="The Responses route checks the key like the chat routes: a wrong key is answered "
    "401 with an error envelope; a relay whose /responses handler accepts any key is flagged "
    "as a security failure.",
)
async def auth(ctx: CheckContext) -> str:
    require_key(ctx)
    await offered(ctx)
    exchange = await post(ctx, auth=WRONG_KEY, input=text_of(prompts.CAPITAL),
                          max_output_tokens=SHORT)
    if _answered(exchange):
        raise Failure(f"SECURITY: a wrong API key was accepted and answered: "
                      f"{describe(exchange)}")
    return expect_refused(exchange, "a wrong API key")
