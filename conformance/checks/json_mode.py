"""json_mode: ``response_format`` makes the message content JSON (CreateChatCompletionRequest.
response_format: ``{"type": "json_object"}`` "ensures the message the model generates is valid
JSON"; ``{"type": "json_schema", ...}`` "ensures the model will match your supplied JSON
schema").  LALC and EZmodel document text / json_object / json_schema.

The content itself must parse: JSON wrapped in a Markdown code fence (how relays that emulate
JSON mode by prompting answer) is not valid JSON and fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator

from conformance import jsontext
from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    Reassembled,
    answer_text,
    chunk_at,
    expect_completion,
    expect_stream,
    snippet,
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable

#: json_object mode needs the word "JSON" in the messages (OpenAI returns 400 otherwise).
JSON_CAPITAL = prompts.user("What is the capital of France? Answer in JSON.")
#: A plain question: only the schema can make the answer JSON.
QUESTION = prompts.user("What is the capital of France?")
#: Room for {"capital": "Paris", "continent": "Europe"} and pretty-printing.
JSON_CAP = 40
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "capital": {"type": "string"},
        "continent": {"type": "string",
                      "enum": ["Europe", "Asia", "Africa", "Americas", "Oceania"]},
    },
    "required": ["capital", "continent"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "capital_answer", "strict": True, "schema": SCHEMA},
}
_FENCE = re.compile(r"^\s*```[\w-]*\s*\n.*\n?```\s*$", re.S)


def parse_json(text: str, finish: Any, mode: str,
               event_at: Callable[[int], tuple[str, int] | None] | None = None) -> Any:
    """The JSON value of ``text``, or a ``fail`` naming how it is not JSON; streamed,
    ``event_at`` gives the chunk that holds a character of the text (the fail names the one
    where the JSON breaks)."""
    if not text.strip():
        raise Failure(f"response_format {mode}: the answer has no content text at all")
    try:
        return jsontext.loads(text)
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, or an integer too long
        at = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
        why = jsontext.explain(exc)
        broken = event_at(min(at, len(text) - 1)) if event_at is not None else None
    if _FENCE.match(text):
        raise Failure(f"response_format {mode}: the JSON is wrapped in a Markdown code fence, "
                      f"so the content is not valid JSON: {snippet(text, 80)}", event=broken)
    if finish == "length":
        raise NotApplicable(f"inconclusive: the answer reached max_tokens ({JSON_CAP}) before "
                            f"the JSON ended (finish_reason 'length'): {snippet(text, 80)}")
    raise Failure(f"response_format {mode} ignored: the content is not valid JSON{why}: "
                  f"{snippet(text, 100)}", event=broken)


def _mentions_paris(value: Any, mode: str) -> None:
    if "paris" not in json.dumps(value, ensure_ascii=False).lower():
        raise Failure(f"response_format {mode}: the JSON does not answer the question (no "
                      f"'Paris'): {snippet(value, 100)}")


def _judge_schema(text: str, finish: Any,
                  event_at: Callable[[int], tuple[str, int] | None] | None = None) -> str:
    value = parse_json(text, finish, "json_schema", event_at)
    error = next(iter(sorted(Draft202012Validator(SCHEMA).iter_errors(value),
                             key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}"
                              for p in error.absolute_path)
        raise Failure(f"response_format json_schema: the JSON does not match the schema at "
                      f"{where}: {snippet(error.message, 80)}; got {snippet(value, 80)}")
    _mentions_paris(value, "json_schema")
    return f"schema-valid: {snippet(value, 50)}"


@check(
    "json_mode.json_object",
    severity="breaks-clients",
    title="response_format json_object returns a JSON object",
    spec="CreateChatCompletionRequest.response_format (ResponseFormatJsonObject)",
    proves="Asking for the capital of France 'in JSON' with response_format json_object gives "
    "content that parses as a bare JSON object (no Markdown fence, no prose) mentioning Paris, "
    "while the same request without response_format does not (control).",
)
async def json_object(ctx: CheckContext) -> str:
    control = await ctx.chat(messages=JSON_CAPITAL, max_tokens=JSON_CAP, share=True)
    plain = answer_text(expect_completion(control))
    try:
        bare = isinstance(jsontext.loads(plain), dict)
    except ValueError:
        bare = False
    if bare:
        raise NotApplicable("inconclusive: even without response_format the answer is a bare "
                            f"JSON object ({snippet(plain, 60)}), so json_object mode cannot "
                            "be shown to work")
    exchange = await ctx.chat(messages=JSON_CAPITAL, max_tokens=JSON_CAP,
                              response_format={"type": "json_object"})
    body = expect_completion(exchange, feature="response_format json_object")
    value = parse_json(answer_text(body), body["choices"][0].get("finish_reason"), "json_object")
    if not isinstance(value, dict):
        raise Failure(f"response_format json_object: the content is JSON but not an object: "
                      f"{snippet(value, 80)}")
    _mentions_paris(value, "json_object")
    return f"JSON object: {snippet(value, 50)}"


@check(
    "json_mode.json_schema",
    severity="breaks-clients",
    title="response_format json_schema returns schema-valid JSON",
    spec="CreateChatCompletionRequest.response_format (ResponseFormatJsonSchema, strict)",
    proves="With a strict json_schema ({capital: string, continent: enum}, no other keys) the "
    "plain question 'What is the capital of France?' — which never mentions JSON — is answered "
    "with content that parses and validates against the schema, with Paris as the capital.",
)
async def json_schema(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=QUESTION, max_tokens=JSON_CAP,
                              response_format=JSON_SCHEMA_FORMAT)
    body = expect_completion(exchange, feature="response_format json_schema")
    return _judge_schema(answer_text(body), body["choices"][0].get("finish_reason"))


@check(
    "json_mode.json_schema_stream",
    severity="breaks-clients",
    title="response_format json_schema applies to streamed answers",
    spec="CreateChatCompletionRequest.response_format with stream: true",
    proves="The same strict json_schema request streamed: the reassembled delta.content parses "
    "and validates against the schema (relays that rebuild streamed requests may drop "
    "response_format).",
)
async def json_schema_stream(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=QUESTION, max_tokens=JSON_CAP,
                              response_format=JSON_SCHEMA_FORMAT, stream=True)
    parts = Reassembled(expect_stream(exchange, feature="response_format json_schema"))

    def event_at(offset: int) -> tuple[str, int] | None:
        return chunk_at(exchange, parts.chunk_of(0, offset))

    return _judge_schema(parts.text(0), parts.finish_reason(0), event_at)
