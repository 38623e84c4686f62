"""``providers.yaml`` as a YAML document whose every key keeps its line, and its JSON Schema
check (Draft 2020-12) with one ``file:line: key: problem`` message per violation.

Loading is bounded: nesting deeper than :data:`MAX_DEPTH` and aliases expanding beyond
:data:`MAX_VALUES` values are refused (PyYAML alone would recurse or expand without limit).
The turning of the validated data into frozen dataclasses lives in :mod:`conformance.config`.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeAlias

import jsonschema
import yaml

from conformance.errors import ConfigError, InternalError
from conformance.i18n import N_, _

KeyPath: TypeAlias = tuple[str | int, ...]

#: Deepest YAML nesting accepted (a providers file needs about 5 levels).
MAX_DEPTH = 64
#: Most values a document may hold once its aliases are expanded ("billion laughs").
MAX_VALUES = 20_000


def _dotted(path: KeyPath) -> str | None:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


def sensitive(path: KeyPath) -> bool:
    """Values under these paths are never echoed in a message."""
    return "api_key" in path or (len(path) >= 2 and path[-2] == "headers")


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Loader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses nesting deeper than :data:`MAX_DEPTH` (PyYAML's
    composer recurses once per level: a deep document would end in a RecursionError)."""

    def __init__(self, text: str, filename: str) -> None:
        super().__init__(text)
        self.filename = filename
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ConfigError(f"YAML nested deeper than {MAX_DEPTH} levels",
                                  file=self.filename, line=mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class Document:
    """The composed YAML document as plain data, with the line of every key and list item."""

    def __init__(self, text: str, filename: str) -> None:
        self.filename = filename
        self.lines: dict[KeyPath, int] = {}
        self._constructor = yaml.SafeLoader("")
        self._values = 0
        loader = _Loader(text, filename)
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            if exc.context and problem.startswith("but "):  # "expected X, but found Y"
                problem = f"{exc.context}, {problem}"
            problem = _one_line(problem)
            raise ConfigError(f"YAML syntax error: {problem}", file=filename,
                              line=mark.line + 1 if mark else None) from None
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            char = exc.character
            shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
            problem = f"unacceptable character {shown}: {_one_line(exc.reason)}"
            raise ConfigError(f"YAML syntax error: {problem}", file=filename,
                              line=line) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"YAML syntax error: {_one_line(str(exc))}",
                              file=filename) from None
        finally:
            loader.dispose()
        if root is None:
            raise ConfigError(_("empty file (expected a 'providers:' list)"), file=filename)
        self.lines[()] = root.start_mark.line + 1
        if not isinstance(root, yaml.MappingNode):
            kind = N_("a list") if isinstance(root, yaml.SequenceNode) else N_("a single value")
            raise ConfigError(_("the top level must be a mapping with a 'providers:' list, not "
                                "{kind}").format(kind=_(kind)), file=filename,
                              line=self.lines[()])
        self.data: dict[str, Any] = self._walk(root, (), frozenset())

    def line(self, path: KeyPath) -> int:
        """Line of the key (or list item) at ``path``, else of its nearest ancestor."""
        while path not in self.lines:
            path = path[:-1]
        return self.lines[path]

    def error(self, path: KeyPath, problem: str, *, line: int | None = None) -> ConfigError:
        """A ConfigError about the key at ``path``."""
        return ConfigError(problem, file=self.filename, line=line or self.line(path),
                           key=_dotted(path))

    def _walk(self, node: yaml.Node, path: KeyPath, parents: frozenset[int]) -> Any:
        line = node.start_mark.line + 1
        if id(node) in parents:
            raise self.error(path, "recursive YAML alias", line=line)
        self._values += 1
        if self._values > MAX_VALUES:
            # Only aliases get a document this far: each use copies its anchor's values. The
            # lines inside an expansion are the anchor's: name the top-level key instead.
            raise self.error(path[:1], f"YAML aliases expand to more than {MAX_VALUES} values")
        if isinstance(node, yaml.ScalarNode):
            try:
                value = self._constructor.construct_object(node)
            except yaml.YAMLError as exc:
                problem = getattr(exc, "problem", None) or str(exc)
                raise self.error(path, f"unsupported YAML value: {_one_line(problem)}",
                                 line=line) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise self.error(path, "must be a finite number", line=line)
            return value
        inside = parents | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise self.error(path, f"unsupported YAML tag {node.tag!r}", line=line)
            items = []
            for index, child in enumerate(node.value):
                item_path = (*path, index)
                self.lines[item_path] = child.start_mark.line + 1
                items.append(self._walk(child, item_path, inside))
            return items
        if not isinstance(node, yaml.MappingNode) or node.tag != "tag:yaml.org,2002:map":
            raise self.error(path, f"unsupported YAML tag {node.tag!r}", line=line)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(path, "mapping keys must be plain strings", line=key_line)
            key = str(key_node.value)
            key_path = (*path, key)
            if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                raise self.error(key_path, "YAML merge keys are not supported "
                                 "(use the 'defaults:' mapping)", line=key_line)
            if key in mapping:
                raise self.error(key_path, _("duplicate key (first at line {line})").format(
                    line=self.lines[key_path]),
                                 line=key_line)
            self.lines[key_path] = key_line
            mapping[key] = self._walk(value_node, key_path, inside)
        return mapping

    def check_schema(self, schema: Path, families: Sequence[str]) -> None:
        """Raise the first violation of ``schema`` (unknown keys and bad values before missing
        keys); ``families`` are named when a ``models:`` key is unknown."""
        errors = list(_validator(schema).iter_errors(self.data))
        if errors:
            explained = [self._explain(error, families) for error in errors]
            *_rank, exc = min(explained, key=lambda item: item[:3])
            raise exc

    def _explain(self, error: jsonschema.ValidationError,
                 families: Sequence[str]) -> tuple[int, int, int, ConfigError]:
        """(rank, line, depth, ConfigError) for one jsonschema error."""
        path: KeyPath = tuple(error.absolute_path)
        schema_path = tuple(error.schema_path)
        kind = error.validator
        instance: Any = error.instance
        expected: Any = error.validator_value
        last = path[-1] if path else None
        rank = 0
        line: int | None = None
        if "propertyNames" in schema_path and last == "request_defaults":
            path = (*path, str(instance))
            problem = (f"'{instance}' is set by 'model:' (or 'models:' per family), "
                       "not request_defaults" if instance == "model"
                       else f"'{instance}' is set by each check, not request_defaults")
        elif "propertyNames" in schema_path:
            path = (*path, str(instance))
            problem = "not a valid HTTP header name"
        elif kind == "additionalProperties":
            allowed = sorted(error.schema["properties"]) if isinstance(error.schema, dict) else []
            extras = [key for key in instance if key not in allowed]
            key = min(extras, key=lambda k: self.line((*path, k)))
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = _("; did you mean {name}?").format(name=repr(close[0])) if close else ""
            if last == "models":
                problem = _("unknown behaviour family{hint} (known: {known})").format(
                    hint=hint, known=", ".join(families))
            else:
                problem = _("unknown key{hint} (allowed: {allowed})").format(
                    hint=hint, allowed=", ".join(allowed))
            path = (*path, key)
        elif kind == "required":
            missing = [key for key in expected if key not in instance]
            line = self.line(path)
            rank = 1
            path = (*path, missing[0])
            problem = _(N_("missing (required unless 'builtin' is set)") if "else" in schema_path
                        else N_("missing (required with 'builtin')") if "then" in schema_path
                        else N_("missing (required)"))
        elif kind == "not":
            problem = ("only allowed with 'builtin: reference'"
                       if last in ("faults", "latency_ms", "port", "host")
                       else "not allowed with 'builtin' (the suite starts that server itself)")
        elif kind == "type":
            problem = _type_problem(expected, instance, show=not sensitive(path))
        elif kind == "minItems":
            problem = (_("must list at least one provider") if path == ("providers",)
                       else _("must not be empty"))
        elif kind == "minLength":
            problem = _("must not be empty")
        elif kind == "uniqueItems":
            problem = "lists the same entry twice"
        elif kind == "enum":
            choices = ", ".join(str(choice) for choice in expected)
            problem = f"{instance!r} is not one of: {choices}"
        elif kind == "pattern" and last == "name":
            problem = _("invalid name {name} (use lowercase letters, digits, '.', '_' and "
                        "'-')").format(name=repr(instance))
        elif kind == "pattern" and last == "docs":
            problem = f"not an http(s) URL: {instance!r}"
        elif kind == "pattern" and isinstance(last, int):
            problem = (f"invalid fault name {instance!r} (use lowercase letters, digits, "
                       "'.', '_' and '-')")
        elif sensitive(path):
            problem = _("invalid value")
        else:
            problem = _one_line(error.message)
        exc = self.error(path, problem, line=line)
        return rank, exc.line or 0, len(path), exc


