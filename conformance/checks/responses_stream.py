"""responses_api, streamed: ``POST /v1/responses`` with ``stream: true``.

The spec answers a streamed request with ``text/event-stream`` events of the
``ResponseStreamEvent`` union (OpenAI API reference, "Streaming events"): ``response.created``
first, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``…, ``response.output_text.done``, … and ``response.completed``
(``response.incomplete``, ``response.failed``) last; each event has a ``type`` and an
increasing ``sequence_number``, and the SDKs read the SSE ``event:`` name.  The three text
checks judge one shared stream; the function-call stream has its own.
"""

from __future__ import annotations

from typing import Any

from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    arr,
    at_event,
    expect_ended,
    named_event_payloads,
    named_stream_events,
    snippet,
)
from conformance.checks.registry import check
from conformance.checks.responses_api import (
    DOCS,
    ONE_CITY,
    TOOL_CAP,
    WEATHER,
    WEATHER_TOOL,
    expect_arguments,
    offered,
    output_text,
    post,
    raise_route,
    schema_problems,
    text_of,
    without_nulls,
)
from conformance.errors import Failure
from conformance.exchange import Exchange
from conformance.validation import stream_event_violations

#: The events that end a Response stream.
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
#: Room for "1, 2, 3, 4, 5" on any real model.
STREAM_CAP = 32


def ended(exchange: Exchange) -> bool:
    return any(f'"{kind}"' in e.data for e in exchange.data_events() for kind in TERMINAL)


class ResponseStream:
    """A Responses event stream, parsed: (SSE event name, payload) pairs and their types."""

    def __init__(self, exchange: Exchange) -> None:
        raise_route(exchange)
        self.exchange = exchange
        self.events, self.timed, _ = named_event_payloads(
            exchange, named_stream_events(exchange, end=("response.completed", ended)),
            "chat.completion.chunk events, not Responses events")
        self.types = [str(p.get("type")) for _, p in self.events]

    def about(self, index: int) -> tuple[str, int] | None:
        """Where the ``index``-th of :attr:`events` is in the evidence (``Failure(event=)``)."""
        return at_event(self.exchange, self.timed[index])

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [p for _, p in self.events if p.get("type") == kind]

    def final(self) -> dict[str, Any]:
        """The Response of the terminal event."""
        if not self.types or self.types[0] != "response.created":
            raise Failure(f"the stream must open with response.created, got "
                          f"{', '.join(self.types[:4])}")
        if self.types[-1] not in TERMINAL:
            raise Failure(f"the stream must end with response.completed (or incomplete/failed), "
                          f"got {self.types[-1]}")
        response = self.events[-1][1].get("response")
        if not isinstance(response, dict):
            raise Failure(f"{self.types[-1]} carries no response object")
        return response


async def _text_stream(ctx: CheckContext) -> ResponseStream:
    await offered(ctx)
    exchange = await post(ctx, stream=True, input=text_of(prompts.COUNT_TO_5),
                          max_output_tokens=STREAM_CAP, share=True)
    return ResponseStream(exchange)


@check(
    "responses_api.stream",
    severity="breaks-clients",
    title="stream: true gives the documented event sequence",
    spec=f"{DOCS}: streaming events (response.created … response.output_text.delta … "
    "response.completed)",
    proves="A streamed Response opens with response.created, carries output_text.delta events "
    "and ends with response.completed; the deltas reassemble into the text of "
    "response.output_text.done and of the final Response's output (a count to 5). The "
    "response ends there: the openai SDKs read a Responses stream to the end of its body.",
)
async def stream(ctx: CheckContext) -> str:
    parsed = await _text_stream(ctx)
    final = parsed.final()
    deltas = parsed.of("response.output_text.delta")
    if not deltas:
        raise Failure(f"no response.output_text.delta event: {', '.join(parsed.types)}")
    text = "".join(str(d.get("delta", "")) for d in deltas)
    done = parsed.of("response.output_text.done")
    if done and done[-1].get("text") != text:
        raise Failure(f"the deltas give {snippet(text, 50)} but response.output_text.done says "
                      f"{snippet(done[-1].get('text'), 50)}")
    if output_text(final) != text:
        raise Failure(f"the deltas give {snippet(text, 50)} but the final Response's output is "
                      f"{snippet(output_text(final), 50)}")
    if "5" not in text:
        raise Failure(f"the streamed text does not count to 5: {snippet(text, 60)}")
    expect_ended(parsed.exchange, "the openai SDKs")
    return f"{len(parsed.events)} events, {len(deltas)} deltas: {snippet(text, 30)}"


