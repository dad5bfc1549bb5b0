"""Fixtures for the rootless tests: one throw-away unprivileged user per session (rootlessctl.RootlessUser: its own
name, subordinate ids, XDG_RUNTIME_DIR, Podman configuration and ocipy launcher), a busybox rootfs it owns, bundles
made by `ocipy spec --rootless` run as that user, and the busybox image in its Podman store. Everything is removed
afterwards (store, processes by uid, mounts, ids, the user), and a test fails if the user or its processes remain.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rootlessctl import IMAGE, RootlessUser, pids_of_uid

MAKE_ROOTFS = Path(__file__).resolve().parents[2] / "scripts" / "make-rootfs"
CACHE = Path(os.environ.get("OCIPY_CACHE", "/var/cache/ocipy"))
RUNC = CACHE / "bin" / "runc-1.5.1"


def _need_root_and(*binaries: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("the rootless tests create their own user: run them as root")
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/setup and scripts/engines install them)")


@pytest.fixture(scope="session")
def user() -> Iterator[RootlessUser]:
    _need_root_and("useradd", "userdel", "usermod", "newuidmap", "newgidmap")
    u = RootlessUser.create()
    try:
        yield u
    finally:
        u.destroy()
        assert not u.exists(), f"user {u.name} still exists"
        assert not pids_of_uid(u.uid) or all(_zombie(p) for p in pids_of_uid(u.uid))
        assert not any(u.subids()), f"subordinate ids of {u.name} remain"
        assert not u.work.exists()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture(scope="session")
def rootfs(user: RootlessUser) -> Path:
    """A busybox rootfs owned by the user (it is root in its containers: uid 0 maps to it)."""
    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed (/bin/busybox)")
    dest = user.files("images") / "busybox"
    subprocess.run([str(MAKE_ROOTFS), str(dest)], check=True, capture_output=True)
    user.chown_tree(dest)
    return dest


Bundle = Callable[..., Path]


@pytest.fixture
def bundle(user: RootlessUser, rootfs: Path) -> Bundle:
    """bundle(args, edit=None): a bundle dir the user owns whose config.json is `ocipy spec --rootless` (run as the
    user), with process.args and `edit(config)` applied."""

    def make(args: list[str], edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
        d = user.files("bundles", uuid.uuid4().hex[:10])
        user.run([user.runtime, "spec", "--rootless"], cwd=d, check=True)
        cfg = json.loads((d / "config.json").read_text())
        cfg["root"]["path"] = str(rootfs)
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = args
        if edit is not None:
            edit(cfg)
        (d / "config.json").write_text(json.dumps(cfg, indent=1))
        return d

    return make


@pytest.fixture
def cid() -> str:
    return "rl-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def podman_user(user: RootlessUser) -> RootlessUser:
    """The user with the busybox image imported into its (rootless, overlay) Podman store, and /dev/net/tun open to
    it (slirp4netns)."""
    _need_root_and("podman", "conmon", "slirp4netns")
    try:
        user.grant_tun()
    except OSError as exc:  # no POSIX ACLs on /dev: the slirp4netns tests skip (tun_granted stays False)
        print(f"rootless: cannot open /dev/net/tun to {user.name}: {exc}")
    if not user.podman_ready:
        user.import_busybox()
        p = user.podman("image", "exists", IMAGE)
        assert p.returncode == 0, p.stderr
    return user


@pytest.fixture(scope="session")
def runc() -> str:
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"runc 1.5.1 is not built ({RUNC}; scripts/refs builds it)")
    return str(RUNC)
