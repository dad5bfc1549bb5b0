"""ocipy.fastjson must read and write exactly what the json module does for the values ocipy stores and prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocipy import fastjson, recordjson

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


def _same_as_json(text: str) -> None:
    """recordjson.loads gives json.loads's value, or raises ValueError where json.loads does."""
    try:
        want = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            recordjson.loads(text)
        return
    got = recordjson.loads(text)
    assert got == want and json.dumps(got) == json.dumps(want)  # dumps: key order and int/float kinds too


@settings(max_examples=300, deadline=None, database=None)
@given(values)
def test_loads_record_matches_json(value: object) -> None:
    for text in (
        json.dumps(value),
        json.dumps(value, ensure_ascii=False, separators=(",", ":")),
        json.dumps(value, ensure_ascii=False, indent=1),
    ):
        _same_as_json(text)
        _same_as_json(f" \n{text}\r\t")


json_chars = st.sampled_from(list('{}[],:"\\ \t\n-+.eE0123456789truefalsnx\x00\x1féa'))


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(json_chars, max_size=40) | st.builds(lambda v, cut: json.dumps(v)[:cut], values, st.integers(0, 60)))
def test_loads_record_on_mutated_documents(text: str) -> None:
    # near-JSON and cut documents: the subset reader must never accept what json refuses, nor read it otherwise
    _same_as_json(text)


@pytest.mark.parametrize(
    "text",
    [
        "01",
        "-",
        "-01",
        "1.5",
        "1e3",
        "[1,]",
        '{"a":1,}',
        '{"a" 1}',
        "tru",
        '"a\\u0041"',
        '"\\ud800"',
        "1 2",
        '"a\x01"',
        '{"\n":1}',
    ],
)
def test_loads_record_edges(text: str) -> None:
    _same_as_json(text)


def test_record_path_loads_no_extension_module(tmp_path: Path) -> None:
    """A state.json of plain values is read, and `state` printed, without `_json` (a dlopen, ~0.3 ms of each verb)."""
    record = {
        "ociVersion": "1.0.2",
        "id": "c1",
        "pid": 42,
        "bundle": "/b",
        "created": "2026-12-01T18:09:15.013782313Z",
        "annotations": {"org.example": "é"},
        "ocipy": {"starttime": 7, "hooks": {}, "rootless": False, "cgroup": {"v2": "/sys/fs/cgroup/x", "n": None}},
    }
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(PROJECT)!r})\n"
        "from ocipy import fastjson, recordjson\n"
        # as the store writes it: compact, ensure_ascii=False
        f"v = recordjson.loads({json.dumps(record, ensure_ascii=False, separators=(',', ':'))!r}.encode())\n"
        "out = fastjson.dumps(v, indent=2)\n"
        "assert '_json' not in sys.modules and 'math' not in sys.modules, sorted(sys.modules)\n"
        "print(out)\n"
    )
    out = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == record
