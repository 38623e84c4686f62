"""The reference provider's scripted, deterministic "model".

The model is a pure function of the messages it sees (plus tools and response format), built
from general regular-expression rules so that it answers the suite's probes the way a capable
chat model would: facts it knows (capitals, counting, arithmetic), facts stated in the
conversation (a secret word, a number to remember), echo instructions, long-form writing, image
colours, tool-result follow-ups (this module), and tool calls and JSON answers built from JSON
Schemas (:mod:`conformance.reference.structured`). Message and tool semantics follow the Chat
Completions reference (https://platform.openai.com/docs/api-reference/chat/create); the types
the model sees and its tokenizer live in :mod:`conformance.reference.conversation` and are
re-exported here, so ``model.Message``, ``model.tokenize`` and the like keep working.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from conformance.reference.conversation import (
    FORCED_RUN,
    VOCAB_SIZE,
    Image,
    Message,
    Output,
    Request,
    Tool,
    ToolCall,
    Vocabulary,
    alternatives,
    apply_logit_bias,
    billed_prompt_tokens,
    last_user,
    prompt_tokens,
    relevant_images,
    token_for_id,
    token_id,
    token_logprob,
    tokenize,
    truncate,
    vocabulary,
)
from conformance.reference.knowledge import (
    CAPITALS,
    COUNTRY_NAMES,
    FALLBACK,
    LOCATION_KEYS,
    NUMBER_WORDS,
    count_range,
    country_in,
    find_cities,
    numeric_answer,
)
from conformance.reference.structured import (
    json_object_answer,
    json_schema_answer,
    plan_tool_calls,
)

__all__ = [
    "FORCED_RUN", "NO_IMAGE", "VOCAB_SIZE", "Image", "Message", "Output", "Request", "Tool",
    "ToolCall", "Vocabulary", "alternatives", "answer_text", "apply_logit_bias",
    "billed_prompt_tokens", "generate", "prompt_tokens", "token_for_id", "token_id",
    "token_logprob", "tokenize", "truncate", "vocabulary",
]

NO_IMAGE = "I cannot see any image."


def _one_word(question: str) -> bool:
    return bool(re.search(r"\b(?:one|single) word\b|\bonly\b|\bjust the\b", question, re.I))


def _unquote(text: str) -> str:
    text = text.strip()
    match = re.fullmatch(r"(['\"“‘`])(.*?)(['\"”’`])[.!]?", text, re.S)
    return match.group(2) if match else text


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


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
        for message in ctx.messages:  # the question itself may state it first
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
    country = country_in(ctx.question)
    if country is None:
        return None
    capital = CAPITALS[country]
    yes_no = re.search(r"\b(?i:is)\s+([A-Z][\w .-]*?)\s+the\s+capital\b", ctx.question)
    if yes_no:
        return "Yes." if yes_no.group(1).lower() == capital.lower() else "No."
    if _one_word(ctx.question):
        return capital
    name = COUNTRY_NAMES.get(country, country.title())
    return f"The capital of {name} is {capital}."


def _rule_count(ctx: _Context) -> str | None:
    found = count_range(ctx.question)
    if found is None:
        return None
    start, end = found
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
        count = int(times) if times.isdigit() else NUMBER_WORDS.get(times, 1)
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
    asking = last_user(messages)
    cities = find_cities(asking.text) if asking else []
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
                              if any(w in k.lower() for w in LOCATION_KEYS)), None)
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
    last = last_user(messages)
    question = last.text if last else ""
    ctx = _Context(messages, question, relevant_images(messages, question))
    for rule in _RULES:
        reply = rule(ctx)
        if reply:
            return str(reply)
    return FALLBACK


def generate(request: Request) -> Output:
    """The model's answer to ``request`` (one choice; every choice is the same)."""
    calls = plan_tool_calls(request)
    if calls:
        finish = "stop" if request.forced_tool is not None else "tool_calls"
        return Output(None, calls, finish)
    fmt = request.response_format or {}
    kind = fmt.get("type")
    if kind == "json_object":
        return Output(json_object_answer(request.messages, answer_text(request.messages)),
                      [], "stop")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        spec = spec if isinstance(spec, Mapping) else {}
        schema = spec.get("schema")
        schema = schema if isinstance(schema, Mapping) else {}
        text = json_schema_answer(request.messages, schema, answer_text(request.messages),
                                  bool(spec.get("strict")))
        return Output(text, [], "stop")
    return Output(answer_text(request.messages), [], "stop")

