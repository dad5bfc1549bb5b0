"""ocipy.fastjson must read and write exactly what the json module does for the values ocipy stores and prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocipy import fastjson

PROJECT = Path(__file__).resolve().parents[2]

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


@pytest.mark.parametrize("text", ["{]", '{"a" 1}', "[1,]", '{"a": tru}', '"unterminated'])
def test_syntax_errors_are_value_errors_without_json_imported(text: str) -> None:
    """_json words syntax errors through json.decoder, found only when `json` is imported (as it is under pytest):
    in the real command it is not, so this runs in a fresh interpreter."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(PROJECT)!r})\n"
        "from ocipy import fastjson\n"
        "assert 'json' not in sys.modules\n"
        "try:\n"
        f"    fastjson.loads({text!r})\n"
        "except ValueError as exc:\n"
        "    print('ValueError', exc)\n"
    )
    out = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ValueError "), out.stdout  # not SystemError, not a value
