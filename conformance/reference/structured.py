"""Structured output of the reference model: JSON answers and tool calls.

A JSON Schema filler builds values for ``response_format`` (``json_object``, ``json_schema``
with or without ``strict``; https://platform.openai.com/docs/guides/structured-outputs) and for
function-call arguments built from a tool's ``parameters`` schema
(https://platform.openai.com/docs/guides/function-calling), filled with what the model knows
(:mod:`conformance.reference.knowledge`) and what the question states.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from conformance.reference.conversation import (
    Image,
    Message,
    Request,
    Tool,
    ToolCall,
    last_user,
    relevant_images,
)
from conformance.reference.knowledge import (
    CAPITALS,
    CATEGORY_WORDS,
    CITIES,
    COUNTRY_NAMES,
    ENTITIES,
    FALLBACK,
    NUMBER_WORDS,
    STOPWORDS,
    count_range,
    country_in,
    find_cities,
    is_location,
    numbers,
    numeric_answer,
)


class _Filler:
    """Builds a JSON value satisfying a JSON Schema, filled with what the model knows."""

    def __init__(self, root: Mapping[str, Any], question: str, images: Sequence[Image],
                 *, for_tool: bool, city: str | None = None, strict: bool = False,
                 text_answer: str = "") -> None:
        self.root = root
        self.question = question
        self.images = list(images)
        self.for_tool = for_tool
        self.city = city
        self.strict = strict
        self.text_answer = text_answer
        self._numbers: Iterator[float] = iter(numbers(question))
        country = country_in(question)
        self.country = country
        self.capital = CAPITALS[country] if country else None
        self.category = self._category()
        self.count = self._requested_count()

    def _category(self) -> str | None:
        for word in re.findall(r"[a-z]+", self.question.lower()):
            if word in CATEGORY_WORDS:
                return CATEGORY_WORDS[word]
        return None

    def _requested_count(self) -> int | None:
        match = re.search(r"\b(\d+|" + "|".join(NUMBER_WORDS) + r")\s+(?:\w+\s+)?[a-z]+s\b",
                          self.question.lower())
        if not match:
            return None
        word = match.group(1)
        return int(word) if word.isdigit() else NUMBER_WORDS[word]

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            ref = str(schema["$ref"])
            target: Any = self.root
            if ref.startswith("#"):
                for part in [p for p in ref[1:].split("/") if p]:
                    part = part.replace("~1", "/").replace("~0", "~")
                    target = target.get(part, {}) if isinstance(target, Mapping) else {}
            else:
                target = {}
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**(target if isinstance(target, Mapping) else {}), **extra}
            seen += 1
        return schema

    def value(self, schema: Any, name: str = "", depth: int = 0,
              item: Mapping[str, Any] | None = None) -> Any:
        if not isinstance(schema, Mapping):
            return self._string(name, {}, item)
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            if item is not None and item.get(name) in schema["enum"]:
                return item[name]
            return self._enum(schema["enum"])
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                chosen = self._branch(branches, depth)
                merged = {k: v for k, v in schema.items() if k != key}
                return self.value({**merged, **self.resolve(chosen)}, name, depth, item)
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part) if isinstance(part, Mapping) else {}
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                required = [*merged.get("required", []), *part.get("required", [])]
                merged = {**merged, **part, "properties": props, "required": required}
            return self.value(merged, name, depth, item)
        kind = schema.get("type")
        if isinstance(kind, list):
            options = [t for t in kind if t != "null"]
            kind = "null" if not options or depth > 6 else options[0]
        if kind is None:
            kind = ("object" if "properties" in schema else "array" if "items" in schema
                    else "string")
        if kind == "object":
            return self._object(schema, depth, item)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind in ("integer", "number"):
            return self._number(schema, name, kind, item)
        if kind == "boolean":
            return not self.for_tool
        if kind == "null":
            return None
        return self._string(name, schema, item)

    def _branch(self, branches: list[Any], depth: int) -> Any:
        def is_null(branch: Any) -> bool:
            return isinstance(branch, Mapping) and branch.get("type") == "null"
        if depth > 6:
            return next((b for b in branches if is_null(b)), branches[0])
        return next((b for b in branches if not is_null(b)), branches[0])

    def _enum(self, options: list[Any]) -> Any:
        lowered = self.question.lower()
        for option in options:
            if isinstance(option, str) and re.search(rf"\b{re.escape(option.lower())}\b", lowered):
                return option
        return options[0]

    def _object(self, schema: Mapping[str, Any], depth: int,
                item: Mapping[str, Any] | None) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            properties = {}
        required = schema.get("required")
        required = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
        names = list(properties)
        if self.for_tool and not self.strict:
            names = [n for n in names if n in required or is_location(n)]
        out: dict[str, Any] = {}
        for prop in names + [r for r in required if r not in properties]:
            out[prop] = self.value(properties.get(prop, {}), prop, depth + 1, item)
        return out

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        minimum = schema.get("minItems")
        minimum = minimum if isinstance(minimum, int) and minimum > 0 else 0
        maximum = schema.get("maxItems")
        count = max(minimum, 1) if depth <= 6 else minimum
        if not self.for_tool and self.count is not None and depth <= 2:
            count = max(minimum, self.count)
        if isinstance(maximum, int):
            count = min(count, maximum)
        category = CATEGORY_WORDS.get(name.lower()) or self.category
        entities = ENTITIES.get(category or "", [])
        prefix = schema.get("prefixItems")
        if not isinstance(prefix, list):
            prefix = []
        items: list[Any] = []
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else schema.get("items", {})
            entity = entities[index % len(entities)] if entities else None
            value = self.value(sub, _singular(name), depth + 1, entity)
            if schema.get("uniqueItems") and value in items:
                value = f"{value} {index + 1}" if isinstance(value, str) else value
            items.append(value)
        return items

    def _number(self, schema: Mapping[str, Any], name: str, kind: str,
                item: Mapping[str, Any] | None) -> float | int:
        key = name.lower().replace("_", "")
        value: float | None = None
        if item is not None and name in item and isinstance(item[name], (int, float)):
            value = float(item[name])
        elif self._stated(name) is not None:
            value = self._stated_number(name)
        elif self.for_tool:
            value = next(self._numbers, 0.0)
        elif key in ("count", "number", "total", "quantity", "howmany", "result", "answer", "sum",
                     "value", "amount", "product", "difference", "n"):
            found = numeric_answer(self.question)
            value = found if found is not None else 1.0
        else:
            value = {"age": 30.0, "year": 2026.0, "population": 1000000.0, "temperature": 20.0,
                     "price": 9.99, "rating": 5.0, "score": 10.0}.get(key, 1.0)
        value = _clamp(value, schema)
        if kind == "integer":
            return round(value)
        return int(value) if float(value).is_integer() else value

    def _stated(self, name: str) -> str | None:
        """A value the prompt states for ``name``: "age: 30", "name is Bob", "Bob is 30 years
        old" (name/age), "named Bob"."""
        if not name:
            return None
        words = re.escape(name.replace("_", " ")).replace(r"\ ", r"[\s_]+")
        match = re.search(rf"\b{words}\s*(?:is|:|=)\s*['\"“]?([\w@.+-]+(?: [A-Z][\w-]*)?)",
                          self.question, re.I)
        if match:
            return match.group(1).rstrip(".")
        key = name.lower()
        if key == "name":
            found = re.search(r"\b(?:named|called|name is)\s+([A-Z][\w-]*)|"
                              r"\b([A-Z][a-z]+)\s+is\s+(?:\d+|a\b|an\b)", self.question)
            if found:
                return found.group(1) or found.group(2)
        if key == "age":
            found = re.search(r"(\d+)[\s-]+years?[\s-]+old|\bis\s+(\d+)\b", self.question, re.I)
            if found:
                return found.group(1) or found.group(2)
        return None

    def _stated_number(self, name: str) -> float:
        stated = self._stated(name) or ""
        try:
            return float(stated)
        except ValueError:
            return 1.0

    def _string(self, name: str, schema: Mapping[str, Any],
                item: Mapping[str, Any] | None) -> str:
        text = self._string_guess(name, schema, item)
        min_len = schema.get("minLength")
        max_len = schema.get("maxLength")
        if isinstance(min_len, int) and len(text) < min_len:
            text = text + "x" * (min_len - len(text))
        if isinstance(max_len, int) and len(text) > max_len:
            text = text[:max_len]
        return text

    def _string_guess(self, name: str, schema: Mapping[str, Any],
                      item: Mapping[str, Any] | None) -> str:
        formats = {"date": "2026-11-01", "date-time": "2026-11-01T12:00:00Z", "time": "12:00:00",
                   "email": "alice@example.com", "uri": "https://example.com",
                   "url": "https://example.com", "uuid": "123e4567-e89b-12d3-a456-426614174000",
                   "ipv4": "192.0.2.1", "ipv6": "2001:db8::1", "hostname": "example.com",
                   "duration": "P1D"}
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in formats:
            return formats[fmt]
        key = name.lower()
        if item is not None:
            for candidate in (name, key, "name" if key in ("fruit", "country", "animal", "planet",
                                                             "city", "title") else ""):
                if candidate in item:
                    return str(item[candidate])
            if key == "colour" and "color" in item:
                return str(item["color"])
        stated = self._stated(name)
        if stated is not None:
            return stated
        city = self.city or next(iter(find_cities(self.question)), None)
        if is_location(key):
            return city or self.capital or "Paris"
        if key == "capital":
            return self.capital or "Paris"
        if key == "country":
            if self.country:
                return COUNTRY_NAMES.get(self.country, self.country.title()).removeprefix("the ")
            return CITIES.get(city or "", ("France", ""))[0]
        if key in ("timezone", "time_zone", "tz", "zone"):
            return CITIES.get(city or "", ("", "UTC"))[1]
        if key in ("color", "colour"):
            return self.images[0].color if self.images else "red"
        if key in ("unit", "units"):
            return "fahrenheit" if re.search(r"fahrenheit", self.question, re.I) else "celsius"
        if key in ("query", "q", "search", "prompt", "question", "input", "text", "request"):
            return self.question if self.for_tool else self.text_answer
        if key in ("answer", "response", "result", "reply", "content", "message", "output",
                   "summary", "explanation", "reason", "reasoning", "description"):
            return self.text_answer or FALLBACK
        simple = {"name": "Alice", "title": "A Short Story", "language": "English",
                  "currency": "EUR", "id": "1", "phone": "+1-555-0100", "email":
                  "alice@example.com", "url": "https://example.com", "date": "2026-11-01",
                  "time": "12:00", "word": "example"}
        return simple.get(key, "example")


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") and len(name) > 3 else name


