"""The reference provider's scripted, deterministic "model" and its tokenizer.

The model is a pure function of the messages it sees (plus tools and response format), built
from general regular-expression rules so that it answers the suite's probes the way a capable
chat model would: facts it knows (capitals, counting, arithmetic), facts stated in the
conversation (a secret word, a number to remember), echo instructions, long-form writing, image
colours, tool calls with arguments built from the tools' JSON Schemas, tool-result follow-ups and
JSON answers. Message and tool semantics follow the Chat Completions reference
(https://platform.openai.com/docs/api-reference/chat/create).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FALLBACK = "I am the conformance reference model."
NO_IMAGE = "I cannot see any image."

_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens that keep their leading space; ``"".join`` restores it."""
    return _TOKEN.findall(text)


def truncate(text: str, stops: Sequence[str],
             limit: int | None) -> tuple[list[str], str | None, bool]:
    """Decoding with stop strings and a token limit: (the tokens generated, the stop string
    that ended the text or None, whether the limit cut it).  The earliest stop string ends the
    text (it is not included) unless the limit is reached first."""
    found = [(text.find(s), s) for s in stops if s and s in text]
    cut, matched = min(found) if found else (len(text), None)
    tokens = tokenize(text[:cut])
    if limit is not None and len(tokens) > limit:
        return tokens[:limit], None, True
    return tokens, matched, False


# --------------------------------------------------------------------------------------------
# What the model sees


@dataclass(frozen=True)
class Image:
    """An image the model has looked at, reduced to its dominant colour name."""

    color: str


@dataclass(frozen=True)
class ToolCall:
    """One function call, made by the model or found in the history."""

    name: str
    arguments: str
    id: str = ""


@dataclass
class Message:
    """A conversation message as the model sees it (developer already mapped to system)."""

    role: str
    parts: list[str | Image] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> list[Image]:
        return [p for p in self.parts if isinstance(p, Image)]


