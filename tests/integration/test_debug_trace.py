"""`--debug` traces each step of create (and start, run, delete) and every op of the plan the init executes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h  # loaded by conftest.py

pytestmark = h.pytestmark()


def test_debug_run_traces_create_the_plan_and_the_init(rt: Any, bundle: Any) -> None:
    h.needs_newer_than_runc_1_1("ocipy's debug lines")
    bundle.args("true")
    bundle.write()
    cid = rt.new_id("debug")
    res = rt.call("--debug", "run", "--bundle", str(bundle.path), cid).ok()
    lines = [line.removeprefix("ocipy: debug: ") for line in res.err.splitlines()]
    assert len(lines) >= 47, res.err  # runc 1.5.1 writes 47 for a run
    ops = [line for line in lines if line.startswith("plan op ")]
    (count,) = [int(line.split()[1]) for line in lines if line.startswith("plan: ")]
    assert len(ops) == count > 10
    assert any("OP_PIVOT_ROOT /root/path" in op for op in ops)
    assert any("OP_MOUNT /mounts/0" in op for op in ops)
    for step in (
        f"create {cid}: bundle",
        "config.json valid",
        "made and locked",
        "cgroups: ",
        "ocipy-init started",
        "init: container process exists",
        "init: set up: waiting on the exec fifo",
        "state.json written",
        f"start {cid}: writing the exec fifo",
        "run: the process exited with status 0",
        f"state dir of {cid} removed",
    ):
        assert any(line.startswith(step) or step in line for line in lines), step


def test_debug_json_lines_go_to_the_log(rt: Any, bundle: Any, tmp_path: Path) -> None:
    h.needs_newer_than_runc_1_1("ocipy's debug lines")
    bundle.args("true")
    cid, _ = rt.create_ok(bundle)
    log = tmp_path / "log.json"
    rt.call("--debug", "--log", str(log), "--log-format", "json", "start", cid).ok()
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["level"] == "debug" and r["msg"].startswith(f"start {cid}") for r in recs), recs


def test_init_reports_each_op_it_ran_and_stops_before_seccomp(rt: Any, bundle: Any) -> None:
    # with --debug the init sends "op N done" after each op; a seccomp filter may forbid (or kill on) sending, so the
    # trace stops before OP_SECCOMP (a permissive profile here: the trace must stop all the same)
    h.needs_newer_than_runc_1_1("ocipy's debug lines")
    bundle.args("true")
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}],
    }
    # without noNewPrivileges the filter goes in before the created point (with it, it comes last, after start)
    bundle.process["noNewPrivileges"] = False
    bundle.write()
    cid = rt.new_id("trace")
    res = rt.call("--debug", "run", "--bundle", str(bundle.path), cid).ok()
    lines = [line.removeprefix("ocipy: debug: ") for line in res.err.splitlines()]
    done = [line for line in lines if line.startswith("init: op ")]
    assert done, res.err
    ops = {int(line.split()[2].rstrip(":")): line for line in lines if line.startswith("plan op ")}
    seccomp = [i for i, line in ops.items() if "OP_SECCOMP" in line]
    assert seccomp, "the plan has no OP_SECCOMP"
    traced = [int(line.split()[2]) for line in done]
    assert traced == list(range(len(traced))), traced  # in order, none skipped
    assert max(traced) < seccomp[0]
    assert "OP_PIVOT_ROOT /root/path" in " ".join(done)
