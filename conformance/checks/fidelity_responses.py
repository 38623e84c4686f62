"""fidelity, Responses API: what a relay forwards of ``POST /v1/responses``.

The gateway behaviours the seed relays document for the Responses API — a default
``instructions`` of the gateway's own, ``system`` inputs rewritten to ``developer``,
``stream: false`` served as a stream inside, ``reasoning.effort`` forced to a fixed level,
``previous_response_id`` dropped by a stateless relay — are differences between what the
client sent and what the recording upstream received (:mod:`conformance.checks.fidelity`).
Spec: ``CreateResponse`` (instructions, input, stream, reasoning, previous_response_id).
"""

from __future__ import annotations

from typing import Any

from conformance.checks.context import CheckContext
from conformance.checks.expect import raise_for_status, snippet
from conformance.checks.fidelity import (
    NotForwarded,
    Sent,
    reached,
    show,
    upstream_of,
)
from conformance.checks.registry import check
from conformance.errors import Failure, Unsupported
from conformance.upstream import new_marker

DOCS = "OpenAI API reference, Responses: POST /v1/responses"
PATH = "/responses"
INSTRUCTIONS = "Be brief."
REASONING = {"effort": "low"}


def _input(marker: str) -> list[dict[str, Any]]:
    """Every role a relay may rewrite; the marker in the last (user) message."""
    return [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": f"Say OK. (request {marker})"},
    ]


async def _through(ctx: CheckContext, name: str, *, share: bool = True,
                   **fields: Any) -> Sent:
    """POST /responses through the relay with a marker of its own, and what the upstream
    recorded for it (a route the relay does not offer is ``unsupported``)."""
    upstream = upstream_of(ctx)
    marker = ctx.token(f"fidelity.{name}", new_marker)
    body: dict[str, Any] = {"model": ctx.model, "input": _input(marker),
                            "max_output_tokens": 16, **fields}
    await upstream.start()
    stream = body.get("stream") is True
    exchange = await ctx.request("POST", PATH, json_body=body, stream=stream, share=share)
    records = await upstream.records(marker, ctx.record, share=share)
    sent = Sent(body, exchange, records, marker)
    if not records:
        if exchange.status in (404, 405):
            raise_for_status(exchange, "the Responses API", route=f"POST {PATH}")
            raise Unsupported(f"POST {PATH} is not offered (HTTP {exchange.status})")
        reached(sent, "the Responses API")
    record = sent.last
    if record.get("path") != "/v1/responses":
        raise Failure(f"the relay translated the Responses request into {record.get('method')} "
                      f"{record.get('path')} for the upstream")
    return reached(sent)


async def _plain(ctx: CheckContext) -> Sent:
    """The shared request: instructions, every role, stream: false (reasoning has its own
    request: a relay may decline it for the model)."""
    return await _through(ctx, "responses", instructions=INSTRUCTIONS, stream=False)


@check(
    "fidelity.responses_instructions",
    severity="breaks-clients",
    title="Responses instructions and input roles reach the upstream as sent",
    spec=f"{DOCS} (instructions; input messages with roles system, developer, user)",
    proves="The upstream receives the client's `instructions` exactly (no default prompt of "
    "the gateway's own added or put in their place) and every input message with its role: "
    "system stays system, developer stays developer.",
)
async def responses_instructions(ctx: CheckContext) -> str:
    sent = await _plain(ctx)
    received = sent.received
    if received.get("instructions") != INSTRUCTIONS:
        raise Failure(f"instructions {INSTRUCTIONS!r} reached the upstream as "
                      f"{show(received.get('instructions'), 80)}")
    items = received.get("input")
    if not isinstance(items, list) or len(items) != len(sent.body["input"]):
        raise Failure(f"the input reached the upstream as {show(items, 100)}")
    for number, (mine, theirs) in enumerate(zip(sent.body["input"], items, strict=True)):
        role = theirs.get("role") if isinstance(theirs, dict) else None
        if role != mine["role"]:
            raise Failure(f"input[{number}] {mine['role']} → {role!r} on the way to the upstream")
        if not isinstance(theirs, dict) or theirs.get("content") != mine["content"]:
            raise Failure(f"input[{number}].content changed on the way: "
                          f"{show(theirs, 80)}")
    return "instructions and the roles system, developer, user reached the upstream unchanged"