def _type_problem(expected: Any, value: Any, *, show: bool) -> str:
    names = {"string": "a string", "integer": "an integer", "number": "a number",
             "object": "a mapping", "array": "a list", "boolean": "a boolean", "null": "null"}
    wanted = [expected] if isinstance(expected, str) else list(expected)
    problem = "expected " + " or ".join(names.get(name, name) for name in wanted)
    if value is None:
        got = "null"
    elif isinstance(value, bool):
        got = "a boolean"
    elif isinstance(value, int):
        got = "an integer"
    elif isinstance(value, float):
        got = "a number"
    elif isinstance(value, str):
        got = "a string"
    elif isinstance(value, list):
        got = "a list"
    elif isinstance(value, dict):
        got = "a mapping"
    elif isinstance(value, bytes):
        got = "binary data"
    else:
        got = f"a {type(value).__name__}"
    if show and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        got += f" {value!r}"
    hint = ""
    if "string" in wanted and isinstance(value, (bool, int, float, datetime.date)):
        hint = " (quote it)"
    return f"{problem}, got {got}{hint}"


@lru_cache(maxsize=1)
def _validator(path: Path) -> jsonschema.Draft202012Validator:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InternalError(f"cannot load the providers schema {path}: {exc}") from exc
    return jsonschema.Draft202012Validator(schema)
