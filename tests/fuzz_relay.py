"""A relay that answers with the reference's JSON, one to three values changed to another type.

``/f/<seed>/v1/...`` forwards to the upstream (the reference provider) and, for most JSON
bodies and stream events, replaces a random value anywhere in the document with a value of
another JSON type (null, a number, a string, an array, an object, a boolean) or removes a
member.  The choice is a function of the seed, the route and the request body, so a run is
reproducible whatever order its requests come in.  What the suite owes such a provider: a
verdict for every check (mostly ``fail``), never a suite fault, a traceback or a lost report.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance.reference.server import ThreadedServer

_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection",
                  "accept-encoding", "content-encoding", "keep-alive"})
#: What a value is replaced with: every JSON type, empty and not.
POOL: tuple[Any, ...] = (None, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, True, False,
                         "9" * 50, [None], [{}], {"": None}, 10 ** 20)
#: Share of bodies and of stream events changed.
RATE = 0.7


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*path, key)
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*path, index)
            yield from _paths(child, (*path, index))


def mutate(document: Any, rng: random.Random) -> Any:
    """``document`` with one value replaced (or, in an object, sometimes removed)."""
    paths = list(_paths(document))
    if not paths:
        return copy.deepcopy(rng.choice(POOL))
    path = rng.choice(paths)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and rng.random() < 0.15:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(POOL))
    return document


def _changed(text: bytes, rng: random.Random) -> bytes:
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if rng.random() >= RATE:
        return text
    for _ in range(rng.randint(1, 3)):
        document = mutate(document, rng)
    return json.dumps(document).encode()


class _Changed(Response):
    def __init__(self, upstream: httpx.Response, rng: random.Random) -> None:
        super().__init__(status_code=upstream.status_code)
        self.upstream = upstream
        self.rng = rng
        self.raw_headers = [(k.encode(), v.encode()) for k, v in upstream.headers.items()
                            if k.lower() not in _HOP]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        streamed = self.upstream.headers.get("content-type", "").startswith("text/event-stream")
        if not streamed:
            body = await self.upstream.aread()
            await self.upstream.aclose()
            await send({"type": "http.response.body", "body": _changed(body, self.rng)})
            return
        pending = b""
        try:
            async for chunk in self.upstream.aiter_raw():
                pending += chunk
                while b"\n\n" in pending:
                    event, pending = pending.split(b"\n\n", 1)
                    lines = [b"data: " + _changed(line[6:], self.rng)
                             if line.startswith(b"data: {") else line
                             for line in event.split(b"\n")]
                    await send({"type": "http.response.body",
                                "body": b"\n".join(lines) + b"\n\n", "more_body": True})
        finally:
            await self.upstream.aclose()
        await send({"type": "http.response.body", "body": pending})


class FuzzRelay(ThreadedServer):
    """``url(seed)`` is an API root whose answers are changed as the module says."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.client = httpx.AsyncClient(timeout=60)
        super().__init__(Starlette(routes=[
            Route("/f/{seed}/v1/{path:path}", self.forward, methods=["GET", "POST"])]))

    def url(self, seed: str) -> str:
        return f"{self.origin}/f/{seed}/v1"

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        path = request.path_params["path"]
        digest = hashlib.sha256(body).hexdigest()
        rng = random.Random(f"{request.path_params['seed']}|{request.method}|{path}|{digest}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        upstream = await self.client.send(
            self.client.build_request(request.method, f"{self.upstream}/{path}",
                                      headers=headers, content=body),
            stream=True)
        return _Changed(upstream, rng)
