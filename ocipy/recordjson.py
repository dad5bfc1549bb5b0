"""The reader of the records ocipy writes itself (state.json, read by every lifecycle verb): small, compact JSON, read
by a few lines of Python instead of `_json`.

`_json` is an extension module (a dlopen and a scan of every sys.path directory): loading it costs ~0.3 ms, a third of
a lifecycle verb's own work, and a 1 KiB record parses here in ~0.06 ms. This accepts a strict subset of JSON whose
value it can tell is right (strings without escapes or control characters, integers) and hands anything else to
`fastjson.loads` (`_json`), so its result, and its ValueError, are always
`fastjson.loads`'s (json.loads's, except that NaN and Infinity are refused). Its own module, not part of
fastjson, so that the verbs that only read records do not load the writer and `_json`'s glue.
"""

TYPE_CHECKING = False  # `typing` costs ~3 ms (it imports re); only mypy needs it here
if TYPE_CHECKING:
    from typing import Any

_WS = " \t\n\r"
RECORD_MAX = 4096  # characters: above this `_json` (import included) reads faster than the Python reader


class _Other(Exception):
    """What `loads` leaves to fastjson.loads: not in its subset, or not JSON at all."""


_DIGITS = frozenset("-0123456789")
_WORDS = {"t": ("true", True), "f": ("false", False), "n": ("null", None)}


def loads(text: str | bytes) -> "Any":
    """fastjson.loads for a small document ocipy wrote (state.json), without loading `_json` (see the module's
    text)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if len(text) <= RECORD_MAX:
        try:
            value, end = _value(text, len(text) - len(text.lstrip(_WS)))
            if not text[end:].strip(_WS):
                return value
        except (_Other, IndexError, ValueError, RecursionError):
            pass
    from . import fastjson

    return fastjson.loads(text)


def _string(s: str, i: int) -> tuple[str, int]:
    """The string opening at s[i], when it has no escape and no control character (those go to fastjson)."""
    j = s.index('"', i + 1)
    v = s[i + 1 : j]
    if "\\" in v or not v.isprintable():
        raise _Other
    return v, j + 1


def _skip(s: str, i: int) -> int:
    while s[i] in _WS:
        i += 1
    return i


def _value(s: str, i: int) -> "tuple[Any, int]":
    c = s[i]
    if c == '"':
        return _string(s, i)
    if c == "{":
        obj: dict[str, Any] = {}
        i = _skip(s, i + 1)
        if s[i] == "}":
            return obj, i + 1
        while True:
            if s[i] != '"':
                raise _Other
            key, i = _string(s, i)
            i = _skip(s, i)
            if s[i] != ":":
                raise _Other
            obj[key], i = _value(s, _skip(s, i + 1))
            i = _skip(s, i)
            if s[i] == "}":
                return obj, i + 1
            if s[i] != ",":
                raise _Other
            i = _skip(s, i + 1)
    if c == "[":
        arr: list[Any] = []
        i = _skip(s, i + 1)
        if s[i] == "]":
            return arr, i + 1
        while True:
            item, i = _value(s, i)
            arr.append(item)
            i = _skip(s, i)
            if s[i] == "]":
                return arr, i + 1
            if s[i] != ",":
                raise _Other
            i = _skip(s, i + 1)
    if c in _DIGITS:
        # an integer: -?(0|[1-9][0-9]*) exactly; a fraction or an exponent goes to `loads`
        j = i + 1
        while j < len(s) and s[j] in _DIGITS:
            j += 1
        digits = s[i + 1 : j] if c == "-" else s[i:j]
        if not digits.isdigit() or (digits[0] == "0" and len(digits) > 1) or s[j : j + 1] in (".", "e", "E"):
            raise _Other
        return int(s[i:j]), j
    word = _WORDS.get(c)
    if word is not None and s.startswith(word[0], i):
        return word[1], i + len(word[0])
    raise _Other
