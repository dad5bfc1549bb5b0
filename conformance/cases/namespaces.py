"""config-linux.md#configLinuxNamespaces, user namespace mappings, time offsets."""

from __future__ import annotations

import os
import time

from ..framework import Ctx, case, host_ns
from ._util import set_args, sh

N = "config-linux.md#configLinuxNamespaces"
PROBE_NS = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "cgroup": "cgroup",
    "user": "user",
    "time": "time",
}


@case("ns.new", N, "MUST", "If path is not specified, the runtime MUST create a new container namespace of type type.")
def _new(t: Ctx) -> None:
    cfg = t.config()
    types = ["pid", "network", "mount", "ipc", "uts", "cgroup"]
    cfg["linux"]["namespaces"] = [{"type": x} for x in types]
    f = t.probe(cfg)
    ns = f.get("ns", {})
    for x in types:
        t.check(
            f"a new {x} namespace",
            ns.get(PROBE_NS[x]) and ns.get(PROBE_NS[x]) != host_ns(PROBE_NS[x]),
            f"container {ns.get(PROBE_NS[x])!r}, host {host_ns(PROBE_NS[x])!r}",
        )


@case(
    "ns.inherit",
    N,
    "MUST",
    "If a namespace type is not specified in the namespaces array, the container MUST inherit the runtime "
    "namespace of that type.",
)
def _inherit(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["namespaces"] = [{"type": "mount"}]
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/sys", "/dev/mqueue")]
    del cfg["hostname"]
    f = t.probe(cfg)
    ns = f.get("ns", {})
    for x in ("pid", "network", "ipc", "uts", "cgroup", "user", "time"):
        t.eq(f"the runtime's {x} namespace is inherited", ns.get(PROBE_NS[x]), host_ns(PROBE_NS[x]))


@case(
    "ns.path-join",
    N,
    "MUST",
    "The runtime MUST place the container process in the namespace associated with that path.",
)
def _join(t: Ctx) -> None:
    holder = t.spawn(["unshare", "--net", "--uts", "--ipc", "sleep", "120"])
    time.sleep(0.3)
    want = {k: os.readlink("/proc/%d/ns/%s" % (holder.pid, k)) for k in ("net", "uts", "ipc")}
    cfg = t.config()
    cfg["linux"]["namespaces"] = [
        {"type": "pid"},
        {"type": "mount"},
        {"type": "network", "path": "/proc/%d/ns/net" % holder.pid},
        {"type": "uts", "path": "/proc/%d/ns/uts" % holder.pid},
        {"type": "ipc", "path": "/proc/%d/ns/ipc" % holder.pid},
    ]
    f = t.probe(cfg)
    ns = f.get("ns", {})
    for k in ("net", "uts", "ipc"):
        t.eq(f"the {k} namespace at path is joined", ns.get(k), want[k])


@case(
    "ns.path-wrong-type",
    N,
    "MUST",
    "The runtime MUST generate an error if path is not associated with a namespace of type type.",
)
def _wrong(t: Ctx) -> None:
    holder = t.spawn(["unshare", "--uts", "sleep", "120"])
    time.sleep(0.3)
    cfg = set_args(t.config(), sh("touch /ran"))
    cfg["linux"]["namespaces"] = [
        {"type": "pid"},
        {"type": "mount"},
        {"type": "network", "path": "/proc/%d/ns/uts" % holder.pid},
    ]
    b = t.bundle(cfg)
    cid, r = t.create(b)
    t.check("create with a network path that is a uts namespace fails", r.rc != 0, str(r))
    rs, _ = t.state(cid)
    t.check("no container exists after the failed create", rs.rc != 0, str(rs))


@case(
    "ns.duplicate",
    N,
    "MUST",
    "If a namespaces field contains duplicated namespaces with same type, the runtime MUST generate an error.",
)
def _dup(t: Ctx) -> None:
    cfg = set_args(t.config(), sh("touch /ran"))
    cfg["linux"]["namespaces"].append({"type": "pid"})
    _cid, r = t.create(t.bundle(cfg))
    t.check("create with two pid namespaces fails", r.rc != 0, str(r))


@case(
    "ns.user-mappings",
    "config-linux.md#configLinuxUserNamespaceMappings",
    "MUST",
    "uidMappings/gidMappings: describe the user namespace uid/gid mappings from the host to the container",
)
def _userns(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    f = t.probe(cfg)
    t.check("a new user namespace", f.get("ns", {}).get("user") not in (None, host_ns("user")), repr(f.get("ns")))
    t.eq("uid_map is uidMappings", [" ".join(x.split()) for x in f.get("uid_map") or []], ["0 200000 65536"])
    t.eq("gid_map is gidMappings", [" ".join(x.split()) for x in f.get("gid_map") or []], ["0 300000 65536"])
    t.eq("the process is uid 0 in the container", f.get("uid"), 0)


@case(
    "ns.time-offsets",
    "config-linux.md#configLinuxTimeOffset",
    "MUST",
    "timeOffsets (object, OPTIONAL) sets the offset for Time Namespace.",
)
def _time(t: Ctx) -> None:
    if not os.path.exists("/proc/self/ns/time"):
        t.skip("host: the kernel has no time namespaces")
    cfg = t.config()
    cfg["ociVersion"] = "1.3.0"
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 3600}}
    f = t.probe(cfg)
    offs = {x.split()[0]: x.split()[1:] for x in f.get("timens_offsets") or []}
    t.check("a new time namespace", f.get("ns", {}).get("time") not in (None, host_ns("time")), repr(f.get("ns")))
    t.eq("the monotonic offset is set", offs.get("monotonic"), ["86400", "0"])
    t.eq("the boottime offset is set", offs.get("boottime"), ["3600", "0"])
