"""Expectations for the faults of verdict precision: cut streams and relays that break the
Messages route without declining it (issue "Verdicts users can trust on real relays")."""

from __future__ import annotations

from tests.expectations import Expect
from tests.expectations.messages_api import _all

#: Every check that judges an OpenAI stream: a cut stream is a finding in each of them.
_STREAMED = (
    "streaming.matches_nonstream", "streaming.content_type", "streaming.chunk_schema",
    "streaming.role_first", "streaming.consistent_ids", "streaming.finish_reason",
    "streaming.done_sentinel", "streaming.nothing_after_done", "streaming.reassembled",
    "streaming.incremental", "streaming.real_time", "stop.stream", "max_tokens.stream", "n.stream",
    "tools.stream_index", "tools.stream_once", "tools.stream_arguments",
    "json_mode.json_schema_stream", "usage.stream_include_usage",
    "usage.stream_matches_nonstream", "params.model_echo", "sdk.stream",
)

#: fault → {check id: (outcome, fragment of the message)}; every other check must pass.
EXPECTED: dict[str, Expect] = {
    "stream_cut": {
        **{check: ("fail", "stream cut after") for check in _STREAMED},
        "messages_api.stream": ("fail", "stream cut after 3 events, no message_stop"),
        "messages_api.stream_event_names": ("fail", "no message_stop"),
    },
    "messages_version_header_dropped": _all(
        "skip", "the basic request failed (see messages_api.message): HTTP 400 says "
        "'anthropic-version' is wrong or missing",
        first=("fail", "HTTP 400 says 'anthropic-version' is wrong or missing, but the request "
               "carried a valid 'anthropic-version'")),
    "messages_upstream_404": _all(
        "skip", "the basic request failed (see messages_api.message): POST /messages exists",
        first=("fail", "POST /messages exists but HTTP 404 came with an Anthropic error body "
               "(not_found_error): the relay forwarded the request to an upstream")),
    "messages_500": _all(
        "skip", "the basic request failed (see messages_api.message): expected HTTP 200, got "
        "HTTP 500",
        first=("fail", "expected HTTP 200, got HTTP 500")),
}
