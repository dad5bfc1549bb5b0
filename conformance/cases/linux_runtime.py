"""runtime-linux.md: file descriptors and /dev symlinks."""

from __future__ import annotations

import json
import os

from ..framework import Ctx, case
from ._util import req, set_args

R = "runtime-linux.md"


@case(
    "linuxrt.dev-symlinks",
    R + "#runtimeLinuxDevSymbolicLinks",
    "MUST",
    "runtimes MUST create the following symlinks if the source file exists after processing mounts",
)
def _links(t: Ctx) -> None:
    links = {
        "/dev/fd": "/proc/self/fd",
        "/dev/stdin": "/proc/self/fd/0",
        "/dev/stdout": "/proc/self/fd/1",
        "/dev/stderr": "/proc/self/fd/2",
    }
    f = t.probe(t.config(), *("stat:" + k for k in links))
    for k, v in links.items():
        s = req(f, "stat:" + k) or {}
        t.eq(f"{k} -> {v}", (s.get("type"), s.get("target")), ("l", v), repr(s))


@case(
    "linuxrt.fds",
    R + "#runtimeLinuxFileDescriptors",
    "MUST",
    "By default, only the stdin, stdout and stderr file descriptors are kept open for the application by the runtime.",
)
def _fds(t: Ctx) -> None:
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    try:
        b = t.bundle(set_args(t.config(), ["/probe"]))
        cid, r = t.create(b, pass_fds=(leak_r,))
        t.start(cid)
        t.wait_status(cid, "stopped")
    finally:
        os.close(leak_r)
        os.close(leak_w)
    out = t.output(cid)
    facts = json.loads(out.splitlines()[0]) if out.startswith("{") else {}
    fds = facts.get("fds")
    t.check("the probe ran", fds is not None, f"create: {r} output: {out[:200]!r}")
    t.eq(
        "only fds 0, 1, 2 are open (an fd the caller leaked into the runtime is not passed on)",
        sorted(int(x) for x in (fds or {})),
        [0, 1, 2],
        repr(fds),
    )
