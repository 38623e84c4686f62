"""The reference provider: a faithful OpenAI Chat Completions API as a Starlette ASGI app.

Routes follow the OpenAI API reference (https://platform.openai.com/docs/api-reference):
``GET /v1/models``, ``GET /v1/models/{model}`` and ``POST /v1/chat/completions`` (JSON and
server-sent events), plus Anthropic's ``POST /v1/messages`` (:mod:`.messages`), each also
under ``/variant/<spec>/v1/...`` where ``<spec>`` selects deliberate deviations from
:mod:`conformance.reference.faults`. Every fault is applied at one place below (or in
:mod:`.messages`), marked by its name in a ``"name" in variant`` test. ``GET /assets/...``
serves test images for vision-by-URL probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import re
import secrets
import ssl
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from conformance.reference import images, messages, model
from conformance.reference.faults import (
    ALL_MODEL_IDS,
    FAITHFUL,
    Variant,
    answering_model,
    parse_variant,
)

OWNER = "conformance"
SYSTEM_FINGERPRINT = "fp_reference"
#: Request header that makes the reference answer as rate limited (see ``rate_limit``).
SIMULATE_HEADER = "x-conformance-simulate"
_CREATED = {"ref-1": 1780272000, "ref-1-2026-11-01": 1793491200,
            "ref-2": 1780358400, "ref-2-2026-11-01": 1793577600}
_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_ALNUM = string.ascii_letters + string.digits
_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
    "was not valid JSON. If you have trouble figuring out how to fix this, please contact us "
    "through our help center at help.openai.com.)"
)
_INT_PARAMS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs")
_FLOAT_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_BOOL_PARAMS = ("stream", "logprobs", "parallel_tool_calls", "store")
_EXTRA_FIELDS: Mapping[str, Mapping[str, Any]] = {
    "top": {"provider": "reference-quirk"},
    "choice": {"native_finish_reason": None},
    "message": {"reasoning_content": None},
    "usage": {"cost": 0.0},
}


class ApiError(Exception):
    """An error answered with the OpenAI envelope (or a deliberately broken replacement)."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, *,
                 body: dict[str, Any] | None = None, html: str | None = None,
                 plain: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.body = body
        self.html = html
        self.plain = plain


def _random_id(prefix: str, length: int = 29) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def mask_key(key: str) -> str:
    """Mask a presented key as OpenAI does: a few leading characters, ``...``, the last 4."""
    if len(key) < 12:
        return "*" * len(key)
    return f"{key[:3]}...{key[-4:]}"


@functools.cache
def request_parameters() -> frozenset[str]:
    """Top-level properties of CreateChatCompletionRequest, from the generated schema."""
    from conformance import validation

    path = validation.schema_dir() / validation.SCHEMAS["chat.request"]
    root = json.loads(path.read_text(encoding="utf-8"))
    defs = root.get("$defs", {})
    found: set[str] = set()

    def walk(node: Any, depth: int) -> None:
        if not isinstance(node, dict) or depth > 8:
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            walk(defs.get(ref.removeprefix("#/$defs/")), depth + 1)
        for member in node.get("allOf", []):
            walk(member, depth + 1)
        found.update(node.get("properties", {}))

    walk(root, 0)
    return frozenset(found)


def _violation_error(path: str, message: str) -> ApiError:
    """Map a schema violation to OpenAI's 400 error with ``param`` and ``code``."""
    param = path.removeprefix("$").removeprefix(".") or None
    required = re.match(r"'([^']+)' is a required property", message)
    if required:
        full = f"{param}.{required.group(1)}" if param else required.group(1)
        return ApiError(400, f"Missing required parameter: '{full}'.", param=full,
                        code="missing_required_parameter")
    if message.endswith(" should be non-empty"):
        return ApiError(400, f"Invalid '{param}': empty array. Expected an array with minimum "
                        "length 1, but got an empty array instead.", param=param,
                        code="empty_array")
    if " is not of type " in message:
        expected = message.split(" is not of type ", 1)[1]
        return ApiError(400, f"Invalid type for '{param}': expected {expected}.", param=param,
                        code="invalid_type")
    return ApiError(400, f"Invalid value for '{param}': {message}.", param=param,
                    code="invalid_value")


# --------------------------------------------------------------------------------------------
# Request parsing


@dataclass
class _Chat:
    """A validated chat request, reduced to what generation and rendering need."""

    requested_model: str
    stream: bool
    n: int
    stops: list[str]
    limit: int | None
    logprobs: bool
    top_logprobs: int
    include_usage: bool
    legacy_functions: bool
    model_request: model.Request
    service_tier: str = "default"
    prompt_tokens: int = 0
    seed: int | None = None
    logit_bias: tuple[tuple[int, int], ...] = ()


def _coerce_types(body: dict[str, Any]) -> dict[str, Any]:
    """accept_wrong_types: coerce the values a lax relay would coerce instead of rejecting."""
    body = dict(body)
    if isinstance(body.get("messages"), str):
        body["messages"] = [{"role": "user", "content": body["messages"]}]
    for key in _INT_PARAMS + _FLOAT_PARAMS:
        value = body.get(key)
        if isinstance(value, str):
            try:
                body[key] = int(value) if key in _INT_PARAMS else float(value)
            except ValueError:
                body.pop(key)
    for key in _BOOL_PARAMS:
        if isinstance(body.get(key), str):
            body[key] = body[key].strip().lower() in ("true", "1", "yes")
    if isinstance(body.get("messages"), list):
        fixed = []
        for message in body["messages"]:
            if isinstance(message, dict) and isinstance(message.get("content"), (int, float)):
                message = {**message, "content": str(message["content"])}
            fixed.append(message)
        body["messages"] = fixed
    return body