@check(
    "responses_api.stream_schema",
    severity="breaks-clients",
    title="Every stream event validates against its schema",
    spec=f"{DOCS}: ResponseStreamEvent (one schema per event type)",
    proves="Each event of the stream is one of the spec's event types and validates against "
    "that type's schema (response.created's Response, item_id/output_index/content_index of "
    "the deltas, the final Response), so typed SDK clients can read every event.",
)
async def stream_schema(ctx: CheckContext) -> str:
    parsed = await _text_stream(ctx)
    for number, (_, payload) in enumerate(parsed.events):
        found = stream_event_violations(without_nulls(payload), absent_as_null=True)
        if found:
            raise Failure(f"event {number} ({payload.get('type')}) is not a valid "
                          f"{payload.get('type')} event at {found[0]}",
                          event=parsed.about(number))
    final = parsed.final()
    problems = schema_problems("response", final)
    if problems:
        raise Failure(f"the final Response is not valid at {problems[0]}")
    return f"{len(parsed.events)} events valid"


@check(
    "responses_api.stream_events",
    severity="degrades",
    title="Stream events are named and numbered",
    spec=f"{DOCS}: streaming events (type; sequence_number)",
    proves="Each SSE event carries an `event:` line equal to its data's `type`, and the "
    "sequence_number of the events increases strictly, so clients that dispatch on the "
    "event name or order by sequence_number read the stream right (the official SDKs "
    "dispatch on the data's type, hence degrades).",
)
async def stream_events(ctx: CheckContext) -> str:
    parsed = await _text_stream(ctx)
    previous: int | None = None
    for index, (name, payload) in enumerate(parsed.events):
        if name != payload.get("type"):
            raise Failure(f"a {payload.get('type')} event has event name {name!r}; expected its "
                          "type", event=parsed.about(index))
        number = payload.get("sequence_number")
        if isinstance(number, bool) or not isinstance(number, int):
            raise Failure(f"a {payload.get('type')} event has sequence_number "
                          f"{snippet(number)}", event=parsed.about(index))
        if previous is not None and number <= previous:
            raise Failure(f"sequence_number does not increase: {number} after {previous} "
                          f"({payload.get('type')})", event=parsed.about(index))
        previous = number
    return f"{len(parsed.events)} events named, sequence 0…{previous}"


@check(
    "responses_api.stream_function_call",
    severity="breaks-clients",
    title="A streamed function call sends its arguments as deltas",
    spec=f"{DOCS}: response.function_call_arguments.delta / .done; "
    "response.output_item.done (FunctionToolCall)",
    proves="Streamed, the get_weather call arrives as response.function_call_arguments.delta "
    "events whose concatenation equals the arguments of function_call_arguments.done and of "
    "the function_call item, a JSON string valid against the tool's schema.",
)
async def stream_function_call(ctx: CheckContext) -> str:
    await offered(ctx)
    parsed = ResponseStream(await post(ctx, stream=True, input=ONE_CITY, tools=[WEATHER_TOOL],
                                       max_output_tokens=TOOL_CAP))
    final = parsed.final()
    items = [i for i in arr(final.get("output")) if isinstance(i, dict)
             and i.get("type") == "function_call"]
    if not items:
        raise Failure(f"no function_call item in the streamed Response: {snippet(final, 80)}")
    deltas = [d for d in parsed.of("response.function_call_arguments.delta")
              if d.get("item_id") == items[0].get("id")]
    if not deltas:
        raise Failure(f"the {WEATHER} call was streamed without "
                      "response.function_call_arguments.delta events")
    joined = "".join(str(d.get("delta", "")) for d in deltas)
    done = parsed.of("response.function_call_arguments.done")
    if items[0].get("arguments") != joined or (done and done[-1].get("arguments") != joined):
        raise Failure(f"the argument deltas give {snippet(joined, 60)}, the call has "
                      f"{snippet(items[0].get('arguments'), 60)}")
    expect_arguments(joined, "the streamed function_call")
    return f"{len(deltas)} argument deltas: {snippet(joined, 40)}"
