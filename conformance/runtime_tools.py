"""The opencontainers runtime-tools validation suite (validation/NAME/NAME.t) against ocipy and runc 1.5.1.

    python -m conformance.runtime_tools run [--runtime ocipy|runc|PATH] [--jobs N] [--json FILE] [NAME...]
    python -m conformance.runtime_tools report      # both runtimes: docs/validation.md + expected_runtime_tools.json

The suite is built by scripts/refs into $OCIPY_CACHE/runtime-tools (default /var/cache/ocipy). Each file runs as
`RUNTIME=... validation/NAME/NAME.t` from the suite's directory, with:

- its own TMPDIR (the suite makes its bundles with os.MkdirTemp("", "ocitest")), so no file sees another's bundles and
  everything it leaves is found again: mounts under that directory are unmounted deepest first (linux_ns_itype runs
  a container without a mount namespace, so a runtime that runs it mounts proc, sysfs, /dev, ... under the bundle in
  the host's mount namespace) and the directory is removed only once no mount is left beneath it;
- its own state root: RUNTIME is a two-line wrapper `exec RUNTIME --root DIR "$@"`, so leftover containers are the
  ones in DIR (deleted with `delete --force`), never another user's;
- a timeout (the whole process group is killed).

Files that use fixed host resources (the cgroup files all use /cgrouptest or testdir/cgrouptest/container) run one
at a time; the others run `--jobs` at a time.

A file is *clean* when it exits 0, prints a TAP plan and has no `not ok` line (the suite's README).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
EXPECTED = HERE / "expected_runtime_tools.json"
REPORT = PROJECT / "docs" / "validation.md"
RUNC_VERSION = "1.5.1"


def cache_dir() -> Path:
    return Path(os.environ.get("OCIPY_CACHE") or "/var/cache/ocipy")


def suite_dir() -> Path:
    return cache_dir() / "runtime-tools"


def runc_path() -> Path:
    return cache_dir() / "bin" / f"runc-{RUNC_VERSION}"


def list_files(suite: Path | None = None) -> list[str]:
    suite = suite or suite_dir()
    return sorted(p.parent.name for p in (suite / "validation").glob("*/*.t") if p.stem == p.parent.name)


def exclusive(name: str) -> bool:
    """Files that must not run beside another (fixed cgroup paths, host-wide effects)."""
    return "cgroups" in name or name in ("delete_resources", "linux_ns_itype")


# -- results


@dataclass
class FileResult:
    name: str
    runtime: str
    status: str  # clean | fail | timeout | error
    rc: int | None
    planned: int | None
    passed: int
    failed: int
    skipped: int
    secs: float
    failures: list[str] = field(default_factory=list)  # "not ok N - desc: diagnostic" (short)
    detail: str = ""  # stderr tail or runner problem when there is no TAP failure to show

    @property
    def clean(self) -> bool:
        return self.status == "clean"

    def reason(self) -> str:
        if self.status == "timeout":
            return f"timed out after {self.secs:.0f} s" + (f"; {self.failures[0]}" if self.failures else "")
        if self.failures:
            more = f" (+{len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
            return self.failures[0] + more
        return self.detail or f"exit {self.rc}"


_NOT_OK = re.compile(r"^not ok (\d+)\s*-?\s*(.*)$")
_OK = re.compile(r"^ok (\d+)\s*-?\s*(.*)$")
_PLAN = re.compile(r"^1\.\.(\d+)")


def _squash(text: str, limit: int = 260) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _diagnostic(block: list[str]) -> str:
    """The interesting part of a YAML diagnostic block: error/message/expected/actual values, else all of it."""
    text = "\n".join(block)
    keys = []
    for key in ("error", "message", "expected", "actual", "reference"):
        m = re.search(r'^\s*"?%s"?\s*:\s*(.+)$' % key, text, re.MULTILINE)
        if m:
            keys.append(f"{key}: {m.group(1).strip().rstrip(',')}")
    return "; ".join(keys) if keys else text


def parse_tap(out: str) -> tuple[int | None, int, int, int, list[str]]:
    planned = None
    passed = failed = skipped = 0
    failures: list[str] = []
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if m := _PLAN.match(line):
            planned = int(m.group(1))
        elif m := _NOT_OK.match(line):
            failed += 1
            block: list[str] = []
            if i < len(lines) and lines[i].strip() == "---":
                i += 1
                while i < len(lines) and lines[i].strip() != "...":
                    block.append(lines[i])
                    i += 1
                i += 1
            desc = m.group(2)
            diag = _diagnostic(block) if block else ""
            failures.append(_squash(f"not ok {m.group(1)} - {desc}" + (f": {diag}" if diag else "")))
        elif m := _OK.match(line):
            if "# SKIP" in line.upper():
                skipped += 1
            else:
                passed += 1
    return planned, passed, failed, skipped, failures


# -- running


def _mounts_under(path: str) -> list[str]:
    prefix = path.rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4].encode().decode("unicode_escape")
            if mnt == path or mnt.startswith(prefix):
                found.append(mnt)
    return found


def _unmount_all(path: str) -> list[str]:
    """Unmount everything beneath path, deepest first; returns what is still mounted."""
    for _ in range(5):
        mounts = _mounts_under(path)
        if not mounts:
            return []
        for mnt in sorted(set(mounts), key=lambda m: (-m.count("/"), m)):
            subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)
    return _mounts_under(path)


# The cgroup files make their containers under these fixed names in every hierarchy; a runtime removes the
# container's cgroup on delete but, like runc, leaves the parents it made.
SUITE_CGROUPS = ("cgrouptest", "testdir")


def _suite_cgroups() -> set[str]:
    """The suite's fixed cgroup directories that exist now, in every mounted hierarchy."""
    found = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                for name in SUITE_CGROUPS:
                    top = os.path.join(fields[4], name)
                    if os.path.isdir(top):
                        found.update(d for d, _, _ in os.walk(top))
    return found