def _list(value: Any) -> list[Any]:
    """``value`` if it is a list, else [] (lax variants let odd types through)."""
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else {}."""
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int | None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return int(value)
    return default


def _check_strict_schema(schema: Any, where: str, depth: int = 0) -> None:
    """OpenAI structured-outputs rules for strict schemas (objects closed, all required)."""
    if not isinstance(schema, dict) or depth > 32:
        return
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            raise ApiError(400, f"Invalid schema for {where}: In context=(), "
                           "'additionalProperties' is required to be supplied and to be false.",
                           param="response_format", code="invalid_json_schema")
        props = _dict(schema.get("properties"))
        missing = [p for p in props if p not in _list(schema.get("required"))]
        if missing:
            raise ApiError(400, f"Invalid schema for {where}: In context=(), 'required' is "
                           f"required to be supplied and to be an array including every key in "
                           f"properties. Missing '{missing[0]}'.", param="response_format",
                           code="invalid_json_schema")
        for sub in props.values():
            _check_strict_schema(sub, where, depth + 1)
    for key in ("items",):
        _check_strict_schema(schema.get(key), where, depth + 1)
    for key in ("anyOf", "allOf", "prefixItems"):
        for sub in _list(schema.get(key)):
            _check_strict_schema(sub, where, depth + 1)
    for key in ("$defs", "definitions"):
        for sub in _dict(schema.get(key)).values():
            _check_strict_schema(sub, where, depth + 1)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", p.get("refusal", ""))) for p in content
                         if isinstance(p, dict) and p.get("type") in ("text", "refusal"))
    return ""


def _semantic_checks(body: dict[str, Any]) -> None:
    """Rules OpenAI enforces beyond the schema."""
    stream = body.get("stream") is True
    if body.get("stream_options") is not None and not stream:
        raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is "
                       "enabled.", param="stream_options", code="invalid_value")
    messages = body["messages"]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object" and not any(
            "json" in _text_of(m.get("content")).lower() for m in messages):
        raise ApiError(400, "'messages' must contain the word 'json' in some form, to use "
                       "'response_format' of type 'json_object'.", param="messages",
                       code="invalid_value")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = _dict(fmt.get("json_schema"))
        if spec.get("strict") is True:
            _check_strict_schema(spec.get("schema", {}),
                                 f"response_format '{spec.get('name', '')}'")
    for key in ("max_tokens", "max_completion_tokens"):
        value = _int(body.get(key), None)
        if value is not None and value < 1:
            raise ApiError(400, f"Invalid '{key}': integer below minimum value. Expected a value "
                           f">= 1, but got {value} instead.", param=key,
                           code="integer_below_min_value")
    modalities = body.get("modalities")
    if (isinstance(modalities, list) and "audio" in modalities) or body.get("audio") is not None:
        raise ApiError(400, "This model does not support audio output. Remove 'audio' from "
                       "'modalities'.", param="modalities", code="unsupported_value")
    if body.get("web_search_options") is not None:
        raise ApiError(400, "Web search options not supported with this model.",
                       param="web_search_options", code="unsupported_parameter")
    _check_tools(body)
    _check_messages(messages, str(body.get("model")))


def _param_faults(body: dict[str, Any], variant: Variant) -> None:
    """The params faults that refuse or crash on a request parameter."""
    crash = ApiError(500, "Internal server error", "server_error")
    if "sampling_params_500" in variant and any(
            body.get(k) is not None for k in ("top_p", "presence_penalty", "frequency_penalty")):
        raise crash
    if "user_500" in variant and body.get("user") is not None:
        raise crash
    if "name_500" in variant and any("name" in m for m in body["messages"]
                                     if m.get("role") == "user"):
        raise crash
    if "reasoning_effort_500" in variant and body.get("reasoning_effort") is not None:
        raise crash
    if "stream_options_500" in variant and body.get("stream_options") is not None \
            and body.get("stream") is not True:
        raise crash
    if "reject_developer_role" in variant:
        for index, message in enumerate(body["messages"]):
            if message.get("role") == "developer":
                raise ApiError(400, "Invalid value: 'developer'. Supported values are: "
                               "'system', 'assistant', 'user', 'function', and 'tool'.",
                               param=f"messages[{index}].role", code="invalid_value")


def _logit_bias(value: Any) -> tuple[tuple[int, int], ...]:
    """Validated ``logit_bias``: token ids (as strings) in the vocabulary, biases -100..100."""
    out = []
    for key, bias in _dict(value).items():
        if not re.fullmatch(r"\d{1,9}", str(key)) or int(key) >= model.VOCAB_SIZE:
            raise ApiError(400, f"Invalid key in 'logit_bias': {key}. Maximum value is "
                           f"{model.VOCAB_SIZE - 1}.", param="logit_bias", code="invalid_value")
        if not isinstance(bias, int) or isinstance(bias, bool) or not -100 <= bias <= 100:
            raise ApiError(400, f"Invalid value in 'logit_bias': {bias}. Expected a value "
                           "between -100 and 100.", param="logit_bias", code="invalid_value")
        out.append((int(key), bias))
    return tuple(out)


def _sample(text: str, chat: _Chat, variant: Variant) -> str:
    """What sampling does to the scripted answer: logit_bias, and the seed fault."""
    if "seed_ignored" in variant and chat.seed is not None:
        text = f"{text} ({secrets.token_hex(3)})"
    bias = dict(chat.logit_bias)
    if "ignore_logit_bias" in variant:
        bias = {}
    if "logit_bias_positive_only" in variant:
        bias = {t: b for t, b in bias.items() if b > 0}
    return model.apply_logit_bias(text, bias)


def _check_tools(body: dict[str, Any]) -> None:
    tools = [t for t in _list(body.get("tools")) if isinstance(t, dict)]
    names = {_dict(t.get("function")).get("name") for t in tools if t.get("type") == "function"}
    choice = body.get("tool_choice")
    if choice is not None and choice != "none" and not tools:
        raise ApiError(400, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                       "'tools' are specified.", param="tool_choice", code="invalid_value")
    if body.get("parallel_tool_calls") is not None and not tools:
        raise ApiError(400, "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is "
                       "only allowed when 'tools' are specified.", param="parallel_tool_calls",
                       code="invalid_value")
    if isinstance(choice, dict):
        if choice.get("type") == "custom":
            raise ApiError(400, "Custom tools are not supported by this model.",
                           param="tool_choice", code="unsupported_value")
        if choice.get("type") == "function":
            name = _dict(choice.get("function")).get("name")
            if name not in names:
                raise ApiError(400, f"Invalid value for 'tool_choice': function '{name}' not "
                               f"found in 'tools'.", param="tool_choice", code="invalid_value")
    for index, tool in enumerate(tools):
        function = _dict(tool.get("function"))
        if tool.get("type") == "function" and function.get("strict") is True:
            _check_strict_schema(function.get("parameters", {}),
                                 f"function '{function.get('name')}'")
        if tool.get("type") == "function" and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}",
                                                               str(function.get("name", ""))):
            raise ApiError(400, f"Invalid 'tools[{index}].function.name': string does not match "
                           "pattern. Expected a string that matches the pattern "
                           "'^[a-zA-Z0-9_-]+$'.", param=f"tools[{index}].function.name",
                           code="invalid_value")
    functions = [f for f in _list(body.get("functions")) if isinstance(f, dict)]
    call = body.get("function_call")
    if isinstance(call, dict) and call.get("name") not in {f.get("name") for f in functions}:
        raise ApiError(400, f"Invalid value for 'function_call': function '{call.get('name')}' "
                       "not found in 'functions'.", param="function_call", code="invalid_value")


def _check_messages(messages: list[Any], model_id: str) -> None:
    pending: dict[str, int] = {}
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "assistant":
            if pending:
                _unanswered(pending, index)
            for call in _list(message.get("tool_calls")):
                if isinstance(call, dict) and isinstance(call.get("id"), str):
                    pending[call["id"]] = index
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in pending:
                raise ApiError(400, "Invalid parameter: messages with role 'tool' must be a "
                               "response to a preceeding message with 'tool_calls'.",
                               param=f"messages.[{index}].role", code=None)
            del pending[call_id]
        elif pending:
            _unanswered(pending, index)
        content = message.get("content")
        if isinstance(content, list):
            for number, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind in ("input_audio", "file"):
                    what = "audio input" if kind == "input_audio" else "file input"
                    raise ApiError(400, f"Invalid content type: '{kind}' is not supported. The "
                                   f"model {model_id} does not support {what}.",
                                   param=f"messages[{index}].content[{number}].type",
                                   code="unsupported_value")


def _unanswered(pending: dict[str, int], index: int) -> None:
    ids = ", ".join(pending)
    raise ApiError(400, "An assistant message with 'tool_calls' must be followed by tool "
                   "messages responding to each 'tool_call_id'. The following tool_call_ids did "
                   f"not have response messages: {ids}", param=f"messages.[{index}].role")


# --------------------------------------------------------------------------------------------
# Images


async def _image_color(url: str, cache: dict[str, str]) -> str:
    """Decode (or download) one image and name its dominant colour."""
    if url in cache:
        return cache[url]
    if url.startswith("data:"):
        try:
            color = await asyncio.to_thread(images.dominant_color, images.decode_data_url(url))
        except images.ImageError as exc:
            raise ApiError(400, "You uploaded an unsupported image. Please make sure your image "
                           "has of one the following formats: ['png', 'jpeg', 'gif', 'webp']. "
                           f"({exc})", code="invalid_image_format") from exc
    elif re.match(r"https?://", url, re.I):
        color = await _download_color(url)
    else:
        raise ApiError(400, "Invalid image URL: the URL must be an http(s) URL or a base64 data "
                       "URL.", code="invalid_image_url")
    cache[url] = color
    return color


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every download (building one per client costs ~40 ms)."""
    return ssl.create_default_context()


