"""A spec document as parsed JSON, and its problems as (RFC 6901 pointer, message): no pydantic here, so that
`create` and `exec` can read config.json and process.json without it (ocipy/spec/fast.py)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`), `collections.abc` ~1.3 ms: annotations only
    from collections.abc import Sequence
    from typing import Any

from ocipy import fastjson
from ocipy.errors import ConfigError

Problem = tuple[str, str]


class SpecError(ConfigError):
    """A document that is not valid JSON or does not fit the model; `.problems` lists every (pointer, message), the
    first is the error's own pointer and message (the one line users see)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems) or [("", "invalid document")]
        super().__init__(*self.problems[0])


def format_problem(problem: Problem) -> str:
    pointer, message = problem
    return f"{pointer}: {message}" if pointer else message


def one_line(text: str) -> str:
    return " ".join(text.split())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid json")


def _fffd(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in s)
    return s


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _fffd(value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_fffd(k): _replace_surrogates(v) for k, v in value.items()}
    return value


def _no_lone_surrogates(data: bytes | str, value: Any) -> Any:
    """A lone surrogate escape (`"\\udcff"`) is JSON but no character: it cannot be written as UTF-8 nor handed to
    the kernel. Go's encoding/json, so runc, reads each as U+FFFD; so does ocipy (docs/spec-models.md). Only a
    document with a `\\ud` escape is walked."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if b"\\ud" not in raw and b"\\uD" not in raw:
        return value
    return _replace_surrogates(value)


def parse_json(data: bytes | str) -> Any:
    """json.loads with NaN/Infinity refused; errors become SpecError with pointer "" and the position.

    `_json`'s scanner (ocipy/fastjson.py) reads a well-formed UTF-8 document without importing `json` (~3 ms, it
    pulls in `re`); `json` reads the rest: it words the error, or reads what it alone accepts (UTF-16, a BOM)."""
    try:
        return _no_lone_surrogates(data, fastjson.loads(data))
    except (ValueError, RecursionError):
        pass
    import json

    try:
        return _no_lone_surrogates(data, json.loads(data, parse_constant=_reject_constant))
    except json.JSONDecodeError as exc:
        raise SpecError(
            [
                (
                    "",
                    f"invalid json: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}",
                )
            ]
        ) from None
    except UnicodeDecodeError as exc:
        raise SpecError([("", f"invalid json: not utf-8 ({exc.reason}) at byte {exc.start}")]) from None
    except ValueError as exc:
        raise SpecError([("", f"invalid json: {one_line(str(exc)).lower()}")]) from None
    except RecursionError:
        raise SpecError([("", "invalid json: nested too deeply")]) from None
