"""The Linux namespace kinds, one table: the config's name, the /proc/PID/ns file, the CLONE_NEW* flag, where a
joining process enters it, and what it gives a container. The planner, hooks, exec, `features`, `check` and
checkpoint/restore take their names and flags from here; `differing_namespaces` is here so that exec (a Kubernetes
probe) does not import ocipy/hooks.py for it. Stdlib-free (on the lifecycle path).
"""

from __future__ import annotations

from posix import stat  # not `os` (~1 ms on every exec: ocipy/posixlite.py)

# (linux.namespaces type, /proc/PID/ns name, CLONE_NEW* flag, join rank, what it gives the container), in the order
# config-linux.md lists them. Join rank: a process entering a running container's namespaces joins user first (it
# owns the others) and mount last (the other namespace files are paths in the caller's mount namespace).
KINDS = (
    ("pid", "pid", 0x20000000, 4, "pid namespace"),
    ("network", "net", 0x40000000, 3, "network namespace"),
    ("mount", "mnt", 0x00020000, 7, "mount namespace (required)"),
    ("ipc", "ipc", 0x08000000, 1, "ipc namespace"),
    ("uts", "uts", 0x04000000, 2, "uts namespace (hostname)"),
    ("user", "user", 0x10000000, 0, "user namespace (rootless containers, uid mappings, idmapped mounts)"),
    ("cgroup", "cgroup", 0x02000000, 5, "cgroup namespace: the container sees its own cgroup as the root"),
    ("time", "time", 0x00000080, 6, "time namespace (linux.timeOffsets)"),
)

CLONE_FLAGS = {kind: flag for kind, _proc, flag, _rank, _what in KINDS}  # config type -> CLONE_NEW*
PROC_NAMES = {kind: proc for kind, proc, _flag, _rank, _what in KINDS}  # config type -> /proc/PID/ns/<name>
DESCRIPTIONS = {proc: what for _kind, proc, _flag, _rank, what in KINDS}  # /proc/PID/ns name -> what it gives
# (/proc/PID/ns name, CLONE_NEW* flag) in the order a joining process enters them
JOIN_ORDER = tuple((proc, flag) for _kind, proc, flag, _rank, _what in sorted(KINDS, key=lambda k: k[3]))


def differing_namespaces(pid: int) -> list[str]:
    """The namespace kinds (JOIN_ORDER names) of `pid` that are not ours, in join order; a kind this kernel lacks
    (no /proc/PID/ns file) is left out."""
    out = []
    for name, _flag in JOIN_ORDER:
        try:
            if stat(f"/proc/{pid}/ns/{name}").st_ino == stat(f"/proc/self/ns/{name}").st_ino:
                continue
        except FileNotFoundError:
            continue
        out.append(name)
    return out
