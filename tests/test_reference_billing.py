"""The reference's OpenAI-named models bill exactly what conformance.tokens counts, and each
billing fault overcharges by exactly what it says (real sockets, one reference server).

Honest usage for gpt-4o-mini, gpt-4o (o200k_base) and gpt-4 (cl100k_base): ``prompt_tokens`` is
``tokens.count_chat`` of a plain message list, ``completion_tokens`` the tokens of each choice's
text summed, ``total_tokens`` their sum, streamed and not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance import tokens
from conformance.reference.conversation import vocabulary
from conformance.reference.faults import (
    FAULTS,
    HIDDEN_SYSTEM_PROMPT,
    OPENAI_MODELS,
    OPENAI_SNAPSHOTS,
)
from conformance.reference.server import ReferenceServer

KEY = "sk-test-billing-0123456789abcdef"
Json = dict[str, Any]

#: A plain message list: a system message, a named user message and a user message.
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "name": "alice", "content": "My name is Alice and I like robots."},
    {"role": "user", "content": "Write a short story about a robot."},
]
#: A prompt whose count differs sharply between o200k_base and cl100k_base.
FINGERPRINT: list[dict[str, str]] = [{"role": "user", "content": tokens.fingerprint_text()}]
BILLING_FAULTS = ("billing_prompt_inflated", "billing_hidden_prompt", "billing_cl100k",
                  "billing_completion_padded")


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        yield http


def _url(server: ReferenceServer, faults: tuple[str, ...] = ()) -> str:
    return server.variant_url(faults) + "/chat/completions"


def complete(server: ReferenceServer, client: httpx.Client, model: str,
             messages: list[dict[str, Any]], *faults: str, **params: Any) -> Json:
    response = client.post(_url(server, faults),
                           json={"model": model, "messages": messages, **params})
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def stream(server: ReferenceServer, client: httpx.Client, model: str,
           messages: list[dict[str, Any]], *faults: str, **params: Any) -> list[Json]:
    """The chunks of a stream with include_usage (the [DONE] sentinel checked and dropped)."""
    response = client.post(_url(server, faults), json={
        "model": model, "messages": messages, "stream": True,
        "stream_options": {"include_usage": True}, **params})
    assert response.status_code == 200, response.text
    payloads = [line.removeprefix("data: ") for line in response.text.split("\n")
                if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


def texts(body: Json) -> list[str]:
    return [c["message"]["content"] for c in sorted(body["choices"], key=lambda c: c["index"])]


def streamed_texts(chunks: list[Json]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            out[choice["index"]] = out.get(choice["index"], "") + (
                choice["delta"].get("content") or "")
    return out


def stream_usage(chunks: list[Json]) -> Json:
    """The usage of the final chunk (choices: []); every other chunk has usage null."""
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] is not None
    assert all(c["usage"] is None for c in chunks[:-1])
    usage: Json = chunks[-1]["usage"]
    return usage


def numbers(usage: Json) -> tuple[int, int, int]:
    return usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]


def honest(model: str, messages: list[dict[str, Any]], answers: list[str],
           encoding: str | None = None) -> tuple[int, int, int]:
    """(prompt, completion, total) counted offline, in ``model``'s encoding by default."""
    encoding = encoding or tokens.encoding_for(model)
    assert encoding is not None
    prompt = tokens.count_chat(messages, encoding)
    completion = sum(tokens.count(a, encoding) for a in answers)
    return prompt, completion, prompt + completion


# --------------------------------------------------------------------------------------------
# The models


