"""What outside suites (runtime-tools, engine scenarios run beside runc 1.5.1) found, each met the way a caller
meets it (issue 11). Every test here failed before its fix."""

from __future__ import annotations

import json
import time

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()


def _deny(*names: str, nnp: bool) -> dict:
    """A profile allowing everything but `names` (EPERM): an older allow-list that lacks newer syscalls behaves the
    same for them."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": list(names), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


# -- a seccomp profile without the syscalls the runtime itself needs -----------------------------------------------


@pytest.mark.parametrize("nnp", [False, True])
def test_profile_without_close_range_runs(rt, bundle, nnp):
    """The runtime-tools default profile lacks close_range: the init used it after loading the filter and died."""
    bundle.process["noNewPrivileges"] = nnp
    bundle.linux["seccomp"] = _deny("close_range", nnp=nnp)
    bundle.sh("echo ran")
    res = rt.run(bundle)
    assert res.returncode == 0 and res.out == "ran\n", res.describe()


def test_nnp_profile_only_execve_after_the_filter(rt, bundle):
    """With noNewPrivileges the filter is loaded last: a profile may deny what waiting for `start` needs."""
    bundle.process["noNewPrivileges"] = True
    bundle.linux["seccomp"] = _deny("close_range", "fcntl", "poll", "ppoll", "rt_sigaction", nnp=True)
    bundle.args("echo", "ran")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped")
    res = rt.run(bundle)
    assert res.returncode == 0 and res.out == "ran\n", res.describe()


# -- a failure after `create` returned is never silent ----------------------------------------------------------------


def _bad_binary(bundle) -> None:
    bad = bundle.rootfs / "bad"
    bad.write_bytes(b"\x7fELF-not-really\x00\x01\x02")
    bad.chmod(0o755)
    bundle.args("/bad")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_exec_failure_after_create_is_one_line_on_stderr_and_in_the_log(rt, bundle, tmp_path, fmt):
    _bad_binary(bundle)
    log = tmp_path / "ocipy.log"
    bundle.write()
    cid = rt.new_id("late")
    created = rt.call("--log", str(log), "--log-format", fmt, "create", "--bundle", str(bundle.path), cid).ok()
    rt.remember(cid)
    rt.call("--log", str(log), "--log-format", fmt, "start", cid).ok()
    assert rt.wait_status(cid, "stopped")
    # the container's stderr is the one create was given: the init writes there itself
    assert h.wait_until(lambda: "exec failed" in created.err, 5), created.describe()
    lines = [ln for ln in created.err.splitlines() if ln.strip()]
    assert lines == ["ocipy: exec failed: /process/args (exec /bad): /bad: exec format error"], created.describe()
    text = log.read_text()
    if fmt == "json":
        entries = [json.loads(ln) for ln in text.splitlines()]
        err = [e for e in entries if e["level"] == "error"]
        assert [e["msg"] for e in err] == ["exec failed: /process/args (exec /bad): /bad: exec format error"]
        assert err[0]["time"].endswith("Z") and err[0]["time"][:2] == "20"
    else:
        assert 'level=error msg="exec failed: /process/args (exec /bad): /bad: exec format error"' in text, text


def test_run_reports_a_late_exec_failure(rt, bundle):
    _bad_binary(bundle)
    res = rt.run(bundle)
    assert res.returncode == 1, res.describe()
    assert "exec failed: /process/args (exec /bad): /bad: exec format error" in res.err, res.describe()


def test_late_failure_leaves_the_container_stopped_not_hanging(rt, bundle):
    _bad_binary(bundle)
    cid, _ = rt.create_ok(bundle)
    t0 = time.monotonic()
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped", timeout=5), time.monotonic() - t0
    rt.delete(cid).ok()
