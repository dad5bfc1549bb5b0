"""JSON for the lifecycle path without `import json`, which pulls in `re` and `enum`: ~6 ms of a ~15 ms command.

Two readers:
- `loads`: the C accelerators behind the json module (`_json`), used directly (its scanner reads, its string encoder
  writes). For any document: config.json, CRIU's files, the seccomp cache.
- `loads_record`: the records ocipy writes itself (state.json, read by every lifecycle verb), small and compact, read
  by a few lines of Python. `_json` is an extension module (a dlopen and a scan of every sys.path directory): loading
  it costs ~0.3 ms, a third of a lifecycle verb's own work, and a 1 KiB record parses here in ~0.06 ms. It accepts a
  strict subset of JSON whose value it can tell is right (strings without escapes, integers) and hands anything else
  to `loads`, so its result is always json.loads's.

`dumps` writes plain strings itself too, and loads `_json` only for one that needs escaping. The values are ocipy's
own (state.json, `state`, `list`, log lines): dicts, lists, str, int, float, bool and None. A malformed document
raises ValueError (json.JSONDecodeError is a ValueError, and is what `_json` raises).
"""

TYPE_CHECKING = False  # `typing` costs ~3 ms (it imports re); only mypy needs it here
if TYPE_CHECKING:
    from typing import Any, ClassVar

_WS = " \t\n\r"
_INF = float("inf")
RECORD_MAX = 4096  # characters: above this `_json` (import included) reads faster than the Python reader


def _no_constant(name: str) -> "Any":
    raise ValueError(f"invalid JSON constant {name}")


class _Context:
    # the attributes json.scanner.make_scanner reads from a JSONDecoder
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constant)
    memo: "ClassVar[dict[str, str]]" = {}  # noqa: RUF012 -- quoted (typing stays unloaded): ruff misses it


_scanner: "Any" = None


def _scan(text: str, start: int) -> "tuple[Any, int]":
    global _scanner
    if _scanner is None:
        import _json

        _scanner = _json.make_scanner(_Context())  # type: ignore[arg-type]  # any object with these attributes
    return _scanner(text, start)  # type: ignore[no-any-return]


def _quote(s: str) -> str:
    """ensure_ascii=False, except for a string UTF-8 cannot carry (a lone surrogate, which a JSON `\\udcff` escape
    can): that one is written with \\u escapes, so every document dumps() makes encodes to UTF-8."""
    if '"' not in s and "\\" not in s and s.isprintable():
        return '"' + s + '"'  # nothing to escape (printable: no control character, no lone surrogate)
    import _json

    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return _json.encode_basestring_ascii(s)
    return _json.encode_basestring(s)


def loads(text: str | bytes) -> "Any":
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError(f"expecting a JSON value at character {start}") from None
    except SystemError:
        # _json words a syntax error with json.decoder.JSONDecodeError, which it looks up in sys.modules only: with
        # `json` not imported it fails with a bare SystemError. The error path can afford `json` to word it.
        import json

        json.loads(text)  # raises JSONDecodeError (a ValueError)
        raise ValueError("invalid JSON") from None
    if text[end:].strip(_WS):
        raise ValueError(f"extra data at character {end}")
    return value


class _Other(Exception):
    """What `loads_record` leaves to `loads`: not in its subset, or not JSON at all."""


_DIGITS = frozenset("-0123456789")
_WORDS = {"t": ("true", True), "f": ("false", False), "n": ("null", None)}


def loads_record(text: str | bytes) -> "Any":
    """`loads` for a small document ocipy wrote (state.json), without loading `_json` (see the module's text)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if len(text) <= RECORD_MAX:
        try:
            value, end = _value(text, len(text) - len(text.lstrip(_WS)))
            if not text[end:].strip(_WS):
                return value
        except (_Other, IndexError, ValueError, RecursionError):
            pass
    return loads(text)


def _string(s: str, i: int) -> tuple[str, int]:
    """The string opening at s[i], when it has no escape and no control character (those go to `loads`)."""
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


def dumps(value: "Any", indent: int | None = None) -> str:
    """Compact (`,` and `:`) without indent; with it, `, ` free pretty-printing like json.dumps(indent=N)."""
    out: list[str] = []
    _write(value, out, indent, 0)
    return "".join(out)


def _write(value: "Any", out: list[str], indent: int | None, level: int) -> None:
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value != value or value in (_INF, -_INF):  # NaN or an infinity (`math` is one more import)
            raise ValueError("out of range float values are not JSON compliant")
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        _container(list(value.items()), out, indent, level, "{", "}", keyed=True)
    elif isinstance(value, list | tuple):
        _container(list(value), out, indent, level, "[", "]", keyed=False)
    else:
        raise TypeError(f"object of type {type(value).__name__} is not JSON serializable")


def _container(
    items: "list[Any]", out: list[str], indent: int | None, level: int, open_: str, close: str, keyed: bool
) -> None:
    if not items:
        out.append(open_ + close)
        return
    out.append(open_)
    inner = "" if indent is None else "\n" + " " * (indent * (level + 1))
    for i, item in enumerate(items):
        if i:
            out.append(",")
        out.append(inner)
        if keyed:
            key, item = item
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be strings")
            out.append(_quote(key))
            out.append(":" if indent is None else ": ")
        _write(item, out, indent, level + 1)
    if indent is not None:
        out.append("\n" + " " * (indent * level))
    out.append(close)
