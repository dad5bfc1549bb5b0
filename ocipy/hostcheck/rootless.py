"""`ocipy check`'s rootless probes: subordinate ids, the setuid map helpers, the runtime dir, this process's mode
and a delegated cgroup."""

from __future__ import annotations

import os
import shutil
import stat
from typing import Any

from . import item, read


def rootless() -> dict[str, Any]:
    """What a rootless user (not root) needs: subordinate ids, the setuid map helpers, a runtime dir."""
    name, uid = _user()
    out: dict[str, Any] = {}
    for kind, idfile in (("subuid", "/etc/subuid"), ("subgid", "/etc/subgid")):
        n = _subids(idfile, name, uid)
        out[kind] = item(
            n >= 65536,
            f"{idfile}: {n} ids for {name}",
            f"{name} can map {n} ids in a rootless container"
            if n >= 65536
            else f"{name} can map only its own id (Podman needs 65536: usermod --add-subuids/--add-subgids)",
        )
    for helper in ("newuidmap", "newgidmap"):
        path, detail = _helper(helper)
        out[helper] = item(
            path is not None and "neither" not in detail,
            detail,
            f"{helper} writes multi-id maps for rootless containers"
            if path
            else f"no {helper} (Debian: uidmap): rootless containers get one id",
        )
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    xdg_ok = bool(xdg) and os.path.isdir(xdg)
    out["xdg_runtime_dir"] = item(
        xdg_ok or uid == 0,
        f"XDG_RUNTIME_DIR={xdg or '(unset)'}" + ("" if not xdg or xdg_ok else " (missing)"),
        f"rootless state goes to {xdg}/ocipy"
        if xdg_ok
        else "not needed by root"
        if uid == 0
        else "rootless state falls back to /run/ocipy, which a user cannot write: set XDG_RUNTIME_DIR (pam_systemd)",
    )
    from ocipy import rootless as rl

    why = rl.reason()
    out["mode"] = item(
        True,
        f"this process: {'rootless (' + why + ')' if why else 'not rootless (root in the initial user namespace)'}",
        "rootless: state in $XDG_RUNTIME_DIR/ocipy, cgroups only where writable, devices bound (docs/rootless.md)"
        if why
        else "root: /run/ocipy and every cgroup",
    )
    own = _own_cgroup_v2()
    out["cgroup"] = item(
        own is not None and os.access(own, os.W_OK),
        f"own cgroup v2: {own or '(none)'}" + (" (writable)" if own and os.access(own, os.W_OK) else ""),
        "a delegated cgroup: rootless containers can get limits there (point /linux/cgroupsPath into it)"
        if own and os.access(own, os.W_OK)
        else "no writable cgroup: rootless containers run without one (no limits, pause, update, events)",
    )
    return out


def _user() -> tuple[str, int]:
    """The user rootless containers would run as: the sudo caller when run through sudo, else this user."""
    import pwd

    sudo_uid = os.environ.get("SUDO_UID", "")
    uid = int(sudo_uid) if os.geteuid() == 0 and sudo_uid.isdigit() else os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name, uid
    except KeyError:
        return str(uid), uid


def _subids(path: str, name: str, uid: int) -> int:
    """How many subordinate ids /etc/subuid or /etc/subgid gives the user (by name or number)."""
    total = 0
    for line in (read(path) or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (name, str(uid)) and parts[2].isdigit():
            total += int(parts[2])
    return total


def _helper(name: str) -> tuple[str | None, str]:
    path = shutil.which(name, path=os.environ.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin")
    if path is None:
        return None, "not found"
    st = os.stat(path)
    if st.st_mode & stat.S_ISUID and st.st_uid == 0:
        return path, f"{path} (setuid root)"
    try:
        if os.getxattr(path, "security.capability"):
            return path, f"{path} (file capabilities)"
    except OSError:
        pass
    return path, f"{path} (neither setuid nor file capabilities: only a single id can be mapped)"


def _own_cgroup_v2() -> str | None:
    """This process's cgroup in the unified hierarchy, as a path under its mount point (None without one)."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((line.rstrip("\n").split(":", 2)[2] for line in f if line.startswith("0::")), None)
        with open("/proc/self/mountinfo") as f:
            mnt = next((line.split()[4] for line in f if " - cgroup2 " in line), None)
    except OSError:
        return None
    if rel is None or mnt is None:
        return None
    return os.path.join(mnt, rel.lstrip("/"))
