#!/usr/bin/env python3
"""Generate self-contained JSON Schema (Draft 2020-12) files from the OpenAI OpenAPI spec.

Input is the reference copy of ``openapi.yaml`` from openai/openai-openapi described in
``../shared/reference/README.md``. For each top-level schema in :data:`TOP_LEVEL` this
writes ``schemas/<Name>.schema.json`` holding only the component schemas reachable from it
(under ``$defs``, with ``#/components/schemas/X`` rewritten to ``#/$defs/X``), plus
``schemas/SOURCE.json`` recording provenance.

OpenAPI-only constructs are converted as the reference README ("What a plain JSON Schema
(Draft 2020-12) validator needs converted") lists them:

* ``nullable: true`` (OpenAPI 3.0) becomes ``"null"`` in ``type`` and ``None`` in ``enum``,
  or, when the schema is a ``$ref``/``oneOf``/``anyOf``/``allOf``/``const``/``not``,
  ``{"anyOf": [<schema>, {"type": "null"}]}`` with annotations kept outside.
* A property that may be null in one ``allOf`` member but not in another can never be null,
  which contradicts the member that allows it; the non-null declaration is made nullable
  too. In this spec that is ``CreateModelResponseProperties.top_logprobs`` (README: "top_logprobs
  conflict").
* Draft 2019-09's ``$recursiveAnchor: true`` / ``$recursiveRef: "#"`` (``CompoundFilter``,
  reachable from the Responses objects) are not 2020-12 keywords: the anchor is dropped and
  the reference becomes a plain ``$ref`` to the component that declares the anchor (the only
  use in the spec is that self-reference).
* ``discriminator``, ``example``, ``externalDocs``, ``xml`` and vendor ``x-*`` keywords are
  dropped; ``examples`` is kept only when it is an array (its 2020-12 form).
* A schema that declares ``properties`` or ``required`` but no ``type`` (and no ``$ref`` or
  combinator) gets ``"type": "object"``: JSON Schema applies those keywords to objects only,
  so without it any list, number or string passes (``Model``: ``{"data": [[null]]}`` was a
  valid model list).

Usage::

    python scripts/generate_schemas.py [--spec PATH] [--out DIR] [--check]
                                       [--commit SHA [--commit-date DATE]]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "reference" / "openai-openapi.yaml"
DEFAULT_OUT = REPO_ROOT / "schemas"

# Provenance of the reference copy, from ../shared/reference/README.md ("Provenance"). The
# commit cannot be derived from the file, so it is only recorded when the file's sha256 is the
# one the README lists; any other input must name its commit with --commit.
SOURCE_REPOSITORY = "openai/openai-openapi"
SOURCE_COMMIT = "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"
SOURCE_COMMIT_DATE = "2026-08-21T20:48:10Z"
SOURCE_SHA256 = "db5d7478feae10b4d331834c60d9765a8aa042e38419f9b1694288c11aa8ebc8"

GENERATOR = "scripts/generate_schemas.py"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "https://conformance.invalid/schemas/"
COMPONENT_REF_PREFIX = "#/components/schemas/"
DEFS_REF_PREFIX = "#/$defs/"

#: Top-level component schemas, one output file each.
TOP_LEVEL: tuple[str, ...] = (
    "CreateChatCompletionRequest",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "ErrorResponse",
    "ListModelsResponse",
    "Model",
    "Response",
    "ResponseStreamEvent",
)

# JSON Schema 2020-12 keywords whose values are schemas (Core section 10, Validation 6).
_SCHEMA_KEYWORDS = frozenset(
    {
        "additionalItems",
        "additionalProperties",
        "contains",
        "contentSchema",
        "else",
        "if",
        "items",
        "not",
        "propertyNames",
        "then",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
_SCHEMA_MAP_KEYWORDS = frozenset(
    {"$defs", "definitions", "dependentSchemas", "patternProperties", "properties"}
)
_SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
# OpenAPI 3.x Schema Object keywords that are not JSON Schema (OAS 3.1 section 4.8.24).
_DROPPED_KEYWORDS = frozenset({"discriminator", "example", "externalDocs", "xml"})
# Keywords that, when present, stop "null" being added to `type` from being enough.
_WRAP_KEYWORDS = ("$ref", "oneOf", "anyOf", "allOf", "const", "not")
# Annotations kept on the outer schema when wrapping in anyOf.
_OUTER_ANNOTATIONS = ("title", "description", "default", "deprecated", "readOnly", "writeOnly")

Schema = dict[str, Any]


class GenerationError(Exception):
    """The spec could not be converted into valid, self-contained schemas."""


@dataclass
class Stats:
    """What the conversion changed, for the summary printed after generation."""

    #: ``nullable: true`` conversions by kind: "type", "type+enum", "enum", "anyOf", "none".
    nullable: Counter[str] = field(default_factory=Counter)
    #: ``Owner.property`` declarations made nullable to match another allOf member.
    allof_patched: list[str] = field(default_factory=list)
    #: Dropped keywords by name.
    dropped: Counter[str] = field(default_factory=Counter)
    #: Object schemas (``properties``/``required``) without a ``type``, typed as objects, by
    #: title.
    typed: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        def fmt(counter: Counter[str]) -> str:
            return ", ".join(f"{k}={v}" for k, v in sorted(counter.items())) or "none"

        return (
            f"nullable: {sum(self.nullable.values())} converted ({fmt(self.nullable)}); "
            f"allOf nullability patched: {', '.join(self.allof_patched) or 'none'}; "
            f"dropped keywords: {fmt(self.dropped)}; "
            f"typed as objects: {fmt(self.typed)}"
        )


# --------------------------------------------------------------------------- traversal


def subschemas(schema: Schema) -> Iterator[Schema]:
    """Yield the direct subschemas of ``schema`` (only keyword positions that hold schemas)."""
    for key, value in schema.items():
        if key in _SCHEMA_KEYWORDS and isinstance(value, dict):
            yield value
        elif key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            yield from (v for v in value.values() if isinstance(v, dict))
        elif key in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            yield from (v for v in value if isinstance(v, dict))


def walk(schema: Schema) -> Iterator[Schema]:
    """Yield ``schema`` and every schema nested in it, depth first."""
    yield schema
    for sub in subschemas(schema):
        yield from walk(sub)


def component_name(ref: str) -> str:
    """Return ``X`` for ``#/components/schemas/X``; reject any other reference form."""
    if not ref.startswith(COMPONENT_REF_PREFIX):
        raise GenerationError(f"unsupported $ref {ref!r} (only {COMPONENT_REF_PREFIX}X)")
    return ref[len(COMPONENT_REF_PREFIX) :]


