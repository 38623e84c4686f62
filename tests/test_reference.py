"""Tests of the reference provider over real sockets (OpenAI Chat Completions API reference)."""

from __future__ import annotations

import base64
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from conformance import tokens
from conformance.reference import images, streaming
from conformance.reference.faults import (
    FAULTS,
    HIDDEN_SYSTEM_PROMPT,
    QUIRKS,
    REFERENCE_MODELS,
    REFERENCE_SNAPSHOT,
    Variant,
    parse_variant,
    variant_spec,
)
from conformance.reference.model import tokenize
from conformance.reference.server import ReferenceServer
from conformance.sse import SSEDecoder
from conformance.validation import violations

KEY = "sk-test-reference-0123456789abcdef"
Json = dict[str, Any]

WEATHER_TOOL: Json = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
TIME_TOOL: Json = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the current local time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as http:
        yield http


def user(text: str) -> list[Json]:
    return [{"role": "user", "content": text}]


class Api:
    """Small helper over httpx for one server and optional variant."""

    def __init__(self, server: ReferenceServer, client: httpx.Client) -> None:
        self.server = server
        self.client = client

    def url(self, faults: tuple[str, ...] = (), latency_ms: int = 0) -> str:
        return self.server.variant_url(faults, latency_ms)

    def post(self, body: Any, *faults: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(self.url(faults) + "/chat/completions", json=body, **kwargs)

    def chat(self, messages: Any, *faults: str, **params: Any) -> httpx.Response:
        return self.post({"model": "ref-1", "messages": messages, **params}, *faults)

    def ok(self, messages: Any, *faults: str, **params: Any) -> Json:
        response = self.chat(messages, *faults, **params)
        assert response.status_code == 200, response.text
        body: Json = response.json()
        return body

    def text(self, messages: Any, *faults: str, **params: Any) -> str:
        content = self.ok(messages, *faults, **params)["choices"][0]["message"]["content"]
        assert isinstance(content, str)
        return content

    def stream(self, messages: Any, *faults: str, **params: Any) -> tuple[httpx.Response,
                                                                             list[Any]]:
        response = self.chat(messages, *faults, stream=True, **params)
        return response, sse_events(response.text)


@pytest.fixture(scope="module")
def api(server: ReferenceServer, client: httpx.Client) -> Api:
    return Api(server, client)


def sse_events(text: str) -> list[Any]:
    """Data payloads of an SSE body: JSON objects, or the string "[DONE]"."""
    events: list[Any] = []
    for block in re.split(r"\r?\n\r?\n", text):
        data = [line[5:].removeprefix(" ") for line in re.split(r"\r?\n", block)
                if line.startswith("data:")]
        if data:
            payload = "\n".join(data)
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def stream_text(events: list[Any], index: int = 0) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for event in events if isinstance(event, dict)
        for choice in event["choices"] if choice["index"] == index)


def assert_error(response: httpx.Response, status: int, code: str | None = None,
                 param: str | None = None) -> Json:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: Json = response.json()
    assert violations("error", body) == []
    if code is not None:
        assert body["error"]["code"] == code, body
    if param is not None:
        assert body["error"]["param"] == param, body
    return body


# --------------------------------------------------------------------------------------------
# Server and variants


def test_variant_parsing() -> None:
    assert parse_variant("drop_system+latency-50+sse_crlf") == Variant(
        frozenset({"drop_system", "sse_crlf"}), 50)
    with pytest.raises(ValueError, match="nope"):
        parse_variant("drop_system+nope")
    assert variant_spec(["sse_crlf", "drop_system"], 10) == "drop_system+sse_crlf+latency-10"
    assert not set(FAULTS) & set(QUIRKS)


def test_variant_url(server: ReferenceServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    assert server.base_url == base + "/v1"
    assert server.variant_url() == server.base_url
    assert server.variant_url(["no_done", "drop_system"], 5) == (
        base + "/variant/drop_system+no_done+latency-5/v1")
    with pytest.raises(ValueError, match="bogus"):
        server.variant_url(["bogus"])


def test_bad_variant_path_is_404_envelope(api: Api, server: ReferenceServer) -> None:
    response = api.client.get(f"http://127.0.0.1:{server.port}/variant/bogus/v1/models")
    assert "bogus" in assert_error(response, 404)["error"]["message"]
    assert_error(api.client.get(f"http://127.0.0.1:{server.port}/v1/nothing"), 404)


def test_server_without_key_and_restart() -> None:
    srv = ReferenceServer().start()
    thread = srv._thread
    try:
        assert srv.port > 0
        response = httpx.get(srv.base_url + "/models")
        assert response.status_code == 200
    finally:
        srv.stop()
    # (Not probing the port: under xdist another test's server may already have taken it.)
    assert thread is not None and not thread.is_alive()


def test_serve_blocking_cli_entry_point() -> None:
    code = "from conformance.reference.server import serve; serve('127.0.0.1', 0, None)"
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               cwd=root)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"reference provider listening on (http://127\.0\.0\.1:\d+/v1)", line)
        assert match, line
        assert httpx.get(match.group(1) + "/models").status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_latency(api: Api) -> None:
    started = time.monotonic()
    response = api.client.get(api.url(latency_ms=200) + "/models")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


# --------------------------------------------------------------------------------------------
# Auth and models


def test_auth(api: Api, server: ReferenceServer) -> None:
    missing = httpx.get(server.base_url + "/models")
    body = assert_error(missing, 401)
    assert body["error"]["code"] is None
    assert "didn't provide an API key" in body["error"]["message"]
    wrong_key = "sk-wrong-key-0000000000000000000000009999"
    wrong = httpx.get(server.base_url + "/models",
                      headers={"Authorization": f"Bearer {wrong_key}"})
    body = assert_error(wrong, 401, "invalid_api_key")
    assert "sk-...9999" in body["error"]["message"]
    assert wrong_key not in wrong.text and KEY not in wrong.text
    chat = httpx.post(server.base_url + "/chat/completions",
                      json={"model": "ref-1", "messages": user("hi")})
    assert chat.status_code == 401
    assert api.client.get(server.base_url + "/models").status_code == 200