def test_openai_models_are_listed_and_retrievable(server: ReferenceServer,
                                                  client: httpx.Client) -> None:
    listed = [m["id"] for m in client.get(server.base_url + "/models").json()["data"]]
    for model, snapshot in OPENAI_SNAPSHOTS.items():
        assert listed.index(snapshot) == listed.index(model) + 1
        for ident in (model, snapshot):
            got = client.get(f"{server.base_url}/models/{ident}")
            assert got.status_code == 200 and got.json()["id"] == ident
    assert dict(OPENAI_SNAPSHOTS) == {"gpt-4o-mini": "gpt-4o-mini-2024-07-18",
                                      "gpt-4o": "gpt-4o-2024-08-06", "gpt-4": "gpt-4-0613"}


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_usage_is_exact_non_stream(server: ReferenceServer, client: httpx.Client,
                                   model: str) -> None:
    body = complete(server, client, model, MESSAGES)
    assert body["model"] == OPENAI_SNAPSHOTS[model]
    answers = texts(body)
    assert answers[0].startswith("Once upon a time")
    assert numbers(body["usage"]) == honest(model, MESSAGES, answers)


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_usage_is_exact_in_the_stream(server: ReferenceServer, client: httpx.Client,
                                      model: str) -> None:
    chunks = stream(server, client, model, MESSAGES)
    assert {c["model"] for c in chunks} == {OPENAI_SNAPSHOTS[model]}
    answer = streamed_texts(chunks)[0]
    got = numbers(stream_usage(chunks))
    assert got == honest(model, MESSAGES, [answer])
    assert got == numbers(complete(server, client, model, MESSAGES)["usage"])


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_n2_sums_the_completion_tokens_of_both_choices(server: ReferenceServer,
                                                       client: httpx.Client,
                                                       model: str) -> None:
    one = complete(server, client, model, MESSAGES)
    two = complete(server, client, model, MESSAGES, n=2)
    answers = texts(two)
    assert len(answers) == 2
    assert numbers(two["usage"]) == honest(model, MESSAGES, answers)
    assert two["usage"]["completion_tokens"] == 2 * one["usage"]["completion_tokens"]
    assert two["usage"]["prompt_tokens"] == one["usage"]["prompt_tokens"]
    chunks = stream(server, client, model, MESSAGES, n=2)
    assert numbers(stream_usage(chunks)) == numbers(two["usage"])


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_text_parts_count_as_the_joined_text(server: ReferenceServer, client: httpx.Client,
                                             model: str) -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "What is the capital"},
                                          {"type": "text", "text": "of France?"}]}]
    joined = [{"role": "user", "content": "What is the capital\nof France?"}]
    body = complete(server, client, model, parts)
    assert numbers(body["usage"]) == honest(model, joined, texts(body))


def test_the_encodings_differ_on_the_fingerprint(server: ReferenceServer,
                                                 client: httpx.Client) -> None:
    """Each model bills the fingerprint in its own encoding (o200k_base: ~74, cl100k: ~192)."""
    bills = {m: complete(server, client, m, FINGERPRINT, max_tokens=4)["usage"]["prompt_tokens"]
             for m in OPENAI_MODELS}
    assert bills["gpt-4o-mini"] == bills["gpt-4o"] == tokens.count_chat(FINGERPRINT, "gpt-4o")
    assert bills["gpt-4"] == tokens.count_chat(FINGERPRINT, "gpt-4")
    assert bills["gpt-4"] > bills["gpt-4o"] + 50


# --------------------------------------------------------------------------------------------
# The model writes in the real tokenizer


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_max_tokens_cuts_at_real_tokens(server: ReferenceServer, client: httpx.Client,
                                        model: str) -> None:
    encoding = tokens.encoding_for(model)
    assert encoding is not None
    full = texts(complete(server, client, model, MESSAGES))[0]
    body = complete(server, client, model, MESSAGES, max_tokens=5, logprobs=True)
    choice = body["choices"][0]
    enc = tokens.encoder(encoding)
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == enc.decode(enc.encode_ordinary(full)[:5])
    assert body["usage"]["completion_tokens"] == 5
    entries = choice["logprobs"]["content"]
    assert [e["token"] for e in entries] == [enc.decode([t]) for t in
                                             enc.encode_ordinary(choice["message"]["content"])]


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_logit_bias_ids_are_the_encodings(server: ReferenceServer, client: httpx.Client,
                                          model: str) -> None:
    encoding = tokens.encoding_for(model)
    assert encoding is not None
    token = tokens.encoder(encoding).decode([1000])
    body = complete(server, client, model, MESSAGES, max_tokens=3, logit_bias={"1000": 100})
    assert texts(body) == [token * 3]
    assert body["usage"]["completion_tokens"] == 3
    limit = tokens.encoder(encoding).n_vocab
    refused = client.post(_url(server), json={"model": model, "messages": MESSAGES,
                                              "logit_bias": {str(limit): 1}})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "logit_bias"


