"""config.md#configRoot and #configMounts, config-linux.md default filesystems and rootfs propagation."""

from __future__ import annotations

import errno

from ..framework import Ctx, case
from ._util import mounts, req, top_mount

C = "config.md"


@case(
    "root.readonly",
    C + "#configRoot",
    "MUST",
    "readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only inside the container",
)
def _ro(t: Ctx) -> None:
    cfg = t.config()
    cfg["root"]["readonly"] = True
    f = t.probe(cfg, "touch:/newfile")
    m = top_mount(f, "/") or {}
    t.check("/ is mounted ro", "ro" in m.get("opts", ()), repr(m))
    t.eq("creating a file in / fails with EROFS", req(f, "touch:/newfile"), errno.EROFS)


@case("root.readwrite", C + "#configRoot", "MUST", "readonly ... defaults to false")
def _rw(t: Ctx) -> None:
    cfg = t.config()
    del cfg["root"]["readonly"]
    f = t.probe(cfg, "touch:/newfile")
    t.eq("creating a file in / works", req(f, "touch:/newfile"), 0)


@case(
    "root.absolute-path",
    C + "#configRoot",
    "MUST",
    "path (string, REQUIRED) Specifies the path to the root filesystem for the container ... absolute path",
)
def _abs(t: Ctx) -> None:
    cfg = t.config()
    b = t.bundle(cfg)
    cfg["root"]["path"] = str(b / "rootfs")
    f = t.probe(cfg, "stat:/probe")
    t.eq("the probe is found in the absolute root.path", (req(f, "stat:/probe") or {}).get("type"), "f")


@case("mounts.order", C + "#configMounts", "MUST", "The runtime MUST mount entries in the listed order.")
def _order(t: Ctx) -> None:
    cfg = t.config()
    cfg["mounts"] += [
        {"destination": "/m", "type": "tmpfs", "source": "first", "options": ["size=1m"]},
        {"destination": "/m", "type": "tmpfs", "source": "second", "options": ["size=2m"]},
        {"destination": "/m/inner", "type": "tmpfs", "source": "third", "options": ["size=3m"]},
    ]
    f = t.probe(cfg)
    ms = [m for m in mounts(f) if m["point"] in ("/m", "/m/inner")]
    t.eq(
        "the mounts at /m and /m/inner are in the listed order", [m["source"] for m in ms], ["first", "second", "third"]
    )
    byid = {m["id"]: m for m in ms}
    inner = ms[-1] if ms else {}
    t.check(
        "/m/inner is mounted on the second /m", byid.get(inner.get("parent"), {}).get("source") == "second", repr(ms)
    )


@case(
    "mounts.relative-destination",
    C + "#configMounts",
    "MUST",
    'it MAY be a relative path, in which case it MUST be interpreted as relative to "/"',
)
def _rel(t: Ctx) -> None:
    cfg = t.config()
    cfg["mounts"].append({"destination": "reldest", "type": "tmpfs", "source": "rel", "options": ["size=1m"]})
    f = t.probe(cfg)
    m = top_mount(f, "/reldest") or {}
    t.eq("destination 'reldest' is mounted at /reldest", m.get("source"), "rel", repr([x["point"] for x in mounts(f)]))


OPTION_CASES = [
    # option, (flag expected in per-mount options, or in super options)
    ("ro", "ro", "opts"),
    ("rw", "rw", "opts"),
    ("nosuid", "nosuid", "opts"),
    ("nodev", "nodev", "opts"),
    ("noexec", "noexec", "opts"),
    ("noatime", "noatime", "opts"),
    ("strictatime", None, "opts"),
    ("relatime", "relatime", "opts"),
    ("nodiratime", "nodiratime", "opts"),
    ("sync", "sync", "super"),
    ("dirsync", "dirsync", "super"),
    ("nosymfollow", "nosymfollow", "opts"),
]


@case(
    "mounts.options",
    C + "#configLinuxMountOptions",
    "MUST",
    "Runtimes MUST/SHOULD/MAY implement the following option strings for Linux",
)
def _opts(t: Ctx) -> None:
    cfg = t.config()
    for opt, _, _ in OPTION_CASES:
        cfg["mounts"].append(
            {"destination": "/o/" + opt, "type": "tmpfs", "source": "o-" + opt, "options": [opt, "size=1m"]}
        )
    f = t.probe(cfg)
    for opt, flag, where in OPTION_CASES:
        m = top_mount(f, "/o/" + opt) or {}
        if flag is None:  # strictatime: neither relatime nor noatime
            ok = m and not ({"relatime", "noatime"} & m["opts"])
            t.check(f"option {opt}: neither relatime nor noatime", ok, repr(m.get("opts")))
        else:
            t.check(
                f"option {opt}: {flag} in mountinfo", flag in m.get(where, ()), f"{where} options: {m.get(where)!r}"
            )


@case(
    "mounts.option-defaults",
    C + "#configLinuxMountOptions",
    "MUST",
    "defaults | MUST; exec, suid, dev, atime, async | MUST (the opposite flags are cleared)",
)
def _defaults(t: Ctx) -> None:
    cfg = t.config()
    cfg["mounts"].append(
        {
            "destination": "/d",
            "type": "tmpfs",
            "source": "d",
            "options": ["nosuid", "noexec", "nodev", "suid", "exec", "dev", "defaults", "async", "size=1m"],
        }
    )
    f = t.probe(cfg)
    m = top_mount(f, "/d") or {}
    t.check(
        "later suid/exec/dev clear earlier nosuid/noexec/nodev",
        m and not ({"nosuid", "noexec", "nodev"} & m["opts"]),
        repr(m.get("opts")),
    )


