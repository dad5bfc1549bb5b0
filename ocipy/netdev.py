"""linux.netDevices (runtime-spec 1.3): move existing host network devices into the container's network namespace.

Moving a device drops its addresses, so the permanent, global ones are read first and added back inside; the
device is then set up, as config-linux.md requires. pyroute2 costs ~190 ms to import: only `create` of a config with
netDevices imports this module. Nothing is moved back on delete: the kernel returns physical devices to the initial
namespace (and destroys virtual ones) when the container's namespace goes away, which the spec leaves to it.
"""

from __future__ import annotations

import os
from typing import Any

from ocipy.errors import OcipyError, os_reason, pointer

IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0


def _pointer(name: str) -> str:
    return pointer("linux", "netDevices", name)


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return os_reason(code) if isinstance(code, int) and code > 0 else str(exc).lower()


def move(devices: dict[str, str | None], pid: int) -> None:
    """Move each host device (key) into the network namespace of `pid`, renamed to its value (or kept)."""
    ns_path = f"/proc/{pid}/ns/net"
    if os.stat(ns_path).st_ino == os.stat("/proc/self/ns/net").st_ino:
        raise OcipyError("/linux/netDevices: the container shares the host's network namespace: nowhere to move to")
    from pyroute2 import IPRoute, NetlinkError, NetNS

    with IPRoute() as host, NetNS(ns_path) as inside:
        for host_name, new_name in devices.items():
            _move_one(host, inside, host_name, new_name or host_name, pid, (NetlinkError, OSError))


def _names(ipr: Any) -> set[str]:
    return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}


def _move_one(
    host: Any, inside: Any, host_name: str, target: str, pid: int, failures: tuple[type[BaseException], ...]
) -> None:
    ptr = _pointer(host_name)
    found = host.link_lookup(ifname=host_name)
    if not found:
        raise OcipyError(f"{ptr}: no network device {host_name!r} on the host")
    index = found[0]
    before = _names(inside)
    if "%d" not in target and target in before:
        raise OcipyError(f"{ptr}/name: a device named {target!r} already exists in the container")
    keep = [
        (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
        for a in host.get_addr(index=index)
        if a["scope"] == RT_SCOPE_UNIVERSE and (a.get_attr("IFA_FLAGS") or a["flags"]) & IFA_F_PERMANENT
    ]
    try:
        host.link("set", index=index, net_ns_pid=pid, ifname=target)  # moved and renamed in one request
    except failures as exc:  # pyroute2's NetlinkError carries the errno as .code
        raise OcipyError(f"{ptr}: move into the container: {_reason(exc)}") from None
    # with a `%d` template the kernel chose the name: the one that was not there before
    name = target if "%d" not in target else next(iter(_names(inside) - before), target)
    moved = inside.link_lookup(ifname=name)
    if not moved:
        raise OcipyError(f"{ptr}: {name!r} did not arrive in the container")
    try:
        for address, prefixlen in keep:
            inside.addr("add", index=moved[0], address=address, prefixlen=prefixlen)
        inside.link("set", index=moved[0], state="up")
    except failures as exc:
        raise OcipyError(f"{ptr}: configure {name!r} in the container: {_reason(exc)}") from None