def test_models(api: Api) -> None:
    listed = api.client.get(api.url() + "/models").json()
    assert violations("models.list", listed) == []
    ids = [m["id"] for m in listed["data"]]
    assert ids == ["ref-1", REFERENCE_SNAPSHOT, "ref-2", "ref-2-2026-11-01",
                   "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o", "gpt-4o-2024-08-06",
                   "gpt-4", "gpt-4-0613"]
    assert set(REFERENCE_MODELS) == {"ref-1", "ref-2"}
    assert all(m["owned_by"] == "conformance" for m in listed["data"])
    one = api.client.get(api.url() + "/models/ref-1").json()
    assert violations("model", one) == [] and one["id"] == "ref-1"
    missing = api.client.get(api.url() + "/models/gpt-nope")
    assert_error(missing, 404, "model_not_found")


# --------------------------------------------------------------------------------------------
# Completions


def test_completion_shape(api: Api) -> None:
    body = api.ok(user("What is the capital of France? Answer with one word."))
    assert violations("chat.completion", body) == []
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == REFERENCE_SNAPSHOT
    assert body["system_fingerprint"] == "fp_reference"
    assert body["service_tier"] == "default"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Paris", "refusal": None,
                                 "annotations": []}
    assert choice["finish_reason"] == "stop" and choice["logprobs"] is None
    usage = body["usage"]
    text = "What is the capital of France? Answer with one word."
    assert usage["prompt_tokens"] == len(tokenize(text)) + 4 + 3
    assert usage["completion_tokens"] == 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_tokenizer_round_trips() -> None:
    text = "Hello, wörld!  It's 3.14 — ok?\n"
    assert "".join(tokenize(text)) == text
    assert tokenize("Count to 3") == ["Count", " to", " 3"]


PROMPTS: list[tuple[list[Json], str]] = [
    (user("What is the capital of France? Answer with one word."), "Paris"),
    (user("what's the capital of japan? answer with one word"), "Tokyo"),
    (user("What is the capital of Germany? Answer with one word."), "Berlin"),
    ([{"role": "system", "content": "The secret word is kiwi."},
      {"role": "user", "content": "What is the secret word? Reply with the word only."}],
     "kiwi"),
    ([{"role": "developer", "content": "The secret word is mango."},
      {"role": "user", "content": "What is the secret word? Reply with the word only."}],
     "mango"),
    ([{"role": "user", "content": [
        {"type": "text", "text": "The secret word is plum."},
        {"type": "text", "text": "What is the secret word? Reply with the word only."}]}],
     "plum"),
    ([{"role": "user", "content": "Remember this number: 42."},
      {"role": "assistant", "content": "OK."},
      {"role": "user", "content": "What number did I ask you to remember? Reply with the "
                                  "number only."}], "42"),
    (user("Count from 1 to 10, separated by commas."), "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"),
    (user("Count from 1 to 5"), "1, 2, 3, 4, 5"),
    (user("Reply with exactly: Hello, world!"), "Hello, world!"),
    (user("Repeat after me: the quick brown fox"), "the quick brown fox"),
    (user("Say 'hello there'"), "hello there"),
    (user("What is 2+3?"), "5"),
    (user("What is 17 + 25? Reply with the number only."), "42"),
    (user("Reply with the word 'yes'."), "yes"),
    (user("Reply with OK."), "OK"),
    (user("Is Paris the capital of France? Answer yes or no."), "Yes."),
    ([{"role": "user", "content": "My name is Alice."},
      {"role": "assistant", "content": "Nice to meet you!"},
      {"role": "user", "content": "What is my name?"}], "Your name is Alice."),
    (user("How many legs does a spider have?"), "8"),
    (user("Tell me something."), "I am the conformance reference model."),
]


@pytest.mark.parametrize(("messages", "expected"), PROMPTS,
                         ids=[str(i) for i in range(len(PROMPTS))])
def test_prompt_families(api: Api, messages: list[Json], expected: str) -> None:
    assert api.text(messages) == expected


def test_secret_unknown_without_context(api: Api) -> None:
    answer = api.text(user("What is the secret word? Reply with the word only."))
    assert "kiwi" not in answer and "know" in answer


def test_story_is_long(api: Api) -> None:
    body = api.ok(user("Write a short story about a robot."))
    assert body["usage"]["completion_tokens"] >= 60
    assert "robot" in body["choices"][0]["message"]["content"]


def test_stop_and_max_tokens(api: Api) -> None:
    count = user("Count from 1 to 10, separated by commas.")
    body = api.ok(count, stop="7")
    assert body["choices"][0]["message"]["content"] == "1, 2, 3, 4, 5, 6, "
    assert body["choices"][0]["finish_reason"] == "stop"
    assert api.text(count, stop=["xyzzy", ", 4"]) == "1, 2, 3"
    body = api.ok(user("Write a short story about a robot."), max_tokens=5)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    assert len(tokenize(body["choices"][0]["message"]["content"])) == 5
    body = api.ok(count, max_tokens=9, max_completion_tokens=3)
    assert body["choices"][0]["message"]["content"] == "1, 2"
    assert body["usage"]["completion_tokens"] == 3


def test_n_choices(api: Api) -> None:
    body = api.ok(user("Count from 1 to 3"), n=3)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert {c["message"]["content"] for c in body["choices"]} == {"1, 2, 3"}
    assert body["usage"]["completion_tokens"] == 3 * 5


def test_logprobs(api: Api) -> None:
    body = api.ok(user("Count from 1 to 3"), logprobs=True, top_logprobs=3)
    content = body["choices"][0]["logprobs"]["content"]
    assert "".join(e["token"] for e in content) == "1, 2, 3"
    for entry in content:
        assert entry["logprob"] <= 0 and bytes(entry["bytes"]) == entry["token"].encode()
        assert len(entry["top_logprobs"]) == 3
        assert entry["top_logprobs"][0]["token"] == entry["token"]
        assert len({t["token"] for t in entry["top_logprobs"]}) == 3
    assert violations("chat.completion", body) == []