async def _download_color(url: str) -> str:
    shown = url if len(url) <= 200 else url[:200] + "..."
    try:
        # Generous: in the self-tests one busy server downloads its own assets for ~100
        # providers at once, and its event loop may lag several seconds behind.
        async with httpx.AsyncClient(timeout=30.0, follow_redirects=True,
                                     verify=_tls_context()) as client, \
                client.stream("GET", url) as response:
            if response.status_code != 200:
                raise ApiError(400, f"Error while downloading {shown}.",
                               code="invalid_image_url")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data.extend(chunk)
                if len(data) > images.MAX_IMAGE_BYTES:
                    raise ApiError(400, f"Error while downloading {shown}: larger than 20 MB.",
                                   code="invalid_image_url")
    except httpx.TimeoutException as exc:
        raise ApiError(400, f"Timeout while downloading {shown}.",
                       code="invalid_image_url") from exc
    except httpx.HTTPError as exc:
        raise ApiError(400, f"Error while downloading {shown}.", code="invalid_image_url") from exc
    try:
        return await asyncio.to_thread(images.dominant_color, bytes(data))
    except images.ImageError as exc:
        raise ApiError(400, f"Error while downloading {shown}: not an image.",
                       code="invalid_image_url") from exc


async def _model_messages(raw: list[dict[str, Any]], variant: Variant) -> list[model.Message]:
    """Convert request messages to what the model sees, applying the visibility faults."""
    cache: dict[str, str] = {}
    out: list[model.Message] = []
    for message in raw:
        role = "system" if message.get("role") == "developer" else str(message.get("role"))
        parts: list[str | model.Image] = []
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "text":
                    if "first_text_part_only" in variant and any(
                            isinstance(p, str) for p in parts):
                        continue
                    parts.append(str(part.get("text", "")))
                elif kind == "refusal":
                    parts.append(str(part.get("refusal", "")))
                elif kind == "image_url":
                    if "strip_images" in variant:
                        continue
                    image_url = _dict(part.get("image_url"))
                    url = str(image_url.get("url", ""))
                    if "first_image_only" in variant and any(
                            isinstance(p, model.Image) for p in parts):
                        continue
                    if "drop_url_images" in variant and re.match(r"https?://", url, re.I):
                        continue
                    if "detail_images_dropped" in variant and "detail" in image_url:
                        continue
                    try:
                        color = await _image_color(url, cache)
                    except ApiError as err:
                        if "invalid_image_500" in variant and err.code == "invalid_image_format":
                            raise ApiError(500, "Internal server error", "server_error") from err
                        raise
                    parts.append(model.Image(color))
        calls = []
        for call in _list(message.get("tool_calls")):
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                function = call["function"]
                calls.append(model.ToolCall(str(function.get("name", "")),
                                            _arguments_text(function.get("arguments")),
                                            str(call.get("id", ""))))
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            calls.append(model.ToolCall(str(legacy.get("name", "")),
                                        _arguments_text(legacy.get("arguments")),
                                        "legacy:" + str(legacy.get("name", ""))))
        tool_call_id = message.get("tool_call_id")
        if role == "function":
            tool_call_id = "legacy:" + str(message.get("name", ""))
        out.append(model.Message(role, parts, calls,
                                 str(tool_call_id) if tool_call_id is not None else None,
                                 message.get("name") if isinstance(message.get("name"), str)
                                 else None))
    if "drop_system" in variant:
        out = [m for m in out if m.role != "system"]
    if "drop_tool_results" in variant:
        out = [m for m in out if m.role not in ("tool", "function")]
    if "last_message_only" in variant:
        out = out[-1:]
    return out


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments if arguments is not None else {})


