"""The exec plan (ocipy/execplan.py): cgroups and labels before the namespaces, user first and mount last, the
process section shared with create but without the `created` handshake, and a pty never bound on /dev/console."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocipy import planfmt
from ocipy.execplan import compile_exec
from ocipy.plan import HostFacts, PlanError
from ocipy.spec.config import Process
from ocipy.spec.default import default_config
from ocipy.spec.load import load_config

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
