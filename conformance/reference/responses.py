"""The reference provider's Responses API: ``POST /v1/responses`` and ``GET /v1/responses/{id}``.

Follows the official spec (``createResponse``, ``getResponse``; the ``Response`` object, its
``OutputItem``s and ``ResponseUsage``): a string or an item list as ``input`` (messages of any
role, ``function_call`` and ``function_call_output`` items), ``instructions`` as a system
message the model sees first (not carried over by ``previous_response_id``), function tools and
``tool_choice``, ``text.format``, ``max_output_tokens`` (``status: incomplete``), ``reasoning``
echoed, ``store`` and ``previous_response_id`` over a bounded store of answered responses.
Pure logic, like :mod:`.messages`: HTTP stays in :mod:`.app`, the stream events in
:mod:`.responses_stream`.  The ``responses_*`` faults of :mod:`.faults` are applied here (and
in :mod:`.responses_stream`), each at one place.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.reference import model
from conformance.reference.faults import ALL_MODEL_IDS, Variant, answering_model

#: Request fields of ``CreateResponse`` the reference knows (others: 400 "Unknown parameter").
FIELDS = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens",
    "reasoning", "previous_response_id", "store", "stream", "stream_options", "temperature",
    "top_p", "metadata", "parallel_tool_calls", "user", "truncation", "include",
    "service_tier", "background", "max_tool_calls", "prompt_cache_key", "safety_identifier",
    "top_logprobs", "conversation", "prompt",
})
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
#: What the responses_instructions_* faults put in front (a gateway's default prompt).
GATEWAY_INSTRUCTIONS = "You are a helpful assistant."
#: Stored responses kept for previous_response_id and GET (oldest dropped first), shared by
#: every variant: room for the suite's whole fault run (~170 providers × ~17 stored responses)
#: at a few kB each.
MAX_STORED = 8192
#: OpenAI's minimum for max_output_tokens.
MIN_OUTPUT_TOKENS = 16


class ResponsesError(Exception):
    """A request the Responses API refuses, rendered with OpenAI's error envelope."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


@dataclass
class Stored:
    """A stored response and the conversation it ended (for ``previous_response_id``)."""

    response: dict[str, Any]
    conversation: list[model.Message]


class Store:
    """Responses created with ``store`` (the default), bounded, shared by all variants."""

    def __init__(self, limit: int = MAX_STORED) -> None:
        self.limit = limit
        self._items: OrderedDict[str, Stored] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, stored: Stored) -> None:
        with self._lock:
            self._items[stored.response["id"]] = stored
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def get(self, response_id: str) -> Stored | None:
        with self._lock:
            return self._items.get(response_id)


@dataclass
class Call:
    """A validated request, answered: the Response object and what the model saw."""

    response: dict[str, Any]
    conversation: list[model.Message]
    stream: bool
    store: bool
    #: The text tokens of the message item (for the stream's deltas), if any.
    tokens: list[str] = field(default_factory=list)


def _bad(message: str, param: str | None = None, code: str | None = "invalid_value"
         ) -> ResponsesError:
    return ResponsesError(400, message, param, code)


