"""Fault injection for the crash-consistency tests: SIGKILL this process at a named step boundary.

`OCIPY_FAULT=<step>` kills the command when it reaches the step of that name (`create.cgroups`), or, as a number
`N`, at the N-th step it reaches (1-based). `OCIPY_FAULT_TRACE=<file>` appends the name of every step reached, one
per line, so a test learns a command's boundaries from one traced run and then kills it at each of them
(tests/integration/test_fault_injection.py). With neither set, `point()` is one comparison: the lifecycle verbs
call it too, so this module is stdlib (`posix`) only and does no work at import beyond reading two variables.
"""

from . import posixlite as px

_WANT = px.getenv("OCIPY_FAULT", "")
_TRACE = px.getenv("OCIPY_FAULT_TRACE", "")
_ON = bool(_WANT or _TRACE)
_reached = 0


def point(name: str) -> None:
    """A step boundary: everything before it is done, nothing after it has started."""
    if not _ON:
        return
    global _reached
    _reached += 1
    if _TRACE:
        fd = px.open(_TRACE, px.O_WRONLY | px.O_APPEND | px.O_CREAT | px.O_CLOEXEC, 0o600)
        try:
            px.write(fd, f"{name}\n".encode())
        finally:
            px.close(fd)
    if _WANT and (_WANT == name or _WANT == str(_reached)):
        from posix import kill

        kill(px.getpid(), 9)  # SIGKILL: no handler, no cleanup, no flush -- what a crash or an OOM kill does
