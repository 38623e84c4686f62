"""max_tokens: the completion is cut at the token limit and says so with finish_reason
"length" (CreateChatCompletionRequest.max_tokens / max_completion_tokens;
CreateChatCompletionResponse.choices[].finish_reason: "length if the maximum number of tokens
specified in the request was reached").
"""

from __future__ import annotations

from typing import Any

from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    Reassembled,
    answer_text,
    chunk_at,
    expect_completion,
    expect_stream,
    snippet,
    usage_numbers,
)
from conformance.checks.registry import check
from conformance.errors import Failure

LIMIT = prompts.LENGTH_LIMIT


def _judge(text: str, finish: object, usage: object, param: str, *,
           finish_event: tuple[str, int] | None = None,
           usage_event: tuple[str, int] | None = None) -> str:
    """The verdict on an answer to the story with ``param``; streamed, ``finish_event`` and
    ``usage_event`` are the chunks that gave its finish_reason and its usage."""
    if finish != "length":
        words = len(text.split())
        raise Failure(f"{param}={LIMIT} ignored or unreported: finish_reason is {finish!r} "
                      f"(expected 'length') after {words} words: {snippet(text, 60)}",
                      event=finish_event)
    if usage is not None:
        _, completion, _ = usage_numbers(usage, "usage")
        if completion > LIMIT:
            raise Failure(f"{param}={LIMIT} but usage.completion_tokens is {completion}",
                          event=usage_event)
    if not text:
        raise Failure(f"{param}={LIMIT}: finish_reason 'length' but no text at all")
    return f"cut at {LIMIT} tokens: {snippet(text, 40)}"


@check(
    "max_tokens.length",
    severity="breaks-clients",
    title="max_tokens cuts the answer with finish_reason 'length'",
    spec="CreateChatCompletionRequest.max_tokens",
    proves="A story request with max_tokens 5 stops early with finish_reason 'length' and "
    "usage.completion_tokens ≤ 5.",
)
async def length(ctx: CheckContext) -> str:
    return await _non_stream(ctx, "max_tokens")


async def _non_stream(ctx: CheckContext, param: str) -> str:
    limit: dict[str, Any] = {param: LIMIT}
    exchange = await ctx.chat(messages=prompts.STORY, **limit)
    body = expect_completion(exchange, feature=param)
    return _judge(answer_text(body), body["choices"][0].get("finish_reason"), body.get("usage"),
                  param)


@check(
    "max_tokens.max_completion_tokens",
    severity="breaks-clients",
    title="max_completion_tokens cuts the answer with finish_reason 'length'",
    spec="CreateChatCompletionRequest.max_completion_tokens",
    proves="The newer max_completion_tokens parameter (which replaces the deprecated "
    "max_tokens) limits the answer the same way: finish_reason 'length', ≤ 5 tokens.",
)
async def max_completion_tokens(ctx: CheckContext) -> str:
    return await _non_stream(ctx, "max_completion_tokens")


@check(
    "max_tokens.stream",
    severity="breaks-clients",
    title="max_tokens applies to streamed answers and reports 'length'",
    spec="CreateChatCompletionRequest.max_tokens with stream: true",
    proves="Streamed with max_tokens 5, the final chunk's finish_reason is 'length' and the "
    "reassembled text is short.",
)
async def stream(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=prompts.STORY, max_tokens=LIMIT, stream=True)
    parts = Reassembled(expect_stream(exchange, feature="max_tokens"))
    usage = parts.usage[-1] if parts.usage else None
    finish_at = parts.finish_at.get(0)
    return _judge(parts.text(0), parts.finish_reason(0), usage, "max_tokens",
                  finish_event=chunk_at(exchange, finish_at[-1] if finish_at else None),
                  usage_event=chunk_at(exchange, parts.usage_at[-1] if parts.usage_at
                                       else None))
