"""The exec plan (ocipy/execplan.py): cgroups and labels before the namespaces, user first and mount last, the
process section shared with create but without the `created` handshake, and a pty never bound on /dev/console."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from test_spec_hypothesis import config

from ocipy import planfmt
from ocipy.errors import OcipyError
from ocipy.execplan import compile_exec, probe_host
from ocipy.plan import HostFacts, PlanError
from ocipy.spec import fast, light
from ocipy.spec.config import Process
from ocipy.spec.default import default_config
from ocipy.spec.load import load_config
from ocipy.spec.schemagen import LIGHT_SUBSETS

HOST = HostFacts(has_kcore=True, cap_last_cap=40, is_dir=lambda p: True)


def spec(**process: Any) -> Any:
    cfg = default_config()
    cfg["process"]["terminal"] = False
    cfg["process"].update(process)
    return load_config(json.dumps(cfg).encode())


def codes(plan: planfmt.Plan) -> list[str]:
    return [planfmt.NAMES[op[0]] for op in plan.ops]


def compile_(s: Any, proc: Any = None, **kw: Any) -> Any:
    kw.setdefault("joins", ["mnt", "pid", "user", "net"])
    return compile_exec(s, proc if proc is not None else s.process, init_pid=42, host=HOST, **kw)


def test_order() -> None:
    s = spec(execCPUAffinity={"initial": "0-1", "final": "1"}, oomScoreAdj=5)
    plan = compile_(s, cgroup_procs=["/sys/fs/cgroup/x/cgroup.procs"], extra_fds=2)
    got = codes(plan)
    assert got[:4] == ["OP_JOIN_CGROUP", "OP_CPU_AFFINITY", "OP_WRITE_PROC", "OP_SETNS"]
    setns = [plan._read(op[2][0]) for op in plan.ops if op[0] == planfmt.OP_SETNS]
    assert setns == ["/proc/42/ns/user", "/proc/42/ns/net", "/proc/42/ns/pid", "/proc/42/ns/mnt"]
    assert "OP_SIGNAL_CREATED" not in got and "OP_WAIT_START" not in got and "OP_MKDIR" not in got
    assert got[-2:] == ["OP_CPU_AFFINITY", "OP_EXEC"]
    # fds are marked before any seccomp filter and the id changes; the process gets its own session (issue 11)
    assert got.index("OP_CLOSE_FDS") < got.index("OP_SETGROUPS")
    assert plan.ops[got.index("OP_CLOSE_FDS")][3][0] == 2
    assert got.index("OP_CLONE") < got.index("OP_SETSID") < got.index("OP_SETUID")
    assert got.index("OP_CLONE") < got.index("OP_SETUID") < got.index("OP_FIND_EXEC") < got.index("OP_CAPSET")


def test_terminal_pty_not_on_dev_console() -> None:
    s = spec()
    proc = s.process.model_copy(update={"terminal": True})
    plan = compile_(s, proc, console_fd=5)
    got = codes(plan)
    i = got.index("OP_CONSOLE")
    assert got[i - 1] == "OP_OPEN_ROOT" and got.index("OP_CLONE") < i
    assert plan.ops[i][3][:4] == (5, 0, 0, 1)
    with pytest.raises(PlanError, match="console socket"):
        compile_(s, proc)


def test_process_checks() -> None:
    s = spec()
    with pytest.raises(PlanError, match="/process/cwd"):
        compile_(s, Process.model_validate({"cwd": "/", "args": []}).model_copy(update={"cwd": "rel"}))
    with pytest.raises(PlanError, match="/process/args"):
        compile_(s, Process.model_validate({"cwd": "/", "args": []}))


def test_no_joins_when_nothing_differs() -> None:
    plan = compile_(spec(), joins=[])
    assert "OP_SETNS" not in codes(plan)
    assert codes(plan).count("OP_CLONE") == 1


def _outcome(s: Any, proc: Any, host: Any) -> Any:
    """The plan's bytes and warnings, or the one-line error: what exec would do with these inputs."""
    try:
        plan = compile_exec(s, proc, init_pid=42, host=host, joins=["user", "pid", "mnt"], cgroup_procs=["/x"])
    except OcipyError as exc:
        return str(exc)
    return plan.encode(), plan.warnings


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(config)
def test_light_records_plan_alike(doc: dict[str, Any]) -> None:
    """exec plans from ocipy/spec/light.py's records (the Spec fields of schemagen.LIGHT_SUBSETS only): a field the
    namespace or process section reads and LIGHT_SUBSETS lacks would read None here and change the plan."""
    full = fast.validate("Spec", doc)
    part = light.validate("Spec", doc)
    assert (full is None) == (part is None)
    proc = doc.get("process")
    if full is None or not isinstance(proc, dict):
        return
    full_proc, part_proc = fast.validate("Process", proc), light.validate("Process", proc)
    assert _outcome(full, full_proc, HOST) == _outcome(part, part_proc, HOST)


