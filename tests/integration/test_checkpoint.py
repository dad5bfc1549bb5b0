"""checkpoint/restore with the real CRIU ($OCIPY_CACHE/bin/criu, built by scripts/refs from ../shared/criu).

Every container counts (a shell variable, so a restart would start again from 1) and writes the count where the test
can read it from the host; "continues" means the first value after the restore is above the last one before it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h
import pytest

CACHE = Path(os.environ.get("OCIPY_CACHE", "/var/cache/ocipy"))
CRIU = CACHE / "bin" / "criu"


def _criu_reason() -> str | None:
    if h.skip_reason():
        return h.skip_reason()
    if not h.IS_OCIPY:
        return "checkpoint tests drive ocipy's own criu flags"
    if not os.access(CRIU, os.X_OK):
        return f"{CRIU} is absent (scripts/refs criu builds it from ../shared/criu)"
    run = subprocess.run([str(CRIU), "check"], capture_output=True, text=True, timeout=60, check=False)
    if run.returncode != 0:
        return f"criu check fails here: {(run.stdout + run.stderr).strip().splitlines()[-1:]}"
    return None


REASON = _criu_reason()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=REASON or ""), pytest.mark.timeout(180)]

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /data/count.tmp; mv /data/count.tmp /data/count; sleep 0.05; done"


def criu(rt: h.Runtime, verb: str, *args: str, **kw: Any) -> h.Result:
    return rt.call("--criu", str(CRIU), verb, *args, **kw)


def counter_bundle(bundle: h.Bundle, tmp_path: Path, script: str = COUNTER) -> Path:
    """The counter writes /data/count on a bind mount of a host dir (so binds are exercised too)."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    bundle.add_mount(destination="/data", type="bind", source=str(data), options=["rbind", "rw"])
    bundle.sh(script)
    return data


def read_count(data: Path, name: str = "count") -> int:
    try:
        return int((data / name).read_text().split()[-1])
    except (FileNotFoundError, ValueError, IndexError):
        return 0


def wait_count(data: Path, above: int, name: str = "count", timeout: float = 15.0) -> int:
    assert h.wait_until(lambda: read_count(data, name) > above, timeout=timeout), (
        f"count stayed at {read_count(data, name)} (wanted > {above})"
    )
    return read_count(data, name)


def run_detached(rt: h.Runtime, bundle: h.Bundle, cid: str | None = None) -> str:
    cid = cid or rt.new_id("cr")
    rt.run(bundle, "-d", cid=cid).ok()
    rt.remember(cid)
    return cid


def restore(rt: h.Runtime, bundle: h.Bundle, cid: str, images: Path, *flags: str, **kw: Any) -> h.Result:
    rt.ids.add(cid)
    res = criu(rt, "restore", "-d", "--bundle", str(bundle.path), "--image-path", str(images), *flags, cid, **kw)
    if res.returncode == 0:
        rt.remember(cid)
    return res


def no_traces(rt: h.Runtime, cid: str, tmp_path: Path) -> None:
    """A failed restore left nothing: no state dir, no cgroup, no mount."""
    assert cid not in rt.state_dirs()
    assert not h.cgroup_dirs_named(cid)
    assert not [m for m in h.host_mounts() if "criu-root" in m or str(tmp_path) in m]


def test_counter_continues_after_checkpoint_and_restore(rt, bundle, tmp_path):
    # seccomp and no_new_privs are restored by CRIU itself: the restored init still has both
    bundle.process["noNewPrivileges"] = True
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["swapon"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    data = counter_bundle(bundle, tmp_path)
    cid = run_detached(rt, bundle)
    old_pid = rt.pid(cid)
    wait_count(data, 5)
    images = tmp_path / "images"
    criu(rt, "checkpoint", "--image-path", str(images), cid).ok()
    assert cid not in rt.state_dirs(), "checkpoint without --leave-running removes the container"
    assert not h.cgroup_dirs_named(cid)
    stopped_at = read_count(data)
    time.sleep(0.3)
    assert read_count(data) == stopped_at, "the container still counts after the checkpoint"
    assert (images / "dump.log").exists() and (images / "descriptors.json").exists()

    restore(rt, bundle, cid, images).ok()
    st = rt.state(cid)
    assert st["status"] == "running"
    assert st["pid"] != old_pid or not h.pid_alive(old_pid)
    after = wait_count(data, stopped_at)
    assert after > stopped_at
    status = Path(f"/proc/{st['pid']}/status").read_text()
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.MULTILINE), status
    assert re.search(r"^Seccomp:\s+2$", status, re.MULTILINE), status
    # the restored container is an ordinary one: exec, ps, kill, delete
    assert rt.call("exec", cid, "cat", "/data/count").ok().out.strip()
    rt.delete(cid, "--force").ok()
    assert cid not in rt.state_dirs()
    assert not h.cgroup_dirs_named(cid)


