"""ocipy.fastjson must read and write exactly what the json module does for the values ocipy stores and prints."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocipy import fastjson

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, database=None)
@given(values)
def test_round_trip_matches_json(value: object) -> None:
    assert fastjson.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert fastjson.dumps(value, indent=2) == json.dumps(value, ensure_ascii=False, indent=2)
    text = json.dumps(value)
    assert fastjson.loads(text) == json.loads(text)
    assert fastjson.loads(f" \n{text}\t ".encode()) == json.loads(text)


@pytest.mark.parametrize("bad", ["", "   ", "{", '{"a": 1} x', "[1,]", "NaN", "{'a': 1}", '"\\x"'])
def test_malformed_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        fastjson.loads(bad)


def test_unserialisable_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        fastjson.dumps({"a": object()})
    with pytest.raises(ValueError):
        fastjson.dumps(float("nan"))
