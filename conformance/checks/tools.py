"""tools: function calling (CreateChatCompletionRequest.tools, tool_choice,
parallel_tool_calls; ChatCompletionMessageToolCall; ChatCompletionMessageToolCallChunk; the
tool message; the deprecated functions / function_call and the function role).

One small tool, ``get_weather(city)``, and one prompt that asks for the weather in two cities
serve most checks: with ``tool_choice: "auto"`` a capable model calls the tool once per city,
which is the control for ``tool_choice: "none"`` and ``parallel_tool_calls: false``.  The
streamed form of the same request is judged by the three ``stream_*`` checks.  A named or
``required`` tool_choice forces a call, and OpenAI itself then answers finish_reason "stop";
only there is "stop" accepted (and said so in the pass message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from conformance import i18n, jsontext
from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    Reassembled,
    answer_text,
    chunk_at,
    describe,
    expect_completion,
    expect_stream,
    snippet,
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable
from conformance.exchange import Exchange

CITY_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER = "get_weather"
TIME = "get_time"
#: No descriptions: the names say it all, and every token of a tool is paid on each request.
WEATHER_FUNCTION: dict[str, Any] = {"name": WEATHER, "parameters": CITY_PARAMS}
WEATHER_TOOL: dict[str, Any] = {"type": "function", "function": WEATHER_FUNCTION}
TIME_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": TIME, "parameters": {"type": "object", "properties": {}},
}}

#: Asks for two independent lookups: a capable model calls get_weather twice, in parallel.
TWO_CITIES = prompts.user("What is the weather in Paris and in Tokyo? Use the tool.")
CITIES = ("paris", "tokyo")
ONE_CITY = prompts.user("What is the weather in Paris? Use the tool.")
#: A prompt no weather tool answers: only a honoured tool_choice "required" makes a call.
HELLO = prompts.user("Say hello.")
#: Room for two calls of get_weather on any real model.
TOOL_CAP = 64
#: Room for a one-sentence text answer.
ANSWER_CAP = 24
#: What the tool "returns" in the round trips: a value the model cannot guess.
TOOL_RESULT = '{"temperature_c": 23}'
TOOL_RESULT_VALUE = "23"
#: A 9-character alphanumeric id: accepted by OpenAI and by backends that insist on that form.
CALL_ID = "call00001"
FORCED_STOP = "finish_reason 'stop' (as OpenAI answers a forced tool_choice)"

_VALIDATOR = Draft202012Validator(CITY_PARAMS)


# --------------------------------------------------------------------------------------------
# Reading tool calls


def _message(body: dict[str, Any]) -> dict[str, Any]:
    message = body["choices"][0].get("message")
    if not isinstance(message, dict):
        raise Failure(f"choices[0].message missing: {snippet(body['choices'][0])}")
    return message


def _calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """message.tool_calls (absent or null: none), or a fail when it is not a list of objects."""
    calls = message.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise Failure(f"message.tool_calls is not a list of objects: {snippet(calls)}")
    return calls


def _function(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function")
    return function if isinstance(function, dict) else {}


def _names(calls: list[dict[str, Any]]) -> list[Any]:
    return [_function(c).get("name") for c in calls]


def _loose_args(arguments: Any) -> dict[str, Any]:
    """Arguments read leniently (a JSON string or an object), for checks about other things."""
    if isinstance(arguments, str):
        try:
            arguments = jsontext.loads(arguments)
        except ValueError:
            return {}
    return arguments if isinstance(arguments, dict) else {}


def _control_calls(exchange: Exchange) -> list[dict[str, Any]]:
    """The tool calls of a control's answer; none when it is not a completion with calls."""
    body = exchange.json
    if not exchange.ok or not isinstance(body, dict):
        return []
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return []
    message = choices[0].get("message")
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def _shown(calls: list[dict[str, Any]]) -> str:
    return ", ".join(f"{_function(c).get('name')}({snippet(_function(c).get('arguments'), 40)})"
                     for c in calls)