def test_leave_running(rt, bundle, tmp_path):
    data = counter_bundle(bundle, tmp_path)
    cid = run_detached(rt, bundle)
    wait_count(data, 3)
    images = tmp_path / "images"
    criu(rt, "checkpoint", "--leave-running", "--image-path", str(images), cid).ok()
    assert rt.status(cid) == "running"
    at = read_count(data)
    wait_count(data, at)  # still counting
    rt.delete(cid, "--force").ok()
    stopped = read_count(data)
    # the image holds the state at the checkpoint: restoring it counts on from there (not from 1)
    (data / "count").write_text("0\n")
    restore(rt, bundle, cid, images).ok()
    resumed = wait_count(data, 0)
    assert at - 2 <= resumed - 1 <= stopped, (at, resumed, stopped)


def test_restore_under_a_new_id_and_into_an_existing_one(rt, bundle, tmp_path):
    data = counter_bundle(bundle, tmp_path)
    cid = run_detached(rt, bundle)
    wait_count(data, 3)
    images = tmp_path / "images"
    criu(rt, "checkpoint", "--image-path", str(images), cid).ok()
    stopped_at = read_count(data)
    new = rt.new_id("renamed")
    restore(rt, bundle, new, images).ok()
    assert rt.status(new) == "running"
    assert cid not in rt.state_dirs()
    wait_count(data, stopped_at)
    ids = [c["id"] for c in json.loads(rt.list("--format", "json").ok().out or "[]")]
    assert new in ids and cid not in ids
    # restoring again into the id that now exists: one line, the running container untouched
    pid = rt.pid(new)
    res = restore(rt, bundle, new, images).fails("container with given ID already exists")
    assert len(res.err.strip().splitlines()) == 1
    assert rt.pid(new) == pid and rt.status(new) == "running"


def test_pre_dump_then_dump(rt, bundle, tmp_path):
    data = counter_bundle(bundle, tmp_path)
    cid = run_detached(rt, bundle)
    wait_count(data, 3)
    images = tmp_path / "images"
    res = criu(rt, "checkpoint", "--pre-dump", "--image-path", str(images / "pre"), cid)
    if res.returncode != 0:
        # this kernel has no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY): CRIU cannot track memory, and says so
        res.fails("memory change tracking")
        assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
        assert rt.status(cid) == "running", "a failed pre-dump leaves the container running"
        pytest.skip("pre-dump needs memory tracking, which this kernel lacks (criu check --feature mem_dirty_track)")
    assert rt.status(cid) == "running", "pre-dump leaves the container running"
    criu(rt, "checkpoint", "--parent-path", "../pre", "--image-path", str(images / "final"), cid).ok()
    stopped_at = read_count(data)
    restore(rt, bundle, cid, images / "final").ok()
    wait_count(data, stopped_at)


# busybox nc copies badly from a pipe: both ends run a script on the socket instead (-e)
TCP = "ip link set lo up; nc -l -p 5000 -e /srv.sh & sleep 0.5; nc 127.0.0.1 5000 -e /cli.sh & wait"
TCP_SCRIPTS = {
    "srv.sh": "#!/bin/sh\ncat > /data/recv\n",
    "cli.sh": "#!/bin/sh\ni=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done\n",
}


def _contiguous(text: str) -> bool:
    nums = [int(x) for x in text.split()]
    return bool(nums) and nums == list(range(1, len(nums) + 1))


def test_tcp_connection_in_own_netns_survives_with_tcp_established(rt, bundle, tmp_path):
    for caps in ("bounding", "effective", "permitted"):
        bundle.process["capabilities"][caps] = [*h.DEFAULT_CAPS, "CAP_NET_ADMIN"]
    for name, text in TCP_SCRIPTS.items():
        (bundle.rootfs / name).write_text(text)
        (bundle.rootfs / name).chmod(0o755)
    data = counter_bundle(bundle, tmp_path, TCP)
    cid = run_detached(rt, bundle)
    wait_count(data, 5, name="recv")
    images = tmp_path / "images"
    # an established connection is something CRIU will not dump unless asked: CRIU's own reason, one line, the log
    res = criu(rt, "checkpoint", "--image-path", str(tmp_path / "refused"), cid).fails("criu dump", "tcp")
    assert "dump.log" in res.err and len(res.err.strip().splitlines()) == 1
    assert rt.status(cid) == "running"
    criu(rt, "checkpoint", "--tcp-established", "--image-path", str(images), cid).ok()
    stopped_at = read_count(data, "recv")
    restore(rt, bundle, cid, images, "--tcp-established").ok()
    wait_count(data, stopped_at + 5, name="recv")
    text = (data / "recv").read_text()
    assert _contiguous(text), "the stream has a gap or restarted: the connection was not kept"


