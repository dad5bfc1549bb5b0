"""A failed create leaves nothing behind; cheap security smoke tests on a created container."""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()


def _bad_mount_source(b) -> None:
    b.add_mount(destination="/mnt/x", type="bind", source=f"/nonexistent-{uuid.uuid4().hex}", options=["rbind"])


def _bad_fs_type(b) -> None:
    b.add_mount(destination="/mnt/x", type="it-no-such-fs", source="none")


def _missing_executable(b) -> None:
    b.args("it-no-such-executable")


def _failing_hook(b) -> None:
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}


def _bad_device_over_file(b) -> None:
    # a file already exists at the path and is not the requested device: the runtime MUST generate an error
    b.linux["devices"] = [{"type": "c", "path": "/etc/passwd", "major": 1, "minor": 3}]


def _bad_device_over_dir(b) -> None:
    b.linux["devices"] = [{"type": "c", "path": "/etc", "major": 1, "minor": 3}]


def _bad_device_under_file(b) -> None:
    b.linux["devices"] = [{"type": "c", "path": "/etc/passwd/it-dev", "major": 1, "minor": 3}]


def _bad_sysctl(b) -> None:
    # fails late: after namespaces, mounts and devices were set up
    b.linux["sysctl"] = {"kernel.it_no_such_knob": "1"}


def _bad_cwd_is_file(b) -> None:
    b.process["cwd"] = "/etc/passwd"


def _bad_uid_mapping(b) -> None:
    b.set_namespace("user")
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10}]
    b.process["user"] = {"uid": 500, "gid": 0}  # not mapped


FAILING = {
    "bad-mount-source": _bad_mount_source,
    "bad-fs-type": _bad_fs_type,
    "missing-executable": _missing_executable,
    "failing-hook": _failing_hook,
    "bad-device-over-file": _bad_device_over_file,
    "bad-device-over-dir": _bad_device_over_dir,
    "bad-device-under-file": _bad_device_under_file,
    "bad-sysctl": _bad_sysctl,
    "cwd-is-a-file": _bad_cwd_is_file,
    "unmapped-user": _bad_uid_mapping,
}


@pytest.mark.parametrize("case", list(FAILING))
def test_failed_create_leaves_nothing(rt, open_bundle, case):
    bundle = open_bundle
    bundle.linux["cgroupsPath"] = f"/ocipy-it-fail-{uuid.uuid4().hex[:8]}"
    cg_name = bundle.linux["cgroupsPath"].lstrip("/")
    FAILING[case](bundle)
    mounts_before = h.host_mounts()
    # children this process already had (an earlier test's unreaped zombie) are not this create's leftovers
    children_before = set(h.children_of(os.getpid()))
    with h.subreaper():
        cid, res = rt.create(bundle)
        h.wait_until(lambda: not set(h.children_of(os.getpid())) - children_before, 5)
        leftover = [
            (p, Path(f"/proc/{p}/cmdline").read_bytes())
            for p in h.children_of(os.getpid())
            if os.path.exists(f"/proc/{p}") and p not in children_before
        ]
        h.reap_children()
    res.fails()
    assert res.err.strip(), "a failed create must say why"
    assert len(res.err.strip().splitlines()) == 1 or not h.IS_OCIPY, f"one error line expected:\n{res.err}"
    assert rt.state_dirs() == [], "state directory left behind"
    assert leftover == [], f"processes left behind (re-parented to the caller): {leftover}"
    assert h.host_mounts() == mounts_before, "host mount table changed"
    assert h.cgroup_dirs_named(cg_name) == [], "cgroup directory left behind"
    assert h.cgroup_dirs_named(cid) == [], "cgroup directory left behind"


# -- security smoke tests ------------------------------------------------------------------------------------


def test_init_exe_cannot_be_opened_for_writing(rt, bundle):
    """CVE-2019-5736: the waiting init's /proc/PID/exe must not give a writable host binary."""
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    exe = f"/proc/{pid}/exe"
    target = os.readlink(exe)
    try:
        fd = os.open(exe, os.O_WRONLY)
    except OSError as exc:
        assert exc.errno in (errno.ETXTBSY, errno.EPERM), f"{exe} -> {target}: {exc}"
    else:
        os.close(fd)
        pytest.fail(f"{exe} -> {target} was opened for writing")
    if h.IS_OCIPY:
        assert target.startswith("/memfd:"), f"the init runs from {target}, not a sealed memfd"


def test_waiting_init_is_small(rt, bundle, record_property):
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = int(h.status_field(status, "VmRSS").split()[0])
    record_property("init_vmrss_kib", rss_kib)
    print(f"\nwaiting init ({h.RUNTIME}) VmRSS: {rss_kib} KiB")
    if not h.IS_OCIPY:
        pytest.skip(f"{h.RUNTIME}'s waiting init holds {rss_kib} KiB; the 1.5 MiB bound is ocipy's")
    assert rss_kib < 1536, f"waiting init holds {rss_kib} KiB"


def test_waiting_init_is_not_python(rt, bundle):
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "libpython" not in maps and "python3" not in maps, "python is mapped in the container's init"


def test_cwd_is_inside_the_root(rt, bundle):
    """CVE-2024-21626 shape: the working directory of the container process is inside its root."""
    bundle.process["cwd"] = "/"
    out = rt.probe(bundle, "pwd -P; ls -d /proc/self/cwd/bin && readlink /proc/self/cwd")
    lines = out.split()
    assert lines[0] == "/" and lines[-1] == "/", out
