"""Validate API payloads against the JSON Schemas generated from the OpenAI OpenAPI spec.

The schemas are the self-contained Draft 2020-12 files written by
``scripts/generate_schemas.py`` (see ``SOURCE.json`` for the exact spec commit). Errors are
reported as :class:`Violation` objects with a JSON path (RFC 9535 normalized-path style:
``$.choices[0].message``, ``$['odd key']``) and a short message.

``oneOf``/``anyOf`` failures are explained rather than reported as "not valid under any of
the given schemas": branches whose ``type`` cannot match the instance are discarded, and an
object is matched to a branch by a discriminating field (``role``, ``type``, ``object``)
whose single allowed value the branch declares, mirroring the spec's OpenAPI
``discriminator`` (OpenAPI 3.1, section 4.8.25), which the generated schemas drop.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, relevance

jsonschema_rs: Any
try:  # a compiled validator proves most payloads valid in microseconds (see _fast_check)
    import jsonschema_rs
except ImportError:  # pragma: no cover - a dependency; the pure-Python path stands alone
    jsonschema_rs = None

__all__ = [
    "SCHEMAS",
    "Violation",
    "first_violation",
    "schema_dir",
    "schema_source",
    "stream_event_types",
    "stream_event_violations",
    "violations",
    "violations_of",
]

#: Logical payload name -> schema file name in :func:`schema_dir`.
SCHEMAS: Mapping[str, str] = MappingProxyType(
    {
        "chat.request": "CreateChatCompletionRequest.schema.json",
        "chat.completion": "CreateChatCompletionResponse.schema.json",
        "chat.completion.chunk": "CreateChatCompletionStreamResponse.schema.json",
        "error": "ErrorResponse.schema.json",
        "models.list": "ListModelsResponse.schema.json",
        "model": "Model.schema.json",
        "response": "Response.schema.json",
        "response.event": "ResponseStreamEvent.schema.json",
    }
)

_DISCRIMINATORS = ("role", "type", "object")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_REPR = 80
_DEFS_PREFIX = "#/$defs/"
_PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Violation:
    """One schema violation: where (a JSON path, ``$`` for the root) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def schema_dir() -> Path:
    """Return the directory the schemas are read from.

    An installed wheel carries them in ``conformance/_data/schemas`` (force-included from the
    top-level ``schemas/`` by pyproject.toml); a source checkout uses ``<repo>/schemas``.
    """
    packaged = _PACKAGE_DIR / "_data" / "schemas"
    if (packaged / "SOURCE.json").is_file():
        return packaged
    return _PACKAGE_DIR.parent / "schemas"


