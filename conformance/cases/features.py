"""features.md / features-linux.md: the features document, and that the runtime accepts what it declares."""

from __future__ import annotations

import json
import re

from ..framework import Ctx, case

F = "features.md"
TOP = {
    "ociVersionMin",
    "ociVersionMax",
    "hooks",
    "mountOptions",
    "linux",
    "annotations",
    "potentiallyUnsafeConfigAnnotations",
}
HOOKS = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
NS = {"cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"}
MUST_OPTS = [
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
]


def vkey(v: str):
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", v or "")
    return tuple(int(x) for x in m.groups()) if m else (-1,)


def features(t: Ctx):
    r = t.rt("features")
    try:
        return r, json.loads(r.out)
    except ValueError:
        return r, None


@case(
    "features.document",
    F + "#featuresSpecificationVersion",
    "MUST",
    "ociVersionMax ... MUST NOT be less than the value of the ociVersionMin property. The Features structure MUST "
    "NOT contain properties that are not defined in this version",
)
def _doc(t: Ctx) -> None:
    r, d = features(t)
    t.check("features prints a JSON object", isinstance(d, dict), str(r))
    d = d or {}
    t.check(
        "ociVersionMin and ociVersionMax are versions",
        vkey(d.get("ociVersionMin")) >= (0,) and vkey(d.get("ociVersionMax")) >= (0,),
        repr((d.get("ociVersionMin"), d.get("ociVersionMax"))),
    )
    t.check("ociVersionMax >= ociVersionMin", vkey(d.get("ociVersionMax")) >= vkey(d.get("ociVersionMin")))
    t.check("no top-level property outside the spec", not (set(d) - TOP), repr(sorted(set(d) - TOP)))
    t.check("hooks names are spec hook names", set(d.get("hooks") or []) <= HOOKS, repr(d.get("hooks")))
    t.check(
        "linux.namespaces are spec namespace types",
        set((d.get("linux") or {}).get("namespaces") or []) <= NS,
        repr((d.get("linux") or {}).get("namespaces")),
    )


@case(
    "features.mount-options",
    F + "#featuresMountOptions",
    "SHOULD",
    "mountOptions: the recognized names of the mount options (the MUST options of config.md)",
)
def _opts(t: Ctx) -> None:
    _r, d = features(t)
    missing = [o for o in MUST_OPTS if o not in ((d or {}).get("mountOptions") or [])]
    t.check("every MUST mount option is listed", not missing, f"missing: {missing}")


def _accepts(which: str):
    @case(
        f"features.accepts-{which}",
        F + "#featuresSpecificationVersion",
        "MUST",
        f"The runtime MUST accept this value as the ociVersion property of config.json ({which}).",
    )
    def _f(t: Ctx) -> None:
        r, d = features(t)
        v = (d or {}).get(which)
        if not v:
            t.check(f"features declares {which}", False, str(r))
            return
        cfg = t.config()
        cfg["ociVersion"] = v
        t.probe(cfg, name="a config with ociVersion {} ({}) runs".format(which, "the declared value"))

    return _f


_accepts("ociVersionMin")
_accepts("ociVersionMax")