def test_probed_host_is_what_the_sections_read() -> None:
    """execplan's host stand-in (no mountinfo/cgroup probes) plans as HostFacts with the same values."""
    probed = probe_host()
    same = HostFacts(
        cap_last_cap=probed.cap_last_cap, bounding=probed.bounding, lsms=probed.lsms, apparmor_exec=probed.apparmor_exec
    )
    cfg = default_config()
    cfg["process"].update(terminal=False, apparmorProfile="x", capabilities={"bounding": ["CAP_KILL", "CAP_BPF"]})
    cfg["mounts"].append({"destination": "/etc/passwd", "source": "/etc/passwd", "options": ["bind"]})
    cfg["linux"]["personality"] = {"domain": "LINUX"}
    s = load_config(json.dumps(cfg).encode())
    assert _outcome(s, s.process, probed) == _outcome(s, s.process, same)


class _Spy:
    """A spec object that records which of its fields are read."""

    def __init__(self, obj: Any, seen: set[str]) -> None:
        self._obj, self._seen = obj, seen

    def __getattr__(self, name: str) -> Any:
        self._seen.add(name)
        return getattr(self._obj, name)


def test_exec_reads_only_the_light_fields() -> None:
    """Every Spec and Linux field the namespace and process sections read is in schemagen.LIGHT_SUBSETS: light.py
    leaves the others out, so exec would plan without them."""
    cfg = default_config()
    cfg["process"]["terminal"] = False
    cfg["mounts"].append({"destination": "/etc/passwd", "source": "passwd", "options": ["bind"]})
    cfg["hostname"], cfg["domainname"] = "h", "d"
    linux = cfg["linux"]
    linux["namespaces"] += [{"type": "user"}, {"type": "time"}]
    linux["uidMappings"] = linux["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 10}]
    linux.update(
        personality={"domain": "LINUX"},
        memoryPolicy={"mode": "MPOL_LOCAL"},
        timeOffsets={"monotonic": {"secs": 1}},
        mountLabel="system_u:object_r:container_file_t:s0",
        seccomp={"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]},
    )
    s = load_config(json.dumps(cfg).encode())
    spec_seen: set[str] = set()
    linux_seen: set[str] = set()
    spy = _Spy(s, spec_seen)
    s_linux = s.linux
    object.__setattr__(spy, "linux", _Spy(s_linux, linux_seen))  # read as spec.linux, then field by field
    spec_seen.add("linux")
    host = HostFacts(cap_last_cap=40, lsms=frozenset({"selinux"}))
    plan = compile_exec(spy, s.process, init_pid=42, host=host, joins=["user"])
    assert "OP_PERSONALITY" in codes(plan) and "OP_MEMPOLICY" in codes(plan) and "OP_SECCOMP" in codes(plan)
    spec_seen.discard("process")  # Section.__init__ takes the config's; exec replaces it with its own process
    assert spec_seen <= set(LIGHT_SUBSETS["Spec"]), spec_seen - set(LIGHT_SUBSETS["Spec"])
    assert linux_seen <= set(LIGHT_SUBSETS["Linux"]), linux_seen - set(LIGHT_SUBSETS["Linux"])
    assert {"namespaces", "uid_mappings", "personality", "memory_policy", "seccomp"} <= linux_seen
