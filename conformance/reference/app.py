"""The reference provider's HTTP side: the Starlette app, authentication and the endpoints.

Routes follow the OpenAI API reference (https://platform.openai.com/docs/api-reference):
``GET /v1/models``, ``GET /v1/models/{model}`` and ``POST /v1/chat/completions`` (JSON and
server-sent events), plus Anthropic's ``POST /v1/messages`` (:mod:`.messages`), each also
under ``/variant/<spec>/v1/...`` where ``<spec>`` selects deliberate deviations from
:mod:`conformance.reference.faults`. ``GET /assets/...`` serves test images for
vision-by-URL probes. The work is done elsewhere: requests in :mod:`.chat_request`, answers in
:mod:`.chat` and :mod:`.streaming`, errors in :mod:`.envelopes`, images in :mod:`.vision`.

The reference is also a *recording upstream* a relay can be put in front of: every API answer
carries OpenAI's response headers (:mod:`.headers`), every API request is recorded
(:mod:`.recording`), and misbehaviours can be armed per marker (:mod:`.upstream_faults`),
through a control plane on reserved paths that relays never forward by accident:
``GET /__conformance/records?marker=M&limit=N`` and ``POST /__conformance/arm``, both behind
the server's key (Bearer or ``x-api-key``) when it has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from conformance.reference import (
    chat,
    images,
    messages,
    responses,
    responses_stream,
    streaming,
    vision,
)
from conformance.reference.chat_request import parse_chat
from conformance.reference.envelopes import (
    BAD_JSON,
    MISSING_KEY,
    ApiError,
    mask_key,
    render_error,
)
from conformance.reference.faults import ALL_MODEL_IDS, FAITHFUL, Variant, parse_variant
from conformance.reference.headers import OpenAIHeaders
from conformance.reference.recording import (
    MAX_RECORDS,
    SCOPE_KEY,
    Recorder,
    RecordingMiddleware,
    RequestNote,
    find_markers,
)
from conformance.reference.upstream_faults import Armed, ArmedFaults, armed_error, parse_arm

OWNER = "conformance"
#: Request header that makes the reference answer as rate limited (see ``rate_limit``).
SIMULATE_HEADER = "x-conformance-simulate"
#: The control plane's reserved path prefix (never under /v1).
CONTROL = "/__conformance"
#: ``created`` of each listed model (the OpenAI-named ones: the values OpenAI's /v1/models lists).
_CREATED = {"ref-1": 1780272000, "ref-1-2026-11-01": 1793491200,
            "ref-2": 1780358400, "ref-2-2026-11-01": 1793577600,
            "gpt-4o-mini": 1721172741, "gpt-4o-mini-2024-07-18": 1721172717,
            "gpt-4o": 1715367049, "gpt-4o-2024-08-06": 1722814719,
            "gpt-4": 1687882411, "gpt-4-0613": 1686588896}

Handler = Callable[[Request, Variant], Awaitable[Response]]


class _Provider:
    """Request handlers bound to one configured API key, recorder and armed faults."""

    def __init__(self, api_key: str | None, recorder: Recorder, armed: ArmedFaults,
                 fetch_remote: bool) -> None:
        self.api_key = api_key
        self.recorder = recorder
        self.armed = armed
        self.fetch_remote = fetch_remote
        #: Request bodies the ``rate_limited_once`` quirk has already limited.
        self.limited_once: set[bytes] = set()
        #: Chat completions each ``flaky_third`` variant has been sent (every third fails).
        self.flaky_counts: dict[Variant, int] = {}
        #: Stored Responses (``previous_response_id``, ``GET /v1/responses/{id}``).
        self.responses = responses.Store()

    # -- plumbing ----------------------------------------------------------------------------

    def endpoint(self, handler: Handler, *, auth: bool = True,
                 anthropic: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Wrap ``handler`` with variant selection, authentication, armed misbehaviours and
        error rendering; ``anthropic`` endpoints also take ``x-api-key`` and answer errors in
        Anthropic's format."""

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
            armed: Armed | None = None
            try:
                stainless = [k for k in request.headers if k.lower().startswith("x-stainless-")]
                if "sdk_headers_rejected" in variant and stainless:
                    raise ApiError(400, f"Header '{stainless[0]}' is not allowed.",
                                   code="invalid_header")
                if auth:
                    self.authenticate(request, variant, anthropic=anthropic)
                    await self.rate_limit(request, variant)
                    armed = await self.take_armed(request)
                    error = armed_error(armed, await _requested_model(request)) \
                        if armed is not None else None
                    if error is not None:
                        raise error
                response = await handler(request, variant)
            except ApiError as err:
                response = self.error(err, variant, anthropic=anthropic)
            except ClientDisconnect:
                # The client left before its body arrived (e.g. a run stopped with Ctrl-C):
                # nothing to answer, and no server error to log. 499 is never sent.
                return Response(status_code=499)
            if armed is not None and armed.behaviour == "cut_stream":
                response = streaming.cut(response, armed.after)
            if "echo_key" in variant:
                response.headers["x-echo-key"] = self.api_key or ""
            if "json_bom" in variant and isinstance(getattr(response, "body", None), bytes) \
                    and response.headers.get("content-type", "").startswith("application/json"):
                response.body = "\ufeff".encode() + response.body
                response.headers["content-length"] = str(len(response.body))
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
            raise ApiError(401, "x-api-key header is required" if anthropic else MISSING_KEY)
        if "accept_any_key" in variant or (anthropic and "messages_accept_any_key" in variant):
            return
        if "responses_accept_any_key" in variant and "/v1/responses" in request.url.path:
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

    async def take_armed(self, request: Request) -> Armed | None:
        """The armed misbehaviour this request gets, if its body carries an armed marker
        (noted in the request's record)."""
        note = request.scope.get(SCOPE_KEY)
        if not isinstance(note, RequestNote):
            note = RequestNote(find_markers((await request.body()).decode(errors="replace")))
        armed = self.armed.take(note.markers)
        if armed is not None:
            note.injected = armed.behaviour
        return armed

    def error(self, err: ApiError, variant: Variant, *, anthropic: bool = False) -> Response:
        """Render an error (:func:`~conformance.reference.envelopes.render_error`)."""
        return render_error(err, variant, api_key=self.api_key, anthropic=anthropic)

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
            body.update(chat.EXTRA_FIELDS["top"])
        return JSONResponse(body)

    async def retrieve_model(self, request: Request, variant: Variant) -> Response:
        model_id = request.path_params["model"]
        if "models_retrieve_html_404" in variant:
            raise ApiError(404, "Not Found",
                           html="<html><body><h1>404 Not Found</h1></body></html>")
        if model_id not in ALL_MODEL_IDS or "models_retrieve_missing" in variant:
            raise ApiError(404, f"The model '{model_id}' does not exist", param="model",
                           code="model_not_found")
        body = self._model_object(model_id)
        if "extra_fields" in variant:
            body.update(chat.EXTRA_FIELDS["top"])
        return JSONResponse(body)

    # -- chat --------------------------------------------------------------------------------

    async def chat_completions(self, request: Request, variant: Variant) -> Response:
        if "flaky_third" in variant:
            count = self.flaky_counts[variant] = self.flaky_counts.get(variant, 0) + 1
            if count % 3 == 0:
                raise ApiError(500, f"flaky_third: chat completion {count} of this variant "
                               "fails (every third does)", "server_error")
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            if "malformed_json_500" in variant:
                raise ApiError(500, "Internal Server Error",
                               plain="Internal Server Error") from exc
            raise ApiError(400, BAD_JSON) from exc
        if "array_body_500" in variant and isinstance(body, list):
            raise ApiError(500, "Internal Server Error", plain="Internal Server Error")
        reader = vision.reader_for(self.fetch_remote, request.scope.get("server"),
                                   request.headers.get("host"))
        parsed = await parse_chat(body, variant, reader)
        if parsed.stream and "stream_ignored" not in variant:
            media = ("application/json" if "stream_json_content_type" in variant
                     else "text/event-stream")
            return streaming.event_stream(chat.stream_events(parsed, variant), variant, media)
        return JSONResponse(chat.completion(parsed, variant))

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
            return streaming.event_stream(messages.stream_events(call, variant), variant)
        return JSONResponse(messages.message(call, variant))

    # -- OpenAI Responses API ----------------------------------------------------------------

    def _responses_route(self, request: Request, variant: Variant) -> None:
        if "no_responses_api" in variant:
            raise ApiError(404, f"Invalid URL ({request.method} {request.url.path})")

    @staticmethod
    def _responses_error(err: responses.ResponsesError, variant: Variant) -> ApiError:
        if "responses_error_detail" in variant:
            return ApiError(err.status, err.message, body={"detail": err.message})
        kind = "server_error" if err.status >= 500 else "invalid_request_error"
        return ApiError(err.status, err.message, kind, err.param, err.code)

    async def create_response(self, request: Request, variant: Variant) -> Response:
        """``POST /v1/responses`` (:mod:`conformance.reference.responses`)."""
        self._responses_route(request, variant)
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            raise ApiError(400, BAD_JSON) from exc
        try:
            call = responses.parse(body, variant, self.responses)
        except responses.ResponsesError as err:
            raise self._responses_error(err, variant) from err
        answer = responses.finish(call, self.responses)
        forced = "responses_stream_forced" in variant and body.get("stream") is False
        if call.stream or forced:
            return streaming.event_stream(responses_stream.stream_events(call, variant), variant)
        if "responses_chat_format" in variant:
            return JSONResponse(responses.as_chat_completion(call))
        return JSONResponse(answer)

    async def retrieve_response(self, request: Request, variant: Variant) -> Response:
        """``GET /v1/responses/{response_id}``: a stored response, else 404."""
        self._responses_route(request, variant)
        response_id = request.path_params["response_id"]
        stored = self.responses.get(response_id)
        if stored is None:
            raise self._responses_error(responses.ResponsesError(
                404, f"Response with id '{response_id}' not found.", "response_id",
                "response_not_found"), variant)
        if "responses_retrieve_new_id" in variant:  # a relay that re-encodes ids per answer
            return JSONResponse({**stored.response, "id": "resp_" + secrets.token_hex(24)})
        return JSONResponse(stored.response)

    # -- assets ------------------------------------------------------------------------------

    async def asset(self, request: Request, variant: Variant) -> Response:
        found = images.asset(request.url.path)
        if found is None:
            raise ApiError(404, f"No such asset: {request.url.path}")
        data, media = found
        if not media.startswith("image/"):
            return PlainTextResponse(data.decode())
        return Response(data, media_type=media)

    # -- control plane -----------------------------------------------------------------------

    def control_denied(self, request: Request) -> Response | None:
        """401 unless the request carries the server's key (Bearer or x-api-key)."""
        if self.api_key is None:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        token = token or request.headers.get("x-api-key", "").strip()
        if not token:
            return self.error(ApiError(401, MISSING_KEY), FAITHFUL)
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            return self.error(ApiError(401, f"Incorrect API key provided: {mask_key(token)}.",
                                       code="invalid_api_key"), FAITHFUL)
        return None

    async def control_records(self, request: Request) -> Response:
        """``GET /__conformance/records``: the records with ``marker``, else the last
        ``limit`` (default 50, at most the ring's size), oldest first."""
        denied = self.control_denied(request)
        if denied is not None:
            return denied
        text = request.query_params.get("limit", "50")
        if not re.fullmatch(r"\d{1,9}", text) or int(text) < 1:
            return self.error(ApiError(400, f"Invalid 'limit': expected an integer >= 1, got "
                                       f"{text!r}.", param="limit", code="invalid_value"),
                              FAITHFUL)
        limit = min(int(text), MAX_RECORDS)
        data = self.recorder.records(request.query_params.get("marker"), limit)
        return JSONResponse({"object": "list", "data": data})

    async def control_arm(self, request: Request) -> Response:
        """``POST /__conformance/arm`` (:mod:`conformance.reference.upstream_faults`)."""
        denied = self.control_denied(request)
        if denied is not None:
            return denied
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self.error(ApiError(400, BAD_JSON), FAITHFUL)
        except ClientDisconnect:
            return Response(status_code=499)
        try:
            armed = parse_arm(body)
        except ValueError as exc:
            return self.error(ApiError(400, f"Invalid arm request: {exc}.",
                                       code="invalid_value"), FAITHFUL)
        self.armed.arm(armed)
        return JSONResponse({"armed": armed.to_json()})


