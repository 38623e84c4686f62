"""sdk: what the provider sends is read by a real client, the official ``openai`` Python SDK
(https://github.com/openai/openai-python), which most users of an "OpenAI-compatible" API run.

The SDK talks through the suite's one transport seam
(:meth:`~conformance.transport.ProviderClient.recording_client`): its requests and the
provider's answers become evidence, redacted like every other exchange.  The SDK's own
retries are off (``max_retries=0``): the transport retries for it as it does every request of
the suite (a failure to connect, a 429, within ``retries`` and ``timeouts.total``), and the
``OPENAI_*`` environment of the machine running the suite (an organisation, a project, custom
headers) is never sent to the provider.

A response that the SDK cannot parse is a fail, and so is one whose HTTP status makes the SDK
raise another exception class than the situation calls for (the SDK maps statuses to classes:
400 → BadRequestError, 401 → AuthenticationError, 403 → PermissionDeniedError, 404 →
NotFoundError, 422 → UnprocessableEntityError, 429 → RateLimitError, 5xx →
InternalServerError); client code catches those classes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from conformance import jsontext
from conformance.checks import prompts
from conformance.checks.auth import WRONG_KEY, require_key
from conformance.checks.context import CheckContext
from conformance.checks.errors import UNKNOWN_MODEL
from conformance.checks.expect import (
    check_key_refused,
    cut_finding,
    describe,
    error_envelope,
    expect_completion,
    snippet,
    stream_failure,
)
from conformance.checks.registry import check
from conformance.checks.streaming import STREAM_CAP
from conformance.connections import MalformedHead
from conformance.errors import (
    ConnectFailed,
    Failure,
    Finding,
    MalformedAnswer,
    NotApplicable,
    RequestTimeout,
    SuiteError,
    TransportError,
    Unsupported,
)
from conformance.exchange import Exchange
from conformance.transport import malformed_text
from conformance.validation import first_violation

if TYPE_CHECKING:
    import openai

T = TypeVar("T")

#: Asks the reference provider to answer as rate limited; real providers ignore it.
SIMULATE_HEADER = "X-Conformance-Simulate"
_RATE_LIMITED = re.compile(r"rate.?limit|too many requests", re.I)
#: The suite's own verdicts and faults, which pass through the SDK-specific handlers.
_OURS = (Finding, SuiteError)


#: The SDK's models these checks read (module, names): the ones the SDK builds on first use
#: when it parses the reference provider's answers to every sdk check (~30 of its ~650).
_MODELS = (
    ("openai.types", ("Model",)),
    ("openai.types.chat", ("ChatCompletion", "ChatCompletionChunk", "ChatCompletionMessage",
                           "ParsedChatCompletion", "ParsedChatCompletionMessage",
                           "ParsedChoice")),
    ("openai.types.chat.chat_completion", ("Choice",)),
    ("openai.types.chat.chat_completion_chunk", ("Choice", "ChoiceDelta")),
    ("openai.types.responses", ("Response", "ParsedResponse", "ParsedResponseOutputMessage",
                                "ParsedResponseOutputText", "ResponseOutputItemAddedEvent",
                                "ResponseOutputItemDoneEvent", "ResponseOutputMessage",
                                "ResponseOutputText")),
    ("openai.lib.streaming.responses._events", ("ResponseCompletedEvent",
                                                "ResponseTextDeltaEvent",
                                                "ResponseTextDoneEvent")),
)


def load_openai() -> None:
    """Import the SDK and build the pydantic models of the answers these checks read
    (:data:`_MODELS`): ~0.7 s of CPU, done once per process off the event loop
    (:mod:`conformance.warmup`: every check here names it as its ``prepare``).  A model this
    version of the SDK does not have is skipped (built on first use, if ever)."""
    import importlib

    import openai  # noqa: F401
    from pydantic import BaseModel

    for module_name, names in _MODELS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            model = getattr(module, name, None)
            if isinstance(model, type) and issubclass(model, BaseModel):
                model.model_rebuild()


@asynccontextmanager
async def _sdk(ctx: CheckContext, api_key: str | None = None, *, retries: int | None = None
               ) -> AsyncIterator[openai.AsyncOpenAI]:
    """An ``AsyncOpenAI`` client on this provider, recording into ``ctx.exchanges``;
    ``retries`` as :meth:`~conformance.transport.ProviderClient.recording_client`'s."""
    import openai

    http = ctx.client.recording_client(ctx.exchanges.append, retries=retries)
    client = openai.AsyncOpenAI(
        api_key=api_key or ctx.provider.api_key or "no-key-configured",
        base_url=ctx.client.base_url,
        http_client=http,  # type: ignore[arg-type]  # the SDK accepts httpx and httpx2 clients
        max_retries=0,
    )
    # Nothing from this machine's OPENAI_* environment may reach a third-party provider.
    client.organization = client.project = client.admin_api_key = None
    client._custom_headers = {}
    client._ambient_authorizations = frozenset()
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def _reading(ctx: CheckContext, what: str, schema: str,
                   on_status: Callable[[Exchange], object],
                   cut: Callable[[Exchange], Failure | None] | None = None
                   ) -> AsyncIterator[None]:
    """Around the SDK reading an answer: the SDK's status error is judged by ``on_status``
    on the exchange it raised for (which raises the verdict; else the SDK's error goes on),
    the suite's own verdicts and faults pass through, and anything else the SDK raised (it
    could not read the answer) is a ``fail`` naming ``what`` and the spec's ``schema`` — or,
    when ``cut`` finds the provider cut the answer short, that finding."""
    import openai

    try:
        yield
    except openai.APIStatusError:
        on_status(_last(ctx))
        raise
    except _OURS:
        raise
    except Exception as exc:
        found = cut(_last(ctx)) if cut is not None else None
        if found is not None:
            raise found from None
        raise _unparsable(exc, _last(ctx), what, schema) from None


