"""A pure Server-Sent Events decoder: bytes in, events out, no I/O.

Implements the WHATWG HTML Standard, section 9.2 "Server-sent events", subsections
"Parsing an event stream" and "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

* the stream is UTF-8, decoded with replacement of invalid sequences; one leading U+FEFF
  BOM is skipped;
* lines end with CRLF, LF or CR (a CRLF split across two ``feed`` calls is one line end);
* an empty line dispatches the event; a line starting with ``:`` is a comment;
* ``field:value`` with at most one space after the colon stripped; a line without a colon is
  a field name with an empty value; unknown fields are ignored;
* ``data`` lines are joined with LF; an event whose data buffer is empty is not dispatched;
* ``id`` values containing U+0000 are ignored; ``retry`` is used only if all ASCII digits;
* at end of stream an incomplete event is discarded (reported via ``trailing_garbage``).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "decode_all"]

_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event.

    ``event`` is the event type, or None when the stream gave none (the spec's default type
    "message"). ``id`` is the spec's last event ID string, which persists across events until
    another ``id`` field changes it; None when no ``id`` field has been seen. ``retry`` is the
    value of a valid ``retry`` field in this event's block, if any.
    """

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental event-stream decoder; feed it bytes in chunks of any size.

    Attributes:
        comments: number of comment lines (starting with ``:``) seen so far.
        last_event_id: the last event ID string, or None if no ``id`` field has been seen.
        retry: the latest valid reconnection time in milliseconds, or None.
        trailing_garbage: set by :meth:`close` when the stream ended with an unterminated line
            or with data lines that were never dispatched by an empty line.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line = ""  # text of the current, not yet terminated, line
        self._bom_checked = False
        self._skip_lf = False  # the previous text ended with CR: a leading LF completes CRLF
        self._data: list[str] = []
        self._data_chars = 0  # characters held in _data (see pending)
        self._event_type = ""
        self._event_retry: int | None = None
        self._closed = False
        self.comments = 0
        self.last_event_id: str | None = None
        self.retry: int | None = None
        self.trailing_garbage = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Decode ``data`` and return the events completed by it."""
        if self._closed:
            raise ValueError("feed() after close()")
        return self._feed_text(self._decoder.decode(data))

    @property
    def pending(self) -> int:
        """Characters held for the line and the event not yet complete (a caller bounds
        them to stop a provider that never ends a line or an event)."""
        return len(self._line) + self._data_chars

    def discard(self) -> None:
        """Drop what is pending without dispatching it (a read was stopped)."""
        self._closed = True
        self._line, self._data, self._data_chars = "", [], 0

    def close(self) -> list[SSEEvent]:
        """Signal end of stream and return any remaining events.

        Per the spec an incomplete event at end of stream is discarded, so this returns no
        events; it sets :attr:`trailing_garbage` if anything was discarded.
        """
        if self._closed:
            return []
        events = self._feed_text(self._decoder.decode(b"", final=True))
        self._closed = True
        self.trailing_garbage = bool(self._line) or bool(self._data)
        self._line = ""
        self._data = []
        self._data_chars = 0
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        if not self._bom_checked:
            self._bom_checked = True
            if text.startswith(_BOM):
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        events: list[SSEEvent] = []
        start = 0
        for match in _LINE_END.finditer(text):
            line = self._line + text[start : match.start()]
            self._line = ""
            start = match.end()
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        self._line += text[start:]
        if start and start == len(text) and text.endswith("\r"):
            self._skip_lf = True
        return events

    def _process_line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_chars += len(value) + 1
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = self._event_retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event_type, retry = self._data, self._event_type, self._event_retry
        self._data, self._event_type, self._event_retry = [], "", None
        self._data_chars = 0
        if not data:
            return None
        return SSEEvent(
            data="\n".join(data),
            event=event_type or None,
            id=self.last_event_id,
            retry=retry,
        )


def decode_all(chunks: Iterable[bytes]) -> list[SSEEvent]:
    """Decode a complete stream given as byte chunks and return all its events."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events
