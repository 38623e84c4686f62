"""billing: the tokens a provider bills, counted again on the client side.

For OpenAI's models the tokenizer is public (o200k_base, cl100k_base) and so is the rule that
turns a chat message list into ``prompt_tokens`` (OpenAI cookbook, "How to count tokens with
tiktoken": 3 tokens per message, 1 per name, 3 to prime the reply; :mod:`conformance.tokens`,
checked against the counts OpenAI's API reported).  A provider that forwards honestly bills
what the client can compute; one that adds a hidden system prompt, inflates usage or answers
with another model under the name does not, and no system prompt of a relay's can hide it.

Two requests share the work: a short plain message list, and the same list whose last user
message also carries a probe text whose token counts differ sharply between the encodings.
The difference between their bills cancels any fixed overhead, so it tells a hidden prompt (a
fixed excess) from inflation (an excess that grows with the text) and shows which tokenizer
counted.  Models without a public tokenizer (Claude, Gemini, DeepSeek, Qwen, Llama, ...) are
``skip``: never a guess.
"""

from __future__ import annotations

from typing import Any

from conformance import i18n, tokens
from conformance.checks.context import CheckContext
from conformance.checks.expect import answer_text, expect_completion, usage_numbers
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable

COOKBOOK = "https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken"
SYSTEM = "You are a terse assistant."
QUESTION = "Reply with the single word OK."
#: Completion tokens may differ from a re-encoding of the answer's text by this much: a model
#: samples tokens one at a time and may emit a sequence other than the canonical (greedy BPE)
#: encoding of the same text, e.g. "O"+"K" where the encoder would say "OK".
COMPLETION_ALLOWANCE = 2
MAX_TOKENS = 8


def _messages(extra: str = "") -> list[dict[str, str]]:
    content = f"{QUESTION} {extra}".strip()
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def _encoding(ctx: CheckContext) -> str:
    encoding = tokens.encoding_for(ctx.model)
    if encoding is None:
        raise NotApplicable(i18n.NO_TOKENIZER.format(model=repr(ctx.model)))
    return encoding


class _Billed:
    """One request's bill next to the client's count."""

    def __init__(self, messages: list[dict[str, str]], body: dict[str, Any], model: str
                 ) -> None:
        self.prompt, self.completion, self.total = usage_numbers(body.get("usage"), "usage")
        self.counted = tokens.count_chat(messages, model)
        self.excess = self.prompt - self.counted
        self.body = body
        details = body["usage"].get("completion_tokens_details")
        reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        self.reasoning = reasoning if isinstance(reasoning, int) and reasoning > 0 else 0


async def _billed(ctx: CheckContext, extra: str = "") -> _Billed:
    messages = _messages(extra)
    exchange = await ctx.chat(messages=messages, max_tokens=MAX_TOKENS, share=True)
    billed = _Billed(messages, expect_completion(exchange), ctx.model)
    ctx.facts.setdefault("billing", {})["prompt_billed" if not extra else "probe_billed"] = \
        billed.prompt
    return billed


async def _pair(ctx: CheckContext) -> tuple[_Billed, _Billed]:
    """The short request and the same request carrying the probe text (both shared)."""
    return await _billed(ctx), await _billed(ctx, tokens.fingerprint_text())


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:+.0f} %" if whole else "n/a"


@check(
    "billing.prompt_tokens",
    severity="breaks-clients",
    title="prompt_tokens equals the count of the messages sent",
    spec=f"{COOKBOOK} (num_tokens_from_messages); CompletionUsage.prompt_tokens",
    proves="For two plain message lists, usage.prompt_tokens equals the count by OpenAI's "
    "tokenizer and chat rule (within a few tokens of snapshot overhead); an excess is reported "
    "in tokens and percent, a fixed one as a hidden system prompt, a growing one as inflation.",
)
async def prompt_tokens(ctx: CheckContext) -> str:
    encoding = _encoding(ctx)
    short, probe = await _pair(ctx)
    allowance = tokens.OVERHEAD_ALLOWANCE
    ctx.facts["billing"].update(prompt_counted=short.counted, prompt_excess=short.excess)
    other = _counted_by(probe.prompt - short.prompt, _probe_added())
    if other is not None and other != encoding:
        # The probe was counted by another tokenizer (billing.tokenizer says so); its excess
        # is not an overcharge of these messages. The short English request counts alike in
        # both encodings, so it alone is judged here.
        probe = short
    if short.excess > allowance or probe.excess > allowance:
        grows = probe.excess - short.excess > allowance
        if grows:
            why = (f"inflated usage: {_percent(probe.excess, probe.counted)} on the longer "
                   f"request ({probe.prompt} billed, {probe.counted} counted), growing with "
                   "the text")
        else:
            why = "a hidden system prompt or a fixed surcharge (the excess does not grow " \
                  "with the text)"
        raise Failure(f"{short.excess} tokens billed per request beyond the messages "
                      f"({short.prompt} billed, {short.counted} counted, "
                      f"{_percent(short.excess, short.counted)}): {why}")
    if short.excess < -allowance:
        raise Failure(f"prompt_tokens {short.prompt} is {-short.excess} below the "
                      f"{short.counted} tokens of the messages: part of the prompt did not reach "
                      "the model, or usage is made up")
    return (f"prompt_tokens {short.prompt} and {probe.prompt} = counted {short.counted} and "
            f"{probe.counted} ({short.excess:+d}/{probe.excess:+d} tokens, allowance "
            f"±{allowance})")


