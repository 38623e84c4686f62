"""The reference as a recording upstream: records, armed misbehaviours, OpenAI's response
headers, the second model, and what it fetches when exposed beyond loopback.

Real servers on 127.0.0.1 (conformance.reference.server), real HTTP, no mocks.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance.reference import images
from conformance.reference.app import create_app
from conformance.reference.recording import MARKER, MAX_BODY_TEXT
from conformance.reference.server import ReferenceServer, ThreadedServer
from conformance.reference.vision import is_loopback

KEY = "sk-test-recording-0123456789abcdef"
AUTH = {"authorization": f"Bearer {KEY}"}
VERSION = {"anthropic-version": "2023-06-01"}
Json = dict[str, Any]
RATE_LIMIT_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                      "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                      "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(headers=AUTH, timeout=20) as http:
        yield http


def new_marker() -> str:
    marker = "cfm-" + secrets.token_hex(8)
    assert MARKER.fullmatch(marker)
    return marker


def ask(marker: str, text: str = "What is the capital of France? Answer with one word.",
        **params: Any) -> Json:
    return {"model": "ref-1", "messages": [{"role": "user", "content": f"{text} [{marker}]"}],
            **params}


def records(server: ReferenceServer, client: httpx.Client, marker: str | None = None,
            **params: Any) -> list[Json]:
    query = {"marker": marker, **params} if marker else params
    response = client.get(f"{server.origin}/__conformance/records", params=query)
    assert response.status_code == 200, response.text
    assert KEY not in response.text
    body = response.json()
    assert body["object"] == "list"
    data: list[Json] = body["data"]
    return data


def only_record(server: ReferenceServer, client: httpx.Client, marker: str) -> Json:
    found = records(server, client, marker)
    assert len(found) == 1, found
    return found[0]


def arm(server: ReferenceServer, client: httpx.Client, **spec: Any) -> httpx.Response:
    return client.post(f"{server.origin}/__conformance/arm", json=spec)


def read_stream(client: httpx.Client, url: str, body: Json,
                headers: dict[str, str] | None = None) -> tuple[int, list[str], bool]:
    """(status, the data payloads received, whether the body ended properly)."""
    payloads: list[str] = []
    with client.stream("POST", url, json=body, headers=headers) as response:
        try:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    payloads.append(line[5:].strip())
        except httpx.RemoteProtocolError:
            return response.status_code, payloads, False
    return response.status_code, payloads, True


def openai_error(response: httpx.Response, status: int) -> Json:
    assert response.status_code == status, response.text
    body: Json = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body


# --------------------------------------------------------------------------------------------
# Records


def test_record_of_a_completion(server: ReferenceServer, client: httpx.Client) -> None:
    marker = new_marker()
    answer = client.post(server.base_url + "/chat/completions?trace=1",
                         json=ask(marker, "Repeat this key " + KEY))
    assert answer.status_code == 200
    record = only_record(server, client, marker)
    assert isinstance(record["seq"], int) and isinstance(record["time"], float)
    assert record["method"] == "POST" and record["path"] == "/v1/chat/completions"
    assert record["variant"] is None and record["query"] == "trace=1"
    assert record["markers"] == [marker] and record["injected"] is None
    assert record["headers"]["authorization"] == "Bearer <reference key>"
    assert record["headers"]["content-type"] == "application/json"
    assert record["body"]["model"] == "ref-1" and record["body_text"] is None
    assert "<reference key>" in record["body"]["messages"][0]["content"]
    response = record["response"]
    assert response["status"] == 200 and response["complete"] is True
    assert response["body"] == answer.json()
    assert response["events"] is None and response["event_names"] is None
    assert response["headers"]["x-request-id"] == answer.headers["x-request-id"]


def test_record_of_a_variant_stream(server: ReferenceServer, client: httpx.Client) -> None:
    marker = new_marker()
    url = server.variant_url(["sse_crlf"]) + "/chat/completions"
    status, payloads, ended = read_stream(client, url, ask(marker, stream=True))
    assert status == 200 and ended and payloads[-1] == "[DONE]"
    record = only_record(server, client, marker)
    assert record["path"] == "/v1/chat/completions" and record["variant"] == "sse_crlf"
    response = record["response"]
    assert response["complete"] is True and response["body"] is None
    assert response["events"] == [json.loads(p) if p != "[DONE]" else p for p in payloads]
    assert response["event_names"] is None


def test_record_of_a_messages_stream(server: ReferenceServer, client: httpx.Client) -> None:
    marker = new_marker()
    body = {"model": "ref-1", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": f"Say hello. {marker}"}]}
    with httpx.Client(headers={"x-api-key": KEY, **VERSION}, timeout=20) as anthropic:
        status, payloads, ended = read_stream(anthropic, server.base_url + "/messages", body)
    assert status == 200 and ended
    record = only_record(server, client, marker)
    assert record["headers"]["x-api-key"] == "<reference key>"
    assert "authorization" not in record["headers"]
    names = record["response"]["event_names"]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert len(names) == len(record["response"]["events"]) == len(payloads)


def test_other_keys_and_odd_bodies(server: ReferenceServer, client: httpx.Client) -> None:
    marker = new_marker()
    wrong = httpx.post(server.base_url + "/chat/completions", json=ask(marker),
                       headers={"authorization": "Bearer sk-not-the-key-000000000000"})
    assert wrong.status_code == 401
    record = only_record(server, client, marker)
    assert record["headers"]["authorization"] == "Bearer <other key>"
    assert record["response"]["status"] == 401
    assert record["response"]["body"]["error"]["code"] == "invalid_api_key"

    text_marker = new_marker()
    bad = client.post(server.base_url + "/chat/completions",
                      content=f"not json {text_marker}".encode(),
                      headers={"content-type": "text/plain"})
    assert bad.status_code == 400
    record = only_record(server, client, text_marker)
    assert record["body"] is None and record["body_text"] == f"not json {text_marker}"

    big_marker = new_marker()
    big = ask(big_marker, "x" * (300 * 1024))
    assert client.post(server.base_url + "/chat/completions", json=big).status_code == 200
    record = only_record(server, client, big_marker)
    assert record["body"] is None and len(record["body_text"]) == MAX_BODY_TEXT
    assert record["markers"] == [big_marker]


def test_long_stream_record_is_bounded(server: ReferenceServer, client: httpx.Client) -> None:
    marker = new_marker()
    status, payloads, ended = read_stream(
        client, server.base_url + "/chat/completions",
        ask(marker, "Count from 1 to 1000.", stream=True))
    assert status == 200 and ended and len(payloads) > 2000
    record = only_record(server, client, marker)
    events = record["response"]["events"]
    assert 0 < len(events) <= 2000 and record["response"]["complete"] is True
    assert len(json.dumps(record)) < 600 * 1024


def test_ring_buffer_drops_the_oldest() -> None:
    with ReferenceServer(api_key=KEY, record_limit=3) as small, \
            httpx.Client(headers=AUTH, timeout=20) as client:
        markers = [new_marker() for _ in range(5)]
        for marker in markers:
            assert client.post(small.base_url + "/chat/completions",
                               json=ask(marker)).status_code == 200
        kept = records(small, client)
        assert [r["markers"] for r in kept] == [[m] for m in markers[2:]]
        assert [r["seq"] for r in kept] == sorted(r["seq"] for r in kept)
        assert records(small, client, markers[0]) == []
        assert [r["markers"] for r in records(small, client, limit=2)] == \
            [[m] for m in markers[3:]]
        assert len(small.recorder.records()) == 3
        bad = client.get(f"{small.origin}/__conformance/records", params={"limit": "x"})
        openai_error(bad, 400)


# --------------------------------------------------------------------------------------------
# Armed misbehaviours


def test_cut_stream(server: ReferenceServer, client: httpx.Client) -> None:
    marker = new_marker()
    armed = arm(server, client, marker=marker, behaviour="cut_stream", after=2)
    assert armed.status_code == 200
    assert armed.json() == {"armed": {"marker": marker, "behaviour": "cut_stream", "after": 2,
                                      "retry_after": 1, "times": 1}}
    url = server.base_url + "/chat/completions"
    status, payloads, ended = read_stream(client, url, ask(marker, stream=True))
    assert status == 200 and not ended and len(payloads) == 2
    assert "[DONE]" not in payloads
    assert all(json.loads(p)["choices"][0]["finish_reason"] is None for p in payloads)
    first = only_record(server, client, marker)
    assert first["injected"] == "cut_stream"
    assert first["response"]["complete"] is False
    assert first["response"]["events"] == [json.loads(p) for p in payloads]
    # times=1: the next request with the marker is answered normally.
    status, payloads, ended = read_stream(client, url, ask(marker, stream=True))
    assert status == 200 and ended and payloads[-1] == "[DONE]"
    second = records(server, client, marker)[1]
    assert second["injected"] is None and second["response"]["complete"] is True


def test_cut_non_stream_answer(server: ReferenceServer, client: httpx.Client) -> None:
    marker = new_marker()
    assert arm(server, client, marker=marker, behaviour="cut_stream").status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(server.base_url + "/chat/completions", json=ask(marker))
    record = only_record(server, client, marker)
    assert record["injected"] == "cut_stream" and record["response"]["complete"] is False
    assert record["response"]["body"] is None and record["response"]["status"] == 200


def test_rate_limit_counts_times(server: ReferenceServer, client: httpx.Client) -> None:
    marker = new_marker()
    assert arm(server, client, marker=marker, behaviour="rate_limit", retry_after=7,
               times=2).status_code == 200
    url = server.base_url + "/chat/completions"
    for _ in range(2):
        limited = client.post(url, json=ask(marker))
        body = openai_error(limited, 429)
        assert limited.headers["retry-after"] == "7"
        assert limited.headers["x-ratelimit-remaining-requests"] == "0"
        assert limited.headers["x-ratelimit-remaining-tokens"] == "0"
        assert body["error"]["message"].startswith("Rate limit reached for requests")
        assert body["error"]["type"] == "requests" and body["error"]["param"] is None
        assert body["error"]["code"] == "rate_limit_exceeded"
    assert client.post(url, json=ask(marker)).status_code == 200
    found = records(server, client, marker)
    assert [r["injected"] for r in found] == ["rate_limit", "rate_limit", None]
    assert [r["response"]["status"] for r in found] == [429, 429, 200]


def test_server_error_and_bad_request(server: ReferenceServer, client: httpx.Client) -> None:
    url = server.base_url + "/chat/completions"
    marker = new_marker()
    assert arm(server, client, marker=marker, behaviour="server_error").status_code == 200
    assert openai_error(client.post(url, json=ask(marker)), 500) == {"error": {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error", "param": None, "code": None}}
    marker = new_marker()
    assert arm(server, client, marker=marker, behaviour="bad_request").status_code == 200
    assert openai_error(client.post(url, json=ask(marker, stream=True)), 400) == {"error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9021 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages",
        "code": "context_length_exceeded"}}
    assert only_record(server, client, marker)["injected"] == "bad_request"


def test_armed_errors_on_messages_use_anthropic_shape(server: ReferenceServer,
                                                      client: httpx.Client) -> None:
    expected = {"rate_limit": (429, "rate_limit_error"), "server_error": (500, "api_error"),
                "bad_request": (400, "invalid_request_error")}
    for behaviour, (status, kind) in expected.items():
        marker = new_marker()
        assert arm(server, client, marker=marker, behaviour=behaviour).status_code == 200
        answer = client.post(server.base_url + "/messages", headers=VERSION, json={
            "model": "ref-1", "max_tokens": 8,
            "messages": [{"role": "user", "content": f"Hi {marker}"}]})
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["type"] == "error" and body["error"]["type"] == kind
        assert isinstance(body["error"]["message"], str)
        if behaviour == "rate_limit":
            assert answer.headers["retry-after"] == "1"


@pytest.mark.parametrize("spec", [
    {"behaviour": "explode"},
    {"behaviour": "rate_limit", "times": 0},
    {"behaviour": "cut_stream", "after": "2"},
    {"behaviour": "rate_limit", "retry_after": -1},
    {"behaviour": "rate_limit", "colour": "red"},
    {"behaviour": "rate_limit", "marker": "not-a-marker"},
], ids=["unknown-behaviour", "times-0", "after-string", "negative-retry", "unknown-field",
        "bad-marker"])
def test_arm_refuses_bad_requests(server: ReferenceServer, client: httpx.Client,
                                  spec: Json) -> None:
    body = openai_error(arm(server, client, **{"marker": new_marker(), **spec}), 400)
    assert body["error"]["type"] == "invalid_request_error"


def test_control_paths_need_the_key(server: ReferenceServer) -> None:
    records_url = f"{server.origin}/__conformance/records"
    arm_url = f"{server.origin}/__conformance/arm"
    spec = {"marker": new_marker(), "behaviour": "server_error"}
    openai_error(httpx.get(records_url), 401)
    openai_error(httpx.post(arm_url, json=spec), 401)
    wrong = httpx.get(records_url, headers={"authorization": "Bearer sk-wrong-000000000000"})
    assert openai_error(wrong, 401)["error"]["code"] == "invalid_api_key"
    assert httpx.get(records_url, headers={"x-api-key": KEY}).status_code == 200
    with ReferenceServer() as open_server:  # no key: no authentication anywhere
        assert httpx.get(f"{open_server.origin}/__conformance/records").status_code == 200


# --------------------------------------------------------------------------------------------
# Headers and models


def test_openai_headers_on_every_answer(server: ReferenceServer, client: httpx.Client) -> None:
    marker = new_marker()
    answers = [
        client.get(server.base_url + "/models"),
        client.post(server.base_url + "/chat/completions", json=ask(marker)),
        client.post(server.variant_url(["errors_as_html"]) + "/chat/completions", json={}),
        httpx.get(server.base_url + "/models"),  # 401
        client.get(server.base_url + "/nowhere"),  # 404
        client.post(server.base_url + "/chat/completions", json=ask(marker, stream=True)),
        client.post(server.base_url + "/messages", headers=VERSION, json={
            "model": "ref-1", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}),
    ]
    ids = set()
    for answer in answers:
        headers = answer.headers
        assert re.fullmatch(r"req_[0-9a-f]{32}", headers["x-request-id"]), headers
        ids.add(headers["x-request-id"])
        assert re.fullmatch(r"\d+", headers["openai-processing-ms"])
        assert headers["openai-version"] == "2020-10-01"
        for name in RATE_LIMIT_HEADERS:
            assert name in headers, (name, answer.request.url)
        assert re.fullmatch(r"\d+", headers["x-ratelimit-remaining-requests"])
        assert re.fullmatch(r"\d+m?s", headers["x-ratelimit-reset-requests"])
        assert re.fullmatch(r"\d+m?s", headers["x-ratelimit-reset-tokens"])
    assert len(ids) == len(answers)
    assert [a.status_code for a in answers] == [200, 200, 400, 401, 404, 200, 200]


def test_second_model(server: ReferenceServer, client: httpx.Client) -> None:
    listed = [m["id"] for m in client.get(server.base_url + "/models").json()["data"]]
    assert "ref-2" in listed and "ref-2-2026-11-01" in listed
    assert client.get(server.base_url + "/models/ref-2").json()["id"] == "ref-2"
    marker = new_marker()
    answer = client.post(server.base_url + "/chat/completions",
                         json={**ask(marker), "model": "ref-2"}).json()
    assert answer["model"] == "ref-2-2026-11-01"
    assert answer["choices"][0]["message"]["content"] == "Paris"
    assert only_record(server, client, marker)["body"]["model"] == "ref-2"
    message = client.post(server.base_url + "/messages", headers=VERSION, json={
        "model": "ref-2", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]})
    assert message.json()["model"] == "ref-2-2026-11-01"


def test_starts_on_a_fixed_port_with_a_key() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ReferenceServer(api_key=KEY, port=port) as fixed:
        assert fixed.base_url == f"http://127.0.0.1:{port}/v1"
        assert httpx.get(fixed.base_url + "/models", headers=AUTH).status_code == 200
        assert httpx.get(fixed.base_url + "/models").status_code == 401


# --------------------------------------------------------------------------------------------
# Exposed beyond loopback


def test_serve_reference_refuses_an_open_non_loopback_host() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "serve-reference", "--host", "0.0.0.0",
         "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--api-key" in lines[0], done.stderr
    assert done.stdout == ""


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.0.2.7", "example.com"))


class _ImageHost(ThreadedServer):
    """Another server with a red image, counting how often it is fetched."""

    def __init__(self) -> None:
        self.hits = 0

        async def image(request: Request) -> Response:
            self.hits += 1
            return Response(images.solid_png(images.COLORS["red"]), media_type="image/png")

        super().__init__(Starlette(routes=[Route("/red.png", image)]))


def _vision(url: str) -> Json:
    return {"model": "ref-1", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What colour is this image? Answer with one word."},
        {"type": "image_url", "image_url": {"url": url}}]}]}


def test_exposed_server_fetches_only_its_own_assets() -> None:
    exposed = ThreadedServer(create_app(KEY, fetch_remote_images=False))
    with exposed, _ImageHost() as other, httpx.Client(headers=AUTH, timeout=20) as client:
        url = exposed.origin + "/v1/chat/completions"
        own = client.post(url, json=_vision(f"{exposed.origin}/assets/color/green.png"))
        assert own.json()["choices"][0]["message"]["content"] == "Green."
        by_name = client.post(url, json=_vision(
            f"http://localhost:{exposed.port}/assets/color/blue.jpg?size=64"))
        assert by_name.json()["choices"][0]["message"]["content"] == "Blue."
        not_image = client.post(url, json=_vision(f"{exposed.origin}/assets/not-an-image.png"))
        assert openai_error(not_image, 400)["error"]["code"] == "invalid_image_url"
        refused = client.post(url, json=_vision(f"{other.origin}/red.png"))
        body = openai_error(refused, 400)
        assert body["error"]["code"] == "invalid_image_url"
        assert body["error"]["message"].startswith("Error while downloading http://")
        assert other.hits == 0
    with ReferenceServer(api_key=KEY) as loopback, _ImageHost() as other, \
            httpx.Client(headers=AUTH, timeout=20) as client:
        fetched = client.post(loopback.base_url + "/chat/completions",
                              json=_vision(f"{other.origin}/red.png"))
        assert fetched.json()["choices"][0]["message"]["content"] == "Red."
        assert other.hits == 1
