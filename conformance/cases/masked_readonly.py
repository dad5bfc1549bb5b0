"""config-linux.md#configLinuxMaskedPaths and #configLinuxReadonlyPaths."""

from __future__ import annotations

import errno

from ..framework import Ctx, case
from ._util import req, top_mount

L = "config-linux.md"


@case(
    "masked.paths",
    L + "#configLinuxMaskedPaths",
    "MUST",
    "maskedPaths (array of strings, OPTIONAL) will mask over the provided paths inside the container so that "
    "they cannot be read.",
)
def _masked(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["maskedPaths"] = [
        "/proc/keys",
        "/sys/firmware",
        "/etc/hostname",
        "/etc/conf-masked-dir",
        "/no/such/path",
    ]
    b = t.bundle(cfg)
    (b / "rootfs" / "etc" / "conf-masked-dir").mkdir()
    (b / "rootfs" / "etc" / "conf-masked-dir" / "secret").write_text("secret\n")
    (b / "rootfs" / "etc" / "hostname").write_text("secret\n")
    f = t.probe(cfg, "read:/proc/keys", "ls:/sys/firmware", "read:/etc/hostname", "ls:/etc/conf-masked-dir", bundle=b)

    def unreadable(r):
        return r and (r.get("len") == 0 or r.get("errno") in (errno.EACCES, errno.EPERM))

    t.check("a masked /proc file reads nothing", unreadable(req(f, "read:/proc/keys")), repr(req(f, "read:/proc/keys")))
    t.check(
        "a masked /sys dir lists nothing",
        (req(f, "ls:/sys/firmware") or {}).get("entries") == []
        or (req(f, "ls:/sys/firmware") or {}).get("errno") in (errno.EACCES, errno.EPERM),
        repr(req(f, "ls:/sys/firmware")),
    )
    t.check(
        "a masked rootfs file reads nothing",
        unreadable(req(f, "read:/etc/hostname")),
        repr(req(f, "read:/etc/hostname")),
    )
    t.check(
        "a masked rootfs dir lists nothing",
        (req(f, "ls:/etc/conf-masked-dir") or {}).get("entries") == [],
        repr(req(f, "ls:/etc/conf-masked-dir")),
    )


@case(
    "readonly.paths",
    L + "#configLinuxReadonlyPaths",
    "MUST",
    "readonlyPaths (array of strings, OPTIONAL) will set the provided paths as readonly inside the container.",
)
def _ro(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["readonlyPaths"] = ["/proc/sys", "/etc", "/root/.profile"]
    b = t.bundle(cfg)
    (b / "rootfs" / "root" / ".profile").write_text("# conformance\n")
    f = t.probe(
        cfg,
        "open:/proc/sys/kernel/hostname:w",
        "touch:/etc/conf-new",
        "touch:/tmp/conf-new",
        "open:/root/.profile:w",
        bundle=b,
    )
    t.check(
        "/proc/sys is mounted ro",
        "ro" in (top_mount(f, "/proc/sys") or {}).get("opts", ()),
        repr(top_mount(f, "/proc/sys")),
    )
    t.eq("writing under /proc/sys fails with EROFS", req(f, "open:/proc/sys/kernel/hostname:w"), errno.EROFS)
    t.eq("creating a file in a read-only rootfs dir fails with EROFS", req(f, "touch:/etc/conf-new"), errno.EROFS)
    t.eq("a read-only file cannot be opened for writing", req(f, "open:/root/.profile:w"), errno.EROFS)
    t.eq("paths outside readonlyPaths stay writable", req(f, "touch:/tmp/conf-new"), 0)
