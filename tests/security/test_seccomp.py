"""linux.seccomp end to end: every action, errnoRet/defaultErrnoRet, architectures, every operator, unknown syscall
names, flags, the notify listener, Podman's default profile; plus compile errors and where the filter sits in the
plan. Containers run the static probe (probe.c) to make exactly one system call and report the outcome."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import socket
import struct
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ocipy_security_common as c  # loaded by conftest.py
import pytest

h = c.h
root_only = c.root_only

from seccomp_profiles import PODMAN_CAPS, podman_spec_profile  # tests/security/seccomp_profiles.py

from ocipy import planfmt
from ocipy import seccomp as sc

YIELD = c.NR_SCHED_YIELD


def seccomp_cfg(default: str = "SCMP_ACT_ALLOW", syscalls: list[dict[str, Any]] | None = None, **kw: Any) -> dict:
    cfg: dict[str, Any] = {"defaultAction": default, "syscalls": syscalls or []}
    cfg.update(kw)
    return cfg


def rule(names: list[str] | str, action: str, **kw: Any) -> dict[str, Any]:
    return {"names": [names] if isinstance(names, str) else names, "action": action, **kw}


def run_probes(rt: Any, bundle: Any, seccomp: dict[str, Any], calls: list[str], **kw: Any) -> list[str]:
    """Run `/probe CALL; echo status=$?` for each call in one container; return the output lines."""
    c.install_probe(bundle)
    bundle.linux["seccomp"] = seccomp
    script = "; ".join(f"/probe {call}; echo status=$?" for call in calls)
    out = rt.probe(bundle, script, **kw)
    return out.splitlines()


# ----------------------------------------------------------------------------------------------------------------
# actions
# ----------------------------------------------------------------------------------------------------------------


@root_only
def test_errno_with_and_without_errno_ret(rt: Any, bundle: Any) -> None:
    lines = run_probes(
        rt,
        bundle,
        seccomp_cfg(syscalls=[rule("sched_yield", "SCMP_ACT_ERRNO", errnoRet=77), rule("getppid", "SCMP_ACT_ERRNO")]),
        [str(YIELD), str(c.NR_GETPPID)],
    )
    assert lines == ["ret=-1 errno=77", "status=0", "ret=-1 errno=1", "status=0"]


@root_only
@pytest.mark.parametrize("ret,expect", [(99, 99), (None, errno.EPERM)])
def test_default_errno_ret(rt: Any, bundle: Any, ret: int | None, expect: int) -> None:
    """Everything is allowed by name except sched_yield; it and an unknown number get the default errno."""
    cfg = seccomp_cfg("SCMP_ACT_ERRNO", [rule(c.allow_all_but("sched_yield"), "SCMP_ACT_ALLOW")])
    if ret is not None:
        cfg["defaultErrnoRet"] = ret
    lines = run_probes(rt, bundle, cfg, [str(YIELD), str(c.NR_UNKNOWN), str(c.NR_GETPPID)])
    assert lines[0] == f"ret=-1 errno={expect}"
    assert lines[2] == f"ret=-1 errno={expect}"
    assert lines[4].startswith("ret=") and "errno=0" in lines[4]  # getppid allowed


@root_only
@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS"])
def test_kill_actions(rt: Any, bundle: Any, action: str) -> None:
    lines = run_probes(rt, bundle, seccomp_cfg(syscalls=[rule("sched_yield", action)]), [str(YIELD), "110"])
    # killed by SIGSYS without running its handler (128 + 31), while other calls still work
    assert lines[0] == "status=159", lines
    assert lines[1].startswith("ret=") and lines[2] == "status=0"


@root_only
def test_trap(rt: Any, bundle: Any) -> None:
    lines = run_probes(rt, bundle, seccomp_cfg(syscalls=[rule("sched_yield", "SCMP_ACT_TRAP")]), [str(YIELD)])
    assert lines == [f"SIGSYS nr={YIELD}", "status=42"]


@root_only
def test_trace_without_tracer_is_enosys(rt: Any, bundle: Any) -> None:
    cfg = seccomp_cfg(syscalls=[rule("sched_yield", "SCMP_ACT_TRACE", errnoRet=5)])
    assert run_probes(rt, bundle, cfg, [str(YIELD)]) == ["ret=-1 errno=38", "status=0"]


@root_only
def test_log_and_allow_under_a_denying_default(rt: Any, bundle: Any) -> None:
    cfg = seccomp_cfg(
        "SCMP_ACT_ERRNO",
        [rule(c.allow_all_but("sched_yield", "getppid"), "SCMP_ACT_ALLOW"), rule("sched_yield", "SCMP_ACT_LOG")],
        defaultErrnoRet=55,
    )
    lines = run_probes(rt, bundle, cfg, [str(YIELD), str(c.NR_GETPPID)])
    assert lines == ["ret=0 errno=0", "status=0", "ret=-1 errno=55", "status=0"]


# ----------------------------------------------------------------------------------------------------------------
# arguments
# ----------------------------------------------------------------------------------------------------------------

OPERATOR_CASES = [
    # op, value, valueTwo, {arg1 value: matches}
    ("SCMP_CMP_NE", 5, None, {5: False, 6: True}),
    ("SCMP_CMP_LT", 5, None, {4: True, 5: False}),
    ("SCMP_CMP_LE", 5, None, {5: True, 6: False}),
    ("SCMP_CMP_EQ", 0x100000005, None, {0x100000005: True, 5: False}),
    ("SCMP_CMP_GE", 5, None, {5: True, 4: False}),
    ("SCMP_CMP_GT", 5, None, {6: True, 5: False}),
    ("SCMP_CMP_MASKED_EQ", 0xFF00, 0x1200, {0x12AB: True, 0x13AB: False}),
]


@root_only
@pytest.mark.parametrize("op,value,two,cases", OPERATOR_CASES, ids=[x[0] for x in OPERATOR_CASES])
def test_operators(rt: Any, bundle: Any, op: str, value: int, two: int | None, cases: dict[int, bool]) -> None:
    arg: dict[str, Any] = {"index": 1, "value": value, "op": op}
    if two is not None:
        arg["valueTwo"] = two
    cfg = seccomp_cfg(syscalls=[rule("sched_yield", "SCMP_ACT_ERRNO", errnoRet=77, args=[arg])])
    calls = [f"{YIELD} 0 {v:#x}" for v in cases]
    lines = run_probes(rt, bundle, cfg, calls)
    got = [line for line in lines if line.startswith("ret=")]
    assert got == ["ret=-1 errno=77" if m else "ret=0 errno=0" for m in cases.values()], (op, lines)


@root_only
def test_conditions_on_distinct_args_and_same_arg(rt: Any, bundle: Any) -> None:
    """Distinct argument indexes: one rule (all must hold). One index twice: one rule each (any may hold), as runc."""
    both = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]
    either = [{"index": 2, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 2, "op": "SCMP_CMP_EQ"}]
    cfg = seccomp_cfg(
        syscalls=[
            rule("sched_yield", "SCMP_ACT_ERRNO", errnoRet=71, args=both),
            rule("sched_yield", "SCMP_ACT_ERRNO", errnoRet=72, args=either),
        ]
    )
    calls = [f"{YIELD} 1 2", f"{YIELD} 1 3", f"{YIELD} 0 0 1", f"{YIELD} 0 0 2", f"{YIELD} 0 0 3"]
    got = [line for line in run_probes(rt, bundle, cfg, calls) if line.startswith("ret=")]
    assert got == ["ret=-1 errno=71", "ret=0 errno=0", "ret=-1 errno=72", "ret=-1 errno=72", "ret=0 errno=0"]


# ----------------------------------------------------------------------------------------------------------------
# architectures, unknown names, flags
# ----------------------------------------------------------------------------------------------------------------


@root_only
def test_architectures(rt: Any, bundle: Any, tmp_path: Path) -> None:
    deny = [rule("sched_yield", "SCMP_ACT_ERRNO", errnoRet=77)]
    # with the i386 ABI in the filter its sched_yield (int $0x80, number 158) is matched by name
    cfg = seccomp_cfg(syscalls=deny, architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    assert run_probes(rt, bundle, cfg, [f"x86 {c.NR_I386_SCHED_YIELD}"]) == ["ret=-77", "status=0"]
    # without it, any i386 system call is a foreign architecture: the process is killed
    other = h.make_bundle(tmp_path / "other")
    assert run_probes(rt, other, seccomp_cfg(syscalls=deny), [f"x86 {c.NR_I386_SCHED_YIELD}"]) == ["status=159"]


@root_only
def test_unknown_syscall_names_are_skipped(rt: Any, bundle: Any) -> None:
    cfg = seccomp_cfg(syscalls=[rule(["no_such_syscall_ocipy", "sched_yield"], "SCMP_ACT_ERRNO", errnoRet=77)])
    assert run_probes(rt, bundle, cfg, [str(YIELD)]) == ["ret=-1 errno=77", "status=0"]


@root_only
def test_all_flags_accepted(rt: Any, bundle: Any) -> None:
    flags = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ]
    cfg = seccomp_cfg(syscalls=[rule("sched_yield", "SCMP_ACT_ERRNO", errnoRet=77)], flags=flags)
    assert run_probes(rt, bundle, cfg, [str(YIELD)]) == ["ret=-1 errno=77", "status=0"]


def test_flags_reach_seccomp2() -> None:
    def flags_of(names: list[str], notify: bool) -> int:
        calls = [SimpleNamespace(names=["getppid"], action="SCMP_ACT_NOTIFY", errno_ret=None, args=None)]
        cfg = SimpleNamespace(
            default_action="SCMP_ACT_ALLOW",
            default_errno_ret=None,
            architectures=None,
            flags=names,
            listener_path="/run/x.sock" if notify else None,
            listener_metadata=None,
            syscalls=calls if notify else [],
        )
        return int(sc.compile_filter(cfg).flags)

    assert flags_of(["SECCOMP_FILTER_FLAG_TSYNC"], False) == 0
    assert flags_of(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"], False) == sc.FLAG_LOG | 4
    assert flags_of(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"], False) == 0
    assert flags_of(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"], True) == sc.FLAG_NEW_LISTENER | 32


@root_only
def test_without_no_new_privileges_as_non_root_user(rt: Any, bundle: Any) -> None:
    """Without noNewPrivileges the filter goes in while the init still has CAP_SYS_ADMIN (before the uid change)."""
    bundle.process["noNewPrivileges"] = False
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    cfg = seccomp_cfg(syscalls=[rule("sched_yield", "SCMP_ACT_ERRNO", errnoRet=77)])
    lines = run_probes(rt, bundle, cfg, [str(YIELD)])
    assert lines == ["ret=-1 errno=77", "status=0"]


# ----------------------------------------------------------------------------------------------------------------
# notify: the listener gets the fd and the container process state
# ----------------------------------------------------------------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1


class Agent(threading.Thread):
    """A seccomp agent: accepts one connection, keeps the state and the fd, answers notifications (EADDRINUSE for
    sched_yield, continue for anything else) until the fd reports the filter gone or the deadline passes."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.state: dict[str, Any] | None = None
        self.nfds = 0
        self.answered: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                while True:  # the document may come in several parts (the fd with the first)
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
            self.state = json.loads(data)
            self.nfds = len(fds)
            for extra in fds[1:]:
                os.close(extra)
            fd = fds[0]
            try:
                self.serve(fd)
            finally:
                os.close(fd)
        except Exception as exc:  # noqa: BLE001  (reported by the test)
            self.error = exc
        finally:
            self.sock.close()

    def serve(self, fd: int) -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        for _ in range(600):
            events = poller.poll(100)
            if any(ev & (select.POLLHUP | select.POLLERR) for _, ev in events):
                return
            if not events:
                continue
            buf = bytearray(80)
            try:
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EINTR):
                    continue
                raise
            nid, _pid, _flags, nr = struct.unpack_from("<QIIi", buf)
            if nr == YIELD:
                resp = struct.pack("<QqiI", nid, 0, -errno.EADDRINUSE, 0)
            else:
                resp = struct.pack("<QqiI", nid, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)
            try:
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(resp))
                self.answered.append(nr)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise


@root_only
def test_notify_listener_gets_fd_and_state(rt: Any, bundle: Any, tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    agent = Agent(path)
    agent.start()
    bundle.config["annotations"] = {"it.key": "it-value"}
    cfg = seccomp_cfg(
        syscalls=[rule("sched_yield", "SCMP_ACT_NOTIFY")],
        listenerPath=str(path),
        listenerMetadata="MKNOD=/dev/null;it",
    )
    cid = rt.new_id("notify")
    lines = run_probes(rt, bundle, cfg, [str(YIELD), str(YIELD)], cid=cid)
    agent.join(timeout=30)
    assert agent.error is None, agent.error
    assert lines == [f"ret=-1 errno={errno.EADDRINUSE}", "status=0"] * 2
    assert agent.answered.count(YIELD) == 2
    state = agent.state
    assert state is not None and agent.nfds == 1
    assert state["fds"] == ["seccompFd"]
    assert state["metadata"] == "MKNOD=/dev/null;it"
    assert state["ociVersion"] and isinstance(state["pid"], int) and state["pid"] > 0
    assert state["state"]["id"] == cid
    assert state["state"]["pid"] == state["pid"]
    assert state["state"]["status"] == "creating"
    assert state["state"]["bundle"] == str(bundle.path)
    assert state["state"]["annotations"] == {"it.key": "it-value"}


@root_only
def test_notify_listener_unreachable_fails_create_cleanly(rt: Any, bundle: Any, tmp_path: Path) -> None:
    c.install_probe(bundle)
    bundle.linux["seccomp"] = seccomp_cfg(
        syscalls=[rule("sched_yield", "SCMP_ACT_NOTIFY")], listenerPath=str(tmp_path / "nobody.sock")
    )
    bundle.args("/probe", str(YIELD))
    with h.subreaper():
        _cid, res = rt.create(bundle)
        res.fails("listenerPath")
        assert "Traceback" not in res.err
        assert rt.state_dirs() == []
        h.reap_children()
        assert not h.cmdline_pids(str(bundle.path))


# ----------------------------------------------------------------------------------------------------------------
# Podman's default profile (containers-common's seccomp.json), converted as Podman does
# ----------------------------------------------------------------------------------------------------------------

PODMAN_PROFILE = os.environ.get("OCIPY_PODMAN_SECCOMP_JSON", "/usr/share/containers/seccomp.json")


@root_only
def test_podman_default_profile_unchanged(rt: Any, bundle: Any) -> None:
    if not os.path.exists(PODMAN_PROFILE):
        pytest.skip(f"{PODMAN_PROFILE} missing (Debian: golang-github-containers-common)")
    profile = json.loads(Path(PODMAN_PROFILE).read_text())
    bundle.process["capabilities"] = {k: list(PODMAN_CAPS) for k in ("bounding", "effective", "permitted")}
    cfg = podman_spec_profile(profile, PODMAN_CAPS)
    c.install_probe(bundle)
    bundle.linux["seccomp"] = cfg
    script = (
        "mkdir /tmp/d && echo made; ls / >/dev/null && echo listed; "
        f"/probe {c.NR_KEXEC_LOAD}; /probe {c.NR_UNKNOWN}; /probe {YIELD}"
    )
    out = rt.probe(bundle, script).splitlines()
    assert out == ["made", "listed", "ret=-1 errno=1", "ret=-1 errno=38", "ret=0 errno=0"]


# ----------------------------------------------------------------------------------------------------------------
# compile errors (pure) and the filter's place in the plan
# ----------------------------------------------------------------------------------------------------------------


def ns(**kw: Any) -> SimpleNamespace:
    base = {
        "default_action": "SCMP_ACT_ALLOW",
        "default_errno_ret": None,
        "architectures": None,
        "flags": None,
        "listener_path": None,
        "listener_metadata": None,
        "syscalls": [],
    }
    base.update(kw)
    return SimpleNamespace(**base)


def call(names: list[str], action: str, errno_ret: int | None = None, args: Any = None) -> SimpleNamespace:
    return SimpleNamespace(names=names, action=action, errno_ret=errno_ret, args=args)


@pytest.mark.parametrize(
    "cfg,pointer",
    [
        (ns(default_action="SCMP_ACT_NOTIFY", listener_path="/x"), "/linux/seccomp/defaultAction"),
        (ns(default_action="SCMP_ACT_ALLOW", default_errno_ret=1), "/linux/seccomp/defaultErrnoRet"),
        (ns(syscalls=[call(["mkdir"], "SCMP_ACT_KILL", errno_ret=1)]), "/linux/seccomp/syscalls/0/errnoRet"),
        (ns(syscalls=[call(["mkdir"], "SCMP_ACT_ERRNO", errno_ret=70000)]), "/linux/seccomp/syscalls/0/errnoRet"),
        (ns(syscalls=[call(["mkdir"], "SCMP_ACT_NOTIFY")]), "/linux/seccomp/listenerPath"),
        (ns(listener_metadata="x"), "/linux/seccomp/listenerMetadata"),
        (ns(listener_path="/x", syscalls=[call(["sendmsg"], "SCMP_ACT_NOTIFY")]), "/linux/seccomp/syscalls/0/names/0"),
        (ns(syscalls=[call([], "SCMP_ACT_ERRNO")]), "/linux/seccomp/syscalls/0/names"),
        (ns(syscalls=[call([""], "SCMP_ACT_ERRNO")]), "/linux/seccomp/syscalls/0/names/0"),
        (
            ns(
                syscalls=[call(["mkdir"], "SCMP_ACT_ERRNO", args=[SimpleNamespace(index=6, value=0, op="SCMP_CMP_EQ")])]
            ),
            "/linux/seccomp/syscalls/0/args/0/index",
        ),
        (
            ns(syscalls=[call(["mkdir"], "SCMP_ACT_ERRNO", args=[SimpleNamespace(index=0, value=0, op="BOGUS")])]),
            "/linux/seccomp/syscalls/0/args/0/op",
        ),
        (ns(architectures=["SCMP_ARCH_NOPE"]), "/linux/seccomp/architectures/0"),
        (ns(flags=["SECCOMP_FILTER_FLAG_NOPE"]), "/linux/seccomp/flags/0"),
        (ns(default_action="SCMP_ACT_BOGUS"), "/linux/seccomp/defaultAction"),
    ],
)
def test_compile_errors_name_the_field(cfg: SimpleNamespace, pointer: str) -> None:
    with pytest.raises(sc.SeccompError) as info:
        sc.compile_filter(cfg)
    assert info.value.pointer == pointer, str(info.value)


def test_rule_equal_to_default_is_skipped_and_long_profiles_compile() -> None:
    same = sc.compile_filter(ns(syscalls=[call(["mkdir"], "SCMP_ACT_ALLOW")]))
    empty = sc.compile_filter(ns())
    assert same.bpf == empty.bpf
    big = sc.compile_filter(ns(default_action="SCMP_ACT_ERRNO", syscalls=[call(c.allow_all_but(), "SCMP_ACT_ALLOW")]))
    assert 0 < len(big.bpf) // 8 <= sc.BPF_MAXINSNS


def _plan_codes(nnp: bool, seccomp: dict[str, Any] | None) -> list[int]:
    from ocipy.plan import HostFacts, compile_create
    from ocipy.spec.load import load_config

    cfg = h.default_config(["sh"])
    cfg["process"]["noNewPrivileges"] = nnp
    if seccomp is not None:
        cfg["linux"]["seccomp"] = seccomp
    spec = load_config(json.dumps(cfg).encode())
    plan = compile_create(
        spec,
        rootfs="/b/rootfs",
        bundle="/b",
        fifo="/s/exec.fifo",
        console_fd=None,
        extra_fds=0,
        no_pivot=False,
        no_new_keyring=False,
        host=HostFacts(),
    )
    return [op[0] for op in plan.ops]


def test_filter_position_in_the_plan() -> None:
    deny = seccomp_cfg(syscalls=[rule("mkdir", "SCMP_ACT_ERRNO")])
    codes = _plan_codes(True, deny)
    # noNewPrivileges: last, after the ids, capabilities, no_new_privs and the wait for start: only execve follows
    i = codes.index(planfmt.OP_SECCOMP)
    assert codes.index(planfmt.OP_CAPSET) < i and codes.index(planfmt.OP_NO_NEW_PRIVS) < i
    assert codes.index(planfmt.OP_WAIT_START) < i and codes[i + 1 :] == [planfmt.OP_EXEC]
    # fds are marked close-on-exec before any filter (a profile need not allow close_range)
    assert codes.index(planfmt.OP_CLOSE_FDS) < i
    # without it: before the uid/gid change and capset (installing needs CAP_SYS_ADMIN)
    codes = _plan_codes(False, deny)
    i = codes.index(planfmt.OP_SECCOMP)
    assert codes.index(planfmt.OP_CLOSE_FDS) < i
    assert i < codes.index(planfmt.OP_SETGROUPS) < codes.index(planfmt.OP_SETUID) < codes.index(planfmt.OP_CAPSET)
    assert codes.count(planfmt.OP_SECCOMP) == 1
    assert planfmt.OP_SECCOMP not in _plan_codes(True, None)


@root_only
def test_a_profile_seen_before_is_read_from_the_cache(rt: Any, bundle: Any) -> None:
    """The second container with the same profile loads the compiled program from `<root>/@cache/seccomp` (no
    libseccomp), and it is the same filter: the rule still holds. `ocipy list` does not see the cache."""
    c.install_probe(bundle)
    bundle.linux["seccomp"] = seccomp_cfg(syscalls=[rule("sched_yield", "SCMP_ACT_ERRNO", errnoRet=77)])
    bundle.sh(f"/probe {YIELD}; echo status=$?")
    bundle.write()
    runs = []
    for _ in range(2):
        res = rt.call("--debug", "run", "--bundle", str(bundle.path), rt.new_id("sccache")).ok()
        runs.append((res.out.splitlines(), res.err))
    assert runs[0][0] == runs[1][0] and runs[1][0][-1] == "status=0" and "77" in runs[1][0][0], runs
    assert "compiled filter read from" not in runs[0][1]
    assert "compiled filter read from" in runs[1][1], runs[1][1][-2000:]
    assert len(os.listdir(rt.root / "@cache" / "seccomp")) == 1
    assert rt.call("list", "-q").ok().out.split() == []
