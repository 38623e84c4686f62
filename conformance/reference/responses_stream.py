"""The stream of a reference Response (``stream: true``): the spec's ``ResponseStreamEvent``s.

The documented order: ``response.created``, ``response.in_progress``, then per output item
``response.output_item.added``, for a message ``response.content_part.added``,
``response.output_text.delta``…, ``response.output_text.done``, ``response.content_part.done``
(for a function call ``response.function_call_arguments.delta``…,
``response.function_call_arguments.done``), ``response.output_item.done``, and last
``response.completed`` (``response.incomplete`` when cut by ``max_output_tokens``).  Every
event is named by an SSE ``event:`` line equal to its ``type`` and carries an increasing
``sequence_number``.  The ``responses_stream_*`` faults are applied here, each at one place.
"""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from conformance.reference import model
from conformance.reference.faults import Variant
from conformance.reference.responses import Call

Event = tuple[str | None, dict[str, Any] | str]


def _snapshot(response: dict[str, Any]) -> dict[str, Any]:
    """The response as it is while in progress: no output, no usage."""
    out = copy.deepcopy(response)
    out.update(status="in_progress", output=[], completed_at=None, incomplete_details=None)
    del out["usage"]
    return out


def _item_events(index: int, item: dict[str, Any], tokens: list[str], variant: Variant
                 ) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    if item["type"] == "message":
        part = item["content"][0]
        events.append({"type": "response.output_item.added", "output_index": index,
                       "item": {**item, "status": "in_progress", "content": []}})
        base = {"item_id": item["id"], "output_index": index, "content_index": 0}
        events.append({"type": "response.content_part.added", **base,
                       "part": {**part, "text": ""}})
        deltas = [t for t in tokens if t]
        if "responses_stream_drops_first_delta" in variant:
            deltas = deltas[1:]
        for token in deltas:
            delta: dict[str, Any] = {"type": "response.output_text.delta", **base,
                                     "delta": token, "logprobs": []}
            if "responses_stream_invalid_event" in variant:
                del delta["item_id"]
            events.append(delta)
        events.append({"type": "response.output_text.done", **base, "text": part["text"],
                       "logprobs": []})
        events.append({"type": "response.content_part.done", **base, "part": part})
    else:
        events.append({"type": "response.output_item.added", "output_index": index,
                       "item": {**item, "status": "in_progress", "arguments": ""}})
        base = {"item_id": item["id"], "output_index": index}
        pieces = model.tokenize(item["arguments"]) or [item["arguments"]]
        if "responses_stream_args_whole" in variant:
            pieces = []
        for piece in pieces:
            events.append({"type": "response.function_call_arguments.delta", **base,
                           "delta": piece})
        events.append({"type": "response.function_call_arguments.done", **base,
                       "name": item["name"], "arguments": item["arguments"]})
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def stream_events(call: Call, variant: Variant) -> list[Event]:
    """The named events of a streamed Response."""
    if "responses_stream_chat_chunks" in variant:
        return _chat_chunks(call)
    response = call.response
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _snapshot(response)},
        {"type": "response.in_progress", "response": _snapshot(response)},
    ]
    for index, item in enumerate(response["output"]):
        events += _item_events(index, item, call.tokens, variant)
    final = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    events.append({"type": final, "response": response})
    if "responses_stream_failed" in variant:
        first = next(i for i, e in enumerate(events) if str(e["type"]).endswith(".delta"))
        failed = {**_snapshot(response), "status": "failed", "error": {
            "code": "server_error", "message": "The model failed to generate a response."}}
        events = [*events[:first + 1], {"type": "response.failed", "response": failed}]
    out: list[Event] = []
    for number, event in enumerate(events):
        event["sequence_number"] = 0 if "responses_stream_sequence_reset" in variant else number
        name = None if "responses_stream_no_event_names" in variant else event["type"]
        out.append((name, event))
    return out


def _chat_chunks(call: Call) -> list[Event]:
    """responses_stream_chat_chunks: chat.completion.chunk events ending in [DONE], as a relay
    that routes /v1/responses to its chat handler streams them."""
    base = {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion.chunk",
            "created": int(time.time()), "model": call.response["model"]}
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""},
                                                        None)]
    deltas += [({"content": token}, None) for token in call.tokens if token]
    deltas.append(({}, "stop"))
    events: list[Event] = [
        (None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        for delta, finish in deltas]
    events.append((None, "[DONE]"))
    return events
