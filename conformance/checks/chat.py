"""chat: the non-streamed Chat Completions request and response (POST /chat/completions)."""

from __future__ import annotations

from typing import Any

from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    answer_text,
    contains_answer,
    expect_completion,
    expect_no_bom,
    expect_schema,
    snippet,
    unreached,
)
from conformance.checks.registry import check
from conformance.errors import Failure
from conformance.validation import violations


async def ask_reaches(ctx: CheckContext, messages: list[dict[str, Any]], expected: str,
                      what: str, feature: str | None = None) -> str:
    """Ask for a fact the request gives somewhere other than the question; an answer without
    it is judged against the control, the fact in the question itself
    (:func:`~conformance.checks.expect.unreached`: fail or inconclusive)."""
    exchange = await ctx.chat(messages=messages, max_tokens=prompts.SHORT)
    body = expect_completion(exchange, feature=feature)
    text = answer_text(body)
    if contains_answer(text, expected):
        return f"answered {snippet(text, 40)}"

    async def control() -> str:
        asked = await ctx.chat(messages=prompts.user(prompts.FACT_IN_QUESTION[expected]),
                               max_tokens=prompts.SHORT)
        return answer_text(expect_completion(asked))

    raise await unreached(f"{what}: expected an answer containing {expected!r}, got "
                          f"{snippet(text)}", expected, control())


@check(
    "chat.basic",
    severity="breaks-clients",
    title="A plain request returns a schema-valid chat.completion",
    spec="POST /chat/completions → CreateChatCompletionResponse",
    proves="A one-message request answers HTTP 200, application/json, a body (without a byte "
    "order mark) that validates against the OpenAI schema, object 'chat.completion', an "
    "assistant message with text content and finish_reason 'stop'.",
)
async def chat_basic(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT, share=True)
    body = expect_completion(exchange)
    if exchange.content_type != "application/json":
        raise Failure(f"Content-Type is {exchange.content_type or 'missing'!r}, expected "
                      "'application/json'")
    expect_no_bom(exchange, "the completion")
    expect_schema("chat.completion", body, "the completion")
    if body["object"] != "chat.completion":
        raise Failure(f"object is {body['object']!r}, expected 'chat.completion'")
    choice = body["choices"][0]
    if choice["message"]["role"] != "assistant":
        raise Failure(f"message.role is {choice['message']['role']!r}, expected 'assistant'")
    text = answer_text(body)
    if not text.strip():
        raise Failure("message.content is empty")
    if choice["finish_reason"] != "stop":
        raise Failure(f"finish_reason is {choice['finish_reason']!r} for a complete short "
                      "answer, expected 'stop'")
    return f"answered {snippet(text, 40)}"


@check(
    "chat.system_message",
    severity="breaks-clients",
    title="The system message reaches the model",
    spec="ChatCompletionRequestSystemMessage",
    proves="A fact given only in the system message ('the secret word is kiwi') is used in the "
    "answer, so system messages are not dropped or rewritten. An answer without it is a fail "
    "only when the same fact stated in the question itself is answered (the control, sent only "
    "then); otherwise the check is inconclusive.",
)
async def chat_system_message(ctx: CheckContext) -> str:
    return await ask_reaches(ctx, prompts.SECRET_SYSTEM, prompts.SECRET_SYSTEM_ANSWER,
                      "system message ignored")


@check(
    "chat.multi_turn",
    severity="breaks-clients",
    title="Earlier turns of the conversation reach the model",
    spec="CreateChatCompletionRequest.messages",
    proves="A number given in the first user turn is recalled after an assistant turn, so the "
    "whole message history is forwarded, not only the last message. An answer without it is a "
    "fail only when the same fact stated in the question itself is answered (the control, sent "
    "only then); otherwise the check is inconclusive.",
)
async def chat_multi_turn(ctx: CheckContext) -> str:
    return await ask_reaches(ctx, prompts.MULTI_TURN, prompts.MULTI_TURN_ANSWER,
                      "earlier turn ignored")


@check(
    "chat.content_parts",
    severity="breaks-clients",
    title="Content as an array of text parts",
    spec="ChatCompletionRequestUserMessage.content "
    "(array of ChatCompletionRequestMessageContentPartText)",
    proves="A user message whose content is a list of text parts is accepted and every part "
    "reaches the model (the fact is in the first part, the question in the second). An answer "
    "without it is a fail only when the same fact stated in the question itself is answered "
    "(the control, sent only then); otherwise the check is inconclusive.",
)
async def chat_content_parts(ctx: CheckContext) -> str:
    return await ask_reaches(ctx, prompts.CONTENT_PARTS, prompts.CONTENT_PARTS_ANSWER,
                      "a text part was lost", feature="content as an array of parts")


@check(
    "chat.schema_strict",
    severity="cosmetic",
    title="Every field the schema requires is present, even when null",
    spec="CreateChatCompletionResponse (required: choices[].logprobs, message.refusal, ...)",
    proves="The completion validates against the OpenAI schema with no leniency: nullable "
    "fields the schema requires (choices[].logprobs, message.refusal) are sent as null rather "
    "than omitted. Other checks read an absent nullable field as null, as the SDKs do.",
)
async def chat_schema_strict(ctx: CheckContext) -> str:
    exchange = await ctx.chat(messages=prompts.CAPITAL, max_tokens=prompts.SHORT, share=True)
    body = expect_completion(exchange)
    found = violations("chat.completion", body)
    if found:
        listed = "; ".join(str(v) for v in found[:4])
        more = f" (+{len(found) - 4} more)" if len(found) > 4 else ""
        raise Failure(f"{len(found)} deviation(s) from the strict schema: {listed}{more}")
    return "strictly valid"
