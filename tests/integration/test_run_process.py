"""The container process: args, env, cwd, user, limits, privileges, scheduling, terminal and stdio."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from pathlib import Path

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()

# -- args and PATH ---------------------------------------------------------------------------------------------


def test_args_resolved_through_container_path(rt, bundle):
    opt = bundle.rootfs / "opt" / "it-bin"
    opt.mkdir(parents=True)
    prog = opt / "it-hello"
    prog.write_text('#!/bin/sh\necho hello-from-opt "$@"\n')
    prog.chmod(0o755)
    bundle.process["env"] = ["PATH=/opt/it-bin:/bin", "TERM=xterm"]
    bundle.args("it-hello", "a b", "c")
    assert rt.run(bundle).ok().out == "hello-from-opt a b c\n"


def test_args_without_shell(rt, bundle):
    bundle.args("echo", "-n", "$HOME", "*")
    assert rt.run(bundle).ok().out == "$HOME *"


@pytest.mark.parametrize(
    "argv,phrase",
    [
        (["it-no-such-command"], "executable file not found in $PATH"),
        (["/no/such/binary"], "no such file or directory"),
    ],
)
def test_missing_executable_fails_create_and_leaves_nothing(rt, bundle, argv, phrase):
    bundle.args(*argv)
    before = h.host_mounts()
    with h.subreaper():
        cid, res = rt.create(bundle)
        res.fails(phrase)
        h.wait_until(lambda: not h.children_of(os.getpid()), 5)
        leftover = h.children_of(os.getpid())
        h.reap_children()
    assert leftover == [], f"processes left behind: {leftover}"
    assert rt.state_dirs() == []
    assert h.host_mounts() == before
    rt.call("state", cid).fails("container does not exist")


# -- env and cwd ---------------------------------------------------------------------------------------------


def test_env_is_exactly_the_configured_one(rt, bundle):
    bundle.process["env"] = ["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=", "HOME=/it-home"]
    bundle.args("env")
    res = rt.run(bundle, env={"OCIPY_IT_HOST_SECRET": "leak"}).ok()
    assert sorted(res.out.splitlines()) == sorted(bundle.process["env"])


def test_home_defaults_from_passwd(rt, bundle):
    bundle.process["env"] = ["PATH=/bin:/usr/bin"]
    bundle.args("env")
    lines = rt.run(bundle).ok().out.splitlines()
    assert "PATH=/bin:/usr/bin" in lines
    assert set(lines) <= {"PATH=/bin:/usr/bin", "HOME=/root"}, lines


def test_cwd(rt, bundle):
    bundle.process["cwd"] = "/etc"
    assert rt.probe(bundle, "pwd").strip() == "/etc"


def test_cwd_created_when_missing(rt, bundle):
    bundle.process["cwd"] = "/it/new/dir"
    assert rt.probe(bundle, "pwd").strip() == "/it/new/dir"
    assert (bundle.rootfs / "it" / "new" / "dir").is_dir()


def test_cwd_cannot_escape_the_root(rt, bundle):
    (bundle.rootfs / "tmp" / "inside-marker").write_text("")
    (bundle.rootfs / "escape").symlink_to("/../../../../../../tmp")
    bundle.process["cwd"] = "/escape"
    out = rt.probe(bundle, "pwd -P; ls")
    lines = out.splitlines()
    assert lines[0] == "/tmp"
    assert "inside-marker" in lines[1:]


def test_relative_cwd_is_refused(rt, bundle):
    bundle.process["cwd"] = "tmp"
    _cid, res = rt.create(bundle)
    res.fails()
    assert rt.state_dirs() == []


# -- user --------------------------------------------------------------------------------------------------------


def test_uid_gid_additional_gids(rt, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [10, 20]}
    out = rt.probe(bundle, "id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    lines = out.splitlines()
    assert lines[0] == "1000" and lines[1] == "1001"
    assert h.status_field(out, "Uid").split() == ["1000"] * 4
    assert h.status_field(out, "Gid").split() == ["1001"] * 4
    assert sorted(h.status_field(out, "Groups").split()) == ["10", "20"]


def test_root_has_no_supplementary_groups_by_default(rt, bundle):
    out = rt.probe(bundle, "grep -E '^Groups:' /proc/self/status")
    assert h.status_field(out, "Groups") == ""


def test_umask(rt, bundle):
    bundle.process["user"]["umask"] = 0o027
    out = rt.probe(bundle, "umask; touch /tmp/f; stat -c %a /tmp/f")
    assert out.split() == ["0027", "640"]


# -- limits and privileges ----------------------------------------------------------------------------------

RLIMIT_ROWS = {
    "RLIMIT_NOFILE": "Max open files",
    "RLIMIT_NPROC": "Max processes",
    "RLIMIT_CORE": "Max core file size",
    "RLIMIT_STACK": "Max stack size",
    "RLIMIT_MEMLOCK": "Max locked memory",
}


@pytest.mark.parametrize(
    "rtype,soft,hard",
    [
        ("RLIMIT_NOFILE", 1000, 2000),
        ("RLIMIT_NOFILE", 20000, 20000),
        ("RLIMIT_NPROC", 500, 1000),
        ("RLIMIT_CORE", 0, 4096),
        ("RLIMIT_MEMLOCK", 65536, 131072),
    ],
)
def test_rlimits(rt, bundle, rtype, soft, hard):
    bundle.process["rlimits"] = [{"type": rtype, "soft": soft, "hard": hard}]
    out = rt.probe(bundle, "ulimit -n; cat /proc/self/limits")
    row = next(line for line in out.splitlines() if line.startswith(RLIMIT_ROWS[rtype]))
    got = row[len(RLIMIT_ROWS[rtype]) :].split()[:2]
    assert got == [str(soft), str(hard)], row
    if rtype == "RLIMIT_NOFILE":
        assert out.splitlines()[0] == str(soft)


def test_rlimit_above_hard_limit_fails_create(rt, bundle):
    """Raising a hard limit needs CAP_SYS_RESOURCE, which this host withholds: create must fail, not ignore it."""
    current_hard = int(
        next(
            line for line in Path("/proc/self/limits").read_text().splitlines() if line.startswith("Max open files")
        ).split()[4]
    )
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": current_hard + 1}]
    _cid, res = rt.create(bundle)
    res.fails()
    assert rt.state_dirs() == []


def test_oom_score_adj(rt, bundle):
    bundle.process["oomScoreAdj"] = 500
    assert rt.probe(bundle, "cat /proc/self/oom_score_adj").strip() == "500"


def test_oom_score_adj_unset_is_inherited(rt, bundle):
    mine = Path("/proc/self/oom_score_adj").read_text().strip()
    assert rt.probe(bundle, "cat /proc/self/oom_score_adj").strip() == mine


@pytest.mark.parametrize("nnp,want", [(True, "1"), (False, "0")])
def test_no_new_privileges(rt, bundle, nnp, want):
    bundle.process["noNewPrivileges"] = nnp
    out = rt.probe(bundle, "grep NoNewPrivs /proc/self/status")
    assert h.status_field(out, "NoNewPrivs") == want


CAP_CASES = {
    "runc-defaults": {"bounding": h.DEFAULT_CAPS, "effective": h.DEFAULT_CAPS, "permitted": h.DEFAULT_CAPS},
    "with-ambient": {
        "bounding": h.DEFAULT_CAPS,
        "effective": h.DEFAULT_CAPS,
        "permitted": h.DEFAULT_CAPS,
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    },
    "wide": {
        "bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SETUID", "CAP_SETGID"],
        # uid 0 gets effective = permitted at execve (no SECBIT_NOROOT), so both are given the same
        "effective": ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SETUID"],
        "permitted": ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SETUID"],
    },
    "none": {},
}


@pytest.mark.parametrize("case", list(CAP_CASES))
def test_capability_sets(rt, bundle, case):
    caps = CAP_CASES[case]
    bundle.process["capabilities"] = {k: list(v) for k, v in caps.items()}
    out = rt.probe(bundle, "grep ^Cap /proc/self/status")
    got = {k: int(h.status_field(out, k), 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    want = {
        "CapInh": h.cap_mask(caps.get("inheritable", [])),
        "CapPrm": h.cap_mask(caps.get("permitted", [])),
        "CapEff": h.cap_mask(caps.get("effective", [])),
        "CapBnd": h.cap_mask(caps.get("bounding", [])),
        "CapAmb": h.cap_mask(caps.get("ambient", [])),
    }
    assert {k: hex(v) for k, v in got.items()} == {k: hex(v) for k, v in want.items()}


def test_runc_spec_ambient_without_inheritable_is_not_fatal(rt, bundle):
    """`runc spec` asks for ambient capabilities without an inheritable set: the kernel cannot raise them; the
    spec says runtimes SHOULD NOT fail for capabilities that cannot be granted (runc warns and goes on)."""
    caps = list(h.DEFAULT_CAPS)
    bundle.process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps}
    out = rt.probe(bundle, "grep ^Cap /proc/self/status")
    assert int(h.status_field(out, "CapEff"), 16) == h.cap_mask(caps)
    assert int(h.status_field(out, "CapInh"), 16) == 0


def test_non_root_user_keeps_ambient_capabilities(rt, bundle):
    caps = ["CAP_NET_BIND_SERVICE"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {
        "bounding": caps,
        "effective": caps,
        "permitted": caps,
        "inheritable": caps,
        "ambient": caps,
    }
    out = rt.probe(bundle, "grep ^Cap /proc/self/status")
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(h.status_field(out, k), 16) == 1 << 10, (k, out)


# -- scheduling -----------------------------------------------------------------------------------------------


def stat_fields(text: str) -> list[str]:
    """Fields of /proc/PID/stat from field 3 on (index 0 = field 3)."""
    return text[text.rindex(")") + 2 :].split()


@pytest.mark.parametrize("policy,number,nice", [("SCHED_BATCH", 3, 5), ("SCHED_IDLE", 5, 0), ("SCHED_OTHER", 0, 7)])
def test_scheduler(rt, bundle, policy, number, nice):
    h.needs_newer_than_runc_1_1("process.scheduler")
    bundle.process["scheduler"] = {"policy": policy, "nice": nice}
    fields = stat_fields(rt.probe(bundle, "cat /proc/self/stat"))
    assert int(fields[41 - 3]) == number, fields
    if policy != "SCHED_IDLE":
        assert int(fields[19 - 3]) == nice, fields


@pytest.mark.parametrize(
    "cls,prio,want",
    [
        ("IOPRIO_CLASS_BE", 6, "best-effort: prio 6"),
        ("IOPRIO_CLASS_IDLE", 0, "idle"),
        ("IOPRIO_CLASS_RT", 3, "realtime: prio 3"),
    ],
)
def test_io_priority(rt, bundle, cls, prio, want):
    h.needs_newer_than_runc_1_1("process.ioPriority")
    bundle.process["ioPriority"] = {"class": cls, "priority": prio}
    assert rt.probe(bundle, "ionice -p $$").strip() == want


def test_exec_cpu_affinity_does_not_apply_to_init(rt, bundle):
    """config.md: execCPUAffinity "is not applicable to the container's init process" (it is for exec)."""
    h.needs_newer_than_runc_1_1("process.execCPUAffinity")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs")
    mine = h.status_field(Path("/proc/self/status").read_text(), "Cpus_allowed_list")
    bundle.process["execCPUAffinity"] = {"initial": "0", "final": str(max(os.sched_getaffinity(0)))}
    out = rt.probe(bundle, "grep Cpus_allowed_list /proc/self/status")
    assert h.status_field(out, "Cpus_allowed_list") == mine


# -- terminal and stdio ---------------------------------------------------------------------------------------


@pytest.fixture
def console_socket():
    d = tempfile.mkdtemp(prefix="it-cs-", dir="/tmp")
    path = os.path.join(d, "console.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(1)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(d)


def test_terminal_with_console_socket(rt, bundle, console_socket):
    sock, path = console_socket
    bundle.process["terminal"] = True
    bundle.sh(
        "for fd in 0 1 2; do [ -t $fd ] && echo tty$fd; done; tty; stat -c '%t:%T' /dev/console; "
        "stat -c '%t:%T' $(tty); grep -c ' /dev/console ' /proc/self/mountinfo; echo terminal-done"
    )
    cid, res = rt.create_ok(bundle, "--console-socket", path)
    msg, fds = h.recv_console(sock)
    try:
        assert msg, "the console socket message must carry a non-empty payload"
        assert len(fds) == 1, fds
        master = fds[0]
        rt.start(cid).ok()
        out = h.read_until_eof(master, timeout=15).decode(errors="replace").replace("\r\n", "\n")
    finally:
        for fd in fds:
            os.close(fd)
    assert rt.wait_status(cid, "stopped")
    lines = out.splitlines()
    assert lines[:3] == ["tty0", "tty1", "tty2"], out
    assert lines[3].startswith("/dev/pts/"), out
    assert lines[4] == lines[5], f"/dev/console is not the container's pty: {out}"
    assert lines[6] == "1", out
    assert lines[7] == "terminal-done", out
    assert res.out == "" and res.err == "", "with a terminal nothing goes to the runtime's stdio"


def test_terminal_without_console_socket_fails(rt, bundle):
    bundle.process["terminal"] = True
    _cid, res = rt.create(bundle)
    res.fails()
    assert rt.state_dirs() == []


def test_console_socket_without_terminal_fails(rt, bundle, console_socket):
    _sock, path = console_socket
    _cid, res = rt.create(bundle, None, "--console-socket", path)
    res.fails()
    assert rt.state_dirs() == []


def test_stdio_passes_through_untouched(rt, bundle):
    """No terminal: create's stdin/stdout/stderr are the container's own (the same pipe inodes), no proxy."""
    bundle.sh('read line; echo "got:$line"; echo to-stderr >&2; for fd in 0 1 2; do readlink /proc/self/fd/$fd; done')
    bundle.write()
    cid = rt.new_id("stdio")
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ino = {n: os.fstat(fd).st_ino for n, fd in ((0, in_r), (1, out_w), (2, err_w))}
    try:
        proc = subprocess.Popen(
            rt.argv("create", "--bundle", str(bundle.path), cid),
            stdin=in_r,
            stdout=out_w,
            stderr=err_w,
            env=h.runtime_env(),
        )
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        in_r = out_w = err_w = -1
        rc = proc.wait(timeout=h.TIMEOUT)
        assert rc == 0, h.read_until_eof(err_r, timeout=1)
        rt.remember(cid)
        rt.start(cid).ok()
        os.write(in_w, b"hello-stdin\n")
        os.close(in_w)
        in_w = -1
        out = h.read_until_eof(out_r).decode()
        err = h.read_until_eof(err_r).decode()
    finally:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            if fd >= 0:
                os.close(fd)
    lines = out.splitlines()
    assert lines[0] == "got:hello-stdin", out
    assert lines[1:] == [f"pipe:[{ino[0]}]", f"pipe:[{ino[1]}]", f"pipe:[{ino[2]}]"], lines
    assert err == "to-stderr\n", "create must print nothing itself on success"


def test_foreground_run_forwards_sigterm(rt, bundle):
    """A foreground `run` passes SIGTERM on to the container's process (ocipy/operations/run.py, through `_signal`)
    and exits with that process's status."""
    bundle.sh('trap "exit 42" TERM; while :; do sleep 0.1; done')
    res = rt.run(bundle, shell_prefix='(sleep 1.5; kill -TERM $$) & exec "$@"', timeout=30)
    assert res.returncode == 42, res.describe()
