"""runtime.md: the lifecycle operations (create, start, kill, delete) and their error rules."""

from __future__ import annotations

import json
import os
import time

from ..framework import V1_ROOT, Ctx, case, cgroup_dirs_of
from ._util import is_alive, set_args, sh, wait_file

RT = "runtime.md"
SLEEPER = sh("touch /ran; exec sleep 60")


def created(t: Ctx, args=None, cfg=None):
    cfg = cfg or t.config()
    set_args(cfg, args or SLEEPER)
    b = t.bundle(cfg)
    cid, r = t.create(b)
    return cid, r, b


@case(
    "lifecycle.create",
    RT + "#runtimeCreate",
    "MUST",
    "This operation MUST create a new container. ... process.args MUST NOT be applied until triggered by start",
)
def _create(t: Ctx) -> None:
    cid, r, b = created(t)
    t.eq("create exits 0", r.rc, 0, str(r))
    _, st = t.state(cid)
    t.eq("state after create is 'created'", (st or {}).get("status"), "created")
    t.check("state pid after create is a live process", is_alive((st or {}).get("pid")), f"state: {st!r}")
    time.sleep(0.2)
    t.check("the user program has not run after create", not (b / "rootfs" / "ran").exists(), "/ran exists")


@case(
    "lifecycle.start",
    RT + "#runtimeStart",
    "MUST",
    "This operation MUST run the user-specified program as specified by process.",
)
def _start(t: Ctx) -> None:
    cid, _r, b = created(t)
    rs = t.start(cid)
    t.eq("start exits 0", rs.rc, 0, str(rs))
    t.check("the user program ran after start", wait_file(b / "rootfs" / "ran"), "no /ran after 5 s")
    _, st = t.state(cid)
    t.eq("state after start is 'running'", (st or {}).get("status"), "running")


@case("lifecycle.stopped", RT + "#runtimeState", "MUST", "stopped: the container process has exited")
def _stopped(t: Ctx) -> None:
    cid, _r, _b = created(t, sh("exit 3"))
    t.start(cid)
    t.eq("state is 'stopped' after the process exits", t.wait_status(cid, "stopped"), "stopped")


@case(
    "lifecycle.kill-signal",
    RT + "#runtimeKill",
    "MUST",
    "This operation MUST send the specified signal to the container process.",
)
def _kill_signal(t: Ctx) -> None:
    cid, _r, b = created(t, sh("trap 'echo got > /sig' USR1; touch /ran; while :; do sleep 0.1; done"))
    t.start(cid)
    wait_file(b / "rootfs" / "ran")
    rk = t.kill(cid, "USR1")
    t.eq("kill USR1 exits 0", rk.rc, 0, str(rk))
    t.check("the process received SIGUSR1", wait_file(b / "rootfs" / "sig"), "no /sig written by the trap")
    rk = t.kill(cid, "KILL")
    t.eq("kill KILL exits 0", rk.rc, 0, str(rk))
    t.eq("the process is stopped after SIGKILL", t.wait_status(cid, "stopped"), "stopped")


@case(
    "lifecycle.kill-created",
    RT + "#runtimeKill",
    "MUST",
    "Attempting to send a signal to a container that is neither created nor running MUST ... generate an error "
    "(so a created container can be signalled)",
)
def _kill_created(t: Ctx) -> None:
    cid, _r, b = created(t)
    rk = t.kill(cid, "KILL")
    t.eq("kill of a created container exits 0", rk.rc, 0, str(rk))
    t.eq("a created container killed with SIGKILL is stopped", t.wait_status(cid, "stopped"), "stopped")
    t.check("the user program never ran", not (b / "rootfs" / "ran").exists(), "/ran exists")


