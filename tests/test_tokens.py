"""Unit tests for conformance.tokens, against numbers OpenAI published, not numbers we made.

Sources (read from the public repositories, copied here verbatim):

* COOKBOOK: openai/openai-cookbook, examples/How_to_count_tokens_with_tiktoken.ipynb.  Two
  versions: commit c81359cdc6744f001e40c08a192604c5113fdab3 (o200k_base era: gpt-4o and
  gpt-4o-mini in the chat example, o200k token ids in sections 3 and 5) and the older commit
  06d9feb5e21e6fdc85f3ddce7731e05892758cd7 (gpt-3.5-turbo-0301 and gpt-4-0314 in the chat
  example).  The chat counts are the printed lines "N prompt tokens counted by the OpenAI
  API.", i.e. ``usage.prompt_tokens`` as the API returned it.
* TIKTOKEN_TESTS: openai/tiktoken, tests/test_encoding.py (test_simple, test_simple_regex,
  test_basic_encode, test_encode_surrogate_pairs; cl100k_base only: tiktoken's public tests
  have no o200k_base ids).
* HARMONY_TESTS: openai/harmony, tests/test_harmony.py (test_encode_allowed_special):
  o200k_harmony, whose ranks are o200k_base's, so ordinary text encodes the same.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tiktoken_ext import openai_public

from conformance import tokens
from conformance.tokens import (
    CL100K_BASE,
    O200K_BASE,
    OVERHEAD_ALLOWANCE,
    count,
    count_chat,
    encoder,
    encoding_for,
    fingerprint_text,
    which_encoding,
)

# ------------------------------------------------------------------ the cookbook's chat example

# COOKBOOK section 6, "let's verify the function above matches the OpenAI API response":
# example_messages, identical in both versions.
COOKBOOK_MESSAGES: list[dict[str, str]] = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on "
        "opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]

# (model, prompt_tokens the OpenAI API returned for COOKBOOK_MESSAGES, notebook commit)
API_PROMPT_TOKENS = [
    ("gpt-3.5-turbo", 129, "c81359cd"),
    ("gpt-4-0613", 129, "c81359cd"),
    ("gpt-4", 129, "c81359cd"),
    ("gpt-4o", 124, "c81359cd"),
    ("gpt-4o-mini", 124, "c81359cd"),
    ("gpt-3.5-turbo-0301", 127, "06d9feb5"),
    ("gpt-3.5-turbo-0613", 129, "06d9feb5"),
    ("gpt-4-0314", 129, "06d9feb5"),
    ("gpt-4-0613", 129, "06d9feb5"),
    ("gpt-4", 129, "06d9feb5"),
]


@pytest.mark.parametrize(
    ("model", "api_count"),
    [pytest.param(m, n, id=f"{m}={n}@{c}") for m, n, c in API_PROMPT_TOKENS],
)
def test_count_chat_equals_the_prompt_tokens_openai_billed(model: str, api_count: int) -> None:
    assert count_chat(COOKBOOK_MESSAGES, model) == api_count


def test_count_chat_by_encoding_name_uses_the_current_rule() -> None:
    assert count_chat(COOKBOOK_MESSAGES, CL100K_BASE) == 129
    assert count_chat(COOKBOOK_MESSAGES, O200K_BASE) == 124


def test_the_published_snapshot_drift_is_within_the_allowance() -> None:
    # COOKBOOK 06d9feb5 printed, for "gpt-3.5-turbo" while that alias still served 0301:
    # "129 prompt tokens counted by num_tokens_from_messages()" and
    # "127 prompt tokens counted by the OpenAI API."
    counted, billed = count_chat(COOKBOOK_MESSAGES, "gpt-3.5-turbo"), 127
    assert counted == 129
    assert abs(counted - billed) <= OVERHEAD_ALLOWANCE


# ------------------------------------------------------------------------- plain-text vectors

# (encoding, text, token ids, source)
PUBLISHED_IDS = [
    # COOKBOOK c81359cd section 3 (o200k_base, via encoding_for_model("gpt-4o-mini")) and
    # 06d9feb5 section 3 (cl100k_base, via encoding_for_model("gpt-3.5-turbo"))
    (O200K_BASE, "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0], "cookbook"),
    (CL100K_BASE, "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0], "cookbook"),
    # COOKBOOK c81359cd section 5, compare_encodings()
    (O200K_BASE, "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367],
     "cookbook"),
    (CL100K_BASE, "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191],
     "cookbook"),
    (O200K_BASE, "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19], "cookbook"),
    (CL100K_BASE, "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19], "cookbook"),
    (O200K_BASE, "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669],
     "cookbook"),
    (CL100K_BASE, "お誕生日おめでとう",
     [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699], "cookbook"),
    # TIKTOKEN_TESTS
    (CL100K_BASE, "hello world", [15339, 1917], "tiktoken"),
    (CL100K_BASE, "rer", [38149], "tiktoken"),
    (CL100K_BASE, "'rer", [2351, 81], "tiktoken"),
    (CL100K_BASE, "today\n ", [31213, 198, 220], "tiktoken"),
    (CL100K_BASE, "today\n \n", [31213, 27907], "tiktoken"),
    (CL100K_BASE, "today\n  \n", [31213, 14211], "tiktoken"),
    (CL100K_BASE, " \x850", [220, 126, 227, 15], "tiktoken"),
    (CL100K_BASE, "👍", [9468, 239, 235], "tiktoken"),
    # HARMONY_TESTS: encode("hello world") and encode("<|start|>", disallowed_special=())
    (O200K_BASE, "hello world", [24912, 2375], "harmony"),
    (O200K_BASE, "<|start|>", [27, 91, 5236, 91, 29], "harmony"),
]


@pytest.mark.parametrize(
    ("encoding", "text", "ids"),
    [pytest.param(e, t, i, id=f"{s}-{e}-{t!r}") for e, t, i, s in PUBLISHED_IDS],
)
def test_token_ids_equal_the_published_ones(encoding: str, text: str, ids: list[int]) -> None:
    assert encoder(encoding).encode_ordinary(text) == ids
    assert count(text, encoding) == len(ids)


def test_special_token_text_counts_as_ordinary_text() -> None:
    # TIKTOKEN_TESTS: "hello <|endoftext|>" with allowed_special="all" is [15339, 220, 100257];
    # a provider's message is not allowed to inject a special token, so it counts as text.
    assert encoder(CL100K_BASE).encode("hello <|endoftext|>", allowed_special="all") == [
        15339, 220, 100257,
    ]
    assert count("hello <|endoftext|>", CL100K_BASE) > 3


# -------------------------------------------------------------- pins against installed tiktoken


@pytest.mark.parametrize("encoding", [O200K_BASE, CL100K_BASE])
def test_pins_equal_the_installed_tiktoken(
    encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash, pattern and special tokens copied into tokens.py are tiktoken's own."""
    seen: dict[str, Any] = {}

    def fake_load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen.update(url=url, expected_hash=expected_hash)
        return {}

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", fake_load)
    spec = openai_public.ENCODING_CONSTRUCTORS[encoding]()
    assert seen["url"].endswith(f"/{encoding}.tiktoken")
    assert seen["expected_hash"] == tokens._HASHES[encoding]
    assert spec["pat_str"] == tokens._PATTERNS[encoding]
    assert spec["special_tokens"] == tokens._SPECIAL_TOKENS[encoding]
    assert tokens._HASHES[encoding] in inspect.getsource(openai_public)