# --------------------------------------------------------------------------------------------
# Streaming


def test_stream_sequence(api: Api) -> None:
    response, events = api.stream(user("Count from 1 to 3"))
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(violations("chat.completion.chunk", c) == [] for c in chunks)
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "",
                                                "refusal": None}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == [
        "1", ",", " 2", ",", " 3"]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 6 + ["stop"]
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert all("usage" not in c for c in chunks)


def test_stream_include_usage_and_n(api: Api) -> None:
    _, events = api.stream(user("Count from 1 to 3"), n=2,
                           stream_options={"include_usage": True}, max_tokens=3)
    chunks = events[:-1]
    assert all(c["usage"] is None for c in chunks[:-1])
    final = chunks[-1]
    assert final["choices"] == []
    assert final["usage"]["completion_tokens"] == 6
    assert final["usage"]["total_tokens"] == (final["usage"]["prompt_tokens"] + 6)
    indexes = [c["choices"][0]["index"] for c in chunks[:-1]]
    assert indexes[:4] == [0, 1, 0, 1]
    assert stream_text(events, 0) == stream_text(events, 1) == "1, 2"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1]]
    assert finishes[-2:] == ["length", "length"]


# --------------------------------------------------------------------------------------------
# Tools


def _calls(body: Json) -> list[Json]:
    calls: list[Json] = body["choices"][0]["message"].get("tool_calls") or []
    return calls


def test_tools_auto(api: Api) -> None:
    tools = [WEATHER_TOOL, TIME_TOOL]
    body = api.ok(user("What's the weather like in Paris today?"), tools=tools)
    assert violations("chat.completion", body) == []
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = _calls(body)
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    time_call = _calls(api.ok(user("What time is it in Tokyo?"), tools=tools))[0]
    assert time_call["function"]["name"] == "get_time"
    assert json.loads(time_call["function"]["arguments"]) == {"timezone": "Asia/Tokyo"}
    text = api.ok(user("What is the capital of France? Answer with one word."), tools=tools)
    assert _calls(text) == [] and text["choices"][0]["message"]["content"] == "Paris"


def test_tools_choice_modes(api: Api) -> None:
    tools = [WEATHER_TOOL, TIME_TOOL]
    required = api.ok(user("Hello!"), tools=tools, tool_choice="required")
    assert required["choices"][0]["finish_reason"] == "tool_calls"
    assert _calls(required)[0]["function"]["name"] == "get_weather"
    named = api.ok(user("What's the weather in Paris?"), tools=tools,
                   tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert named["choices"][0]["finish_reason"] == "stop"
    assert _calls(named)[0]["function"]["name"] == "get_time"
    none = api.ok(user("What's the weather in Paris?"), tools=tools, tool_choice="none")
    assert _calls(none) == [] and "Paris" in none["choices"][0]["message"]["content"]
    unknown = api.chat(user("hi"), tools=tools,
                       tool_choice={"type": "function", "function": {"name": "nope"}})
    assert_error(unknown, 400, param="tool_choice")
    allowed = api.ok(user("What's the weather in Paris?"), tools=tools, tool_choice={
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [
            {"type": "function", "function": {"name": "get_time"}}]}})
    assert _calls(allowed)[0]["function"]["name"] == "get_time"


def test_tools_parallel(api: Api) -> None:
    question = user("What is the weather in Paris and in Tokyo?")
    calls = _calls(api.ok(question, tools=[WEATHER_TOOL]))
    assert [json.loads(c["function"]["arguments"])["city"] for c in calls] == ["Paris", "Tokyo"]
    assert len({c["id"] for c in calls}) == 2
    single = _calls(api.ok(question, tools=[WEATHER_TOOL], parallel_tool_calls=False))
    assert len(single) == 1


