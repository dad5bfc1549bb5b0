"""config-linux.md#configLinuxSysctl."""

from __future__ import annotations

from ..framework import Ctx, case
from ._util import req, set_args, sh

S = "config-linux.md#configLinuxSysctl"


@case(
    "sysctl.applied",
    S,
    "MUST",
    "sysctl (object, OPTIONAL) allows kernel parameters to be modified at runtime for the container.",
)
def _applied(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmnb": "16385", "net.core.somaxconn": "1111"}
    f = t.probe(cfg, *("sysctl:" + k for k in cfg["linux"]["sysctl"]))
    for k, v in cfg["linux"]["sysctl"].items():
        t.eq(f"{k} is {v}", ((req(f, "sysctl:" + k) or {}).get("data") or "").strip(), v)


@case(
    "sysctl.unknown",
    "runtime.md#runtimeCreate",
    "MUST",
    "If the runtime cannot apply a property as specified in the configuration, it MUST generate an error",
)
def _unknown(t: Ctx) -> None:
    cfg = set_args(t.config(), sh("touch /ran"))
    cfg["linux"]["sysctl"] = {"net.ipv4.conformance_no_such_knob": "1"}
    b = t.bundle(cfg)
    cid, r = t.create(b)
    rs = t.start(cid) if r.rc == 0 else None
    t.check(
        "create (or start) fails with a sysctl that does not exist",
        r.rc != 0 or (rs and rs.rc != 0),
        f"create: {r} start: {rs}",
    )
