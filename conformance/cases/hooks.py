"""config.md#configHooks and the hook steps of runtime.md#runtimeLifecycle."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..framework import Ctx, case, host_ns
from ._util import set_args, sh

H = "config.md"
HOOK = r"""#!/bin/sh
# conformance hook: $1 name, $2 output dir, $3 exit status, $4 rootfs marker to look for, $5 seconds to sleep
name=$1 out=$2
cat > "$out/$name.stdin"
readlink /proc/self/ns/mnt > "$out/$name.mntns"
if [ -e "$4" ]; then echo yes > "$out/$name.ran"; else echo no > "$out/$name.ran"; fi
echo "$name" >> "$out/order"
[ -n "$5" ] && sleep "$5"
exit "${3:-0}"
"""
KINDS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def setup(t: Ctx, fail: str = "", extra: dict[str, list[dict[str, Any]]] | None = None, args: list[str] | None = None):
    """A config with one hook of each kind (two prestart, two poststop). Host hooks write to <case>/hooks;
    startContainer runs in the container (its path resolves there) and writes to <rootfs>/hookout."""
    out = t.dir / "hooks"
    out.mkdir(exist_ok=True)
    script = t.dir / "hook.sh"
    script.write_text(HOOK)
    script.chmod(0o755)
    cfg = set_args(t.config(), args or sh("touch /ran; exec sleep 60"))
    b = t.bundle(cfg)
    (b / "rootfs" / "hooks" / "hook.sh").write_text(HOOK)
    (b / "rootfs" / "hooks" / "hook.sh").chmod(0o755)
    (b / "rootfs" / "hookout").mkdir()
    ran = str(b / "rootfs" / "ran")
    hooks: dict[str, list[dict[str, Any]]] = {}
    for k in KINDS:
        names = [k + "-1", k + "-2"] if k in ("prestart", "poststop") else [k]
        for n in names:
            if k == "startContainer":
                h = {"path": "/hooks/hook.sh", "args": ["hook.sh", n, "/hookout", "1" if fail == n else "0", "/ran"]}
            else:
                h = {"path": str(script), "args": ["hook.sh", n, str(out), "1" if fail == n else "0", ran]}
            hooks.setdefault(k, []).append(h)
    for k, v in (extra or {}).items():
        hooks[k] = v
    cfg["hooks"] = hooks
    (b / "config.json").write_text(json.dumps(cfg, indent=2))
    return b, out, b / "rootfs" / "hookout"


def order(out: Path) -> list[str]:
    p = out / "order"
    return p.read_text().split() if p.exists() else []


def stdin_state(d: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((d / (name + ".stdin")).read_text())
    except (OSError, ValueError):
        return {}


@case("hooks.order", H + "#configHooks", "MUST", "Hooks MUST be called in the listed order.")
def _order(t: Ctx) -> None:
    b, out, cout = setup(t)
    cid, r = t.create(b)
    t.eq("create exits 0", r.rc, 0, str(r))
    t.eq(
        "create runs prestart (in listed order), createRuntime, createContainer",
        order(out),
        ["prestart-1", "prestart-2", "createRuntime", "createContainer"],
    )
    t.check("startContainer has not run after create", not (cout / "order").exists())
    rs = t.start(cid)
    t.eq("start exits 0", rs.rc, 0, str(rs))
    t.eq("startContainer ran during start (its path resolved in the container)", order(cout), ["startContainer"])
    t.eq("poststart ran before start returned", order(out)[4:], ["poststart"])
    t.kill(cid, "KILL")
    t.wait_status(cid, "stopped")
    rd = t.delete(cid)
    t.eq("delete exits 0", rd.rc, 0, str(rd))
    t.eq("delete runs poststop hooks in listed order", order(out)[5:], ["poststop-1", "poststop-2"])
    ran = {
        n: ((out if n != "startContainer" else cout) / (n + ".ran")).read_text().strip()
        if ((out if n != "startContainer" else cout) / (n + ".ran")).exists()
        else "?"
        for n in ["prestart-1", "createRuntime", "createContainer", "startContainer", "poststart"]
    }
    t.check(
        "create-time hooks and startContainer run before the user program",
        all(ran[n] == "no" for n in ["prestart-1", "createRuntime", "createContainer", "startContainer"]),
        repr(ran),
    )


@case(
    "hooks.poststart-after-program",
    H + "#configHooksPoststart",
    "MUST",
    "The poststart hooks MUST be called after the user-specified process is executed but before the start "
    "operation returns.",
)
def _poststart(t: Ctx) -> None:
    script = t.dir / "wait.sh"
    script.write_text(
        '#!/bin/sh\ni=0; while [ $i -lt 100 ] && [ ! -e "$1" ]; do sleep 0.05; i=$((i+1)); done\n'
        '[ -e "$1" ] && echo yes > "$2" || echo no > "$2"\n'
    )
    script.chmod(0o755)
    cfg = set_args(t.config(), sh("touch /ran; exec sleep 60"))
    b = t.bundle(cfg)
    cfg["hooks"] = {
        "poststart": [{"path": str(script), "args": ["wait.sh", str(b / "rootfs" / "ran"), str(t.dir / "seen")]}]
    }
    (b / "config.json").write_text(json.dumps(cfg))
    cid, _r = t.create(b)
    t.start(cid)
    seen = (t.dir / "seen").read_text().strip() if (t.dir / "seen").exists() else "hook did not run"
    t.eq("the user program is running when poststart runs", seen, "yes")


@case(
    "hooks.state-on-stdin", H + "#configHooks", "MUST", "The state of the container MUST be passed to hooks over stdin"
)
def _stdin(t: Ctx) -> None:
    b, out, cout = setup(t)
    cid, _r = t.create(b)
    t.start(cid)
    t.kill(cid, "KILL")
    t.wait_status(cid, "stopped")
    t.delete(cid)
    for n in ["prestart-1", "createRuntime", "createContainer", "startContainer", "poststart", "poststop-1"]:
        st = stdin_state(cout if n == "startContainer" else out, n)
        ok = (
            st.get("id") == cid
            and isinstance(st.get("ociVersion"), str)
            and st.get("status") in ("creating", "created", "running", "stopped")
        )
        t.check(f"{n} gets the state (id, ociVersion, status)", ok, repr(st))
        if n != "startContainer":  # startContainer runs in the container: its view of bundle is not required
            t.eq(f"{n} gets the bundle path", st.get("bundle"), str(b))
        if n != "poststop-1":
            t.check(f"{n} gets the pid", isinstance(st.get("pid"), int) and st.get("pid") > 0, repr(st.get("pid")))


@case(
    "hooks.namespaces",
    H + "#configHooks",
    "MUST",
    "prestart/createRuntime/poststart/poststop hooks MUST be executed in the runtime namespace; "
    "createContainer/startContainer in the container namespace",
)
def _ns(t: Ctx) -> None:
    b, out, cout = setup(t)
    cid, _r = t.create(b)
    _, st = t.state(cid)
    pid = (st or {}).get("pid", 0)
    try:
        cmnt = os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        cmnt = "?"
    t.start(cid)
    t.kill(cid, "KILL")
    t.wait_status(cid, "stopped")
    t.delete(cid)

    def ns(d, n):
        p = d / (n + ".mntns")
        return p.read_text().strip() if p.exists() else "hook did not run"

    for n in ["prestart-1", "createRuntime", "poststart", "poststop-1"]:
        t.eq(f"{n} runs in the runtime mount namespace", ns(out, n), host_ns("mnt"))
    t.eq("createContainer runs in the container mount namespace", ns(out, "createContainer"), cmnt)
    t.eq("startContainer runs in the container mount namespace", ns(cout, "startContainer"), cmnt)


def _failing(kind: str, phase: str):
    name = kind + ("-1" if kind == "prestart" else "")

    @case(
        f"hooks.{kind}-fails",
        "runtime.md#runtimeLifecycle",
        "MUST",
        f"If any {kind} hook fails, the runtime MUST generate an error, stop the container, and continue the "
        "lifecycle at step 12.",
    )
    def _f(t: Ctx) -> None:
        b, out, _cout = setup(t, fail=name)
        cid, r = t.create(b)
        if phase == "create":
            t.check("create fails", r.rc != 0, str(r))
        else:
            rs = t.start(cid)
            t.check("start fails", rs.rc != 0, str(rs))
        time.sleep(0.3)
        st = t.status(cid)
        t.check("the container is not left created or running", st in (None, "stopped"), f"status {st!r}")
        t.check(
            "the user program did not run" if phase != "poststart" else "the user program was stopped",
            not (b / "rootfs" / "ran").exists() if phase != "poststart" else st in (None, "stopped"),
            "status {!r}, /ran {}".format(st, (b / "rootfs" / "ran").exists()),
        )
        if st == "stopped":
            t.delete(cid)
        t.check("poststop hooks ran (step 12-13)", "poststop-1" in order(out), f"hooks run: {order(out)!r}")

    return _f


for _k, _p in (
    ("prestart", "create"),
    ("createRuntime", "create"),
    ("createContainer", "create"),
    ("startContainer", "start"),
    ("poststart", "poststart"),
):
    _failing(_k, _p)


@case(
    "hooks.poststop-fails",
    "runtime.md#runtimeLifecycle",
    "MUST",
    "If any poststop hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle continue "
    "as if the hook had succeeded.",
)
def _poststop_fail(t: Ctx) -> None:
    b, out, _cout = setup(t, fail="poststop-1", args=sh("exit 0"))
    cid, _r = t.create(b)
    t.start(cid)
    t.wait_status(cid, "stopped")
    rd = t.delete(cid)
    t.eq("delete succeeds", rd.rc, 0, str(rd))
    t.check("the next poststop hook still runs", "poststop-2" in order(out), repr(order(out)))
    rs, _ = t.state(cid)
    t.check("the container is gone", rs.rc != 0, str(rs))


@case(
    "hooks.timeout",
    H + "#configHooks",
    "MUST",
    "timeout (int, OPTIONAL) is the number of seconds before aborting the hook.",
)
def _timeout(t: Ctx) -> None:
    cfg = set_args(t.config(), sh("touch /ran"))
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]}
    b = t.bundle(cfg)
    t0 = time.monotonic()
    _cid, r = t.create(b)
    dt = time.monotonic() - t0
    t.check("create fails when a hook times out", r.rc != 0, str(r))
    t.check("the hook is aborted after its timeout (create returns within 10 s)", dt < 10, f"took {dt:.1f} s")


@case(
    "hooks.args-env",
    H + "#configHooks",
    "MUST",
    "args ... with the same semantics as execv's argv; env ... with the same semantics as environ",
)
def _argsenv(t: Ctx) -> None:
    script = t.dir / "rec.sh"
    script.write_text('#!/bin/sh\necho "$0|$1|$2" > "$OUT/args"\nenv > "$OUT/env"\ncat >/dev/null\n')
    script.chmod(0o755)
    cfg = set_args(t.config(), sh("exit 0"))
    cfg["hooks"] = {
        "createRuntime": [
            {"path": str(script), "args": ["rec.sh", "one", "two words"], "env": [f"OUT={t.dir}", "CONF_HOOK=yes"]}
        ]
    }
    _cid, _r = t.create(t.bundle(cfg))
    args = (t.dir / "args").read_text().strip() if (t.dir / "args").exists() else "hook did not run"
    env = (t.dir / "env").read_text().split("\n") if (t.dir / "env").exists() else []
    t.check("the hook gets args (after argv[0])", args.endswith("|one|two words"), repr(args))
    t.check("the hook gets env", "CONF_HOOK=yes" in env, repr(env))
