"""The prompts the checks send, in one place.

Each is short, unambiguous and answered reliably by real chat models (including small local
ones), so that a wrong answer is evidence about the provider, not about the model.  Answers are
matched case-insensitively and with tolerance for punctuation and extra words.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]

#: Cap for one-word answers: enough for "The capital of France is Paris." and nothing more.
SHORT = 16
#: Cap for the counting prompt: reaches "7" with room for a preamble, costs < 50 tokens.
COUNT_CAP = 48


def user(text: str) -> list[Message]:
    return [{"role": "user", "content": text}]


CAPITAL = user("What is the capital of France? Answer with one word.")
CAPITAL_ANSWER = "paris"

SECRET_SYSTEM = [
    {"role": "system", "content": "The secret word is kiwi."},
    {"role": "user", "content": "What is the secret word? Reply with the word only."},
]
SECRET_SYSTEM_ANSWER = "kiwi"

MULTI_TURN = [
    {"role": "user", "content": "Remember this number: 42."},
    {"role": "assistant", "content": "OK."},
    {"role": "user",
     "content": "What number did I ask you to remember? Reply with the number only."},
]
MULTI_TURN_ANSWER = "42"

CONTENT_PARTS = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "The secret word is plum."},
            {"type": "text", "text": "What is the secret word? Reply with the word only."},
        ],
    }
]
CONTENT_PARTS_ANSWER = "plum"

#: The control of the checks whose fact comes from elsewhere in the request (a system or
#: developer message, an earlier turn, a first content part): the same fact stated in the
#: question itself, which any model that can answer the question at all answers
#: (:func:`~conformance.checks.expect.unreached`).  Sent only when the check's answer misses.
FACT_IN_QUESTION = {
    "kiwi": "The secret word is kiwi. What is the secret word? Reply with the word only.",
    "mango": "The secret word is mango. What is the secret word? Reply with the word only.",
    "plum": "The secret word is plum. What is the secret word? Reply with the word only.",
    "42": "Remember this number: 42. What number did I ask you to remember? Reply with the "
          "number only.",
}

#: Counting gives a predictable, multi-token answer: the stop checks cut it at "7".
COUNT_TO_10 = user("Count from 1 to 10, separated by commas.")
STOP_TEXT = "7"
#: A list whose *second* entry is the one that occurs: proves every entry is honoured.
STOP_LIST = ["xyzzy", "7"]

#: Worded so that even SmolLM2-135M answers "1, 2, 3, 4, 5" ("Count from 1 to 5." makes it
#: stop at 3).
COUNT_TO_5 = user("List the numbers from 1 to 5.")

#: Always longer than a handful of tokens on any real model.
STORY = user("Write a short story about a robot.")
LENGTH_LIMIT = 5
