"""python -m conformance --runtime ocipy --runtime runc [--tap-dir DIR] [--report docs/conformance.md]
[--filter SUBSTR] [--json FILE] [--jobs N]"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import bundle as bundlemod
from . import report
from .framework import CGROUP_PARENT, REGISTRY, V1_ROOT, CaseResult, Env, Runtime, run_case

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent


def resolve(spec: str) -> Runtime:
    env = dict(os.environ)
    if spec == "ocipy":
        # The code of this checkout first (its venv, isolated as the launcher is), not whatever ocipy is installed.
        py = PROJECT / ".venv" / "bin" / "python"
        if py.exists():
            return Runtime("ocipy", [str(py), "-I", "-m", "ocipy"], env)
        if os.access("/usr/local/bin/ocipy", os.X_OK):
            return Runtime("ocipy", ["/usr/local/bin/ocipy"], env)
        env["PYTHONPATH"] = str(PROJECT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return Runtime("ocipy", [sys.executable, "-m", "ocipy"], env)
    if spec == "runc":
        path = shutil.which("runc") or "/usr/sbin/runc"
        return Runtime("runc", [path], env)
    path = shutil.which(spec) or spec
    if not os.access(path, os.X_OK):
        raise SystemExit(f"conformance: runtime {spec!r} is not an executable")
    return Runtime(os.path.basename(path), [os.path.abspath(path)], env)


def run_runtime(rt: Runtime, workdir: Path, template: Path, cases, jobs: int, quiet: bool) -> list[CaseResult]:
    tag = "".join(ch for ch in rt.name if ch.isalnum())[:6] or "rt"
    env = Env(rt, workdir / tag, template, tag)
    env.workdir.chmod(0o755)
    results: dict[int, CaseResult] = {}

    def one(ic):
        i, c = ic
        r = run_case(env, c, i)
        if not quiet:
            print("%-5s %-7s %-45s %5.1fs" % (rt.name[:5], r.status, c.id, r.secs), file=sys.stderr, flush=True)
        return i, r

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        for i, r in ex.map(one, list(enumerate(cases))):
            results[i] = r
    shutil.rmtree(env.state_root, ignore_errors=True)
    return [results[i] for i in sorted(results)]


def cleanup_cgroups() -> None:
    if not V1_ROOT.is_dir():
        return
    for ctrl in V1_ROOT.iterdir():
        parent = ctrl / CGROUP_PARENT
        if parent.is_dir():
            for d in parent.iterdir():
                if d.is_dir():
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
            try:
                os.rmdir(parent)
            except OSError:
                pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance", description=__doc__)
    ap.add_argument(
        "--runtime",
        action="append",
        required=True,
        help="ocipy, runc, or a path to any runtime with runc's command line (repeatable)",
    )
    ap.add_argument("--tap-dir", help="write <runtime>.tap here")
    ap.add_argument("--report", help="write the side-by-side markdown report here (and expected_runc.json)")
    ap.add_argument("--json", help="write all results as JSON here")
    ap.add_argument("--filter", action="append", help="run only cases whose id contains this (repeatable)")
    ap.add_argument("--jobs", type=int, default=4, help="cases run at once (default 4)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    a = ap.parse_args(argv)

    from . import cases  # noqa: F401  (registers the cases)

    selected = [c for c in REGISTRY if not a.filter or any(f in c.id for f in a.filter)]
    if a.list:
        for c in selected:
            print("%-45s %-6s %s" % (c.id, c.level, c.spec))
        return 0
    if os.geteuid() != 0:
        print("conformance: run as root (the cases create real containers)", file=sys.stderr)
        return 2
    runtimes = [resolve(s) for s in a.runtime]
    probe = bundlemod.build_probe()
    workdir = Path(tempfile.mkdtemp(prefix="ocipy-conformance-"))
    workdir.chmod(0o755)
    results: dict[str, list[CaseResult]] = {}
    versions: dict[str, str] = {}
    t0 = time.monotonic()
    try:
        template = bundlemod.make_rootfs_template(workdir / "template", probe)
        for rt in runtimes:
            versions[rt.name] = rt.version()
            results[rt.name] = run_runtime(rt, workdir, template, selected, a.jobs, a.quiet)
    finally:
        cleanup_cgroups()
        shutil.rmtree(workdir, ignore_errors=True)
    if a.tap_dir:
        Path(a.tap_dir).mkdir(parents=True, exist_ok=True)
        for name, res in results.items():
            (Path(a.tap_dir) / (f"{name}.tap")).write_text(report.tap(res))
    if a.json:
        report.dump_json(Path(a.json), {n: [r.to_json() for r in res] for n, res in results.items()})
    rc = 0
    for name, res in results.items():
        p = sum(r.status == "pass" for r in res)
        f = sum(r.status == "fail" for r in res)
        s = sum(r.status == "skip" for r in res)
        n_as = sum(len(r.assertions) for r in res)
        print("%s: %d passed, %d failed, %d skipped (%d assertions)" % (name, p, f, s, n_as))
        for r in res:
            if r.status == "fail":
                print("  FAIL {}: {}".format(r.id, "; ".join(x.name for x in r.assertions if not x.ok)))
        rc = rc or (1 if f else 0)
    print("%.1f s" % (time.monotonic() - t0))
    if a.report:
        cmd = "python -m conformance " + " ".join(f"--runtime {s}" for s in a.runtime) + " --report " + a.report
        Path(a.report).parent.mkdir(parents=True, exist_ok=True)
        Path(a.report).write_text(report.markdown(runtimes, results, versions, cmd))
        if "runc" in results:
            if a.filter:
                print("conformance: --filter given, expected_runc.json not rewritten", file=sys.stderr)
            else:
                report.dump_json(HERE / "expected_runc.json", report.expected(results["runc"], versions["runc"]))
            missing = report.unexplained(results["runc"])
            if missing:
                print(
                    "conformance: runc fails cases with no explanation in report.RUNC_EXPLAINED: {}".format(
                        ", ".join(missing)
                    ),
                    file=sys.stderr,
                )
                return 2
        return 0  # the report is the product: failures are in it
    return rc


if __name__ == "__main__":
    sys.exit(main())