def test_multibyte_answers_stream_whole_characters(server: ReferenceServer,
                                                   client: httpx.Client) -> None:
    """Tokens that split a character's bytes are sent together (a delta is text)."""
    text = "机器学习 🤖🦾 Съешь"
    pieces = vocabulary(tokens.CL100K_BASE).pieces(text)
    assert "".join(p for p, _ in pieces) == text
    assert sum(len(ids) for _, ids in pieces) == tokens.count(text, tokens.CL100K_BASE)
    assert any(len(ids) > 1 for _, ids in pieces)
    messages = [{"role": "user", "content": f"Reply with exactly: {text}"}]
    chunks = stream(server, client, "gpt-4", messages)
    answer = streamed_texts(chunks)[0]
    assert answer == text
    assert stream_usage(chunks)["completion_tokens"] == tokens.count(text, tokens.CL100K_BASE)


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_tools_and_images_are_estimated(server: ReferenceServer, client: httpx.Client,
                                        model: str) -> None:
    """Not plain text: no exact rule, an estimate in the model's encoding that grows with
    what was sent."""
    tool = {"type": "function", "function": {
        "name": "get_weather", "description": "Get the weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    plain = complete(server, client, model, question)["usage"]["prompt_tokens"]
    with_tool = complete(server, client, model, question, tools=[tool])
    assert with_tool["usage"]["prompt_tokens"] > plain
    red = server.origin + "/assets/color/red.png"
    image = [{"role": "user", "content": [{"type": "text", "text": "What colour is this?"},
                                          {"type": "image_url", "image_url": {"url": red}}]}]
    seen = complete(server, client, model, image)["usage"]
    assert seen["prompt_tokens"] >= 85 + tokens.count_chat(
        [{"role": "user", "content": "What colour is this?"}], model)
    assert seen["total_tokens"] == seen["prompt_tokens"] + seen["completion_tokens"]


# --------------------------------------------------------------------------------------------
# Billing faults


def test_billing_faults_are_in_the_catalogue() -> None:
    assert set(BILLING_FAULTS) <= set(FAULTS)


def _both(server: ReferenceServer, client: httpx.Client, model: str,
          messages: list[dict[str, Any]], *faults: str, **params: Any
          ) -> tuple[list[str], tuple[int, int, int], tuple[int, int, int]]:
    """(answers, non-stream usage, stream usage); both give the same answers."""
    body = complete(server, client, model, messages, *faults, **params)
    chunks = stream(server, client, model, messages, *faults, **params)
    answers = texts(body)
    assert list(streamed_texts(chunks).values()) == answers
    return answers, numbers(body["usage"]), numbers(stream_usage(chunks))


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_billing_prompt_inflated(server: ReferenceServer, client: httpx.Client,
                                 model: str) -> None:
    answers, plain, streamed = _both(server, client, model, MESSAGES,
                                     "billing_prompt_inflated")
    prompt, completion, _ = honest(model, MESSAGES, answers)
    inflated = -(-prompt * 5 // 4)  # × 1.25, rounded up
    assert inflated > prompt
    assert plain == streamed == (inflated, completion, inflated + completion)


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_billing_hidden_prompt(server: ReferenceServer, client: httpx.Client,
                               model: str) -> None:
    answers, plain, streamed = _both(server, client, model, MESSAGES, "billing_hidden_prompt")
    assert answers == texts(complete(server, client, model, MESSAGES))  # the model is unchanged
    prompt, completion, _ = honest(model, MESSAGES, answers)
    encoding = tokens.encoding_for(model)
    assert encoding is not None
    hidden = tokens.count(HIDDEN_SYSTEM_PROMPT, encoding) + 3
    assert 38 <= hidden <= 45  # about 40 tokens
    assert plain == streamed == (prompt + hidden, completion, prompt + hidden + completion)


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_billing_cl100k(server: ReferenceServer, client: httpx.Client, model: str) -> None:
    for messages in (MESSAGES, FINGERPRINT):
        answers, plain, streamed = _both(server, client, model, messages, "billing_cl100k")
        assert plain == streamed == honest(model, messages, answers, tokens.CL100K_BASE)
    if tokens.encoding_for(model) == tokens.O200K_BASE:
        assert plain[0] > tokens.count_chat(FINGERPRINT, model) + 50  # the fingerprint shows it
    else:  # gpt-4 is a cl100k_base model already: billed as without the fault
        assert plain == honest(model, FINGERPRINT, answers)


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_billing_completion_padded(server: ReferenceServer, client: httpx.Client,
                                   model: str) -> None:
    answers, plain, streamed = _both(server, client, model, MESSAGES,
                                     "billing_completion_padded")
    prompt, completion, _ = honest(model, MESSAGES, answers)
    assert plain == streamed == (prompt, completion + 7, prompt + completion + 7)
    two = complete(server, client, model, MESSAGES, "billing_completion_padded", n=2)
    _, completion2, _ = honest(model, MESSAGES, texts(two))
    assert two["usage"]["completion_tokens"] == completion2 + 7  # once per answer, not choice


@pytest.mark.parametrize("fault", BILLING_FAULTS)
def test_billing_faults_leave_ref_models_alone(server: ReferenceServer, client: httpx.Client,
                                               fault: str) -> None:
    for model in ("ref-1", "ref-2"):
        faithful = complete(server, client, model, MESSAGES, n=2)
        faulty = complete(server, client, model, MESSAGES, fault, n=2)
        assert texts(faulty) == texts(faithful)
        assert faulty["usage"] == faithful["usage"]
        assert numbers(stream_usage(stream(server, client, model, MESSAGES, fault))) == \
            numbers(stream_usage(stream(server, client, model, MESSAGES)))