def test_a_rank_file_with_another_hash_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    package = tmp_path / "fakecarrier"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "o200k_base.tiktoken.gz").write_bytes(gzip.compress(b"aGk= 0\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(tokens, "_CARRIERS", ("fakecarrier", "not_installed_carrier"))
    with pytest.raises(tokens.TokenizerUnavailable, match="SHA-256 differs"):
        tokens._rank_file(O200K_BASE)
    monkeypatch.setattr(tokens, "_CARRIERS", ("not_installed_carrier",))
    with pytest.raises(tokens.TokenizerUnavailable, match="is installed"):
        tokens._rank_file(O200K_BASE)


def test_unknown_encoding_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        encoder("p50k_base")


# ----------------------------------------------------------------------------- model table


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", O200K_BASE),
        ("gpt-4o-2024-08-06", O200K_BASE),
        ("gpt-4o-2024-05-13", O200K_BASE),
        ("gpt-4o-mini", O200K_BASE),
        ("gpt-4o-mini-2024-07-18", O200K_BASE),
        ("chatgpt-4o-latest", O200K_BASE),
        ("gpt-4.1", O200K_BASE),
        ("gpt-4.1-mini", O200K_BASE),
        ("gpt-4.1-nano-2025-04-14", O200K_BASE),
        ("gpt-4.5-preview", O200K_BASE),
        ("o1", O200K_BASE),
        ("o1-mini", O200K_BASE),
        ("o1-2024-12-17", O200K_BASE),
        ("o3", O200K_BASE),
        ("o3-mini", O200K_BASE),
        ("o4-mini", O200K_BASE),
        ("o4-mini-2025-04-16", O200K_BASE),
        ("gpt-5", O200K_BASE),
        ("gpt-5-mini", O200K_BASE),
        ("gpt-5.1", O200K_BASE),
        ("gpt-4", CL100K_BASE),
        ("gpt-4-0613", CL100K_BASE),
        ("gpt-4-turbo", CL100K_BASE),
        ("gpt-4-turbo-2024-04-09", CL100K_BASE),
        ("gpt-4-32k", CL100K_BASE),
        ("gpt-3.5-turbo", CL100K_BASE),
        ("gpt-3.5-turbo-0125", CL100K_BASE),
        ("gpt-3.5-turbo-16k", CL100K_BASE),
        ("gpt-35-turbo", CL100K_BASE),
        # additions: vendor prefix, case, fine-tuned names by their base model
        ("openai/gpt-4o", O200K_BASE),
        ("GPT-4o-Mini", O200K_BASE),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", O200K_BASE),
        ("ft:gpt-4.1-2025-04-14:acme:x:abc", O200K_BASE),
        ("ft:gpt-3.5-turbo-0125:acme::abc", CL100K_BASE),
        # no public tokenizer, or a chat format the cookbook rule does not fit
        ("claude-3-5-sonnet-20241022", None),
        ("anthropic/claude-sonnet-4", None),
        ("gemini-1.5-pro", None),
        ("deepseek-chat", None),
        ("qwen2.5-72b-instruct", None),
        ("llama-3.1-70b-instruct", None),
        ("mistral-large-latest", None),
        ("gpt-oss-120b", None),
        ("text-embedding-3-small", None),
        ("gpt4o", None),
        ("", None),
    ],
)
def test_encoding_for(model: str, encoding: str | None) -> None:
    assert encoding_for(model) == encoding