@dataclass(frozen=True)
class Tool:
    """A callable function offered in ``tools`` (or legacy ``functions``)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    strict: bool = False


@dataclass
class Request:
    """Everything the model conditions on.

    ``tool_choice`` is "none", "auto" or "required"; ``forced_tool`` names the function of a
    named tool choice (then ``tool_choice`` is "required").
    """

    messages: list[Message]
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str = "auto"
    forced_tool: str | None = None
    parallel_tool_calls: bool = True
    response_format: Mapping[str, Any] | None = None


@dataclass
class Output:
    """One generated choice before truncation: text, or tool calls."""

    content: str | None
    tool_calls: list[ToolCall]
    finish_reason: str


def prompt_tokens(messages: Sequence[Message], tools: Sequence[Tool] = ()) -> int:
    """Prompt size: per message its text tokens + 85 per image + 4, plus 3 for priming."""
    total = 3
    for message in messages:
        text = message.text + "".join(c.name + c.arguments for c in message.tool_calls)
        total += len(tokenize(text)) + 85 * len(message.images) + 4
    for tool in tools:
        total += len(tokenize(tool.name + " " + tool.description))
        total += len(tokenize(json.dumps(tool.parameters)))
    return total


# --------------------------------------------------------------------------------------------
# Knowledge

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
_COUNTRY_NAMES: Mapping[str, str] = {
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
_ENTITIES: Mapping[str, list[dict[str, Any]]] = {
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
_CATEGORY_WORDS = {
    "fruit": "fruit", "fruits": "fruit", "country": "country", "countries": "country",
    "animal": "animal", "animals": "animal", "color": "color", "colors": "color",
    "colour": "color", "colours": "color", "planet": "planet", "planets": "planet",
    "city": "city", "cities": "city", "person": "person", "people": "person", "users": "person",
}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10}
_HOW_MANY: tuple[tuple[str, int], ...] = (
    (r"legs.*spider|spider.*legs", 8), (r"legs.*(?:dog|cat|horse|cow)|(?:dog|cat).*legs", 4),
    (r"days.*week", 7), (r"months.*year", 12), (r"continents", 7),
    (r"planets.*solar|solar.*planets", 8), (r"sides.*triangle", 3), (r"sides.*square", 4),
    (r"sides.*hexagon", 6), (r"hours.*day", 24), (r"minutes.*hour", 60),
)
_STOPWORDS = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "and", "or", "is", "are", "was", "be",
    "it", "its", "this", "that", "with", "as", "by", "from", "what", "whats", "which", "who",
    "how", "do", "does", "can", "could", "would", "should", "will", "please", "tell", "me", "my",
    "your", "you", "i", "get", "gets", "current", "given", "return", "returns", "function",
    "tool", "use", "using", "call", "about", "into", "than", "then", "there", "here", "some",
    "any", "all", "each",
})
_UNITS = frozenset({"Celsius", "Fahrenheit", "Kelvin", "JSON", "English", "French", "Chinese"})
_LOCATION_KEYS = ("city", "location", "place", "town", "destination", "where", "address",
                  "region", "area")


# --------------------------------------------------------------------------------------------
# Helpers over the conversation


def _one_word(question: str) -> bool:
    return bool(re.search(r"\b(?:one|single) word\b|\bonly\b|\bjust the\b", question, re.I))


def _last_user(messages: Sequence[Message]) -> Message | None:
    for message in reversed(messages):
        if message.role == "user":
            return message
    return None


def _unquote(text: str) -> str:
    text = text.strip()
    match = re.fullmatch(r"(['\"“‘`])(.*?)(['\"”’`])[.!]?", text, re.S)
    return match.group(2) if match else text


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _country_in(text: str) -> str | None:
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
        if name not in _UNITS and name.lower() not in _STOPWORDS and name.lower() not in CAPITALS:
            found.append((match.start(1), name))
    cities: list[str] = []
    for _, name in sorted(found):
        if not any(name.lower() in c.lower() or c.lower() in name.lower() for c in cities):
            cities.append(name)
    return cities


def _numbers(text: str) -> list[float]:
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


# --------------------------------------------------------------------------------------------
# Text rules: each takes the conversation and returns an answer or None.


@dataclass
class _Context:
    messages: Sequence[Message]
    question: str  # text of the last user message
    images: list[Image]  # images relevant to the question


Rule = Callable[[_Context], "str | None"]


def _rule_system_instruction(ctx: _Context) -> str | None:
    for message in ctx.messages:
        if message.role == "system":
            match = re.search(r"\balways\s+(?:reply|respond|answer)\s+with\s+(?:exactly\s*:?\s*|"
                              r"only\s+|the\s+word\s+)?(.+?)(?:\.\s|\.?$)", message.text, re.I)
            if match:
                return _unquote(match.group(1))
    return None


def _rule_exact_echo(ctx: _Context) -> str | None:
    match = re.search(r"\b(?:reply|respond|answer|output|say)\s+(?:with\s+)?exactly\s*[:\-]?\s*(.+)"
                      r"|\brepeat\s+after\s+me\s*[:\-]?\s*(.+)", ctx.question, re.I | re.S)
    if not match:
        return None
    return _unquote(match.group(1) or match.group(2))


def _rule_images(ctx: _Context) -> str | None:
    question = ctx.question
    about_image = re.search(r"\b(?:images?|pictures?|photos?|photographs?)\b", question, re.I)
    about_color = re.search(r"\bcolou?rs?\b", question, re.I)
    if not ctx.images:
        return NO_IMAGE if about_image else None
    if not (about_image or about_color):
        return None
    colors = [image.color for image in ctx.images]
    if about_color:
        if len(colors) == 1:
            return colors[0].capitalize() + "."
        return ", ".join(colors)
    if len(colors) == 1:
        return f"The image is a solid {colors[0]} square."
    return "The images are solid squares: " + ", ".join(colors) + "."


def _rule_secret(ctx: _Context) -> str | None:
    ask = re.search(r"\bsecret\s+(word|code|number|name|phrase|color|colour)\b", ctx.question,
                    re.I)
    if not ask or not re.search(r"\bwhat\b|\btell\b|\brepeat\b|\?|\breply\b|\bsay\b",
                                ctx.question, re.I):
        return None
    kind = ask.group(1).lower()
    statement = re.compile(rf"\bsecret\s+{kind}\s+(?:is|was|=)\s*:?\s*['\"“]?([\w'-]+)", re.I)
    value: str | None = None
    for message in ctx.messages:
        for match in statement.finditer(message.text):
            value = match.group(1)
    if value is None:
        return f"I don't know the secret {kind}."
    return value


def _rule_remember(ctx: _Context) -> str | None:
    statement = re.compile(r"\bremember\s+(?:this|that|the|my)?\s*(?:number|word|name|code|"
                           r"colou?r|city)?\s*(?:is)?\s*[:\-]?\s*['\"“]?([\w.'-]+)", re.I)
    question = re.search(r"\bwhat\s+(?:\w+\s+)?(?:did\s+i|i)\s+(?:ask|tell|told)\s+you\s+to\s+"
                         r"remember|\bwhat\s+was\s+the\s+(?:number|word)\b|\bdo you remember\b",
                         ctx.question, re.I)
    if question:
        value: str | None = None
        for message in ctx.messages[:-1]:
            if message.role == "user":
                for match in statement.finditer(message.text):
                    value = match.group(1).rstrip(".")
        return value if value is not None else "I don't recall you asking me to remember anything."
    stated = statement.search(ctx.question)
    if stated and "?" not in ctx.question:
        return f"OK, I will remember {stated.group(1).rstrip('.')}."
    return None


def _rule_my_name(ctx: _Context) -> str | None:
    if not re.search(r"\bwhat(?:'s| is)\s+my\s+name\b", ctx.question, re.I):
        stated = re.search(r"\b(?i:my name is)\s+([A-Z][\w'-]*)", ctx.question)
        return f"Nice to meet you, {stated.group(1)}!" if stated else None
    name: str | None = None
    for message in ctx.messages[:-1]:
        if message.role in ("user", "system"):
            for match in re.finditer(r"\b(?i:my name is)\s+([A-Z][\w'-]*)", message.text):
                name = match.group(1)
    if name is None:
        return "I don't know your name."
    return name if _one_word(ctx.question) else f"Your name is {name}."


def _rule_capital(ctx: _Context) -> str | None:
    if not re.search(r"\bcapital\b", ctx.question, re.I):
        return None
    country = _country_in(ctx.question)
    if country is None:
        return None
    capital = CAPITALS[country]
    yes_no = re.search(r"\b(?i:is)\s+([A-Z][\w .-]*?)\s+the\s+capital\b", ctx.question)
    if yes_no:
        return "Yes." if yes_no.group(1).lower() == capital.lower() else "No."
    if _one_word(ctx.question):
        return capital
    name = _COUNTRY_NAMES.get(country, country.title())
    return f"The capital of {name} is {capital}."


def _rule_count(ctx: _Context) -> str | None:
    match = re.search(r"\b(?:count|list the numbers)\s+(?:from\s+(-?\d+)\s+)?(?:up\s+)?to\s+"
                      r"(-?\d+)", ctx.question, re.I)
    if not match:
        return None
    start, end = int(match.group(1) or 1), int(match.group(2))
    step = 1 if end >= start else -1
    numbers = [str(n) for n in range(start, end + step, step)][:1000]
    separator = ", "
    if re.search(r"\bspaces?\b", ctx.question, re.I):
        separator = " "
    elif re.search(r"\bnew ?lines?\b|\bper line\b|\beach on its own line\b", ctx.question, re.I):
        separator = "\n"
    return separator.join(numbers)


def _rule_numeric(ctx: _Context) -> str | None:
    value = numeric_answer(ctx.question)
    return None if value is None else _fmt_number(value)


_NOT_A_PAYLOAD = re.compile(r"\b(?:one|two|three|single|a|the|just|only)\s+(?:word|words|number|"
                            r"letter|sentence)\b|\b(?:word|number)\s+only\b|\byes\s+or\s+no\b|"
                            r"\bjson\b", re.I)


def _rule_say(ctx: _Context) -> str | None:
    question = ctx.question
    word = re.search(r"\b(?:reply|respond|answer|say)\s+(?:only\s+|just\s+)?(?:with\s+)?"
                     r"(?:only\s+|just\s+)?(?:the\s+)?(?:single\s+|one\s+)?word\s+['\"“‘]?"
                     r"([\w'-]+)", question, re.I)
    if word and word.group(1).lower() not in ("only", "itself", "alone", "and", "that"):
        return word.group(1).strip("'")
    repeat = re.search(r"\brepeat\s+(?:the\s+word\s+)?['\"“‘]?([\w-]+)['\"”’]?\s+(\w+)\s+times\b",
                       question, re.I)
    if repeat:
        times = repeat.group(2).lower()
        count = int(times) if times.isdigit() else _NUMBER_WORDS.get(times, 1)
        return " ".join([repeat.group(1)] * min(count, 100))
    say = re.search(r"(?:^|[.!?]\s+)(?:please\s+)?say\s*:?\s*(.+?)\s*$", question, re.I | re.S)
    if say:
        text = _unquote(say.group(1))
        return text[:-1] if text.endswith(".") and text.count(".") == 1 else text
    reply = re.search(r"\b(?:reply|respond|answer)\s+(?:only\s+)?with\s+(?:only\s+|just\s+)?"
                      r"(.+?)\s*$", question, re.I | re.S)
    if reply and not _NOT_A_PAYLOAD.search(reply.group(1)):
        quoted = re.fullmatch(r"(['\"“‘`]).+?(['\"”’`])\.?", reply.group(1), re.S)
        text = _unquote(reply.group(1)) if quoted else reply.group(1).rstrip(".")
        determiner = re.match(r"(?:a|an|the|your|my|one|two|three|some|no|yes|as)\b", text, re.I)
        if quoted or (len(text.split()) <= 3 and not determiner):
            return text
    if re.search(r"\b(?:answer|reply)\s+(?:with\s+)?(?:yes\s+or\s+no|yes/no)\b", question, re.I):
        return "Yes."
    return None


_STORY = (
    "Once upon a time, in a quiet town at the edge of the hills, there lived {a}. Every morning "
    "{the} woke before the sun and walked the narrow streets, greeting the baker, the postman and "
    "the old café owner who always saved a warm cup of tea. One day a storm rolled in from the "
    "sea — the lights went out, the bridges flooded and the people were afraid. Without "
    "hesitation, {the} went from door to door, carrying lanterns, mending roofs and guiding the "
    "children to safety. By dawn the storm had passed, and the whole town gathered in the square "
    "to say thank you. From that day on, everyone knew that courage is not about being big or "
    "strong, but about showing up when others need you. The end."
)
_POEM = (
    "In morning light, {the} wakes anew,\nBeneath a sky of endless blue;\nIt hums a tune both "
    "soft and bright,\nAnd carries hope from dark to light.\n\nThrough winding roads and city "
    "streets,\nIt counts the rhythm of its beats;\nIt dreams of stars, of sea, of rain,\nAnd "
    "sings of joy, and loss, and gain.\n\nSo when the evening shadows fall,\nRemember {the} who "
    "loved it all."
)
_ESSAY = (
    "{The} deserves careful thought. At first glance it may seem simple, but a closer look "
    "reveals many layers — history, purpose and the people it touches. First, consider where it "
    "came from: every idea grows out of earlier ones, shaped by need and by chance. Second, "
    "consider what it does today, and for whom it matters most. Finally, consider what it might "
    "become, because the future is built from the choices we make now. In short, {the} is worth "
    "understanding, not only for what it is, but for what it teaches us about ourselves."
)


def _rule_long_form(ctx: _Context) -> str | None:
    match = re.search(r"\b(?:write|compose|tell|create|generate|give)\b.*?\b(story|tale|fable|"
                      r"poem|haiku|song|essay|article|paragraph|letter)\b", ctx.question,
                      re.I | re.S)
    if not match:
        return None
    about = re.search(r"\babout\s+(.+?)\s*(?:[.?!]|$)", ctx.question, re.I)
    subject = about.group(1) if about else "a little robot"
    article = re.match(r"(?:a|an)\s+(.+)", subject, re.I)
    the = f"the {article.group(1)}" if article else subject
    kind = match.group(1).lower()
    template = _STORY if kind in ("story", "tale", "fable", "letter") else (
        _POEM if kind in ("poem", "haiku", "song") else _ESSAY)
    return template.format(a=subject, the=the, The=the[:1].upper() + the[1:])


def _rule_weather(ctx: _Context) -> str | None:
    if not re.search(r"\b(?:weather|temperature|forecast|time)\b", ctx.question, re.I):
        return None
    cities = find_cities(ctx.question)
    if not cities:
        return None
    return (f"I don't have access to real-time data, so I can't tell you the current conditions "
            f"in {' and '.join(cities)}. Please check a live weather or time service.")


def _rule_greeting(ctx: _Context) -> str | None:
    if re.fullmatch(r"\s*(?:hi|hello|hey|good (?:morning|afternoon|evening))\b.*", ctx.question,
                    re.I | re.S) and len(tokenize(ctx.question)) <= 8:
        return "Hello! How can I help you today?"
    if re.search(r"\bwho are you\b|\bwhat are you\b|\byour name\b", ctx.question, re.I):
        return FALLBACK
    return None


_RULES: tuple[Rule, ...] = (
    _rule_system_instruction, _rule_exact_echo, _rule_images, _rule_secret, _rule_remember,
    _rule_my_name, _rule_capital, _rule_count, _rule_numeric, _rule_say, _rule_long_form,
    _rule_weather, _rule_greeting,
)


def _relevant_images(messages: Sequence[Message], question: str) -> list[Image]:
    with_images = [m for m in messages if m.role == "user" and m.images]
    if not with_images:
        return []
    latest = with_images[-1].images
    several = re.search(r"\b(?:these|images|pictures|photos|both|two|three|each|all|colou?rs)\b",
                        question, re.I)
    if several and len(latest) == 1:
        return [image for m in with_images for image in m.images]
    return latest


def _tool_result_answer(messages: Sequence[Message]) -> str | None:
    """Answer from the trailing tool (or function) results, if the conversation ends in some."""
    results: list[Message] = []
    for message in reversed(messages):
        if message.role not in ("tool", "function"):
            break
        results.insert(0, message)
    if not results:
        return None
    calls = {c.id: c for m in messages if m.role == "assistant" for c in m.tool_calls}
    last_user = _last_user(messages)
    cities = find_cities(last_user.text) if last_user else []
    sentences: list[str] = []
    for index, result in enumerate(results):
        call = calls.get(result.tool_call_id or "")
        name = call.name if call else (result.name or "tool")
        place = None
        if call:
            try:
                args = json.loads(call.arguments)
            except ValueError:
                args = {}
            if isinstance(args, dict):
                place = next((str(v) for k, v in args.items()
                              if any(w in k.lower() for w in _LOCATION_KEYS)), None)
        if place is None and index < len(cities):
            place = cities[index]
        sentences.append(_describe_result(name, result.text, place))
    return " ".join(sentences)


def _describe_result(tool: str, content: str, place: str | None) -> str:
    where = f" in {place}" if place else ""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return f"The {tool} tool says{where}: {content.strip()}"
    lowered = {str(k).lower(): v for k, v in data.items()}
    temp = next((lowered[k] for k in ("temperature", "temp", "temperature_c", "temp_c", "degrees")
                 if k in lowered), None)
    condition = next((lowered[k] for k in ("condition", "conditions", "description", "weather",
                                            "summary", "forecast", "sky") if k in lowered), None)
    time = next((lowered[k] for k in ("time", "local_time", "current_time", "datetime")
                 if k in lowered), None)
    if temp is not None or condition is not None:
        parts = []
        if temp is not None:
            parts.append(f"{temp} degrees")
        if condition is not None:
            parts.append(str(condition))
        return f"It is {' and '.join(parts)}{where}."
    if time is not None:
        return f"The current time{where} is {time}."
    facts = ", ".join(f"{k} {v}" for k, v in data.items())
    return f"The {tool} tool reports {facts}{where}."


def answer_text(messages: Sequence[Message]) -> str:
    """The model's plain-text answer to the conversation."""
    from_tools = _tool_result_answer(messages)
    if from_tools is not None:
        return from_tools
    last = _last_user(messages)
    question = last.text if last else ""
    ctx = _Context(messages, question, _relevant_images(messages, question))
    for rule in _RULES:
        reply = rule(ctx)
        if reply:
            return str(reply)
    return FALLBACK


