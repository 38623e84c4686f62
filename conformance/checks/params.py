"""params: the optional parameters of CreateChatCompletionRequest that the relays document
(seed 004's parameter table: temperature 0–2, top_p, presence/frequency_penalty −2–2,
logit_bias, user, seed, reasoning_effort, stream_options, messages[].name and the developer
role; seed 003 adds logprobs and max_completion_tokens, which ``max_tokens`` checks) are
accepted and honoured, or declined with a well-formed 4xx (``unsupported``).  A parameter that
is accepted and then ignored is a ``fail`` that says so; so is a 5xx, which clients retry.

Most requests here ask the capital of France (the question every model, down to
SmolLM2-135M, answers), so a parameter whose effect cannot be observed on a real model is at
least shown not to break an ordinary answer.
"""

from __future__ import annotations

from typing import Any

from conformance.checks import prompts
from conformance.checks.chat import ask_reaches
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    answer_text,
    describe,
    error_envelope,
    expect_client_error,
    expect_completion,
    expect_stream,
    obj,
    snippet,
)
from conformance.checks.models import same_model
from conformance.checks.registry import check
from conformance.checks.streaming import STREAM_CAP
from conformance.errors import Failure, NotApplicable
from conformance.exchange import Exchange
from conformance.validation import violations

#: Cap for requests whose answer is not read (only that one comes back).
TINY = 5
SEED = 42
#: Token id probed with logit_bias.  Every tokenizer in use (32k–200k entries) has an ordinary
#: text token there; which one differs per tokenizer, so the check finds out instead of
#: assuming (see :func:`logit_bias_select`).
PROBE_TOKEN = 1000
PROBE_TOKENS = 3
#: A parameter no provider knows.
UNKNOWN_PARAM = "x_conformance_probe"
SECRET_DEVELOPER = [
    {"role": "developer", "content": "The secret word is mango."},
    {"role": "user", "content": "What is the secret word? Reply with the word only."},
]
SECRET_DEVELOPER_ANSWER = "mango"


async def _answers(ctx: CheckContext, feature: str, *, share: bool = False,
                   **fields: Any) -> str:
    """The capital question with ``fields``: the usual answer, or a verdict naming
    ``feature``."""
    messages = fields.pop("messages", prompts.CAPITAL)
    exchange = await ctx.chat(messages=messages, max_tokens=prompts.SHORT, share=share, **fields)
    text = answer_text(expect_completion(exchange, feature=feature))
    if prompts.CAPITAL_ANSWER not in text.lower():
        # The control: the plain question (chat.basic's shared request), sent only on a miss.
        plain = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT, share=True)
        try:
            control = answer_text(expect_completion(plain))
        except Failure as exc:
            raise Failure(f"with {feature} the answer to the capital of France is "
                          f"{snippet(text, 60)}; the plain question (control) failed too: "
                          f"{exc}") from None
        if prompts.CAPITAL_ANSWER not in control.lower():
            raise NotApplicable(f"inconclusive: with {feature} the answer to the capital of "
                                f"France is {snippet(text, 60)}, and without it too: "
                                f"{snippet(control, 60) or 'no text'} (control)")
        raise Failure(f"with {feature} the answer to the capital of France is "
                      f"{snippet(text, 60)}; without it: {snippet(control, 40)} (control)")
    return text


# --------------------------------------------------------------------------------------------
# seed, temperature, top_p, penalties, user


@check(
    "params.seed",
    severity="degrades",
    title="seed with temperature 0 reproduces the answer",
    spec="CreateChatCompletionRequest.seed; CreateChatCompletionResponse.system_fingerprint",
    proves="The same request with seed 42 and temperature 0, sent twice, gives the same text "
    "(seed is best effort: differing answers count only when system_fingerprint did not "
    "change), and system_fingerprint, when sent, is a string.",
)
async def seed(ctx: CheckContext) -> str:
    fields: dict[str, Any] = {"messages": prompts.CAPITAL, "max_tokens": prompts.SHORT,
                              "seed": SEED, "temperature": 0}
    bodies = []
    for _ in range(2):
        bodies.append(expect_completion(await ctx.chat(**fields), feature="seed"))
    prints = [b.get("system_fingerprint") for b in bodies]
    for fingerprint in prints:
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise Failure(f"system_fingerprint is {snippet(fingerprint)}, expected a string")
    first, second = (answer_text(b) for b in bodies)
    if first == second:
        shown = f", system_fingerprint {prints[0]!r}" if prints[0] else ""
        return f"same answer twice: {snippet(first, 40)}{shown}"
    if prints[0] and prints[1] and prints[0] != prints[1]:
        raise NotApplicable(
            f"inconclusive: the answers differ but so does system_fingerprint ({prints[0]!r} → "
            f"{prints[1]!r}), and the spec promises determinism only for one backend")
    raise Failure(f"seed={SEED}, temperature=0: the same request answered "
                  f"{snippet(first, 50)} and then {snippet(second, 50)} with the same "
                  "system_fingerprint: seed ignored or sampling nondeterministic (seed is best "
                  "effort, so read this as evidence, not proof)")


