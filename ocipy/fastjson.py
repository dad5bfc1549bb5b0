"""JSON for the lifecycle path without `import json`, which pulls in `re` and `enum`: ~6 ms of a ~15 ms command.

`loads`: the C accelerators behind the json module (`_json`), used directly (its scanner reads, its string encoder
writes), loaded when first needed. For any document: config.json, CRIU's files, the seccomp cache. The records ocipy
writes itself (state.json, read by every lifecycle verb) are read by ocipy/recordjson.py without `_json`.

`dumps` writes plain strings itself too, and loads `_json` only for one that needs escaping. The values are ocipy's
own (state.json, `state`, `list`, log lines): dicts, lists, str, int, float, bool and None. A malformed document
raises ValueError (json.JSONDecodeError is a ValueError, and is what `_json` raises).
"""

TYPE_CHECKING = False  # `typing` costs ~3 ms (it imports re); only mypy needs it here
if TYPE_CHECKING:
    from typing import Any, ClassVar

_WS = " \t\n\r"
_INF = float("inf")


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
