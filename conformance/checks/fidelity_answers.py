"""fidelity (continued): what the client gets back through a relay, compared with what the
recording upstream answered — content, usage, streams chunk by chunk, a broken upstream stream,
upstream errors and response headers — and Anthropic Messages requests forwarded as sent
(machinery and the request-side checks: :mod:`conformance.checks.fidelity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conformance import jsontext
from conformance.checks.context import CheckContext
from conformance.checks.expect import obj, raise_for_status, snippet
from conformance.checks.fidelity import (
    ANTHROPIC_VERSION,
    DOCS,
    FORWARDED_HEADERS,
    STREAM,
    NotForwarded,
    Sent,
    choices,
    client_body,
    conversation_sent,
    fields_judged,
    reached,
    same,
    show,
    simple,
    through,
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable, Unsupported
from conformance.exchange import Exchange
from conformance.upstream import Record


@check(
    "fidelity.answer",
    severity="breaks-clients",
    title="The client gets what the upstream answered",
    spec=f"{DOCS} (choices[].message, finish_reason)",
    proves="Every choice's content, refusal and finish_reason reach the client exactly as the "
    "upstream answered them.",
)
async def answer(ctx: CheckContext) -> str:
    sent, _, _ = await conversation_sent(ctx)
    want = choices(sent.answered.get("body"))
    got = choices(client_body(sent))
    if len(got) != len(want):
        raise Failure(f"the upstream answered {len(want)} choice(s), the client got {len(got)}")
    for index, (w, g) in enumerate(zip(want, got, strict=True)):
        wm, gm = obj(w.get("message")), obj(g.get("message"))
        for key in ("content", "refusal"):
            if not same(wm.get(key), gm.get(key)):
                raise Failure(f"choices[{index}].message.{key}: the upstream answered "
                              f"{show(wm.get(key))}, the client got {show(gm.get(key))}")
        if w.get("finish_reason") != g.get("finish_reason"):
            raise Failure(f"choices[{index}].finish_reason: the upstream answered "
                          f"{w.get('finish_reason')!r}, the client got {g.get('finish_reason')!r}")
    content = obj(want[0].get("message")).get("content") if want else None
    return f"the upstream's answer reached the client unchanged: {snippet(content, 40)!r}"


@check(
    "fidelity.system_fingerprint",
    severity="cosmetic",
    title="system_fingerprint is passed on",
    spec=f"{DOCS} (system_fingerprint)",
    proves="The system_fingerprint the upstream answered reaches the client (clients use it to "
    "tell backend changes that affect determinism).",
)
async def system_fingerprint(ctx: CheckContext) -> str:
    sent, _, _ = await conversation_sent(ctx)
    body = sent.answered.get("body")
    want = body.get("system_fingerprint") if isinstance(body, dict) else None
    if not want:
        raise NotApplicable("inconclusive: the upstream answered no system_fingerprint")
    client = client_body(sent)
    got = client.get("system_fingerprint") if isinstance(client, dict) else None
    if got != want:
        raise Failure(f"system_fingerprint {want!r} reached the client as {show(got, 40)}")
    return f"system_fingerprint {want!r} passed on"


def _usage_judged(want: Any, got: Any, where: str) -> str:
    if not isinstance(want, dict):
        raise NotApplicable(f"inconclusive: the upstream reported no usage {where}")
    if not isinstance(got, dict):
        raise Failure(f"the upstream reported usage {show(want)} {where}, the client got none")
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    diffs = [k for k in keys if not same(want.get(k), got.get(k))]
    if diffs:
        ratio = ""
        total_w, total_g = want.get("total_tokens"), got.get("total_tokens")
        if isinstance(total_w, int) and isinstance(total_g, (int, float)) and total_w > 0:
            ratio = f" ({total_g / total_w:.2f}× the upstream's total)"
        shown = "; ".join(f"{k} {want.get(k)} → {got.get(k)}" for k in diffs)
        raise Failure(f"usage billed differs from what the upstream reported {where}: "
                      f"{shown}{ratio}")
    return (f"usage {where} as the upstream reported: {want.get('prompt_tokens')} + "
            f"{want.get('completion_tokens')} = {want.get('total_tokens')} tokens")


@check(
    "fidelity.usage",
    severity="breaks-clients",
    title="Usage billed equals what the upstream reported",
    spec=f"{DOCS} (usage)",
    proves="prompt_tokens, completion_tokens and total_tokens the client gets equal the "
    "upstream's; inflation is reported with its ratio.",
)
async def usage(ctx: CheckContext) -> str:
    sent, _, _ = await conversation_sent(ctx)
    body = sent.answered.get("body")
    client = client_body(sent)
    return _usage_judged(body.get("usage") if isinstance(body, dict) else None,
                         client.get("usage") if isinstance(client, dict) else None,
                         "(non-stream)")


# --------------------------------------------------------------------------- streams

def _pieces(events: Sequence[Any]) -> tuple[list[str], Any, Any, bool]:
    """(content pieces of choice 0 in order, its finish_reason, the usage, [DONE] seen)."""
    pieces: list[str] = []
    finish = usage = None
    done = False
    for event in events:
        if event == "[DONE]":
            done = True
            continue
        if not isinstance(event, dict):
            continue
        if isinstance(event.get("usage"), dict):
            usage = event["usage"]
        for choice in choices(event):
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                pieces.append(content)
            if choice.get("finish_reason") is not None:
                finish = choice["finish_reason"]
    return pieces, finish, usage, done


def _client_events(exchange: Exchange) -> list[Any]:
    out: list[Any] = []
    for event in exchange.data_events():
        data = event.data.strip()
        if data == "[DONE]":
            out.append("[DONE]")
            continue
        try:
            out.append(jsontext.loads(data))
        except ValueError:
            out.append(None)
    return out


async def _stream_sent(ctx: CheckContext) -> Sent:
    sent = reached(await through(ctx, "stream", stream=True, **STREAM), "streaming")
    if sent.exchange.status is None or not 200 <= sent.exchange.status < 300:
        client_body(sent)
    return sent


@check(
    "fidelity.stream",
    severity="breaks-clients",
    title="A stream reaches the client chunk by chunk as the upstream sent it",
    spec=f"{DOCS} (stream, stream_options; chat.completion.chunk)",
    proves="stream and stream_options reach the upstream; every content chunk the upstream "
    "sent reaches the client, in order, with the same finish_reason (not merged into one "
    "burst, not rewritten).",
)
async def stream(ctx: CheckContext) -> str:
    sent = await _stream_sent(ctx)
    fields_judged(sent, ["stream", "stream_options"])
    want, want_finish, _, _ = _pieces(sent.answered.get("events") or [])
    got, got_finish, _, _ = _pieces(_client_events(sent.exchange))
    if "".join(want) != "".join(got):
        raise Failure(f"streamed text changed: the upstream sent {snippet(''.join(want), 60)!r}, "
                      f"the client got {snippet(''.join(got), 60)!r}")
    if want != got:
        raise Failure(f"re-chunked: the upstream's {len(want)} content chunks reached the client "
                      f"as {len(got)} (the text is the same)")
    if want_finish != got_finish:
        raise Failure(f"finish_reason: the upstream sent {want_finish!r}, the client got "
                      f"{got_finish!r}")
    return f"{len(want)} content chunks passed on in order, finish_reason {want_finish!r}"


@check(
    "fidelity.stream_usage",
    severity="breaks-clients",
    title="Streamed usage equals what the upstream reported",
    spec=f"{DOCS} (stream_options.include_usage)",
    proves="The usage chunk the client gets equals the upstream's usage chunk.",
)
async def stream_usage(ctx: CheckContext) -> str:
    sent = await _stream_sent(ctx)
    _, _, want, _ = _pieces(sent.answered.get("events") or [])
    _, _, got, _ = _pieces(_client_events(sent.exchange))
    return _usage_judged(want, got, "(stream)")


def _completed(record: Record) -> bool:
    response = record.get("response") or {}
    return bool(response.get("complete")) and not record.get("injected")


@check(
    "fidelity.cut_stream",
    severity="breaks-clients",
    title="A broken upstream stream is not passed off as complete",
    spec=f"{DOCS} (a stream ends with finish_reason and data: [DONE])",
    proves="When the upstream's stream breaks after 2 chunks, the client gets an error or a "
    "cut stream, never an invented finish_reason or [DONE] (unless the relay retried and "
    "passed on a complete answer), nor a stream left open with nothing more to come.",
)
async def cut_stream(ctx: CheckContext) -> str:
    sent = reached(await through(
        ctx, "cut", stream=True, share=False, retries=0, max_tokens=32, stall_ok=True,
        arm={"behaviour": "cut_stream", "after": 2},
        messages=lambda m: simple(m, "Count from 1 to 20, separated by spaces.")), "streaming")
    status = sent.exchange.status or 0
    if any(_completed(r) for r in sent.records) and not sent.stalled:
        return f"the relay asked again ({len(sent.records)} requests) after the upstream's cut"
    if sent.stalled:  # the upstream's side is over (its record is complete): the relay holds
        raise Failure(f"the upstream's stream broke after 2 chunks, and the relay left the "
                      f"client's stream open without a byte more ({sent.stalled}, "
                      f"timeouts.stall): clients wait until their own timeout instead of "
                      f"seeing the break")
    if not 200 <= status < 300:
        return f"the cut upstream stream reached the client as HTTP {status}"
    pieces, finish, _, done = _pieces(_client_events(sent.exchange))
    if finish is not None or done:
        invented = " and ".join(x for x in (f"finish_reason {finish!r}" if finish else "",
                                            "[DONE]" if done else "") if x)
        raise Failure(f"the upstream's stream broke after 2 chunks, but the client got "
                      f"{invented}: the relay finished a broken stream as if complete "
                      f"({len(pieces)} content chunks)")
    how = "cut" if sent.exchange.cut else "ended without finish_reason or [DONE]"
    return f"the client saw the broken stream as broken ({how})"


# --------------------------------------------------------------------------- errors and headers

def _envelope(exchange: Exchange) -> dict[str, Any]:
    body = exchange.json
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


async def _armed(ctx: CheckContext, name: str, behaviour: str, **params: int) -> Sent:
    return reached(await through(ctx, name, share=False, retries=0, max_tokens=8,
                                   arm={"behaviour": behaviour, **params}))


def _retried(sent: Sent) -> str | None:
    """The relay asked again and passed the later, normal answer on."""
    if len(sent.records) > 1 and _completed(sent.last) and sent.exchange.status == 200:
        return f"the relay retried ({len(sent.records)} requests) and passed the answer on"
    return None


@check(
    "fidelity.upstream_error",
    severity="breaks-clients",
    title="An upstream 400 keeps its status and error code",
    spec="https://platform.openai.com/docs/guides/error-codes (400, error.code)",
    proves="When the upstream answers 400 context_length_exceeded (param messages), the client "
    "gets 400 with an error object carrying the same code.",
)
async def upstream_error(ctx: CheckContext) -> str:
    sent = await _armed(ctx, "error400", "bad_request")
    error = _envelope(sent.exchange)
    if sent.exchange.status != 400:
        raise Failure(f"the upstream answered 400 context_length_exceeded, the client got HTTP "
                      f"{sent.exchange.status}: {snippet(sent.exchange.text, 100)}")
    if error.get("code") != "context_length_exceeded":
        raise Failure(f"the upstream's error code context_length_exceeded reached the client as "
                      f"{show(error.get('code'), 40)}: {snippet(sent.exchange.text, 100)}")
    return "400 context_length_exceeded passed on"


@check(
    "fidelity.server_error",
    severity="degrades",
    title="An upstream 500 reaches the client as a server error",
    spec="https://platform.openai.com/docs/guides/error-codes (500)",
    proves="When the upstream answers 500, the client gets a 5xx with an error object (or the "
    "relay retries and passes a normal answer on), never a 2xx or a 4xx blaming the client.",
)
async def server_error(ctx: CheckContext) -> str:
    sent = await _armed(ctx, "error500", "server_error")
    retried = _retried(sent)
    if retried:
        return retried
    status = sent.exchange.status or 0
    if not 500 <= status < 600:
        raise Failure(f"the upstream answered 500, the client got HTTP {status}: "
                      f"{snippet(sent.exchange.text, 100)}")
    if not _envelope(sent.exchange):
        raise Failure(f"HTTP {status} without an error object: {snippet(sent.exchange.text, 80)}")
    return f"the upstream's 500 reached the client as HTTP {status} with an error object"


@check(
    "fidelity.rate_limit",
    severity="degrades",
    title="An upstream 429 is retried or passed on with Retry-After",
    spec="https://platform.openai.com/docs/guides/rate-limits (429, Retry-After)",
    proves="When the upstream answers 429 with Retry-After: 1, the relay retries it, or the "
    "client gets 429 with Retry-After (not a 500, not a 429 without a hint when to retry).",
)
async def rate_limit(ctx: CheckContext) -> str:
    sent = await _armed(ctx, "error429", "rate_limit", retry_after=1)
    retried = _retried(sent)
    if retried:
        return retried
    status = sent.exchange.status
    after = {k.lower(): v for k, v in sent.exchange.headers.items()}.get("retry-after")
    if status != 429:
        raise Failure(f"the upstream answered 429 (Retry-After: 1), the client got HTTP "
                      f"{status}: {snippet(sent.exchange.text, 100)}")
    if after is None:
        raise Failure("the upstream's 429 reached the client without its Retry-After header")
    return f"429 passed on with Retry-After: {after}"


@check(
    "fidelity.response_headers",
    severity="degrades",
    title="x-request-id and rate-limit headers reach the client",
    spec="https://platform.openai.com/docs/api-reference/debugging-requests "
    "(x-request-id, x-ratelimit-*)",
    proves="The upstream's x-request-id and x-ratelimit-* response headers reach the client "
    "with their values.",
)
async def response_headers(ctx: CheckContext) -> str:
    sent, _, _ = await conversation_sent(ctx)
    want = {k.lower(): v for k, v in (sent.answered.get("headers") or {}).items()
            if k.lower() in FORWARDED_HEADERS}
    if not want:
        raise NotApplicable("inconclusive: the upstream sent none of these headers")
    got = {k.lower(): v for k, v in sent.exchange.headers.items()}
    missing = [k for k in want if k not in got]
    changed = [f"{k} {want[k]!r} → {got[k]!r}" for k in want if k in got and got[k] != want[k]]
    if missing or changed:
        parts = ([f"missing: {', '.join(missing)}"] if missing else []) + (
            [f"replaced: {'; '.join(changed)}"] if changed else [])
        raise Failure("the upstream's response headers did not reach the client: "
                      + "; ".join(parts))
    return f"{len(want)} headers passed on: {', '.join(want)}"


@check(
    "fidelity.messages_api",
    severity="degrades",
    title="Anthropic Messages requests reach the upstream as sent",
    spec="https://docs.anthropic.com/en/api/messages (anthropic-version, x-api-key)",
    proves="A POST /v1/messages through the relay reaches the upstream at /v1/messages with "
    "the anthropic-version header, an x-api-key and the body's messages, system and "
    "max_tokens unchanged (not translated into a chat completion).",
)
async def messages_api(ctx: CheckContext) -> str:
    # Sent as Anthropic's SDKs send it: the key in x-api-key (redacted like any credential).
    key = {"x-api-key": ctx.provider.api_key} if ctx.provider.api_key else {}
    sent = await through(
        ctx, "messages_api", path="/messages", max_tokens=8, system="Be brief.", auth="none",
        headers={"anthropic-version": ANTHROPIC_VERSION, **key},
    )
    if not sent.records:
        raise_for_status(sent.exchange, route="POST /messages")
        if sent.exchange.status in (404, 405):
            raise Unsupported(f"POST /messages is not offered (HTTP {sent.exchange.status})")
        raise NotForwarded(f"no request carrying the marker {sent.marker} reached the upstream")
    record = sent.last
    if record.get("path") != "/v1/messages":
        raise Failure(f"the relay translated the Messages request into {record.get('method')} "
                      f"{record.get('path')} for the upstream: anthropic-version and the "
                      "Anthropic body did not reach it")
    headers = {k.lower(): v for k, v in (record.get("headers") or {}).items()}
    if headers.get("anthropic-version") != ANTHROPIC_VERSION:
        raise Failure(f"anthropic-version {ANTHROPIC_VERSION} reached the upstream as "
                      f"{show(headers.get('anthropic-version'), 30)}")
    if "x-api-key" not in headers:
        how = " (it used Authorization instead)" if "authorization" in headers else ""
        raise Failure(f"no x-api-key header reached the upstream{how}")
    return fields_judged(sent, ["messages", "system", "max_tokens"])