def _remove_cgroups(made: set[str]) -> None:
    """rmdir the suite's cgroups that one file made, deepest first (a cgroup still in use stays)."""
    for d in sorted(made, key=lambda d: -d.count("/")):
        try:
            os.rmdir(d)
        except OSError:
            pass


class Runtime:
    """A runtime command made to use a private state root through a wrapper script."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv

    def wrapper(self, workdir: Path) -> tuple[Path, Path]:
        root = workdir / "state"
        root.mkdir(mode=0o700)
        script = workdir / "runtime"
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in self.argv)
        script.write_text(f"#!/bin/sh\nexec {quoted} --root '{root}' \"$@\"\n")
        script.chmod(0o755)
        return script, root

    def version(self) -> str:
        try:
            out = subprocess.run([*self.argv, "--version"], capture_output=True, text=True, timeout=30, check=False)
            return (out.stdout.strip().splitlines() or ["?"])[0]
        except (OSError, subprocess.SubprocessError):
            return "?"


def resolve(spec: str, workdir: Path) -> Runtime:
    if spec == "ocipy":
        # this checkout's ocipy, through the launcher callers use (-IS, absolute paths)
        path = workdir / "ocipy"
        subprocess.run([sys.executable, "-m", "ocipy.launcher", str(path)], cwd=PROJECT, check=True)
        return Runtime("ocipy", [str(path)])
    if spec == "runc":
        path = runc_path()
        if not os.access(path, os.X_OK):
            raise SystemExit(f"runtime_tools: {path} is absent (scripts/refs builds it)")
        return Runtime(f"runc {RUNC_VERSION}", [str(path)])
    path = shutil.which(spec) or spec
    if not os.access(path, os.X_OK):
        raise SystemExit(f"runtime_tools: runtime {spec!r} is not an executable")
    return Runtime(os.path.basename(path), [os.path.abspath(path)])


def _cleanup_state(rt: Runtime, root: Path) -> list[str]:
    left = []
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not entry.name.startswith(("@", ".")):
                left.append(entry.name)
                subprocess.run(
                    [*rt.argv, "--root", str(root), "delete", "--force", entry.name],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
    return left


def run_file(rt: Runtime, name: str, timeout: float, suite: Path, tap_dir: Path | None = None) -> FileResult:
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ocipy-rt-"))
    work.chmod(0o755)
    tmp = work / "tmp"
    tmp.mkdir()
    script, root = rt.wrapper(work)
    env = dict(os.environ, RUNTIME=str(script), TMPDIR=str(tmp))
    status, rc, out, err = "error", None, "", ""
    cgroups_before = _suite_cgroups() if exclusive(name) else None  # exclusive files run one at a time
    try:
        p = subprocess.Popen(
            [str(suite / "validation" / name / f"{name}.t")],
            cwd=suite,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        try:
            out, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            status = "timeout"
    except OSError as exc:
        err = f"cannot run: {exc}"
    finally:
        leftovers = _cleanup_state(rt, root)
        if cgroups_before is not None:
            _remove_cgroups(_suite_cgroups() - cgroups_before)
        still = _unmount_all(str(work))
        if still:
            err += f"\nrunner: left in place because mounts remain beneath it: {work}"
        else:
            shutil.rmtree(work, ignore_errors=True)
    planned, passed, failed, skipped, failures = parse_tap(out)
    if status != "timeout" and rc is not None:
        status = "clean" if rc == 0 and planned is not None and failed == 0 else "fail"
    detail = ""
    if status != "clean" and not failures:
        tail = [ln for ln in err.splitlines() if ln.strip()][-3:]
        detail = _squash(("exit %s, no TAP failure; " % rc) + " | ".join(tail)) if tail else f"exit {rc}, no plan"
        if planned is None and rc == 0:
            detail = "no TAP plan printed"
    if leftovers and status == "clean":
        detail = f"left containers behind: {leftovers}"
    if tap_dir is not None:
        tap_dir.mkdir(parents=True, exist_ok=True)
        tag = "".join(ch for ch in rt.name if ch.isalnum())
        (tap_dir / f"{name}.{tag}.tap").write_text(out + ("\n# stderr:\n" + err if err else ""))
    return FileResult(
        name, rt.name, status, rc, planned, passed, failed, skipped, time.monotonic() - t0, failures, detail
    )


def run_all(
    rt: Runtime,
    names: list[str],
    *,
    jobs: int = 2,
    timeout: float = 120,
    quiet: bool = False,
    tap_dir: Path | None = None,
) -> dict[str, FileResult]:
    suite = suite_dir()
    lock = threading.Lock()
    results: dict[str, FileResult] = {}

    def one(name: str) -> None:
        if exclusive(name):
            with lock:
                r = run_file(rt, name, timeout, suite, tap_dir)
        else:
            r = run_file(rt, name, timeout, suite, tap_dir)
        results[name] = r
        if not quiet:
            print(f"{rt.name[:8]:8} {r.status:7} {name:40} {r.secs:5.1f}s", file=sys.stderr, flush=True)

    # the exclusive files first, one worker on them while the others take the rest
    order = sorted(names, key=lambda n: (not exclusive(n), n))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        list(ex.map(one, order))
    return {n: results[n] for n in names}


# -- the report

# Why a file is not clean where the cause is the host or the test, not the runtime (checked against the spec text).
EXPLAINED: dict[str, str] = {
    "delete": "runtime.md says deleting a container that is not stopped MUST be an error, and the file counts "
    "`created` as not stopped; ocipy, like runc, deletes a created container without --force, which containerd "
    "and Podman rely on to clean up a create that is not followed by start (a deliberate departure)",
    "delete_resources": "the test compares the pids limit through a pointer (runtime-spec's Go type made "
    "`Pids.Limit` a *int64), so `expect` prints an address and it can never match; the limit is set (1000)",
    "linux_cgroups_pids": "test bug: `Pids.Limit` is compared as a pointer (see delete_resources)",
    "linux_cgroups_relative_pids": "test bug: `Pids.Limit` is compared as a pointer (see delete_resources)",
    "hooks_stdin": "runc gives the create-time hooks status `creating`; runtime.md defines `creating` as lifecycle "
    "step 2 and those hooks are steps 3-5, after it, so ocipy gives `created` as the file expects",
    "linux_cgroups_blkio": "host: the v1 blkio hierarchy has no weight/leaf_weight files (no CFQ/BFQ weights on "
    "this kernel); ocipy names the field and the missing file",
    "linux_cgroups_relative_blkio": "host: no blkio weight files (see linux_cgroups_blkio)",
    "linux_cgroups_hugetlb": "host: hugetlb is only a cgroup v2 controller here (hybrid layout), the file reads "
    "v1 hugetlb files",
    "linux_cgroups_relative_hugetlb": "host: no v1 hugetlb controller (see linux_cgroups_hugetlb)",
    "linux_cgroups_memory": "linux.resources.memory.kernel (kmem) is deprecated in runtime-spec 1.3 and has no "
    "effect on kernels >= 6.x; every other memory value is checked ok",
    "linux_cgroups_relative_memory": "kernel memory (kmem) as in linux_cgroups_memory",
    "linux_cgroups_network": "host: no net_cls/net_prio controllers (host.md); ocipy refuses the field with that "
    "reason",
    "linux_cgroups_relative_network": "host: no net_cls/net_prio controllers",
    "linux_mount_label": "host: no SELinux; a label the host cannot apply is an error",
    "linux_process_apparmor_profile": "host: no AppArmor; a profile the host cannot apply is an error",
    "misc_props": "test bug: the unknown-annotation case runs /runtimetest without copying it into the bundle, so "
    "create fails on the missing executable (runc the same)",
    "mounts": "the file passes tmpfs data (mode=, size=) to bind mounts; the kernel would drop them, so ocipy (like "
    "runc) refuses an option a bind mount cannot take, naming /mounts/N/options/K",
    "pidfile": "racy test: the container runs `true` and the file sends `kill KILL` right after `start`; when "
    "`true` has exited first (most runs, for both runtimes) runtime.md says kill of a stopped container MUST be an "
    "error, which both runtimes give; the file is clean only when the kill wins the race (never required in CI)",
    "killsig": "racy test: the file signals right after `start`; a signal that arrives before the container's sh "
    "has set its trap is ignored (sh is pid 1 of its namespace), the container runs on and `delete` fails; both "
    "runtimes lose the race now and then (runc 1.5.1 about half the runs here), so CI re-runs it",
    "process_capabilities": "host: the file asks for every capability; this host's root lacks CAP_SYS_RESOURCE "
    "(host.md), so capset cannot grant it",
    "process_capabilities_fail": "outdated test: it wants an error for an unknown capability, runtime-spec 1.3 "
    "config.md says it MUST be logged as a warning and runtimes SHOULD NOT fail (ocipy warns and runs, as runc)",
    "process_rlimits": "test: the Go runtimetest reads RLIMIT_NOFILE soft 3999 for a configured 3000 even when "
    "started directly under `prlimit --nofile=3000:4000` (its Go runtime changes its own limit); a shell in the "
    "container shows 3000/4000 in /proc/self/limits. runc fails earlier (seccomp rule for getegid32)",
    "process_rlimits_fail": "the file prints no TAP plan when the runtime errors as it should, so no runtime can be "
    "clean by the suite's own definition (ocipy: `/process/rlimits/N/type: unknown rlimit type`)",
    "start": 'test bug: the check for "start MUST generate an error if process was not set" passes only when '
    "start succeeds; ocipy creates the process-less container and start errors (runtime.md); runc refuses at create",
}


# Files whose clean result only shows that the runtime won a race the test sets up (see EXPLAINED): a clean run
# does not make them required in CI (tests/test_runtime_tools.py).
NEVER_REQUIRED = frozenset({"pidfile"})


def write_report(ocipy: dict[str, FileResult], runc: dict[str, FileResult], versions: dict[str, str]) -> str:
    names = sorted(set(ocipy) | set(runc))
    n_o = sum(r.clean for r in ocipy.values())
    n_r = sum(r.clean for r in runc.values())
    lines = [
        "# The runtime-tools validation suite: ocipy and runc 1.5.1",
        "",
        "Generated by `python -m conformance.runtime_tools report` (as root; the suite and runc are built by",
        "`scripts/refs`). Do not edit by hand. A file is clean when it exits 0, prints its TAP plan and has no",
        "`not ok` line. `tests/test_runtime_tools.py` runs every file against ocipy in CI and fails when ocipy is not",
        "clean on a file runc is clean on here (`conformance/expected_runtime_tools.json`, written with this page).",
        "",
        f"- ocipy: **{n_o} of {len(names)}** files clean ({versions.get('ocipy', '?')})",
        f"- runc {RUNC_VERSION}: **{n_r} of {len(names)}** files clean ({versions.get('runc', '?')})",
        f"- host: {os.uname().release}, suite {suite_dir().resolve()}",
        "",
        "| file | ocipy | runc 1.5.1 | why a runtime is not clean |",
        "| --- | --- | --- | --- |",
    ]

    def cell(r: FileResult | None) -> str:
        if r is None:
            return "-"
        if r.clean:
            return f"clean ({r.passed} ok" + (f", {r.skipped} skip)" if r.skipped else ")")
        if r.status == "timeout":
            return "**timeout**"
        return f"**{r.failed} not ok**" if r.failed else f"**{r.status}**"

    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    for n in names:
        o, r = ocipy.get(n), runc.get(n)
        why = []
        if n in EXPLAINED:
            why.append(EXPLAINED[n])
        for label, res in (("ocipy", o), ("runc", r)):
            if res is not None and not res.clean:
                why.append(f"{label}: `{esc(res.reason())}`")
        lines.append(f"| {n} | {cell(o)} | {cell(r)} | {esc('; '.join(why))} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance.runtime_tools", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run files against one runtime")
    run.add_argument("--runtime", default="ocipy", help="ocipy (this checkout), runc (runc 1.5.1) or a path")
    run.add_argument("names", nargs="*", help="validation files (default: all)")
    rep = sub.add_parser("report", help="run against ocipy and runc 1.5.1, write the report and expected results")
    rep.add_argument("--report", type=Path, default=REPORT)
    rep.add_argument("--expected", type=Path, default=EXPECTED)
    for p in (run, rep):
        p.add_argument("--jobs", type=int, default=2)
        p.add_argument("--timeout", type=float, default=120)
        p.add_argument("--json", type=Path, help="write the results as JSON")
        p.add_argument("--tap-dir", type=Path, help="keep each file's TAP output here")
        p.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("runtime_tools: needs root", file=sys.stderr)
        return 2
    if not (suite_dir() / "validation").is_dir():
        print(f"runtime_tools: no suite at {suite_dir()} (scripts/refs runtime-tools builds it)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ocipy-rt-bin-") as bindir:
        bd = Path(bindir)
        bd.chmod(0o755)
        kw = {"jobs": args.jobs, "timeout": args.timeout, "quiet": args.quiet, "tap_dir": args.tap_dir}
        if args.cmd == "run":
            rt = resolve(args.runtime, bd)
            names = args.names or list_files()
            unknown = sorted(set(names) - set(list_files()))
            if unknown:
                print(f"runtime_tools: no such validation file: {', '.join(unknown)}", file=sys.stderr)
                return 2
            res = run_all(rt, names, **kw)  # type: ignore[arg-type]
            if args.json:
                args.json.write_text(json.dumps({n: asdict(r) for n, r in res.items()}, indent=1) + "\n")
            for r in res.values():
                if not r.clean:
                    print(f"{r.name}: {r.status}: {r.reason()}")
            print(f"{rt.name}: {sum(r.clean for r in res.values())} of {len(res)} clean")
            return 0 if all(r.clean for r in res.values()) else 1
        names = list_files()
        o_rt, r_rt = resolve("ocipy", bd), resolve("runc", bd)
        ocipy = run_all(o_rt, names, **kw)  # type: ignore[arg-type]
        runc = run_all(r_rt, names, **kw)  # type: ignore[arg-type]
        versions = {"ocipy": o_rt.version(), "runc": r_rt.version()}
    args.report.write_text(write_report(ocipy, runc, versions))
    expected = {
        "runtime": f"runc {RUNC_VERSION}",
        "host": os.uname().release,
        "files": {n: r.status for n, r in sorted(runc.items())},
        "ocipy": {n: r.status for n, r in sorted(ocipy.items())},
    }
    args.expected.write_text(json.dumps(expected, indent=1) + "\n")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"ocipy": {n: asdict(r) for n, r in ocipy.items()}, "runc": {n: asdict(r) for n, r in runc.items()}},
                indent=1,
            )
            + "\n"
        )
    print(
        f"ocipy {sum(r.clean for r in ocipy.values())} of {len(names)} clean, "
        f"runc {RUNC_VERSION} {sum(r.clean for r in runc.values())}; wrote {args.report} and {args.expected}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