@case(
    "lifecycle.delete",
    RT + "#runtimeDelete",
    "MUST",
    "Deleting a container MUST delete the resources that were created during the create step. "
    "Once a container is deleted its ID MAY be used by a subsequent container.",
)
def _delete(t: Ctx) -> None:
    cid, _r, b = created(t, sh("exit 0"))
    _, st = t.state(cid)
    pid = (st or {}).get("pid", 0)
    cg = cgroup_dirs_of(pid) if pid else {}
    t.start(cid)
    t.wait_status(cid, "stopped")
    rd = t.delete(cid)
    t.eq("delete of a stopped container exits 0", rd.rc, 0, str(rd))
    rs, _ = t.state(cid)
    t.check("state of a deleted container is an error", rs.rc != 0, str(rs))
    left = [
        str(V1_ROOT / c / p.lstrip("/"))
        for c, p in cg.items()
        if c and p not in ("", "/") and (V1_ROOT / c / p.lstrip("/")).is_dir() and p.startswith("/ocipy-conformance")
    ]
    t.check("the container's cgroups are removed by delete", not left, f"left: {left}")
    _cid2, r2 = t.create(b, cid=cid)
    t.eq("the id can be used again after delete", r2.rc, 0, str(r2))


@case(
    "lifecycle.delete-keeps-foreign",
    RT + "#runtimeDelete",
    "MUST",
    "resources associated with the container, but not created by this container, MUST NOT be deleted",
)
def _delete_foreign(t: Ctx) -> None:
    src = t.dir / "shared"
    src.mkdir()
    (src / "keep").write_text("keep\n")
    cfg = t.config()
    cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": str(src), "options": ["rbind", "rw"]})
    cid, _r, b = created(t, sh("touch /shared/made; exit 0"), cfg)
    t.start(cid)
    t.wait_status(cid, "stopped")
    rd = t.delete(cid)
    t.eq("delete exits 0", rd.rc, 0, str(rd))
    t.check(
        "a bind-mounted host file survives delete",
        (src / "keep").exists() and (src / "made").exists(),
        "shared dir now: %s" % (sorted(os.listdir(src)) if src.exists() else "gone"),
    )
    t.check("the bundle's rootfs survives delete", (b / "rootfs" / "probe").exists() and (b / "config.json").exists())


