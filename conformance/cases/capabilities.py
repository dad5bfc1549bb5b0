"""config.md#configLinuxProcess: capabilities."""

from __future__ import annotations

from ..framework import Ctx, case
from ._util import capmask, capnames

A = "config.md#configLinuxProcess"


def check_sets(t: Ctx, f, want, prefix=""):
    for field, key in (
        ("bounding", "CapBnd"),
        ("effective", "CapEff"),
        ("permitted", "CapPrm"),
        ("inheritable", "CapInh"),
        ("ambient", "CapAmb"),
    ):
        got = f.get(key)
        ok = got is not None and int(got, 16) == capmask(want.get(field, []))
        t.check(
            f"{prefix}{field} set is exactly {field}", ok, f"got {capnames(got)}, want {sorted(want.get(field, []))}"
        )


@case(
    "caps.root",
    A,
    "MUST",
    "capabilities (object, OPTIONAL) is an object containing arrays that specifies the sets of capabilities for "
    "the process",
)
def _root(t: Ctx) -> None:
    """uid 0: execve(2) makes permitted = inheritable | bounding and effective = permitted, so the sets are chosen
    consistent with that (inheritable within bounding)."""
    cfg = t.config()
    full = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT"]
    caps = {
        "bounding": full,
        "effective": full,
        "permitted": full,
        "inheritable": ["CAP_NET_RAW"],
        "ambient": ["CAP_NET_RAW"],
    }
    cfg["process"]["capabilities"] = caps
    f = t.probe(cfg)
    check_sets(t, f, caps)


@case(
    "caps.non-root",
    A,
    "MUST",
    "ambient (array of strings, OPTIONAL) the ambient field is an array of ambient capabilities that are kept "
    "for the process",
)
def _nonroot(t: Ctx) -> None:
    """A non-root user without file capabilities: after execve(2) permitted = effective = ambient, while bounding
    and inheritable are kept as configured."""
    cfg = t.config()
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = {
        "bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"],
        "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_NET_RAW"],
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_NET_RAW"],
        "effective": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    f = t.probe(cfg)
    want = dict(cfg["process"]["capabilities"])
    want["permitted"] = want["effective"] = ["CAP_NET_BIND_SERVICE"]
    check_sets(t, f, want, "non-root: ")


@case(
    "caps.none",
    A,
    "MUST",
    "effective/bounding/permitted (array of strings, OPTIONAL): the capabilities that are kept for the process",
)
def _none(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["capabilities"] = {
        "bounding": [],
        "effective": [],
        "permitted": [],
        "inheritable": [],
        "ambient": [],
    }
    f = t.probe(cfg)
    check_sets(t, f, {}, "empty: ")


@case(
    "caps.unknown-name",
    A,
    "SHOULD",
    "Runtimes SHOULD NOT fail if the container configuration requests capabilities that cannot be granted",
)
def _unknown(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["capabilities"] = {
        k: ["CAP_KILL", "CAP_NOT_A_CAPABILITY"] for k in ("bounding", "effective", "permitted")
    }
    f = t.probe(cfg, name="a config with an unknown capability runs")
    t.check(
        "the known capability is granted",
        f.get("CapEff") is not None and int(f["CapEff"], 16) & capmask(["CAP_KILL"]),
        repr(f.get("CapEff")),
    )
