"""The reference provider's Responses API (POST /v1/responses, GET /v1/responses/{id}) over a
real socket: answers valid against the spec's schemas, stream events numbered and named, state
kept in a bounded store, errors in the OpenAI envelope; plus the schema helpers it relies on."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance.exchange import Exchange, TimedEvent
from conformance.reference.responses import Store, Stored
from conformance.reference.server import ReferenceServer
from conformance.validation import stream_event_types, stream_event_violations, violations

KEY = "sk-responses-test-0123456789"
Json = dict[str, Any]
TOOL: Json = {"type": "function", "name": "get_weather", "strict": False, "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as client:
        yield client


def create(server: ReferenceServer, http: httpx.Client, *faults: str, **body: Any
           ) -> httpx.Response:
    return http.post(server.variant_url(faults) + "/responses", json={"model": "ref-1", **body})


def text_of(response: Json) -> str:
    return "".join(c["text"] for i in response["output"] if i["type"] == "message"
                   for c in i["content"])


def events(body: str) -> list[tuple[str | None, Json]]:
    out = []
    for block in re.split(r"\n\n", body.strip()):
        name = next((line[7:] for line in block.splitlines() if line.startswith("event: ")), None)
        data = next(line[6:] for line in block.splitlines() if line.startswith("data: "))
        out.append((name, json.loads(data)))
    return out


def test_a_string_input_gets_a_valid_completed_response(server: ReferenceServer,
                                                        http: httpx.Client) -> None:
    answer = create(server, http, input="What is the capital of France? Answer with one word.")
    assert answer.status_code == 200
    body = answer.json()
    assert violations("response", body, absent_as_null=True) == []
    assert body["object"] == "response" and body["status"] == "completed"
    assert text_of(body) == "Paris"
    usage = body["usage"]
    assert usage["input_tokens"] + usage["output_tokens"] == usage["total_tokens"]


def test_instructions_reach_the_model_and_are_echoed(server: ReferenceServer,
                                                     http: httpx.Client) -> None:
    body = create(server, http, instructions="The secret word is kiwi.",
                  input="What is the secret word? Reply with the word only.").json()
    assert text_of(body) == "kiwi" and body["instructions"] == "The secret word is kiwi."
    replaced = create(server, http, "responses_instructions_replaced",
                      instructions="The secret word is kiwi.",
                      input="What is the secret word? Reply with the word only.").json()
    assert "kiwi" not in text_of(replaced)


def test_the_stream_is_the_documented_sequence(server: ReferenceServer,
                                               http: httpx.Client) -> None:
    answer = create(server, http, input="List the numbers from 1 to 5.", stream=True)
    assert answer.headers["content-type"].startswith("text/event-stream")
    parsed = events(answer.text)
    types = [p["type"] for _, p in parsed]
    assert types[:3] == ["response.created", "response.in_progress",
                         "response.output_item.added"]
    assert types[-1] == "response.completed" and "response.output_text.delta" in types
    assert [n for n, _ in parsed] == types
    assert [p["sequence_number"] for _, p in parsed] == list(range(len(parsed)))
    assert all(stream_event_violations(p) == [] for _, p in parsed), [
        (p["type"], stream_event_violations(p)[:1]) for _, p in parsed
        if stream_event_violations(p)]
    deltas = "".join(p["delta"] for _, p in parsed if p["type"] == "response.output_text.delta")
    assert deltas == text_of(parsed[-1][1]["response"]) == "1, 2, 3, 4, 5"


def test_function_calls_and_their_outputs(server: ReferenceServer, http: httpx.Client) -> None:
    body = create(server, http, input="What is the weather in Paris? Use the tool.",
                  tools=[TOOL]).json()
    call = body["output"][0]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"} and call["call_id"]
    follow = create(server, http, tools=[TOOL], input=[
        {"role": "user", "content": "What is the weather in Paris? Use the tool."},
        {"type": "function_call", "call_id": "c1", "name": "get_weather",
         "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "c1", "output": '{"temperature_c": 23}'},
    ]).json()
    assert "23" in text_of(follow)
    none = create(server, http, input="What is the weather in Paris? Use the tool.",
                  tools=[TOOL], tool_choice="none").json()
    assert all(i["type"] == "message" for i in none["output"])


def test_max_output_tokens_makes_the_response_incomplete(server: ReferenceServer,
                                                         http: httpx.Client) -> None:
    body = create(server, http, input="Write a short story about a robot.",
                  max_output_tokens=16).json()
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["output_tokens"] == 16
    low = create(server, http, input="Hi", max_output_tokens=15)
    assert low.status_code == 400 and low.json()["error"]["param"] == "max_output_tokens"


def test_state_previous_response_id_get_and_store_false(server: ReferenceServer,
                                                        http: httpx.Client) -> None:
    first = create(server, http, input="Remember this number: 42.").json()
    second = create(server, http, previous_response_id=first["id"],
                    input="What number did I ask you to remember? Reply with the number "
                    "only.").json()
    assert text_of(second) == "42"
    got = http.get(f"{server.base_url}/responses/{first['id']}")
    assert got.status_code == 200 and got.json() == first
    unstored = create(server, http, input="Hi", store=False).json()
    missing = http.get(f"{server.base_url}/responses/{unstored['id']}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "response_not_found"
    unknown = create(server, http, input="Hi", previous_response_id="resp_nope")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "previous_response_id"


def test_errors_use_the_openai_envelope(server: ReferenceServer, http: httpx.Client) -> None:
    for body, param in (({"input": 42}, "input"), ({"input": "x", "bogus": 1}, "bogus"),
                        ({"input": "x", "model": "no-such-model"}, "model")):
        answer = create(server, http, **body)
        assert 400 <= answer.status_code < 500
        assert violations("error", answer.json()) == [] and answer.json()["error"]["param"] == param
    wrong = httpx.post(f"{server.base_url}/responses", json={"model": "ref-1", "input": "x"},
                       headers={"Authorization": "Bearer sk-wrong-0000000000"})
    assert wrong.status_code == 401


def test_the_store_is_bounded() -> None:
    store = Store(limit=2)
    for number in range(3):
        store.put(Stored({"id": f"resp_{number}"}, []))
    assert store.get("resp_0") is None and store.get("resp_2") is not None


def test_every_stream_event_type_has_a_schema() -> None:
    assert {"response.created", "response.output_text.delta", "response.completed",
            "response.function_call_arguments.delta", "error"} <= stream_event_types()
    assert stream_event_violations({"type": "response.nonsense"})[0].path == "$.type"


def test_usage_of_a_responses_stream_is_counted_and_a_get_is_not() -> None:
    completed = {"type": "response.completed", "response": {"usage": {
        "input_tokens": 7, "output_tokens": 3, "total_tokens": 10}}}
    streamed = Exchange(method="POST", url="http://x/v1/responses", request_headers={},
                        request_body=None, stream=True, status=200,
                        events=[TimedEvent(0.0, json.dumps(completed), "response.completed")])
    assert streamed.usage() == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10,
                                "prompt_tokens": 7, "completion_tokens": 3}
    got = Exchange(method="GET", url="http://x/v1/responses/r", request_headers={},
                   request_body=None, stream=False, status=200,
                   json={"usage": {"input_tokens": 7, "output_tokens": 3}})
    assert got.usage() is None
