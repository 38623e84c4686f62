"""A provider that answers every request with a redirect to another host: the suite never
follows it (brief: "the suite never sends traffic to a host the user did not configure"), in
its own requests, the openai SDK's (the sdk family, whose default client would follow) and
the recording upstream's (fidelity), and judges the redirect as the answer it is.  The other
host is a trap on 127.0.0.1 that records whatever reaches it and answers as a provider would,
so a followed redirect would show both as a hit and as passing checks."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conformance.reference.server import ThreadedServer
from tests.conftest import RunOutput, run_suite, write_providers

KEY = "sk-redirect-0123456789abcdef"
STATUSES = (301, 302, 303, 307, 308)


class Trap:
    """The host nobody configured: records each request, answers like a provider."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.lock = threading.Lock()

    async def answer(self, request: Request) -> Response:
        with self.lock:
            self.hits.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/models"):
            return JSONResponse({"object": "list", "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "trap"}]})
        return JSONResponse({
            "id": "chatcmpl-trap", "object": "chat.completion", "created": 0,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Paris"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


class Redirector:
    """Answers every request (the fidelity control plane's too) with a redirect to the same
    path on the trap, each status of :data:`STATUSES` in turn."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.statuses = itertools.cycle(STATUSES)
        self.lock = threading.Lock()

    async def answer(self, request: Request) -> Response:
        with self.lock:
            status = next(self.statuses)
        location = self.target + request.url.path + (f"?{request.url.query}"
                                                     if request.url.query else "")
        return Response(status_code=status, headers={"location": location})


@pytest.fixture(scope="module")
def trap() -> Iterator[tuple[Trap, str]]:
    app = Trap()
    with ThreadedServer(Starlette(routes=[Route("/{path:path}", app.answer,
                                                methods=["GET", "POST"])])) as server:
        yield app, server.origin


@pytest.fixture(scope="module")
def redirected(tmp_path_factory: pytest.TempPathFactory,
               trap: tuple[Trap, str]) -> Iterator[RunOutput]:
    app = Redirector(trap[1])
    with ThreadedServer(Starlette(routes=[Route("/{path:path}", app.answer,
                                                methods=["GET", "POST"])])) as server:
        tmp = tmp_path_factory.mktemp("redirects")
        providers = write_providers(tmp / "providers.yaml", [
            {"name": "redirects", "base_url": f"{server.origin}/v1", "api_key": KEY,
             "model": "gpt-4o-mini", "retries": 0,
             "upstream": {"url": server.origin, "api_key": KEY}},
        ])
        yield run_suite(providers, tmp / "report")


def test_no_request_reaches_the_other_host(trap: tuple[Trap, str],
                                          redirected: RunOutput) -> None:
    assert redirected.returncode == 0, redirected.stderr[-2000:]
    assert trap[0].hits == []


def test_every_family_was_judged_and_none_passed_on_the_redirect(redirected: RunOutput
                                                                 ) -> None:
    """The sdk and fidelity families ran (so their clients met the redirects), and a 3xx is
    no check's answer: nothing passes on what the trap would have said."""
    outcomes = redirected.outcomes()
    families = {check.split(".")[0] for _, check in outcomes}
    assert {"chat", "streaming", "sdk", "fidelity", "models"} <= families
    passed = sorted(check for (_, check), (outcome, _) in outcomes.items() if outcome == "pass")
    assert passed == [], passed


def test_the_redirect_is_the_evidence(redirected: RunOutput) -> None:
    results = {r["check"]: r for r in redirected.data["results"]}
    basic = results["chat.basic"]
    assert basic["outcome"] == "fail", basic
    statuses = [e["response"]["status"] for e in basic["evidence"]["exchanges"]]
    assert statuses and set(statuses) <= set(STATUSES), statuses
