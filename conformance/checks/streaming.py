"""streaming: ``stream: true`` answers as Server-Sent Events of chat.completion.chunk objects
ending with ``data: [DONE]`` (OpenAI API reference, "The chat completion chunk object").

All checks of this family judge one shared streamed request, so the family costs one answer
(``streaming.real_time`` sends the same request again, at most five times, only while that
stream and its resends come in bursts without a verdict).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from conformance import i18n, jsontext
from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    Reassembled,
    at_event,
    chunk_at,
    expect_schema,
    expect_stream,
    snippet,
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable
from conformance.exchange import Exchange
from conformance.loopwatch import blind_since

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
        about = at_event(exchange, event)
        try:
            payload = jsontext.loads(event.data)
        except ValueError as exc:
            raise Failure(f"event {n} is not JSON{jsontext.explain(exc)}: {snippet(event.data)}",
                          event=about) from None
        try:
            expect_schema("chat.completion.chunk", payload, f"chunk {n}")
        except Failure as finding:
            raise Failure(finding.message, event=about) from None
        if payload["object"] != "chat.completion.chunk":
            raise Failure(f"chunk {n}: object is {payload['object']!r}, expected "
                          "'chat.completion.chunk'", event=about)
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
    exchange, chunks = await _stream(ctx)
    position = next((n for n, c in enumerate(chunks) if c.get("choices")), None)
    if position is None:
        raise Failure("no chunk carries choices")
    first = chunks[position]
    delta = first["choices"][0].get("delta") or {}
    role = delta.get("role") if isinstance(delta, dict) else None
    if role != "assistant":
        later = Reassembled(chunks).roles.get(0)
        where = f"; role first appears later as {later[0]!r}" if later else "; no delta has a role"
        raise Failure(f"first delta has role {role!r}, expected 'assistant'{where}",
                      event=chunk_at(exchange, position))
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
    exchange, chunks = await _stream(ctx)
    for field in ("id", "created", "model"):
        seen = [json.dumps(c.get(field)) for c in chunks]
        values = set(seen)
        if len(values) > 1:
            sample = ", ".join(sorted(values)[:3])
            odd = next(n for n, value in enumerate(seen) if value != seen[0])
            raise Failure(f"{len(values)} different '{field}' values across {len(chunks)} chunks "
                          f"({sample} …), expected one", event=chunk_at(exchange, odd))
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
    exchange, chunks = await _stream(ctx)
    finished: dict[int, int] = {}
    for n, chunk in enumerate(chunks):
        for choice in chunk.get("choices") or []:
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            if index in finished and isinstance(delta, dict) and delta.get("content"):
                raise Failure(f"content arrived in chunk {n} after finish_reason was sent",
                              event=chunk_at(exchange, n))
            reason = choice.get("finish_reason")
            if reason is not None:
                if index in finished:
                    raise Failure(f"finish_reason sent twice for choice {index} "
                                  f"(chunks {finished[index]} and {n})",
                                  event=chunk_at(exchange, n))
                finished[index] = n
                if reason != "stop":
                    raise Failure(f"finish_reason is {reason!r} for a complete short answer, "
                                  "expected 'stop'", event=chunk_at(exchange, n))
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
        raise Failure(f"stream ended without data: [DONE] (last event: {last})",
                      event=at_event(exchange, events[-1] if events else None))
    if events[-1].data.strip() != "[DONE]":
        raise Failure("data: [DONE] is not the last event", event=at_event(exchange, next(
            e for e in events if e.data.strip() == "[DONE]")))
    if exchange.trailing_data:
        raise Failure("the stream ended inside an unterminated event after [DONE]")
    return "ends with [DONE]"


@check(
    "streaming.nothing_after_done",
    severity="cosmetic",
    title="Nothing is sent after [DONE]",
    spec="POST /chat/completions (stream: true): [DONE] terminates the stream",
    proves="No data event follows data: [DONE], and the response ends there; clients stop "
    "reading at [DONE] and would lose or choke on anything after it, and a client or relay "
    "that reads the body to its end would wait on a response left open.",
)
async def nothing_after_done(ctx: CheckContext) -> str:
    exchange, _ = await _stream(ctx)
    events = exchange.data_events()
    positions = [i for i, e in enumerate(events) if e.data.strip() == "[DONE]"]
    if not positions:
        raise NotApplicable(i18n.NO_DONE)
    after = events[positions[0] + 1:]
    if after:
        raise Failure(f"{len(after)} event(s) after data: [DONE], first: {snippet(after[0].data)}",
                      event=at_event(exchange, after[0]))
    if exchange.open_after_end:
        raise Failure(f"the response did not end after data: [DONE]: {exchange.open_after_end} "
                      "(a client or relay that reads the body to its end waits for its own "
                      "timeout)")
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


# --- streaming.real_time ------------------------------------------------------------------

#: Content chunks read within this many ms of each other (and within :data:`BURST_SHARE` of
#: the answer's time) arrived in one burst.
BURST_MS = 10.0
BURST_SHARE = 0.05
#: An answer whose last chunk came sooner than this is too quick to tell a burst from a stream.
MIN_JUDGED_MS = 50.0
#: Fewer timed chunks than this say nothing about pacing.
MIN_CHUNKS = 3
#: A burst is evidence only when its chunks must have *arrived* within this many ms: they
#: were stamped within :data:`BURST_MS`, but a client stall (``Exchange.client_stalls``,
#: :mod:`conformance.loopwatch`) overlapping the burst means they may have been waiting since
#: the stall began.  Well under the 160 ms over which the reference paces its nine chunks.
ARRIVAL_MS = 120.0
#: How long after a stall ends the reader may still be stamping what arrived during it.
SLACK_MS = 5.0
#: Streams judged at most (the shared one and fresh ones, sent only while no verdict is
#: reached: a burst must be seen twice while the client kept time to fail).
MAX_STREAMS = 6

PacingKind = Literal["streamed", "burst", "stalled", "quick", "few"]


@dataclass(frozen=True)
class Pacing:
    """What one stream's arrival times show: ``streamed`` (spread over the answer), ``burst``
    (all at once while the client kept time: evidence of buffering), ``stalled`` (all at once
    while the client itself was held up: no evidence), ``quick`` (the whole answer too soon to
    tell) or ``few`` (too few chunks to time)."""

    kind: PacingKind
    message: str


def _timed_chunks(exchange: Exchange) -> tuple[str, list[float]]:
    """The arrival times (ms since the request) of the content chunks, or, when the answer has
    fewer than :data:`MIN_CHUNKS` of them, of every chunk before [DONE]."""
    content: list[float] = []
    every: list[float] = []
    for event in exchange.data_events():
        if event.data.strip() == "[DONE]":
            break
        every.append(event.t_ms)
        try:
            payload = jsontext.loads(event.data)
        except ValueError:
            continue
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if any(isinstance(c, dict) and isinstance(c.get("delta"), dict)
               and c["delta"].get("content") for c in choices or []):
            content.append(event.t_ms)
    if len(content) >= MIN_CHUNKS:
        return "content chunks", content
    return "chunks", every


def judge_pacing(exchange: Exchange) -> Pacing:
    """One stream's pacing, from the time each chunk was read and the client's own stalls
    (``Exchange.client_stalls``, :mod:`conformance.loopwatch`)."""
    what, times = _timed_chunks(exchange)
    if len(times) < MIN_CHUNKS:
        return Pacing("few", f"only {len(times)} {what}: too few to time (see "
                      "streaming.incremental)")
    first, last = times[0], times[-1]
    spread = last - first
    spread_out = (f"{len(times)} {what} over {spread:.0f} ms (first after {first:.0f} ms, "
                  f"last after {last:.0f} ms)")
    if spread > BURST_MS:
        return Pacing("streamed", spread_out)
    if last < MIN_JUDGED_MS:
        return Pacing("quick", f"the whole answer arrived within {last:.0f} ms, too quickly to "
                      "tell streaming from a burst")
    if spread > BURST_SHARE * last:
        return Pacing("streamed", spread_out)
    burst = (f"all {len(times)} {what} arrived within {spread:.0f} ms after {first:.0f} ms of "
             f"silence ({last:.0f} ms in all)")
    since = blind_since(exchange.client_stalls, first - SLACK_MS, last)
    if since is None:
        return Pacing("stalled", f"{burst}, but the client's own timing was not watched")
    if last - since > ARRIVAL_MS:
        return Pacing("stalled", f"{burst}, but the client itself was held up from "
                      f"{since:.0f} ms (its event loop missed its heartbeat), so they may have "
                      f"arrived over {last - since:.0f} ms")
    return Pacing("burst", burst)


def decide_pacing(seen: list[Pacing]) -> str | None:
    """``streaming.real_time``'s verdict on the streams judged so far: a pass message,
    :class:`Failure`, :class:`NotApplicable`, or None when another fresh stream is needed.

    A stream spread over the answer passes. A burst read while the client kept time is
    evidence, but one burst can also be a hop on the way that stalled once: two fail. A burst
    read while the client was held up is no evidence; when :data:`MAX_STREAMS` streams can no
    longer show two clean bursts, the check is inconclusive."""
    kinds = [p.kind for p in seen]
    streamed = next((p for p in seen if p.kind == "streamed"), None)
    if streamed is not None:
        earlier = [p for p in seen if p.kind != "streamed"]
        note = (f"; an earlier stream was read in one burst ({earlier[0].message})"
                if earlier else "")
        return streamed.message + note
    if kinds[0] in ("few", "quick"):
        raise NotApplicable(f"inconclusive: {seen[0].message}" if kinds[0] == "quick"
                            else seen[0].message)
    bursts = [p for p in seen if p.kind == "burst"]
    if len(bursts) >= 2:
        raise Failure(f"fake streaming: {bursts[0].message}, and again on a fresh request; a "
                      "provider that streams as it generates spreads them over the answer's "
                      "time")
    if len(bursts) + MAX_STREAMS - len(seen) < 2:
        inconclusive = next(p for p in reversed(seen) if p.kind != "burst")
        raise NotApplicable(f"inconclusive: {inconclusive.message} ({len(seen)} streams read, "
                            f"{len(bursts)} in a burst while the client kept time)")
    return None


@check(
    "streaming.real_time",
    severity="degrades",
    title="Chunks arrive as they are generated, not in one burst at the end",
    spec="CreateChatCompletionRequest.stream: \"the model response data will be streamed to "
    "the client as it is generated using server-sent events\"",
    proves="The content chunks of a multi-token answer arrive spread over the time the answer "
    "takes, judged from their arrival times while the client's own event loop kept time: a "
    "provider that buffers the whole answer and then replays it as many chunks at once "
    "(\"fake streaming\") fails.",
)
async def real_time(ctx: CheckContext) -> str:
    exchange, _ = await _stream(ctx)
    seen = [judge_pacing(exchange)]
    while (verdict := decide_pacing(seen)) is None:
        # Fresh, and read on a quiet loop of its own: the engine's loop, busy with every
        # other check, may be what held the first stream up.
        fresh = await ctx.chat_apart(messages=prompts.COUNT_TO_5, max_tokens=STREAM_CAP,
                                     stream=True)
        expect_stream(fresh)
        seen.append(judge_pacing(fresh))
    return verdict