def test_encoding_for_agrees_with_tiktoken_on_its_chat_rows() -> None:
    import tiktoken.model

    rows = [
        name for name in tiktoken.model.MODEL_TO_ENCODING
        if tiktoken.model.MODEL_TO_ENCODING[name] in (O200K_BASE, CL100K_BASE)
        and name.startswith(("gpt-", "o1", "o3", "o4"))
    ]
    assert "gpt-4o" in rows and "gpt-3.5-turbo" in rows
    for name in rows:
        assert encoding_for(name) == tiktoken.model.MODEL_TO_ENCODING[name], name
    for prefix, encoding in tiktoken.model.MODEL_PREFIX_TO_ENCODING.items():
        if encoding in (O200K_BASE, CL100K_BASE) and not prefix.startswith("ft:"):
            assert encoding_for(prefix + "2099-01-01") == encoding, prefix


# -------------------------------------------------------------------------- count_chat edges


def test_count_chat_refuses_what_it_cannot_count() -> None:
    with pytest.raises(ValueError, match="no public tokenizer"):
        count_chat([{"role": "user", "content": "hi"}], "claude-3-5-sonnet-20241022")
    parts = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    with pytest.raises(TypeError, match="'content' is list"):
        count_chat(parts, "gpt-4o")
    with pytest.raises(TypeError, match="'content' is NoneType"):
        count_chat([{"role": "assistant", "content": None}], "gpt-4o")


def test_count_chat_of_an_empty_user_message_is_the_wrapper() -> None:
    # 3 per message + "user" (1 token in both encodings) + 3 for the reply's priming
    for encoding in (O200K_BASE, CL100K_BASE):
        assert count_chat([{"role": "user", "content": ""}], encoding) == 7


