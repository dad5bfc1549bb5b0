"""Parsing and validating spec documents, with every problem named by an RFC 6901 JSON pointer."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from ocipy import errors
from ocipy.spec._base import ABS_PATH_PATTERN, SEMVER_PATTERN
from ocipy.spec.checks import SUPPORTED_MAJOR, SUPPORTED_MAX_MINOR, version_problem
from ocipy.spec.config import Spec
from ocipy.spec.document import Problem, SpecError, format_problem, one_line, parse_json

if TYPE_CHECKING:
    from ocipy.spec.features import Features
    from ocipy.spec.state import State

__all__ = [
    "SUPPORTED_MAJOR",
    "SUPPORTED_MAX_MINOR",
    "Problem",
    "SpecError",
    "format_problem",
    "load_config",
    "parse_json",
    "version_problem",
]

M = TypeVar("M", bound=BaseModel)


# Patterns whose mismatch has a better wording than "must match <regex>".
_PATTERN_MESSAGES = {
    ABS_PATH_PATTERN: "must be an absolute path",
    SEMVER_PATTERN: "must be a semver version (like 1.3.0)",
}

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "float_type": "a number",
}


def pointer(loc: Iterable[str | int]) -> str:
    """RFC 6901 pointer for a path of keys and indices (pydantic's `loc`): `errors.pointer`, the one builder."""
    return errors.pointer(*loc)


def _message(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "missing required field"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}"
    if kind == "literal_error":
        return f"invalid value {_show(err.get('input'))}, must be one of {ctx.get('expected', '?')}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        return _PATTERN_MESSAGES.get(pattern, f"must match {pattern}")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        key = {
            "greater_than_equal": "ge",
            "greater_than": "gt",
            "less_than_equal": "le",
            "less_than": "lt",
        }[kind]
        return f"must be {op} {ctx.get(key)}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "json_invalid":
        return f"invalid json: {ctx.get('error', '')}"
    # Our own PydanticCustomError messages are already in house style; others get lower-cased.
    msg: str = err.get("msg", kind)
    return msg[:1].lower() + msg[1:]


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def problems_from(exc: ValidationError) -> list[Problem]:
    """Every pydantic error as (pointer, one-line lower-case message), in document order as reported."""
    out: list[Problem] = []
    seen: set[Problem] = set()
    for err in exc.errors(include_url=False):
        item = (pointer(err["loc"]), one_line(_message(err)))
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def validate(model: type[M], obj: Any) -> M:
    """Validate a parsed document against a model; all problems raise together as SpecError."""
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise SpecError(problems_from(exc)) from None


def config_problems(obj: Any) -> tuple[Spec | None, list[Problem]]:
    """All model problems of a parsed config plus the supported-version check (for bundle validation)."""
    problems: list[Problem] = []
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(obj)
    except ValidationError as exc:
        problems = problems_from(exc)
    if isinstance(obj, dict):
        vp = version_problem(obj.get("ociVersion"))
        if vp is not None:
            problems.insert(0, vp)
            spec = None
    return spec, problems


def load_config(data: bytes | str) -> Spec:
    """Parse and validate config.json contents; the version must be one this runtime implements."""
    spec, problems = config_problems(parse_json(data))
    if problems or spec is None:
        raise SpecError(problems)
    return spec


# State and Features are imported on use: `create` only needs Spec, and every model costs import time.


def load_state(data: bytes | str) -> State:
    from ocipy.spec.state import State

    return validate(State, parse_json(data))


def load_features(data: bytes | str) -> Features:
    from ocipy.spec.features import Features

    return validate(Features, parse_json(data))
