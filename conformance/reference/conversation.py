"""What the reference model sees and its vocabulary: messages, tools, tokens.

The data types follow the Chat Completions request (messages with text and image parts, tool
calls, tool results; https://platform.openai.com/docs/api-reference/chat/create). The
tokenizer, token log probabilities (``logprobs``) and token ids (``logit_bias``) are the
model's own, deterministic and documented here; :mod:`conformance.reference.model` is the
model itself.

Two vocabularies: the scripted model's own (:data:`TOY`: words and punctuation, ids
0..:data:`VOCAB_SIZE`-1, used for ref-1 and ref-2) and, for the OpenAI-named models, OpenAI's
real tokenizer of the name (:class:`EncodingVocabulary` over :mod:`conformance.tokens`): the
same answers are then written, cut at ``max_tokens``, streamed, given logprobs and biased in
o200k_base or cl100k_base tokens, and billed exactly (:func:`billed_prompt_tokens`).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance import tokens as openai_tokens

_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens that keep their leading space; ``"".join`` restores it."""
    return _TOKEN.findall(text)


def truncate(text: str, stops: Sequence[str], limit: int | None,
             vocabulary: Vocabulary | None = None) -> tuple[list[str], str | None, bool]:
    """Decoding with stop strings and a token limit: (the tokens generated, the stop string
    that ended the text or None, whether the limit cut it).  The earliest stop string ends the
    text (it is not included) unless the limit is reached first.  Tokens are ``vocabulary``'s
    (the model's own by default); the limit counts token ids."""
    vocab = vocabulary or TOY
    found = [(text.find(s), s) for s in stops if s and s in text]
    cut, matched = min(found) if found else (len(text), None)
    pieces = vocab.pieces(text[:cut])
    if limit is not None and sum(len(ids) for _, ids in pieces) > limit:
        kept: list[str] = []
        used = 0
        for piece, ids in pieces:
            if used + len(ids) > limit:
                break
            kept.append(piece)
            used += len(ids)
        # Re-encoded on its own, a cut text can (rarely) take more tokens than its pieces did.
        while kept and vocab.count("".join(kept)) > limit:
            kept.pop()
        return kept, None, True
    return [piece for piece, _ in pieces], matched, False


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


def apply_logit_bias(text: str, bias: Mapping[int, int],
                     vocabulary: Vocabulary | None = None) -> str:
    """The answer under ``logit_bias`` (CreateChatCompletionRequest.logit_bias: "values like
    -100 or 100 should result in a ban or exclusive selection of the relevant token").

    A bias of +50 or more selects its token exclusively (the strongest wins); a bias of -50 or
    less bans its token, and the model writes the rest of its answer without it.  Smaller
    biases do not change this scripted model's choice.  Ids are ``vocabulary``'s (the model's
    own by default).
    """
    vocab = vocabulary or TOY
    forced = [t for t, b in bias.items() if b >= 50]
    if forced:
        return vocab.token_for_id(max(forced, key=lambda t: (bias[t], -t))) * FORCED_RUN
    banned = {t for t, b in bias.items() if b <= -50}
    for _ in range(8):
        pieces = vocab.pieces(text)
        if not any(banned.intersection(ids) for _, ids in pieces):
            break
        text = "".join(piece for piece, ids in pieces if not banned.intersection(ids))
    return text


# --------------------------------------------------------------------------------------------
# Vocabularies


class Vocabulary:
    """The scripted model's own vocabulary (:func:`tokenize`, :func:`token_id`,
    :func:`token_for_id`): one id per token."""

    #: Ids are 0 .. size-1 (``logit_bias`` keys outside are refused).
    size = VOCAB_SIZE
    #: The OpenAI encoding, or None for the model's own vocabulary.
    encoding: str | None = None

    def pieces(self, text: str) -> list[tuple[str, tuple[int, ...]]]:
        """``text`` as tokens (``"".join`` restores it), each with the ids it is made of (one
        here)."""
        return [(token, (token_id(token),)) for token in tokenize(text)]

    def count(self, text: str) -> int:
        """The number of token ids in ``text`` (what usage counts)."""
        return len(tokenize(text))

    def token_for_id(self, ident: int) -> str:
        """The text of token ``ident``."""
        return token_for_id(ident)


class EncodingVocabulary(Vocabulary):
    """OpenAI's tokenizer ``encoding`` (``o200k_base``, ``cl100k_base``) as the model's
    vocabulary.  A token is the text of one token id, or of the few consecutive ids that
    together make whole UTF-8 characters (a streamed delta or a logprobs entry is text)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.size = openai_tokens.encoder(encoding).n_vocab

    def pieces(self, text: str) -> list[tuple[str, tuple[int, ...]]]:
        enc = openai_tokens.encoder(self.encoding or "")
        out: list[tuple[str, tuple[int, ...]]] = []
        pending, ids = b"", []
        for ident in enc.encode_ordinary(text):
            pending += enc.decode_single_token_bytes(ident)
            ids.append(ident)
            try:
                piece = pending.decode("utf-8")
            except UnicodeDecodeError:
                continue
            out.append((piece, tuple(ids)))
            pending, ids = b"", []
        return out

    def count(self, text: str) -> int:
        return openai_tokens.count(text, self.encoding or "")

    def token_for_id(self, ident: int) -> str:
        try:
            data = openai_tokens.encoder(self.encoding or "").decode_single_token_bytes(ident)
        except KeyError:  # an unassigned id below n_vocab: nothing to write
            return ""
        return data.decode("utf-8", errors="replace")


#: The scripted model's own vocabulary (ref-1, ref-2).
TOY = Vocabulary()
_VOCABULARIES: dict[str, Vocabulary] = {}


def vocabulary(encoding: str | None) -> Vocabulary:
    """The vocabulary of a model: OpenAI's ``encoding``, or the model's own for None."""
    if encoding is None:
        return TOY
    found = _VOCABULARIES.get(encoding)
    if found is None:
        found = _VOCABULARIES[encoding] = EncodingVocabulary(encoding)
    return found


def _plain(message: Message) -> bool:
    return not (message.images or message.tool_calls or message.tool_call_id is not None)


def billed_prompt_tokens(messages: Sequence[Message], tools: Sequence[Tool],
                         encoding: str) -> int:
    """The ``prompt_tokens`` an OpenAI-named model bills for what it sees, in ``encoding``.

    Plain text messages (string content or text parts, which the model sees joined by
    newlines; no images, tool calls or tool results) and no tools: exactly
    :func:`conformance.tokens.count_chat` (the cookbook rule OpenAI's API matches).
    Otherwise an estimate by the same rule: tool calls count their name and arguments, an
    image 85 tokens (OpenAI's low-detail price), a tool its name, description and JSON
    parameters (OpenAI renders tools by rules of its own).
    """
    if not tools and all(_plain(m) for m in messages):
        plain = [{"role": m.role, "content": m.text, **({"name": m.name} if m.name else {})}
                 for m in messages]
        return openai_tokens.count_chat(plain, encoding)

    def count(text: str) -> int:
        return openai_tokens.count(text, encoding)

    total = 3
    for message in messages:
        total += 3 + count(message.role) + count(message.text) + 85 * len(message.images)
        total += sum(count(c.name) + count(c.arguments) for c in message.tool_calls)
        if message.name:
            total += count(message.name) + 1
    for tool in tools:
        total += count(tool.name) + count(tool.description) + count(json.dumps(tool.parameters))
    return total
