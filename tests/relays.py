"""Small fault relays for the suite's own tests: real HTTP proxies on 127.0.0.1 that forward to
an upstream (the reference provider) and break one thing on the way, as relays seen in the
wild do — drop request headers, cut streams.  Unlike the reference's fault variants, the
upstream here is faithful: what goes wrong is what the relay does in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conformance.reference.server import ThreadedServer

#: Hop-by-hop and length headers a proxy must not copy (every test relay's).
HOP = frozenset({"host", "content-length", "transfer-encoding", "connection",
                 "accept-encoding", "content-encoding", "keep-alive"})


class _Forwarded(Response):
    """Streams the upstream's body to the client; with ``cut_after`` it stops after that many
    SSE events and returns without finishing the body, so the connection is closed
    mid-stream."""

    def __init__(self, upstream: httpx.Response, cut_after: int | None,
                 hold_open: bool = False) -> None:
        super().__init__(status_code=upstream.status_code)
        self.upstream = upstream
        self.cut_after = cut_after
        self.hold_open = hold_open
        self.raw_headers = [(k.encode(), v.encode()) for k, v in upstream.headers.items()
                            if k.lower() not in HOP]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        body = b""
        try:
            async for chunk in self.upstream.aiter_raw():
                if self.cut_after is None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    continue
                body += chunk
                events = body.replace(b"\r\n", b"\n").split(b"\n\n")
                if len(events) > self.cut_after:
                    kept = b"\n\n".join(events[: self.cut_after]) + b"\n\n"
                    await send({"type": "http.response.body", "body": kept, "more_body": True})
                    return  # the relay gives up mid-body: uvicorn closes the connection
        finally:
            await self.upstream.aclose()
        if self.hold_open:  # everything sent, the body never ended: until the client leaves
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_disconnected(receive), timeout=60)
            return
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class Relay(ThreadedServer):
    """``http://127.0.0.1:<port>/v1`` forwarding to ``upstream`` (an API root ending in /v1).

    ``drop_headers``: request headers removed before forwarding (case-insensitive).
    ``cut_streams``: event streams are cut after ``cut_after`` events, every time.
    ``models_404``: ``GET /v1/models`` is not offered (404 with OpenAI's "Invalid URL").
    ``hold_open``: event streams are forwarded whole, then their body is left open.
    ``request_json``: rewrites each JSON request body before it is forwarded.
    ``answer_json``: rewrites each JSON (not streamed) answer body before it is returned.
    """

    def __init__(self, upstream: str, *, drop_headers: Iterable[str] = (),
                 cut_streams: bool = False, cut_after: int = 2,
                 models_404: bool = False, hold_open: bool = False,
                 request_json: Callable[[Any], Any] | None = None,
                 answer_json: Callable[[Any], Any] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.models_404 = models_404
        self.hold_open = hold_open
        self.request_json = request_json
        self.answer_json = answer_json
        self.drop = {h.lower() for h in drop_headers}
        self.cut_after = cut_after if cut_streams else None
        self.client = httpx.AsyncClient(timeout=60)
        app = Starlette(routes=[Route("/v1/{path:path}", self.forward,
                                      methods=["GET", "POST"])])
        super().__init__(app)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    async def forward(self, request: Request) -> Response:
        if self.models_404 and request.path_params["path"] == "models":
            return JSONResponse({"error": {"message": "Invalid URL (GET /v1/models)",
                                           "type": "invalid_request_error", "param": None,
                                           "code": None}}, status_code=404)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in HOP and k.lower() not in self.drop}
        content = await request.body()
        if self.request_json is not None and content:
            content = json.dumps(self.request_json(json.loads(content))).encode()
        upstream = await self.client.send(
            self.client.build_request(request.method,
                                      f"{self.upstream}/{request.path_params['path']}",
                                      headers=headers, content=content),
            stream=True)
        ctype = upstream.headers.get("content-type", "")
        if self.answer_json is not None and ctype.startswith("application/json"):
            body = json.loads(await upstream.aread())
            await upstream.aclose()
            return JSONResponse(self.answer_json(body), status_code=upstream.status_code)
        streamed = ctype.startswith("text/event-stream")
        return _Forwarded(upstream, self.cut_after if streamed else None,
                          hold_open=streamed and self.hold_open)
