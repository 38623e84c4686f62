"""RFC 8259 JSON for provider data: NaN and ±Infinity are not JSON, whatever Python's json
takes; and no such float reaches a result file."""

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
