"""n: several choices for one request (CreateChatCompletionRequest.n: "How many chat completion
choices to generate for each input message. Note that you will be charged based on the number
of generated tokens across all of the choices.").  API易, LALC and EZmodel document n (default 1).

The non-stream checks share one n=2 request, and its n=1 twin is the stop family's shared
control, so the family costs one extra completion plus one short streamed one.
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
    expect_schema,
    expect_stream,
    message_text,
    snippet,
    usage_numbers,
)
from conformance.checks.registry import check
from conformance.checks.usage import close
from conformance.errors import Failure, NotApplicable

N = 2
FEATURE = "n > 1"


async def _count(ctx: CheckContext, n: int | None) -> dict[str, Any]:
    """Counting to 10 (a multi-token answer every choice repeats), with ``n`` or without."""
    fields: dict[str, Any] = {} if n is None else {"n": n}
    exchange = await ctx.chat(messages=prompts.COUNT_TO_10, max_tokens=prompts.COUNT_CAP,
                              share=True, **fields)
    return expect_completion(exchange, feature=FEATURE if n else None)


@check(
    "n.choices",
    severity="breaks-clients",
    title="n=2 returns two indexed choices",
    spec="CreateChatCompletionRequest.n; CreateChatCompletionResponse.choices[].index",
    proves="A request with n=2 returns a schema-valid completion with exactly two choices, "
    "indexed 0 and 1, each a complete answer (the count) with its own finish_reason, rather "
    "than n being ignored.",
)
async def choices(ctx: CheckContext) -> str:
    body = await _count(ctx, N)
    expect_schema("chat.completion", body, "the completion")
    got = body["choices"]
    if len(got) != N:
        ignored = " ignored" if len(got) == 1 else ""
        raise Failure(f"n={N}{ignored}: {len(got)} choice(s) returned, expected {N}")
    indexes = sorted(c.get("index") for c in got)
    if indexes != list(range(N)):
        raise Failure(f"choice indexes are {indexes}, expected {list(range(N))}")
    for choice in got:
        text = message_text(choice)
        if "5" not in text:
            raise Failure(f"choices[{choice['index']}] is not an answer to the count: "
                          f"{snippet(text, 80)}")
        if choice.get("finish_reason") != "stop":
            raise Failure(f"choices[{choice['index']}].finish_reason is "
                          f"{choice.get('finish_reason')!r}, expected 'stop'")
    return f"{N} choices: {snippet(message_text(got[1]), 40)}"


@check(
    "n.usage",
    severity="degrades",
    title="Usage counts the tokens of every choice",
    spec="CreateChatCompletionRequest.n (\"charged based on the number of generated tokens "
    "across all of the choices\"); CompletionUsage",
    proves="With n=2, usage.completion_tokens covers both answers (about twice the n=1 count "
    "for answers of the same length) while prompt_tokens stays that of the one prompt, so "
    "bills computed from usage match what was generated.",
)
async def usage(ctx: CheckContext) -> str:
    two = await _count(ctx, N)
    if len(two["choices"]) < N:
        raise NotApplicable(f"n={N} returned {len(two['choices'])} choice (see n.choices)")
    one = await _count(ctx, None)
    p1, c1, _ = usage_numbers(one.get("usage"), "n=1 usage")
    p2, c2, _ = usage_numbers(two.get("usage"), f"n={N} usage")
    single = answer_text(one).strip()
    texts = [message_text(c).strip() for c in two["choices"]]
    if not single or c1 == 0:
        raise NotApplicable(f"inconclusive: the n=1 answer has no text or no completion tokens "
                            f"({c1})")
    density = c1 / len(single)
    estimate = density * sum(len(t) for t in texts)
    if c2 < 0.75 * estimate:
        raise Failure(f"n={N}: usage.completion_tokens is {c2}, but the {N} answers "
                      f"({sum(len(t) for t in texts)} chars) should count about "
                      f"{round(estimate)} (n=1: {c1} tokens for {len(single)} chars); only "
                      "some choices are counted")
    if not close(p1, p2):
        raise Failure(f"n={N}: usage.prompt_tokens is {p2}, n=1: {p1}; the prompt is sent and "
                      "counted once")
    return f"completion_tokens {c2} for {N} choices (n=1: {c1}), prompt_tokens {p2}"


def _first_deltas(chunks: list[dict[str, Any]]) -> dict[int, tuple[int, Any]]:
    """The first ``delta`` of each choice index in a stream, with the position of its chunk
    (a non-integer index counts as 0, as in :class:`Reassembled`)."""
    firsts: dict[int, tuple[int, Any]] = {}
    for n, chunk in enumerate(chunks):
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict):
                index = choice.get("index", 0)
                firsts.setdefault(index if isinstance(index, int) else 0,
                                  (n, choice.get("delta")))
    return firsts


@check(
    "n.stream",
    severity="breaks-clients",
    title="n=2 streams two separately indexed choices",
    spec="CreateChatCompletionStreamResponse.choices[].index with n > 1",
    proves="Streamed with n=2, the chunks carry choice indexes 0 and 1; each index opens with "
    "a delta carrying role 'assistant', reassembles into its own answer and ends with exactly "
    "one finish_reason 'stop' (relays that hard-code index 0 merge the choices into one "
    "garbled text; some send the role delta for index 0 only).",
)
async def stream(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT, n=N,
                              stream=True)
    chunks = expect_stream(exchange, feature=FEATURE)
    parts = Reassembled(chunks)
    firsts = _first_deltas(chunks)
    indexes = sorted(set(parts.content) | set(parts.finish))
    if indexes == [0]:
        finishes = len(parts.finish.get(0, []))
        if finishes > 1:
            raise Failure(f"all {finishes} choices were streamed under index 0, so they merge "
                          f"into one text: {snippet(parts.text(0), 60)}")
        raise Failure(f"n={N} ignored when streaming: only choice 0 was streamed")
    if indexes != list(range(N)):
        raise Failure(f"streamed choice indexes are {indexes}, expected {list(range(N))}")
    for index in indexes:
        at, first = firsts.get(index, (-1, None))
        role = first.get("role") if isinstance(first, dict) else None
        if role != "assistant":
            said = "has no role" if role is None else f"has role {role!r}"
            raise Failure(f"choice {index}'s first delta {said}, expected role 'assistant': "
                          f"{snippet(first, 60)}", event=chunk_at(exchange, at))
        text = parts.text(index)
        if prompts.CAPITAL_ANSWER not in text.lower():
            got = snippet(text, 60) if text else "no delta.content text"
            raise Failure(f"choice {index}: expected an answer containing "
                          f"{prompts.CAPITAL_ANSWER!r}, got {got}")
        reasons = parts.finish.get(index, [])
        if reasons != ["stop"]:
            raise Failure(f"choice {index} ended with finish_reason {reasons or None}, expected "
                          "exactly one 'stop'")
    return f"{N} streamed choices: {snippet(parts.text(1), 40)}"
