"""The reference as a recording upstream: what it received and what it answered, per request.

Put a relay in front of the reference and the record shows what the relay forwarded (model,
parameters, messages, headers) and what the upstream answered, next to what the client got.
Every request to ``/v1/...`` or ``/variant/<spec>/v1/...`` is recorded by
:class:`RecordingMiddleware` into its app's :class:`Recorder`, a ring buffer (default
:data:`MAX_RECORDS` records, the oldest dropped; each stored body cut at :data:`MAX_BODY`, at
most :data:`MAX_EVENTS` stream events) read through ``GET /__conformance/records``:

``{"seq", "time", "method", "path" (without /variant/<spec>), "variant", "query", "headers",
"body" (the request's JSON, else null), "body_text" (a body that is not JSON, cut at
:data:`MAX_BODY_TEXT`), "markers", "response": {"status", "headers", "body" (the answer's JSON
unless streamed), "events" (each SSE data payload as JSON, or the string "[DONE]"; null unless
streamed), "event_names" (the ``event:`` names of a /v1/messages or /v1/responses stream, else
null), "complete"}, "injected" (the armed behaviour applied, or null)}``.

Markers are the matches of :data:`MARKER` in the request body: the suite plants one in a
prompt and finds its requests by it (``?marker=``). Records never hold the server's key: the
values of ``authorization`` (its scheme word kept) and ``x-api-key`` become
``<reference key>`` when they are the server's key and ``<other key>`` otherwise, and the key
is replaced wherever else it appears. Requests and records are served on one event loop; a
lock keeps a reader in another thread safe.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.reference.headers import split_api_path
from conformance.sse import SSEDecoder

#: A marker the suite plants in message text; each match indexes the record.
MARKER = re.compile(r"cfm-[0-9a-z]{10,40}")
MAX_RECORDS = 1000
#: Each stored body (request or answer) is cut here; a longer one is not parsed.
MAX_BODY = 256 * 1024
#: A request body that is not JSON is kept as text up to here.
MAX_BODY_TEXT = 64 * 1024
MAX_EVENTS = 2000
REFERENCE_KEY = "<reference key>"
OTHER_KEY = "<other key>"
#: The ASGI scope key of the :class:`RequestNote` shared with the endpoints.
SCOPE_KEY = "conformance.note"


def find_markers(text: str) -> list[str]:
    """Every distinct :data:`MARKER` match in ``text``, in order of appearance."""
    return list(dict.fromkeys(MARKER.findall(text)))


@dataclass
class RequestNote:
    """What the endpoints and the middleware share about one request: its markers, and the
    armed behaviour the endpoint applied."""

    markers: list[str]
    injected: str | None = None


@dataclass
class Record:
    """One request as received and answered (see the module docstring for its JSON)."""

    seq: int
    time: float
    method: str
    path: str
    variant: str | None
    query: str
    headers: dict[str, str]
    body: Any
    body_text: str | None
    markers: list[str]
    note: RequestNote
    response: dict[str, Any] = field(default_factory=lambda: {
        "status": 0, "headers": {}, "body": None, "events": None, "event_names": None,
        "complete": False})

    def to_json(self) -> dict[str, Any]:
        """The record as ``GET /__conformance/records`` lists it."""
        response = dict(self.response)
        for key in ("events", "event_names"):
            if response[key] is not None:
                response[key] = list(response[key])
        return {"seq": self.seq, "time": self.time, "method": self.method, "path": self.path,
                "variant": self.variant, "query": self.query, "headers": dict(self.headers),
                "body": self.body, "body_text": self.body_text, "markers": list(self.markers),
                "response": response, "injected": self.note.injected}


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class Recorder:
    """The records of one app: a ring buffer of at most ``limit``, indexed by marker."""

    def __init__(self, api_key: str | None, limit: int = MAX_RECORDS) -> None:
        if limit < 1:
            raise ValueError(f"record limit must be >= 1, got {limit}")
        self.api_key = api_key
        self.limit = limit
        self._records: deque[Record] = deque()
        self._by_marker: dict[str, deque[Record]] = {}
        self._seq = 0
        self._lock = threading.Lock()

    # -- keys ----------------------------------------------------------------------------

    def key_label(self, token: str) -> str:
        """``<reference key>`` for the server's key, ``<other key>`` for any other ("" for
        none)."""
        if not token:
            return ""
        key = self.api_key
        if key and hmac.compare_digest(token.encode(), key.encode()):
            return REFERENCE_KEY
        return OTHER_KEY

    def scrub(self, text: str) -> str:
        """``text`` with the server's key replaced by ``<reference key>``."""
        if self.api_key and self.api_key in text:
            return text.replace(self.api_key, REFERENCE_KEY)
        return text

    def request_headers(self, raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
        """Request headers by lower-case name, with the keys in them replaced."""
        out: dict[str, str] = {}
        for name_bytes, value_bytes in raw:
            name, value = name_bytes.decode("latin-1").lower(), value_bytes.decode("latin-1")
            if name == "authorization":
                scheme, space, token = value.strip().partition(" ")
                value = (f"{scheme} {self.key_label(token.strip())}".rstrip() if space
                         else self.key_label(scheme))
            elif name == "x-api-key":
                value = self.key_label(value.strip())
            else:
                value = self.scrub(value)
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def response_headers(self, raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
        """Response headers by lower-case name, the key replaced."""
        out: dict[str, str] = {}
        for name_bytes, value_bytes in raw:
            name = name_bytes.decode("latin-1").lower()
            value = self.scrub(value_bytes.decode("latin-1"))
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    # -- the ring buffer ---------------------------------------------------------------------

    def new_record(self, scope: Any, body: bytes, note: RequestNote) -> Record:
        """The record of a request (not yet listed: :meth:`add` lists it)."""
        variant, path = split_api_path(scope["path"]) or (None, scope["path"])
        text = self.scrub(body.decode("utf-8", errors="replace"))
        parsed = _json_or_none(text) if body and len(body) <= MAX_BODY else None
        body_text = text[:MAX_BODY_TEXT] if body and parsed is None else None
        return Record(0, time.time(), scope["method"], path, variant,
                      self.scrub(scope.get("query_string", b"").decode("latin-1")),
                      self.request_headers(scope.get("headers", [])), parsed, body_text,
                      list(note.markers), note)

    def add(self, record: Record) -> None:
        """List ``record`` (numbering it), dropping the oldest beyond the limit."""
        with self._lock:
            self._seq += 1
            record.seq = self._seq
            self._records.append(record)
            for marker in record.markers:
                self._by_marker.setdefault(marker, deque()).append(record)
            while len(self._records) > self.limit:
                old = self._records.popleft()
                for marker in old.markers:
                    index = self._by_marker.get(marker)
                    if index and index[0] is old:
                        index.popleft()
                    if not index:
                        self._by_marker.pop(marker, None)

    def records(self, marker: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Records as JSON, oldest first: all with ``marker``, or else the last ``limit``."""
        with self._lock:
            if marker is not None:
                chosen = list(self._by_marker.get(marker, ()))
            else:
                chosen = list(self._records)[-limit:] if limit > 0 else []
            return [record.to_json() for record in chosen]


class _Answer:
    """Fills a record's ``response`` from the ASGI messages of the answer, within the caps."""

    def __init__(self, recorder: Recorder, record: Record, request_stream: bool,
                 named: bool) -> None:
        self.recorder = recorder
        self.record = record
        self.request_stream = request_stream
        self.named = named  # a route whose SSE events carry event: names
        self.streamed = False
        self.buffer = bytearray()
        self.seen = 0
        self.decoder: SSEDecoder | None = None

    def start(self, message: Any) -> None:
        status = int(message["status"])
        headers = self.recorder.response_headers(message.get("headers", []))
        media = headers.get("content-type", "").lower()
        self.streamed = media.startswith("text/event-stream") or (
            self.request_stream and 200 <= status < 300)
        response = self.record.response
        response.update(status=status, headers=headers)
        if self.streamed:
            self.decoder = SSEDecoder()
            response["events"] = []
            response["event_names"] = [] if self.named else None

    def body(self, chunk: bytes) -> None:
        room = MAX_BODY - self.seen
        if room <= 0 or not chunk:
            self.seen += len(chunk)
            return
        piece = chunk[:room]
        self.seen += len(chunk)
        if self.decoder is None:
            self.buffer.extend(piece)
            return
        response = self.record.response
        for event in self.decoder.feed(piece):
            if len(response["events"]) >= MAX_EVENTS:
                break
            data = self.recorder.scrub(event.data)
            parsed = data if data == "[DONE]" else _json_or_none(data)
            response["events"].append(data if parsed is None else parsed)
            if response["event_names"] is not None:
                response["event_names"].append(event.event)

    def finish(self, complete: bool) -> None:
        response = self.record.response
        if self.decoder is None and self.seen <= MAX_BODY and self.buffer:
            response["body"] = _json_or_none(
                self.recorder.scrub(self.buffer.decode("utf-8", errors="replace")))
        self.buffer = bytearray()
        response["complete"] = complete


async def _read_body(receive: Any) -> tuple[bytes, bool]:
    """The whole request body, and whether the client went away while it was read."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


class RecordingMiddleware:
    """ASGI middleware recording every API request into ``recorder``.

    The request body is read first (and handed on unchanged); the record is listed when the
    answer starts and is complete once its last byte is handed to the server, before the
    client can see it, so a client that has its answer finds it recorded.
    """

    def __init__(self, app: Any, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or split_api_path(scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        body, gone = await _read_body(receive)
        note = RequestNote(find_markers(body.decode("utf-8", errors="replace")))
        scope[SCOPE_KEY] = note
        record = self.recorder.new_record(scope, body, note)
        request = record.body if isinstance(record.body, dict) else {}
        answer = _Answer(self.recorder, record, request.get("stream") is True,
                         record.path.rstrip("/") in ("/v1/messages", "/v1/responses"))
        replayed = False

        async def replay() -> Any:
            nonlocal replayed, gone
            if not replayed:
                replayed = True
                if gone:
                    return {"type": "http.disconnect"}
                return {"type": "http.request", "body": body, "more_body": False}
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
            return message

        started = finished = False

        async def recording_send(message: Any) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
                answer.start(message)
                self.recorder.add(record)
            elif message["type"] == "http.response.body":
                answer.body(message.get("body", b""))
                if not message.get("more_body", False):
                    finished = True
                    answer.finish(complete=not gone)
            try:
                await send(message)
            except BaseException:
                record.response["complete"] = False  # the client went away
                raise

        try:
            await self.app(scope, replay, recording_send)
        except BaseException:
            if not started:
                record.response["status"] = 500
            raise
        finally:
            if not started:
                self.recorder.add(record)
            if not finished:
                answer.finish(complete=False)
