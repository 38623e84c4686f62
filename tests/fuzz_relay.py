"""A relay in front of the reference that changes its answers at random, reproducibly.

``/f/<seed>/v1/...`` (values): for most JSON bodies and stream events, one to three values
anywhere in the document are replaced by a value of another JSON type (null, a number, a
string, an array, an object, a boolean) or removed.  ``/g/<seed>/v1/...`` (framing): now and
then the status code, the Content-Type or the Content-Encoding is a lie (plain JSON labelled
gzip), a body is cut short, or a stream has an event duplicated, swapped with the next,
dropped, cut off, or a foreign line put in (``data: {``, ``data: null``, an ``error``
event...).  Each choice is a function of the seed, the route and the request body, so a run is
reproducible whatever order its requests come in.  What the suite owes such a provider: a
verdict for every check (mostly ``fail``), never a suite fault, a traceback or a lost report.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
from collections.abc import Iterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance.reference.server import ThreadedServer
from tests.relays import HOP

#: What a value is replaced with: every JSON type, empty and not.
POOL: tuple[Any, ...] = (None, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, True, False,
                         "9" * 50, [None], [{}], {"": None}, 10 ** 20)
#: A fidelity check's marker (random per run) in a request body.
_MARKER = re.compile(rb"cfm-[0-9a-f]+")
#: Share of bodies and of stream events changed.
RATE = 0.7
#: What the framing mode may answer instead (a 204 cannot carry the body that follows).
STATUSES = (200, 201, 302, 400, 404, 422, 500, 503)
CONTENT_TYPES = (None, "text/html", "application/json", "text/event-stream",
                 "text/plain; charset=latin-1", "application/octet-stream")
FOREIGN_EVENTS = (b"garbage line", b"data: {", b"data: null", b"data: []", b"data: 5",
                  b'event: error\ndata: {"error": {"message": "boom"}}', b'data: "str"',
                  b"retry: x", b"id: 1")


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


def _reframed(events: list[bytes], rng: random.Random) -> list[bytes]:
    """``events`` with one framing fault, or none."""
    pick = rng.random()
    if pick < 0.15 and len(events) > 2:
        at = rng.randrange(len(events))
        events.insert(at, events[at])
    elif pick < 0.3 and len(events) > 2:
        at = rng.randrange(len(events) - 1)
        events[at], events[at + 1] = events[at + 1], events[at]
    elif pick < 0.45 and events:
        del events[rng.randrange(len(events))]
    elif pick < 0.55:
        events.insert(rng.randrange(len(events) + 1), rng.choice(FOREIGN_EVENTS))
    elif pick < 0.6:
        events = events[:rng.randint(0, len(events))]
    return events


class _Changed(Response):
    def __init__(self, upstream: httpx.Response, rng: random.Random, framing: bool) -> None:
        super().__init__(status_code=upstream.status_code)
        self.upstream = upstream
        self.rng = rng
        self.framing = framing
        self.raw_headers = [(k.encode(), v.encode()) for k, v in upstream.headers.items()
                            if k.lower() not in HOP]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        streamed = self.upstream.headers.get("content-type", "").startswith("text/event-stream")
        if self.framing:
            await self._reframe(send, streamed)
            return
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
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

    async def _reframe(self, send: Any, streamed: bool) -> None:
        rng, status, headers = self.rng, self.status_code, list(self.raw_headers)
        pick = rng.random()
        if pick < 0.1:
            status = rng.choice(STATUSES)
        elif pick < 0.2:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-type"]
            content_type = rng.choice(CONTENT_TYPES)
            if content_type:
                headers.append((b"content-type", content_type.encode()))
        elif pick < 0.25:
            headers.append((b"content-encoding", b"gzip"))  # a lie: the body is plain
        body = await self.upstream.aread()
        await self.upstream.aclose()
        if streamed:
            *events, tail = body.split(b"\n\n")
            body = b"".join(e + b"\n\n" for e in _reframed(events, rng)) + tail
        elif rng.random() < 0.1:
            body = body[:rng.randint(0, len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class FuzzRelay(ThreadedServer):
    """``url(seed)`` is an API root whose answers are changed as the module says."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.client = httpx.AsyncClient(timeout=60)
        super().__init__(Starlette(routes=[
            Route("/{mode:str}/{seed}/v1/{path:path}", self.forward, methods=["GET", "POST"])]))

    def url(self, seed: str, *, framing: bool = False) -> str:
        """The API root of ``seed``: values changed, or with ``framing`` the framing."""
        return f"{self.origin}/{'g' if framing else 'f'}/{seed}/v1"

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        path = request.path_params["path"]
        # the fidelity checks' markers differ from run to run: the same choice every run
        digest = hashlib.sha256(_MARKER.sub(b"cfm-", body)).hexdigest()
        rng = random.Random(f"{request.path_params['seed']}|{request.method}|{path}|{digest}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        upstream = await self.client.send(
            self.client.build_request(request.method, f"{self.upstream}/{path}",
                                      headers=headers, content=body),
            stream=True)
        return _Changed(upstream, rng, framing=request.path_params["mode"] == "g")