def test_terminal_container(rt, bundle, tmp_path):
    bundle.process["terminal"] = True
    bundle.sh("i=0; while true; do i=$((i+1)); echo n=$i; sleep 0.05; done")
    sock_path = str(tmp_path / "console.sock")
    cid = rt.new_id("tty")

    def listen(path: str) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(1)
        return s

    masters: list[int] = []
    try:
        with listen(sock_path) as lst:
            bundle.write()
            res = rt.call("run", "-d", "--console-socket", sock_path, "--bundle", str(bundle.path), cid)
            rt.ids.add(cid)
            res.ok()
            _, fds = h.recv_console(lst)
            masters += fds
        rt.remember(cid)
        before = _read_numbers(masters[0], 5)
        images = tmp_path / "images"
        criu(rt, "checkpoint", "--image-path", str(images), cid).ok()
        os.unlink(sock_path)
        with listen(sock_path) as lst:
            import threading

            got: list[int] = []
            t = threading.Thread(target=lambda: got.extend(h.recv_console(lst)[1]))
            t.start()
            restore(rt, bundle, cid, images, "--console-socket", sock_path).ok()
            t.join(30)
            masters += got
        assert got, "no pty master came to the console socket"
        after = _read_numbers(got[0], 5)
        assert after[0] > before[-1], (before, after)
        tty = rt.call("exec", cid, "readlink", "/proc/1/fd/1").ok().out.strip()
        assert tty.startswith("/dev/pts/"), tty
    finally:
        for fd in masters:
            os.close(fd)


def _read_numbers(fd: int, count: int, timeout: float = 15.0) -> list[int]:
    import select

    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            buf += os.read(fd, 4096)
        nums = [int(x) for x in re.findall(rb"n=(\d+)\r?\n", buf)]
        if len(nums) >= count:
            return nums
    raise AssertionError(f"no {count} numbers from the terminal: {buf[-200:]!r}")