async def _call(ctx: CheckContext, awaitable: Awaitable[T]) -> T:
    """Await an SDK call within the provider's total timeout; the SDK's own transport
    failures become the suite's (no verdict), everything else propagates."""
    import openai

    try:
        return await asyncio.wait_for(awaitable, timeout=ctx.provider.timeouts.total)
    except (TimeoutError, openai.APITimeoutError) as exc:
        raise RequestTimeout(f"no complete answer within {ctx.provider.timeouts.total:g}s from "
                             f"{_url(ctx)} (openai SDK, {type(exc).__name__})") from None
    except openai.APIConnectionError as exc:
        cut = left_open(ctx.exchanges[-1]) if ctx.exchanges else None
        if cut is not None:
            raise cut from None
        cut = cut_finding(ctx.exchanges[-1]) if ctx.exchanges else None
        if cut is not None:  # the provider cut the answer: a finding, not a network failure
            raise cut from None
        cause = exc.__cause__
        if isinstance(cause, MalformedHead):  # answered, wrongly: a finding (as the transport's)
            raise MalformedAnswer(malformed_text(cause, ctx.client.redactor)) from None
        detail = f"{type(cause).__name__}: {cause}".rstrip(": ") if cause else str(exc)
        if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout):
            raise ConnectFailed(f"cannot connect to {_url(ctx)} (openai SDK): {detail}") \
                from None
        raise TransportError(f"the connection to {_url(ctx)} failed (openai SDK): {detail}") \
            from None


def left_open(exchange: Exchange) -> Failure | None:
    """The finding on a complete stream whose body the provider left open while the SDK read
    on to its end (``Exchange.open_after_end``, set by the recording transport): the SDK
    would have waited for its own timeout."""
    if exchange.open_after_end is None:
        return None
    return Failure(f"the openai SDK reads the stream to the end of its body, which the "
                   f"provider left open: {exchange.open_after_end} (the SDK waits for its "
                   "read timeout)")


def _defaults(ctx: CheckContext) -> dict[str, Any]:
    """The provider's ``request_defaults`` (as :meth:`CheckContext.chat` adds them), for the
    fields an SDK call here does not set itself."""
    own = ("model", "messages", "max_tokens", "stream")
    return {k: v for k, v in ctx.provider.request_defaults.items() if k not in own}


def _url(ctx: CheckContext) -> str:
    return ctx.exchanges[-1].url if ctx.exchanges else ctx.client.base_url


def _last(ctx: CheckContext) -> Exchange:
    return ctx.exchanges[-1]


def _name(exc: BaseException) -> str:
    module = type(exc).__module__.split(".")[0]
    prefix = "openai." if module == "openai" else ""
    return f"{prefix}{type(exc).__name__}"


