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
