"""What the reference model knows: capitals, cities, entities, counting and arithmetic.

Pure lookups over question text, shared by the text rules (:mod:`conformance.reference.model`)
and the JSON and tool-call arguments (:mod:`conformance.reference.structured`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FALLBACK = "I am the conformance reference model."

CAPITALS: Mapping[str, str] = {
    "france": "Paris", "japan": "Tokyo", "germany": "Berlin", "italy": "Rome",
    "china": "Beijing", "uk": "London", "united kingdom": "London", "england": "London",
    "britain": "London", "great britain": "London", "spain": "Madrid",
    "united states": "Washington, D.C.", "usa": "Washington, D.C.", "us": "Washington, D.C.",
    "america": "Washington, D.C.", "canada": "Ottawa", "australia": "Canberra",
    "russia": "Moscow", "brazil": "Brasília", "india": "New Delhi", "egypt": "Cairo",
    "mexico": "Mexico City", "portugal": "Lisbon", "netherlands": "Amsterdam",
    "south korea": "Seoul", "korea": "Seoul", "greece": "Athens", "sweden": "Stockholm",
    "norway": "Oslo", "poland": "Warsaw", "austria": "Vienna", "ireland": "Dublin",
    "turkey": "Ankara", "argentina": "Buenos Aires", "kenya": "Nairobi",
}
COUNTRY_NAMES: Mapping[str, str] = {
    "uk": "the United Kingdom", "usa": "the United States", "us": "the United States",
    "united states": "the United States", "united kingdom": "the United Kingdom",
    "netherlands": "the Netherlands",
}
CITIES: Mapping[str, tuple[str, str]] = {  # city -> (country, IANA time zone)
    "Paris": ("France", "Europe/Paris"), "London": ("United Kingdom", "Europe/London"),
    "Tokyo": ("Japan", "Asia/Tokyo"), "Beijing": ("China", "Asia/Shanghai"),
    "Shanghai": ("China", "Asia/Shanghai"), "Boston": ("United States", "America/New_York"),
    "New York": ("United States", "America/New_York"), "Berlin": ("Germany", "Europe/Berlin"),
    "San Francisco": ("United States", "America/Los_Angeles"),
    "Los Angeles": ("United States", "America/Los_Angeles"),
    "Chicago": ("United States", "America/Chicago"), "Madrid": ("Spain", "Europe/Madrid"),
    "Rome": ("Italy", "Europe/Rome"), "Sydney": ("Australia", "Australia/Sydney"),
    "Moscow": ("Russia", "Europe/Moscow"), "Seoul": ("South Korea", "Asia/Seoul"),
    "Toronto": ("Canada", "America/Toronto"), "Singapore": ("Singapore", "Asia/Singapore"),
    "Hong Kong": ("China", "Asia/Hong_Kong"), "Dubai": ("United Arab Emirates", "Asia/Dubai"),
    "Mumbai": ("India", "Asia/Kolkata"), "Cairo": ("Egypt", "Africa/Cairo"),
    "Amsterdam": ("Netherlands", "Europe/Amsterdam"), "Lisbon": ("Portugal", "Europe/Lisbon"),
    "Vienna": ("Austria", "Europe/Vienna"), "Istanbul": ("Turkey", "Europe/Istanbul"),
    "Bangkok": ("Thailand", "Asia/Bangkok"), "Shenzhen": ("China", "Asia/Shanghai"),
    "Hangzhou": ("China", "Asia/Shanghai"), "Stockholm": ("Sweden", "Europe/Stockholm"),
}
ENTITIES: Mapping[str, list[dict[str, Any]]] = {
    "fruit": [{"name": "apple", "color": "red"}, {"name": "banana", "color": "yellow"},
              {"name": "grape", "color": "purple"}, {"name": "orange", "color": "orange"},
              {"name": "lime", "color": "green"}, {"name": "blueberry", "color": "blue"},
              {"name": "lemon", "color": "yellow"}, {"name": "cherry", "color": "red"}],
    "country": [{"name": "France", "capital": "Paris", "continent": "Europe"},
                {"name": "Japan", "capital": "Tokyo", "continent": "Asia"},
                {"name": "Germany", "capital": "Berlin", "continent": "Europe"},
                {"name": "Italy", "capital": "Rome", "continent": "Europe"},
                {"name": "Spain", "capital": "Madrid", "continent": "Europe"},
                {"name": "China", "capital": "Beijing", "continent": "Asia"}],
    "animal": [{"name": "cat", "sound": "meow", "legs": 4}, {"name": "dog", "sound": "woof",
               "legs": 4}, {"name": "cow", "sound": "moo", "legs": 4},
               {"name": "duck", "sound": "quack", "legs": 2}, {"name": "sheep", "sound": "baa",
               "legs": 4}],
    "color": [{"name": n, "hex": h} for n, h in (("red", "#FF0000"), ("green", "#00FF00"),
              ("blue", "#0000FF"), ("yellow", "#FFFF00"), ("purple", "#800080"),
              ("orange", "#FFA500"))],
    "planet": [{"name": n, "order": i + 1} for i, n in enumerate(
        ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"))],
    "city": [{"name": c, "country": v[0]} for c, v in CITIES.items()],
    "person": [{"name": n, "age": a} for n, a in (("Alice", 30), ("Bob", 25), ("Carol", 35),
               ("Dave", 41))],
}
CATEGORY_WORDS = {
    "fruit": "fruit", "fruits": "fruit", "country": "country", "countries": "country",
    "animal": "animal", "animals": "animal", "color": "color", "colors": "color",
    "colour": "color", "colours": "color", "planet": "planet", "planets": "planet",
    "city": "city", "cities": "city", "person": "person", "people": "person", "users": "person",
}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10}
_HOW_MANY: tuple[tuple[str, int], ...] = (
    (r"legs.*spider|spider.*legs", 8), (r"legs.*(?:dog|cat|horse|cow)|(?:dog|cat).*legs", 4),
    (r"days.*week", 7), (r"months.*year", 12), (r"continents", 7),
    (r"planets.*solar|solar.*planets", 8), (r"sides.*triangle", 3), (r"sides.*square", 4),
    (r"sides.*hexagon", 6), (r"hours.*day", 24), (r"minutes.*hour", 60),
)
STOPWORDS = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "and", "or", "is", "are", "was", "be",
    "it", "its", "this", "that", "with", "as", "by", "from", "what", "whats", "which", "who",
    "how", "do", "does", "can", "could", "would", "should", "will", "please", "tell", "me", "my",
    "your", "you", "i", "get", "gets", "current", "given", "return", "returns", "function",
    "tool", "use", "using", "call", "about", "into", "than", "then", "there", "here", "some",
    "any", "all", "each",
})
_UNITS = frozenset({"Celsius", "Fahrenheit", "Kelvin", "JSON", "English", "French", "Chinese"})
LOCATION_KEYS = ("city", "location", "place", "town", "destination", "where", "address",
                  "region", "area")


def country_in(text: str) -> str | None:
    lowered = text.lower()
    best: tuple[int, str] | None = None
    for country in CAPITALS:
        match = re.search(rf"\b{re.escape(country)}\b", lowered)
        if match and (best is None or (match.start(), -len(country)) < (best[0], -len(best[1]))):
            best = (match.start(), country)
    return best[1] if best else None


def find_cities(text: str) -> list[str]:
    """Cities named in ``text`` in order: known names, or capitalised words after in/for/at."""
    found: list[tuple[int, str]] = []
    for city in CITIES:
        for match in re.finditer(rf"\b{re.escape(city)}\b", text, re.I):
            found.append((match.start(), city))
    for match in re.finditer(r"\b(?:in|for|at)\s+((?:[A-Z][\w'-]+)(?:\s+[A-Z][\w'-]+)*)", text):
        name = match.group(1)
        if name not in _UNITS and name.lower() not in STOPWORDS and name.lower() not in CAPITALS:
            found.append((match.start(1), name))
    cities: list[str] = []
    for _, name in sorted(found):
        if not any(name.lower() in c.lower() or c.lower() in name.lower() for c in cities):
            cities.append(name)
    return cities


def numbers(text: str) -> list[float]:
    """Every number written in ``text``, in order."""
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]


def _arithmetic(question: str) -> float | None:
    if not re.search(r"\bwhat(?:'s| is)\b|\bcalculate\b|\bcompute\b|\bhow much\b|\bevaluate\b|"
                     r"\bsolve\b|=\s*\?|\badd\b|\bsum\b", question, re.I):
        return None
    match = re.search(
        r"(-?\d+(?:\.\d+)?)\s*(\+|-|\*|/|x|×|÷|plus|minus|times|multiplied by|divided by)\s*"
        r"(-?\d+(?:\.\d+)?)", question, re.I)
    if not match:
        return None
    left, op, right = float(match.group(1)), match.group(2).lower(), float(match.group(3))
    if op in ("+", "plus"):
        return left + right
    if op in ("-", "minus"):
        return left - right
    if op in ("*", "x", "×", "times", "multiplied by"):
        return left * right
    return left / right if right else None


def _how_many(question: str) -> int | None:
    if not re.search(r"\bhow many\b", question, re.I):
        return None
    for pattern, answer in _HOW_MANY:
        if re.search(pattern, question, re.I):
            return answer
    return None


def numeric_answer(question: str) -> float | None:
    """The number a question asks for, when the model knows it."""
    value = _arithmetic(question)
    return value if value is not None else _how_many(question)


def count_range(question: str) -> tuple[int, int] | None:
    """(start, end) of a "count from A to B" / "count to B" request, if the question is one."""
    match = re.search(r"\b(?:count|list the numbers)\s+(?:from\s+(-?\d+)\s+)?(?:up\s+)?to\s+"
                      r"(-?\d+)", question, re.I)
    if not match:
        return None
    return int(match.group(1) or 1), int(match.group(2))


def is_location(name: str) -> bool:
    """Whether a parameter or property name asks for a place."""
    key = name.lower()
    return any(word in key for word in LOCATION_KEYS)
