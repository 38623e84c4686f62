"""A hostile provider echoes the key it was sent in every encoding it can think of — in JSON
bodies, ``\\u``-escaped, split across two stream events, base64/hex/URL-encoded, in header
values and names, as an SSE event's name and id, and past the evidence size limit. Run next
to the builtin reference, with the key read from a variable that ends in a newline: no
artefact and no console line may hold the key in any form."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from conformance.exchange import MAX_BODY_CHARS
from conformance.reference.server import ThreadedServer
from tests import hostile as guard
from tests.conftest import write_providers

KEY = "sk-hostile-" + secrets.token_hex(16)
KEY_VAR = "CONFORMANCE_HOSTILE_KEY"


def leaks(text: str, key: str = KEY) -> list[str]:
    """The names of the encodings of ``key`` found in ``text``."""
    return guard.leaks(text, key)


def echo_fields(key: str) -> dict[str, str]:
    forms = guard.encodings(key)
    return {name: f"[{form}]" for name, form in forms.items() if name != "json_u_twice"}


async def hostile(request: Request) -> Response:
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    body = await request.body()
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        payload = {}
    forms = guard.encodings(key)
    headers = {"x-echo-b64": forms["b64_bearer"], "x-echo-hex": forms["hex"],
               "x-echo-url": forms["url_all"], "x-echo-upper": forms["upper"],
               f"x-{key}": "the key as a header name"}
    if isinstance(payload, dict) and payload.get("stream"):
        half = len(key) // 2

        def chunk(content: str, **extra: object) -> str:
            event = {"id": "x", "object": "chat.completion.chunk", "model": "m",
                     "choices": [{"index": 0, "delta": {"content": content},
                                  "finish_reason": None}], **extra}
            return f"data: {json.dumps(event)}\n\n"

        async def events() -> Iterator[str]:  # type: ignore[misc]
            yield chunk("your key is " + key[:half])
            yield chunk(key[half:] + " (split)")
            yield "data: " + json.dumps({"echo": key}).replace(key, forms["json_u"]) + "\n\n"
            yield chunk(forms["b64_basic"] + " " + forms["url"] + " " + forms["HEX"])
            yield f"event: {key}\nid: {key}\ndata: {{}}\n\n"  # as an event's name and id
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",  # type: ignore[arg-type]
                                 headers=headers)
    document = {"id": "x", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "your key: " + key}}],
                "error": {"message": f"Invalid key {key}"}, "echo": echo_fields(key)}
    text = json.dumps(document).replace(f'"your key: {key}"', f'"your key: {forms["json_u"]}"')
    # The key again, straddling the evidence size limit.
    prefix = text[:-1] + ', "padding": "'
    text = prefix + "x" * (MAX_BODY_CHARS - 10 - len(prefix)) + key + '"}'
    return Response(text, status_code=401 if "models" in request.url.path else 200,
                    media_type="application/json", headers=headers)


APP = Starlette(routes=[Route("/{path:path}", hostile, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    with ThreadedServer(APP) as server:
        yield f"http://127.0.0.1:{server.port}/v1"


def test_encodings_helper_finds_every_form() -> None:
    text = "\n".join(echo_fields(KEY).values())
    assert set(leaks(text)) >= {"raw", "json_u", "b64_bearer", "hex", "url_all"}


def test_a_hostile_echo_never_reaches_an_artefact(tmp_path: Path, hostile_url: str) -> None:
    providers = write_providers(tmp_path / "providers.yaml", [
        {"name": "reference", "builtin": "reference"},
        {"name": "hostile", "base_url": hostile_url, "api_key": "${" + KEY_VAR + "}",
         "model": "m", "retries": 0},
    ])
    run = guard.run_measured(providers, tmp_path / "report", env={KEY_VAR: KEY + "\n"})
    assert any(provider == "hostile" for provider, _ in run.out.outcomes())
    guard.assert_sound(run, keys=[KEY])
