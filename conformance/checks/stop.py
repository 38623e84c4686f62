"""stop: generation ends before any ``stop`` sequence, which is not returned
(CreateChatCompletionRequest.stop: "Up to 4 sequences where the API will stop generating
further tokens. The returned text will not contain the stop sequence.").

Every stop check is guarded by a control: the same request without ``stop`` must show the stop
text, or the check cannot prove anything and says so (skip, "inconclusive").
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
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable


async def _control(ctx: CheckContext) -> str:
    """The answer without ``stop``: it must contain the stop text for the check to mean much."""
    exchange = await ctx.chat(messages=prompts.COUNT_TO_10, max_tokens=prompts.COUNT_CAP,
                              share=True)
    text = answer_text(expect_completion(exchange))
    if prompts.STOP_TEXT not in text:
        raise NotApplicable(
            f"inconclusive: without stop the answer never contains {prompts.STOP_TEXT!r} "
            f"({snippet(text, 60)}), so stop cannot be shown to work"
        )
    return text


def _judge(text: str, finish: Any, stop: Any,
           past_stop: tuple[str, int] | None = None) -> str:
    """The verdict on an answer to the count with ``stop``; ``past_stop`` is the stream event
    the stop text arrived in, if streamed."""
    if not text.strip():
        raise Failure(f"stop={stop!r}: no answer text at all (expected the count up to 6)")
    if prompts.STOP_TEXT in text:
        raise Failure(f"stop={stop!r} ignored: the answer still contains "
                      f"{prompts.STOP_TEXT!r}: {snippet(text, 80)}", event=past_stop)
    if finish != "stop":
        raise Failure(f"output was cut at the stop sequence but finish_reason is {finish!r}, "
                      "expected 'stop'")
    return f"cut before {prompts.STOP_TEXT!r}: {snippet(text, 40)}"


@check(
    "stop.string",
    severity="breaks-clients",
    title="stop as a string ends the answer",
    spec="CreateChatCompletionRequest.stop (string)",
    proves="Counting to 10 with stop '7' returns text without '7' and finish_reason 'stop', "
    "while the same request without stop does contain '7' (control).",
)
async def stop_string(ctx: CheckContext) -> str:
    return await _non_stream(ctx, prompts.STOP_TEXT, "stop")


async def _non_stream(ctx: CheckContext, stop: str | list[str], feature: str) -> str:
    await _control(ctx)
    exchange = await ctx.chat(messages=prompts.COUNT_TO_10, max_tokens=prompts.COUNT_CAP,
                              stop=stop)
    body = expect_completion(exchange, feature=feature)
    return _judge(answer_text(body), body["choices"][0].get("finish_reason"), stop)


@check(
    "stop.list",
    severity="breaks-clients",
    title="stop as a list honours every entry",
    spec="CreateChatCompletionRequest.stop (array, up to 4)",
    proves="With stop ['xyzzy', '7'] (the second entry is the one that occurs) the answer ends "
    "before '7', so every list entry is applied, not just the first.",
)
async def stop_list(ctx: CheckContext) -> str:
    return await _non_stream(ctx, prompts.STOP_LIST, "stop as a list")


@check(
    "stop.stream",
    severity="breaks-clients",
    title="stop applies to streamed answers",
    spec="CreateChatCompletionRequest.stop with stream: true",
    proves="The same stop '7' request streamed: the reassembled text lacks '7' and the stream's "
    "finish_reason is 'stop' (relays often apply stop only to non-streamed requests).",
)
async def stop_stream(ctx: CheckContext) -> str:
    await _control(ctx)
    exchange = await ctx.chat(messages=prompts.COUNT_TO_10, max_tokens=prompts.COUNT_CAP,
                              stop=prompts.STOP_TEXT, stream=True)
    parts = Reassembled(expect_stream(exchange, feature="stop"))
    text = parts.text(0)
    n = parts.chunk_of(0, text.find(prompts.STOP_TEXT)) if prompts.STOP_TEXT in text else None
    return _judge(text, parts.finish_reason(0), prompts.STOP_TEXT, chunk_at(exchange, n))
