"""linux.netDevices (runtime-spec 1.3): move existing host network devices into the container's network namespace.

Moving a device drops its addresses, so the permanent, global ones are read first and added back inside; the
device is then set up, as config-linux.md requires. The requests go over a raw rtnetlink socket (ocipy/netlink.py):
pyroute2 cost ~200 ms to import, most of a create with netDevices (docs/netdevices.md). Only `create` of a config
with netDevices imports this module. Nothing is moved back on delete: the kernel returns physical devices to the
initial namespace (and destroys virtual ones) when the container's namespace goes away, which the spec leaves to it.
"""

from __future__ import annotations

import os

from ocipy.errors import OcipyError, os_reason, pointer
from ocipy.netlink import Route

IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0


def _pointer(name: str) -> str:
    return pointer("linux", "netDevices", name)


def _reason(exc: OSError) -> str:
    code = exc.errno
    return os_reason(code) if isinstance(code, int) and code > 0 else str(exc).lower()


def move(devices: dict[str, str | None], pid: int) -> None:
    """Move each host device (key) into the network namespace of `pid`, renamed to its value (or kept)."""
    ns_path = f"/proc/{pid}/ns/net"
    if os.stat(ns_path).st_ino == os.stat("/proc/self/ns/net").st_ino:
        raise OcipyError("/linux/netDevices: the container shares the host's network namespace: nowhere to move to")
    with Route() as host, Route(ns_path) as inside:
        for host_name, new_name in devices.items():
            _move_one(host, inside, host_name, new_name or host_name, pid)


def _move_one(host: Route, inside: Route, host_name: str, target: str, pid: int) -> None:
    ptr = _pointer(host_name)
    index = host.link_index(host_name)
    if index is None:
        raise OcipyError(f"{ptr}: no network device {host_name!r} on the host")
    before = inside.link_names()
    if "%d" not in target and target in before:
        raise OcipyError(f"{ptr}/name: a device named {target!r} already exists in the container")
    keep = [
        (family, prefixlen, address)
        for family, prefixlen, flags, scope, address in host.addresses(index)
        if scope == RT_SCOPE_UNIVERSE and flags & IFA_F_PERMANENT
    ]
    try:
        host.link_move(index, pid, target)  # moved and renamed in one request
    except OSError as exc:
        raise OcipyError(f"{ptr}: move into the container: {_reason(exc)}") from None
    # with a `%d` template the kernel chose the name: the one that was not there before
    name = target if "%d" not in target else next(iter(inside.link_names() - before), target)
    moved = inside.link_index(name)
    if moved is None:
        raise OcipyError(f"{ptr}: {name!r} did not arrive in the container")
    try:
        for family, prefixlen, address in keep:
            inside.address_add(moved, family, prefixlen, address)
        inside.link_up(moved)
    except OSError as exc:
        raise OcipyError(f"{ptr}: configure {name!r} in the container: {_reason(exc)}") from None