def _unparsable(exc: BaseException, exchange: Exchange, what: str, schema: str) -> Failure:
    """The SDK raised while reading a response: say whether the raw response was valid."""
    problem = f"the openai SDK cannot parse {what}: {_name(exc)}: {snippet(str(exc), 100)}"
    if exchange.events is not None:
        payloads = exchange.chunks()
        bad = next((v for v in (first_violation(schema, p, absent_as_null=True)
                                for p in payloads) if v), None)
        first = next((e.data for e in exchange.data_events()), "")
        failed = next((f for f in map(stream_failure, payloads) if f is not None), None)
        raw = (f"(the raw stream has no JSON chunk either{jsontext.reason(first)})"
               if not payloads
               else f"(the raw stream reports a failure: {snippet(failed, 100)})"
               if failed is not None
               else f"although our decoder reads {len(payloads)} schema-valid chunks"
               if bad is None else f"(the raw chunks also deviate from the schema at {bad})")
    elif exchange.json is None:
        raw = f"(the raw response is not JSON either{exchange.json_reason})"
    else:
        bad = first_violation(schema, exchange.json, absent_as_null=True)
        raw = ("although the raw response validates against the OpenAI schema" if bad is None
               else f"(the raw response also deviates from the schema at {bad})")
    return Failure(f"{problem} {raw}")


# --------------------------------------------------------------------------------------------
# Successful responses


@check(
    "sdk.completion",
    prepare=load_openai,
    severity="breaks-clients",
    title="The openai SDK parses a completion",
    spec="openai-python: chat.completions.create() → ChatCompletion",
    proves="AsyncOpenAI.chat.completions.create() returns a ChatCompletion whose first choice's "
    "message.content is the answer ('Paris'), i.e. the official client reads the response "
    "(content type, JSON, field types) without error.",
)
async def completion(ctx: CheckContext) -> str:
    from openai.types.chat import ChatCompletion

    # A non-200 is judged as for raw requests (expect_completion).
    async with _sdk(ctx) as client, _reading(ctx, "the completion", "chat.completion",
                                             expect_completion):
        result: Any = await _call(ctx, client.chat.completions.create(
            model=ctx.model, messages=prompts.CAPITAL,  # type: ignore[arg-type]
            max_tokens=prompts.SHORT, extra_body=_defaults(ctx)))
    if not isinstance(result, ChatCompletion):
        raise Failure(f"the openai SDK returned {type(result).__name__}, not a ChatCompletion "
                      f"(Content-Type {_last(ctx).content_type or 'missing'!r}): "
                      f"{snippet(str(result), 80)}")
    try:
        content = result.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError) as exc:  # e.g. choices: {"0": 1}
        raise Failure(f"the ChatCompletion the openai SDK built has no choices[0].message "
                      f"({type(exc).__name__}: {exc})") from None
    if not isinstance(content, str) or prompts.CAPITAL_ANSWER not in content.lower():
        raise Failure(f"the SDK's choices[0].message.content is {snippet(content, 60)}, expected "
                      f"an answer containing {prompts.CAPITAL_ANSWER!r}")
    return f"ChatCompletion: {snippet(content, 40)}"


@check(
    "sdk.stream",
    prepare=load_openai,
    severity="breaks-clients",
    title="The openai SDK iterates a stream to the end",
    spec="openai-python: chat.completions.create(stream=True) → AsyncStream[ChatCompletionChunk]",
    proves="Iterating the SDK's AsyncStream (async for chunk in stream) ends without error, "
    "yields ChatCompletionChunk objects, and their delta.content reassembles into the answer "
    "(a count to 5); our lenient SSE decoder accepting the stream is not enough.",
)
async def stream(ctx: CheckContext) -> str:
    from openai.types.chat import ChatCompletionChunk

    text = ""
    count = 0
    async with _sdk(ctx) as client, _reading(ctx, "the stream", "chat.completion.chunk",
                                             expect_completion, cut=cut_finding):
        events: Any = await _call(ctx, client.chat.completions.create(
            model=ctx.model, messages=prompts.COUNT_TO_5,  # type: ignore[arg-type]
            max_tokens=STREAM_CAP, stream=True, extra_body=_defaults(ctx)))

        async def read() -> None:
            nonlocal text, count
            async for chunk in events:
                if not isinstance(chunk, ChatCompletionChunk):
                    raise Failure(f"the openai SDK yielded {type(chunk).__name__}, not a "
                                  f"ChatCompletionChunk: {snippet(str(chunk), 60)}")
                count += 1
                for choice in chunk.choices or []:
                    if choice.index == 0 and choice.delta and choice.delta.content:
                        text += choice.delta.content

        await _call(ctx, read())
    if not text:
        raw = _last(ctx)
        if count == 0 and raw.events is not None and not raw.data_events():
            # The SDK finds no event in a body that is not an event stream, and says nothing.
            raise Failure(f"the openai SDK read no chunk: stream=True was answered without "
                          f"any SSE event, {describe(raw)}")
        raise Failure(f"the {count} chunks the openai SDK read carry no delta.content")
    if "5" not in text:
        raise Failure(f"the SDK's reassembled text does not count to 5: {snippet(text)}")
    return f"{count} ChatCompletionChunks: {snippet(text, 40)}"


