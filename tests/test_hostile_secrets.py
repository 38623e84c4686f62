"""A hostile provider echoes the key it was sent in every encoding it can think of — in JSON
bodies, ``\\u``-escaped, split across two stream events, base64/hex/URL-encoded, in headers and
past the evidence size limit. Run next to the builtin reference, with the key read from a
variable that ends in a newline: no artefact and no console line may hold the key in any form."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from conformance.reference.server import ThreadedServer
from conformance.transport import MAX_BODY_CHARS
from tests.conftest import run_suite, write_providers

KEY = "sk-hostile-" + secrets.token_hex(16)
KEY_VAR = "CONFORMANCE_HOSTILE_KEY"


def encodings(key: str) -> dict[str, str]:
    """Every form of ``key`` a provider may echo and a scan must not find."""
    raw = key.encode()
    escaped = "".join(f"\\u{ord(char):04x}" for char in key)
    out = {
        "raw": key, "upper": key.upper(), "json_u": escaped, "json_u_upper": escaped.upper(),
        "json_u_twice": escaped.replace("\\", "\\\\"),
        "hex": raw.hex(), "HEX": raw.hex().upper(),
        "url": quote(key, safe=""), "url_all": "".join(f"%{b:02X}" for b in raw),
    }
    for name, value in (("key", raw), ("bearer", b"Bearer " + raw), ("basic", b"user:" + raw),
                        ("colon", b":" + raw)):
        out[f"b64_{name}"] = base64.b64encode(value).decode()
        out[f"b64url_{name}"] = base64.urlsafe_b64encode(value).decode().rstrip("=")
    return out


def leaks(text: str, key: str = KEY) -> list[str]:
    """The names of the encodings of ``key`` found in ``text``."""
    return [name for name, form in encodings(key).items() if form in text]


def echo_fields(key: str) -> dict[str, str]:
    forms = encodings(key)
    return {name: f"[{form}]" for name, form in forms.items() if name != "json_u_twice"}


async def hostile(request: Request) -> Response:
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    body = await request.body()
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        payload = {}
    forms = encodings(key)
    headers = {"x-echo-b64": forms["b64_bearer"], "x-echo-hex": forms["hex"],
               "x-echo-url": forms["url_all"], "x-echo-upper": forms["upper"]}
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
    out = run_suite(providers, tmp_path / "report", env={KEY_VAR: KEY + "\n"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    outcomes = out.outcomes()
    reference = {check: outcome for (provider, check), (outcome, _) in outcomes.items()
                 if provider == "reference"}
    assert reference and set(reference.values()) == {"pass"}, reference
    assert any(provider == "hostile" for provider, _ in outcomes)
    found = {"console": leaks(out.stdout + out.stderr)}
    for path in sorted(out.report_dir.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(out.report_dir))] = leaks(
                path.read_bytes().decode("utf-8", "replace"))
    assert not {where: names for where, names in found.items() if names}
