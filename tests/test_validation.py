"""Tests for scripts/generate_schemas.py, the generated schemas/ and conformance.validation."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from conformance import validation
from conformance.validation import (
    SCHEMAS,
    Violation,
    first_violation,
    schema_dir,
    schema_source,
    violations,
)

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "generate_schemas.py"
SPEC = REPO.parent / "shared" / "reference" / "openai-openapi.yaml"
SCHEMA_DIR = REPO / "schemas"
needs_spec = pytest.mark.skipif(
    not SPEC.is_file(), reason=f"OpenAI spec not present at {SPEC} (../shared/reference)"
)


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_schemas", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_schemas", module)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _schema_nodes(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from gen.walk(schema)


# --------------------------------------------------------------------------- generated files


@pytest.mark.parametrize("file_name", sorted(SCHEMAS.values()))
def test_generated_schema_file(file_name: str) -> None:
    path = SCHEMA_DIR / file_name
    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    Draft202012Validator.check_schema(document)
    name = file_name.removesuffix(".schema.json")
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"https://conformance.invalid/schemas/{file_name}"
    assert document["title"] == name
    assert document["$ref"] == f"#/$defs/{name}"
    assert name in document["$defs"]
    assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    for node in _schema_nodes(document):
        leftovers = [k for k in node if k.startswith("x-") or k in gen._DROPPED_KEYWORDS]
        assert not leftovers, (file_name, leftovers)
        assert "nullable" not in node
        ref = node.get("$ref")
        if ref is not None:
            assert ref.startswith("#/$defs/") and ref[8:] in document["$defs"], ref


def test_generated_files_cover_schemas_mapping() -> None:
    source = schema_source()
    assert isinstance(source["schemas"], list)
    assert sorted(source["schemas"]) == sorted(SCHEMAS.values())
    assert source["commit"] == "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"
    assert source["commit_date"] == "2026-08-21T20:48:10Z"
    assert source["sha256"] == "db5d7478feae10b4d331834c60d9765a8aa042e38419f9b1694288c11aa8ebc8"
    assert source["openapi"] == "3.1.0"
    assert source["spec_version"] == "2.3.0"
    assert source["repository"] == "openai/openai-openapi"
    assert source["generator"] == "scripts/generate_schemas.py"
    assert not (SCHEMA_DIR / "SOURCE.json").read_text().endswith("\n\n")


def test_schema_dir_is_repo_schemas_in_checkout() -> None:
    assert schema_dir() == SCHEMA_DIR


def test_schema_dir_prefers_packaged_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "conformance"
    monkeypatch.setattr(validation, "_PACKAGE_DIR", package)
    assert schema_dir() == tmp_path / "schemas"  # no wheel data: <repo>/schemas
    packaged = package / "_data" / "schemas"
    packaged.mkdir(parents=True)
    (packaged / "SOURCE.json").write_text('{"commit": "x"}')
    assert schema_dir() == packaged
    assert schema_source() == {"commit": "x"}


def test_nullable_conversions_in_output() -> None:
    chunk = json.loads((SCHEMA_DIR / SCHEMAS["chat.completion.chunk"]).read_text())
    choice = chunk["$defs"]["CreateChatCompletionStreamResponse"]["properties"]["choices"]
    finish = choice["items"]["properties"]["finish_reason"]
    assert finish["type"] == ["string", "null"]
    assert finish["enum"][-1] is None
    usage = chunk["$defs"]["CreateChatCompletionStreamResponse"]["properties"]["usage"]
    assert usage["anyOf"] == [{"$ref": "#/$defs/CompletionUsage"}, {"type": "null"}]
    assert "description" in usage


# --------------------------------------------------------------------------- generator: real spec


@needs_spec
def test_check_passes_against_committed_output() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@needs_spec
def test_check_reports_drift(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, out)
    target = out / SCHEMAS["error"]
    target.write_text(target.read_text().replace('"error"', '"errors"'))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert SCHEMAS["error"] in result.stderr


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.skip(f"OpenAI spec not present at {SPEC} (../shared/reference)")
    loader = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
    loaded: dict[str, Any] = yaml.load(SPEC.read_bytes(), Loader=loader)
    return loaded


def _chat_examples(openapi: dict[str, Any]) -> dict[str, str]:
    meta = openapi["paths"]["/chat/completions"]["post"]["x-oaiMeta"]
    return {e["title"]: e["response"] for e in meta["examples"]}


def test_spec_chat_examples(openapi: dict[str, Any]) -> None:
    examples = _chat_examples(openapi)
    assert violations("chat.completion", json.loads(examples["Default"])) == []
    assert violations("chat.completion", json.loads(examples["Image input"])) == []
    chunks = [json.loads(line) for line in examples["Streaming"].splitlines() if line[:1] == "{"]
    assert len(chunks) == 3
    for chunk in chunks:
        assert violations("chat.completion.chunk", chunk) == []


def test_spec_examples_that_contradict_the_spec(openapi: dict[str, Any]) -> None:
    """Two older examples in the spec omit the required ``message.refusal`` and one has
    ``system_fingerprint: null``; the schema (correctly, per the spec) rejects them."""
    examples = _chat_examples(openapi)
    assert [str(v) for v in violations("chat.completion", json.loads(examples["Functions"]))] == [
        "$.choices[0].message: 'refusal' is a required property"
    ]
    assert [str(v) for v in violations("chat.completion", json.loads(examples["Logprobs"]))] == [
        "$.system_fingerprint: None is not of type 'string'",
        "$.choices[0].message: 'refusal' is a required property",
        "$.choices[0].logprobs: 'refusal' is a required property",
    ]


def test_spec_models_example(openapi: dict[str, Any]) -> None:
    text = openapi["paths"]["/models"]["get"]["x-oaiMeta"]["examples"]["response"]
    # The README notes the example has a trailing comma; remove it to get JSON.
    listing = json.loads(re.sub(r",(\s*[\]}])", r"\1", text))
    assert violations("models.list", listing) == []


# --------------------------------------------------------------------------- generator: units


def _convert(schema: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    stats = gen.Stats()
    return gen.convert(schema, stats), stats


@pytest.mark.parametrize(
    ("schema", "expected", "kind"),
    [
        ({"type": "integer", "nullable": True}, {"type": ["integer", "null"]}, "type"),
        (
            {"type": ["string", "integer"], "nullable": True},
            {"type": ["string", "integer", "null"]},
            "type",
        ),
        (
            {"type": "string", "enum": ["a"], "nullable": True},
            {"type": ["string", "null"], "enum": ["a", None]},
            "type+enum",
        ),
        ({"enum": ["a"], "nullable": True}, {"enum": ["a", None]}, "enum"),
        ({"description": "d", "nullable": True}, {"description": "d"}, "none"),
        (
            {"$ref": "#/components/schemas/X", "nullable": True, "description": "d"},
            {"description": "d", "anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}]},
            "anyOf",
        ),
        (
            {"oneOf": [{"type": "string"}], "nullable": True, "default": None, "title": "T"},
            {
                "title": "T",
                "default": None,
                "anyOf": [{"oneOf": [{"type": "string"}]}, {"type": "null"}],
            },
            "anyOf",
        ),
        (
            {"type": "object", "allOf": [{"type": "object"}], "nullable": True},
            {"anyOf": [{"type": "object", "allOf": [{"type": "object"}]}, {"type": "null"}]},
            "anyOf",
        ),
    ],
)
def test_convert_nullable(schema: dict[str, Any], expected: dict[str, Any], kind: str) -> None:
    converted, stats = _convert(schema)
    assert converted == expected
    assert stats.nullable == {kind: 1}


def test_convert_nullable_false_is_dropped() -> None:
    assert _convert({"type": "string", "nullable": False})[0] == {"type": "string"}


def test_convert_is_schema_aware() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "discriminator": {"propertyName": "type"},
        "example": {"nullable": True},
        "examples": "not an array",
        "x-oaiMeta": {"example": "..."},
        "properties": {
            "example": {"type": "string", "example": "x", "examples": ["x"]},
            "discriminator": {"type": "string", "x-stainless-const": True},
            "nullable": {"type": "boolean", "nullable": True},
        },
        "default": {"nullable": True, "x-data": 1},
        "required": ["example"],
    }
    converted, stats = _convert(schema)
    assert converted == {
        "type": "object",
        "properties": {
            "example": {"type": "string", "examples": ["x"]},
            "discriminator": {"type": "string"},
            "nullable": {"type": ["boolean", "null"]},
        },
        "default": {"nullable": True, "x-data": 1},
        "required": ["example"],
    }
    assert stats.dropped == {
        "discriminator": 1,
        "example": 2,
        "examples": 1,
        "x-oaiMeta": 1,
        "x-stainless-const": 1,
    }
    assert schema["properties"]["example"]["example"] == "x"  # input not mutated


def test_convert_rejects_foreign_refs() -> None:
    with pytest.raises(gen.GenerationError, match="unsupported"):
        _convert({"$ref": "other.yaml#/X"})


def test_recursive_refs_become_refs_to_their_owner() -> None:
    """Draft 2019-09's $recursiveAnchor/$recursiveRef (CompoundFilter) is no 2020-12 keyword:
    the anchor goes, the self-reference becomes a plain $ref."""
    components: dict[str, Any] = {"F": {"$recursiveAnchor": True, "type": "object", "properties": {
        "filters": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/G"},
                                                        {"$recursiveRef": "#"}]}}}},
        "G": {"type": "string"}}
    out = gen.resolve_recursive(components)
    assert "$recursiveAnchor" not in out["F"]
    assert out["F"]["properties"]["filters"]["items"]["oneOf"][1] == {
        "$ref": "#/components/schemas/F"}
    assert components["F"]["$recursiveAnchor"] is True  # the input is not changed
    with pytest.raises(gen.GenerationError, match="recursiveRef"):
        gen.resolve_recursive({"H": {"items": {"$recursiveRef": "#"}}})


def test_reconcile_allof_nullability() -> None:
    defs: dict[str, Any] = {
        "A": {
            "allOf": [
                {"$ref": "#/$defs/B"},
                {
                    "type": "object",
                    "properties": {"p": {"type": "integer"}, "q": {"type": "string"}},
                },
            ]
        },
        "B": {
            "type": "object",
            "properties": {"p": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "q": {}},
        },
    }
    defs["C"] = {"allOf": [{"properties": {"r": {"type": "string"}}}, {"properties": {"r": {}}}]}
    stats = gen.Stats()
    gen.reconcile_allof_nullability(defs, stats)
    assert defs["C"]["allOf"][0]["properties"]["r"] == {"type": "string"}
    assert defs["A"]["allOf"][1]["properties"] == {
        "p": {"type": ["integer", "null"]},
        "q": {"type": "string"},  # B's q is unconstrained, which does not make q nullable
    }
    assert stats.allof_patched == ["A.p"]


def _mini_spec(tmp_path: Path, **overrides: Any) -> Path:
    schemas: dict[str, Any] = {name: {"type": "object"} for name in gen.TOP_LEVEL}
    schemas["ErrorResponse"] = {
        "type": "object",
        "properties": {"error": {"$ref": "#/components/schemas/Error"}},
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {"code": {"type": "string", "nullable": True}},
    }
    schemas["Unused"] = {"type": "string"}
    schemas.update(overrides)
    path = tmp_path / "mini.yaml"
    document = {"openapi": "3.1.0", "info": {"version": "9.9"}, "components": {"schemas": schemas}}
    path.write_text(yaml.safe_dump(document))
    return path


def test_generate_requires_commit_for_other_specs(tmp_path: Path) -> None:
    spec = _mini_spec(tmp_path)
    with pytest.raises(gen.GenerationError, match="--commit"):
        gen.generate(spec)
    files, _ = gen.generate(spec, commit="abc123")
    source = json.loads(files["SOURCE.json"])
    assert source["commit"] == "abc123"
    assert source["commit_date"] is None
    assert source["spec_file"] == "mini.yaml"
    assert source["spec_version"] == "9.9"
    error = json.loads(files["ErrorResponse.schema.json"])
    assert sorted(error["$defs"]) == ["Error", "ErrorResponse"]  # only reachable schemas
    assert error["$defs"]["Error"]["properties"]["code"]["type"] == ["string", "null"]
    assert files == gen.generate(spec, commit="abc123")[0]  # deterministic


def test_generate_fails_loudly_on_invalid_schema(tmp_path: Path) -> None:
    spec = _mini_spec(tmp_path, Model={"type": "object", "minProperties": -1})
    with pytest.raises(gen.GenerationError, match="metaschema"):
        gen.generate(spec, commit="abc123")


def test_generate_fails_on_missing_component(tmp_path: Path) -> None:
    spec = _mini_spec(tmp_path, Model={"$ref": "#/components/schemas/Nope"})
    with pytest.raises(gen.GenerationError, match="Nope"):
        gen.generate(spec, commit="abc123")


def test_main_write_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = _mini_spec(tmp_path), tmp_path / "out"
    args = ["--spec", str(spec), "--out", str(out), "--commit", "abc123"]
    assert gen.main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*SCHEMAS.values(), "SOURCE.json"])
    (out / "providers.schema.json").write_text("{}")  # other files in --out are left alone
    assert gen.main([*args, "--check"]) == 0
    (out / "Model.schema.json").unlink()
    capsys.readouterr()
    assert gen.main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Model.schema.json" in err
    assert (out / "providers.schema.json").read_text() == "{}"


def test_main_reports_missing_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--spec", str(tmp_path / "absent.yaml"), "--out", str(tmp_path)]) == 2
    assert "absent.yaml" in capsys.readouterr().err


# --------------------------------------------------------------------------- validator

COMPLETION: dict[str, Any] = {
    # The "Default" example response of createChatCompletion in the reference spec (x-oaiMeta).
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-5.4",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
}

FIRST_CHUNK: dict[str, Any] = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1694268190,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": "", "refusal": None},
            "logprobs": None,
            "finish_reason": None,
        }
    ],
    "usage": None,
}

REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "developer", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "text", "text": "Hello!"}]},
    ],
}


def paths(found: list[Violation]) -> list[str]:
    return [v.path for v in found]


def test_spec_example_completion_validates() -> None:
    assert violations("chat.completion", COMPLETION) == []
    assert first_violation("chat.completion", COMPLETION) is None


def test_first_stream_chunk_with_nulls_validates() -> None:
    assert violations("chat.completion.chunk", FIRST_CHUNK) == []


def test_final_usage_chunk_validates() -> None:
    chunk = {
        **FIRST_CHUNK,
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
    }
    assert violations("chat.completion.chunk", chunk) == []


def test_finish_chunk_validates_and_bad_finish_reason_fails() -> None:
    chunk = copy.deepcopy(FIRST_CHUNK)
    chunk["choices"][0].update(delta={}, finish_reason="stop")
    assert violations("chat.completion.chunk", chunk) == []
    chunk["choices"][0]["finish_reason"] = "done"
    found = first_violation("chat.completion.chunk", chunk)
    assert found is not None
    assert found.path == "$.choices[0].finish_reason"
    assert "'done' is not one of" in found.message


def test_request_validates() -> None:
    assert violations("chat.request", REQUEST) == []


def test_request_with_explicit_nulls_validates() -> None:
    request = {
        **REQUEST,
        "max_tokens": None,
        "max_completion_tokens": None,
        "n": None,
        "seed": None,
        "stop": None,
        "top_logprobs": None,
        "logprobs": None,
        "temperature": None,
        "top_p": None,
        "presence_penalty": None,
        "frequency_penalty": None,
        "logit_bias": None,
        "stream": None,
        "stream_options": None,
        "store": None,
        "prediction": None,
        "audio": None,
        "service_tier": None,
        "reasoning_effort": None,
        "metadata": None,
        "web_search_options": {"user_location": None},
    }
    assert violations("chat.request", request) == []


def test_request_typical_options_validate() -> None:
    request = {
        **REQUEST,
        "stop": ["\n", "END"],
        "top_logprobs": 3,
        "logprobs": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    }
    assert violations("chat.request", request) == []


def test_unknown_role_names_allowed_roles() -> None:
    request = {**REQUEST, "messages": [{"role": "wizard", "content": "hi"}]}
    found = first_violation("chat.request", request)
    assert found == Violation(
        "$.messages[0].role",
        "'wizard' is not one of ['developer', 'system', 'user', 'assistant', 'tool', 'function']",
    )
    assert violations("chat.request", request) == [found]


def test_message_branch_chosen_by_role() -> None:
    request = {**REQUEST, "messages": [{"role": "tool", "content": "42"}]}
    assert [str(v) for v in violations("chat.request", request)] == [
        "$.messages[0]: 'tool_call_id' is a required property"
    ]


def test_content_part_branch_chosen_by_type() -> None:
    parts = [
        {"type": "text"},
        {"type": "image_url", "image_url": {}},
        {"type": "video", "video": {}},
    ]
    request = {**REQUEST, "messages": [{"role": "user", "content": parts}]}
    assert [str(v) for v in violations("chat.request", request)] == [
        "$.messages[0].content[0]: 'text' is a required property",
        "$.messages[0].content[1].image_url: 'url' is a required property",
        "$.messages[0].content[2].type: 'video' is not one of "
        "['text', 'image_url', 'input_audio', 'file']",
    ]


def test_missing_created() -> None:
    completion = {k: v for k, v in COMPLETION.items() if k != "created"}
    assert violations("chat.completion", completion) == [
        Violation("$", "'created' is a required property")
    ]


def test_content_of_wrong_type() -> None:
    completion = copy.deepcopy(COMPLETION)
    completion["choices"][0]["message"]["content"] = 123
    found = first_violation("chat.completion", completion)
    assert found is not None
    assert found.path == "$.choices[0].message.content"
    assert found.message == "123 is not of type 'string', 'null'"


def test_tool_call_without_function_name() -> None:
    completion = copy.deepcopy(COMPLETION)
    completion["choices"][0]["finish_reason"] = "tool_calls"
    completion["choices"][0]["message"].update(
        content=None,
        tool_calls=[{"id": "call_1", "type": "function", "function": {"arguments": "{}"}}],
    )
    assert violations("chat.completion", completion) == [
        Violation("$.choices[0].message.tool_calls[0].function", "'name' is a required property")
    ]


def test_tool_call_with_unknown_type() -> None:
    completion = copy.deepcopy(COMPLETION)
    completion["choices"][0]["message"]["tool_calls"] = [{"id": "c", "type": "magic"}]
    found = first_violation("chat.completion", completion)
    assert found == Violation(
        "$.choices[0].message.tool_calls[0].type", "'magic' is not one of ['function', 'custom']"
    )


def test_request_tool_call_without_function_name() -> None:
    message = {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {}}]}
    request = {**REQUEST, "messages": [message]}
    assert violations("chat.request", request) == [
        Violation("$.messages[0].tool_calls[0].function", "'name' is a required property"),
        Violation("$.messages[0].tool_calls[0].function", "'arguments' is a required property"),
    ]


def test_nullable_ref_descends_into_object() -> None:
    chunk = {**FIRST_CHUNK, "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    assert violations("chat.completion.chunk", chunk) == [
        Violation("$.usage", "'total_tokens' is a required property")
    ]


def test_error_envelope_requires_param_and_code() -> None:
    assert violations("error", {"error": {"message": "bad", "type": "invalid_request_error"}}) == [
        Violation("$.error", "'param' is a required property"),
        Violation("$.error", "'code' is a required property"),
    ]
    ok = {"error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}}
    assert violations("error", ok) == []


def test_models_list() -> None:
    model = {"id": "gpt-4o", "object": "model", "created": 1686935002, "owned_by": "openai"}
    assert violations("models.list", {"object": "list", "data": [model]}) == []
    assert violations("model", {**model, "shutdown_date": None}) == []
    assert violations("models.list", {"data": [model]}) == [
        Violation("$", "'object' is a required property")
    ]
    assert violations("model", {**model, "object": "models"}) == [
        Violation("$.object", "'models' is not one of ['model']")
    ]


def test_additional_properties_point_at_the_value() -> None:
    # custom tool (chosen by type "custom") -> format oneOf (chosen by type "text"), which
    # declares additionalProperties: false.
    tool = {"type": "custom", "custom": {"name": "t", "format": {"type": "text", "bogus": 1}}}
    assert violations("chat.request", {**REQUEST, "tools": [tool]}) == [
        Violation("$.tools[0].custom.format.bogus", "additional property 'bogus' is not allowed")
    ]


def test_non_identifier_keys_are_quoted() -> None:
    assert validation.json_path(["a", 0, "b c", "it's", "_x1"]) == "$.a[0]['b c']['it\\'s']._x1"


def test_long_instances_are_shortened() -> None:
    found = first_violation("chat.completion", {**COMPLETION, "choices": "x" * 500})
    assert found is not None
    assert found.path == "$.choices"
    assert len(found.message) < 120 and found.message.endswith("is not of type 'array'")


def test_non_object_root() -> None:
    assert violations("error", []) == [Violation("$", "[] is not of type 'object'")]


def test_violation_str() -> None:
    assert str(Violation("$.a", "boom")) == "$.a: boom"


def test_unknown_schema_name() -> None:
    with pytest.raises(KeyError, match=r"chat\.request"):
        violations("chat.requests", {})
