"""streaming: ``stream: true`` answers as Server-Sent Events of chat.completion.chunk objects
ending with ``data: [DONE]`` (OpenAI API reference, "The chat completion chunk object").

All checks of this family judge one shared streamed request, so the family costs one answer.
"""

from __future__ import annotations

import json
from typing import Any

from conformance import i18n
from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import Reassembled, expect_schema, expect_stream, snippet
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable
from conformance.transport import Exchange

STREAM_CAP = 32


async def _stream(ctx: CheckContext) -> tuple[Exchange, list[dict[str, Any]]]:
    exchange = await ctx.chat(
        messages=prompts.COUNT_TO_5, max_tokens=STREAM_CAP, stream=True, share=True
    )
    return exchange, expect_stream(exchange)


@check(
    "streaming.content_type",
    severity="degrades",
    title="Streams are served as text/event-stream",
    spec="POST /chat/completions (stream: true) → 200 text/event-stream",
    proves="The streamed response carries Content-Type text/event-stream, which SSE clients "
    "(browsers' EventSource, many SDKs) require before they parse events.",
)
async def content_type(ctx: CheckContext) -> str:
    exchange, _ = await _stream(ctx)
    if exchange.content_type != "text/event-stream":
        raise Failure(f"Content-Type is {exchange.content_type or 'missing'!r}, expected "
                      "'text/event-stream'")
    return "text/event-stream"


@check(
    "streaming.chunk_schema",
    severity="breaks-clients",
    title="Every chunk is a schema-valid chat.completion.chunk",
    spec="CreateChatCompletionStreamResponse",
    proves="Each data event before [DONE] is a JSON object that validates against the OpenAI "
    "chunk schema (object 'chat.completion.chunk', id, created, model, choices[].delta, "
    "index, finish_reason).",
)
async def chunk_schema(ctx: CheckContext) -> str:
    exchange, _ = await _stream(ctx)
    count = 0
    for n, event in enumerate(exchange.data_events()):
        if event.data.strip() == "[DONE]":
            break
        try:
            payload = json.loads(event.data)
        except ValueError:
            raise Failure(f"event {n} is not JSON: {snippet(event.data)}") from None
        expect_schema("chat.completion.chunk", payload, f"chunk {n}")
        if payload["object"] != "chat.completion.chunk":
            raise Failure(f"chunk {n}: object is {payload['object']!r}, expected "
                          "'chat.completion.chunk'")
        count += 1
    return f"{count} chunks valid"


@check(
    "streaming.role_first",
    severity="breaks-clients",
    title="The first chunk announces the assistant role",
    spec="ChatCompletionStreamResponseDelta.role",
    proves="The first chunk's delta carries role 'assistant' (clients that rebuild the "
    "message from deltas take the role from there).",
)
async def role_first(ctx: CheckContext) -> str:
    _, chunks = await _stream(ctx)
    first = next((c for c in chunks if c.get("choices")), None)
    if first is None:
        raise Failure("no chunk carries choices")
    delta = first["choices"][0].get("delta") or {}
    role = delta.get("role") if isinstance(delta, dict) else None
    if role != "assistant":
        later = Reassembled(chunks).roles.get(0)
        where = f"; role first appears later as {later[0]!r}" if later else "; no delta has a role"
        raise Failure(f"first delta has role {role!r}, expected 'assistant'{where}")
    return "role 'assistant' first"


@check(
    "streaming.consistent_ids",
    severity="cosmetic",
    title="All chunks share one id, created and model",
    spec="CreateChatCompletionStreamResponse.id (\"Each chunk has the same ID\")",
    proves="Every chunk of one stream has the same id, the same created timestamp and the same "
    "model, so clients can correlate chunks.",
)
async def consistent_ids(ctx: CheckContext) -> str:
    _, chunks = await _stream(ctx)
    for field in ("id", "created", "model"):
        values = {json.dumps(c.get(field)) for c in chunks}
        if len(values) > 1:
            sample = ", ".join(sorted(values)[:3])
            raise Failure(f"{len(values)} different '{field}' values across {len(chunks)} chunks "
                          f"({sample} …), expected one")
    return f"{len(chunks)} chunks, id {snippet(chunks[0].get('id'), 40)}"


