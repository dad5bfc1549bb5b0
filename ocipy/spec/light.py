"""The documents `exec` reads, checked in plain Python: no pydantic-core (~10 ms to load), no `re`.

An exec (a Kubernetes exec probe: every few seconds in every pod) reads the process to run (the config's with the
flags applied, or a whole `--process` file: what containerd and Podman pass) and, from the config create saved, the
fields its join plan needs. The rules are generated from the models (`lightrules.py`, by
`python -m ocipy.spec.schemagen`): pydantic-core's strict validation of those schemas, node for node, including
the models' checks (ocipy/spec/checks.py) and their `pattern`s (by hand below: `re` costs ~1.5 ms).

`validate` answers only "valid, and here is the object". When it says None, the caller asks ocipy/spec/fast.py,
whose answer (and the models' wording of a problem) is what the user sees: errors read exactly as before, and
tests/unit/test_light_validation.py holds the two verdicts and objects equal.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from collections.abc import Callable
    from typing import Any

from ocipy.spec import lightrules


class _Invalid(Exception):
    pass


def validate(kind: str, document: Any) -> Any:
    """The checked record of `document` ("Process"; "Spec": the fields exec reads; "Create": the whole config), or
    None when it is invalid."""
    try:
        return _model(lightrules.ROOTS[kind], document)
    except _Invalid:
        return None
    except RecursionError:  # nesting deeper than the interpreter's stack: let pydantic-core decide
        return None


def _abs_path(s: str) -> bool:  # ^(/|[A-Za-z]:[\\/]|\\\\)
    if s.startswith(("/", "\\\\")):
        return True
    return len(s) >= 3 and s[0].isascii() and s[0].isalpha() and s[1] == ":" and s[2] in "\\/"


def _cpu_list(s: str) -> bool:  # ^[0-9, -]*$
    return not s.strip("0123456789, -")


_ALNUM_HYPHEN = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")


def _numeric(s: str) -> bool:  # 0|[1-9]\d*  (\d: any Unicode decimal digit, as the rust regex engine)
    return s == "0" or (s.isdecimal() and s[0] in "123456789")


def _pre_part(s: str) -> bool:  # 0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*
    if _numeric(s):
        return True
    i = 0
    while i < len(s) and s[i].isdecimal():
        i += 1
    return i < len(s) and s[i] in _ALNUM_HYPHEN and not s[i].isdigit() and all(c in _ALNUM_HYPHEN for c in s[i + 1 :])


def _semver(s: str) -> bool:
    core, plus, build = s.partition("+")
    if plus and not all(p and all(c in _ALNUM_HYPHEN for c in p) for p in build.split(".")):
        return False
    core, dash, pre = core.partition("-")
    if dash and not all(_pre_part(p) for p in pre.split(".")):
        return False
    parts = core.split(".")
    return len(parts) == 3 and all(_numeric(p) for p in parts)


def _device_type(s: str) -> bool:  # ^[cbup]$
    return len(s) == 1 and s in "cbup"


def _device_access(s: str) -> bool:  # ^[rwm]*$
    return not s.strip("rwm")


def _hugepage_size(s: str) -> bool:  # ^[1-9][0-9]*[KMG]B$  ([0-9]: ASCII digits only)
    return len(s) >= 3 and s[0] in "123456789" and not s[1:-2].strip("0123456789") and s[-2] in "KMG" and s[-1] == "B"


def _rdt_mem_bw(s: str) -> bool:  # ^MB:[^\n]*$
    return s.startswith("MB:") and "\n" not in s


_PATTERNS: dict[str | None, Callable[[str], bool]] = {
    "abs_path": _abs_path,
    "cpu_list": _cpu_list,
    "semver": _semver,
    "device_type": _device_type,
    "device_access": _device_access,
    "hugepage_size": _hugepage_size,
    "rdt_mem_bw": _rdt_mem_bw,
}


def _model(name: str, v: Any) -> Any:
    if type(v) is not dict:
        raise _Invalid
    fields, skipped = lightrules.MODELS[name]
    values: dict[str, Any] = {}
    known = set(skipped)
    for key, attr, rule, optional in fields:
        known.add(key)
        if key not in v:
            if not optional:
                raise _Invalid
            values[attr] = None
            continue
        x = v[key]
        if x is None and optional:  # checks.reject_null: absent is fine, null is not
            raise _Invalid
        values[attr] = _value(rule, x)
    obj = lightrules.Record()
    obj.__dict__.update(values)
    obj.__pydantic_extra__ = {k: x for k, x in v.items() if k not in known}
    return obj


def _value(rule: tuple[Any, ...], v: Any) -> Any:
    kind = rule[0]
    if kind == "s":
        if type(v) is not str or (rule[1] is not None and not _PATTERNS[rule[1]](v)):
            raise _Invalid
        return v
    if kind == "i":
        if type(v) is not int or (rule[1] is not None and v < rule[1]) or (rule[2] is not None and v > rule[2]):
            raise _Invalid
        return v
    if kind == "m":
        return _model(rule[1], v)
    if kind == "l":
        if type(v) is not list or len(v) < rule[2]:
            raise _Invalid
        item = rule[1]
        return [_value(item, x) for x in v]
    if kind == "L":
        if not any(type(v) is type(e) and v == e for e in rule[1]):
            raise _Invalid
        return v
    if kind == "c":
        v = _value(rule[2], v)
        if v not in lightrules.CHECKS[rule[1]]:
            raise _Invalid
        return v
    if kind == "b":
        if type(v) is not bool:
            raise _Invalid
        return v
    if kind == "d":
        if type(v) is not dict:
            raise _Invalid
        return {_value(rule[1], k): _value(rule[2], x) for k, x in v.items()}
    if kind == "a":
        return v
    raise _Invalid  # a rule this module does not know: let pydantic-core decide
