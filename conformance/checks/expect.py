"""Judging helpers shared by the checks: they turn an :class:`Exchange` into data or a verdict.

Outcome rules (CONTRACT.md): a feature declined with a well-formed 4xx error envelope is
``unsupported``; anything else that is not the documented success — a 5xx, an error inside an
HTTP 200, a non-JSON body, a silently ignored feature — is a ``fail``.  A rejected API key or
rate limiting after retries means no verdict could be reached (``error``).
"""

from __future__ import annotations

import json
from typing import Any

from conformance.errors import Failure, SuiteError, Unsupported
from conformance.transport import Exchange
from conformance.validation import first_violation


class CredentialsRejected(SuiteError):
    """The provider refused the configured key on an ordinary request: fix providers.yaml."""


class RateLimited(SuiteError):
    """Still rate limited after the configured retries."""


def snippet(value: Any, limit: int = 160) -> str:
    """A one-line, length-limited rendering of a body or value for messages."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_envelope(exchange: Exchange) -> dict[str, Any] | None:
    """The ``error`` object when the body is an OpenAI error envelope with a message."""
    body = exchange.json
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error: dict[str, Any] = body["error"]
        if isinstance(error.get("message"), str):
            return error
    return None


def describe(exchange: Exchange) -> str:
    """``HTTP 400 application/json {"error": ...}`` — what came back, in one line."""
    if exchange.status is None:
        return "no response"
    body = exchange.json if exchange.json is not None else exchange.text
    ctype = exchange.content_type or "no content-type"
    return f"HTTP {exchange.status} {ctype} {snippet(body, 120)}".rstrip()


def raise_for_status(exchange: Exchange, feature: str | None = None) -> None:
    """The verdict for a non-2xx answer to a valid request (nothing for a 2xx): 401/403 and
    429 are ``error``; with ``feature``, a 4xx error envelope is ``unsupported``; anything
    else is a ``fail``."""
    if exchange.ok:
        return
    status = exchange.status or 0
    envelope = error_envelope(exchange)
    if status in (401, 403):
        raise CredentialsRejected(
            f"the provider rejected the configured key: {describe(exchange)}"
        )
    if status == 429:
        raise RateLimited(f"rate limited after {exchange.attempts} attempts: {describe(exchange)}")
    if feature and 400 <= status < 500 and envelope is not None:
        raise Unsupported(f"{feature} declined: HTTP {status} {snippet(envelope['message'], 140)}")
    raise Failure(f"expected HTTP 200, got {describe(exchange)}")


def expect_completion(exchange: Exchange, *, feature: str | None = None) -> dict[str, Any]:
    """An HTTP 200 JSON body with a non-empty ``choices`` list, or a verdict.

    ``feature`` names what the request exercises: with it, a well-formed 4xx is
    ``unsupported``; without it (core behaviour) any non-200 is a ``fail``.
    """
    raise_for_status(exchange, feature)
    body = exchange.json
    if not isinstance(body, dict):
        raise Failure(f"HTTP {exchange.status} but the body is not a JSON object: "
                      f"{describe(exchange)}")
    if "error" in body and "choices" not in body:
        raise Failure(f"error reported inside HTTP {exchange.status} (must be 4xx/5xx): "
                      f"{snippet(body)}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not all(
        isinstance(c, dict) for c in choices
    ):
        raise Failure(f"expected a non-empty 'choices' list, got {snippet(choices)}")
    return body


def message_text(choice: dict[str, Any]) -> str:
    """The text of a choice's message (string content, or text parts joined)."""
    message = choice.get("message")
    if not isinstance(message, dict):
        raise Failure(f"choices[{choice.get('index', 0)}].message missing: {snippet(choice)}")
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def answer_text(body: dict[str, Any]) -> str:
    """The text of the first choice."""
    return message_text(body["choices"][0])