def reachable(components: dict[str, Schema], roots: tuple[str, ...]) -> list[str]:
    """Return the names of the component schemas reachable from ``roots``, sorted."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        if name not in components:
            raise GenerationError(f"component schema {name!r} is referenced but not defined")
        seen.add(name)
        for node in walk(components[name]):
            ref = node.get("$ref")
            if isinstance(ref, str):
                stack.append(component_name(ref))
    return sorted(seen)


# --------------------------------------------------------------------------- conversion


def resolve_recursive(components: dict[str, Schema]) -> dict[str, Schema]:
    """``components`` with each ``$recursiveRef: "#"`` turned into a ``$ref`` to the component
    that holds it (whose ``$recursiveAnchor`` is dropped); other recursive refs are refused."""
    out = dict(components)
    for name, schema in components.items():
        if "$recursiveAnchor" not in schema:
            continue
        schema = copy.deepcopy(schema)
        del schema["$recursiveAnchor"]
        for node in walk(schema):
            for sub in (node.get("items"), *node.get("oneOf", []), *node.get("anyOf", [])):
                if isinstance(sub, dict) and "$recursiveRef" in sub:
                    if sub.pop("$recursiveRef") != "#":
                        raise GenerationError(f"{name}: unsupported $recursiveRef")
                    sub["$ref"] = COMPONENT_REF_PREFIX + name
        out[name] = schema
    for name in out:
        if any("$recursiveRef" in node for node in walk(out[name])):
            raise GenerationError(f"{name}: $recursiveRef without a $recursiveAnchor owner")
    return out



def make_nullable(schema: Schema) -> tuple[Schema, str]:
    """Return ``schema`` changed to also accept ``null`` (OpenAPI ``nullable``), and how.

    The kind is "anyOf" (wrapped), "type", "type+enum", "enum" or "none" (already
    unconstrained).
    """
    schema = {k: v for k, v in schema.items() if k != "nullable"}
    if any(k in schema for k in _WRAP_KEYWORDS):
        outer = {k: schema.pop(k) for k in _OUTER_ANNOTATIONS if k in schema}
        return {**outer, "anyOf": [schema, {"type": "null"}]}, "anyOf"
    kinds = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if "null" not in types:
            schema["type"] = [*types, "null"]
        kinds.append("type")
    if "enum" in schema:
        if None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        kinds.append("enum")
    return schema, "+".join(kinds) or "none"


def convert(schema: Schema, stats: Stats) -> Schema:
    """Return a converted deep copy of ``schema`` (see the module docstring)."""
    out: Schema = {}
    for key, value in schema.items():
        if (
            key.startswith("x-")
            or key in _DROPPED_KEYWORDS
            or (key == "examples" and not isinstance(value, list))
        ):
            stats.dropped[key] += 1
        elif key == "$ref" and isinstance(value, str):
            out[key] = DEFS_REF_PREFIX + component_name(value)
        elif key in _SCHEMA_KEYWORDS and isinstance(value, dict):
            out[key] = convert(value, stats)
        elif key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            out[key] = {
                k: convert(v, stats) if isinstance(v, dict) else v for k, v in value.items()
            }
        elif key in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            out[key] = [convert(v, stats) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = copy.deepcopy(value)
    if ("properties" in out or "required" in out) and "type" not in out and not any(
            k in out for k in _WRAP_KEYWORDS):
        out["type"] = "object"
        stats.typed[str(schema.get("title", "untitled"))] += 1
    if "nullable" in out:
        if out["nullable"] is True:
            out, kind = make_nullable(out)
            stats.nullable[kind] += 1
        else:
            del out["nullable"]
    return out


def _resolve(schema: Schema, defs: dict[str, Schema]) -> Schema:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(DEFS_REF_PREFIX):
        return defs[ref[len(DEFS_REF_PREFIX) :]]
    return schema


def may_be_null(schema: Schema, defs: dict[str, Schema], depth: int = 0) -> bool:
    """Whether ``null`` can validate against ``schema`` (conservative, follows ``$ref``)."""
    if depth > 20:
        return True
    if "$ref" in schema and not may_be_null(_resolve(schema, defs), defs, depth + 1):
        return False
    types = schema.get("type")
    if types is not None and "null" not in (types if isinstance(types, list) else [types]):
        return False
    if "enum" in schema and None not in schema["enum"]:
        return False
    if "const" in schema and schema["const"] is not None:
        return False
    for key in ("anyOf", "oneOf"):
        if key in schema and not any(may_be_null(s, defs, depth + 1) for s in schema[key]):
            return False
    return all(may_be_null(s, defs, depth + 1) for s in schema.get("allOf", []))


def declares_null(schema: Schema, defs: dict[str, Schema], depth: int = 0) -> bool:
    """Whether ``schema`` explicitly allows ``null`` (a "null" type, a None enum value, or a
    null-declaring anyOf/oneOf branch), following ``$ref``."""
    if depth > 20:
        return False
    types = schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return True
    enum = schema.get("enum")
    if (isinstance(enum, list) and None in enum) or ("const" in schema and schema["const"] is None):
        return True
    if "$ref" in schema and declares_null(_resolve(schema, defs), defs, depth + 1):
        return True
    return any(
        declares_null(s, defs, depth + 1) for k in ("anyOf", "oneOf") for s in schema.get(k, [])
    )


def _member_properties(
    member: Schema, defs: dict[str, Schema], depth: int = 0
) -> Iterator[tuple[Schema, str]]:
    """Yield ``(properties_dict, name)`` for every property an allOf member declares."""
    if depth > 20:
        return
    member = _resolve(member, defs)
    for name in member.get("properties", {}):
        yield member["properties"], name
    for sub in member.get("allOf", []):
        yield from _member_properties(sub, defs, depth + 1)


def reconcile_allof_nullability(defs: dict[str, Schema], stats: Stats) -> None:
    """Make a property nullable in every allOf member if any member declares it nullable.

    Under allOf a value must satisfy all members, so a property that one member declares
    nullable but another declares non-null could never be null (README: top_logprobs
    conflict). Members that leave the property unconstrained do not count as declaring it
    nullable. Patched locations are recorded in ``stats.allof_patched``.
    """
    all_of = [node["allOf"] for d in sorted(defs) for node in walk(defs[d]) if "allOf" in node]
    for members in all_of:
        decls: dict[str, list[Schema]] = {}
        for member in members:
            for props, name in _member_properties(member, defs):
                decls.setdefault(name, []).append(props)
        for name, owners in sorted(decls.items()):
            if not any(declares_null(props[name], defs) for props in owners):
                continue
            for props in owners:
                if not may_be_null(props[name], defs):
                    props[name] = make_nullable(props[name])[0]
                    owner = next(d for d in sorted(defs) if _owns(defs[d], props))
                    stats.allof_patched.append(f"{owner}.{name}")


def _owns(schema: Schema, props: Schema) -> bool:
    return any(node.get("properties") is props for node in walk(schema))


# --------------------------------------------------------------------------- output


def schema_document(name: str, defs: dict[str, Schema]) -> Schema:
    """Build the self-contained schema document for top-level schema ``name``."""
    needed = _reachable_defs(defs, name)
    return {
        "$schema": DIALECT,
        "$id": f"{ID_PREFIX}{name}.schema.json",
        "title": name,
        "$ref": f"{DEFS_REF_PREFIX}{name}",
        "$defs": {n: defs[n] for n in needed},
    }


def _reachable_defs(defs: dict[str, Schema], root: str) -> list[str]:
    seen: set[str] = set()
    stack = [root]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in walk(defs[name]):
            ref = node.get("$ref")
            if isinstance(ref, str):
                stack.append(ref[len(DEFS_REF_PREFIX) :])
    return sorted(seen)


def check_document(file_name: str, document: Schema) -> None:
    """Fail loudly unless ``document`` passes the 2020-12 metaschema and all refs resolve."""
    try:
        Draft202012Validator.check_schema(document)
    except SchemaError as exc:
        raise GenerationError(f"{file_name} fails the 2020-12 metaschema: {exc.message}") from exc
    for node in walk(document):
        ref = node.get("$ref")
        if isinstance(ref, str) and (
            not ref.startswith(DEFS_REF_PREFIX)
            or ref[len(DEFS_REF_PREFIX) :] not in document["$defs"]
        ):
            raise GenerationError(f"{file_name}: unresolvable $ref {ref!r}")


def dump(document: object) -> str:
    """Serialise deterministically: sorted keys, indent 2, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_spec(path: Path) -> tuple[bytes, Schema]:
    """Read the spec, returning its bytes and parsed content (libyaml loader if available)."""
    raw = path.read_bytes()
    # libyaml's CSafeLoader is several times faster on this 3 MB file.
    loader = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
    spec = yaml.load(raw, Loader=loader)
    if not isinstance(spec, dict):
        raise GenerationError(f"{path}: not an OpenAPI document")
    return raw, spec