# --------------------------------------------------------------------------------------------
# JSON answers


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
        self._numbers: Iterator[float] = iter(_numbers(question))
        country = _country_in(question)
        self.country = country
        self.capital = CAPITALS[country] if country else None
        self.category = self._category()
        self.count = self._requested_count()

    def _category(self) -> str | None:
        for word in re.findall(r"[a-z]+", self.question.lower()):
            if word in _CATEGORY_WORDS:
                return _CATEGORY_WORDS[word]
        return None

    def _requested_count(self) -> int | None:
        match = re.search(r"\b(\d+|" + "|".join(_NUMBER_WORDS) + r")\s+(?:\w+\s+)?[a-z]+s\b",
                          self.question.lower())
        if not match:
            return None
        word = match.group(1)
        return int(word) if word.isdigit() else _NUMBER_WORDS[word]

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
            names = [n for n in names if n in required or _is_location(n)]
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
        category = _CATEGORY_WORDS.get(name.lower()) or self.category
        entities = _ENTITIES.get(category or "", [])
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
        if _is_location(key):
            return city or self.capital or "Paris"
        if key == "capital":
            return self.capital or "Paris"
        if key == "country":
            if self.country:
                return _COUNTRY_NAMES.get(self.country, self.country.title()).removeprefix("the ")
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