def _clamp(value: float, schema: Mapping[str, Any]) -> float:
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(low, (int, float)) and value < low:
        value = float(low)
    if isinstance(ex_low, (int, float)) and value <= ex_low:
        value = float(ex_low) + 1
    if isinstance(high, (int, float)) and value > high:
        value = float(high)
    if isinstance(ex_high, (int, float)) and value >= ex_high:
        value = float(ex_high) - 1
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        value = round(value / step) * step
    return value


def json_object_answer(messages: Sequence[Message], text: str) -> str:
    """A JSON object string relevant to the conversation (``response_format: json_object``);
    ``text`` is the model's plain-text answer to it."""
    last = last_user(messages)
    question = last.text if last else ""
    filler = _Filler({}, question, relevant_images(messages, question), for_tool=False,
                     text_answer=text)
    data: dict[str, Any]
    if filler.category and re.search(r"\b(?:list|give|name|provide|generate|return)\b", question,
                                     re.I):
        attrs = _requested_attributes(question) or ["name"]
        entities = ENTITIES[filler.category]
        count = filler.count or 3
        key = {"person": "people", "city": "cities", "country": "countries"}.get(
            filler.category, filler.category + "s")
        data = {key: [{a: entities[i % len(entities)].get(a, filler.value({}, a))
                       for a in attrs} for i in range(count)]}
    elif filler.capital and re.search(r"\bcapital\b", question, re.I):
        data = {"country": filler.value({}, "country"), "capital": filler.capital}
    elif re.search(r"\bcount\b", question, re.I) and count_range(question) is not None:
        data = {"numbers": [int(n) for n in re.findall(r"-?\d+", text)]}
    elif numeric_answer(question) is not None:
        value = numeric_answer(question) or 0.0
        data = {"result": int(value) if float(value).is_integer() else value}
    else:
        data = {"answer": text}
    return json.dumps(data, ensure_ascii=False)


