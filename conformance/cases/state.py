"""runtime.md#runtimeState: the state document."""

from __future__ import annotations

import re
from pathlib import Path

from ..framework import Ctx, case
from ._util import is_alive, set_args, sh

SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
STATUSES = {"creating", "created", "running", "stopped"}


@case(
    "state.document",
    "runtime.md#runtimeState",
    "MUST",
    "When serialized in JSON, the format MUST adhere to schema/state-schema.json",
)
def _doc(t: Ctx) -> None:
    cfg = set_args(t.config(), sh("exec sleep 60"))
    cfg["annotations"] = {"org.example.conformance": "yes", "com.example.k": "v"}
    b = t.bundle(cfg)
    cid, _r = t.create(b)
    rs, st = t.state(cid)
    st = st or {}
    t.check("state prints one JSON object", isinstance(st, dict) and st, str(rs))
    t.check(
        "ociVersion is a SemVer string",
        isinstance(st.get("ociVersion"), str) and SEMVER.match(st.get("ociVersion", "")),
        repr(st.get("ociVersion")),
    )
    t.eq("id is the container's id", st.get("id"), cid)
    t.check("status is one of the defined values", st.get("status") in STATUSES, repr(st.get("status")))
    t.check("pid is an int when created", isinstance(st.get("pid"), int) and st.get("pid", 0) > 0, repr(st.get("pid")))
    t.eq("bundle is the absolute bundle path", st.get("bundle"), str(b))
    t.eq("annotations are the config's", st.get("annotations"), cfg["annotations"])
    t.start(cid)
    _, st2 = t.state(cid)
    st2 = st2 or {}
    t.check("pid is a live process when running", is_alive(st2.get("pid")), repr(st2))


@case(
    "state.bundle-absolute",
    "runtime.md#runtimeState",
    "MUST",
    "bundle (string, REQUIRED) is the absolute path to the container's bundle directory.",
)
def _relbundle(t: Ctx) -> None:
    b = t.bundle(set_args(t.config(), sh("exec sleep 60")), name="relbundle")
    cid, r = t.create("relbundle")  # relative to the case dir (the runtime's cwd)
    t.eq("create with a relative bundle path exits 0", r.rc, 0, str(r))
    _, st = t.state(cid)
    t.eq("state's bundle is the absolute path", (st or {}).get("bundle"), str(b))


@case(
    "state.pid-is-the-process",
    "runtime.md#runtimeState",
    "MUST",
    "pid (int, REQUIRED when status is created or running on Linux) is the ID of the container process.",
)
def _pid(t: Ctx) -> None:
    b = t.bundle(set_args(t.config(), ["/bin/sleep", "61"]))
    cid, _r = t.create(b)
    t.start(cid)
    t.wait_status(cid, "running")
    _, st = t.state(cid)
    pid = (st or {}).get("pid", 0)
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError as e:
        cmd = [str(e).encode()]
    t.check("state's pid runs the user program", cmd[:2] == [b"/bin/sleep", b"61"], repr(cmd))