# --------------------------------------------------------------------------------------------
# Generation and truncation


@dataclass
class _Choice:
    index: int
    content: str | None
    tokens: list[str]
    finish_reason: str
    tool_calls: list[model.ToolCall]
    completion_tokens: int


def _choices(chat: _Chat, variant: Variant = FAITHFUL) -> list[_Choice]:
    output = model.generate(chat.model_request)
    fmt = chat.model_request.response_format or {}
    if "json_fenced" in variant and fmt.get("type") in ("json_object", "json_schema"):
        output.content = f"```json\n{output.content}\n```"
    choices = []
    for index in range(chat.n):
        if output.tool_calls:
            empty_id = "tool_call_empty_id" in variant
            calls = [model.ToolCall(c.name, c.arguments,
                                    "" if empty_id else _random_id("call_", 24))
                     for c in output.tool_calls]
            spent = sum(len(model.tokenize(c.name + c.arguments)) for c in calls)
            finish = "function_call" if chat.legacy_functions else output.finish_reason
            if "tool_finish_stop" in variant and finish == "tool_calls":
                finish = "stop"
            choices.append(_Choice(index, None, [], finish, calls, spent))
        else:
            content = _sample(output.content or "", chat, variant)
            tokens, _, limited = model.truncate(content, chat.stops, chat.limit)
            text, finish = "".join(tokens), "length" if limited else "stop"
            choices.append(_Choice(index, text, tokens, finish, [], len(tokens)))
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


def _usage(prompt: int, completion: int, variant: Variant) -> dict[str, Any]:
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
    obj.update(_EXTRA_FIELDS["top"])
    for choice in obj.get("choices") or []:
        choice.update(_EXTRA_FIELDS["choice"])
        for key in ("message", "delta"):
            if isinstance(choice.get(key), dict):
                choice[key].update(_EXTRA_FIELDS["message"])
    if isinstance(obj.get("usage"), dict):
        obj["usage"].update(_EXTRA_FIELDS["usage"])
    return obj


def _tool_call_json(call: model.ToolCall, variant: Variant) -> dict[str, Any]:
    arguments: Any = call.arguments
    if "tool_args_object" in variant:
        arguments = json.loads(call.arguments)
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": arguments}}


