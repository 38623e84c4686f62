"""Chat Completions answers of the reference provider: completion objects and stream chunks.

A :class:`~conformance.reference.chat_request.Chat` is answered as a ``chat.completion``
object or as the ``chat.completion.chunk`` events of a stream (OpenAI API reference, "The chat
completion object" and "The chat completion chunk object",
https://platform.openai.com/docs/api-reference/chat/object): choices, logprobs, tool calls,
usage, ``[DONE]``. The answer-side faults and quirks of :mod:`conformance.reference.faults` are
applied here, each at one place (search for its name).
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance import tokens
from conformance.reference import model
from conformance.reference.chat_request import Chat
from conformance.reference.faults import (
    FAITHFUL,
    HIDDEN_SYSTEM_PROMPT,
    Variant,
    answering_model,
)

SYSTEM_FINGERPRINT = "fp_reference"
_ALNUM = string.ascii_letters + string.digits
EXTRA_FIELDS: Mapping[str, Mapping[str, Any]] = {
    "top": {"provider": "reference-quirk"},
    "choice": {"native_finish_reason": None},
    "message": {"reasoning_content": None},
    "usage": {"cost": 0.0},
}


def random_id(prefix: str, length: int = 29) -> str:
    """``prefix`` followed by ``length`` random letters and digits (OpenAI's id style)."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def _sample(text: str, chat: Chat, variant: Variant) -> str:
    """What sampling does to the scripted answer: logit_bias (in the model's vocabulary), and
    the seed fault."""
    if "seed_ignored" in variant and chat.seed is not None:
        text = f"{text} ({secrets.token_hex(3)})"
    bias = dict(chat.logit_bias)
    if "ignore_logit_bias" in variant:
        bias = {}
    if "logit_bias_positive_only" in variant:
        bias = {t: b for t, b in bias.items() if b > 0}
    return model.apply_logit_bias(text, bias, model.vocabulary(chat.encoding))


# --------------------------------------------------------------------------------------------
# Choices and completions


@dataclass
class _Choice:
    index: int
    content: str | None
    tokens: list[str]
    finish_reason: str
    tool_calls: list[model.ToolCall]
    completion_tokens: int


def _choices(chat: Chat, variant: Variant = FAITHFUL) -> list[_Choice]:
    """The answer's choices: tokens in the model's vocabulary, each choice's completion tokens
    (for an OpenAI-named model exactly the tokens of its text in the model's encoding)."""
    vocab = model.vocabulary(chat.encoding)
    output = model.generate(chat.model_request)
    fmt = chat.model_request.response_format or {}
    if "json_fenced" in variant and fmt.get("type") in ("json_object", "json_schema"):
        output.content = f"```json\n{output.content}\n```"
    choices = []
    for index in range(chat.n):
        if output.tool_calls:
            empty_id = "tool_call_empty_id" in variant
            calls = [model.ToolCall(c.name, c.arguments,
                                    "" if empty_id else random_id("call_", 24))
                     for c in output.tool_calls]
            spent = sum(vocab.count(c.name + c.arguments) for c in calls)
            finish = "function_call" if chat.legacy_functions else output.finish_reason
            if "tool_finish_stop" in variant and finish == "tool_calls":
                finish = "stop"
            choices.append(_Choice(index, None, [], finish, calls, spent))
        else:
            content = _sample(output.content or "", chat, variant)
            pieces, _, limited = model.truncate(content, chat.stops, chat.limit, vocab)
            text, finish = "".join(pieces), "length" if limited else "stop"
            spent = len(pieces) if chat.encoding is None else vocab.count(text)
            choices.append(_Choice(index, text, pieces, finish, [], spent))
    if "usage_first_choice_only" in variant:
        for choice in choices[1:]:
            choice.completion_tokens = 0
    return choices


def _logprobs(tokens: Sequence[str], top: int, offset: int = 0) -> dict[str, Any]:
    entries = []
    for position, token in enumerate(tokens, start=offset):
        chosen = model.token_logprob(token, position)
        top_list = [{"token": token, "logprob": chosen, "bytes": list(token.encode())}]
        for rank, alt in enumerate(model.alternatives(token, max(top - 1, 0)), start=1):
            top_list.append({"token": alt, "logprob": round(chosen - 1.5 * rank - 0.25, 6),
                             "bytes": list(alt.encode())})
        entries.append({"token": token, "logprob": chosen, "bytes": list(token.encode()),
                        "top_logprobs": top_list[:top]})
    return {"content": entries, "refusal": None}


def _usage(chat: Chat, prompt: int, completion: int, variant: Variant) -> dict[str, Any]:
    """The usage object of an answer (stream and non-stream): ``completion`` summed over the
    choices; the billing faults change an OpenAI-named model's bill here."""
    if chat.encoding is not None:
        # billing_hidden_prompt: a system prompt the model never shows is billed (+ its wrapper)
        if "billing_hidden_prompt" in variant:
            prompt += tokens.count(HIDDEN_SYSTEM_PROMPT, chat.encoding) + 3
        # billing_prompt_inflated: the prompt is billed a quarter more than it is
        if "billing_prompt_inflated" in variant:
            prompt = (prompt * 5 + 3) // 4  # × 1.25, rounded up
        # billing_completion_padded: seven completion tokens more than were generated
        if "billing_completion_padded" in variant:
            completion += 7
    total = prompt + completion
    if "usage_bad_total" in variant:
        total += 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def _add_extra_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """extra_fields quirk: unknown fields in the top level, choices, message/delta, usage."""
    obj.update(EXTRA_FIELDS["top"])
    for choice in obj.get("choices") or []:
        choice.update(EXTRA_FIELDS["choice"])
        for key in ("message", "delta"):
            if isinstance(choice.get(key), dict):
                choice[key].update(EXTRA_FIELDS["message"])
    if isinstance(obj.get("usage"), dict):
        obj["usage"].update(EXTRA_FIELDS["usage"])
    return obj


def _tool_call_json(call: model.ToolCall, variant: Variant) -> dict[str, Any]:
    arguments: Any = call.arguments
    if "tool_args_object" in variant:
        arguments = json.loads(call.arguments)
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": arguments}}


def completion(chat: Chat, variant: Variant) -> dict[str, Any]:
    """The ``chat.completion`` object answering ``chat``."""
    choices: list[dict[str, Any]] = []
    completion_tokens = 0
    for choice in _choices(chat, variant):
        completion_tokens += choice.completion_tokens
        message: dict[str, Any] = {"role": "assistant", "content": choice.content,
                                   "refusal": None, "annotations": []}
        if choice.tool_calls and chat.legacy_functions:
            call = _tool_call_json(choice.tool_calls[0], variant)["function"]
            message["function_call"] = call
        elif choice.tool_calls:
            message["tool_calls"] = [_tool_call_json(c, variant) for c in choice.tool_calls]
        tokens = choice.tokens
        if "logprobs_tokens_mismatch" in variant:
            tokens = [token.lstrip() for token in tokens]
        logprobs = (_logprobs(tokens, chat.top_logprobs)
                    if chat.logprobs and not choice.tool_calls else None)
        choices.append({"index": choice.index, "message": message, "logprobs": logprobs,
                        "finish_reason": choice.finish_reason})
    body: dict[str, Any] = {
        "id": random_id("chatcmpl-"),
        "object": "chat.completions" if "chat_wrong_object" in variant else "chat.completion",
        "created": int(time.time()),
        "model": answering_model(chat.requested_model),
        "choices": choices,
        "usage": _usage(chat, chat.prompt_tokens, completion_tokens, variant),
        "service_tier": chat.service_tier,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if "omit_nullable_fields" in variant:
        for rendered in choices:
            for obj in (rendered, rendered["message"]):
                for key in [k for k, v in obj.items() if v is None]:
                    del obj[key]
    if "no_usage" in variant:
        del body["usage"]
    if "extra_fields" in variant:
        _add_extra_fields(body)
    return body


# --------------------------------------------------------------------------------------------
# Streaming

_DONE = "[DONE]"


def _fragments(text: str, size: int = 4) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _choice_steps(choice: _Choice, chat: Chat,
                  variant: Variant) -> list[tuple[dict[str, Any], Any, str | None]]:
    """The (delta, logprobs, finish_reason) sequence of one streamed choice."""
    steps: list[tuple[dict[str, Any], Any, str | None]] = []
    if choice.tool_calls and chat.legacy_functions:
        call = choice.tool_calls[0]
        steps.append(({"role": "assistant", "content": None,
                       "function_call": {"name": call.name, "arguments": ""}}, None, None))
        steps.extend(({"function_call": {"arguments": part}}, None, None)
                     for part in _fragments(call.arguments))
    elif choice.tool_calls:
        for number, call in enumerate(choice.tool_calls):
            head: dict[str, Any] = {"role": "assistant", "content": None} if number == 0 else {}
            as_object = "tool_args_object" in variant
            first = {"index": number, "id": call.id, "type": "function",
                     "function": {"name": call.name,
                                  "arguments": json.loads(call.arguments) if as_object else ""}}
            steps.append(({**head, "tool_calls": [first]}, None, None))
            sent = ""
            for part in _fragments(call.arguments) if not as_object else []:
                sent += part
                entry: dict[str, Any] = {"index": number, "function": {"arguments": part}}
                if "stream_tool_args_cumulative" in variant:
                    entry["function"]["arguments"] = sent
                if "stream_tool_name_repeated" in variant:
                    entry.update(id=call.id, type="function")
                    entry["function"]["name"] = call.name
                steps.append(({"tool_calls": [entry]}, None, None))
    else:
        steps.append(({"role": "assistant", "content": "", "refusal": None}, None, None))
        pieces = ["".join(choice.tokens)] if "stream_single_chunk" in variant else choice.tokens
        for position, piece in enumerate(pieces):
            if not piece or (position == 0 and "stream_drops_first_content" in variant):
                continue
            logprobs = None
            if chat.logprobs:
                tokens = choice.tokens if "stream_single_chunk" in variant else [piece]
                logprobs = _logprobs(tokens, chat.top_logprobs, offset=position)
            steps.append(({"content": piece}, logprobs, None))
    finish: str | None = choice.finish_reason
    if finish == "length" and "stream_length_as_stop" in variant:
        finish = "stop"
    if "stream_no_finish_reason" in variant:
        finish = None
    steps.append(({}, None, finish))
    for delta, _, _ in steps:
        if "no_role_chunk" in variant:
            delta.pop("role", None)
        if "n_stream_role_first_only" in variant and choice.index > 0:
            delta.pop("role", None)
        if "delta_text_field" in variant and "content" in delta and delta["content"] is not None:
            delta["text"] = delta.pop("content")
        for entry in delta.get("tool_calls", []):
            if "stream_tool_no_index" in variant:
                del entry["index"]
            if "stream_tool_same_index" in variant:
                entry["index"] = 0
    return steps


def stream_events(chat: Chat, variant: Variant) -> list[dict[str, Any] | str]:
    """The data payloads of the stream answering ``chat``: chunks, then ``[DONE]``."""
    choices = _choices(chat, variant)
    completion_tokens = sum(c.completion_tokens for c in choices)
    chunk_id = random_id("chatcmpl-")
    created = int(time.time())
    include_usage = chat.include_usage and "ignore_include_usage" not in variant
    prompt = chat.prompt_tokens * (2 if "stream_usage_inflated" in variant else 1)
    usage = _usage(chat, prompt, completion_tokens, variant)

    def chunk(choice_list: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": random_id("chatcmpl-") if "chunk_ids_vary" in variant else chunk_id,
            "object": "chat.completion" if "chunk_wrong_object" in variant
            else "chat.completion.chunk",
            "created": created,
            "model": answering_model(chat.requested_model),
            "service_tier": chat.service_tier,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choice_list,
        }
        if include_usage:
            body["usage"] = None
        return body

    per_choice = [_choice_steps(c, chat, variant) for c in choices]
    events: list[dict[str, Any] | str] = []
    for step in range(max(len(s) for s in per_choice)):
        for choice, steps in zip(choices, per_choice, strict=True):
            if step < len(steps):
                delta, logprobs, finish = steps[step]
                index = 0 if "stream_choice_index_zero" in variant else choice.index
                events.append(chunk([{"index": index, "delta": delta,
                                      "logprobs": logprobs, "finish_reason": finish}]))
    if include_usage:
        if "usage_on_content_chunk" in variant:
            last = events[-1]
            assert isinstance(last, dict)
            last["usage"] = usage
        else:
            final = chunk([])
            final["usage"] = usage
            events.append(final)
    if "extra_fields" in variant:
        events = [_add_extra_fields(e) if isinstance(e, dict) else e for e in events]
    if "stream_error_event" in variant:
        events = [*events[:2], {"error": {
            "message": "upstream error: do request failed (request id: 20261201-stream)",
            "type": "upstream_error", "param": None, "code": "do_request_failed"}}]
    if "no_done" not in variant:
        events.append(_DONE)
    if "events_after_done" in variant:
        events.append(chunk([{"index": 0, "delta": {"content": " (late)"}, "logprobs": None,
                              "finish_reason": None}]))
    return events


