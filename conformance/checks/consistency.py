"""streaming consistency: ``stream: true`` changes how the answer is delivered, not what it is
(POST /chat/completions: "If set to true, the model response data will be streamed to the
client as it is generated").  The same request streamed and not streamed must end with the same
finish_reason and give answers of the same shape; ``usage.stream_matches_nonstream`` compares
their token counts.

The check reuses the usage family's shared pair of requests, so it costs no extra tokens.
"""

from __future__ import annotations

from typing import Any

from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    Reassembled,
    answer_text,
    error_envelope,
    expect_completion,
    expect_stream,
    snippet,
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable


async def _pair(ctx: CheckContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The CAPITAL question answered once non-streamed and once streamed."""
    plain = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT, share=True)
    body = expect_completion(plain)
    streamed = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT, stream=True,
                              stream_options={"include_usage": True}, share=True)
    if 400 <= (streamed.status or 0) < 500 and error_envelope(streamed) is not None:
        # include_usage declined (usage.stream_include_usage says so): stream without it.
        streamed = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT,
                                  stream=True, share=True)
    return body, expect_stream(streamed)


@check(
    "streaming.matches_nonstream",
    severity="degrades",
    title="Streamed and non-streamed answers agree",
    spec="POST /chat/completions (stream: true vs false): same choices, finish_reason, content",
    proves="The same request (the capital of France) answered streamed and not streamed ends "
    "with the same finish_reason, the same number of choices, and text answers that both "
    "contain 'Paris' (usage.stream_matches_nonstream compares the token counts).",
)
async def matches_nonstream(ctx: CheckContext) -> str:
    body, chunks = await _pair(ctx)
    parts = Reassembled(chunks)
    choices = body["choices"]
    finish, streamed_finish = choices[0].get("finish_reason"), parts.finish_reason(0)
    if streamed_finish is None:
        raise Failure(f"the stream never sends a finish_reason (non-streamed: {finish!r})")
    if finish != streamed_finish:
        raise Failure(f"finish_reason differs for the same request: {finish!r} non-streamed vs "
                      f"{streamed_finish!r} streamed")
    indexes = set(parts.finish) | set(parts.content) | set(parts.roles)
    if len(indexes) != len(choices):
        raise Failure(f"{len(choices)} choice(s) non-streamed but {len(indexes)} streamed")
    text, streamed_text = answer_text(body), parts.text(0)
    answer = prompts.CAPITAL_ANSWER
    has, streamed_has = answer in text.lower(), answer in streamed_text.lower()
    if has and not streamed_has:
        raise Failure(f"the streamed answer {snippet(streamed_text, 50) or '(empty)'} lacks "
                      f"{answer!r}, which the non-streamed {snippet(text, 50)} has")
    if streamed_has and not has:
        raise Failure(f"the non-streamed answer {snippet(text, 50) or '(empty)'} lacks "
                      f"{answer!r}, which the streamed {snippet(streamed_text, 50)} has")
    if not has:
        raise NotApplicable(f"inconclusive: neither answer names {answer!r} "
                            f"({snippet(text, 40)} / {snippet(streamed_text, 40)})")
    return f"finish_reason {finish!r} both ways; {snippet(text, 30)} / " \
           f"{snippet(streamed_text, 30)}"
