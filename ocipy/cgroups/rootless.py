"""Cgroups for a rootless container (docs/rootless.md): only what the caller may write.

An unprivileged caller (or uid 0 of rootless Podman's user namespace) can use a cgroup only where the host delegated
one to it (a cgroup v2 subtree chowned to the user, as systemd's `Delegate=yes` does). So, as runc does:
- each hierarchy whose cgroup cannot be made or joined by the caller is left out (`writable_part`);
- `linux.resources.devices` is ignored (runc: "not expected to work" rootless; the user namespace already denies
  mknod and the caller cannot open a host device it has no permission for);
- any other resource whose controller is left without a writable cgroup is an error naming `/linux/resources/<key>`
  (runc: "cannot set memory limit: container could not join or create cgroup");
- with nothing writable and nothing asked, the container runs without a cgroup, and pause, update, events and ps say
  why they cannot work (`ocipy.rootless.no_cgroup_message`).
"""

from __future__ import annotations

import os
from typing import Any

from . import CgroupError
from .layout import V2, Layout
from .paths import Target

R = "/linux/resources"
# which controllers serve a linux.resources key (any one of them is enough to apply the part it serves)
RESOURCE_CONTROLLERS: dict[str, tuple[str, ...]] = {
    "memory": ("memory",),
    "cpu": ("cpu", "cpuset"),
    "pids": ("pids",),
    "blockIO": ("blkio", "io"),
    "hugepageLimits": ("hugetlb",),
    "network": ("net_cls", "net_prio"),
    "rdma": ("rdma",),
    "unified": (),  # keys of the unified hierarchy: its cgroup must be writable
}
IGNORED = ("devices",)


def _nearest_existing(path: str) -> str:
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def can_use(directory: str) -> bool:
    """Can this process make `directory` (its nearest existing ancestor is writable) and move a process into it?"""
    if os.path.isdir(directory):
        return os.access(os.path.join(directory, "cgroup.procs"), os.W_OK)
    return os.access(_nearest_existing(directory), os.W_OK | os.X_OK)


def writable_part(target: Target) -> Target:
    """The hierarchies of `target` this caller can use."""
    v2 = target.v2 if target.v2 and can_use(target.v2) else None
    return Target(path=target.path, v1={k: d for k, d in target.v1.items() if can_use(d)}, v2=v2)


def unserved(layout: Layout, kept: Target, resources: dict[str, Any]) -> str | None:
    """The first resource key (config order) that no kept cgroup can serve, or None."""
    for key in resources:
        if key in IGNORED:
            continue
        if key == "unified" or key not in RESOURCE_CONTROLLERS:
            if kept.v2 is None:
                return key
            continue
        if not any(_serves(layout, kept, c) for c in RESOURCE_CONTROLLERS[key]):
            return key
    return None


def _serves(layout: Layout, kept: Target, controller: str) -> bool:
    if controller in layout.v1:  # a controller lives on one hierarchy only: v1 when v1 has it
        return controller in kept.v1
    return kept.v2 is not None and (controller in layout.v2_controllers or layout.mode == V2)


def restrict(layout: Layout, target: Target, resources: dict[str, Any]) -> tuple[Target, dict[str, Any]]:
    """The part of `target` this caller can use and the resources to apply there; CgroupError naming
    /linux/resources/<key> when a limit is left without a cgroup."""
    from .. import rootless

    kept = writable_part(target)
    key = unserved(layout, kept, resources)
    if key is not None:
        raise CgroupError(f"{R}/{key}", message(key, rootless.reason() or "--rootless true", target))
    return kept, {k: v for k, v in resources.items() if k not in IGNORED}


def message(key: str, reason: str, target: Target) -> str:
    where = next(iter(target.dirs()), "")
    return (
        f"rootless ({reason}): no cgroup this user may write for it"
        + (f" ({_nearest_existing(where)} is not writable)" if where else "")
        + "; drop the limit, or delegate a cgroup v2 subtree to the user and point /linux/cgroupsPath into it"
    )