def expect_stream(exchange: Exchange, *, feature: str | None = None) -> list[dict[str, Any]]:
    """The parsed chunks of a successful event stream, or a verdict."""
    raise_for_status(exchange, feature)
    if not exchange.data_events():
        body = exchange.json
        if isinstance(body, dict) and "error" in body:
            raise Failure(f"error reported inside HTTP {exchange.status} instead of a stream: "
                          f"{snippet(body)}")
        if isinstance(body, dict) and "choices" in body:
            raise Failure("stream: true answered with a single non-stream JSON completion")
        raise Failure(f"stream: true answered without any SSE data event: {describe(exchange)}")
    chunks = exchange.chunks()
    if not chunks:
        raise Failure(f"no JSON chunk in the event stream: {snippet(exchange.text)}")
    return chunks


class Reassembled:
    """The text, finish reasons and roles of a stream, per choice index."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.content: dict[int, str] = {}
        self.finish: dict[int, list[str]] = {}
        self.roles: dict[int, list[str]] = {}
        self.content_chunks: dict[int, int] = {}
        self.usage: list[Any] = []
        for chunk in chunks:
            if chunk.get("usage") is not None:
                self.usage.append(chunk["usage"])
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict):
                    continue
                index = choice.get("index", 0)
                index = index if isinstance(index, int) else 0
                delta = choice.get("delta") or {}
                if isinstance(delta, dict):
                    text = delta.get("content")
                    if isinstance(text, str) and text:
                        self.content[index] = self.content.get(index, "") + text
                        self.content_chunks[index] = self.content_chunks.get(index, 0) + 1
                    role = delta.get("role")
                    if isinstance(role, str):
                        self.roles.setdefault(index, []).append(role)
                reason = choice.get("finish_reason")
                if reason is not None:
                    self.finish.setdefault(index, []).append(str(reason))

    def text(self, index: int = 0) -> str:
        return self.content.get(index, "")

    def finish_reason(self, index: int = 0) -> str | None:
        reasons = self.finish.get(index)
        return reasons[-1] if reasons else None


def expect_schema(name: str, instance: Any, what: str, *, strict: bool = False) -> None:
    """Fail with the JSON path of the first deviation from the generated OpenAI schema.

    Unless ``strict``, a missing property whose schema admits null counts as null (the
    official SDKs read both alike); ``chat.schema_strict`` reports such omissions separately.
    """
    violation = first_violation(name, instance, absent_as_null=not strict)
    if violation is not None:
        raise Failure(f"{what} deviates from the OpenAI schema at {violation}")


def usage_numbers(usage: Any, where: str) -> tuple[int, int, int]:
    """(prompt, completion, total) of a usage object, or a ``fail`` naming what is wrong."""
    if not isinstance(usage, dict):
        raise Failure(f"{where}: no usage object (got {snippet(usage)})")
    numbers = []
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise Failure(f"{where}: usage.{key} must be a non-negative integer, got "
                          f"{snippet(value)}")
        numbers.append(value)
    return numbers[0], numbers[1], numbers[2]


def expect_client_error(
    exchange: Exchange, what: str, statuses: tuple[int, ...] = (400, 422)
) -> dict[str, Any]:
    """A 4xx (one of ``statuses``) with the OpenAI error envelope, or a ``fail`` saying why.

    OpenAI answers invalid requests with 400 (``invalid_request_error``); 422 is what many
    validating frameworks send and clients treat alike.  A 5xx for a client mistake is a fail:
    clients retry 5xx.  An error inside an HTTP 200 and a non-JSON body are fails.
    """
    status = exchange.status or 0
    body = exchange.json
    if 200 <= status < 300:
        if isinstance(body, dict) and "error" in body:
            raise Failure(f"{what}: error reported inside HTTP {status} (must be 4xx): "
                          f"{snippet(body)}")
        raise Failure(f"{what} was accepted: {describe(exchange)}")
    expected = " or ".join(str(s) for s in statuses)
    if status >= 500:
        raise Failure(f"{what}: server error instead of a client error (expected {expected}): "
                      f"{describe(exchange)}")
    if status not in statuses:
        raise Failure(f"{what}: expected HTTP {expected}, got {describe(exchange)}")
    envelope = error_envelope(exchange)
    if envelope is None:
        kind = "a non-JSON body" if body is None else "JSON without the error envelope"
        raise Failure(f"{what}: HTTP {status} with {kind} (expected "
                      f"{{\"error\": {{\"message\": …}}}}): {describe(exchange)}")
    return envelope