def _is_location(name: str) -> bool:
    key = name.lower()
    return any(word in key for word in _LOCATION_KEYS)


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


def json_object_answer(messages: Sequence[Message]) -> str:
    """A JSON object string relevant to the conversation (``response_format: json_object``)."""
    last = _last_user(messages)
    question = last.text if last else ""
    text = answer_text(messages)
    filler = _Filler({}, question, _relevant_images(messages, question), for_tool=False,
                     text_answer=text)
    data: dict[str, Any]
    if filler.category and re.search(r"\b(?:list|give|name|provide|generate|return)\b", question,
                                     re.I):
        attrs = _requested_attributes(question) or ["name"]
        entities = _ENTITIES[filler.category]
        count = filler.count or 3
        key = {"person": "people", "city": "cities", "country": "countries"}.get(
            filler.category, filler.category + "s")
        data = {key: [{a: entities[i % len(entities)].get(a, filler.value({}, a))
                       for a in attrs} for i in range(count)]}
    elif filler.capital and re.search(r"\bcapital\b", question, re.I):
        data = {"country": filler.value({}, "country"), "capital": filler.capital}
    elif re.search(r"\bcount\b", question, re.I) and _rule_count(_Context(messages, question,
                                                                           [])):
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
            if w and w not in _STOPWORDS and w not in ("fields", "keys", "properties")]