@check(
    "sdk.models",
    prepare=load_openai,
    severity="breaks-clients",
    title="The openai SDK lists the models",
    spec="openai-python: models.list() → AsyncPage[Model]",
    proves="AsyncOpenAI.models.list() yields Model objects with string ids (a 404 with an "
    "error envelope counts as declined, as in models.list).",
)
async def models(ctx: CheckContext) -> str:
    import openai
    from openai.types import Model

    async with _sdk(ctx) as client:
        try:
            page: Any = await _call(ctx, client.models.list())
            ids = [m.id for m in page.data]
        except openai.APIStatusError as exc:
            envelope = error_envelope(_last(ctx))
            if exc.status_code == 404 and envelope is not None:
                raise Unsupported(f"GET /models declined: HTTP 404 "
                                  f"{snippet(envelope['message'])}") from None
            raise Failure(f"GET /models: the openai SDK raised {_name(exc)}: "
                          f"{describe(_last(ctx))}") from None
        except _OURS:
            raise
        except Exception as exc:
            raise _unparsable(exc, _last(ctx), "the model list", "models.list") from None
    if not ids or not all(isinstance(m, Model) and isinstance(m.id, str) for m in page.data):
        raise Failure(f"the openai SDK's page holds no Model objects with string ids: "
                      f"{snippet(str(page.data), 80)}")
    return f"{len(ids)} Model objects, e.g. {ids[0]!r}"


# --------------------------------------------------------------------------------------------
# Errors: the exception class a client catches


async def _raises(ctx: CheckContext, awaitable: Awaitable[Any], what: str
                  ) -> openai.APIStatusError:
    """The APIStatusError the SDK raised for ``what``; a fail when it raised none."""
    import openai

    try:
        await _call(ctx, awaitable)
    except openai.APIStatusError as exc:
        exchange = _last(ctx)
        if exchange.status != exc.status_code:
            raise Failure(f"{what}: the provider sent HTTP {exchange.status} but the openai SDK "
                          f"reports {exc.status_code}") from None
        check_key_refused(exchange, what)
        return exc
    except _OURS:
        raise
    except Exception as exc:
        raise Failure(f"{what}: the openai SDK raised {_name(exc)} ({snippet(str(exc), 80)}) "
                      "instead of an APIStatusError") from None
    raise Failure(f"{what}: the openai SDK raised no exception, the provider answered "
                  f"{describe(_last(ctx))}")


def _mapped(exc: openai.APIStatusError, what: str, expected: str, *legal: type[Exception]
            ) -> str:
    if isinstance(exc, legal):
        return f"{what}: HTTP {exc.status_code} → {_name(exc)}"
    raise Failure(f"{what}: HTTP {exc.status_code} → {_name(exc)}; expected {expected}")


@check(
    "sdk.auth_error",
    prepare=load_openai,
    severity="security",
    needs_key=False,
    title="A wrong key raises openai.AuthenticationError",
    spec="openai-python: 401 → AuthenticationError",
    proves="With a wrong API key the SDK raises AuthenticationError, i.e. the provider answers "
    "401 (a 403 becomes PermissionDeniedError, which clients handling bad keys do not catch).",
)
async def auth_error(ctx: CheckContext) -> str:
    import openai

    require_key(ctx)
    async with _sdk(ctx, api_key=WRONG_KEY) as client:
        exc = await _raises(ctx, client.chat.completions.create(
            model=ctx.model, messages=prompts.CAPITAL,  # type: ignore[arg-type]
            max_tokens=1, extra_body=_defaults(ctx)), "a wrong API key")
    return _mapped(exc, "a wrong API key", "HTTP 401 → openai.AuthenticationError",
                   openai.AuthenticationError)


@check(
    "sdk.not_found",
    prepare=load_openai,
    severity="degrades",
    title="An unknown model raises openai.NotFoundError",
    spec="openai-python: 404 → NotFoundError (model_not_found)",
    proves="A model id that does not exist makes the SDK raise NotFoundError (HTTP 404, as "
    "OpenAI answers) or BadRequestError for a provider that answers 400 — not "
    "InternalServerError, which the SDK retries, nor PermissionDeniedError.",
)
async def not_found(ctx: CheckContext) -> str:
    import openai

    what = f"unknown model {UNKNOWN_MODEL!r}"
    async with _sdk(ctx) as client:
        exc = await _raises(ctx, client.chat.completions.create(
            model=UNKNOWN_MODEL, messages=prompts.CAPITAL,  # type: ignore[arg-type]
            max_tokens=1, extra_body=_defaults(ctx)), what)
    return _mapped(exc, what, "HTTP 404 → openai.NotFoundError (or 400 → BadRequestError)",
                   openai.NotFoundError, openai.BadRequestError)