@check(
    "params.temperature_bounds",
    severity="degrades",
    title="temperature 0 and 2 are accepted, 2.5 is refused",
    spec="CreateChatCompletionRequest.temperature (number, 0 ≤ x ≤ 2)",
    proves="The ends of the documented range, temperature 0 and temperature 2, are answered "
    "normally, and 2.5 (just outside it) is refused with 400 and an error envelope instead "
    "of being clamped or passed on.",
)
async def temperature_bounds(ctx: CheckContext) -> str:
    # Usually the very request chat.basic sends (temperature 0 is the suite's default).
    await _answers(ctx, "temperature 0", temperature=0, share=True)
    # At temperature 2 real models may ramble: only a normal completion is asked for.
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=TINY, temperature=2)
    expect_completion(exchange, feature="temperature 2")
    outside = await ctx.chat(messages=prompts.CAPITAL, max_tokens=TINY, temperature=2.5)
    expect_client_error(outside, "temperature 2.5")
    return f"0 and 2 accepted, 2.5 refused with HTTP {outside.status}"


@check(
    "params.top_p",
    severity="breaks-clients",
    title="top_p is accepted",
    spec="CreateChatCompletionRequest.top_p (0 ≤ x ≤ 1)",
    proves="A request with top_p 0.5 is answered normally (nucleus sampling cannot be observed "
    "on a one-word answer; a crash or an error is what this catches).",
)
async def top_p(ctx: CheckContext) -> str:
    text = await _answers(ctx, "top_p", top_p=0.5)
    return f"top_p 0.5 answered {snippet(text, 30)}"


@check(
    "params.penalties",
    severity="breaks-clients",
    title="presence_penalty and frequency_penalty are accepted",
    spec="CreateChatCompletionRequest.presence_penalty, .frequency_penalty (−2 ≤ x ≤ 2)",
    proves="A request with presence_penalty 0.5 and frequency_penalty 0.5 is answered "
    "normally (both penalise repetition, which a one-word answer does not show).",
)
async def penalties(ctx: CheckContext) -> str:
    text = await _answers(ctx, "presence_penalty/frequency_penalty", presence_penalty=0.5,
                          frequency_penalty=0.5)
    return f"penalties 0.5 answered {snippet(text, 30)}"


@check(
    "params.user",
    severity="breaks-clients",
    title="user is accepted",
    spec="CreateChatCompletionRequest.user (string, end-user identifier)",
    proves="A request carrying a user identifier is answered normally; relays that forward "
    "it to upstreams which reject it break every client that sets it.",
)
async def user(ctx: CheckContext) -> str:
    text = await _answers(ctx, "user", user="conformance-end-user")
    return f"answered {snippet(text, 30)}"


# --------------------------------------------------------------------------------------------
# logprobs