def json_schema_answer(messages: Sequence[Message], schema: Mapping[str, Any],
                       strict: bool = True) -> str:
    """A JSON instance of ``schema`` answering the conversation (``json_schema`` mode)."""
    last = _last_user(messages)
    question = last.text if last else ""
    filler = _Filler(schema, question, _relevant_images(messages, question), for_tool=False,
                     strict=strict, text_answer=answer_text(messages))
    return json.dumps(filler.value(schema), ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Tool calls


def _words(text: str) -> set[str]:
    words = set()
    for raw in re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", text).lower()):
        if len(raw) >= 3 and raw not in _STOPWORDS:
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
    last = _last_user(request.messages)
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
    takes_place = isinstance(properties, Mapping) and any(_is_location(p) for p in properties)
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


def generate(request: Request) -> Output:
    """The model's answer to ``request`` (one choice; every choice is the same)."""
    calls = plan_tool_calls(request)
    if calls:
        finish = "stop" if request.forced_tool is not None else "tool_calls"
        return Output(None, calls, finish)
    fmt = request.response_format or {}
    kind = fmt.get("type")
    if kind == "json_object":
        return Output(json_object_answer(request.messages), [], "stop")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        spec = spec if isinstance(spec, Mapping) else {}
        schema = spec.get("schema")
        schema = schema if isinstance(schema, Mapping) else {}
        text = json_schema_answer(request.messages, schema, bool(spec.get("strict")))
        return Output(text, [], "stop")
    return Output(answer_text(request.messages), [], "stop")


def token_logprob(token: str, position: int) -> float:
    """A deterministic log probability (<= 0) for a generated token."""
    return -round((zlib.crc32(f"{position}:{token}".encode()) % 1000) / 20000, 6)


_ALTERNATIVES = (" the", " a", ",", ".", " and", " of", " to", " is", " in", " it", "I",
                 " that", " you", " for", " on", " with", " was", " as", " be", " at", " this",
                 " not", " but")


def alternatives(token: str, count: int) -> list[str]:
    """``count`` distinct plausible tokens other than ``token``."""
    start = zlib.crc32(token.encode()) % len(_ALTERNATIVES)
    ordered = _ALTERNATIVES[start:] + _ALTERNATIVES[:start]
    return [t for t in ordered if t != token][:count]


# --------------------------------------------------------------------------------------------
# Token ids (logit_bias)

#: Ids are 0 .. VOCAB_SIZE-1.  A token of the form " tok<id>" has that id; every other token
#: has a stable id derived from its text, so the same text always maps to the same id.
VOCAB_SIZE = 100_000
#: How many times a token forced by a +100 logit bias repeats when no limit cuts it.
FORCED_RUN = 16
_SYNTHETIC = re.compile(r" tok(\d{1,5})")


def token_for_id(token_id: int) -> str:
    """The text of token ``token_id`` (what a +100 bias on it makes the model write)."""
    return f" tok{token_id}"


def token_id(token: str) -> int:
    """The id of ``token``: inverse of :func:`token_for_id`, a stable hash otherwise."""
    match = _SYNTHETIC.fullmatch(token)
    if match and int(match.group(1)) < VOCAB_SIZE:
        return int(match.group(1))
    return zlib.crc32(token.encode()) % VOCAB_SIZE


def apply_logit_bias(text: str, bias: Mapping[int, int]) -> str:
    """The answer under ``logit_bias`` (CreateChatCompletionRequest.logit_bias: "values like
    -100 or 100 should result in a ban or exclusive selection of the relevant token").

    A bias of +50 or more selects its token exclusively (the strongest wins); a bias of -50 or
    less bans its token, and the model writes the rest of its answer without it.  Smaller
    biases do not change this scripted model's choice.
    """
    forced = [t for t, b in bias.items() if b >= 50]
    if forced:
        return token_for_id(max(forced, key=lambda t: (bias[t], -t))) * FORCED_RUN
    banned = {t for t, b in bias.items() if b <= -50}
    for _ in range(8):
        tokens = tokenize(text)
        if not any(token_id(t) in banned for t in tokens):
            break
        text = "".join(t for t in tokens if token_id(t) not in banned)
    return text
