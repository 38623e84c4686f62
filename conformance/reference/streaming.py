"""Server-sent events as the reference provider writes them, and answers cut on purpose.

Streams are ``text/event-stream`` bodies of ``data: <json>`` events (OpenAI API reference,
"Streaming", https://platform.openai.com/docs/api-reference/streaming; named ``event:`` lines
for Anthropic's Messages streams). The SSE quirks and faults (``sse_*``, ``split_writes``,
``stream_cut``, ``stream_buffered_burst``) are applied here, each at one place. Events are
written :data:`PACE_S` apart, as a model generating them would. :class:`CutStream` closes a
connection mid-body: the ``stream_cut`` fault, the armed ``cut_stream`` behaviour
(:mod:`conformance.reference.upstream_faults`) and the cut answers of the transport tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from starlette.responses import Response, StreamingResponse

from conformance.reference.faults import Variant

SSEItem = dict[str, Any] | str | tuple[str | None, dict[str, Any] | str]
"""A data payload, or an (event name, payload) pair for named events (Anthropic streams)."""

_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


#: The pause between two events of a stream: the faithful reference writes its answers at the
#: pace of a (fast) model generating them, so ``streaming.real_time`` can tell its streams
#: from a buffered burst (about 0.1 s for a short answer).
PACE_S = 0.02
#: A long stream is paced faster, so no stream spends more than this writing (a 2,000-chunk
#: answer stays spread over half a second instead of forty).
PACED_AT_MOST_S = 0.5


def pace(events: int) -> float:
    """The pause between two of ``events`` events."""
    return min(PACE_S, PACED_AT_MOST_S / max(1, events - 1))


def _texts(events: Iterable[SSEItem], variant: Variant) -> tuple[list[str], list[str]]:
    """The prefix comments and each event's text, with the sse_* quirks applied."""
    newline = "\r\n" if "sse_crlf" in variant else "\n"
    prefix = "data:" if "sse_no_space" in variant else "data: "
    comment = f": keep-alive{newline}{newline}" if "sse_comments" in variant else ""
    leading: list[str] = []
    if "split_writes" in variant:
        # A legal comment line with multi-byte characters, so splits fall inside them.
        leading.append(f": split writes — ünïcödé ✓{newline}{newline}")
    if "sse_invalid_utf8" in variant:
        # A lone surrogate, written out as the raw byte 0xFF (never valid in UTF-8).
        leading.append(f": keep-alive \udcff{newline}{newline}")
    texts: list[str] = []
    for item in events:
        name, event = item if isinstance(item, tuple) else (None, item)
        payload = event if isinstance(event, str) else json.dumps(
            event, ensure_ascii=False, separators=(",", ":"))
        field = "" if name is None else f"{prefix.replace('data', 'event')}{name}{newline}"
        texts.append(f"{comment}{field}{prefix}{payload}{newline}{newline}")
    return leading, texts


def _encode(text: str) -> bytes:
    return text.encode(errors="surrogateescape")


def _split(data: bytes) -> list[bytes]:
    return [data[i:i + 3] for i in range(0, len(data), 3)]


def sse_pieces(events: Iterable[SSEItem], variant: Variant) -> list[bytes]:
    """Serialise events as SSE, applying the sse_* and split_writes quirks."""
    leading, texts = _texts(events, variant)
    if "split_writes" in variant:
        return _split(_encode("".join(leading + texts)))
    return [_encode(text) for text in leading + texts]


async def _paced(events: Sequence[SSEItem], variant: Variant) -> AsyncIterator[bytes]:
    """The stream's body: one event every :data:`PACE_S` (faster past
    :data:`PACED_AT_MOST_S` in all), as a model would write them; under
    ``stream_buffered_burst``, the same wait first and then every event in one write."""
    leading, texts = _texts(events, variant)
    if "stream_buffered_burst" in variant:
        await asyncio.sleep(pace(len(texts)) * max(0, len(texts) - 1))
        yield _encode("".join(leading + texts))
        return
    split = "split_writes" in variant
    every = pace(len(texts))
    writes = [(0.0, text) for text in leading] + [(every if n else 0.0, text)
                                                  for n, text in enumerate(texts)]
    for pause, text in writes:
        if pause:
            await asyncio.sleep(pause)
        for piece in _split(_encode(text)) if split else [_encode(text)]:
            yield piece
            if split:
                await asyncio.sleep(0)


class EventStream(StreamingResponse):
    """A stream of SSE events that remembers them, so it can be cut after any event."""

    def __init__(self, events: Sequence[SSEItem], variant: Variant, media: str) -> None:
        self.events = list(events)
        self.variant = variant
        super().__init__(_paced(self.events, variant), media_type=media,
                         headers=_STREAM_HEADERS)


def event_stream(events: Sequence[SSEItem], variant: Variant,
                 media: str = "text/event-stream") -> Response:
    """The streamed answer of ``events`` (cut half-way under the ``stream_cut`` fault)."""
    if "stream_cut" in variant:
        pieces = sse_pieces(events, variant)
        return CutStream(pieces[:max(2, len(pieces) // 2)], media, _STREAM_HEADERS)
    return EventStream(events, variant, media)


class CutStream(Response):
    """Sends ``pieces`` of a body, then returns without finishing it, so the server closes the
    connection mid-body (no final chunk). The body is chunked unless ``keep_length``, when the
    ``Content-Length`` of the whole answer is announced and only part of it sent."""

    def __init__(self, pieces: list[bytes], media: str | None, headers: dict[str, str],
                 status_code: int = 200, *, keep_length: bool = False) -> None:
        super().__init__(status_code=status_code, media_type=media, headers=headers)
        self.pieces = pieces
        self.keep_length = keep_length

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(k, v) for k, v in self.raw_headers
                   if self.keep_length or k != b"content-length"]
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": headers})
        for piece in self.pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})


def cut(response: Response, after: int) -> Response:
    """``response`` cut on purpose: a stream after its first ``after`` events (no final chunk,
    so no finish_reason and no ``[DONE]``), any other answer after half its body."""
    if isinstance(response, CutStream):
        return response
    if isinstance(response, EventStream):
        pieces = sse_pieces(response.events[:max(0, after)], response.variant)
        cut_answer = CutStream(pieces, None, {}, response.status_code)
        cut_answer.raw_headers = list(response.raw_headers)
        return cut_answer
    body = bytes(response.body)
    cut_answer = CutStream([body[:len(body) // 2]], None, {}, response.status_code,
                           keep_length=True)
    cut_answer.raw_headers = list(response.raw_headers)
    return cut_answer
