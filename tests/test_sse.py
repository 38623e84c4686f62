"""Unit tests for conformance.sse (WHATWG HTML, "Interpreting an event stream")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.sse import SSEDecoder, SSEEvent, decode_all


def decode(stream: bytes) -> list[SSEEvent]:
    return decode_all([stream])


def bytewise(stream: bytes) -> list[SSEEvent]:
    return decode_all([stream[i : i + 1] for i in range(len(stream))])


# --------------------------------------------------------------------------- line endings


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_line_endings(eol: bytes) -> None:
    stream = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert decode(stream) == [SSEEvent("a\nb"), SSEEvent("c")]
    assert bytewise(stream) == decode(stream)


def test_mixed_line_endings() -> None:
    assert decode(b"data: a\rdata: b\r\ndata: c\n\r\n") == [SSEEvent("a\nb\nc")]


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # If the LF were a second line end, this would dispatch "a" now.
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == [SSEEvent("a\nb")]
    assert decoder.feed(b"\n") == []
    assert decoder.close() == []
    assert not decoder.trailing_garbage


def test_cr_then_cr_across_feeds_is_two_line_ends() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [SSEEvent("a")]


def test_cr_split_then_empty_feed_keeps_crlf_pending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\xe4") == []  # first byte of a 3-byte character: no text yet
    assert decoder.feed(b"\xbd\xa0\n\n") == [SSEEvent("a")]
    # the "你" line is a field named "你" with empty value, ignored


def test_lf_cr_is_two_line_ends() -> None:
    assert decode(b"data: a\n\r") == [SSEEvent("a")]


# --------------------------------------------------------------------------- UTF-8


def test_multibyte_character_split_between_feeds() -> None:
    encoded = "data: 你好 🎉\n\n".encode()
    for cut in range(len(encoded) + 1):
        assert decode_all([encoded[:cut], encoded[cut:]]) == [SSEEvent("你好 🎉")], cut


def test_invalid_utf8_is_replaced() -> None:
    assert decode(b"data: a\xffb\n\n") == [SSEEvent("a\ufffdb")]


def test_leading_bom_is_skipped() -> None:
    assert decode(b"\xef\xbb\xbfdata: a\n\n") == [SSEEvent("a")]
    assert bytewise(b"\xef\xbb\xbfdata: a\n\n") == [SSEEvent("a")]


def test_only_one_leading_bom_is_skipped() -> None:
    # After the first BOM, the second is part of the field name "\ufeffdata" (unknown field).
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n") == []


def test_bom_later_in_stream_is_not_skipped() -> None:
    assert decode(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [SSEEvent("a")]


# --------------------------------------------------------------------------- fields


def test_comments_are_counted_not_dispatched() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b": keep-alive\n\n:\ndata: a\n: inside\n\n")
    assert events == [SSEEvent("a")]
    assert decoder.comments == 3


def test_only_one_space_after_colon_is_stripped() -> None:
    assert decode(b"data:a\n\ndata: a\n\ndata:  a\n\ndata:\ta\n\n") == [
        SSEEvent("a"),
        SSEEvent("a"),
        SSEEvent(" a"),
        SSEEvent("\ta"),
    ]


def test_value_may_contain_colons() -> None:
    assert decode(b'data: {"a": "b:c"}\n\n') == [SSEEvent('{"a": "b:c"}')]


def test_multiline_data_joined_with_lf() -> None:
    assert decode(b"data: a\ndata:\ndata: b\n\n") == [SSEEvent("a\n\nb")]


def test_field_without_colon_has_empty_value() -> None:
    assert decode(b"data\n\n") == [SSEEvent("")]
    assert decode(b"data\ndata\n\n") == [SSEEvent("\n")]


def test_empty_data_line_dispatches_empty_event() -> None:
    assert decode(b"data:\n\n") == [SSEEvent("")]


def test_block_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\n\n\nid: 1\n\n") == []


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\nDATA: x\ndata: a\n\n") == [SSEEvent("a")]


def test_event_type() -> None:
    assert decode(b"event: error\ndata: a\n\ndata: b\n\nevent:\ndata: c\n\n") == [
        SSEEvent("a", event="error"),
        SSEEvent("b"),
        SSEEvent("c"),  # empty event type means the default, "message"
    ]


def test_event_type_is_reset_even_when_not_dispatched() -> None:
    assert decode(b"event: x\n\ndata: a\n\n") == [SSEEvent("a")]


def test_last_event_id_persists() -> None:
    decoder = SSEDecoder()
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\x00y\ndata: d\n\n"
    assert decoder.feed(stream) == [
        SSEEvent("a", id="1"),
        SSEEvent("b", id="1"),
        SSEEvent("c", id=""),
        SSEEvent("d", id=""),  # an id containing NULL is ignored
    ]
    assert decoder.last_event_id == ""


def test_id_without_data_still_sets_last_event_id() -> None:
    assert decode(b"id: 7\n\ndata: a\n\n") == [SSEEvent("a", id="7")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"retry: 1000", 1000),
        (b"retry:0", 0),
        (b"retry: 10.5", None),
        (b"retry: -1", None),
        (b"retry: 1e3", None),
        (b"retry: ", None),
        (b"retry:  5", None),
        ("retry: ١٢".encode(), None),  # non-ASCII digits
    ],
)
def test_retry_only_ascii_digits(line: bytes, expected: int | None) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(line + b"\ndata: a\n\n") == [SSEEvent("a", retry=expected)]
    assert decoder.retry == expected


def test_retry_without_data_sets_reconnection_time_only() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 500\n\ndata: a\n\n") == [SSEEvent("a")]
    assert decoder.retry == 500


# --------------------------------------------------------------------------- end of stream


def test_incomplete_event_at_eof_is_discarded() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [SSEEvent("a")]
    assert decoder.close() == []
    assert decoder.trailing_garbage


def test_unterminated_line_at_eof_is_discarded() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b") == [SSEEvent("a")]
    assert decoder.close() == []
    assert decoder.trailing_garbage


def test_unterminated_comment_is_trailing_garbage() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n: bye")
    decoder.close()
    assert decoder.trailing_garbage
    assert decoder.comments == 0


def test_truncated_utf8_at_eof_is_trailing_garbage() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\n\xe4\xbd") == [SSEEvent("a")]
    assert decoder.close() == []
    assert decoder.trailing_garbage


def test_clean_eof() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\nevent: x\n\n")
    assert decoder.close() == []
    assert not decoder.trailing_garbage
    assert decoder.close() == []


def test_feed_after_close_raises() -> None:
    decoder = SSEDecoder()
    decoder.close()
    with pytest.raises(ValueError, match="close"):
        decoder.feed(b"data: a\n\n")


def test_openai_style_stream() -> None:
    stream = (
        b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n'
        b": OPENROUTER PROCESSING\n\n"
        b'data: {"choices":[{"delta":{"content":"\xe4\xbd\xa0"}}]}\n\n'
        b"data: [DONE]\n\n"
    )
    events = bytewise(stream)
    assert [e.data for e in events] == [
        '{"choices":[{"delta":{"role":"assistant"}}]}',
        '{"choices":[{"delta":{"content":"你"}}]}',
        "[DONE]",
    ]


def test_event_is_frozen() -> None:
    event = SSEEvent("a")
    with pytest.raises(AttributeError):
        event.data = "b"  # type: ignore[misc]


# --------------------------------------------------------------------------- property

_TEXT = st.text(
    alphabet=st.sampled_from(list('ab :{}"你好🎉é\t')) | st.characters(exclude_categories=["Cs"]),
    max_size=12,
).map(lambda s: s.replace("\r", "").replace("\n", ""))
_NAME = st.sampled_from(["message", "error", "done", "你好"])


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    """An encoded stream and the events it must decode to."""
    eols = st.sampled_from(["\n", "\r", "\r\n"])
    sep = st.sampled_from([":", ": "])
    parts: list[str] = []
    if draw(st.booleans()):
        parts.append("\ufeff")
    expected: list[SSEEvent] = []
    last_id: str | None = None
    prev_eol = ""
    for _ in range(draw(st.integers(0, 5))):
        lines = draw(st.lists(_TEXT, min_size=1, max_size=4))
        event = draw(st.none() | _NAME)
        event_id = draw(st.none() | st.text(alphabet="0123456789abc", max_size=4))
        block: list[str] = []
        if draw(st.booleans()):
            block.append(":" + draw(_TEXT))
        if event is not None:
            block.append("event" + draw(sep) + event)
        if event_id is not None:
            block.append("id" + draw(sep) + event_id)
            last_id = event_id
        for line in lines:
            # With ":" alone a value starting with a space would lose it, so use ": ".
            block.append("data" + (": " if line.startswith(" ") else draw(sep)) + line)
            if draw(st.booleans()):
                block.append(": comment " + draw(_TEXT))
        block.append("")
        for line in block:
            eol = draw(eols)
            if not line and prev_eol == "\r" and eol.startswith("\n"):
                eol = "\r"  # "\r" + "\n" would be one CRLF, swallowing this empty line
            parts.append(line + eol)
            prev_eol = eol
        expected.append(SSEEvent("\n".join(lines), event=event, id=last_id))
    return "".join(parts).encode(), expected


@settings(max_examples=300, deadline=None, database=None)
@given(streams(), st.data())
def test_chunk_boundaries_do_not_matter(
    case: tuple[bytes, list[SSEEvent]], data: st.DataObject
) -> None:
    stream, expected = case
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20).map(sorted))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole = decode_all([stream])
    assert whole == expected
    assert decode_all(chunks) == whole
    assert bytewise(stream) == whole


@settings(max_examples=300, deadline=None, database=None)
@given(streams())
def test_generated_streams_decode_to_their_events(case: tuple[bytes, list[SSEEvent]]) -> None:
    stream, expected = case
    decoder = SSEDecoder()
    assert decoder.feed(stream) + decoder.close() == expected
    assert not decoder.trailing_garbage
