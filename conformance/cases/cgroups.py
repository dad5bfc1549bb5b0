"""config-linux.md#configLinuxControlGroups: read-only checks of what the runtime put in place (the cgroup the
process is in, and the values written), from the host and from inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..framework import V1_ROOT, Ctx, case, cgroup_dirs_of, read_cgroup_file
from ._util import req, set_args, sh

G = "config-linux.md"


def running(t: Ctx, resources: dict[str, Any], extra=None) -> tuple[str, Any, dict[str, str], int | None]:
    """create a container with these resources (not started: create MUST apply every property but process)."""
    cfg = set_args(t.config(), sh("exec sleep 60"))
    cfg["linux"]["resources"].update(resources)
    if extra:
        extra(cfg)
    cid, r = t.create(t.bundle(cfg))
    _, st = t.state(cid)
    pid = (st or {}).get("pid")
    return cid, r, (cgroup_dirs_of(pid) if pid else {}), pid


def v1_controllers():
    return (
        sorted(p.name for p in V1_ROOT.iterdir() if (p / "cgroup.procs").exists() and p.name != "unified")
        if V1_ROOT.is_dir()
        else []
    )


@case(
    "cgroups.path",
    G + "#configLinuxCgroupsPath",
    "MUST",
    "In the case of an absolute path (starting with /), the runtime MUST take the path to be relative to the "
    "cgroups mount point.",
)
def _path(t: Ctx) -> None:
    _cid, r, cg, _pid = running(t, {})
    want = t.cgroups[-1]
    t.eq("create exits 0", r.rc, 0, str(r))
    for c in ("memory", "pids", "cpu", "devices", "freezer"):
        if c in v1_controllers():
            t.eq(f"the process is in cgroupsPath in the v1 {c} hierarchy", cg.get(c), want)
    inside = set_args(t.config(), ["/probe"])
    f = t.probe(inside)
    lines = [line.split(":", 2) for line in f.get("cgroup") or []]
    t.check(
        "inside, /proc/self/cgroup shows cgroupsPath",
        any(x[2] == t.cgroups[-1] for x in lines if len(x) == 3),
        repr(f.get("cgroup")),
    )


@case(
    "cgroups.path-consistent",
    G + "#configLinuxCgroupsPath",
    "MUST",
    "the runtime MUST consistently attach to the same place in the cgroups hierarchy given the same value of "
    "cgroupsPath.",
)
def _consistent(t: Ctx) -> None:
    cfg = set_args(t.config(), sh("exec sleep 60"))
    cfg["linux"]["cgroupsPath"] = path = "/ocipy-conformance/%s-consistent-%d" % (t.env.tag, t.index)
    t.cgroups.append(path)
    seen = []
    for i in range(2):
        cid, _r = t.create(t.bundle(cfg, name="b%d" % i))
        _, st = t.state(cid)
        seen.append(cgroup_dirs_of((st or {}).get("pid", 0)).get("memory"))
        t.delete(cid, force=True)
    t.check(
        "two containers with the same cgroupsPath land in the same memory cgroup",
        seen[0] == seen[1] == path,
        repr(seen),
    )


@case(
    "cgroups.memory",
    G + "#configLinuxMemory",
    "MUST",
    "limit (int64, OPTIONAL) - sets limit of memory usage in bytes; reservation - sets soft limit",
)
def _memory(t: Ctx) -> None:
    _cid, r, cg, _pid = running(t, {"memory": {"limit": 64 << 20, "reservation": 32 << 20}})
    t.eq(
        "memory.limit_in_bytes is limit",
        read_cgroup_file("memory", cg.get("memory", "/nowhere"), "memory.limit_in_bytes"),
        str(64 << 20),
        str(r),
    )
    t.eq(
        "memory.soft_limit_in_bytes is reservation",
        read_cgroup_file("memory", cg.get("memory", "/nowhere"), "memory.soft_limit_in_bytes"),
        str(32 << 20),
    )


@case(
    "cgroups.memory-inside",
    G + "#configLinuxMemory",
    "MUST",
    "limit (int64, OPTIONAL) - sets limit of memory usage in bytes (seen from inside the container)",
)
def _memory_inside(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["resources"]["memory"] = {"limit": 48 << 20}
    cfg["mounts"].append(
        {"destination": "/cgmem", "type": "bind", "source": "/sys/fs/cgroup/memory", "options": ["bind", "ro"]}
    )
    path = cfg["linux"]["cgroupsPath"]
    f = t.probe(cfg, f"read:/cgmem{path}/memory.limit_in_bytes")
    t.eq(
        "the container sees its memory limit",
        ((req(f, f"read:/cgmem{path}/memory.limit_in_bytes") or {}).get("data") or "").strip(),
        str(48 << 20),
    )


@case(
    "cgroups.pids",
    G + "#configLinuxPIDS",
    "MUST",
    "limit (int64, REQUIRED) - specifies the maximum number of tasks in the cgroup",
)
def _pids(t: Ctx) -> None:
    _cid, r, cg, _pid = running(t, {"pids": {"limit": 77}})
    t.eq("pids.max is limit", read_cgroup_file("pids", cg.get("pids", "/nowhere"), "pids.max"), "77", str(r))


@case(
    "cgroups.pids-zero",
    G + "#configLinuxPIDS",
    "SHOULD",
    "0 is a valid limit value for the pids cgroup controller from the kernel's perspective and SHOULD be treated "
    "as such by runtimes.",
)
def _pids0(t: Ctx) -> None:
    _cid, r, cg, _pid = running(t, {"pids": {"limit": 0}})
    t.eq("pids.max is 0", read_cgroup_file("pids", cg.get("pids", "/nowhere"), "pids.max"), "0", str(r))


@case(
    "cgroups.cpu",
    G + "#configLinuxCPU",
    "MUST",
    "shares, quota, period, cpus, mems: CPU and cpuset settings of the cgroup",
)
def _cpu(t: Ctx) -> None:
    _cid, r, cg, _pid = running(t, {"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}})
    cpu = cg.get("cpu", "/nowhere")
    t.eq("cpu.shares is shares", read_cgroup_file("cpu", cpu, "cpu.shares"), "512", str(r))
    t.eq("cpu.cfs_quota_us is quota", read_cgroup_file("cpu", cpu, "cpu.cfs_quota_us"), "50000")
    t.eq("cpu.cfs_period_us is period", read_cgroup_file("cpu", cpu, "cpu.cfs_period_us"), "100000")
    t.eq("cpuset.cpus is cpus", read_cgroup_file("cpuset", cg.get("cpuset", "/nowhere"), "cpuset.cpus"), "0")
    t.eq("cpuset.mems is mems", read_cgroup_file("cpuset", cg.get("cpuset", "/nowhere"), "cpuset.mems"), "0")


def first_block_dev() -> str | None:
    for d in sorted(Path("/sys/block").iterdir()):
        if not d.name.startswith(("loop", "zram", "ram")) and (d / "dev").exists():
            return (d / "dev").read_text().strip()
    return None


@case(
    "cgroups.blkio-throttle",
    G + "#configLinuxBlockIO",
    "MUST",
    "throttleReadBpsDevice, throttleWriteIOPSDevice ... specify the list of devices which will be IO rate limited",
)
def _blkio(t: Ctx) -> None:
    dev = first_block_dev()
    if not dev or "blkio" not in v1_controllers():
        t.skip("host: no block device or no v1 blkio controller")
    ma, mi = (int(x) for x in dev.split(":"))
    _cid, r, cg, _pid = running(
        t,
        {
            "blockIO": {
                "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 300}],
            }
        },
    )
    b = cg.get("blkio", "/nowhere")
    t.eq(
        "blkio.throttle.read_bps_device",
        read_cgroup_file("blkio", b, "blkio.throttle.read_bps_device"),
        f"{dev} 1048576",
        str(r),
    )
    t.eq(
        "blkio.throttle.write_iops_device",
        read_cgroup_file("blkio", b, "blkio.throttle.write_iops_device"),
        f"{dev} 300",
    )


def _unappliable(cid_r, what: str, t: Ctx) -> None:
    cid, r = cid_r
    t.check(f"create fails: {what}", r.rc != 0, str(r))
    rs, _ = t.state(cid)
    t.check("no container exists after the failed create", rs.rc != 0, str(rs))


def _create(t: Ctx, mod) -> tuple[str, Any]:
    cfg = set_args(t.config(), sh("exec sleep 60"))
    mod(cfg)
    return t.create(t.bundle(cfg))


@case(
    "cgroups.blkio-weight-applied-or-error",
    "runtime.md#runtimeCreate",
    "MUST",
    "If the runtime cannot apply a property as specified in the configuration, it MUST generate an error",
)
def _blkio_weight(t: Ctx) -> None:
    # This kernel has no blkio.weight (no CFQ); its non-root blkio cgroups carry blkio.bfq.weight. A runtime may
    # apply the weight there or fail; creating the container without the weight is the failure.
    if not (V1_ROOT / "blkio").is_dir():
        t.skip("host: no v1 blkio controller")
    cid, r = _create(t, lambda c: c["linux"]["resources"].update({"blockIO": {"weight": 500}}))
    if r.rc != 0:
        rs, _ = t.state(cid)
        t.check("create failed and left no container", rs.rc != 0, str(rs))
        return
    _, st = t.state(cid)
    path = cgroup_dirs_of(int(st["pid"])).get("blkio", "/") if st else "/"
    weights = [read_cgroup_file("blkio", path, f) for f in ("blkio.weight", "blkio.bfq.weight")]
    t.check(
        "the container's blkio cgroup has weight 500",
        any(w in ("500", "default 500") for w in weights),
        f"weights: {weights!r}",
    )


@case(
    "cgroups.hugetlb-applied-or-error",
    G + "#configLinuxHugePageLimits",
    "MUST",
    "If the runtime cannot apply a property as specified in the configuration, it MUST generate an error",
)
def _hugetlb(t: Ctx) -> None:
    # On a hybrid host hugetlb may live only on the v2 hierarchy: a runtime may apply the limit there (the
    # container's processes are in that hierarchy too) or fail. Silently ignoring the limit is the failure.
    cid, r = _create(
        t, lambda c: c["linux"]["resources"].update({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]})
    )
    if r.rc != 0:
        rs, _ = t.state(cid)
        t.check("create failed and left no container", rs.rc != 0, str(rs))
        return
    _, st = t.state(cid)
    limit = _hugetlb_limit(int(st["pid"])) if st else None
    t.eq("the 2MB hugetlb limit of the container's cgroup", limit, 2097152)


def _hugetlb_limit(pid: int) -> int | None:
    """The 2MB hugetlb limit of `pid`'s cgroup: v1 hugetlb controller or the cgroup v2 hierarchy."""
    mounts = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fstype, opts = post.split()[0], post.split()[-1]
        if fstype == "cgroup2":
            mounts["v2"] = pre.split()[4]
        elif fstype == "cgroup" and "hugetlb" in opts.split(","):
            mounts["v1"] = pre.split()[4]
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if "hugetlb" in ctrls.split(",") and "v1" in mounts:
            f = Path(mounts["v1"] + path) / "hugetlb.2MB.limit_in_bytes"
        elif ctrls == "" and "v2" in mounts:
            f = Path(mounts["v2"] + path) / "hugetlb.2MB.max"
        else:
            continue
        if f.exists():
            text = f.read_text().strip()
            return int(text) if text.isdigit() else None
    return None