@check(
    "streaming.finish_reason",
    severity="breaks-clients",
    title="The stream ends each choice with one finish_reason",
    spec="CreateChatCompletionStreamResponse.choices[].finish_reason",
    proves="finish_reason is null on every chunk but the last of each choice, which says "
    "'stop' for a complete answer; no content follows it.",
)
async def finish_reason(ctx: CheckContext) -> str:
    _, chunks = await _stream(ctx)
    finished: dict[int, int] = {}
    for n, chunk in enumerate(chunks):
        for choice in chunk.get("choices") or []:
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            if index in finished and isinstance(delta, dict) and delta.get("content"):
                raise Failure(f"content arrived in chunk {n} after finish_reason was sent")
            reason = choice.get("finish_reason")
            if reason is not None:
                if index in finished:
                    raise Failure(f"finish_reason sent twice for choice {index} "
                                  f"(chunks {finished[index]} and {n})")
                finished[index] = n
                if reason != "stop":
                    raise Failure(f"finish_reason is {reason!r} for a complete short answer, "
                                  "expected 'stop'")
    if 0 not in finished:
        raise Failure("no chunk carries a finish_reason (all null or absent)")
    return "finish_reason 'stop'"


@check(
    "streaming.done_sentinel",
    severity="breaks-clients",
    title="The stream is terminated by data: [DONE]",
    spec="POST /chat/completions (stream: true): \"terminated by a data: [DONE] message\"",
    proves="The last event is the literal data: [DONE], which the official SDKs and most "
    "clients wait for to end the stream.",
)
async def done_sentinel(ctx: CheckContext) -> str:
    exchange, _ = await _stream(ctx)
    events = exchange.data_events()
    if not any(e.data.strip() == "[DONE]" for e in events):
        last = snippet(events[-1].data, 80) if events else "nothing"
        raise Failure(f"stream ended without data: [DONE] (last event: {last})")
    if events[-1].data.strip() != "[DONE]":
        raise Failure("data: [DONE] is not the last event")
    if exchange.trailing_data:
        raise Failure("the stream ended inside an unterminated event after [DONE]")
    return "ends with [DONE]"


@check(
    "streaming.nothing_after_done",
    severity="cosmetic",
    title="Nothing is sent after [DONE]",
    spec="POST /chat/completions (stream: true): [DONE] terminates the stream",
    proves="No data event follows data: [DONE]; clients stop reading there and would lose or "
    "choke on anything after it.",
)
async def nothing_after_done(ctx: CheckContext) -> str:
    exchange, _ = await _stream(ctx)
    events = exchange.data_events()
    positions = [i for i, e in enumerate(events) if e.data.strip() == "[DONE]"]
    if not positions:
        raise NotApplicable(i18n.NO_DONE)
    after = events[positions[0] + 1:]
    if after:
        raise Failure(f"{len(after)} event(s) after data: [DONE], first: {snippet(after[0].data)}")
    return "stream closed after [DONE]"


@check(
    "streaming.reassembled",
    severity="breaks-clients",
    title="Deltas reassemble into a valid answer",
    spec="ChatCompletionStreamResponseDelta.content",
    proves="Concatenating delta.content gives the answer (here a count to 5) and, with the "
    "stream's id, model and finish_reason, a message that validates as a non-stream "
    "chat.completion.",
)
async def reassembled(ctx: CheckContext) -> str:
    _, chunks = await _stream(ctx)
    parts = Reassembled(chunks)
    text = parts.text(0)
    if not text.strip():
        raise Failure("the deltas carry no delta.content text")
    if "5" not in text:
        raise Failure(f"reassembled text does not count to 5: {snippet(text)}")
    first = chunks[0]
    completion = {
        "id": first.get("id"),
        "object": "chat.completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "choices": [{
            "index": 0,
            "message": {"role": (parts.roles.get(0) or ["assistant"])[0], "content": text,
                        "refusal": None},
            "finish_reason": parts.finish_reason(0),
            "logprobs": None,
        }],
    }
    expect_schema("chat.completion", completion, "the reassembled completion")
    return f"reassembled {snippet(text, 40)}"


@check(
    "streaming.incremental",
    severity="degrades",
    title="Text is streamed in several chunks",
    spec="POST /chat/completions (stream: true): \"partial message deltas\"",
    proves="A multi-token answer arrives as more than one content delta, i.e. the provider "
    "really streams instead of buffering the whole answer into one event.",
)
async def incremental(ctx: CheckContext) -> str:
    _, chunks = await _stream(ctx)
    count = Reassembled(chunks).content_chunks.get(0, 0)
    if count < 2:
        raise Failure(f"the whole answer arrived in {count} content chunk(s); expected it to be "
                      "streamed in several")
    return f"{count} content chunks"