async def _requested_model(request: Request) -> str:
    """The ``model`` a request body names ("ref-1" when it names none)."""
    with contextlib.suppress(ValueError, ClientDisconnect):
        body = json.loads(await request.body())
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            return str(body["model"])
    return "ref-1"


def create_app(api_key: str | None, *, record_limit: int = MAX_RECORDS,
               fetch_remote_images: bool = True) -> Starlette:
    """The reference provider as an ASGI app; ``api_key=None`` disables authentication.

    ``record_limit`` bounds the recorded requests (:mod:`.recording`);
    ``fetch_remote_images=False`` (a server exposed beyond loopback) refuses image URLs that
    are not the server's own instead of downloading them (:mod:`.vision`). The app's
    :class:`~conformance.reference.recording.Recorder` and
    :class:`~conformance.reference.upstream_faults.ArmedFaults` are ``app.state.recorder`` and
    ``app.state.armed``.
    """
    recorder = Recorder(api_key, record_limit)
    armed = ArmedFaults()
    provider = _Provider(api_key, recorder, armed, fetch_remote_images)
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
            Route(prefix + "/v1/responses", provider.endpoint(provider.create_response),
                  methods=["POST"]),
            Route(prefix + "/v1/responses/{response_id}",
                  provider.endpoint(provider.retrieve_response), methods=["GET"]),
        ]
    routes += [
        Route("/assets/color/{file}", provider.endpoint(provider.asset, auth=False),
              methods=["GET"]),
        Route("/assets/not-an-image.png", provider.endpoint(provider.asset, auth=False),
              methods=["GET"]),
        Route(CONTROL + "/records", provider.control_records, methods=["GET"]),
        Route(CONTROL + "/arm", provider.control_arm, methods=["POST"]),
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

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found},
                    middleware=[Middleware(RecordingMiddleware, recorder=recorder),
                                Middleware(OpenAIHeaders)])
    app.state.recorder = recorder
    app.state.armed = armed
    return app
