"""Signal name/number parsing for `kill`: `15`, `TERM`, `SIGTERM`, `sigkill`, `usr1`, `RTMIN+3`. Stdlib only."""

import _signal  # type: ignore[import-not-found]

from .errors import OcipyError

SIGRTMIN = int(_signal.SIGRTMIN)  # libc's: glibc reserves 32 and 33, so 34 is what `kill -l` and runc call RTMIN
SIGRTMAX = int(_signal.SIGRTMAX)
SIGKILL = int(_signal.SIGKILL)
SIGTERM = int(_signal.SIGTERM)


def parse_signal(raw: str) -> int:
    """Turn a signal number or name into its number; `unknown signal "X"` otherwise."""
    text = raw.strip()
    if text.isascii() and text.isdigit():
        num = int(text)
        if 0 <= num <= SIGRTMAX:  # 0 checks that the container's process exists, as runc and kill(1) allow
            return num
        raise OcipyError(f"unknown signal {_quote(raw)}")
    name = text.upper().removeprefix("SIG")
    # The numbers of the machine this interpreter runs on, from the interpreter's own built-in `_signal` module (already
    # loaded at start-up: no import cost, unlike `signal`, which pulls in enum), looked up by name rather than copied
    # into a table (~20 us at import). Aliases (IOT, CLD, POLL) included; SIG_DFL, SIG_BLOCK, ... are not signals.
    number = getattr(_signal, "SIG" + name, None) if name.isascii() and name.isalnum() else None
    if isinstance(number, int):
        return int(number)
    for base_name, base, sign in (("RTMIN", SIGRTMIN, 1), ("RTMAX", SIGRTMAX, -1)):
        if name == base_name:
            return base
        if name.startswith(base_name) and len(name) > len(base_name) + 1:
            op, off = name[len(base_name)], name[len(base_name) + 1 :]
            if off.isascii() and off.isdigit() and op == ("+" if sign > 0 else "-"):
                num = base + sign * int(off)
                if SIGRTMIN <= num <= SIGRTMAX:
                    return num
    raise OcipyError(f"unknown signal {_quote(raw)}")


def _quote(raw: str) -> str:
    # Go's %q, close enough for a one-line message: escapes quotes, backslashes and control characters
    out = []
    for ch in raw:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ascii(ch)[1:-1] if ord(ch) > 0x7F else f"\\x{ord(ch):02x}")
    return '"' + "".join(out) + '"'