@case(
    "mounts.filesystem-options",
    C + "#configLinuxMountOptions",
    "SHOULD",
    "Runtimes SHOULD treat unknown options as filesystem-specific ones",
)
def _fsopts(t: Ctx) -> None:
    cfg = t.config()
    cfg["mounts"].append({"destination": "/fs", "type": "tmpfs", "source": "fs", "options": ["size=2m", "mode=711"]})
    f = t.probe(cfg, "stat:/fs")
    m = top_mount(f, "/fs") or {}
    t.check("size=2m reaches tmpfs", "size=2048k" in m.get("super", ()), repr(m.get("super")))
    t.eq("mode=711 reaches tmpfs", (req(f, "stat:/fs") or {}).get("mode"), 0o711)


@case("mounts.bind", C + "#configLinuxMountOptions", "MUST", "bind | MUST | Bind mount")
def _bind(t: Ctx) -> None:
    src = t.dir / "bindsrc"
    src.mkdir()
    (src / "hello").write_text("from-host\n")
    (t.dir / "bindfile").write_text("single-file\n")
    cfg = t.config()
    cfg["mounts"] += [
        {"destination": "/b", "type": "bind", "source": str(src), "options": ["bind"]},
        {"destination": "/bro", "type": "bind", "source": str(src), "options": ["bind", "ro"]},
        {"destination": "/etc/bound", "type": "none", "source": str(t.dir / "bindfile"), "options": ["bind"]},
    ]
    f = t.probe(cfg, "read:/b/hello", "touch:/bro/x", "read:/etc/bound")
    t.eq("a bind-mounted host dir shows its files", (req(f, "read:/b/hello") or {}).get("data"), "from-host\n")
    t.eq("a read-only bind mount refuses writes", req(f, "touch:/bro/x"), errno.EROFS)
    t.check("the read-only bind is ro in mountinfo", "ro" in (top_mount(f, "/bro") or {}).get("opts", ()))
    t.eq("a bind-mounted host file shows its content", (req(f, "read:/etc/bound") or {}).get("data"), "single-file\n")


@case("mounts.rbind", C + "#configLinuxMountOptions", "MUST", "rbind | MUST | Recursive bind mount")
def _rbind(t: Ctx) -> None:
    cfg = t.config()
    cfg["mounts"] += [
        {"destination": "/cg-r", "type": "bind", "source": "/sys/fs/cgroup", "options": ["rbind", "ro"]},
        {"destination": "/cg-nr", "type": "bind", "source": "/sys/fs/cgroup", "options": ["bind", "ro"]},
    ]
    f = t.probe(cfg)
    subs_r = [m for m in mounts(f) if m["point"].startswith("/cg-r/")]
    subs_nr = [m for m in mounts(f) if m["point"].startswith("/cg-nr/")]
    t.check("rbind carries the submounts", len(subs_r) > 0, "no mount under /cg-r")
    t.check("bind does not carry the submounts", len(subs_nr) == 0, repr([m["point"] for m in subs_nr]))


@case(
    "mounts.propagation",
    C + "#configLinuxMountOptions",
    "MUST",
    "private/rprivate/shared/rshared/slave/rslave/unbindable/runbindable | MUST | Bind mount propagation",
)
def _prop(t: Ctx) -> None:
    cfg = t.config()
    cfg["mounts"] += [
        {"destination": "/p-shared", "type": "tmpfs", "source": "ps", "options": ["rshared", "size=1m"]},
        {"destination": "/p-private", "type": "tmpfs", "source": "pp", "options": ["rprivate", "size=1m"]},
        {"destination": "/p-unbindable", "type": "tmpfs", "source": "pu", "options": ["unbindable", "size=1m"]},
    ]
    f = t.probe(cfg)

    def opt(p):
        return " ".join((top_mount(f, p) or {}).get("optional", ["<missing>"]))

    t.check("rshared: the mount is shared", "shared:" in opt("/p-shared"), opt("/p-shared"))
    t.check(
        "rprivate: the mount is private",
        "shared:" not in opt("/p-private") and "master:" not in opt("/p-private") and top_mount(f, "/p-private"),
        opt("/p-private"),
    )
    t.check("unbindable: the mount is unbindable", "unbindable" in opt("/p-unbindable"), opt("/p-unbindable"))


@case(
    "mounts.default-filesystems",
    "config-linux.md#configLinuxDefaultFilesystems",
    "SHOULD",
    "The following filesystems SHOULD be made available in each container's filesystem: /proc, /sys, /dev/pts, "
    "/dev/shm",
)
def _defaultfs(t: Ctx) -> None:
    f = t.probe(t.config())
    for point, typ in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs")):
        t.eq(f"{point} is {typ}", (top_mount(f, point) or {}).get("fstype"), typ)


@case(
    "mounts.rootfs-propagation",
    "config-linux.md#configLinuxRootfsMountPropagation",
    "MUST",
    "rootfsPropagation (string, OPTIONAL) sets the rootfs's mount propagation. Its value is either shared, "
    "slave, private or unbindable.",
)
def _rootprop(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["rootfsPropagation"] = "unbindable"
    f = t.probe(cfg, name="the container ran the probe (unbindable)")
    t.check(
        "rootfsPropagation unbindable: / is unbindable",
        "unbindable" in (top_mount(f, "/") or {}).get("optional", ()),
        repr(top_mount(f, "/")),
    )
    cfg = t.config()
    cfg["linux"]["rootfsPropagation"] = "shared"
    f = t.probe(cfg, name="the container ran the probe (shared)")
    t.check(
        "rootfsPropagation shared: / is shared",
        any(o.startswith("shared:") for o in (top_mount(f, "/") or {}).get("optional", ())),
        repr(top_mount(f, "/")),
    )