def expect_arguments(arguments: Any, where: str) -> dict[str, Any]:
    """function.arguments as the spec has it: a string of JSON that validates against the
    tool's parameters schema (ChatCompletionMessageToolCall.function.arguments)."""
    if not isinstance(arguments, str):
        kind = "a JSON object" if isinstance(arguments, dict) else type(arguments).__name__
        raise Failure(f"{where}: arguments is {kind}, expected a string of JSON: "
                      f"{snippet(arguments, 60)}")
    try:
        parsed = jsontext.loads(arguments)
    except ValueError:
        raise Failure(f"{where}: arguments is not valid JSON{jsontext.reason(arguments)}: "
                      f"{snippet(arguments, 80)}") from None
    if not isinstance(parsed, dict):
        raise Failure(f"{where}: arguments is not a JSON object: {snippet(arguments, 80)}")
    error = best_match(_VALIDATOR.iter_errors(parsed))
    if error is not None:
        raise Failure(f"{where}: arguments {snippet(arguments, 60)} do not match the "
                      f"parameters schema: {error.message}")
    return parsed


def _forced_finish(finish: Any, what: str) -> str:
    """A forced tool_choice may end with 'tool_calls' or, as OpenAI does, 'stop'."""
    if finish == "tool_calls":
        return "finish_reason 'tool_calls'"
    if finish == "stop":
        return FORCED_STOP
    raise Failure(f"{what}: finish_reason is {finish!r}, expected 'tool_calls' (or 'stop', as "
                  "OpenAI sends for a forced tool_choice)")


# --------------------------------------------------------------------------------------------
# Shared requests