def _counted_by(difference: int, added: dict[str, int]) -> str | None:
    """The one encoding whose count of the probe (``added``, per encoding) explains the
    ``difference`` between the two bills (a fixed overhead cancels out), or None."""
    matches = [enc for enc, n in added.items()
               if abs(n - difference) <= tokens.OVERHEAD_ALLOWANCE]
    return matches[0] if len(matches) == 1 else None


def _probe_added() -> dict[str, int]:
    """Tokens the probe adds to the request in each encoding (its text and one space, in the
    same message)."""
    text = tokens.fingerprint_text()
    return {enc: tokens.count_chat(_messages(text), enc) - tokens.count_chat(_messages(), enc)
            for enc in tokens.ENCODINGS}


@check(
    "billing.completion_tokens",
    severity="breaks-clients",
    title="completion_tokens equals the count of the answer",
    spec="CompletionUsage.completion_tokens (completion_tokens_details.reasoning_tokens)",
    proves="usage.completion_tokens, less any reasoning tokens, equals the answer's text "
    "counted with the model's encoding (±2 tokens: a model may sample a non-canonical token "
    "sequence for the same text).",
)
async def completion_tokens(ctx: CheckContext) -> str:
    encoding = _encoding(ctx)
    billed = await _billed(ctx)
    text = answer_text(billed.body)
    counted = tokens.count(text, encoding)
    visible = billed.completion - billed.reasoning
    excess = visible - counted
    ctx.facts["billing"].update(completion_billed=billed.completion,
                                completion_counted=counted)
    if abs(excess) > COMPLETION_ALLOWANCE:
        reasoning = f" (after {billed.reasoning} reasoning tokens)" if billed.reasoning else ""
        raise Failure(f"completion_tokens {billed.completion}{reasoning} for an answer of "
                      f"{counted} tokens ({text[:40]!r}): {excess:+d} tokens "
                      f"({_percent(excess, counted)})")
    return f"completion_tokens {billed.completion} = counted {counted} ({excess:+d})"


@check(
    "billing.tokenizer",
    severity="breaks-clients",
    title="The bill is counted with the claimed model's tokenizer",
    spec=f"{COOKBOOK} (encodings per model: o200k_base, cl100k_base)",
    proves="The difference between the bills of two requests, which differ by a probe text of "
    "74 o200k_base tokens and 192 cl100k_base tokens, matches the encoding of the model "
    "asked for: a gpt-4o counted with cl100k_base is another model answering under its name.",
)
async def tokenizer(ctx: CheckContext) -> str:
    encoding = _encoding(ctx)
    short, probe = await _pair(ctx)
    added = _probe_added()
    difference = probe.prompt - short.prompt
    ctx.facts["billing"]["tokenizer_difference"] = difference
    counted_by = _counted_by(difference, added)
    counts = ", ".join(f"{enc} {n}" for enc, n in added.items())
    if counted_by == encoding:
        return f"the probe was billed {difference} tokens: {encoding} ({counts})"
    if counted_by is not None:
        era = "GPT-4-era" if counted_by == tokens.CL100K_BASE else "GPT-4o-era"
        raise Failure(f"the probe was billed {difference} tokens, the count of {counted_by} "
                      f"({counts}), not of {encoding}, which {ctx.model!r} uses: a {era} "
                      "model answering under its name")
    if abs(short.excess) > tokens.OVERHEAD_ALLOWANCE:
        raise NotApplicable(f"inconclusive: the bill does not follow the messages "
                            f"(billing.prompt_tokens), so the probe's {difference} billed "
                            f"tokens cannot name a tokenizer ({counts})")
    raise Failure(f"the probe was billed {difference} tokens, which matches no OpenAI encoding "
                  f"({counts}): another tokenizer counted, not {ctx.model!r}'s")