def generate(
    spec_path: Path, commit: str | None = None, commit_date: str | None = None
) -> tuple[dict[str, str], Stats]:
    """Return ``{file name: file text}`` for every generated file, and conversion stats."""
    raw, spec = load_spec(spec_path)
    sha256 = hashlib.sha256(raw).hexdigest()
    if sha256 == SOURCE_SHA256:
        if commit not in (None, SOURCE_COMMIT):
            raise GenerationError(f"--commit {commit} contradicts the README for this file")
        commit, commit_date = SOURCE_COMMIT, commit_date or SOURCE_COMMIT_DATE
    elif commit is None:
        raise GenerationError(
            f"{spec_path.name} has sha256 {sha256}, not the reference copy's {SOURCE_SHA256}; "
            "pass --commit SHA (and --commit-date) naming the openai/openai-openapi commit"
        )
    components = resolve_recursive(spec.get("components", {}).get("schemas", {}))
    names = reachable(components, TOP_LEVEL)
    stats = Stats()
    defs = {name: convert(components[name], stats) for name in names}
    reconcile_allof_nullability(defs, stats)

    files: dict[str, str] = {}
    for name in TOP_LEVEL:
        file_name = f"{name}.schema.json"
        document = schema_document(name, defs)
        check_document(file_name, document)
        files[file_name] = dump(document)
    source = {
        "spec_file": spec_path.name,
        "repository": SOURCE_REPOSITORY,
        "commit": commit,
        "commit_date": commit_date,
        "openapi": spec.get("openapi"),
        "spec_version": spec.get("info", {}).get("version"),
        "sha256": sha256,
        "generator": GENERATOR,
        "schemas": list(files),
    }
    files["SOURCE.json"] = dump(source)
    return files, stats


def stale_files(files: dict[str, str], out: Path) -> list[str]:
    """Return the names of generated files whose on-disk copy in ``out`` is missing or differs."""
    stale = []
    for name, text in files.items():
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="OpenAPI YAML file")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the files in --out are out of date"
    )
    parser.add_argument("--commit", help="openai/openai-openapi commit of a non-reference spec")
    parser.add_argument("--commit-date", help="ISO 8601 date of --commit")
    args = parser.parse_args(argv)

    try:
        files, stats = generate(args.spec, args.commit, args.commit_date)
    except (GenerationError, OSError, yaml.YAMLError) as exc:
        print(f"generate_schemas: error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = stale_files(files, args.out)
        if stale:
            print(
                f"generate_schemas: {args.out} is out of date ({', '.join(stale)}); "
                f"run python {GENERATOR}",
                file=sys.stderr,
            )
            return 1
        print(f"generate_schemas: {args.out} is up to date ({len(files)} files)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8", newline="\n")
    print(f"generate_schemas: wrote {len(files)} files to {args.out}")
    print(f"generate_schemas: {stats.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