async def _auto(ctx: CheckContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The two-city request with tool_choice auto: the body and its tool calls."""
    exchange = await ctx.chat(messages=TWO_CITIES, tools=[WEATHER_TOOL], tool_choice="auto",
                              max_tokens=TOOL_CAP, share=True)
    body = expect_completion(exchange, feature="tools")
    return body, _calls(_message(body))


async def _auto_calls(ctx: CheckContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The auto request when it made calls; otherwise nothing to judge (see tools.auto)."""
    body, calls = await _auto(ctx)
    if not calls:
        raise NotApplicable(i18n.NO_TOOL_CALL)
    return body, calls


async def _stream(ctx: CheckContext) -> tuple[Exchange, list[dict[str, Any]]]:
    exchange = await ctx.chat(messages=TWO_CITIES, tools=[WEATHER_TOOL], tool_choice="auto",
                              max_tokens=TOOL_CAP, stream=True, share=True)
    return exchange, expect_stream(exchange, feature="tools")


# --------------------------------------------------------------------------------------------
# Non-streamed calls


@check(
    "tools.auto",
    severity="breaks-clients",
    title="tool_choice auto calls the offered tool",
    spec="CreateChatCompletionRequest.tools, tool_choice: \"auto\"",
    proves="Asked for the weather in Paris and Tokyo with a get_weather tool and tool_choice "
    "'auto', the model answers with tool_calls of get_weather, so tools reach the model and its "
    "calls reach the client. An answer in text is a fail unless the same request with "
    "tool_choice 'required' (the control, sent only then) calls the tool: then the tools reach "
    "the model, which chose not to call, and the check is inconclusive.",
)
async def auto(ctx: CheckContext) -> str:
    body, calls = await _auto(ctx)
    if not calls:
        text = snippet(answer_text(body), 80)
        forced = await ctx.chat(messages=TWO_CITIES, tools=[WEATHER_TOOL],
                                tool_choice="required", max_tokens=TOOL_CAP)
        made = _control_calls(forced)
        if made:
            raise NotApplicable(f"inconclusive: under tool_choice auto the model answered in "
                                f"text ({text}), but the same request with tool_choice "
                                f"required calls {_shown(made)}: the tools reach the model, "
                                "which chose not to call (control)")
        control = ("it makes no call either" if forced.ok
                   else f"it got {describe(forced)}")
        raise Failure("no tool call under tool_choice auto although the prompt asks for the "
                      f"tool (tools dropped?): answered {text}; with tool_choice required "
                      f"{control} (control)")
    names = _names(calls)
    if any(name != WEATHER for name in names):
        raise Failure(f"called {names}, expected only {WEATHER!r} (the one tool offered)")
    return f"called {_shown(calls)}"


@check(
    "tools.call_shape",
    severity="breaks-clients",
    title="Tool calls have id, type 'function', name and JSON string arguments",
    spec="ChatCompletionMessageToolCall (id, type, function.name, function.arguments)",
    proves="Every tool call has a non-empty id, type 'function', the function's name, and "
    "arguments as a string of JSON that parses and validates against the tool's parameters "
    "schema (the spec types arguments as a string; clients json.loads it).",
)
async def call_shape(ctx: CheckContext) -> str:
    _, calls = await _auto_calls(ctx)
    for n, call in enumerate(calls):
        where = f"tool_calls[{n}]"
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise Failure(f"{where}: id is {call_id!r}, expected a non-empty string (tool "
                          "results are matched to calls by it)")
        if call.get("type") != "function":
            raise Failure(f"{where}: type is {call.get('type')!r}, expected 'function'")
        name = _function(call).get("name")
        if name != WEATHER:
            raise Failure(f"{where}: function.name is {name!r}, expected {WEATHER!r}")
        expect_arguments(_function(call).get("arguments"), where)
    return f"{len(calls)} well-formed call(s): {_shown(calls)}"


@check(
    "tools.finish_reason",
    severity="breaks-clients",
    title="A tool-calling answer ends with finish_reason 'tool_calls'",
    spec="CreateChatCompletionResponse.choices[].finish_reason (\"tool_calls if the model "
    "called a tool\")",
    proves="When the model calls a tool under tool_choice 'auto', finish_reason is "
    "'tool_calls' (clients and agent loops branch on it), not 'stop'.",
)
async def finish_reason(ctx: CheckContext) -> str:
    body, _ = await _auto_calls(ctx)
    finish = body["choices"][0].get("finish_reason")
    if finish != "tool_calls":
        raise Failure(f"finish_reason is {finish!r} for a message with tool_calls under "
                      "tool_choice auto, expected 'tool_calls'")
    return "finish_reason 'tool_calls'"


@check(
    "tools.choice_none",
    severity="breaks-clients",
    title="tool_choice none answers in text",
    spec="ChatCompletionToolChoiceOption \"none\" (\"the model will not call any tool and "
    "instead generates a message\")",
    proves="The same request that calls get_weather under 'auto' (control) answers in text, "
    "with no tool_calls, under tool_choice 'none'.",
)
async def choice_none(ctx: CheckContext) -> str:
    body, calls = await _auto(ctx)
    if not calls:
        raise NotApplicable("inconclusive: the model does not call the tool under tool_choice "
                            "auto either, so none cannot be shown to work")
    exchange = await ctx.chat(messages=TWO_CITIES, tools=[WEATHER_TOOL], tool_choice="none",
                              max_tokens=prompts.SHORT)
    body = expect_completion(exchange, feature="tool_choice none")
    made = _calls(_message(body))
    if made:
        raise Failure(f"tool_choice none ignored: the model called {_shown(made)}")
    finish = body["choices"][0].get("finish_reason")
    if finish in ("tool_calls", "function_call"):
        raise Failure(f"tool_choice none: no tool call but finish_reason is {finish!r}")
    text = answer_text(body)
    if not text.strip():
        raise Failure("tool_choice none: neither a tool call nor any text in the answer")
    return f"answered in text: {snippet(text, 50)}"


@check(
    "tools.choice_required",
    severity="breaks-clients",
    title="tool_choice required forces a tool call",
    spec="ChatCompletionToolChoiceOption \"required\" (\"the model must call one or more "
    "tools\")",
    proves="'Say hello.' with get_weather and tool_choice 'required' still answers with a "
    "get_weather call, which the model would not make on its own.",
)
async def choice_required(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=HELLO, tools=[WEATHER_TOOL], tool_choice="required",
                              max_tokens=TOOL_CAP)
    body = expect_completion(exchange, feature="tool_choice required")
    calls = _calls(_message(body))
    if not calls:
        raise Failure("tool_choice required ignored: answered in text without a tool call: "
                      f"{snippet(answer_text(body), 60)}")
    names = _names(calls)
    if any(name != WEATHER for name in names):
        raise Failure(f"tool_choice required: called {names}, expected {WEATHER!r}")
    finish = _forced_finish(body["choices"][0].get("finish_reason"), "tool_choice required")
    return f"called {_shown(calls)}; {finish}"


@check(
    "tools.choice_named",
    severity="breaks-clients",
    title="A named tool_choice calls exactly that function",
    spec="ChatCompletionNamedToolChoice {type: function, function: {name}}",
    proves="Offered get_weather and get_time for a weather question, tool_choice naming "
    "get_time makes the model call get_time only (ignoring the choice would call get_weather; "
    "treating it as 'required' would too).",
)
async def choice_named(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=TWO_CITIES, tools=[WEATHER_TOOL, TIME_TOOL],
                              tool_choice={"type": "function", "function": {"name": TIME}},
                              max_tokens=TOOL_CAP)
    body = expect_completion(exchange, feature="named tool_choice")
    calls = _calls(_message(body))
    if not calls:
        raise Failure(f"named tool_choice {TIME!r} ignored: answered in text: "
                      f"{snippet(answer_text(body), 60)}")
    names = _names(calls)
    if any(name != TIME for name in names):
        raise Failure(f"named tool_choice ignored: called {names}, expected only {TIME!r}")
    finish = _forced_finish(body["choices"][0].get("finish_reason"), "named tool_choice")
    return f"called {_shown(calls)}; {finish}"


@check(
    "tools.parallel",
    severity="degrades",
    title="Independent lookups come as parallel tool calls",
    spec="ParallelToolCalls (default true); ChatCompletionMessageToolCalls",
    proves="The weather in Paris and in Tokyo is asked for in one message with tool_choice "
    "'auto' and parallel_tool_calls not disabled: the answer holds two get_weather calls with "
    "distinct ids, one per city.",
)
async def parallel(ctx: CheckContext) -> str:
    _, calls = await _auto_calls(ctx)
    if len(calls) < 2:
        raise Failure(f"parallel tool calls: expected 2 calls (Paris and Tokyo), got "
                      f"{len(calls)}: {_shown(calls)}")
    ids = [c.get("id") for c in calls if isinstance(c.get("id"), str) and c.get("id")]
    if len(set(ids)) < len(ids):
        raise Failure(f"parallel tool calls share an id: {ids}")
    asked = " ".join(str(_loose_args(_function(c).get("arguments")).get("city", ""))
                     for c in calls).lower()
    missing = [city for city in CITIES if city not in asked]
    if missing:
        raise Failure(f"the {len(calls)} calls do not cover {' and '.join(missing)}: "
                      f"{_shown(calls)}")
    return f"{len(calls)} calls: {_shown(calls)}"


@check(
    "tools.parallel_disabled",
    severity="degrades",
    title="parallel_tool_calls false makes at most one call",
    spec="CreateChatCompletionRequest.parallel_tool_calls: false",
    proves="The two-city request that makes two calls by default (control) makes exactly one "
    "call with parallel_tool_calls false.",
)
async def parallel_disabled(ctx: CheckContext) -> str:
    _, control = await _auto(ctx)
    if len(control) < 2:
        raise NotApplicable(f"inconclusive: the model makes {len(control)} call(s) even with "
                            "parallel calls allowed, so disabling them cannot be shown to work")
    exchange = await ctx.chat(messages=TWO_CITIES, tools=[WEATHER_TOOL], tool_choice="auto",
                              parallel_tool_calls=False, max_tokens=TOOL_CAP)
    body = expect_completion(exchange, feature="parallel_tool_calls")
    calls = _calls(_message(body))
    if len(calls) > 1:
        raise Failure(f"parallel_tool_calls false ignored: {len(calls)} calls: {_shown(calls)}")
    if not calls:
        raise Failure("parallel_tool_calls false: expected exactly 1 call, got none: "
                      f"{snippet(answer_text(body), 60)}")
    return f"1 call: {_shown(calls)}"


# --------------------------------------------------------------------------------------------
# Streamed calls


@dataclass
class _Slot:
    """One streamed tool call, as a client rebuilds it from the deltas."""

    index: Any
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    arguments: list[Any] = field(default_factory=list)
    #: The chunk (its position in the stream's chunks) of each of ``ids``, ``names`` and
    #: ``arguments``: what a finding about one of them points at.
    id_chunks: list[int] = field(default_factory=list)
    name_chunks: list[int] = field(default_factory=list)
    argument_chunks: list[int] = field(default_factory=list)


class StreamedCalls:
    """The tool calls of choice 0 of a stream, rebuilt the way tolerant clients do: by
    ``index``, a new id opening a new call (even at a reused index), and a delta without
    ``index`` continuing the call before it.  What deviated is recorded for the checks."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.slots: list[_Slot] = []
        self.entries = 0
        self.without_index = 0
        #: The chunk of the first entry without an index.
        self.first_without_index: int | None = None
        #: (index, the first call's id, the other call's id, the other call's chunk).
        self.shared_index: list[tuple[int, str, str, int]] = []
        by_index: dict[int, _Slot] = {}
        current: _Slot | None = None
        for n, chunk in enumerate(chunks):
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                entries = delta.get("tool_calls") if isinstance(delta, dict) else None
                for entry in entries if isinstance(entries, list) else []:
                    if isinstance(entry, dict):
                        current = self._add(entry, by_index, current, n)

    def _add(self, entry: dict[str, Any], by_index: dict[int, _Slot],
             current: _Slot | None, chunk: int) -> _Slot:
        self.entries += 1
        raw_id = entry.get("id")
        call_id = raw_id if isinstance(raw_id, str) and raw_id else None
        index = entry.get("index")
        slot: _Slot | None
        if isinstance(index, bool) or not isinstance(index, int):
            self.without_index += 1
            if self.first_without_index is None:
                self.first_without_index = chunk
            slot = current
            if slot is not None and call_id is not None and slot.ids and call_id not in slot.ids:
                slot = None
        else:
            slot = by_index.get(index)
            if slot is not None and call_id is not None and slot.ids and call_id not in slot.ids:
                self.shared_index.append((index, slot.ids[0], call_id, chunk))
                slot = None
        if slot is None:
            slot = _Slot(index)
            self.slots.append(slot)
            if isinstance(index, int) and not isinstance(index, bool):
                by_index[index] = slot
        if call_id is not None:
            slot.ids.append(call_id)
            slot.id_chunks.append(chunk)
        function = entry.get("function")
        if isinstance(function, dict):
            name = function.get("name")
            if isinstance(name, str) and name:
                slot.names.append(name)
                slot.name_chunks.append(chunk)
            if "arguments" in function and function["arguments"] is not None:
                slot.arguments.append(function["arguments"])
                slot.argument_chunks.append(chunk)
        return slot


async def _streamed(ctx: CheckContext
                    ) -> tuple[Exchange, list[dict[str, Any]], StreamedCalls]:
    exchange, chunks = await _stream(ctx)
    streamed = StreamedCalls(chunks)
    if not streamed.entries:
        raise NotApplicable("no streamed tool call to judge (see tools.stream_index)")
    return exchange, chunks, streamed


@check(
    "tools.stream_index",
    severity="breaks-clients",
    title="Streamed tool calls carry an index; parallel calls stay separate",
    spec="ChatCompletionMessageToolCallChunk.index (required)",
    proves="The two-city request streamed: every tool_calls delta entry has an integer index, "
    "each call keeps its own index, and the stream holds as many calls as the same request "
    "without stream (clients merge deltas by index, so a missing or shared index fuses calls).",
)
async def stream_index(ctx: CheckContext) -> str:
    exchange, chunks = await _stream(ctx)
    streamed = StreamedCalls(chunks)
    _, control = await _auto(ctx)
    if not streamed.entries:
        if not control:
            raise NotApplicable("inconclusive: the model does not call the tool without stream "
                                "either")
        text = Reassembled(chunks).text(0)
        raise Failure(f"the streamed request carries no tool_calls delta although the same "
                      f"request without stream calls {WEATHER}: {snippet(text, 60) or 'no text'}")
    if streamed.without_index:
        raise Failure(f"{streamed.without_index} of {streamed.entries} tool_calls delta entries "
                      "have no integer 'index' (required: clients merge deltas by it)",
                      event=chunk_at(exchange, streamed.first_without_index))
    if streamed.shared_index:
        index, first, second, at = streamed.shared_index[0]
        raise Failure(f"two calls share index {index} (ids {first!r} and {second!r}): clients "
                      "merging deltas by index fuse them into one call",
                      event=chunk_at(exchange, at))
    if len(control) >= 2 and len(streamed.slots) < len(control):
        raise Failure(f"streamed parallel calls merged: {len(control)} calls without stream, "
                      f"{len(streamed.slots)} in the stream")
    return f"{len(streamed.slots)} call(s) at index {[s.index for s in streamed.slots]}"


@check(
    "tools.stream_once",
    severity="breaks-clients",
    title="A streamed call's id and name arrive once",
    spec="ChatCompletionMessageToolCallChunk (id and function.name in the call's first delta)",
    proves="In the streamed two-city request each call's id and function.name are sent in "
    "exactly one delta; clients that concatenate string deltas (as the OpenAI SDK's stream "
    "helper does) would otherwise build names like 'get_weatherget_weather'.",
)
async def stream_once(ctx: CheckContext) -> str:
    exchange, _, streamed = await _streamed(ctx)
    for n, slot in enumerate(streamed.slots):
        for what, values, at in (("id", slot.ids, slot.id_chunks),
                                 ("function.name", slot.names, slot.name_chunks)):
            if not values:
                raise Failure(f"streamed call {n}: no delta carries its {what}")
            if len(values) > 1:  # the event is the delta that sent it again
                raise Failure(f"streamed call {n}: {what} sent in {len(values)} deltas, expected "
                              f"once; concatenating clients get {snippet(''.join(values), 60)!r}",
                              event=chunk_at(exchange, at[1]))
        if slot.names[0] != WEATHER:
            raise Failure(f"streamed call {n}: function.name is {slot.names[0]!r}, expected "
                          f"{WEATHER!r}")
    return f"{len(streamed.slots)} call(s), id and name once each"


@check(
    "tools.stream_arguments",
    severity="breaks-clients",
    title="Streamed arguments concatenate to valid JSON",
    spec="ChatCompletionMessageToolCallChunk.function.arguments; finish_reason \"tool_calls\"",
    proves="Concatenating each streamed call's argument fragments gives a string of JSON that "
    "validates against the tool's parameters schema, and the stream ends with finish_reason "
    "'tool_calls'.",
)
async def stream_arguments(ctx: CheckContext) -> str:
    exchange, chunks, streamed = await _streamed(ctx)
    shown = []
    for n, slot in enumerate(streamed.slots):
        at, odd = next(((c, a) for c, a in zip(slot.argument_chunks, slot.arguments, strict=True)
                        if not isinstance(a, str)), (0, None))
        if odd is not None:
            raise Failure(f"streamed call {n}: an arguments delta is "
                          f"{'a JSON object' if isinstance(odd, dict) else type(odd).__name__}, "
                          f"expected a string fragment: {snippet(odd, 60)}",
                          event=chunk_at(exchange, at))
        joined = "".join(slot.arguments)
        expect_arguments(joined, f"streamed call {n} (fragments concatenated)")
        shown.append(joined)
    finish = Reassembled(chunks).finish_reason(0)
    if finish != "tool_calls":
        raise Failure(f"stream finish_reason is {finish!r} after tool calls under tool_choice "
                      "auto, expected 'tool_calls'")
    return f"arguments {snippet(' / '.join(shown), 60)}; finish_reason 'tool_calls'"


# --------------------------------------------------------------------------------------------
# Round trips


def _uses_result(body: dict[str, Any], what: str) -> str:
    message = _message(body)
    calls = _calls(message) or ([message["function_call"]] if message.get("function_call")
                                else [])
    text = answer_text(body)
    if TOOL_RESULT_VALUE not in text:
        again = f" (called a tool again: {snippet(calls, 60)})" if calls else ""
        raise Failure(f"{what} ignored: the answer does not mention the returned temperature "
                      f"{TOOL_RESULT_VALUE}{again}: {snippet(text, 80)}")
    return f"answer uses the {what}: {snippet(text, 50)}"


@check(
    "tools.round_trip",
    severity="breaks-clients",
    title="A tool result is used in the final answer",
    spec="ChatCompletionRequestAssistantMessage.tool_calls; ChatCompletionRequestToolMessage "
    "(tool_call_id)",
    proves="A history of the user question, the assistant's get_weather call (content null) and "
    "a tool message with its tool_call_id returning temperature 23 is accepted, and the answer "
    "mentions 23, a value the model could only take from the tool result.",
)
async def round_trip(ctx: CheckContext) -> str:
    messages = [
        *ONE_CITY,
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": CALL_ID, "type": "function",
            "function": {"name": WEATHER, "arguments": '{"city": "Paris"}'},
        }]},
        {"role": "tool", "tool_call_id": CALL_ID, "content": TOOL_RESULT},
    ]
    exchange = await ctx.chat(messages=messages, tools=[WEATHER_TOOL], max_tokens=ANSWER_CAP)
    return _uses_result(expect_completion(exchange, feature="tool messages"), "tool result")


@check(
    "tools.legacy_functions",
    severity="breaks-clients",
    title="Deprecated functions / function_call still call the function",
    spec="CreateChatCompletionRequest.functions, function_call (deprecated); "
    "ChatCompletionResponseMessage.function_call",
    proves="With the deprecated functions list and function_call 'auto', the weather question "
    "is answered with message.function_call (name and JSON string arguments) and finish_reason "
    "'function_call'; declining it with a 4xx is unsupported, ignoring it or answering in the "
    "tool_calls form is a fail.",
)
async def legacy_functions(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=ONE_CITY, functions=[WEATHER_FUNCTION],
                              function_call="auto", max_tokens=TOOL_CAP)
    body = expect_completion(exchange, feature="legacy functions")
    message = _message(body)
    call = message.get("function_call")
    if not isinstance(call, dict):
        if _calls(message):
            raise Failure("legacy functions answered in the tool_calls form instead of "
                          "message.function_call (clients of the deprecated API read "
                          "function_call)")
        raise Failure(f"functions ignored: no function_call, answered in text: "
                      f"{snippet(answer_text(body), 60)}")
    if call.get("name") != WEATHER:
        raise Failure(f"function_call.name is {call.get('name')!r}, expected {WEATHER!r}")
    expect_arguments(call.get("arguments"), "function_call")
    finish = body["choices"][0].get("finish_reason")
    if finish != "function_call":
        raise Failure(f"finish_reason is {finish!r} after a function_call, expected "
                      "'function_call'")
    return f"function_call {WEATHER}({snippet(call.get('arguments'), 40)})"


@check(
    "tools.legacy_round_trip",
    severity="breaks-clients",
    title="A function-role result is used in the final answer",
    spec="ChatCompletionRequestFunctionMessage (role 'function', name, content; deprecated)",
    proves="A history with the assistant's function_call and a role 'function' message "
    "returning temperature 23 is accepted, and the answer mentions 23; declining the "
    "deprecated role with a 4xx is unsupported.",
)
async def legacy_round_trip(ctx: CheckContext) -> str:
    messages = [
        *ONE_CITY,
        {"role": "assistant", "content": None,
         "function_call": {"name": WEATHER, "arguments": '{"city": "Paris"}'}},
        {"role": "function", "name": WEATHER, "content": TOOL_RESULT},
    ]
    exchange = await ctx.chat(messages=messages, functions=[WEATHER_FUNCTION],
                              max_tokens=ANSWER_CAP)
    return _uses_result(expect_completion(exchange, feature="function role"), "function result")
