"""What the reference model sees and its vocabulary: messages, tools, tokens.

The data types follow the Chat Completions request (messages with text and image parts, tool
calls, tool results; https://platform.openai.com/docs/api-reference/chat/create). The
tokenizer, token log probabilities (``logprobs``) and token ids (``logit_bias``) are the
model's own, deterministic and documented here; :mod:`conformance.reference.model` is the
model itself.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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


def last_user(messages: Sequence[Message]) -> Message | None:
    """The last user message, if any."""
    for message in reversed(messages):
        if message.role == "user":
            return message
    return None


def relevant_images(messages: Sequence[Message], question: str) -> list[Image]:
    """The images a question is about: the latest user images, or all of them when it asks
    about several."""
    with_images = [m for m in messages if m.role == "user" and m.images]
    if not with_images:
        return []
    latest = with_images[-1].images
    several = re.search(r"\b(?:these|images|pictures|photos|both|two|three|each|all|colou?rs)\b",
                        question, re.I)
    if several and len(latest) == 1:
        return [image for m in with_images for image in m.images]
    return latest


# --------------------------------------------------------------------------------------------
# Log probabilities


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
