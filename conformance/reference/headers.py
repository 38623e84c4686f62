"""The response headers OpenAI sends with every API answer, on every reference answer.

OpenAI's API reference ("Debugging requests",
https://platform.openai.com/docs/api-reference/debugging-requests) lists the meta headers
``x-request-id`` (here ``req_`` and 32 hex digits, fresh per request), ``openai-processing-ms``
and ``openai-version`` (``2020-10-01``), and the rate-limit headers of the rate limits guide
(https://platform.openai.com/docs/guides/rate-limits): ``x-ratelimit-limit-requests``,
``-limit-tokens``, ``-remaining-requests``, ``-remaining-tokens``, ``-reset-requests`` and
``-reset-tokens`` (durations such as ``6ms`` or ``1s``). :class:`OpenAIHeaders` adds them to
every answer on ``/v1/...`` and ``/variant/<spec>/v1/...`` (success or error, stream or not)
that does not set them itself; a 429 has no requests remaining.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from typing import Any

OPENAI_VERSION = "2020-10-01"
#: The reference's advertised limits per minute (requests, tokens).
LIMIT_REQUESTS = 10_000
LIMIT_TOKENS = 30_000_000
#: One request's share of a minute at LIMIT_REQUESTS.
RESET_REQUESTS = f"{60_000 // LIMIT_REQUESTS}ms"

_API_PATH = re.compile(r"(?:/variant/(?P<spec>[^/]*))?(?P<path>/v1(?:/.*)?)", re.S)


def split_api_path(path: str) -> tuple[str | None, str] | None:
    """``(variant spec or None, path without the /variant/<spec> prefix)`` for an API path
    (``/v1/...`` or ``/variant/<spec>/v1/...``); None for any other path."""
    match = _API_PATH.fullmatch(path)
    if match is None:
        return None
    return match.group("spec"), match.group("path")


def request_id() -> str:
    """A fresh ``x-request-id``: ``req_`` and 32 hex digits."""
    return "req_" + secrets.token_hex(16)


def openai_headers(status: int, elapsed_ms: int, request_bytes: int) -> dict[str, str]:
    """The meta and rate-limit headers of one answer. A request costs one request and about
    one token per 4 bytes of its body; a 429 leaves no requests."""
    tokens = max(1, request_bytes // 4)
    return {
        "x-request-id": request_id(),
        "openai-processing-ms": str(max(0, elapsed_ms)),
        "openai-version": OPENAI_VERSION,
        "x-ratelimit-limit-requests": str(LIMIT_REQUESTS),
        "x-ratelimit-limit-tokens": str(LIMIT_TOKENS),
        "x-ratelimit-remaining-requests": "0" if status == 429 else str(LIMIT_REQUESTS - 1),
        "x-ratelimit-remaining-tokens": str(max(0, LIMIT_TOKENS - tokens)),
        "x-ratelimit-reset-requests": RESET_REQUESTS,
        "x-ratelimit-reset-tokens": f"{max(1, math.ceil(tokens * 60_000 / LIMIT_TOKENS))}ms",
    }


class OpenAIHeaders:
    """ASGI middleware: :func:`openai_headers` on every API answer (names the app set win)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or split_api_path(scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        received = 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def stamping_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                elapsed = int((time.monotonic() - started) * 1000)
                for name, value in openai_headers(message["status"], elapsed, received).items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, counting_receive, stamping_send)