def _requested_attributes(question: str) -> list[str]:
    match = re.search(r"\bwith\s+(?:their\s+|its\s+|a\s+|the\s+)?([\w ,]+?)(?:\s+as\b|\s+in\b|"
                      r"[.?!]|$)", question, re.I)
    if not match:
        return []
    words = re.split(r"\s*,\s*|\s+and\s+|\s+", match.group(1).lower())
    return [w.replace("colour", "color") for w in words
            if w and w not in STOPWORDS and w not in ("fields", "keys", "properties")]


def json_schema_answer(messages: Sequence[Message], schema: Mapping[str, Any], text: str,
                       strict: bool = True) -> str:
    """A JSON instance of ``schema`` answering the conversation (``json_schema`` mode);
    ``text`` is the model's plain-text answer to it."""
    last = last_user(messages)
    question = last.text if last else ""
    filler = _Filler(schema, question, relevant_images(messages, question), for_tool=False,
                     strict=strict, text_answer=text)
    return json.dumps(filler.value(schema), ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Tool calls


def _words(text: str) -> set[str]:
    words = set()
    for raw in re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", text).lower()):
        if len(raw) >= 3 and raw not in STOPWORDS:
            words.add(raw[:-1] if raw.endswith("s") and len(raw) > 4 else raw)
    return words


_SYNONYMS = ({"weather", "temperature", "forecast", "rain", "sunny", "degree", "climate",
              "hot", "cold", "humidity", "wind"},
             {"time", "clock", "hour", "timezone", "date"})


def _tool_score(tool: Tool, question: str) -> int:
    asked = _words(question)
    offered = _words(tool.name.replace("_", " ") + " " + tool.description)
    score = len(asked & offered)
    for group in _SYNONYMS:
        if asked & group and offered & group:
            score += 1
    return score


def best_tool(tools: Sequence[Tool], question: str) -> Tool | None:
    """The tool whose name and description best match the question, if any matches."""
    scored = [(_tool_score(tool, question), -index, tool) for index, tool in enumerate(tools)]
    scored = [s for s in scored if s[0] > 0]
    return max(scored, key=lambda s: (s[0], s[1]))[2] if scored else None


def plan_tool_calls(request: Request) -> list[ToolCall]:
    """The calls the model makes, or [] to answer in text."""
    if request.tool_choice == "none" or not request.tools:
        return []
    last = last_user(request.messages)
    question = last.text if last else ""
    tool: Tool | None
    if request.forced_tool is not None:
        tool = next((t for t in request.tools if t.name == request.forced_tool), None)
    elif request.tool_choice == "required":
        tool = best_tool(request.tools, question) or request.tools[0]
    else:
        if request.messages and request.messages[-1].role != "user":
            return []
        tool = best_tool(request.tools, question)
    if tool is None:
        return []
    properties = tool.parameters.get("properties") if isinstance(tool.parameters, Mapping) else {}
    takes_place = isinstance(properties, Mapping) and any(is_location(p) for p in properties)
    cities: list[str | None] = list(find_cities(question)) if takes_place else []
    if not cities:
        cities = [None]
    if not request.parallel_tool_calls:
        cities = cities[:1]
    images = last.images if last else []
    calls = []
    for city in cities:
        filler = _Filler(tool.parameters, question, images, for_tool=True, city=city,
                         strict=tool.strict)
        arguments = filler.value(tool.parameters or {"type": "object", "properties": {}})
        if not isinstance(arguments, dict):
            arguments = {}
        calls.append(ToolCall(tool.name, json.dumps(arguments, ensure_ascii=False)))
    return calls

