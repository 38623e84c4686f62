"""sdk, Responses API: the official ``openai`` Python SDK's ``responses.create()`` and
``responses.stream()`` read what the provider answers on ``POST /v1/responses``.

Same client and rules as :mod:`conformance.checks.sdk` (the suite's transport, no retries, no
ambient ``OPENAI_*`` settings).  A provider without the route is ``unsupported`` here too (the
raw answer is judged with :func:`conformance.checks.responses_api.expect_response`).
"""

from __future__ import annotations

from typing import Any

from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import cut_finding, raise_for_status, snippet
from conformance.checks.registry import check
from conformance.checks.responses_api import SHORT, raise_route, text_of
from conformance.checks.responses_stream import STREAM_CAP, ended
from conformance.checks.sdk import _call, _last, _reading, _sdk, left_open, load_openai
from conformance.errors import Failure
from conformance.exchange import Exchange


def _extra(ctx: CheckContext) -> dict[str, Any]:
    """The provider's ``temperature`` default, as responses_api sends it."""
    temperature = ctx.provider.request_defaults.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        return {"temperature": temperature}
    return {}


def _cut(exchange: Exchange) -> Failure | None:
    """The finding on a Response stream the provider cut short, or left open after its last
    event (the SDK reads on), if it did."""
    return left_open(exchange) or cut_finding(exchange, end=("response.completed", ended))


def _status_verdict(exchange: Exchange) -> None:
    """The verdict on the non-2xx the SDK raised for: a 404/405 means the route is not
    offered (``unsupported``); anything else to the SDK's valid request is judged as core
    behaviour (a ``fail``, or ``error`` for the configured key refused)."""
    if exchange.status in (404, 405):
        raise_route(exchange)
    raise_for_status(exchange)


@check(
    "sdk.responses_create",
    prepare=load_openai,
    severity="breaks-clients",
    title="The openai SDK parses a Response",
    spec="openai-python: responses.create() → Response",
    proves="AsyncOpenAI.responses.create() returns a Response whose output_text (the SDK's "
    "aggregate of the output_text parts) is the answer ('Paris'): the official client reads "
    "the provider's Response object without error.",
)
async def responses_create(ctx: CheckContext) -> str:
    from openai.types.responses import Response

    async with _sdk(ctx) as client, _reading(ctx, "the Response", "response", _status_verdict):
        result: Any = await _call(ctx, client.responses.create(
            model=ctx.model, input=text_of(prompts.CAPITAL), max_output_tokens=SHORT,
            extra_body=_extra(ctx)))
    if not isinstance(result, Response):
        raise Failure(f"the openai SDK returned {type(result).__name__}, not a Response "
                      f"(Content-Type {_last(ctx).content_type or 'missing'!r}): "
                      f"{snippet(str(result), 80)}")
    try:
        text = result.output_text
    except (AttributeError, TypeError) as exc:
        raise Failure(f"the SDK's Response has no readable output ({type(exc).__name__}: "
                      f"{exc})") from None
    if prompts.CAPITAL_ANSWER not in text.lower():
        raise Failure(f"the SDK's Response.output_text is {snippet(text, 60)!r}, expected an "
                      f"answer containing {prompts.CAPITAL_ANSWER!r}")
    return f"Response: {snippet(text, 40)}"


@check(
    "sdk.responses_stream",
    prepare=load_openai,
    severity="breaks-clients",
    title="The openai SDK reads a Response stream to its end",
    spec="openai-python: responses.stream() → ResponseStreamEvent…, get_final_response()",
    proves="Iterating AsyncOpenAI.responses.stream() ends without error, its "
    "response.output_text.delta events reassemble into the answer (a count to 5) and "
    "get_final_response() returns the Response with the same output_text.",
)
async def responses_stream(ctx: CheckContext) -> str:
    import openai

    text = ""
    count = 0
    final: Any = None
    async with _sdk(ctx) as client:
        async def read() -> None:
            nonlocal text, count, final
            async with client.responses.stream(
                    model=ctx.model, input=text_of(prompts.COUNT_TO_5),
                    max_output_tokens=STREAM_CAP, extra_body=_extra(ctx)) as stream:
                try:
                    async for event in stream:
                        count += 1
                        if event.type == "response.output_text.delta":
                            text += event.delta
                except openai.APIConnectionError:
                    cut = _cut(_last(ctx))
                    if cut is not None:  # the provider cut it: a finding
                        raise cut from None
                    raise
                final = await stream.get_final_response()

        async with _reading(ctx, "the Response stream", "response.event", _status_verdict,
                            cut=_cut):
            await _call(ctx, read())
    if not text:
        raise Failure(f"the {count} events the openai SDK read carry no output_text delta")
    if "5" not in text:
        raise Failure(f"the SDK's reassembled text does not count to 5: {snippet(text)}")
    if final is None or final.output_text != text:
        got = snippet(final.output_text if final is not None else None, 40)
        raise Failure(f"get_final_response().output_text is {got}, the deltas give "
                      f"{snippet(text, 40)}")
    return f"{count} events: {snippet(text, 40)}"