# ------------------------------------------------------------------------------ fingerprint

WRAPPER = 7  # one user message around the text, as above


def test_fingerprint_separates_the_two_encodings_by_a_wide_margin() -> None:
    text = fingerprint_text()
    o200k, cl100k = count(text, O200K_BASE), count(text, CL100K_BASE)
    print(f"fingerprint: o200k_base={o200k} cl100k_base={cl100k}")
    message = f"o200k_base={o200k} cl100k_base={cl100k}"
    assert cl100k - o200k >= 20 * OVERHEAD_ALLOWANCE, message
    assert cl100k >= 2 * o200k, message
    assert (o200k, cl100k) == (74, 192), message


@pytest.mark.parametrize("encoding", [O200K_BASE, CL100K_BASE])
def test_which_encoding_names_the_one_that_matches_the_bill(encoding: str) -> None:
    text = fingerprint_text()
    billed = count_chat([{"role": "user", "content": text}], encoding)
    assert billed == count(text, encoding) + WRAPPER
    for drift in range(-OVERHEAD_ALLOWANCE, OVERHEAD_ALLOWANCE + 1):
        assert which_encoding(text, billed + drift, WRAPPER) == encoding
    assert which_encoding(text, billed + OVERHEAD_ALLOWANCE + 1, WRAPPER) is None


def test_which_encoding_is_none_for_other_bills_and_for_texts_that_cannot_tell() -> None:
    text = fingerprint_text()
    o200k, cl100k = count(text, O200K_BASE), count(text, CL100K_BASE)
    assert which_encoding(text, (o200k + cl100k) // 2 + WRAPPER, WRAPPER) is None
    assert which_encoding(text, 3 * cl100k, WRAPPER) is None
    assert which_encoding(text, 0, WRAPPER) is None
    # "hello world" is 2 tokens in both: a match, but not a fingerprint
    assert which_encoding("hello world", 2 + WRAPPER, WRAPPER) is None


# ------------------------------------------------------------------------------- offline

# Run in a fresh interpreter: every proxy points at a closed port, tiktoken's cache dir is
# empty, and an audit hook records every socket connect or name lookup.
_OFFLINE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    events = []
    def hook(event, args):
        if event in ("socket.connect", "socket.getaddrinfo"):
            events.append([event, repr(args)[:200]])
    sys.addaudithook(hook)
    result = {}
    try:
        if sys.argv[1] == "tokens":
            from conformance import tokens
            result["o200k"] = tokens.count("hello world", "o200k_base")
            result["chat"] = tokens.count_chat(
                [{"role": "user", "content": "tiktoken is great!"}], "gpt-4o")
            result["cl100k"] = tokens.count("hello world", "cl100k_base")
        else:
            import tiktoken
            tiktoken.get_encoding("cl100k_base")
            result["loaded"] = True
    except Exception as exc:
        result["error"] = type(exc).__name__
    result["sockets"] = events
    print(json.dumps(result))
    """
)


def run_offline(mode: str, cache_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    dead = "http://127.0.0.1:9"
    env.update(
        HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead,
        http_proxy=dead, https_proxy=dead, all_proxy=dead,
        TIKTOKEN_CACHE_DIR=str(cache_dir),
        PYTHONPATH=os.pathsep.join([str(Path(tokens.__file__).parent.parent), *sys.path]),
    )
    env.pop("DATA_GYM_CACHE_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT, mode],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_counting_touches_no_network(tmp_path: Path) -> None:
    result = run_offline("tokens", tmp_path)
    assert result == {"o200k": 2, "chat": 6 + WRAPPER, "cl100k": 2, "sockets": []}
    assert list(tmp_path.iterdir()) == []  # tiktoken's cache was not used either


def test_control_plain_tiktoken_would_fetch_and_the_harness_sees_it(tmp_path: Path) -> None:
    result = run_offline("tiktoken", tmp_path)
    assert "loaded" not in result
    assert result["error"] in ("ProxyError", "ConnectionError")
    assert any(event == "socket.connect" for event, _ in result["sockets"]), result