@case(
    "cgroups.network-unavailable",
    G + "#configLinuxNetwork",
    "MUST",
    "If the runtime cannot apply a property as specified in the configuration, it MUST generate an error",
)
def _netcls(t: Ctx) -> None:
    if (V1_ROOT / "net_cls").is_dir() or (V1_ROOT / "net_cls,net_prio").is_dir():
        t.skip("host: net_cls is mounted")
    _unappliable(
        _create(t, lambda c: c["linux"]["resources"].update({"network": {"classID": 1048577}})),
        "network.classID with no net_cls controller",
        t,
    )


@case(
    "cgroups.rdma-unavailable",
    G + "#configLinuxRDMA",
    "MUST",
    "If the runtime cannot apply a property as specified in the configuration, it MUST generate an error",
)
def _rdma(t: Ctx) -> None:
    if (V1_ROOT / "rdma").is_dir():
        t.skip("host: rdma is mounted")
    _unappliable(
        _create(
            t, lambda c: c["linux"]["resources"].update({"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}})
        ),
        "rdma with no rdma controller",
        t,
    )


@case(
    "cgroups.unified-absent-controller",
    G + "#configLinuxUnified",
    "MUST",
    "The runtime MUST generate an error when the configuration refers to a cgroup controller that is not present "
    "or that cannot be enabled.",
)
def _unified(t: Ctx) -> None:
    ctrls = V1_ROOT / "unified" / "cgroup.controllers"
    if ctrls.exists() and "memory" in ctrls.read_text().split():
        t.skip("host: memory is a v2 controller here")
    _unappliable(
        _create(
            t,
            lambda c: c["linux"].update(
                {"resources": {"devices": c["linux"]["resources"]["devices"], "unified": {"memory.max": "67108864"}}}
            ),
        ),
        "unified memory.max while memory is not on the v2 hierarchy",
        t,
    )


@case(
    "cgroups.intel-rdt-unavailable",
    G + "#configLinuxIntelRdt",
    "MUST",
    "If no mounted resctrl pseudo-filesystem is available in the runtime mount namespace, the runtime MUST "
    "generate an error.",
)
def _rdt(t: Ctx) -> None:
    with open("/proc/self/mounts") as f:
        if any(line.split()[2] == "resctrl" for line in f):
            t.skip("host: resctrl is mounted")
    _unappliable(
        _create(t, lambda c: c["linux"].update({"intelRdt": {"closID": "conf", "l3CacheSchema": "L3:0=f"}})),
        "intelRdt with no resctrl mounted",
        t,
    )


@case(
    "cgroups.devices-v1",
    G + "#configLinuxDeviceAllowedlist",
    "MUST",
    "devices (array of objects, OPTIONAL) configures the device allowlist.",
)
def _devlist(t: Ctx) -> None:
    _cid, _r, cg, _pid = running(
        t,
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "rw"},
            ]
        },
    )
    lst = (read_cgroup_file("devices", cg.get("devices", "/nowhere"), "devices.list") or "").splitlines()
    t.check("devices.list no longer allows everything", lst and "a *:* rwm" not in lst, repr(lst))
    t.check("devices.list allows the listed device", "c 10:237 rw" in lst, repr(lst))