def test_tools_streamed(api: Api) -> None:
    _, events = api.stream(user("What is the weather in Paris and in Tokyo?"),
                           tools=[WEATHER_TOOL])
    chunks = events[:-1]
    assert all(violations("chat.completion.chunk", c) == [] for c in chunks)
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    assert first["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    arguments: dict[int, str] = {}
    ids: dict[int, str] = {}
    for chunk in chunks:
        for call in chunk["choices"][0]["delta"].get("tool_calls") or []:
            arguments[call["index"]] = (arguments.get(call["index"], "")
                                        + call["function"].get("arguments", ""))
            if "id" in call:
                assert call["index"] not in ids
                ids[call["index"]] = call["id"]
    assert sorted(ids) == [0, 1]
    assert [json.loads(arguments[i])["city"] for i in (0, 1)] == ["Paris", "Tokyo"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_round_trip(api: Api) -> None:
    messages = [
        *user("What's the weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_abc", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_abc",
         "content": '{"temperature": 22, "condition": "sunny"}'},
    ]
    body = api.ok(messages, tools=[WEATHER_TOOL])
    assert body["choices"][0]["message"]["content"] == "It is 22 degrees and sunny in Paris."
    assert body["choices"][0]["finish_reason"] == "stop"
    orphan = [*user("hi"), {"role": "tool", "tool_call_id": "call_x", "content": "1"}]
    body = assert_error(api.chat(orphan), 400)
    assert "role 'tool' must be a response" in body["error"]["message"]


def test_legacy_functions(api: Api) -> None:
    functions = [WEATHER_TOOL["function"]]
    body = api.ok(user("What's the weather in Berlin?"), functions=functions)
    message = body["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "function_call"
    assert message["function_call"]["name"] == "get_weather"
    assert json.loads(message["function_call"]["arguments"])["city"] == "Berlin"
    follow = [*user("What's the weather in Berlin?"),
              {"role": "assistant", "content": None, "function_call": message["function_call"]},
              {"role": "function", "name": "get_weather", "content": '{"temperature": 9}'}]
    assert api.text(follow, functions=functions) == "It is 9 degrees in Berlin."


# --------------------------------------------------------------------------------------------
# JSON modes


def test_json_object(api: Api) -> None:
    fruits = user("List three fruits with name and color as JSON.")
    content = api.text(fruits, response_format={"type": "json_object"})
    data = json.loads(content)
    assert len(data["fruits"]) == 3 and set(data["fruits"][0]) == {"name", "color"}
    generic = json.loads(api.text(user("Say hi, in json"), response_format={"type": "json_object"}))
    assert isinstance(generic, dict)
    missing_word = api.chat(user("List three fruits."), response_format={"type": "json_object"})
    assert_error(missing_word, 400, param="messages")
    _, events = api.stream(fruits, response_format={"type": "json_object"})
    assert stream_text(events) == content


def test_json_schema(api: Api) -> None:
    schema: Json = {
        "type": "object",
        "properties": {
            "country": {"type": "string"}, "capital": {"type": "string"},
            "population": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 2},
            "kind": {"anyOf": [{"type": "string", "enum": ["city", "town"]}, {"type": "null"}]},
        },
        "required": ["country", "capital", "population", "tags", "kind"],
        "additionalProperties": False,
        "$defs": {"tag": {"type": "object", "properties": {"label": {"type": "string"}},
                          "required": ["label"], "additionalProperties": False}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "capital", "schema": schema,
                                                  "strict": True}}
    data = json.loads(api.text(user("What is the capital of France?"), response_format=fmt))
    jsonschema.validate(data, schema)
    assert data["capital"] == "Paris" and data["country"] == "France"
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": loose, "strict": True}}
    assert_error(api.chat(user("hi"), response_format=bad), 400)


# --------------------------------------------------------------------------------------------
# Vision


def _image_part(url: str) -> Json:
    return {"type": "image_url", "image_url": {"url": url, "detail": "low"}}


def _ask(question: str, *urls: str) -> list[Json]:
    return [{"role": "user", "content": [{"type": "text", "text": question},
                                         *(_image_part(u) for u in urls)]}]


def test_vision_data_urls(api: Api) -> None:
    red = images.data_url(images.solid_png(images.COLORS["red"]))
    blue = images.data_url(images.solid_jpeg(images.COLORS["blue"]), "image/jpeg")
    assert api.text(_ask("What colour is this image? Answer with one word.", red)) == "Red."
    assert api.text(_ask("What color is this image? Answer with one word.", blue)) == "Blue."
    two = api.ok(_ask("What colours are these two images, in order? Answer with two words.",
                      red, blue))
    assert two["choices"][0]["message"]["content"] == "red, blue"
    assert two["usage"]["prompt_tokens"] >= 2 * 85
    later = [*user("Hello!"), {"role": "assistant", "content": "Hi!"},
             *_ask("What colour is this image? Answer with one word.", blue)]
    assert api.text(later) == "Blue."


def test_vision_url_and_errors(api: Api, server: ReferenceServer) -> None:
    asset = f"http://127.0.0.1:{server.port}/assets/color/green.png"
    assert api.text(_ask("What colour is this image?", asset)) == "Green."
    corrupt = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
    assert_error(api.chat(_ask("What colour?", corrupt)), 400, "invalid_image_format")
    assert_error(api.chat(_ask("What colour?", "http://127.0.0.1:1/x.png")), 400,
                 "invalid_image_url")
    not_image = f"http://127.0.0.1:{server.port}/assets/not-an-image.png"
    assert_error(api.chat(_ask("What colour?", not_image)), 400, "invalid_image_url")
    audio = [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]
    assert_error(api.chat(audio), 400, "unsupported_value")


def test_assets(api: Api, server: ReferenceServer) -> None:
    response = httpx.get(f"http://127.0.0.1:{server.port}/assets/color/orange.jpg")
    assert response.headers["content-type"] == "image/jpeg"
    assert images.dominant_color(response.content) == "orange"


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(("body", "status", "code", "param"), [
    ({"model": "ref-1"}, 400, "missing_required_parameter", "messages"),
    ({"model": "ref-1", "messages": "hi"}, 400, "invalid_type", "messages"),
    ({"model": "ref-1", "messages": [{"role": "wizard", "content": "hi"}]}, 400,
     "invalid_value", "messages[0].role"),
    ({"model": "ref-1", "messages": [{"role": "user", "content": "hi"}], "temperature": 5},
     400, "invalid_value", "temperature"),
    ({"model": "ref-1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "5"},
     400, "invalid_type", "max_tokens"),
    ({"model": "ref-1", "messages": [{"role": "user", "content": "hi"}], "foo": 1},
     400, None, None),
    ({"model": "ref-1", "messages": [{"role": "user", "content": "hi"}],
      "stream_options": {"include_usage": True}}, 400, None, "stream_options"),
    ({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, 404,
     "model_not_found", None),
    ([{"model": "ref-1", "messages": [{"role": "user", "content": "hi"}]}], 400, "invalid_type",
     None),
    ({"model": "ref-1", "messages": []}, 400, "empty_array", "messages"),
    ({"model": "ref-1", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"},
     400, "invalid_type", "temperature"),
], ids=["missing", "type", "role", "temperature", "max_tokens", "unknown", "stream_options",
        "model", "array_body", "empty_messages", "temperature_type"])
def test_request_errors(api: Api, body: Any, status: int, code: str | None,
                        param: str | None) -> None:
    error = assert_error(api.post(body), status, code, param)["error"]
    assert error["type"] == "invalid_request_error"
    if param is None:
        assert error["param"] is None
    if isinstance(body, list):
        return
    if "foo" in body:
        assert error["message"] == "Unrecognized request argument supplied: foo"
    if body["model"] == "nope":
        assert error["message"] == ("The model `nope` does not exist or you do not have access "
                                    "to it.")
    if body.get("messages") == []:
        assert error["message"] == ("Invalid 'messages': empty array. Expected an array with "
                                    "minimum length 1, but got an empty array instead.")


def test_malformed_json(api: Api) -> None:
    response = api.client.post(api.url() + "/chat/completions", content=b'{"model": "x", [')
    assert "could not parse the JSON body" in assert_error(response, 400)["error"]["message"]


# --------------------------------------------------------------------------------------------
# Anthropic Messages API (POST /v1/messages; https://docs.anthropic.com/en/api/messages)

VERSION = {"anthropic-version": "2023-06-01"}
CAPITAL = user("What is the capital of France? Answer with one word.")


def _messages(server: ReferenceServer, body: Any, *faults: str,
              headers: dict[str, str] | None = None) -> httpx.Response:
    merged = {"authorization": f"Bearer {KEY}", **VERSION, **(headers or {})}
    return httpx.post(server.variant_url(faults) + "/messages", json=body,
                      headers={k: v for k, v in merged.items() if v}, timeout=10)


def _anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    message: str = body["error"]["message"]
    return message


def test_messages_answer_is_a_message(server: ReferenceServer) -> None:
    from conformance.checks.messages_api import MESSAGE_SCHEMA

    response = _messages(server, {"model": "ref-1", "max_tokens": 16, "messages": CAPITAL})
    assert response.status_code == 200, response.text
    body = response.json()
    jsonschema.validate(body, MESSAGE_SCHEMA)
    assert body["id"].startswith("msg_") and body["model"] == REFERENCE_SNAPSHOT
    assert body["content"] == [{"type": "text", "text": "Paris"}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)
    assert body["usage"]["output_tokens"] == 1 and body["usage"]["input_tokens"] > 5
    system = _messages(server, {"model": "ref-1", "max_tokens": 16,
                                "system": [{"type": "text", "text": "The secret word is kiwi."}],
                                "messages": SECRET[1:]})
    assert system.json()["content"][0]["text"] == "kiwi"


def test_messages_auth_takes_x_api_key(server: ReferenceServer) -> None:
    body = {"model": "ref-1", "max_tokens": 4, "messages": CAPITAL}
    assert _messages(server, body, headers={"authorization": "", "x-api-key": KEY}
                     ).status_code == 200
    missing = _messages(server, body, headers={"authorization": ""})
    assert "x-api-key" in _anthropic_error(missing, 401, "authentication_error")
    wrong = _messages(server, body, headers={"authorization": "", "x-api-key": "sk-wrong-123456"})
    assert _anthropic_error(wrong, 401, "authentication_error") == "invalid x-api-key"
    # The OpenAI routes keep OpenAI's Bearer-only authentication.
    chat = httpx.post(server.base_url + "/chat/completions", headers={"x-api-key": KEY},
                      json={"model": "ref-1", "messages": CAPITAL})
    assert chat.status_code == 401 and "error" in chat.json() and "type" not in chat.json()


@pytest.mark.parametrize(("body", "headers", "status", "fragment"), [
    ({"model": "ref-1", "max_tokens": 8, "messages": CAPITAL}, {"anthropic-version": ""}, 400,
     "anthropic-version: header is required"),
    ({"model": "ref-1", "messages": CAPITAL}, None, 400, "max_tokens: Field required"),
    ({"model": "ref-1", "max_tokens": 8}, None, 400, "messages: Field required"),
    ({"model": "ref-1", "max_tokens": 8, "messages": CAPITAL, "n": 2}, None, 400,
     "n: Extra inputs are not permitted"),
    ({"model": "ref-1", "max_tokens": 8, "messages": [{"role": "system", "content": "x"}]}, None,
     400, "messages.0.role"),
    ({"model": "ref-1", "max_tokens": 8, "messages": CAPITAL, "temperature": 1.5}, None, 400,
     "temperature"),
    ({"model": "nope", "max_tokens": 8, "messages": CAPITAL}, None, 404, "model: nope"),
], ids=["no-version", "no-max_tokens", "no-messages", "extra-field", "system-role",
        "temperature", "unknown-model"])
def test_messages_request_errors(server: ReferenceServer, body: Json,
                                 headers: dict[str, str] | None, status: int,
                                 fragment: str) -> None:
    kind = "not_found_error" if status == 404 else "invalid_request_error"
    assert fragment in _anthropic_error(_messages(server, body, headers=headers), status, kind)


def test_messages_stop_sequences_and_max_tokens(server: ReferenceServer) -> None:
    count = {"model": "ref-1", "max_tokens": 48, "messages": COUNT}
    stopped = _messages(server, {**count, "stop_sequences": ["xyzzy", "7"]}).json()
    assert stopped["content"][0]["text"] == "1, 2, 3, 4, 5, 6, "
    assert (stopped["stop_reason"], stopped["stop_sequence"]) == ("stop_sequence", "7")
    cut = _messages(server, {**count, "max_tokens": 5}).json()
    assert (cut["stop_reason"], cut["usage"]["output_tokens"]) == ("max_tokens", 5)
    # max_tokens reached before the stop sequence: max_tokens wins.
    both = _messages(server, {**count, "max_tokens": 3, "stop_sequences": ["7"]}).json()
    assert (both["stop_reason"], both["stop_sequence"]) == ("max_tokens", None)


def _named_events(body: bytes) -> list[tuple[str | None, Json]]:
    decoder = SSEDecoder()
    events = decoder.feed(body) + decoder.close()
    return [(event.event, json.loads(event.data)) for event in events]


@pytest.mark.parametrize("quirk", [(), ("sse_no_space",)], ids=["faithful", "sse_no_space"])
def test_messages_stream_events(server: ReferenceServer, quirk: tuple[str, ...]) -> None:
    response = _messages(server, {"model": "ref-1", "max_tokens": 48, "messages": COUNT,
                                  "stream": True}, *quirk)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert ("event:message_start" in response.text) == bool(quirk)
    events = _named_events(response.content)
    assert all(name == payload["type"] for name, payload in events)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(p["delta"]["text"] for n, p in events if n == "content_block_delta")
    assert text == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == len(tokenize(text))
    assert "[DONE]" not in response.text


# --------------------------------------------------------------------------------------------
# Faults: one probe each, proving the deviation is really served


COUNT = user("Count from 1 to 10, separated by commas.")
SECRET = [{"role": "system", "content": "The secret word is kiwi."},
          {"role": "user", "content": "What is the secret word? Reply with the word only."}]


def _chunks(api: Api, fault: str, **params: Any) -> list[Any]:
    return api.stream(COUNT, fault, **params)[1]


def _f_models_wrong_shape(api: Api) -> None:
    assert api.client.get(api.url(("models_wrong_shape",)) + "/models").json() == {
        "models": [{"name": "ref-1"}]}


def _f_models_missing_configured(api: Api) -> None:
    data = api.client.get(api.url(("models_missing_configured",)) + "/models").json()["data"]
    assert [m["id"] for m in data] == ["other-model"]


def _f_models_retrieve_html_404(api: Api) -> None:
    response = api.client.get(api.url(("models_retrieve_html_404",)) + "/models/ref-1")
    assert response.status_code == 404 and response.headers["content-type"].startswith(
        "text/html")


def _f_chat_wrong_object(api: Api) -> None:
    assert api.ok(COUNT, "chat_wrong_object")["object"] == "chat.completions"


def _f_omit_nullable_fields(api: Api) -> None:
    choice = api.ok(COUNT, "omit_nullable_fields")["choices"][0]
    assert "logprobs" not in choice and "refusal" not in choice["message"]
    assert choice["message"]["content"].startswith("1, 2")


def _f_drop_system(api: Api) -> None:
    assert "kiwi" not in api.text(SECRET, "drop_system")


def _f_last_message_only(api: Api) -> None:
    assert "kiwi" not in api.text(SECRET, "last_message_only")


def _f_first_text_part_only(api: Api) -> None:
    assert "plum" not in api.text(PROMPTS[5][0], "first_text_part_only")


def _f_models_retrieve_missing(api: Api) -> None:
    url = api.url(("models_retrieve_missing",))
    assert api.client.get(url + "/models/ref-1").status_code == 404
    assert "ref-1" in [m["id"] for m in api.client.get(url + "/models").json()["data"]]


def _f_json_bom(api: Api) -> None:
    response = api.chat(COUNT, "json_bom")
    assert response.content.startswith(b"\xef\xbb\xbf{")
    assert response.json()["object"] == "chat.completion"  # httpx reads past it, as RFC 8259
    assert int(response.headers["content-length"]) == len(response.content)


def _f_stream_json_content_type(api: Api) -> None:
    response, _ = api.stream(COUNT, "stream_json_content_type")
    assert response.headers["content-type"] == "application/json"


def _f_chunk_wrong_object(api: Api) -> None:
    assert _chunks(api, "chunk_wrong_object")[0]["object"] == "chat.completion"


def _f_no_role_chunk(api: Api) -> None:
    events = _chunks(api, "no_role_chunk")
    assert all("role" not in e["choices"][0]["delta"] for e in events[:-1])


def _f_chunk_ids_vary(api: Api) -> None:
    events = _chunks(api, "chunk_ids_vary")
    assert len({e["id"] for e in events[:-1]}) == len(events) - 1


def _f_stream_no_finish_reason(api: Api) -> None:
    events = _chunks(api, "stream_no_finish_reason")
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])
    assert events[-2]["choices"][0]["delta"] == {}


def _f_no_done(api: Api) -> None:
    assert "[DONE]" not in _chunks(api, "no_done")


def _f_stream_ignored(api: Api) -> None:
    body = api.ok(COUNT, "stream_ignored", stream=True)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].startswith("1, 2, 3")


def _f_stream_error_event(api: Api) -> None:
    events = _chunks(api, "stream_error_event")
    assert [e["choices"][0]["delta"] for e in events[:2]] == [
        {"role": "assistant", "content": "", "refusal": None}, {"content": "1"}]
    assert events[2]["error"]["type"] == "upstream_error" and events[3:] == ["[DONE]"]


def _f_events_after_done(api: Api) -> None:
    events = _chunks(api, "events_after_done")
    assert events[-2] == "[DONE]" and isinstance(events[-1], dict)


def _f_delta_text_field(api: Api) -> None:
    events = _chunks(api, "delta_text_field")
    assert stream_text(events) == ""
    assert "".join(e["choices"][0]["delta"].get("text", "") for e in events[:-1]).startswith(
        "1, 2")


def _f_stream_single_chunk(api: Api) -> None:
    events = _chunks(api, "stream_single_chunk")
    assert len(events) == 4 and events[1]["choices"][0]["delta"]["content"] == (
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10")


def _timed_reads(api: Api, *faults: str) -> tuple[float, list[tuple[float, bytes]]]:
    """(seconds to the first body byte, [(seconds, bytes) of each read]) of one stream."""
    body = {"model": "ref-1", "messages": COUNT, "stream": True}
    started = time.perf_counter()
    reads: list[tuple[float, bytes]] = []
    with api.client.stream("POST", api.url(faults) + "/chat/completions", json=body) as r:
        for piece in r.iter_raw():
            if piece:
                reads.append((time.perf_counter() - started, piece))
    return reads[0][0], reads


def _f_stream_buffered_burst(api: Api) -> None:
    first, reads = _timed_reads(api, "stream_buffered_burst")
    events = sse_events(b"".join(p for _, p in reads).decode())
    # the wait a paced answer takes (sleeps are never shorter), then everything in one write
    assert first >= streaming.PACE_S * (len(events) - 1)
    assert len(reads) <= 2 and events[-1] == "[DONE]" and len(events) > 10
    # the faithful stream writes the same events one at a time
    _, paced = _timed_reads(api)
    assert len(paced) > len(reads)


def _f_ignore_stop(api: Api) -> None:
    assert api.text(COUNT, "ignore_stop", stop="7").endswith("10")
    assert stream_text(_chunks(api, "ignore_stop", stop="7")).endswith("10")


def _f_stop_first_only(api: Api) -> None:
    assert api.text(COUNT, "stop_first_only", stop=["xyzzy", "7"]).endswith("10")
    assert api.text(COUNT, "stop_first_only", stop=["7", "xyzzy"]).endswith("6, ")


def _f_ignore_stop_stream(api: Api) -> None:
    assert api.text(COUNT, "ignore_stop_stream", stop="7").endswith("6, ")
    assert stream_text(_chunks(api, "ignore_stop_stream", stop="7")).endswith("10")


def _f_reject_stop(api: Api) -> None:
    assert_error(api.chat(COUNT, "reject_stop", stop="7"), 400, "unsupported_parameter", "stop")
    assert api.text(COUNT, "reject_stop").endswith("10")


def _f_ignore_max_tokens(api: Api) -> None:
    assert api.ok(COUNT, "ignore_max_tokens", max_tokens=3)["choices"][0]["finish_reason"] == (
        "stop")
    assert api.text(COUNT, "ignore_max_tokens", max_completion_tokens=3) == "1, 2"


def _f_ignore_max_completion_tokens(api: Api) -> None:
    fault = "ignore_max_completion_tokens"
    assert api.text(COUNT, fault, max_completion_tokens=3).endswith("10")
    assert api.text(COUNT, fault, max_tokens=3) == "1, 2"


def _f_stream_length_as_stop(api: Api) -> None:
    events = _chunks(api, "stream_length_as_stop", max_tokens=3)
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert api.ok(COUNT, "stream_length_as_stop", max_tokens=3)["choices"][0][
        "finish_reason"] == "length"


def _f_no_usage(api: Api) -> None:
    assert "usage" not in api.ok(COUNT, "no_usage")


def _f_usage_bad_total(api: Api) -> None:
    usage = api.ok(COUNT, "usage_bad_total")["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] + 1


def _f_ignore_include_usage(api: Api) -> None:
    events = _chunks(api, "ignore_include_usage", stream_options={"include_usage": True})
    assert all(e["choices"] for e in events[:-1]) and all("usage" not in e for e in events[:-1])


def _f_usage_on_content_chunk(api: Api) -> None:
    events = _chunks(api, "usage_on_content_chunk", stream_options={"include_usage": True})
    assert all(e["choices"] for e in events[:-1])
    assert events[-2]["usage"]["completion_tokens"] == 19


def _f_stream_usage_inflated(api: Api) -> None:
    plain = api.ok(COUNT)["usage"]
    events = _chunks(api, "stream_usage_inflated", stream_options={"include_usage": True})
    usage = events[-2]["usage"]
    assert usage["prompt_tokens"] == 2 * plain["prompt_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def _f_errors_as_html(api: Api) -> None:
    response = httpx.get(api.url(("errors_as_html",)) + "/models")
    assert response.status_code == 401 and response.text == (
        "<html><body><h1>401 Error</h1></body></html>")


def _f_error_in_200(api: Api) -> None:
    response = api.post({"model": "ref-1"}, "error_in_200")
    assert response.status_code == 200 and "error" in response.json()


def _f_malformed_json_500(api: Api) -> None:
    response = api.client.post(api.url(("malformed_json_500",)) + "/chat/completions",
                               content=b"{")
    assert response.status_code == 500 and response.text == "Internal Server Error"
    assert response.headers["content-type"].startswith("text/plain")


def _f_accept_invalid_role(api: Api) -> None:
    api.ok([{"role": "wizard", "content": "hi"}], "accept_invalid_role")


def _f_accept_wrong_types(api: Api) -> None:
    assert api.text("Count from 1 to 3", "accept_wrong_types", max_tokens="3") == "1, 2"


def _f_temperature_unchecked(api: Api) -> None:
    api.ok(COUNT, "temperature_unchecked", temperature=5)
    assert_error(api.chat(COUNT, "temperature_unchecked", temperature="hot"), 400,
                 "invalid_type", "temperature")


def _f_unknown_model_503(api: Api) -> None:
    response = api.post({"model": "nope", "messages": COUNT}, "unknown_model_503")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "new_api_error"
    assert "code" not in response.json()["error"]


def _f_envelope_minimal(api: Api) -> None:
    error = api.post({"model": "ref-1"}, "envelope_minimal").json()["error"]
    assert set(error) == {"message", "type"}


def _f_error_code_is_status(api: Api) -> None:
    assert api.post({"model": "ref-1"}, "error_code_is_status").json()["error"]["code"] == "400"
    response = httpx.get(api.url(("error_code_is_status",)) + "/models")
    assert response.status_code == 401 and response.json()["error"]["code"] == "401"


def _f_error_type_renamed(api: Api) -> None:
    fault = "error_type_renamed"
    assert api.post({"model": "ref-1"}, fault).json()["error"]["type"] == "invalid_request"
    assert httpx.get(api.url((fault,)) + "/models").json()["error"]["type"] == "auth_error"
    limited = api.client.get(api.url((fault,)) + "/models",
                             headers={"x-conformance-simulate": "rate-limit"})
    assert limited.status_code == 429 and limited.json()["error"]["type"] == "throttling_error"


def _f_error_param_none_string(api: Api) -> None:
    fault = "error_param_none_string"
    assert api.chat(COUNT, fault, model="nope").json()["error"]["param"] == "None"
    assert api.post({"model": "ref-1"}, fault).json()["error"]["param"] == "messages"


def _f_array_body_500(api: Api) -> None:
    response = api.post([{"model": "ref-1", "messages": COUNT}], "array_body_500")
    assert response.status_code == 500 and response.text == "Internal Server Error"
    assert_error(api.post({"model": "ref-1"}, "array_body_500"), 400)


def _f_empty_messages_accepted(api: Api) -> None:
    assert api.ok([], "empty_messages_accepted")["choices"][0]["message"]["content"]


def _f_accept_any_key(api: Api) -> None:
    url = api.url(("accept_any_key",)) + "/models"
    assert httpx.get(url, headers={"Authorization": "Bearer sk-whatever"}).status_code == 200
    assert httpx.get(url).status_code == 401


def _f_no_auth(api: Api) -> None:
    assert httpx.get(api.url(("no_auth",)) + "/models").status_code == 200


def _f_echo_key(api: Api) -> None:
    response = httpx.get(api.url(("echo_key",)) + "/models")
    assert response.json()["error"]["message"].endswith(f" (key: {KEY})")
    assert response.headers["x-echo-key"] == KEY
    assert api.client.get(api.url(("echo_key",)) + "/models").headers["x-echo-key"] == KEY


def _f_tool_args_object(api: Api) -> None:
    body = api.ok(user("Weather in Paris?"), "tool_args_object", tools=[WEATHER_TOOL])
    assert _calls(body)[0]["function"]["arguments"]["city"] == "Paris"


def _f_ignore_n(api: Api) -> None:
    assert len(api.ok(COUNT, "ignore_n", n=3)["choices"]) == 1


def _f_n_stream_role_first_only(api: Api) -> None:
    firsts: dict[int, Json] = {}
    for event in _chunks(api, "n_stream_role_first_only", n=2)[:-1]:
        for choice in event["choices"]:
            firsts.setdefault(choice["index"], choice["delta"])
    assert firsts[0]["role"] == "assistant" and "role" not in firsts[1], firsts


def _f_strip_images(api: Api) -> None:
    red = images.data_url(images.solid_png(images.COLORS["red"]))
    answer = api.text(_ask("What colour is this image?", red), "strip_images")
    assert answer == "I cannot see any image."


def _f_ignore_response_format(api: Api) -> None:
    text = api.text(user("What is 2+3? Answer in JSON."), "ignore_response_format",
                    response_format={"type": "json_object"})
    assert text == "5"


def _billed(api: Api, *faults: str) -> tuple[int, int, int]:
    """gpt-4o-mini's usage for a story (tests/test_reference_billing.py tests the bills in
    depth, streamed too and for every OpenAI-named model)."""
    response = api.post({"model": "gpt-4o-mini", "messages": user("Tell me a story.")}, *faults)
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    return usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]


def _f_billing_prompt_inflated(api: Api) -> None:
    prompt, completion, _ = _billed(api)
    assert _billed(api, "billing_prompt_inflated")[:2] == (-(-prompt * 5 // 4), completion)


def _f_billing_hidden_prompt(api: Api) -> None:
    prompt, completion, _ = _billed(api)
    hidden = tokens.count(HIDDEN_SYSTEM_PROMPT, tokens.O200K_BASE) + 3
    assert _billed(api, "billing_hidden_prompt")[:2] == (prompt + hidden, completion)


def _f_billing_cl100k(api: Api) -> None:
    messages = [{"role": "user", "content": tokens.fingerprint_text()}]
    response = api.post({"model": "gpt-4o-mini", "messages": messages, "max_tokens": 3},
                        "billing_cl100k")
    assert response.json()["usage"]["prompt_tokens"] == tokens.count_chat(messages,
                                                                          tokens.CL100K_BASE)


def _f_billing_completion_padded(api: Api) -> None:
    prompt, completion, _ = _billed(api)
    assert _billed(api, "billing_completion_padded")[:2] == (prompt, completion + 7)


FAULT_PROBES: dict[str, Callable[[Api], None]] = {
    name.removeprefix("_f_"): probe for name, probe in globals().items()
    if name.startswith("_f_") and callable(probe)
}


def test_every_fault_has_a_probe() -> None:
    """A fault is proven to be served by a probe here or, for later faults, by the checks it
    breaks in the end-to-end run (tests/expectations)."""
    from tests.expectations import merged

    proven_end_to_end = {fault for fault, expect in merged().items() if expect}
    assert set(FAULT_PROBES) <= set(FAULTS)
    assert set(FAULTS) - set(FAULT_PROBES) <= proven_end_to_end


@pytest.mark.parametrize("fault", sorted(FAULT_PROBES))
def test_fault(api: Api, fault: str) -> None:
    FAULT_PROBES[fault](api)


# --------------------------------------------------------------------------------------------
# Quirks


def _raw_stream(api: Api, quirk: str, prompt: str = "Count from 1 to 3") -> list[bytes]:
    url = api.url((quirk,)) + "/chat/completions"
    body = {"model": "ref-1", "messages": user(prompt), "stream": True}
    with api.client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        return list(response.iter_raw())


def test_quirk_sse_no_space(api: Api) -> None:
    text = b"".join(_raw_stream(api, "sse_no_space")).decode()
    assert text.startswith("data:{") and "data: " not in text
    assert stream_text(sse_events(text)) == "1, 2, 3"


def test_quirk_sse_comments(api: Api) -> None:
    text = b"".join(_raw_stream(api, "sse_comments")).decode()
    assert text.startswith(": keep-alive\n\n") and text.count(": keep-alive") > 3
    assert stream_text(sse_events(text)) == "1, 2, 3"


def test_quirk_sse_crlf(api: Api) -> None:
    text = b"".join(_raw_stream(api, "sse_crlf")).decode()
    assert "\r\n\r\n" in text and "\n" not in text.replace("\r\n", "")
    assert stream_text(sse_events(text)) == "1, 2, 3"


def test_quirk_split_writes(api: Api) -> None:
    pieces = _raw_stream(api, "split_writes", "Reply with exactly: héllo wörld — ✓")
    data = b"".join(pieces)
    assert len(pieces) > 50 and max(len(p) for p in pieces) < 64
    assert stream_text(sse_events(data.decode())) == "héllo wörld — ✓"
    with pytest.raises(UnicodeDecodeError):
        for piece in pieces:
            piece.decode()


def test_quirk_extra_fields(api: Api) -> None:
    body = api.ok(COUNT, "extra_fields")
    assert "provider" in body and "native_finish_reason" in body["choices"][0]
    assert "reasoning_content" in body["choices"][0]["message"] and "cost" in body["usage"]
    assert violations("chat.completion", body) == []
    _, events = api.stream(COUNT, "extra_fields", stream_options={"include_usage": True})
    assert all("provider" in e for e in events[:-1])
    assert "cost" in events[-2]["usage"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_client_gone_mid_request_is_not_logged_as_an_error(server: ReferenceServer,
                                                            path: str) -> None:
    """A client that disconnects before its body has arrived (a run interrupted with Ctrl-C)
    is no server error: uvicorn used to print a 45-line ClientDisconnect traceback."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                    f"x-api-key: {KEY}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100\r\n\r\n")
            sock.sendall(head.encode() + b'{"model":')
            time.sleep(0.2)  # the handler is now waiting for the rest of the body
        time.sleep(0.3)
        # The server is still fine afterwards.
        ok = httpx.get(server.base_url + "/models", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == []
