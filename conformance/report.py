"""TAP per runtime, the side-by-side markdown report, and the host facts that explain what cannot pass here."""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
from pathlib import Path
from typing import Any

from .framework import REGISTRY, CaseResult, Runtime

# Why runc (Debian's 1.1.5) fails a case on this machine. Every runc failure must be listed here: the report
# command exits non-zero when one is not, so a case can never fail for the reference runtime unexplained.
# "runc" entries are runc's own behaviour (a bug or a missing feature of 1.1.5); "host" entries are a limit of
# this machine.
RUNC_EXPLAINED: dict[str, str] = {
    "errors.delete-created": "runc: `runc delete` (without --force) of a *created* container kills and deletes it "
    "(runc's documented behaviour since 1.0) instead of refusing, as the spec's 'not stopped' rule requires.",
    "process.domainname": "runc: 1.1.5 does not set `domainname` (the container sees `(none)`).",
    "process.scheduler": "runc: `process.scheduler` was added to the spec after runc 1.1.5 (runc 1.2); 1.1.5 "
    "ignores the unknown property instead of applying it.",
    "process.io-priority": "runc: `process.ioPriority` is newer than runc 1.1.5 (runc 1.2); 1.1.5 ignores it.",
    "mounts.option-defaults": "runc: 1.1.5 does not know the `defaults` option and passes it to mount(2) as "
    "filesystem data, which tmpfs rejects (EINVAL), so create fails.",
    "mounts.rootfs-propagation": "runc: with `rootfsPropagation: unbindable` 1.1.5 fails create (mount(2) of the "
    "rootfs with MS_BIND|MS_REC|MS_UNBINDABLE: EINVAL), and with `shared` the container's / is not a shared mount.",
    "ns.time-offsets": "runc: 1.1.5 does not know the `time` namespace (added in runc 1.2): "
    '`namespace {"time" ""} does not exist`.',
    "devices.existing-file-mismatch": "runc: 1.1.5 ignores EEXIST from mknod(2), so an existing regular file at a "
    "device path is silently kept instead of being an error.",
    "hooks.order": "runc: 1.1.5 runs `poststart` hooks during `create` (before the user program is started), not "
    "during `start`.",
    "hooks.poststart-after-program": "runc: same as hooks.order: 1.1.5 runs `poststart` during `create`, so the "
    "user program has not run when the hook runs.",
    "hooks.startContainer-fails": "runc: 1.1.5 runs `startContainer` hooks in its init after `start` has "
    "returned, so a failing startContainer hook does not make `start` fail (the init exits instead).",
    "hooks.poststop-fails": "runc: 1.1.5 stops at the first failing `poststop` hook; the remaining poststop hooks "
    "are not run.",
    "process.personality": "runc: `linux.personality` is newer than runc 1.1.5 (runc 1.2); 1.1.5 ignores it.",
    "cgroups.pids-zero": "runc: 1.1.5 treats `pids.limit: 0` as 'no limit' and leaves pids.max at `max`.",
}


# Cases ocipy fails on purpose, and why (a choice, documented; not a bug to fix).
OCIPY_CHOICES: dict[str, str] = {
    "errors.delete-created": "ocipy keeps runc's behaviour: `delete` without --force of a *created* container kills "
    "and removes it. containerd's shim and Podman call plain `delete` on created containers whose start never "
    "came (shared/design/callers.md), and would leak them if it failed.",
}


def tap(results: list[CaseResult]) -> str:
    lines: list[str] = []
    n = 0
    for r in results:
        if r.status == "skip":
            n += 1
            lines.append("ok %d - %s # SKIP %s" % (n, r.id, r.skip_reason))
            continue
        for a in r.assertions:
            n += 1
            lines.append("%s %d - %s: %s" % ("ok" if a.ok else "not ok", n, r.id, a.name))
            if not a.ok and a.detail:
                lines.extend("  # " + x for x in a.detail.splitlines()[:20])
    return "TAP version 13\n1..%d\n" % n + "\n".join(lines) + "\n"


def _read(p: str) -> str:
    try:
        return Path(p).read_text().strip()
    except OSError:
        return ""


def host_facts() -> list[str]:
    facts = ["kernel %s %s, %d CPUs" % (platform.release(), platform.machine(), os.cpu_count() or 0)]
    v1, v2 = [], []
    with open("/proc/self/mounts") as f:
        for line in f:
            _dev, point, typ, opts = line.split()[:4]
            if typ == "cgroup":
                v1.append(
                    next(o for o in opts.split(",") if o not in ("rw", "ro", "relatime", "nosuid", "nodev", "noexec"))
                    if True
                    else point
                )
            elif typ == "cgroup2":
                v2.append((point, _read(os.path.join(point, "cgroup.controllers")) or "no controllers"))
    layout = "hybrid" if v1 and v2 else ("v1" if v1 else "v2")
    facts.append(
        "cgroups {}: v1 controllers {}; v2 {}".format(
            layout, ", ".join(sorted(v1)) or "none", "; ".join("at {} with {}".format(*p) for p in v2) or "not mounted"
        )
    )
    missing = [c for c in ("net_cls", "net_prio", "hugetlb", "rdma") if c not in " ".join(v1)]
    if missing:
        facts.append("no v1 {} controller{}".format(", ".join(missing), "s" if len(missing) > 1 else ""))
    if not any(os.path.exists("/sys/fs/cgroup/blkio/" + f) for f in ("blkio.weight", "blkio.bfq.weight")):
        facts.append("blkio has no weight file (no CFQ/BFQ weight interface in this kernel)")
    cap_eff = 0
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("CapEff:"):
            cap_eff = int(line.split()[1], 16)
    facts.append(
        "the suite runs as uid %d%s"
        % (os.getuid(), "" if cap_eff >> 24 & 1 else ", without CAP_SYS_RESOURCE (a hard rlimit cannot be raised)")
    )
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)
    facts.append(f"hard rlimits: nofile {nofile[1]}, nproc {nproc[1]}")
    lsm = _read("/sys/kernel/security/lsm")
    facts.append(
        "LSMs: %s (no AppArmor or SELinux)" % (lsm or "none")
        if "apparmor" not in lsm and "selinux" not in lsm
        else f"LSMs: {lsm}"
    )
    pid1 = _read("/proc/1/comm")
    facts.append("PID 1 is {}{}".format(pid1, "" if pid1 == "systemd" else " (not systemd: no systemd cgroup driver)"))
    with open("/proc/self/mounts") as f:
        facts.append(
            "resctrl %s"
            % ("mounted" if any(line.split()[2] == "resctrl" for line in f) else "not mounted (no Intel RDT)")
        )
    return facts


def _cell(r: CaseResult) -> str:
    if r is None:
        return "-"
    if r.status == "skip":
        return "skip"
    ok = sum(a.ok for a in r.assertions)
    return "%s (%d/%d)" % ("**pass**" if r.status == "pass" else "FAIL", ok, len(r.assertions))


def markdown(
    runtimes: list[Runtime], results: dict[str, list[CaseResult]], versions: dict[str, str], command: str
) -> str:
    by = {name: {r.id: r for r in res} for name, res in results.items()}
    names = [rt.name for rt in runtimes]
    meta = {c.id: c for c in REGISTRY}
    ids = [c.id for c in REGISTRY if any(c.id in by[n] for n in names)]
    out: list[str] = []
    w = out.append
    w("# Runtime-spec conformance on this machine")
    w("")
    w(f"Generated by `{command}` ({datetime.date.today().isoformat()}). Do not edit: regenerate.")
    w("")
    w(
        "Each case names the spec section and the MUST/SHOULD it checks, builds a bundle (a busybox rootfs with a "
        "static probe), drives the runtime only through its command line, and checks the result from the outside "
        "(state, exit codes, what a refused operation left unchanged) and from inside the container (the probe's "
        "facts). A cell is `pass`/`FAIL` with the assertions that held, or `skip` when this host cannot run the case."
    )
    w("")
    w("## Host")
    w("")
    for f in host_facts():
        w("- " + f)
    w("")
    w("## Summary")
    w("")
    w("| runtime | version | cases passed | failed | skipped | assertions held |")
    w("| --- | --- | --- | --- | --- | --- |")
    for n in names:
        res = results[n]
        held = sum(a.ok for r in res for a in r.assertions)
        total = sum(len(r.assertions) for r in res)
        w(
            "| %s | %s | %d | %d | %d | %d/%d |"
            % (
                n,
                versions.get(n, ""),
                sum(r.status == "pass" for r in res),
                sum(r.status == "fail" for r in res),
                sum(r.status == "skip" for r in res),
                held,
                total,
            )
        )
    distinct = {(r.id, a.name) for n in names for r in results[n] for a in r.assertions}
    w("")
    w("%d cases, %d distinct assertions." % (len(ids), len(distinct)))
    w("")
    w("## Cases")
    w("")
    w("| case | spec | level | requirement | {} |".format(" | ".join(names)))
    w("| --- | --- | --- | --- | {} |".format(" | ".join("---" for _ in names)))
    for i in ids:
        c = meta[i]
        req = c.req.replace("|", "\\|")
        w(
            "| `{}` | [{}](https://github.com/opencontainers/runtime-spec/blob/main/{}) | {} | {} | {} |".format(
                i, c.spec, c.spec, c.level, req, " | ".join(_cell(by[n].get(i)) for n in names)
            )
        )
    if "runc" in by:
        failed = [i for i in ids if by["runc"].get(i) and by["runc"][i].status == "fail"]
        w("")
        w("## Where runc fails here, and why")
        w("")
        if not failed:
            w("runc passes every case it runs.")
        for i in failed:
            w("- `{}`: {}".format(i, RUNC_EXPLAINED.get(i, "**UNEXPLAINED**")))
            for a in by["runc"][i].assertions:
                if not a.ok:
                    w("  - failed: {} — `{}`".format(a.name, a.detail.replace("`", "'").replace("\n", " ")[:300]))
    for n in names:
        fails = [r for r in results[n] if r.status == "fail"]
        if n == "runc" or not fails:
            continue
        w("")
        w(f"## {n} failures in detail")
        w("")
        for r in fails:
            note = ""
            if "runc" in by and by["runc"].get(r.id) and by["runc"][r.id].status == "pass":
                note = " (runc passes this case)"
            w(f"- `{r.id}`{note}")
            if n == "ocipy" and r.id in OCIPY_CHOICES:
                w(f"  - why: {OCIPY_CHOICES[r.id]}")
            for a in r.assertions:
                if not a.ok:
                    w("  - {} — `{}`".format(a.name, a.detail.replace("`", "'").replace("\n", " ")[:300]))
    skips = {(i, by[n][i].skip_reason) for n in names for i in ids if by[n].get(i) and by[n][i].status == "skip"}
    if skips:
        w("")
        w("## Skipped here (host facts)")
        w("")
        for i, why in sorted(skips):
            w(f"- `{i}`: {why}")
    w("")
    return "\n".join(out)


def expected(results: list[CaseResult], version: str) -> dict[str, Any]:
    return {"runtime": "runc", "version": version, "cases": {r.id: r.status for r in results}}


def unexplained(results: list[CaseResult]) -> list[str]:
    return [r.id for r in results if r.status == "fail" and r.id not in RUNC_EXPLAINED]


def dump_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