def test_stdio_pipes_come_from_the_restoring_caller(rt, bundle, tmp_path):
    bundle.sh("i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done")
    cid = rt.new_id("pipe")
    bundle.write()
    rt.ids.add(cid)
    # stderr on named host files (pytest's capture file is an O_TMPFILE CRIU cannot reopen through /proc)
    err1 = open(tmp_path / "run.err", "wb")  # noqa: SIM115
    err2 = open(tmp_path / "restore.err", "wb")  # noqa: SIM115
    first = subprocess.Popen(
        [*rt.argv("run", "-d", "--bundle", str(bundle.path), cid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=err1,
        env=h.runtime_env(),
    )
    assert first.stdout is not None
    first.wait(30)
    assert first.returncode == 0
    rt.remember(cid)
    line = first.stdout.readline()
    assert line.strip().isdigit()
    images = tmp_path / "images"
    criu(rt, "checkpoint", "--image-path", str(images), cid).ok()
    first.stdout.close()
    second = subprocess.Popen(
        [
            *rt.argv("--criu", str(CRIU), "restore", "-d", "--bundle", str(bundle.path)),
            "--image-path",
            str(images),
            cid,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=err2,
        env=h.runtime_env(),
    )
    assert second.stdout is not None
    second.wait(30)
    assert second.returncode == 0, (tmp_path / "restore.err").read_text()
    rt.remember(cid)
    n = int(second.stdout.readline())
    assert n > int(line), "the restored process writes to the new caller's pipe, counting on"
    rt.delete(cid, "--force").ok()
    second.stdout.close()
    err1.close()
    err2.close()


def test_failures_are_one_line_and_leave_nothing(rt, bundle, tmp_path):
    data = counter_bundle(bundle, tmp_path)
    cid = run_detached(rt, bundle)
    wait_count(data, 2)
    # no criu
    res = rt.call("--criu", str(tmp_path / "no-criu"), "checkpoint", "--image-path", str(tmp_path / "x"), cid)
    res.fails("no-criu", "not found")
    assert len(res.err.strip().splitlines()) == 1 and rt.status(cid) == "running"
    # not a checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()
    new = rt.new_id("bad")
    restore(rt, bundle, new, empty).fails("no checkpoint there")
    no_traces(rt, new, tmp_path)
    # an image CRIU cannot restore (its process tree removed): CRIU's reason, the log, nothing left behind
    images = tmp_path / "images"
    criu(rt, "checkpoint", "--leave-running", "--image-path", str(images), cid).ok()
    (images / "pstree.img").unlink()
    res = restore(rt, bundle, new, images).fails("criu restore", "restore.log")
    assert len(res.err.strip().splitlines()) == 1
    no_traces(rt, new, tmp_path)
    # a created container cannot be checkpointed (runc's rule)
    created, _ = rt.create_ok(bundle)
    criu(rt, "checkpoint", "--image-path", str(tmp_path / "y"), created).fails("created")


def _recorder(marks: Path, name: str) -> dict[str, Any]:
    """A host hook appending `name status pid` to marks/order (the state comes on stdin)."""
    script = (
        f'read -r s; st=$(echo "$s" | sed -n \'s/.*"status": *"\\([a-z]*\\)".*/\\1/p\'); '
        f'pid=$(echo "$s" | sed -n \'s/.*"pid": *\\([0-9]*\\).*/\\1/p\'); echo {name} $st $pid >> {marks}/order'
    )
    return {"path": "/bin/sh", "args": ["sh", "-c", script]}


def test_hooks_at_restore(rt, bundle, tmp_path):
    """prestart and createRuntime when CRIU has made the namespaces (runc's setup-namespaces point), poststart once
    the process runs, poststop at delete; createContainer/startContainer do not run again."""
    marks = tmp_path / "marks"
    marks.mkdir()
    data = counter_bundle(bundle, tmp_path)
    cid = run_detached(rt, bundle)
    wait_count(data, 2)
    images = tmp_path / "images"
    criu(rt, "checkpoint", "--image-path", str(images), cid).ok()
    kinds = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
    bundle.config["hooks"] = {k: [_recorder(marks, k)] for k in kinds if k not in ("createContainer", "startContainer")}
    bundle.config["hooks"]["startContainer"] = [{"path": "/bin/false"}]  # would fail the restore if it ran
    bundle.write()
    restore(rt, bundle, cid, images).ok()
    pid = rt.pid(cid)
    rt.delete(cid, "--force").ok()
    lines = [line.split() for line in (marks / "order").read_text().splitlines()]
    assert [ln[0] for ln in lines] == ["prestart", "createRuntime", "poststart", "poststop"], lines
    assert lines[0][1] == "creating" and lines[2][1:] == ["running", str(pid)], lines
    assert lines[0][2] == str(pid), "prestart sees the restored init's pid"


def test_foreground_restore_waits_and_exits_with_the_status(rt, bundle, tmp_path):
    data = counter_bundle(
        bundle,
        tmp_path,
        "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo $i > /data/count.tmp; mv /data/count.tmp /data/count; "
        "sleep 0.05; done; exit 7",
    )
    cid = run_detached(rt, bundle)
    wait_count(data, 3)
    images = tmp_path / "images"
    criu(rt, "checkpoint", "--image-path", str(images), cid).ok()
    stopped_at = read_count(data)
    assert stopped_at < 60
    rt.ids.add(cid)
    res = criu(rt, "restore", "--bundle", str(bundle.path), "--image-path", str(images), cid, timeout=60)
    assert res.returncode == 7, res.describe()
    assert read_count(data) == 60
    assert cid not in rt.state_dirs(), "a foreground restore removes the container when its process exits"
    assert not h.cgroup_dirs_named(cid)


def test_paused_container_and_bad_flags(rt, bundle, tmp_path):
    data = counter_bundle(bundle, tmp_path)
    cid = run_detached(rt, bundle)
    wait_count(data, 2)
    res = criu(rt, "checkpoint", "--manage-cgroups-mode", "bogus", "--image-path", str(tmp_path / "x"), cid)
    res.fails("--manage-cgroups-mode bogus")
    criu(rt, "checkpoint", "--empty-ns", "ipc", "--image-path", str(tmp_path / "x"), cid).fails("--empty-ns ipc")
    criu(rt, "checkpoint", "--parent-path", "/abs", "--image-path", str(tmp_path / "x"), cid).fails("relative")
    assert rt.status(cid) == "running"
    rt.call("pause", cid).ok()
    images = tmp_path / "images"
    criu(rt, "checkpoint", "--manage-cgroups-mode", "soft", "--image-path", str(images), cid).ok()
    stopped_at = read_count(data)
    restore(rt, bundle, cid, images, "--manage-cgroups-mode", "soft").ok()
    assert rt.status(cid) == "running"
    wait_count(data, stopped_at)
