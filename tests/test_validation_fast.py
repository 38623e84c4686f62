"""The compiled fast path of conformance/validation.py (jsonschema-rs) never accepts what the
full path (jsonschema, with its absent-as-null leniency) faults.

Real payloads come from the reference provider over real sockets (chat completions, stream
chunks, Responses and their stream events, the model list, an error); each is mutated at every
path (a member removed, a value set to null, to a value of another type, an unknown member
added), and for every mutation the two paths must agree on whether it is valid.  A control
shows the fast path is really taken (it accepts the valid payloads) and that it is what makes
validation fast.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance import validation
from conformance.checks.responses_api import without_nulls
from conformance.reference.server import ReferenceServer
from conformance.validation import stream_event_violations, violations

KEY = "sk-fast-path-0123456789"


@pytest.fixture(scope="module")
def payloads() -> dict[str, list[Any]]:
    """Schema name -> real payloads the reference answered with."""
    out: dict[str, list[Any]] = {"chat.completion": [], "chat.completion.chunk": [],
                                 "response": [], "response.event": [], "models.list": [],
                                 "error": []}
    with ReferenceServer(api_key=KEY) as server, httpx.Client(
            headers={"authorization": f"Bearer {KEY}"}, timeout=30) as client:
        base = server.base_url
        chat = {"model": "ref-1", "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 16}
        tools = [{"type": "function", "function": {
            "name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}}}]
        for extra in ({}, {"n": 2, "logprobs": True, "top_logprobs": 2},
                      {"tools": tools, "messages": [
                          {"role": "user", "content": "What is the weather in Paris?"}]}):
            out["chat.completion"].append(
                client.post(f"{base}/chat/completions", json={**chat, **extra}).json())
        with client.stream("POST", f"{base}/chat/completions",
                           json={**chat, "stream": True,
                                 "stream_options": {"include_usage": True}}) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    out["chat.completion.chunk"].append(json.loads(line[6:]))
        ask = {"model": "ref-1", "input": "Say hello.", "max_output_tokens": 16}
        out["response"].append(client.post(f"{base}/responses", json=ask).json())
        out["response"].append(client.post(f"{base}/responses", json={
            **ask, "input": "What is the weather in Paris?",
            "tools": [{"type": "function", "name": "get_weather",
                       "parameters": tools[0]["function"]["parameters"]}]}).json())
        with client.stream("POST", f"{base}/responses",
                           json={**ask, "stream": True}) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    out["response.event"].append(json.loads(line[6:]))
        out["models.list"].append(client.get(f"{base}/models").json())
        out["error"].append(client.get(f"{base}/models",
                                        headers={"authorization": "Bearer wrong"}).json())
    assert all(out.values()), {k: len(v) for k, v in out.items()}
    # One stream chunk of each shape (role, content, finish, usage), one event of each type.
    out["chat.completion.chunk"] = list({json.dumps(sorted(_paths_of(c))): c
                                         for c in out["chat.completion.chunk"]}.values())
    out["response.event"] = list({e.get("type"): e for e in out["response.event"]}.values())
    return out


def _paths_of(value: Any) -> set[str]:
    return {"/".join(str(step) for step in path) for path in _paths(value)}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path of ``value`` (of a list, its first two items)."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):
            yield from _paths(item, (*path, index))


def _mutations(value: Any) -> Iterator[tuple[str, Any]]:
    """(what was done, the mutated copy) for every path of ``value``."""
    for path in list(_paths(value))[1:]:
        parent_path, last = path[:-1], path[-1]

        def at(root: Any, steps: tuple[Any, ...] = parent_path) -> Any:
            node = root
            for step in steps:
                node = node[step]
            return node

        original = at(value)[last]
        others: list[Any] = [None, "text", 7, {}]
        for replacement in others:
            if type(replacement) is type(original) and replacement == original:
                continue
            mutated = copy.deepcopy(value)
            at(mutated)[last] = replacement
            yield f"{path} = {replacement!r}", mutated
        mutated = copy.deepcopy(value)
        del at(mutated)[last]
        yield f"del {path}", mutated
        if isinstance(original, dict):
            mutated = copy.deepcopy(value)
            at(mutated)[last]["unexpected_member"] = 1
            yield f"{path} + unexpected_member", mutated


def _validator_of(name: str, instance: Any) -> Any:
    if name == "response.event":
        return validation._event_validators().get(instance.get("type")) \
            if isinstance(instance, dict) and isinstance(instance.get("type"), str) else None
    return validation._validator(name)


def _full(name: str, instance: Any, absent_as_null: bool) -> bool:
    """Whether the full path alone finds ``instance`` valid."""
    if name == "response.event":
        return not stream_event_violations(instance, absent_as_null=absent_as_null)
    return not violations(name, instance, absent_as_null=absent_as_null)


def test_the_fast_path_accepts_nothing_the_full_path_faults(payloads: dict[str, list[Any]],
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """Where the compiled validator says valid, violations() returns [] without asking the
    full path: every such case must be valid by the full path too.  (Where it says invalid,
    the full path decides anyway.)"""
    assert validation.jsonschema_rs is not None, "jsonschema-rs is a dependency"
    accepted: list[tuple[str, str, Any, bool]] = []
    refused = 0
    for name, items in payloads.items():
        for number, item in enumerate(items):
            for lenient in (False, True):
                base = without_nulls(item) if lenient else item
                for what, instance in [("as sent", base), *_mutations(base)]:
                    validator = _validator_of(name, instance)
                    fast = validation._fast_check(validator, lenient) if validator else None
                    if fast is not None and fast(instance):
                        accepted.append((name, f"[{number}] lenient={lenient} {what}",
                                         instance, lenient))
                    else:
                        refused += 1
    monkeypatch.setattr(validation, "jsonschema_rs", None)
    monkeypatch.setattr(validation, "_FAST", {})
    wrongly = [case for name, case, instance, lenient in accepted
               if not _full(name, instance, lenient)]
    assert wrongly == [], wrongly[:10]
    # Not vacuous: many mutations are faults the fast path refuses, many are accepted, and
    # every payload as sent (nulls read as absent) is accepted.
    assert refused > 500 and len(accepted) > 200, (refused, len(accepted))
    sent = [case for _, case, _, lenient in accepted if case.endswith("as sent") and lenient]
    assert len(sent) == sum(len(items) for items in payloads.values())


def test_the_fast_path_is_taken_for_valid_payloads(payloads: dict[str, list[Any]]) -> None:
    """The control: the compiled validator accepts the reference's Responses (with the
    absent-as-null leniency) on its own, and is what makes them quick to validate."""
    response = without_nulls(payloads["response"][0])
    fast = validation._fast_check(validation._validator("response"), True)
    assert fast is not None and fast(response) is True

    def timed(runs: int) -> float:
        started = time.perf_counter()
        for _ in range(runs):
            assert violations("response", response, absent_as_null=True) == []
        return time.perf_counter() - started

    quick = timed(20)
    validation._FAST.clear()
    original = validation.jsonschema_rs
    validation.jsonschema_rs = None
    try:
        slow = timed(20)
    finally:
        validation.jsonschema_rs = original
        validation._FAST.clear()
    assert slow > quick  # an ordering, not a timing budget: the fast path does less work