def schema_source() -> dict[str, object]:
    """Return the provenance record ``SOURCE.json`` written by the generator."""
    data = json.loads((schema_dir() / "SOURCE.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("SOURCE.json is not a JSON object")
    return data


def violations(name: str, instance: object, *, absent_as_null: bool = False) -> list[Violation]:
    """Return every violation of schema ``name`` (a key of :data:`SCHEMAS`), most relevant
    first; an empty list means ``instance`` is valid.

    With ``absent_as_null``, a required property that is missing is accepted when its schema
    admits ``null`` (``message.refusal``, ``choices[].logprobs``, a chunk's
    ``finish_reason``): the official SDKs read absent and null alike, and many
    OpenAI-compatible servers omit such fields.
    """
    return violations_of(_validator(name), instance, absent_as_null=absent_as_null)


def violations_of(validator: Draft202012Validator, instance: object, *,
                  absent_as_null: bool = False) -> list[Violation]:
    """:func:`violations` for any Draft 2020-12 validator, such as one over a schema a check
    defines in code (Anthropic's Message, which the OpenAI spec does not hold)."""
    fast = _fast_check(validator, absent_as_null)
    if fast is not None:
        try:
            if fast(instance):
                return []
        except Exception:  # not JSON data the fast validator takes: the full path decides
            pass
    errors = sorted(validator.iter_errors(instance), key=_order)
    if absent_as_null:
        errors = [e for e in errors if not _absent_nullable(validator, e)]
    root: dict[str, Any] = validator.schema  # type: ignore[assignment]
    seen: set[Violation] = set()
    result: list[Violation] = []
    for error in errors:
        for violation in _explain(error, root, validator if absent_as_null else None):
            if violation not in seen:
                seen.add(violation)
                result.append(violation)
    return result


def first_violation(
    name: str, instance: object, *, absent_as_null: bool = False
) -> Violation | None:
    """Return the most relevant violation of schema ``name``, or None if ``instance`` is
    valid."""
    found = violations(name, instance, absent_as_null=absent_as_null)
    return found[0] if found else None


# --------------------------------------------------------------------------- the fast path
#
# Most payloads are valid, and proving it with the pure-Python validator costs ~1.6 ms for a
# Responses ``Response`` (its unions are tried branch by branch).  ``jsonschema-rs`` (a
# compiled Draft 2020-12 validator) proves it in microseconds; only an instance it does not
# accept goes through ``jsonschema``, which finds and explains the violations.  With
# ``absent_as_null`` it checks a copy of the schema in which a required property whose schema
# admits null is no longer required (the very test :func:`_absent_nullable` applies), so it
# accepts no instance the full path would fault; tests/test_validation.py compares both.

_FAST: dict[tuple[int, bool], tuple[Draft202012Validator, Callable[[object], bool] | None]] = {}
#: Keywords whose value maps names to schemas, and those whose value is data, not a schema.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                          "dependentSchemas"})
_DATA = frozenset({"enum", "const", "default", "examples", "required", "type", "pattern",
                   "format", "description", "title", "$ref", "$schema", "$id", "$anchor"})


def _fast_check(validator: Draft202012Validator, absent_as_null: bool
                ) -> Callable[[object], bool] | None:
    """The compiled validity test of ``validator``'s schema (None without jsonschema-rs or
    for a schema it cannot compile: the full path alone decides)."""
    key = (id(validator), absent_as_null)
    entry = _FAST.get(key)
    if entry is None or entry[0] is not validator:  # the validator is kept: ids stay unique
        entry = (validator, _compile_fast(validator, absent_as_null))
        _FAST[key] = entry
    return entry[1]


def _compile_fast(validator: Draft202012Validator, absent_as_null: bool
                  ) -> Callable[[object], bool] | None:
    if jsonschema_rs is None:
        return None
    schema: Any = validator.schema
    if absent_as_null:
        schema = _nullable_not_required(validator, schema)
    try:
        compiled = jsonschema_rs.Draft202012Validator(schema, validate_formats=False)
    except Exception:
        return None
    test: Callable[[object], bool] = compiled.is_valid
    return test


#: Relaxed copies of ``$defs`` entries already made (the Responses stream events' validators
#: share them): id -> (the entry, its copy).
_RELAXED_DEFS: dict[int, tuple[object, Any]] = {}


def _nullable_not_required(validator: Draft202012Validator, node: Any) -> Any:
    """A copy of schema ``node`` in which no object requires a property whose schema admits
    null (judged by ``validator``, so ``$ref``s resolve against the whole schema)."""
    if isinstance(node, dict) and isinstance(node.get("$defs"), dict):
        relaxed: dict[str, Any] = {}
        for name, sub in node["$defs"].items():
            made = _RELAXED_DEFS.get(id(sub))
            if made is None or made[0] is not sub:
                made = (sub, _nullable_not_required(validator, sub))
                _RELAXED_DEFS[id(sub)] = made
            relaxed[name] = made[1]
        rest = _nullable_not_required(validator, {k: v for k, v in node.items()
                                                  if k != "$defs"})
        return {**rest, "$defs": relaxed}
    if isinstance(node, list):
        return [_nullable_not_required(validator, item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _nullable_not_required(validator, sub)
                        for name, sub in value.items()}
        elif key in _DATA:
            out[key] = value
        else:
            out[key] = _nullable_not_required(validator, value)
    required, properties = node.get("required"), node.get("properties")
    if isinstance(required, list) and isinstance(properties, dict):
        out["required"] = [
            name for name in required
            if not (name in properties
                    and validator.evolve(schema=properties[name]).is_valid(None))]
    return out


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    try:
        file_name = SCHEMAS[name]
    except KeyError:
        raise KeyError(f"unknown schema {name!r}; expected one of {sorted(SCHEMAS)}") from None
    schema = json.loads((schema_dir() / file_name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


@functools.cache
def _event_validators() -> dict[str, Draft202012Validator]:
    """One validator per Responses stream event ``type``: each member of the spec's
    ``ResponseStreamEvent`` union (a ``$defs`` entry whose ``type`` is one enum value), with
    the ``$defs`` it refers to (not the whole document's: compiling them all, 58 times, took
    ~0.3 s)."""
    document = json.loads((schema_dir() / SCHEMAS["response.event"]).read_text(encoding="utf-8"))
    defs = document["$defs"]
    out: dict[str, Draft202012Validator] = {}
    for member in defs["ResponseStreamEvent"]["anyOf"]:
        name = member["$ref"][len(_DEFS_PREFIX):]
        kind = defs[name].get("properties", {}).get("type", {}).get("enum", [])
        if len(kind) == 1:
            out[kind[0]] = Draft202012Validator({
                **{k: v for k, v in document.items() if k != "$defs"},
                "$defs": {n: defs[n] for n in _referenced(defs, name)},
                "$ref": member["$ref"]})
    return out


def _referenced(defs: Mapping[str, Any], name: str) -> list[str]:
    """``name`` and every ``$defs`` entry it refers to, directly or not."""
    found = [name]
    seen = {name}
    stack: list[Any] = [defs[name]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
                target = ref[len(_DEFS_PREFIX):]
                if target not in seen and target in defs:
                    seen.add(target)
                    found.append(target)
                    stack.append(defs[target])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def stream_event_types() -> frozenset[str]:
    """Every Responses stream event ``type`` the spec defines."""
    return frozenset(_event_validators())


def stream_event_violations(event: object, *, absent_as_null: bool = False) -> list[Violation]:
    """The violations of one Responses stream event against the schema of its own ``type``
    (``ResponseTextDeltaEvent`` for ``response.output_text.delta``, ...); an event whose type
    the spec does not define is one violation at ``$.type`` (``absent_as_null`` as for
    :func:`violations`)."""
    kind = event.get("type") if isinstance(event, dict) else None
    validator = _event_validators().get(kind) if isinstance(kind, str) else None
    if validator is None:
        return [Violation("$.type", f"{_short(kind)} is not a Responses stream event type")]
    return violations_of(validator, event, absent_as_null=absent_as_null)


# --------------------------------------------------------------------------- paths/messages


def json_path(path: Iterable[str | int]) -> str:
    """Format an instance path as ``$.a[0]['b c']``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}"
        else:
            out += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _message(error: ValidationError) -> str:
    """The error's message with an overlong leading repr of the instance shortened."""
    message = error.message
    text = repr(error.instance)
    if len(text) > _MAX_REPR and message.startswith(text):
        return _short(error.instance) + message[len(text) :]
    return message


# --------------------------------------------------------------------------- explanation


def _order(error: ValidationError) -> tuple[int, bool, list[tuple[bool, str | int]]]:
    """Sort key, most relevant first: shallower (like jsonschema's best_match), then not a
    union keyword, then instance order; ties keep schema order (the sort is stable)."""
    path = list(error.path)
    weak = error.validator in ("anyOf", "oneOf")
    return len(path), weak, [(isinstance(p, str), p) for p in path]


def _absent_nullable(validator: Draft202012Validator, error: ValidationError) -> bool:
    """Whether ``error`` is a missing required property whose schema admits null."""
    if error.validator != "required" or not isinstance(error.instance, dict):
        return False
    properties = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    required = error.validator_value if isinstance(error.validator_value, list) else []
    missing = [p for p in required if p not in error.instance and repr(p) in error.message]
    if len(missing) != 1 or missing[0] not in properties:
        return False
    return bool(validator.evolve(schema=properties[missing[0]]).is_valid(None))


def _explain(
    error: ValidationError, root: dict[str, Any],
    lenient: Draft202012Validator | None = None,
) -> list[Violation]:
    """Turn one jsonschema error into the violations that best describe it (``lenient``:
    the validator whose absent-but-nullable properties are forgiven)."""
    if lenient is not None and _absent_nullable(lenient, error):
        return []
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        extra = _additional_properties(error.instance, error.schema)
        if extra:
            return [
                Violation(json_path([*path, key]), f"additional property {key!r} is not allowed")
                for key in extra
            ]
    if error.validator in ("oneOf", "anyOf") and error.context:
        return _explain_union(error, root, lenient)
    return [Violation(json_path(path), _message(error))]


def _additional_properties(instance: dict[str, Any], schema: object) -> list[str]:
    if not isinstance(schema, dict):
        return []
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in declared and not any(re.search(p, key) for p in patterns)
    ]


def _explain_union(
    error: ValidationError, root: dict[str, Any],
    lenient: Draft202012Validator | None = None,
) -> list[Violation]:
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    instance = error.instance
    path = list(error.absolute_path)
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)

    infos = [_BranchInfo.of(branch, root) for branch in branches]
    candidates = [i for i, info in enumerate(infos) if info.admits_type(instance)]
    if not candidates:
        types = list(dict.fromkeys(t for info in infos for t in info.types or ()))
        if types:
            listed = ", ".join(repr(t) for t in types)
            return [Violation(json_path(path), f"{_short(instance)} is not of type {listed}")]
    elif isinstance(instance, dict):
        for field in _DISCRIMINATORS:
            if field not in instance:
                continue
            constrained = [i for i in candidates if field in infos[i].consts]
            if not constrained:
                continue
            value = instance[field]
            matching = [i for i in constrained if value in infos[i].consts[field]]
            if matching:
                candidates = matching
            elif len(constrained) == len(candidates):
                allowed = list(
                    dict.fromkeys(v for i in constrained for v in infos[i].consts[field])
                )
                message = f"{_short(value)} is not one of {allowed!r}"
                return [Violation(json_path([*path, field]), message)]
            else:
                candidates = [i for i in candidates if i not in constrained]
            break

    if len(candidates) == 1 and by_branch.get(candidates[0]):
        return _explain_all(by_branch[candidates[0]], root, lenient)
    pool = [sub for i in candidates for sub in by_branch.get(i, [])] or list(error.context)
    if lenient is not None:
        pool = [sub for sub in pool if not _absent_nullable(lenient, sub)] or pool
    # Like jsonschema's best_match inside a union: the deepest error is the most specific.
    return _explain(min(pool, key=relevance), root, lenient)


def _explain_all(
    errors: list[ValidationError], root: dict[str, Any],
    lenient: Draft202012Validator | None = None,
) -> list[Violation]:
    out: list[Violation] = []
    for sub in sorted(errors, key=_order):
        out.extend(_explain(sub, root, lenient))
    return out


_JSON_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


@dataclass(frozen=True)
class _BranchInfo:
    """What a union branch says about its instance: allowed types and single-value fields."""

    types: frozenset[str] | None
    consts: Mapping[str, tuple[object, ...]]

    @classmethod
    def of(cls, schema: object, root: dict[str, Any]) -> _BranchInfo:
        types: set[str] | None = None
        consts: dict[str, tuple[object, ...]] = {}
        for node in _flatten(schema, root):
            declared = node.get("type")
            if declared is not None:
                found = set(declared) if isinstance(declared, list) else {declared}
                types = found if types is None else types & found
            properties = node.get("properties")
            if isinstance(properties, dict):
                for field in _DISCRIMINATORS:
                    values = _single_values(properties.get(field), root)
                    if values is not None:
                        consts[field] = values
        return cls(None if types is None else frozenset(types), consts)

    def admits_type(self, instance: object) -> bool:
        if self.types is None:
            return True
        kind = _JSON_TYPES.get(type(instance))
        if kind is None:
            return True
        if kind == "integer" and "number" in self.types:
            return True
        if isinstance(instance, float) and instance.is_integer() and "integer" in self.types:
            return True
        return kind in self.types


def _single_values(schema: object, root: dict[str, Any]) -> tuple[object, ...] | None:
    """The values a discriminator property allows, if it is a small enum/const."""
    for node in _flatten(schema, root):
        if "const" in node:
            return (node["const"],)
        enum = node.get("enum")
        if isinstance(enum, list) and 0 < len(enum) <= 2:
            values = tuple(v for v in enum if v is not None)
            if len(values) == 1:
                return values
    return None


def _flatten(schema: object, root: dict[str, Any], depth: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``schema`` and what it includes through ``$ref`` and ``allOf``."""
    if not isinstance(schema, dict) or depth > 16:
        return
    yield schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
        yield from _flatten(root.get("$defs", {}).get(ref[len(_DEFS_PREFIX) :]), root, depth + 1)
    for member in schema.get("allOf", []):
        yield from _flatten(member, root, depth + 1)