@case(
    "lifecycle.config-frozen",
    RT + "#runtimeLifecycle",
    "MUST",
    "Any updates to config.json after this step MUST NOT affect the container.",
)
def _frozen(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["env"].append("CONF_MARK=before")
    set_args(cfg, ["/probe"])
    b = t.bundle(cfg)
    cid, _r = t.create(b)
    cfg2 = json.loads((b / "config.json").read_text())
    cfg2["process"]["env"][-1] = "CONF_MARK=after"
    cfg2["process"]["args"] = ["/probe", "changed"]
    (b / "config.json").write_text(json.dumps(cfg2))
    t.start(cid)
    t.wait_status(cid, "stopped")
    out = t.output(cid)
    facts = json.loads(out.splitlines()[0]) if out.startswith("{") else {}
    t.check("env edited after create is not used", "CONF_MARK=before" in facts.get("env", []), out[:200])
    t.eq("args edited after create are not used", facts.get("argv"), ["/probe"])


# ---- error rules ("MUST generate an error", "MUST have no effect")


@case(
    "errors.create-no-id",
    RT + "#runtimeCreate",
    "MUST",
    "This operation MUST generate an error if it is not provided ... the container ID",
)
def _create_noid(t: Ctx) -> None:
    b = t.bundle(set_args(t.config(), SLEEPER))
    r = t.rt("create", "--bundle", str(b))
    t.check("create without an id fails", r.rc != 0, str(r))


@case(
    "errors.create-duplicate-id",
    RT + "#runtimeCreate",
    "MUST",
    "If the ID provided is not unique ... MUST generate an error and a new container MUST NOT be created.",
)
def _create_dup(t: Ctx) -> None:
    cid, _r, b = created(t)
    _, st1 = t.state(cid)
    b2 = t.bundle(set_args(t.config(), SLEEPER))
    r2 = t.rt("create", "--bundle", str(b2), cid)
    t.check("create with a used id fails", r2.rc != 0, str(r2))
    _, st2 = t.state(cid)
    t.check(
        "the existing container is unchanged",
        st1
        and st2
        and st1.get("pid") == st2.get("pid")
        and st2.get("status") == "created"
        and st2.get("bundle") == str(b),
        f"before {st1!r} after {st2!r}",
    )


@case(
    "errors.create-invalid-id",
    RT + "#runtimeCreate",
    "MUST",
    "If the ID provided is ... not valid in any other way, the implementation MUST generate an error",
)
def _create_badid(t: Ctx) -> None:
    b = t.bundle(set_args(t.config(), SLEEPER))
    r = t.rt("create", "--bundle", str(b), "../escape")
    t.containers.append("../escape")
    t.check("create with id '../escape' fails", r.rc != 0, str(r))
    t.check("no file was created outside the state root", not (t.env.workdir / "escape").exists())


@case(
    "errors.create-missing-rootfs",
    "config.md#configRoot",
    "MUST",
    "A directory MUST exist at the path declared by the field.",
)
def _create_norootfs(t: Ctx) -> None:
    cfg = set_args(t.config(), SLEEPER)
    cfg["root"]["path"] = "no-such-rootfs"
    b = t.bundle(cfg)
    cid, r = t.create(b)
    t.check("create with a missing root.path fails", r.rc != 0, str(r))
    rs, _ = t.state(cid)
    t.check("no container exists after the failed create", rs.rc != 0, str(rs))


@case(
    "errors.failed-create-undone",
    RT + "#runtimeErrors",
    "MUST",
    "generating an error MUST leave the state of the environment as if the operation were never attempted",
)
def _create_undone(t: Ctx) -> None:
    cfg = set_args(t.config(), SLEEPER)
    cfg["mounts"].append(
        {"destination": "/x", "type": "bind", "source": str(t.dir / "missing-src"), "options": ["bind"]}
    )
    cg = cfg["linux"]["cgroupsPath"]
    b = t.bundle(cfg)
    cid, r = t.create(b)
    t.check("create with a bind mount of a missing source fails", r.rc != 0, str(r))
    rs, _ = t.state(cid)
    t.check("no container exists after the failed create", rs.rc != 0, str(rs))
    left = [c.name for c in V1_ROOT.iterdir() if (c / cg.lstrip("/")).is_dir()] if V1_ROOT.is_dir() else []
    t.check("no cgroup is left after the failed create", not left, f"{cg} left in {left}")
    cfg2 = set_args(t.config(), SLEEPER)
    _, r2 = t.create(t.bundle(cfg2), cid=cid)
    t.eq("the id is free after the failed create", r2.rc, 0, str(r2))


@case(
    "errors.state-no-id",
    RT + "#runtimeQueryState",
    "MUST",
    "This operation MUST generate an error if it is not provided the ID of a container. "
    "Attempting to query a container that does not exist MUST generate an error.",
)
def _state_noid(t: Ctx) -> None:
    r = t.rt("state")
    t.check("state without an id fails", r.rc != 0, str(r))
    r = t.rt("state", "conf-no-such-container")
    t.check("state of a container that does not exist fails", r.rc != 0, str(r))


@case(
    "errors.start-no-id",
    RT + "#runtimeStart",
    "MUST",
    "This operation MUST generate an error if it is not provided the container ID.",
)
def _start_noid(t: Ctx) -> None:
    r = t.rt("start")
    t.check("start without an id fails", r.rc != 0, str(r))
    r = t.rt("start", "conf-no-such-container")
    t.check("start of a container that does not exist fails", r.rc != 0, str(r))


@case(
    "errors.start-running",
    RT + "#runtimeStart",
    "MUST",
    "Attempting to start a container that is not created MUST have no effect on the container and MUST generate "
    "an error.",
)
def _start_running(t: Ctx) -> None:
    cid, _r, b = created(t, sh("echo x >> /count; exec sleep 60"))
    t.start(cid)
    wait_file(b / "rootfs" / "count")
    _, st1 = t.state(cid)
    r2 = t.start(cid)
    t.check("start of a running container fails", r2.rc != 0, str(r2))
    time.sleep(0.2)
    _, st2 = t.state(cid)
    t.check(
        "the running container is unchanged (status, pid)",
        st1 and st2 and st2.get("status") == "running" and st1.get("pid") == st2.get("pid"),
        f"before {st1!r} after {st2!r}",
    )
    cnt = (b / "rootfs" / "count").read_text().count("x") if (b / "rootfs" / "count").exists() else 0
    t.eq("the user program ran exactly once", cnt, 1)


@case(
    "errors.start-stopped",
    RT + "#runtimeStart",
    "MUST",
    "Attempting to start a container that is not created MUST have no effect on the container and MUST generate "
    "an error.",
)
def _start_stopped(t: Ctx) -> None:
    cid, _r, b = created(t, sh("echo x >> /count"))
    t.start(cid)
    t.wait_status(cid, "stopped")
    r2 = t.start(cid)
    t.check("start of a stopped container fails", r2.rc != 0, str(r2))
    t.eq("the container is still stopped", t.status(cid), "stopped")
    time.sleep(0.1)
    cnt = (b / "rootfs" / "count").read_text().count("x") if (b / "rootfs" / "count").exists() else 0
    t.eq("the user program did not run again", cnt, 1)


@case(
    "errors.start-no-process",
    RT + "#runtimeStart",
    "MUST",
    "This operation MUST generate an error if process was not set.",
)
def _start_noprocess(t: Ctx) -> None:
    cfg = t.config()
    del cfg["process"]
    b = t.bundle(cfg)
    cid, r = t.create(b)
    rs = t.start(cid) if r.rc == 0 else None
    t.check(
        "create or start fails without process",
        r.rc != 0 or (rs is not None and rs.rc != 0),
        f"create: {r}; start: {rs}",
    )


@case(
    "errors.kill-no-id",
    RT + "#runtimeKill",
    "MUST",
    "This operation MUST generate an error if it is not provided the container ID.",
)
def _kill_noid(t: Ctx) -> None:
    r = t.rt("kill")
    t.check("kill without an id fails", r.rc != 0, str(r))
    r = t.rt("kill", "conf-no-such-container", "KILL")
    t.check("kill of a container that does not exist fails", r.rc != 0, str(r))


@case(
    "errors.kill-stopped",
    RT + "#runtimeKill",
    "MUST",
    "Attempting to send a signal to a container that is neither created nor running MUST have no effect on the "
    "container and MUST generate an error.",
)
def _kill_stopped(t: Ctx) -> None:
    cid, _r, _b = created(t, sh("exit 0"))
    t.start(cid)
    t.wait_status(cid, "stopped")
    rk = t.kill(cid, "KILL")
    t.check("kill of a stopped container fails", rk.rc != 0, str(rk))
    t.eq("the container is still stopped", t.status(cid), "stopped")


@case(
    "errors.delete-no-id",
    RT + "#runtimeDelete",
    "MUST",
    "This operation MUST generate an error if it is not provided the container ID.",
)
def _delete_noid(t: Ctx) -> None:
    r = t.rt("delete")
    t.check("delete without an id fails", r.rc != 0, str(r))
    r = t.rt("delete", "conf-no-such-container")
    t.check("delete (without --force) of a container that does not exist fails", r.rc != 0, str(r))


@case(
    "errors.delete-running",
    RT + "#runtimeDelete",
    "MUST",
    "Attempting to delete a container that is not stopped MUST have no effect on the container and MUST generate "
    "an error.",
)
def _delete_running(t: Ctx) -> None:
    cid, _r, _b = created(t)
    t.start(cid)
    _, st1 = t.state(cid)
    rd = t.delete(cid)
    t.check("delete of a running container fails", rd.rc != 0, str(rd))
    _, st2 = t.state(cid)
    t.check(
        "the running container is unchanged",
        st1
        and st2
        and st2.get("status") == "running"
        and st1.get("pid") == st2.get("pid")
        and is_alive(st2.get("pid")),
        f"before {st1!r} after {st2!r}",
    )


@case(
    "errors.delete-created",
    RT + "#runtimeDelete",
    "MUST",
    "Attempting to delete a container that is not stopped MUST have no effect on the container and MUST generate "
    "an error.",
)
def _delete_created(t: Ctx) -> None:
    cid, _r, _b = created(t)
    _, st1 = t.state(cid)
    rd = t.delete(cid)
    t.check("delete of a created container fails", rd.rc != 0, str(rd))
    _, st2 = t.state(cid)
    t.check(
        "the created container is unchanged",
        st1 and st2 and st2.get("status") == "created" and st1.get("pid") == st2.get("pid"),
        f"before {st1!r} after {st2!r}",
    )
