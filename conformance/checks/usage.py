"""usage: token accounting (CompletionUsage; ChatCompletionStreamOptions.include_usage:
"an additional chunk will be streamed before the data: [DONE] message. The usage field on this
chunk shows the token usage statistics for the entire request, and the choices field will
always be an empty array. All other chunks will also include a usage field, but with a null
value.").  Relays bill from these numbers.
"""

from __future__ import annotations

from typing import Any

from conformance import tokens
from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    Reassembled,
    answer_text,
    chunk_at,
    expect_completion,
    expect_stream,
    usage_numbers,
)
from conformance.checks.registry import check
from conformance.errors import Failure
from conformance.exchange import Exchange


async def _plain(ctx: CheckContext) -> dict[str, Any]:
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT, share=True)
    return expect_completion(exchange)


async def _streamed(ctx: CheckContext) -> tuple[Exchange, list[dict[str, Any]]]:
    exchange = await ctx.chat(
        messages=prompts.CAPITAL, max_tokens=prompts.SHORT, stream=True,
        stream_options={"include_usage": True}, share=True,
    )
    return exchange, expect_stream(exchange, feature="stream_options.include_usage")


def close(a: int, b: int) -> bool:
    """Token counts agree within 10 % or 2 tokens (tokenisers of one model agree exactly)."""
    return abs(a - b) <= max(2, round(0.1 * max(a, b)))


@check(
    "usage.present",
    severity="degrades",
    title="Completions report usage",
    spec="CreateChatCompletionResponse.usage (CompletionUsage)",
    proves="A non-streamed completion carries usage with integer prompt_tokens, "
    "completion_tokens and total_tokens, and both prompt and completion counts are positive.",
)
async def present(ctx: CheckContext) -> str:
    body = await _plain(ctx)
    if "usage" not in body or body["usage"] is None:
        raise Failure("the completion has no usage object")
    prompt, completion, total = usage_numbers(body["usage"], "usage")
    if prompt == 0 or completion == 0:
        raise Failure(f"usage reports prompt_tokens={prompt}, completion_tokens={completion} "
                      "for a non-empty prompt and answer")
    return f"prompt {prompt}, completion {completion}, total {total}"


@check(
    "usage.arithmetic",
    severity="degrades",
    title="total_tokens = prompt_tokens + completion_tokens",
    spec="CompletionUsage.total_tokens",
    proves="The usage total equals prompt plus completion tokens (the spec's definition), so "
    "bills computed from either agree.",
)
async def arithmetic(ctx: CheckContext) -> str:
    body = await _plain(ctx)
    prompt, completion, total = usage_numbers(body.get("usage"), "usage")
    if total != prompt + completion:
        raise Failure(f"total_tokens {total} ≠ prompt_tokens {prompt} + completion_tokens "
                      f"{completion}")
    return f"{prompt} + {completion} = {total}"


@check(
    "usage.stream_include_usage",
    severity="degrades",
    title="stream_options.include_usage adds a final usage chunk",
    spec="ChatCompletionStreamOptions.include_usage",
    proves="With include_usage, the last chunk before [DONE] has choices: [] and a complete "
    "usage object (total = prompt + completion); earlier chunks have usage null or absent.",
)
async def stream_include_usage(ctx: CheckContext) -> str:
    exchange, chunks = await _streamed(ctx)
    carrying = [n for n, c in enumerate(chunks) if c.get("usage") is not None]
    if not carrying:
        raise Failure("include_usage ignored: no chunk carries usage")
    last = chunks[-1]
    final = chunk_at(exchange, len(chunks) - 1)
    if last.get("usage") is None:
        raise Failure(f"usage arrived in chunk {carrying[0]}, not in the last chunk before "
                      "[DONE]", event=chunk_at(exchange, carrying[0]))
    if last.get("choices") != []:
        raise Failure("usage came on a chunk with choices; the spec sends it on an extra final "
                      "chunk whose choices is an empty array", event=final)
    if len(carrying) > 1:
        raise Failure(f"{len(carrying)} chunks carry usage; only the final chunk should",
                      event=chunk_at(exchange, carrying[0]))
    prompt, completion, total = usage_numbers(last["usage"], "stream usage")
    if total != prompt + completion:
        raise Failure(f"stream usage total_tokens {total} ≠ {prompt} + {completion}",
                      event=final)
    if prompt == 0 or completion == 0:
        raise Failure(f"stream usage reports prompt_tokens={prompt}, "
                      f"completion_tokens={completion} for a non-empty prompt and answer",
                      event=final)
    return f"usage chunk: prompt {prompt}, completion {completion}"


@check(
    "usage.stream_matches_nonstream",
    severity="degrades",
    title="Streamed usage matches non-streamed usage",
    spec="CompletionUsage (stream and non-stream)",
    proves="The same request counted streamed and not streamed gives the same prompt_tokens "
    "(exactly for OpenAI models, whose tokenizer is public; else ±10 %), and the same "
    "completion_tokens when the answers are the same text.",
)
async def stream_matches_nonstream(ctx: CheckContext) -> str:
    body = await _plain(ctx)
    _, chunks = await _streamed(ctx)
    p1, c1, _ = usage_numbers(body.get("usage"), "non-stream usage")
    streamed = [c["usage"] for c in chunks if c.get("usage") is not None]
    if not streamed:
        raise Failure("the stream reports no usage to compare (see usage.stream_include_usage)")
    p2, c2, _ = usage_numbers(streamed[-1], "stream usage")
    # With OpenAI's public tokenizer the same messages count the same, exactly (billing.*).
    exact = tokens.encoding_for(ctx.model) is not None
    if (p1 != p2) if exact else not close(p1, p2):
        raise Failure(f"prompt_tokens differ: {p1} non-streamed vs {p2} streamed for the same "
                      "messages" + (f" ({ctx.model} has a public tokenizer: they must be equal)"
                                    if exact else ""))
    same_text = answer_text(body).strip() == Reassembled(chunks).text(0).strip()
    if same_text and not close(c1, c2):
        raise Failure(f"completion_tokens differ for the same answer text: {c1} non-streamed vs "
                      f"{c2} streamed")
    return f"prompt {p1}/{p2}, completion {c1}/{c2}"