@check(
    "fidelity.responses_stream",
    severity="breaks-clients",
    title="Responses stream: false and stream: true reach the upstream as sent",
    spec=f"{DOCS} (stream)",
    proves="A request with stream: false reaches the upstream with stream false (not turned "
    "into a stream inside the gateway), and one with stream: true with stream true, answered "
    "to the client as an event stream.",
)
async def responses_stream(ctx: CheckContext) -> str:
    plain = await _plain(ctx)
    got = plain.received.get("stream", False)
    if got is not False:
        raise Failure(f"stream: false reached the upstream as stream {show(got)}: the gateway "
                      "streams inside")
    streamed = await _through(ctx, "responses_stream", stream=True, share=False)
    got = streamed.received.get("stream")
    if got is not True:
        raise Failure(f"stream: true reached the upstream as stream {show(got)}")
    if not streamed.exchange.data_events():
        raise Failure(f"the client asked for a stream and got "
                      f"{snippet(streamed.exchange.text, 80)}")
    return "stream false and true reached the upstream as sent"


@check(
    "fidelity.responses_reasoning",
    severity="degrades",
    title="Responses reasoning reaches the upstream as sent",
    spec=f"{DOCS} (reasoning.effort)",
    proves="reasoning {effort: 'low'} reaches the upstream unchanged: not dropped, and not "
    "forced to another level (a gateway that raises effort bills more reasoning tokens).",
)
async def responses_reasoning(ctx: CheckContext) -> str:
    received = (await _through(ctx, "responses_reasoning", share=False,
                               reasoning=REASONING)).received
    if received.get("reasoning") != REASONING:
        raise Failure(f"reasoning {show(REASONING)} reached the upstream as "
                      f"{show(received.get('reasoning'))}")
    return f"reasoning {show(REASONING)} reached the upstream unchanged"


@check(
    "fidelity.responses_previous_response_id",
    severity="breaks-clients",
    title="previous_response_id reaches the upstream",
    spec=f"{DOCS} (previous_response_id)",
    proves="A second request naming the first response's id in previous_response_id reaches "
    "the upstream with the id the upstream gave that response, so the conversation continues "
    "there; a relay that drops the field answers without the earlier turn.",
)
async def responses_previous_response_id(ctx: CheckContext) -> str:
    first = await _through(ctx, "responses_first", share=False)
    client_id = first.exchange.json.get("id") if isinstance(first.exchange.json, dict) else None
    upstream_body = first.answered.get("body")
    upstream_id = upstream_body.get("id") if isinstance(upstream_body, dict) else None
    if isinstance(upstream_id, str) and not isinstance(client_id, str):
        raise Failure(f"the relay's answer has id {show(client_id)} where the upstream's had "
                      f"{show(upstream_id)}: a client has no id to continue from")
    if not isinstance(client_id, str) or not isinstance(upstream_id, str):
        raise NotForwarded(f"no response id to continue from (client {show(client_id)}, "
                           f"upstream {show(upstream_id)})")
    second = await _through(ctx, "responses_second", share=False,
                            previous_response_id=client_id)
    got = second.received.get("previous_response_id")
    if got is None:
        raise Failure("previous_response_id was dropped on the way to the upstream")
    if got != upstream_id:
        raise Failure(f"previous_response_id reached the upstream as {show(got)}, not the "
                      f"upstream's own id {show(upstream_id)}")
    return f"previous_response_id {snippet(got, 30)} reached the upstream"