@check(
    "params.logprobs",
    severity="degrades",
    title="logprobs and top_logprobs return per-token log probabilities",
    spec="CreateChatCompletionRequest.logprobs, .top_logprobs; ChatCompletionTokenLogprob",
    proves="With logprobs true and top_logprobs 2, choices[0].logprobs.content lists every "
    "token of a multi-token answer (a count to 5) with a log probability ≤ 0, its bytes and "
    "at most 2 alternatives, as ChatCompletionTokenLogprob requires; the tokens concatenate "
    "to the message content.",
)
async def logprobs(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=prompts.COUNT_TO_5, max_tokens=prompts.SHORT,
                              logprobs=True, top_logprobs=2)
    body = expect_completion(exchange, feature="logprobs")
    where = "$.choices[0].logprobs"
    wrong = [v for v in violations("chat.completion", body, absent_as_null=True)
             if v.path.startswith(where)]
    if wrong:
        raise Failure(f"choices[0].logprobs deviates from the OpenAI schema at {wrong[0]}")
    choice = body["choices"][0]
    entries = obj(choice.get("logprobs")).get("content")
    if choice.get("logprobs") is None:
        raise Failure("logprobs: true ignored: choices[0].logprobs is null")
    if not entries:
        raise Failure(f"logprobs: true but logprobs.content is {snippet(entries)}")
    widest = 0
    for n, entry in enumerate(entries):
        if entry["logprob"] > 1e-6:
            raise Failure(f"logprobs.content[{n}].logprob is {entry['logprob']}, a log "
                          "probability must be ≤ 0")
        alternatives = entry["top_logprobs"]
        if len(alternatives) > 2:
            raise Failure(f"top_logprobs: 2 but logprobs.content[{n}] lists "
                          f"{len(alternatives)} alternatives")
        widest = max(widest, len(alternatives))
        token_bytes = entry.get("bytes")
        if isinstance(token_bytes, list) and _utf8(token_bytes) not in (None, entry["token"]):
            raise Failure(f"logprobs.content[{n}].bytes {token_bytes} do not encode its token "
                          f"{entry['token']!r}")
    if widest == 0:
        raise Failure("top_logprobs: 2 ignored: every top_logprobs list is empty")
    text = answer_text(body)
    if not _concatenates(entries, text):
        joined = "".join(e["token"] for e in entries)
        raise Failure(f"logprobs tokens do not concatenate to the content: {joined!r} vs "
                      f"{text!r}")
    return f"{len(entries)} tokens, up to {widest} alternatives, concatenating to {text!r}"


def _utf8(data: list[int]) -> str | None:
    try:
        return bytes(data).decode("utf-8")
    except (ValueError, TypeError):
        return None


def _concatenates(entries: list[dict[str, Any]], text: str) -> bool:
    """The tokens (or, where every entry has them, their bytes) spell ``text``."""
    if "".join(str(e.get("token")) for e in entries) == text:
        return True
    if all(isinstance(e.get("bytes"), list) for e in entries):
        joined = _utf8([b for e in entries for b in e["bytes"]])
        return joined == text
    return False


def _tokens(body: dict[str, Any]) -> list[str] | None:
    """The first choice's logprobs tokens when they are present and spell its content."""
    entries = obj(body["choices"][0].get("logprobs")).get("content")
    if not isinstance(entries, list) or not entries or not all(
            isinstance(e, dict) and isinstance(e.get("token"), str) for e in entries):
        return None
    return [e["token"] for e in entries] if _concatenates(entries, answer_text(body)) else None


# --------------------------------------------------------------------------------------------
# logit_bias


def repeated_unit(text: str, times: int = PROBE_TOKENS) -> str | None:
    """``S`` when ``text`` is one string ``S`` written over and over: ``times`` times (the
    max_tokens asked for), else the shortest such ``S`` repeated at least twice.
    Sentencepiece decoders drop the leading space of the first token, so ``"the the the"``
    is read as ``" the"`` × 3."""
    for candidate in (text, " " + text):
        size, rest = divmod(len(candidate), times)
        if size and not rest and candidate[:size] * times == candidate:
            return candidate[:size]
    for candidate in (text, " " + text):
        for size in range(1, len(candidate) // 2 + 1):
            count, rest = divmod(len(candidate), size)
            if not rest and candidate[:size] * count == candidate:
                return candidate[:size]
    return None


async def _probe(ctx: CheckContext) -> tuple[Exchange, str]:
    """The +100 probe: the answer when token :data:`PROBE_TOKEN` is selected exclusively."""
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=PROBE_TOKENS,
                              logit_bias={str(PROBE_TOKEN): 100}, share=True)
    return exchange, answer_text(expect_completion(exchange, feature="logit_bias"))


@check(
    "params.logit_bias",
    severity="degrades",
    title="logit_bias +100 selects a token exclusively",
    spec="CreateChatCompletionRequest.logit_bias (\"values like -100 or 100 should result in a "
    "ban or exclusive selection of the relevant token\")",
    proves="With logit_bias {1000: 100} and max_tokens 3 the answer is one token written over "
    "and over (whatever token 1000 is in the provider's tokenizer) instead of the start of the "
    "unbiased answer (the same question without the bias, control): the bias reaches the "
    "model without the suite having to know the tokenizer.",
)
async def logit_bias_select(ctx: CheckContext) -> str:
    _, text = await _probe(ctx)
    unit = repeated_unit(text)
    if unit is not None:
        return f"token {PROBE_TOKEN} is {unit!r}: the answer is {snippet(text, 40)}"
    # The unbiased answer: chat.basic's request, usually already sent.
    plain = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT, share=True)
    unbiased = answer_text(expect_completion(plain))
    if text.strip() and unbiased.strip().startswith(text.strip()):
        raise Failure(f"logit_bias {{{PROBE_TOKEN}: 100}} ignored: the answer "
                      f"{snippet(text, 40)} is the start of the unbiased one "
                      f"({snippet(unbiased, 40)}), not one token repeated")
    raise NotApplicable(f"inconclusive: with logit_bias {{{PROBE_TOKEN}: 100}} the answer "
                        f"{snippet(text, 40)} is neither one token repeated nor the start of "
                        f"the unbiased answer ({snippet(unbiased, 40)})")


