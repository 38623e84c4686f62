"""Chat Completions requests as the reference provider validates and reads them.

Validation follows ``CreateChatCompletionRequest`` of the OpenAI API reference
(https://platform.openai.com/docs/api-reference/chat/create): the generated JSON Schema
(:mod:`conformance.validation`) first, then the rules OpenAI enforces beyond it (``stream_options``
only with ``stream``, the word "json" for ``json_object``, strict schemas closed, tool choice
naming an offered tool, tool results answering the preceding ``tool_calls``), each refused with
OpenAI's 400 ``param`` and ``code``. :func:`parse_chat` reduces a valid request to a
:class:`Chat` (what generation and rendering need), applying the request-side faults of
:mod:`conformance.reference.faults`, each at one place (search for its name).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from conformance import tokens
from conformance.reference import model
from conformance.reference.envelopes import ApiError
from conformance.reference.faults import ALL_MODEL_IDS, OPENAI_MODEL_IDS, Variant
from conformance.reference.vision import ImageReader

_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_INT_PARAMS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs")
_FLOAT_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_BOOL_PARAMS = ("stream", "logprobs", "parallel_tool_calls", "store")


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
class Chat:
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
    #: The OpenAI tokenizer the model writes and bills in (OpenAI-named models), or None for
    #: the reference's own vocabulary (ref-1, ref-2).
    encoding: str | None = None


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


def _logit_bias(value: Any, size: int) -> tuple[tuple[int, int], ...]:
    """Validated ``logit_bias``: token ids (as strings) below ``size``, biases -100..100."""
    out = []
    for key, bias in _dict(value).items():
        if not re.fullmatch(r"\d{1,9}", str(key)) or int(key) >= size:
            raise ApiError(400, f"Invalid key in 'logit_bias': {key}. Maximum value is "
                           f"{size - 1}.", param="logit_bias", code="invalid_value")
        if not isinstance(bias, int) or isinstance(bias, bool) or not -100 <= bias <= 100:
            raise ApiError(400, f"Invalid value in 'logit_bias': {bias}. Expected a value "
                           "between -100 and 100.", param="logit_bias", code="invalid_value")
        out.append((int(key), bias))
    return tuple(out)


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
# What the model sees


async def _model_messages(raw: list[dict[str, Any]], variant: Variant,
                          images: ImageReader) -> list[model.Message]:
    """Convert request messages to what the model sees, applying the visibility faults."""
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
                        color = await images.color(url)
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
# The whole request


def validate(body: Any, variant: Variant) -> dict[str, Any]:
    """The request body if it is a valid CreateChatCompletionRequest (as the variant
    validates); :class:`ApiError` with OpenAI's 400 otherwise."""
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

async def parse_chat(body: Any, variant: Variant, images: ImageReader) -> Chat:
    """Validate a request and reduce it to a :class:`Chat`; ``images`` reads its images."""
    body = validate(body, variant)
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
    seen = await _model_messages(messages, variant, images)
    request = _model_request(body, seen, variant)
    encoding = _encoding(str(requested), variant)
    if encoding is None:
        prompt_tokens = model.prompt_tokens(seen, request.tools)
    else:
        await asyncio.to_thread(tokens.encoder, encoding)  # loads once (~0.5 s), off the loop
        prompt_tokens = model.billed_prompt_tokens(seen, request.tools, encoding)
    stream = body.get("stream") is True
    stops = _stops(body.get("stop"), stream, variant)
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
    return Chat(
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
        prompt_tokens=prompt_tokens,
        seed=_int(body.get("seed"), None),
        logit_bias=_logit_bias(body.get("logit_bias"), model.vocabulary(encoding).size),
        encoding=encoding,
    )


def _encoding(requested: str, variant: Variant) -> str | None:
    """The OpenAI tokenizer an OpenAI-named model writes and bills in; None for the
    reference's own models."""
    if requested not in OPENAI_MODEL_IDS:
        return None
    encoding = tokens.encoding_for(requested)
    # billing_cl100k: a GPT-4-era (cl100k_base) model answers, and bills, for an o200k_base name
    if "billing_cl100k" in variant and encoding == tokens.O200K_BASE:
        encoding = tokens.CL100K_BASE
    return encoding

def _stops(stop: Any, stream: bool, variant: Variant) -> list[str]:
    stops = [stop] if isinstance(stop, str) else [s for s in _list(stop) if isinstance(s, str)]
    if "ignore_stop" in variant or (stream and "ignore_stop_stream" in variant):
        return []
    if "stop_first_only" in variant:
        return stops[:1]
    return stops

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

