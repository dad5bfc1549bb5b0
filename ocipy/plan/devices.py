"""linux.devices: the spec's default devices, the config's (mknod, or a bind of the host's node in a user
namespace), the /dev symlinks."""

from __future__ import annotations

import posix as os  # not `os` (~1.2 ms of every create: ocipy/posixlite.py); the same functions
import stat

from ocipy.plan.base import PlanError, Section, _clean, opt, pointer
from ocipy.planfmt import OP_BIND_DEV, OP_MKNOD, OP_SYMLINK

TYPE_CHECKING = False
if TYPE_CHECKING:  # `collections.abc` imports the `collections` package (~1.3 ms per create): annotations only
    from collections.abc import Sequence

    from ocipy.spec import views

# (path, major, minor): the spec's default devices, all char devices with mode 0666
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)
DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


class DevicesSection(Section):
    def devices(self) -> None:
        devs = list(opt(self.linux).devices or ())
        if self.dev_bind:
            # /dev is the host's (or someone's) directory: creating nodes there would change it (runc skips too)
            if devs:
                self.warn("/linux/devices", "not created: /dev is a bind mount")
            return
        asked = {_clean(opt(d).path or "/") for d in devs}
        for path, major, minor in DEFAULT_DEVICES:
            if path in asked or path in self.mount_dests:
                continue
            self.device("/linux/devices", path, stat.S_IFCHR | 0o666, major, minor, -1, -1, f"default device {path}")
        self.config_devices(devs)
        self.dev_links()

    def config_devices(self, devs: Sequence[views.Device]) -> None:
        for i, d in enumerate(devs):
            ptr = pointer("linux", "devices", i)
            path = opt(d).path
            if not path or not path.startswith("/"):
                raise PlanError(ptr + "/path", f"{path!r} must be an absolute path")
            kind = opt(d).type
            if kind not in DEVICE_TYPES:
                raise PlanError(ptr + "/type", f"unknown device type {kind!r} (c, b, u or p)")
            major, minor = opt(d).major, opt(d).minor
            if kind != "p" and (major is None or minor is None):
                raise PlanError(ptr, "major and minor are required unless the type is p")
            mode = opt(d).file_mode
            perm = 0o666 if mode is None else int(mode) & 0o7777
            uid, gid = opt(d).uid, opt(d).gid
            self.device(
                ptr,
                _clean(path),
                DEVICE_TYPES[kind] | perm,
                int(major or 0),
                int(minor or 0),
                -1 if uid is None else int(uid),
                -1 if gid is None else int(gid),
                f"device {path}",
            )

    def dev_links(self) -> None:
        self.op(OP_SYMLINK, "", s=("pts/ptmx", "/dev/ptmx"), what="/dev/ptmx -> pts/ptmx")
        links = [("/proc/self/fd", "/dev/fd")]
        links += [(f"/proc/self/fd/{n}", f"/dev/{name}") for n, name in enumerate(("stdin", "stdout", "stderr"))]
        if self.host.has_kcore:
            links.append(("/proc/kcore", "/dev/core"))
        for target, link in links:
            self.op(OP_SYMLINK, "", s=(target, link), what=f"{link} -> {target}")

    def device(self, ptr: str, path: str, mode: int, major: int, minor: int, uid: int, gid: int, what: str) -> None:
        if self.unprivileged_userns and not stat.S_ISFIFO(mode):
            # mknod of devices is denied in a user namespace: bind the host's node (checked to be a device)
            self.op(OP_BIND_DEV, ptr, s=(path, path), what=what + " (bind from the host)")
            return
        self.op(OP_MKNOD, ptr, s=(None, path), a=(mode, os.makedev(major, minor), uid, gid, 0), what=what)