@case(
    "cgroups.namespace",
    "config-linux.md#configLinuxNamespaces",
    "MUST",
    "cgroup: the container will have an isolated view of the cgroup hierarchy.",
)
def _cgns(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    f = t.probe(cfg)
    lines = [line.split(":", 2) for line in f.get("cgroup") or []]
    mem = [x[2] for x in lines if len(x) == 3 and x[1] == "memory"]
    t.eq("inside a cgroup namespace the memory cgroup is /", mem, ["/"])


@case(
    "cgroups.removed-on-delete",
    "runtime.md#runtimeDelete",
    "MUST",
    "Deleting a container MUST delete the resources that were created during the create step.",
)
def _removed(t: Ctx) -> None:
    cid, _r, _cg, _pid = running(t, {"pids": {"limit": 50}})
    path = t.cgroups[-1]
    existed = [c for c in v1_controllers() if (V1_ROOT / c / path.lstrip("/")).is_dir()]
    t.check("create made the container's cgroups", existed, f"none of {path} exists")
    t.kill(cid, "KILL")
    t.wait_status(cid, "stopped")
    t.delete(cid)
    left = [c for c in v1_controllers() if (V1_ROOT / c / path.lstrip("/")).is_dir()]
    t.check("delete removed them", not left, f"left in {left}")
