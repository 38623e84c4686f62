"""Armed misbehaviours: the reference as an upstream that fails on request, once or ``times``.

``POST /__conformance/arm`` with ``{"marker": M, "behaviour": B, "after": N, "retry_after": S,
"times": T}`` makes the next ``T`` (default 1) API requests whose body contains the marker
``M`` (a match of :data:`~conformance.reference.recording.MARKER`) answered with ``B`` instead
of the normal answer, so the suite can see what a relay in front of the reference does with an
upstream failure (retry it, pass it on, or hide it):

- ``cut_stream``: a stream sends its first ``after`` (default 2) data events, then the
  connection closes with no final chunk, no finish_reason and no ``[DONE]``; any other answer
  sends half its body and closes;
- ``rate_limit``: 429 with ``Retry-After: <retry_after>`` (default 1), ``x-ratelimit-*``
  remaining 0 and OpenAI's ``rate_limit_exceeded`` envelope (Error codes, 429 "Rate limit
  reached for requests", https://platform.openai.com/docs/guides/error-codes);
- ``server_error``: 500 with OpenAI's "The server had an error while processing your request";
- ``bad_request``: 400 ``context_length_exceeded`` on ``messages``.

On ``/v1/messages`` the errors use Anthropic's error body (``rate_limit_error``, ``api_error``,
``invalid_request_error``; https://docs.anthropic.com/en/api/errors). Armed entries are kept
in arming order, at most :data:`MAX_ARMED` (the oldest dropped).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from conformance.reference.envelopes import ApiError
from conformance.reference.recording import MARKER

BEHAVIOURS = ("cut_stream", "rate_limit", "server_error", "bad_request")
MAX_ARMED = 1000
_FIELDS = ("marker", "behaviour", "after", "retry_after", "times")


@dataclass
class Armed:
    """One armed misbehaviour; ``times`` counts down as requests get it."""

    marker: str
    behaviour: str
    after: int = 2
    retry_after: int = 1
    times: int = 1

    def to_json(self) -> dict[str, Any]:
        """The JSON form ``POST /__conformance/arm`` answers with."""
        return asdict(self)


def _count(body: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"'{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def parse_arm(body: Any) -> Armed:
    """The :class:`Armed` a ``POST /__conformance/arm`` body asks for; :class:`ValueError`
    names a bad or unknown field."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown field '{unknown[0]}' (known: {', '.join(_FIELDS)})")
    marker = body.get("marker")
    if not isinstance(marker, str) or not MARKER.fullmatch(marker):
        raise ValueError(f"'marker' must match {MARKER.pattern}, got {marker!r}")
    behaviour = body.get("behaviour")
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r} (known: {', '.join(BEHAVIOURS)})")
    return Armed(marker, behaviour, after=_count(body, "after", 2, 0),
                 retry_after=_count(body, "retry_after", 1, 0),
                 times=_count(body, "times", 1, 1))


class ArmedFaults:
    """The armed entries of one app (thread-safe: the suite may read them from its thread)."""

    def __init__(self, limit: int = MAX_ARMED) -> None:
        self._entries: deque[Armed] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def arm(self, armed: Armed) -> Armed:
        """Arm ``armed`` (dropping the oldest entry when full); returns it."""
        with self._lock:
            self._entries.append(armed)
        return armed

    def take(self, markers: Iterable[str]) -> Armed | None:
        """The oldest entry armed for any of ``markers``, counted as applied once (a copy
        with ``times`` = what is left of it), or None."""
        wanted = set(markers)
        if not wanted:
            return None
        with self._lock:
            for entry in self._entries:
                if entry.marker in wanted:
                    entry.times -= 1
                    if entry.times <= 0:
                        self._entries.remove(entry)
                    return Armed(entry.marker, entry.behaviour, entry.after, entry.retry_after,
                                 max(entry.times, 0))
        return None

    def pending(self) -> list[Armed]:
        """The entries still armed, oldest first."""
        with self._lock:
            return list(self._entries)


def armed_error(armed: Armed, model: str) -> ApiError | None:
    """The error an armed behaviour answers with (None for ``cut_stream``). Rendered by
    :func:`~conformance.reference.envelopes.render_error`: OpenAI's envelope, or Anthropic's
    error body on ``/v1/messages``."""
    if armed.behaviour == "rate_limit":
        wait = armed.retry_after
        headers = {"retry-after": str(wait), "x-ratelimit-remaining-requests": "0",
                   "x-ratelimit-remaining-tokens": "0",
                   "x-ratelimit-reset-requests": f"{wait}s",
                   "x-ratelimit-reset-tokens": f"{wait}s"}
        return ApiError(429, f"Rate limit reached for requests on {model} in organization "
                        "org-conformance on requests per min (RPM): Limit 10000, Used 10000, "
                        f"Requested 1. Please try again in {wait}s. Visit "
                        "https://platform.openai.com/account/rate-limits to learn more.",
                        "requests", code="rate_limit_exceeded", headers=headers)
    if armed.behaviour == "server_error":
        return ApiError(500, "The server had an error while processing your request. Sorry "
                        "about that!", "server_error")
    if armed.behaviour == "bad_request":
        return ApiError(400, "This model's maximum context length is 8192 tokens. However, "
                        "your messages resulted in 9021 tokens. Please reduce the length of "
                        "the messages.", param="messages", code="context_length_exceeded")
    return None
