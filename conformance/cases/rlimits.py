"""config.md#configPOSIXProcess: rlimits."""

from __future__ import annotations

import resource

from ..framework import Ctx, case
from ._util import set_args, sh

A = "config.md#configPOSIXProcess"


@case(
    "rlimits.applied",
    A,
    "MUST",
    "rlim.rlim_cur MUST match the configured value. rlim.rlim_max MUST match the configured value.",
)
def _applied(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 300, "hard": 900},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600},
        {"type": "RLIMIT_MSGQUEUE", "soft": 1000, "hard": 2000},
    ]
    f = t.probe(cfg)
    rl = f.get("rlimits", {})
    for e in cfg["process"]["rlimits"]:
        t.eq("{} soft".format(e["type"]), (rl.get(e["type"]) or [None])[0], e["soft"])
        t.eq("{} hard".format(e["type"]), (rl.get(e["type"]) or [None, None])[1], e["hard"])


@case(
    "rlimits.duplicate",
    A,
    "MUST",
    "If rlimits contains duplicated entries with same type, the runtime MUST generate an error.",
)
def _dup(t: Ctx) -> None:
    cfg = set_args(t.config(), sh("exit 0"))
    cfg["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
        {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200},
    ]
    cid, r = t.create(t.bundle(cfg))
    rs = t.start(cid) if r.rc == 0 else None
    t.check(
        "create (or start) fails with a duplicated rlimit type",
        r.rc != 0 or (rs and rs.rc != 0),
        f"create: {r} start: {rs}",
    )


@case(
    "rlimits.unknown-type",
    A,
    "MUST",
    "The runtime MUST generate an error for any values which cannot be mapped to a relevant kernel interface.",
)
def _unknown(t: Ctx) -> None:
    cfg = set_args(t.config(), sh("exit 0"))
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOT_A_LIMIT", "soft": 1, "hard": 1}]
    cid, r = t.create(t.bundle(cfg))
    rs = t.start(cid) if r.rc == 0 else None
    t.check(
        "create (or start) fails with an unknown rlimit type",
        r.rc != 0 or (rs and rs.rc != 0),
        f"create: {r} start: {rs}",
    )


@case(
    "rlimits.cannot-raise-hard",
    "runtime.md#runtimeCreate",
    "MUST",
    "If the runtime cannot apply a property as specified in the configuration, it MUST generate an error",
)
def _raise(t: Ctx) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        t.skip("host: RLIMIT_NOFILE hard limit is unlimited, nothing to exceed")
    cfg = set_args(t.config(), sh("touch /ran"))
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard * 4, "hard": hard * 4}]
    b = t.bundle(cfg)
    cid, r = t.create(b)
    rs = t.start(cid) if r.rc == 0 else None
    t.check(
        "raising RLIMIT_NOFILE above the caller's hard limit is an error",
        r.rc != 0 or (rs and rs.rc != 0),
        f"create: {r} start: {rs}",
    )
    t.check("the user program did not run with a lower limit", not (b / "rootfs" / "ran").exists())