@check(
    "params.logit_bias_ban",
    severity="degrades",
    title="logit_bias -100 bans a token",
    spec="CreateChatCompletionRequest.logit_bias (-100: ban)",
    proves="The token found by params.logit_bias is written when the model is asked to repeat "
    "it (control), and is absent from the same answer with logit_bias -100 on it; token-level "
    "proof uses logprobs, text-level proof is used only where it is conclusive.",
)
async def logit_bias_ban(ctx: CheckContext) -> str:
    _, probe = await _probe(ctx)
    unit = repeated_unit(probe)
    if unit is None or not unit.strip() or not unit.strip().isprintable():
        raise NotApplicable(f"inconclusive: the +100 probe did not reveal a printable token "
                            f"{PROBE_TOKEN} (answer {snippet(probe, 40)}; see params.logit_bias)")
    messages = prompts.user("Reply with exactly: " + " ".join([unit.strip()] * 3))
    fields: dict[str, Any] = {"messages": messages, "max_tokens": 12, "logprobs": True}
    exchange = await ctx.chat(**fields)
    if 400 <= (exchange.status or 0) < 500 and error_envelope(exchange) is not None:
        del fields["logprobs"]  # logprobs declined: judge by text alone
        exchange = await ctx.chat(**fields)
    control = expect_completion(exchange)
    tokens, text = _tokens(control), answer_text(control)
    written = unit in tokens if tokens is not None else unit in text
    if not written:
        raise NotApplicable(f"inconclusive: without logit_bias the model did not write token "
                            f"{PROBE_TOKEN} ({unit!r}): {snippet(text, 50)}")
    banned = expect_completion(await ctx.chat(**fields, logit_bias={str(PROBE_TOKEN): -100}),
                               feature="logit_bias")
    ban_tokens, ban_text = _tokens(banned), answer_text(banned)
    if ban_tokens is not None and tokens is not None:
        if unit in ban_tokens:
            raise Failure(f"logit_bias {{{PROBE_TOKEN}: -100}} ignored: token {unit!r} is still "
                          f"generated ({snippet(ban_text, 50)})")
        return f"token {unit!r} banned: {snippet(ban_text, 40)} (without the bias: " \
               f"{snippet(text, 40)})"
    if unit not in ban_text:
        return f"{unit!r} banned: {snippet(ban_text, 40)} (without the bias: {snippet(text, 40)})"
    raise NotApplicable(f"inconclusive: {unit!r} still appears with logit_bias -100, and without "
                        "logprobs it cannot be told whether token "
                        f"{PROBE_TOKEN} or other tokens wrote it: {snippet(ban_text, 50)}")


# --------------------------------------------------------------------------------------------
# Messages: developer role, name


@check(
    "params.developer_role",
    severity="breaks-clients",
    title="The developer role reaches the model",
    spec="ChatCompletionRequestDeveloperMessage (role 'developer', replaces system for "
    "o1 and newer)",
    proves="A fact given only in a developer message ('the secret word is mango') is used in "
    "the answer; declining the role with a 4xx is unsupported, dropping it is a fail. An "
    "answer without it is a fail only when the same fact stated in the question itself is "
    "answered (the control, sent only then); otherwise the check is inconclusive.",
)
async def developer_role(ctx: CheckContext) -> str:
    return await ask_reaches(ctx, SECRET_DEVELOPER, SECRET_DEVELOPER_ANSWER,
                             "developer message ignored", feature="the developer role")


@check(
    "params.message_name",
    severity="breaks-clients",
    title="name on a message is accepted",
    spec="ChatCompletionRequestUserMessage.name (\"An optional name for the participant\")",
    proves="A user message with a name field is answered normally (upstreams that do not know "
    "the field make some relays fail the whole request).",
)
async def message_name(ctx: CheckContext) -> str:
    messages = [{**prompts.CAPITAL[0], "name": "alice"}]
    text = await _answers(ctx, "messages[].name", messages=messages)
    return f"answered {snippet(text, 30)}"


