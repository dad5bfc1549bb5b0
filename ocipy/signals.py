"""Signal name/number parsing for `kill`: `15`, `TERM`, `SIGTERM`, `sigkill`, `usr1`, `RTMIN+3`. Stdlib only."""

from __future__ import annotations

from .errors import OcipyError

# Linux numbers; fixed by the kernel ABI, so a table is cheaper than importing `signal` (which pulls in enum)
_NAMES = {
    "HUP": 1,
    "INT": 2,
    "QUIT": 3,
    "ILL": 4,
    "TRAP": 5,
    "ABRT": 6,
    "IOT": 6,
    "BUS": 7,
    "FPE": 8,
    "KILL": 9,
    "USR1": 10,
    "SEGV": 11,
    "USR2": 12,
    "PIPE": 13,
    "ALRM": 14,
    "TERM": 15,
    "STKFLT": 16,
    "CHLD": 17,
    "CLD": 17,
    "CONT": 18,
    "STOP": 19,
    "TSTP": 20,
    "TTIN": 21,
    "TTOU": 22,
    "URG": 23,
    "XCPU": 24,
    "XFSZ": 25,
    "VTALRM": 26,
    "PROF": 27,
    "WINCH": 28,
    "IO": 29,
    "POLL": 29,
    "PWR": 30,
    "SYS": 31,
}
SIGRTMIN = 34  # glibc reserves 32 and 33; this is what `kill -l` and runc's tables call RTMIN
SIGRTMAX = 64
SIGKILL = 9
SIGTERM = 15


def parse_signal(raw: str) -> int:
    """Turn a signal number or name into its number; `unknown signal "X"` otherwise."""
    text = raw.strip()
    if text.isascii() and text.isdigit():
        num = int(text)
        if 0 <= num <= SIGRTMAX:  # 0 checks that the container's process exists, as runc and kill(1) allow
            return num
        raise OcipyError(f"unknown signal {_quote(raw)}")
    name = text.upper().removeprefix("SIG")
    if name in _NAMES:
        return _NAMES[name]
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