def _completion(chat: _Chat, variant: Variant) -> dict[str, Any]:
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
        "id": _random_id("chatcmpl-"),
        "object": "chat.completions" if "chat_wrong_object" in variant else "chat.completion",
        "created": int(time.time()),
        "model": answering_model(chat.requested_model),
        "choices": choices,
        "usage": _usage(chat.prompt_tokens, completion_tokens, variant),
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


def _choice_steps(choice: _Choice, chat: _Chat,
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


def _stream_events(chat: _Chat, variant: Variant) -> list[dict[str, Any] | str]:
    choices = _choices(chat, variant)
    completion_tokens = sum(c.completion_tokens for c in choices)
    chunk_id = _random_id("chatcmpl-")
    created = int(time.time())
    include_usage = chat.include_usage and "ignore_include_usage" not in variant
    prompt = chat.prompt_tokens * (2 if "stream_usage_inflated" in variant else 1)
    usage = _usage(prompt, completion_tokens, variant)

    def chunk(choice_list: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": _random_id("chatcmpl-") if "chunk_ids_vary" in variant else chunk_id,
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
    if "no_done" not in variant:
        events.append(_DONE)
    if "events_after_done" in variant:
        events.append(chunk([{"index": 0, "delta": {"content": " (late)"}, "logprobs": None,
                              "finish_reason": None}]))
    return events


SSEItem = dict[str, Any] | str | tuple[str | None, dict[str, Any] | str]
"""A data payload, or an (event name, payload) pair for named events (Anthropic streams)."""


def _sse_pieces(events: Iterable[SSEItem], variant: Variant) -> list[bytes]:
    """Serialise events as SSE, applying the sse_* and split_writes quirks."""
    newline = "\r\n" if "sse_crlf" in variant else "\n"
    prefix = "data:" if "sse_no_space" in variant else "data: "
    comment = f": keep-alive{newline}{newline}" if "sse_comments" in variant else ""
    pieces: list[str] = []
    if "split_writes" in variant:
        # A legal comment line with multi-byte characters, so splits fall inside them.
        pieces.append(f": split writes — ünïcödé ✓{newline}{newline}")
    if "sse_invalid_utf8" in variant:
        # A lone surrogate, written out as the raw byte 0xFF (never valid in UTF-8).
        pieces.append(f": keep-alive \udcff{newline}{newline}")
    for item in events:
        name, event = item if isinstance(item, tuple) else (None, item)
        payload = event if isinstance(event, str) else json.dumps(
            event, ensure_ascii=False, separators=(",", ":"))
        field = "" if name is None else f"{prefix.replace('data', 'event')}{name}{newline}"
        pieces.append(f"{comment}{field}{prefix}{payload}{newline}{newline}")
    if "split_writes" in variant:
        data = "".join(pieces).encode(errors="surrogateescape")
        return [data[i:i + 3] for i in range(0, len(data), 3)]
    return [piece.encode(errors="surrogateescape") for piece in pieces]


async def _aiter(pieces: list[bytes], pause: bool) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
        if pause:
            await asyncio.sleep(0)


def _stream_response(chat: _Chat, variant: Variant) -> Response:
    media = ("application/json" if "stream_json_content_type" in variant
             else "text/event-stream")
    return _event_stream(_stream_events(chat, variant), variant, media)


def _event_stream(events: Iterable[SSEItem], variant: Variant,
                  media: str = "text/event-stream") -> Response:
    pieces = _sse_pieces(events, variant)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if "stream_cut" in variant:
        return CutStream(pieces[:max(2, len(pieces) // 2)], media, headers)
    return StreamingResponse(_aiter(pieces, "split_writes" in variant), media_type=media,
                             headers=headers)


class CutStream(Response):
    """Sends ``pieces`` of a chunked body, then returns without finishing it, so the server
    closes the connection mid-body (no final chunk): the ``stream_cut`` fault, and the cut
    answers of the transport tests."""

    def __init__(self, pieces: list[bytes], media: str, headers: dict[str, str]) -> None:
        super().__init__(media_type=media, headers=headers)
        self.pieces = pieces

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in self.pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})


# --------------------------------------------------------------------------------------------
# The app

Handler = Callable[[Request, Variant], Awaitable[Response]]


class _Provider:
    """Request handlers bound to one configured API key."""

    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        #: Request bodies the ``rate_limited_once`` quirk has already limited.
        self.limited_once: set[bytes] = set()

    # -- plumbing ----------------------------------------------------------------------------

    def endpoint(self, handler: Handler, *, auth: bool = True,
                 anthropic: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Wrap ``handler`` with variant selection, authentication and error rendering;
        ``anthropic`` endpoints also take ``x-api-key`` and answer errors in Anthropic's
        format."""

        async def run(request: Request) -> Response:
            spec = request.path_params.get("spec")
            variant = FAITHFUL
            if spec is not None:
                try:
                    variant = parse_variant(spec)
                except ValueError as exc:
                    return self.error(ApiError(
                        404, f"Invalid URL ({request.method} {request.url.path}): {exc}"),
                        FAITHFUL)
            if variant.latency_ms:
                await asyncio.sleep(variant.latency_ms / 1000)
            try:
                stainless = [k for k in request.headers if k.lower().startswith("x-stainless-")]
                if "sdk_headers_rejected" in variant and stainless:
                    raise ApiError(400, f"Header '{stainless[0]}' is not allowed.",
                                   code="invalid_header")
                if auth:
                    self.authenticate(request, variant, anthropic=anthropic)
                    await self.rate_limit(request, variant)
                response = await handler(request, variant)
            except ApiError as err:
                response = self.error(err, variant, anthropic=anthropic)
            except ClientDisconnect:
                # The client left before its body arrived (e.g. a run stopped with Ctrl-C):
                # nothing to answer, and no server error to log. 499 is never sent.
                return Response(status_code=499)
            if "echo_key" in variant:
                response.headers["x-echo-key"] = self.api_key or ""
            return response

        return run

    def authenticate(self, request: Request, variant: Variant, *,
                     anthropic: bool = False) -> None:
        if self.api_key is None or "no_auth" in variant:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            token = ""
        if anthropic and not token and "messages_bearer_only" not in variant:
            # Anthropic's own header; relays take the key either way.
            token = request.headers.get("x-api-key", "").strip()
        if not token:
            raise ApiError(401, "x-api-key header is required" if anthropic else _MISSING_KEY)
        if "accept_any_key" in variant or (anthropic and "messages_accept_any_key" in variant):
            return
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            status = 403 if "wrong_key_403" in variant else 401
            if anthropic:
                raise ApiError(status, "invalid x-api-key")
            raise ApiError(status, f"Incorrect API key provided: {mask_key(token)}. You can find "
                           "your API key at https://platform.openai.com/account/api-keys.",
                           code="invalid_api_key")

    async def rate_limit(self, request: Request, variant: Variant) -> None:
        """The reference's rate limiter.  It never trips on its own: a request carrying
        ``X-Conformance-Simulate: rate-limit`` counts as over the limit, so the suite can see
        how rate limiting is answered (429, Retry-After, the error envelope) without flooding
        anyone.  Real providers ignore the header (so does the ``rate_limited_once`` quirk,
        which instead limits, after 0.5 s, the first of each distinct Messages request with
        ``stop_sequences``: a check that runs late in a run)."""
        message = ("Rate limit reached for requests on ref-1: Limit 3, Used 3, Requested 1. "
                   "Please try again in 0s.")
        if "rate_limited_once" in variant:
            body = await request.body()
            if b'"stop_sequences":' in body and body not in self.limited_once:
                self.limited_once.add(body)
                await asyncio.sleep(0.5)
                raise ApiError(429, message, "requests", code="rate_limit_exceeded")
            return
        if request.headers.get(SIMULATE_HEADER, "").lower() != "rate-limit":
            return
        if "rate_limit_500" in variant:
            raise ApiError(500, message, "server_error", code="rate_limit_exceeded")
        raise ApiError(429, message, "requests", code="rate_limit_exceeded")

    def error(self, err: ApiError, variant: Variant, *, anthropic: bool = False) -> Response:
        """Render an error (OpenAI's envelope, or Anthropic's error body for ``anthropic``
        endpoints), applying the error-shape faults."""
        if "errors_as_html" in variant:
            return HTMLResponse(f"<html><body><h1>{err.status} Error</h1></body></html>",
                                err.status)
        if err.html is not None:
            return HTMLResponse(err.html, err.status)
        if err.plain is not None:
            return PlainTextResponse(err.plain, err.status)
        if err.body is not None:
            body = err.body
        else:
            message = err.message
            if "echo_key" in variant and 400 <= err.status < 500:
                message += f" (key: {self.api_key})"
            error: dict[str, Any] = {"message": message, "type": err.type, "param": err.param,
                                     "code": err.code}
            if "envelope_minimal" in variant:
                del error["param"], error["code"]
            if "error_code_is_status" in variant:
                error["code"] = str(err.status)
            if "error_type_renamed" in variant:
                error["type"] = {401: "auth_error", 429: "throttling_error"}.get(
                    err.status, "invalid_request" if err.status < 500 else err.type)
            if "error_param_none_string" in variant and "param" in error \
                    and error["param"] is None:
                error["param"] = "None"
            body = {"error": error}
            if anthropic and "messages_errors_openai_envelope" not in variant:
                body = messages.error_body(err.status, message)
        status = 200 if "error_in_200" in variant else err.status
        headers = {"retry-after": "0"} if err.status == 429 else None
        return JSONResponse(body, status, headers=headers)

    # -- models ------------------------------------------------------------------------------

    @staticmethod
    def _model_object(model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": _CREATED.get(model_id, 1780272000),
                "owned_by": OWNER}

    async def list_models(self, request: Request, variant: Variant) -> Response:
        body: dict[str, Any]
        if "models_wrong_shape" in variant:
            body = {"models": [{"name": "ref-1"}]}
        elif "models_missing_configured" in variant:
            body = {"object": "list", "data": [self._model_object("other-model")]}
        else:
            body = {"object": "list", "data": [self._model_object(m) for m in ALL_MODEL_IDS]}
        if "extra_fields" in variant:
            body.update(_EXTRA_FIELDS["top"])
        return JSONResponse(body)

    async def retrieve_model(self, request: Request, variant: Variant) -> Response:
        model_id = request.path_params["model"]
        if "models_retrieve_html_404" in variant:
            raise ApiError(404, "Not Found",
                           html="<html><body><h1>404 Not Found</h1></body></html>")
        if model_id not in ALL_MODEL_IDS:
            raise ApiError(404, f"The model '{model_id}' does not exist", param="model",
                           code="model_not_found")
        body = self._model_object(model_id)
        if "extra_fields" in variant:
            body.update(_EXTRA_FIELDS["top"])
        return JSONResponse(body)

    # -- chat --------------------------------------------------------------------------------

    async def chat_completions(self, request: Request, variant: Variant) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            if "malformed_json_500" in variant:
                raise ApiError(500, "Internal Server Error",
                               plain="Internal Server Error") from exc
            raise ApiError(400, _BAD_JSON) from exc
        if "array_body_500" in variant and isinstance(body, list):
            raise ApiError(500, "Internal Server Error", plain="Internal Server Error")
        chat = await self.parse_chat(body, variant)
        if chat.stream:
            return _stream_response(chat, variant)
        return JSONResponse(_completion(chat, variant))

    def validate(self, body: Any, variant: Variant) -> dict[str, Any]:
        from conformance.validation import violations

        if not isinstance(body, dict):
            raise ApiError(400, "Invalid type for request body: expected an object.",
                           code="invalid_type")
        if "accept_invalid_role" in variant and isinstance(body.get("messages"), list):
            body = {**body, "messages": [
                {**m, "role": "user"} if isinstance(m, dict) and m.get("role") not in _ROLES
                else m for m in body["messages"]]}
        if "accept_wrong_types" in variant:
            body = _coerce_types(body)
        if "empty_messages_accepted" in variant and body.get("messages") == []:
            body = {**body, "messages": [{"role": "user", "content": ""}]}
        allowed = request_parameters()
        for key in body:
            if key not in allowed:
                if "unknown_param_500" in variant:
                    raise ApiError(500, "Internal server error", "server_error")
                raise ApiError(400, f"Unrecognized request argument supplied: {key}")
        found = violations("chat.request", body)
        if "accept_wrong_types" in variant:
            found = [v for v in found if " is not of type " not in v.message]
        if "temperature_unchecked" in variant:
            found = [v for v in found
                     if v.path != "$.temperature" or " is not of type " in v.message]
        temperature = body.get("temperature")
        if "temperature_limit_off" in variant and isinstance(temperature, (int, float)) \
                and 0 <= temperature <= 3:
            found = [v for v in found if v.path != "$.temperature"]
        if found:
            raise _violation_error(found[0].path, found[0].message)
        checked: dict[str, Any] = body
        return checked

    async def parse_chat(self, body: Any, variant: Variant) -> _Chat:
        body = self.validate(body, variant)
        messages = [m for m in _list(body.get("messages")) if isinstance(m, dict)]
        if not messages:
            raise ApiError(400, "Invalid 'messages': empty array. Expected an array with "
                           "minimum length 1, but got an empty array instead.",
                           param="messages", code="empty_array")
        body["messages"] = messages
        _param_faults(body, variant)
        _semantic_checks(body)
        if "reject_stop" in variant and body.get("stop") is not None:
            raise ApiError(400, "Unsupported parameter: 'stop' is not supported with this model.",
                           param="stop", code="unsupported_parameter")
        if "reject_functions" in variant and (
                body.get("functions") is not None or body.get("function_call") is not None
                or any(m.get("role") == "function" for m in messages)):
            raise ApiError(400, "Unsupported parameter: 'functions' is deprecated and not "
                           "supported with this model; use 'tools'.", param="functions",
                           code="unsupported_parameter")
        requested = body.get("model")
        if requested not in ALL_MODEL_IDS:
            if "unknown_model_503" in variant:
                raise ApiError(503, "no channel", body={"error": {
                    "message": f"当前分组 default 下对于模型 {requested} 无可用渠道",
                    "type": "new_api_error"}})
            raise ApiError(404, f"The model `{requested}` does not exist or you do not have "
                           "access to it.", code="model_not_found")
        seen = await _model_messages(messages, variant)
        request = self._model_request(body, seen, variant)
        stream = body.get("stream") is True
        stops = self._stops(body.get("stop"), stream, variant)
        limits = []
        if "ignore_max_tokens" not in variant:
            limits.append(_int(body.get("max_tokens"), None))
        if "ignore_max_completion_tokens" not in variant:
            limits.append(_int(body.get("max_completion_tokens"), None))
        limit = min((x for x in limits if x is not None), default=None)
        n = _int(body.get("n"), 1) or 1
        if "ignore_n" in variant:
            n = 1
        options = body.get("stream_options") if isinstance(body.get("stream_options"),
                                                           dict) else {}
        tier = body.get("service_tier")
        return _Chat(
            requested_model="ref-mini" if "model_substitution" in variant else str(requested),
            stream=stream, n=max(1, n), stops=stops,
            limit=limit,
            logprobs=body.get("logprobs") is True and "ignore_logprobs" not in variant,
            top_logprobs=max(0, min(20, _int(body.get("top_logprobs"), 0) or 0)),
            include_usage=options.get("include_usage") is True,
            legacy_functions=bool(request.tools) and not body.get("tools") and bool(
                body.get("functions")) and "functions_as_tool_calls" not in variant,
            model_request=request,
            service_tier=tier if tier in ("flex", "priority") else "default",
            prompt_tokens=model.prompt_tokens(seen, request.tools),
            seed=_int(body.get("seed"), None),
            logit_bias=_logit_bias(body.get("logit_bias")),
        )

    @staticmethod
    def _stops(stop: Any, stream: bool, variant: Variant) -> list[str]:
        stops = [stop] if isinstance(stop, str) else [s for s in _list(stop) if isinstance(s, str)]
        if "ignore_stop" in variant or (stream and "ignore_stop_stream" in variant):
            return []
        if "stop_first_only" in variant:
            return stops[:1]
        return stops

    @staticmethod
    def _model_request(body: dict[str, Any], seen: list[model.Message],
                       variant: Variant) -> model.Request:
        tools = [model.Tool(str(f.get("name", "")), str(f.get("description") or ""),
                            _dict(f.get("parameters")), f.get("strict") is True)
                 for t in _list(body.get("tools"))
                 if isinstance(t, dict) and t.get("type") == "function"
                 and isinstance(f := t.get("function"), dict)]
        if "drop_tools" in variant:
            tools = []
        choice: Any = body.get("tool_choice", "auto" if tools else "none")
        parallel = body.get("parallel_tool_calls") is not False
        if "ignore_parallel_tool_calls" in variant:
            parallel = True
        if "no_parallel_tool_calls" in variant:
            parallel = False
        if not tools and body.get("functions") and "ignore_functions" not in variant:
            tools = [model.Tool(str(f.get("name", "")), str(f.get("description") or ""),
                                _dict(f.get("parameters")))
                     for f in _list(body["functions"]) if isinstance(f, dict)]
            call = body.get("function_call", "auto")
            choice = {"type": "function", "function": call} if isinstance(call, dict) else call
            parallel = False
        if "tool_choice_ignored" in variant:
            choice = "auto"
        mode, forced = "auto", None
        if isinstance(choice, str):
            mode = choice if choice in ("none", "auto", "required") else "auto"
        elif isinstance(choice, dict) and choice.get("type") == "function":
            mode, forced = "required", str(_dict(choice.get("function")).get("name"))
            if "named_choice_as_required" in variant:
                forced = None
        elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            allowed = _dict(choice.get("allowed_tools"))
            names = {_dict(t.get("function")).get("name") for t in _list(allowed.get("tools"))
                     if isinstance(t, dict)}
            tools = [t for t in tools if t.name in names]
            mode = "required" if allowed.get("mode") == "required" else "auto"
        fmt = body.get("response_format")
        stream = body.get("stream") is True
        if ("ignore_response_format" in variant or not isinstance(fmt, dict)
                or (stream and "ignore_response_format_stream" in variant)):
            fmt = None
        elif "json_schema_as_json_object" in variant and fmt.get("type") == "json_schema":
            fmt = {"type": "json_object"}
        return model.Request(seen, tools, mode, forced, parallel, fmt)

    # -- Anthropic Messages API --------------------------------------------------------------

    async def anthropic_messages(self, request: Request, variant: Variant) -> Response:
        """``POST /v1/messages`` (:mod:`conformance.reference.messages`)."""
        if "no_messages_api" in variant:
            raise ApiError(404, "", body={"error": {
                "message": f"Invalid URL ({request.method} {request.url.path})",
                "type": "invalid_request_error", "param": None, "code": None}})
        if "no_messages_api_bare" in variant:
            raise ApiError(404, "", body={"detail": "Not Found"})
        if "messages_upstream_404" in variant:
            raise ApiError(404, "Not Found", "not_found_error")
        if "messages_500" in variant:
            raise ApiError(500, "upstream error: internal server error", "api_error")
        if "messages_version_header_dropped" in variant:
            raise ApiError(400, "anthropic-version: header is required")
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            raise ApiError(400, "There was an error parsing the body of your request: it is "
                           "not valid JSON") from exc
        try:
            call = messages.parse(body, request.headers, variant)
        except messages.MessagesError as err:
            raise ApiError(err.status, err.message) from err
        if call.stream:
            return _event_stream(messages.stream_events(call, variant), variant)
        return JSONResponse(messages.message(call, variant))

    # -- assets ------------------------------------------------------------------------------

    async def asset(self, request: Request, variant: Variant) -> Response:
        name, _, ext = request.path_params["file"].rpartition(".")
        rgb = images.COLORS.get(name)
        if rgb is None or ext not in ("png", "jpg", "jpeg"):
            raise ApiError(404, f"No such asset: {request.url.path}")
        if ext == "png":
            return Response(images.solid_png(rgb), media_type="image/png")
        return Response(images.solid_jpeg(rgb), media_type="image/jpeg")

    async def not_an_image(self, request: Request, variant: Variant) -> Response:
        return PlainTextResponse("this is not an image")


def create_app(api_key: str | None) -> Starlette:
    """The reference provider as an ASGI app; ``api_key=None`` disables authentication."""
    provider = _Provider(api_key)
    routes = []
    for prefix in ("", "/variant/{spec}"):
        routes += [
            Route(prefix + "/v1/models", provider.endpoint(provider.list_models),
                  methods=["GET"]),
            Route(prefix + "/v1/models/{model:path}", provider.endpoint(provider.retrieve_model),
                  methods=["GET"]),
            Route(prefix + "/v1/chat/completions", provider.endpoint(provider.chat_completions),
                  methods=["POST"]),
            Route(prefix + "/v1/messages",
                  provider.endpoint(provider.anthropic_messages, anthropic=True),
                  methods=["POST"]),
        ]
    routes += [
        Route("/assets/color/{file}", provider.endpoint(provider.asset, auth=False),
              methods=["GET"]),
        Route("/assets/not-an-image.png", provider.endpoint(provider.not_an_image, auth=False),
              methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        variant = FAITHFUL
        selected = re.match(r"/variant/([^/]+)/", request.url.path)
        if selected:
            with contextlib.suppress(ValueError):
                variant = parse_variant(selected.group(1))
        return provider.error(ApiError(status, f"Invalid URL ({request.method} "
                                       f"{request.url.path})"), variant)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