# --------------------------------------------------------------------------------------------
# reasoning_effort, unknown parameters, stream_options


@check(
    "params.reasoning_effort",
    severity="breaks-clients",
    title="reasoning_effort is accepted or declined properly",
    spec="CreateChatCompletionRequest.reasoning_effort (reasoning models)",
    proves="reasoning_effort 'low' is either accepted (a normal completion) or declined with a "
    "4xx error envelope, as OpenAI does for models that do not reason — never a 5xx.",
)
async def reasoning_effort(ctx: CheckContext) -> str:
    # Reasoning models refuse max_tokens; their hidden reasoning may use up the cap, so only a
    # normal completion is asked for, not its text.
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_completion_tokens=prompts.SHORT,
                              reasoning_effort="low")
    body = expect_completion(exchange, feature="reasoning_effort")
    return f"accepted: {snippet(answer_text(body), 30) or 'no visible text'}"


def _rejected_or_answered(exchange: Exchange, what: str) -> str:
    """Both a 400/422 with an envelope and a normal completion are legal; say which."""
    if exchange.ok and not (isinstance(exchange.json, dict) and "error" in exchange.json):
        body = expect_completion(exchange)
        return f"ignored: answered {snippet(answer_text(body), 30)}"
    envelope = expect_client_error(exchange, what)
    return f"rejected with HTTP {exchange.status}: {snippet(str(envelope.get('message')), 70)}"


@check(
    "params.unknown_parameter",
    severity="breaks-clients",
    title="An unknown parameter is ignored or refused with 400",
    spec="CreateChatCompletionRequest (OpenAI: 400 \"Unrecognized request argument supplied\")",
    proves="A request with an extra parameter no one knows is either answered normally "
    "(ignored) or refused with 400/422 and an error envelope (as OpenAI does) — both are "
    "legal and the message says which; a 5xx or an error inside a 200 is a fail.",
)
async def unknown_parameter(ctx: CheckContext) -> str:
    extra: dict[str, Any] = {UNKNOWN_PARAM: True}
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=TINY, **extra)
    return _rejected_or_answered(exchange, f"unknown parameter {UNKNOWN_PARAM!r}")


@check(
    "params.stream_options_without_stream",
    severity="breaks-clients",
    title="stream_options without stream is refused or ignored, not streamed",
    spec="ChatCompletionStreamOptions (\"Only set this when you set stream: true\")",
    proves="stream_options {include_usage: true} on a non-streamed request is refused with "
    "400/422 and an envelope (as OpenAI does) or ignored with a normal JSON completion; it "
    "must not turn the answer into an event stream or crash the server.",
)
async def stream_options_without_stream(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=TINY,
                              stream_options={"include_usage": True})
    if exchange.ok and exchange.content_type == "text/event-stream":
        raise Failure("stream_options without stream was answered with an event stream")
    return _rejected_or_answered(exchange, "stream_options without stream")


# --------------------------------------------------------------------------------------------
# model


@check(
    "params.model_echo",
    severity="degrades",
    title="The response names the requested model",
    spec="CreateChatCompletionResponse.model (\"The model used for the chat completion\")",
    proves="The model of a completion and of a stream's chunks is the requested one or a dated "
    "snapshot of it (gpt-4o → gpt-4o-2024-08-06); another name means another model answered.",
)
async def model_echo(ctx: CheckContext) -> str:
    plain = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT, share=True)
    answered = expect_completion(plain).get("model")
    _judge_model(ctx.model, answered, "the completion")
    streamed = await ctx.chat(messages=prompts.COUNT_TO_5, max_tokens=STREAM_CAP, stream=True,
                              share=True)
    shown = f"completion {answered!r}"
    if streamed.ok:
        models = [c["model"] for c in expect_stream(streamed) if "model" in c]
        for name in models:  # any JSON value: judged before it is compared or sorted
            _judge_model(ctx.model, name, "a stream chunk")
        shown += f", stream {', '.join(repr(m) for m in sorted(set(models)))}"
    else:
        shown += f" (stream not judged: {describe(streamed)})"
    return shown


def _judge_model(requested: str, answered: object, where: str) -> None:
    if not isinstance(answered, str) or not answered:
        raise Failure(f"{where} has no model name (got {snippet(answered)}), expected "
                      f"{requested!r}")
    if not same_model(requested, answered):
        raise Failure(f"model substitution? {requested!r} was requested but {where} says "
                      f"{answered!r}")
