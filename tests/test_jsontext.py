"""RFC 8259 JSON for provider data: NaN and ±Infinity are not JSON, whatever Python's json
takes, and no such float reaches a result file; nesting is limited to MAX_DEPTH (§9)."""

from __future__ import annotations

import json
import math

import pytest

from conformance import jsontext
from conformance.results import safe_json


@pytest.mark.parametrize("text", [
    '{"a": 1, "b": [1.5, -2e3, null, true], "c": "NaN"}',
    ' [ "Infinity" ] ',
    "1" * 100,
])
def test_json_is_read_as_pythons_json_reads_it(text: str) -> None:
    assert jsontext.loads(text) == json.loads(text)
    assert jsontext.reason(text) == ""


@pytest.mark.parametrize(("text", "token"), [
    ("NaN", "NaN"),
    ('{"usage": {"prompt_tokens": Infinity}}', "Infinity"),
    ('{"logprobs": [{"logprob": -Infinity}]}', "-Infinity"),
])
def test_nan_and_infinity_are_not_json(text: str, token: str) -> None:
    json.loads(text)  # the control: Python's json takes it
    with pytest.raises(jsontext.NonFiniteNumber, match=f"^{token} is not a JSON value"):
        jsontext.loads(text)
    assert jsontext.reason(text) == f" ({token} is not a JSON value, RFC 8259 §6)"


@pytest.mark.parametrize("text", ["{", '{"a": nan}', "", "\ufeff{}"])
def test_other_invalid_json_is_a_plain_value_error_without_a_reason(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        jsontext.loads(text)
    assert not isinstance(caught.value, jsontext.NonFiniteNumber)
    assert jsontext.reason(text) == ""


def test_safe_json_writes_non_finite_floats_as_strings() -> None:
    clean = safe_json({"a": [math.nan, math.inf, -math.inf], "b": 1.5, "c": 2})
    assert clean == {"a": ["nan", "inf", "-inf"], "b": 1.5, "c": 2}
    json.dumps(clean, allow_nan=False)


def test_nesting_up_to_the_limit_is_read_and_deeper_is_refused() -> None:
    limit = jsontext.MAX_DEPTH
    assert jsontext.loads("[" * limit + "]" * limit) is not None
    nested = '{"a": ' * limit + "1" + "}" * limit
    assert jsontext.loads(nested) is not None
    for depth in (limit + 1, 5_000, 200_000):  # the last two overflow Python's own parser
        with pytest.raises(jsontext.TooDeep):
            jsontext.loads("[" * depth + "]" * depth)
    with pytest.raises(ValueError, match=r"nested deeper than 64 levels.*RFC 8259 §9"):
        jsontext.loads('{"a": ' * (limit + 1) + "1" + "}" * (limit + 1))


def test_brackets_inside_strings_and_wide_arrays_are_not_depth() -> None:
    assert jsontext.loads('"' + "[" * 1000 + '"') == "[" * 1000
    wide = "[" + ",".join(["[[1]]"] * 500) + "]"
    assert len(jsontext.loads(wide)) == 500


def test_reason_explains_what_a_snippet_does_not_show() -> None:
    assert "RFC 8259 §6" in jsontext.reason("[NaN]")
    assert "nested deeper than 64 levels" in jsontext.reason("[" * 100 + "]" * 100)
    assert jsontext.reason("{") == ""  # a snippet shows what is wrong
    assert jsontext.reason('{"a": 1}') == ""