def _content_text(content: Any, where: str) -> list[str]:
    """A message's content: a string or a list of input/output text parts."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise _bad(f"Invalid type for '{where}': expected a string or an array of content "
                   "parts.", where, "invalid_type")
    texts = []
    for number, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind not in ("input_image", "input_file", "refusal"):
            raise _bad(f"Invalid value for '{where}[{number}].type': {kind!r}.",
                       f"{where}[{number}].type")
    return texts


def _items(raw: Any, variant: Variant) -> list[model.Message]:
    """``input`` as the messages the model sees (developer read as system)."""
    if isinstance(raw, str):
        return [model.Message("user", [raw])]
    if not isinstance(raw, list):
        raise _bad("Invalid type for 'input': expected a string or an array of input items.",
                   "input", "invalid_type")
    seen: list[model.Message] = []
    for number, item in enumerate(raw):
        where = f"input[{number}]"
        if not isinstance(item, dict):
            raise _bad(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise _bad(f"Invalid value for '{where}.role': {role!r}. Supported values are: "
                           "'user', 'assistant', 'system', and 'developer'.", f"{where}.role")
            seen.append(model.Message("system" if role == "developer" else role,
                                      [*_content_text(item.get("content"), f"{where}.content")]))
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise _bad(f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}",
                               "missing_required_parameter")
            call = model.ToolCall(item["name"], item["arguments"], item["call_id"])
            if seen and seen[-1].role == "assistant" and seen[-1].tool_calls:
                seen[-1].tool_calls.append(call)
            else:
                seen.append(model.Message("assistant", [], [call]))
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"),
                                                                          str):
                raise _bad(f"Missing required parameter: '{where}.output'.", f"{where}.output",
                           "missing_required_parameter")
            if "responses_drop_tool_outputs" not in variant:
                seen.append(model.Message("tool", [item["output"]],
                                          tool_call_id=item["call_id"]))
        else:
            raise _bad(f"Invalid value for '{where}.type': {kind!r}.", f"{where}.type")
    return seen


def _tools(raw: Any) -> tuple[list[model.Tool], list[dict[str, Any]]]:
    """Function tools, as the model sees them and as the Response echoes them."""
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        raise _bad("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    tools, echoed = [], []
    for number, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(
                tool.get("name"), str):
            raise _bad(f"Invalid value for 'tools[{number}]': only function tools with a name "
                       "are supported.", f"tools[{number}]")
        parameters = tool.get("parameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        strict = tool.get("strict") is not False
        description = tool.get("description")
        tools.append(model.Tool(tool["name"], description if isinstance(description, str)
                                else "", parameters, strict))
        echoed.append({"type": "function", "name": tool["name"],
                       "description": description if isinstance(description, str) else None,
                       "parameters": parameters, "strict": strict})
    return tools, echoed


def _tool_choice(raw: Any, tools: list[model.Tool]) -> tuple[str, str | None]:
    """``tool_choice`` as (mode, forced function name)."""
    if raw is None:
        return "auto", None
    if raw in ("none", "auto", "required"):
        return str(raw), None
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"),
                                                                              str):
        if not any(t.name == raw["name"] for t in tools):
            raise _bad(f"Tool choice '{raw['name']}' not found in 'tools' parameter.",
                       "tool_choice")
        return "required", raw["name"]
    raise _bad("Invalid value for 'tool_choice'.", "tool_choice")


def _text_format(raw: Any) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """``text`` as (its echo, the response_format the model follows)."""
    if raw is None:
        return {"format": {"type": "text"}}, None
    fmt = raw.get("format") if isinstance(raw, dict) else None
    if fmt is None:
        return {"format": {"type": "text"}}, None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return {"format": {"type": "text"}}, None
    if kind == "json_object":
        return {"format": {"type": "json_object"}}, {"type": "json_object"}
    if kind == "json_schema" and isinstance(fmt, dict):
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise _bad("Missing required parameter: 'text.format.name' or "
                       "'text.format.schema'.", "text.format", "missing_required_parameter")
        spec = {"name": fmt["name"], "schema": fmt["schema"],
                "strict": fmt.get("strict") is True}
        return ({"format": {"type": "json_schema", **spec}},
                {"type": "json_schema", "json_schema": spec})
    raise _bad("Invalid value for 'text.format.type'.", "text.format.type")


def _number(body: Mapping[str, Any], key: str, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _bad(f"Invalid '{key}': expected a number between {low:g} and {high:g}.", key)
    return float(value)


def _reasoning(raw: Any, variant: Variant) -> dict[str, Any]:
    if raw is None:
        return {"effort": None, "summary": None}
    effort = raw.get("effort") if isinstance(raw, dict) else "?"
    if effort is not None and effort not in EFFORTS:
        raise _bad(f"Invalid value for 'reasoning.effort': {effort!r}.", "reasoning.effort")
    if "responses_reasoning_500" in variant:
        raise ResponsesError(500, "The server had an error while processing your request.",
                             code="server_error")
    if "responses_reasoning_forced" in variant:
        effort = "high"
    return {"effort": effort, "summary": None}


def _instructions(raw: Any, variant: Variant) -> str | None:
    if raw is not None and not isinstance(raw, str):
        raise _bad("Invalid type for 'instructions': expected a string.", "instructions",
                   "invalid_type")
    if "responses_instructions_replaced" in variant:
        return GATEWAY_INSTRUCTIONS
    if "responses_instructions_default" in variant:
        return GATEWAY_INSTRUCTIONS + ("\n" + raw if raw else "")
    return raw


def parse(body: Any, variant: Variant, store: Store) -> Call:
    """Validate a ``CreateResponse`` body as OpenAI does and answer it (faults applied)."""
    if not isinstance(body, dict):
        raise _bad("Invalid type for body: expected an object.", None, "invalid_type")
    extra = sorted(set(body) - FIELDS)
    if extra:
        raise _bad(f"Unknown parameter: '{extra[0]}'.", extra[0], "unknown_parameter")
    requested = body.get("model")
    if not isinstance(requested, str):
        raise _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if requested not in ALL_MODEL_IDS:
        raise ResponsesError(404, f"The model '{requested}' does not exist or you do not have "
                             "access to it.", "model", "model_not_found")
    previous_id = body.get("previous_response_id")
    if "input" not in body and previous_id is None:
        raise _bad("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    history: list[model.Message] = []
    if previous_id is not None and "responses_previous_ignored" not in variant:
        stored = store.get(previous_id) if isinstance(previous_id, str) else None
        if stored is None:
            raise ResponsesError(404, f"Previous response with id '{previous_id}' not found.",
                                 "previous_response_id", "previous_response_not_found")
        history = [m for m in stored.conversation if m.role != "system"]
    new = _items(body.get("input", []), variant)
    if "responses_input_last_only" in variant:  # a gateway that flattens the conversation
        new = new[-1:]
    instructions = _instructions(body.get("instructions"), variant)
    tools, echoed_tools = _tools(body.get("tools"))
    mode, forced = _tool_choice(body.get("tool_choice"), tools)
    if "responses_tool_choice_ignored" in variant:
        mode, forced = "auto", None
    if "responses_drop_tools" in variant:
        tools = []
    text_echo, response_format = _text_format(body.get("text"))
    if "responses_ignore_text_format" in variant:
        response_format = None
    limit = body.get("max_output_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < MIN_OUTPUT_TOKENS):
        raise _bad(f"Invalid 'max_output_tokens': integer below minimum value. Expected a value "
                   f">= {MIN_OUTPUT_TOKENS}, but got {limit!r} instead.", "max_output_tokens",
                   "integer_below_min_value")
    temperature = _number(body, "temperature", 0, 2)
    top_p = _number(body, "top_p", 0, 1)
    reasoning = _reasoning(body.get("reasoning"), variant)
    parallel = body.get("parallel_tool_calls") is not False
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    keep = body.get("store") is not False or "responses_store_ignored" in variant

    seen = ([model.Message("system", [instructions])] if instructions else []) + history + new
    output = model.generate(model.Request(seen, tools, mode, forced, parallel, response_format))
    items: list[dict[str, Any]] = []
    tokens: list[str] = []
    incomplete = False
    if output.tool_calls:
        for call in output.tool_calls:
            arguments: Any = call.arguments
            if "responses_tool_args_object" in variant and body.get("stream") is not True:
                arguments = json.loads(call.arguments)
            items.append({"id": "fc_" + secrets.token_hex(12), "type": "function_call",
                          "status": "completed", "call_id": "call_" + secrets.token_hex(8),
                          "name": call.name, "arguments": arguments})
        used = sum(len(model.tokenize(c.name + c.arguments)) for c in output.tool_calls)
        answer = model.Message("assistant", [], [
            model.ToolCall(c.name, c.arguments, i["call_id"])
            for c, i in zip(output.tool_calls, items, strict=True)])
    else:
        if "responses_ignore_max_output_tokens" in variant:
            limit = None
        tokens, _, incomplete = model.truncate(output.content or "", [], limit)
        text = "".join(tokens)
        used = len(tokens)
        items.append({"id": "msg_" + secrets.token_hex(12), "type": "message",
                      "status": "incomplete" if incomplete else "completed",
                      "role": "assistant",
                      "content": [{"type": "output_text", "text": text, "annotations": [],
                                   "logprobs": []}]})
        answer = model.Message("assistant", [text])
    if "responses_incomplete_as_completed" in variant:
        incomplete = False
    input_tokens = model.prompt_tokens(seen, tools)
    total = input_tokens + used + (1 if "responses_usage_bad_total" in variant else 0)
    now = int(time.time())
    response: dict[str, Any] = {
        "id": "resp_" + secrets.token_hex(24),
        "object": "response",
        "created_at": now,
        "status": "incomplete" if incomplete else "completed",
        "completed_at": None if incomplete else now,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "model": answering_model(requested),
        "output": items,
        "parallel_tool_calls": parallel,
        "previous_response_id": previous_id,
        "reasoning": reasoning,
        "store": body.get("store") is not False,
        "temperature": temperature,
        "text": text_echo,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": echoed_tools,
        "top_p": top_p,
        "truncation": "disabled",
        "usage": {"input_tokens": input_tokens,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens": used, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": total},
        "metadata": metadata,
    }
    return Call(response, [*seen, answer], body.get("stream") is True, keep, tokens)


def finish(call: Call, store: Store) -> dict[str, Any]:
    """Store the answered response (when asked to) and give it back."""
    if call.store:
        store.put(Stored(json.loads(json.dumps(call.response)), call.conversation))
    return call.response


def as_chat_completion(call: Call) -> dict[str, Any]:
    """responses_chat_format: the answer a relay sends when it routes /v1/responses to the chat
    completions handler without converting it."""
    text = "".join(c.get("text", "") for item in call.response["output"]
                   for c in item.get("content", []) if isinstance(c, dict))
    usage = call.response["usage"]
    return {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion",
            "created": call.response["created_at"], "model": call.response["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": usage["input_tokens"],
                      "completion_tokens": usage["output_tokens"],
                      "total_tokens": usage["total_tokens"]}}