@check(
    "sdk.bad_request",
    prepare=load_openai,
    severity="degrades",
    title="A malformed request raises openai.BadRequestError",
    spec="openai-python: 400 → BadRequestError, 422 → UnprocessableEntityError",
    proves="messages sent as a string makes the SDK raise BadRequestError (400) or "
    "UnprocessableEntityError (422), the classes clients treat as their own mistake.",
)
async def bad_request(ctx: CheckContext) -> str:
    import openai

    async with _sdk(ctx) as client:
        exc = await _raises(ctx, client.chat.completions.create(
            model=ctx.model, messages="Hello",  # type: ignore[arg-type]
            max_tokens=1, extra_body=_defaults(ctx)), "messages as a string")
    return _mapped(exc, "messages as a string",
                   "HTTP 400 → openai.BadRequestError or 422 → UnprocessableEntityError",
                   openai.BadRequestError, openai.UnprocessableEntityError)


def _rate_limit_message(exchange: Exchange) -> str | None:
    """The error message when an answer says it is about rate limiting."""
    envelope = error_envelope(exchange)
    if envelope is None:
        return None
    said = " ".join(str(envelope.get(k) or "") for k in ("message", "type", "code"))
    return str(envelope["message"]) if _RATE_LIMITED.search(said) else None


@check(
    "sdk.rate_limit",
    prepare=load_openai,
    severity="degrades",
    runs_last=True,
    title="Rate limiting raises openai.RateLimitError",
    spec="POST /chat/completions → 429 TooManyRequests (ErrorResponse, Retry-After); "
    "openai-python: 429 → RateLimitError",
    proves="A rate-limited request is answered 429, which the SDK raises as RateLimitError and "
    "backs off on; a rate limit reported with another status (a 500, an error inside a 200) "
    "is a fail.  Rate limits cannot be provoked safely: the check judges a 429 seen in this "
    "run (it runs after the provider's other checks, so the verdict does not depend on "
    "scheduling), or a free GET /models carrying X-Conformance-Simulate: rate-limit (which "
    "only the reference provider honours), and is skipped otherwise.",
)
async def rate_limit(ctx: CheckContext) -> str:
    import openai

    raised = "nothing"
    async with _sdk(ctx, retries=0) as client:  # the 429 it asks for is not sent again
        try:
            await _call(ctx, client.models.list(
                extra_headers={SIMULATE_HEADER: "rate-limit"}))
        except openai.RateLimitError as exc:
            retry = exc.response.headers.get("retry-after")
            shown = f" (Retry-After: {retry})" if retry is not None else ""
            return f"HTTP 429 → openai.RateLimitError{shown}"
        except openai.APIStatusError as exc:
            raised = _name(exc)
        except _OURS:
            raise
        except Exception as exc:
            raise _unparsable(exc, _last(ctx), "the answer to GET /models", "models.list") \
                from None
    probe = _last(ctx)
    said = _rate_limit_message(probe)
    if said is not None:
        raise Failure(f"rate limiting answered HTTP {probe.status} instead of 429, so the openai "
                      f"SDK raises {raised}, not RateLimitError: {snippet(said, 80)}")
    seen = ctx.client.rate_limited
    if seen is None:
        raise NotApplicable("no 429 seen in this run; rate limits cannot be provoked safely "
                            f"(GET /models with the simulate header: {describe(probe)})")
    ctx.exchanges.append(seen)
    return await _replay(ctx, seen)


async def _replay(ctx: CheckContext, seen: Exchange) -> str:
    """Feed a 429 the provider sent earlier to the SDK (no request is repeated)."""
    import openai

    headers = [(k, v) for k, v in seen.headers.items()
               if k not in ("content-length", "content-encoding", "transfer-encoding")]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(seen.status or 0, headers=headers, content=seen.text.encode())

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with openai.AsyncOpenAI(api_key="replay", base_url=ctx.client.base_url,
                                  http_client=http,  # type: ignore[arg-type]
                                  max_retries=0) as replay:
        try:
            await replay.chat.completions.create(
                model=ctx.model, messages=prompts.CAPITAL,  # type: ignore[arg-type]
                max_tokens=1)
        except openai.RateLimitError:
            return "a 429 seen earlier in this run → openai.RateLimitError"
        except _OURS:
            raise
        except Exception as exc:
            raise Failure(f"a 429 seen earlier in this run makes the openai SDK raise "
                          f"{_name(exc)}, not RateLimitError") from None
    raise Failure("a 429 seen earlier in this run makes the openai SDK raise nothing")
