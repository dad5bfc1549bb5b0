"""config-linux.md#configLinuxDevices, default devices, and the device allowlist."""

from __future__ import annotations

import errno

from ..framework import Ctx, case
from ._util import req, set_args, sh

D = "config-linux.md"
DEFAULTS = {
    "/dev/null": (1, 3),
    "/dev/zero": (1, 5),
    "/dev/full": (1, 7),
    "/dev/random": (1, 8),
    "/dev/urandom": (1, 9),
    "/dev/tty": (5, 0),
}


@case(
    "devices.defaults",
    D + "#configLinuxDefaultDevices",
    "MUST",
    "the runtime MUST also supply: /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty, /dev/ptmx",
)
def _defaults(t: Ctx) -> None:
    reqs = ["stat:" + p for p in DEFAULTS] + ["stat:/dev/ptmx"]
    reqs += ["open:/dev/null:w", "open:/dev/zero:r", "open:/dev/full:w", "open:/dev/random:r", "open:/dev/urandom:r"]
    f = t.probe(t.config(), *reqs)
    for p, (ma, mi) in DEFAULTS.items():
        s = req(f, "stat:" + p) or {}
        t.eq("%s is char %d:%d" % (p, ma, mi), (s.get("type"), s.get("major"), s.get("minor")), ("c", ma, mi))
    s = req(f, "stat:/dev/ptmx") or {}
    t.check(
        "/dev/ptmx is a symlink to pts/ptmx or the ptmx device",
        (s.get("type") == "l" and s.get("target") in ("pts/ptmx", "/dev/pts/ptmx"))
        or (s.get("type") == "c" and (s.get("major"), s.get("minor")) in ((5, 2), (136, 0))),
        repr(s),
    )
    for r in reqs[7:]:
        t.eq(
            "{} succeeds".format(
                r.replace("open:", "open ").replace(":w", " for writing").replace(":r", " for reading")
            ),
            req(f, r),
            0,
        )


@case(
    "devices.configured",
    D + "#configLinuxDevices",
    "MUST",
    "devices (array of objects, OPTIONAL) lists devices that MUST be available in the container.",
)
def _configured(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["devices"] = [
        {"path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 12, "gid": 34},
        {"path": "/dev/conf-loop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600, "uid": 0, "gid": 0},
        {"path": "/dev/conf-fifo", "type": "p"},
        {"path": "/outside/conf-zero", "type": "c", "major": 1, "minor": 5},
        {"path": "/dev/conf-null-rw", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
    ]
    cfg["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"})
    f = t.probe(
        cfg,
        "stat:/dev/conf-null",
        "stat:/dev/conf-loop",
        "stat:/dev/conf-fifo",
        "stat:/outside/conf-zero",
        "open:/dev/conf-null-rw:w",
    )
    s = req(f, "stat:/dev/conf-null") or {}
    t.eq("char device type and numbers", (s.get("type"), s.get("major"), s.get("minor")), ("c", 1, 3), repr(s))
    t.eq("fileMode is applied", s.get("mode"), 0o640, repr(s))
    t.eq("uid and gid are applied", (s.get("uid"), s.get("gid")), (12, 34), repr(s))
    s = req(f, "stat:/dev/conf-loop") or {}
    t.eq("block device type and numbers", (s.get("type"), s.get("major"), s.get("minor")), ("b", 7, 0), repr(s))
    t.eq("a fifo (type p)", (req(f, "stat:/dev/conf-fifo") or {}).get("type"), "p")
    s = req(f, "stat:/outside/conf-zero") or {}
    t.eq("a device outside /dev", (s.get("type"), s.get("major"), s.get("minor")), ("c", 1, 5), repr(s))
    t.eq("an allowed configured device opens for writing", req(f, "open:/dev/conf-null-rw:w"), 0)


@case(
    "devices.existing-file-mismatch",
    D + "#configLinuxDevices",
    "MUST",
    "If a file already exists at path that does not match the requested device, the runtime MUST generate an error.",
)
def _mismatch(t: Ctx) -> None:
    cfg = set_args(t.config(), sh("touch /ran"))
    cfg["linux"]["devices"] = [{"path": "/etc/passwd", "type": "c", "major": 1, "minor": 3}]
    b = t.bundle(cfg)
    _cid, r = t.create(b)
    t.check("create fails when a regular file is at the device path", r.rc != 0, str(r))
    t.check("the user program did not run", not (b / "rootfs" / "ran").exists())


@case(
    "devices.allowlist-order",
    D + "#configLinuxDeviceAllowedlist",
    "MUST",
    "The runtime MUST apply entries in the listed order.",
)
def _order(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["devices"] = [{"path": "/dev/conf-lc", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666}]
    cfg["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "rwm"},
        {"allow": False, "type": "c", "major": 10, "minor": 237, "access": "w"},
    ]
    f = t.probe(cfg, "open:/dev/conf-lc:r", "open:/dev/conf-lc:w")
    t.eq("read access allowed by the earlier entry", req(f, "open:/dev/conf-lc:r"), 0)
    t.eq("write access denied by the later entry", req(f, "open:/dev/conf-lc:w"), errno.EPERM)


@case(
    "devices.allowlist-deny",
    D + "#configLinuxDeviceAllowedlist",
    "MUST",
    "devices (array of objects, OPTIONAL) configures the device allowlist. (/dev/loop-control, c 10:237, is "
    "created but not allowed)",
)
def _deny(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["devices"] = [{"path": "/dev/conf-lc", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666}]
    f = t.probe(cfg, "open:/dev/conf-lc:r")
    t.eq("a device outside the allowlist cannot be opened", req(f, "open:/dev/conf-lc:r"), errno.EPERM)
