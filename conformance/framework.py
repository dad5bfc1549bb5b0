"""Cases, the per-case context they run in, and the runner.

A case is a function decorated with @case(id, spec="file.md#anchor", level="MUST", req="quoted requirement").
It receives a Ctx: build a config (ctx.config()), drive the runtime only through its command line (ctx.create,
ctx.start, ctx.state, ctx.kill, ctx.delete, ctx.probe), and record each assertion with ctx.check(name, ok, detail).
A case that cannot run on this host calls ctx.skip(host_fact). Everything a case creates is cleaned up by the
context: its containers (delete --force by id), helper processes (killed by pid), its temp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import bundle as bundlemod

CGROUP_PARENT = "ocipy-conformance"
V1_ROOT = Path("/sys/fs/cgroup")


class Skip(Exception):
    pass


@dataclass
class Case:
    id: str
    spec: str
    level: str
    req: str
    fn: Callable[[Ctx], None]
    doc: str = ""


REGISTRY: list[Case] = []


def case(id: str, spec: str, level: str, req: str) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
    def deco(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        if any(c.id == id for c in REGISTRY):
            raise ValueError(f"duplicate case id {id}")
        REGISTRY.append(Case(id, spec, level, req, fn, (fn.__doc__ or "").strip()))
        return fn

    return deco


@dataclass
class Res:
    rc: int
    out: str
    err: str
    secs: float

    def __str__(self) -> str:
        s = "rc=%d" % self.rc
        if self.out.strip():
            s += f" stdout={self.out.strip()[:300]!r}"
        if self.err.strip():
            s += f" stderr={self.err.strip()[:300]!r}"
        return s


@dataclass
class Runtime:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None

    def version(self) -> str:
        try:
            p = subprocess.run(
                self.argv + ["--version"], check=False, capture_output=True, text=True, timeout=20, env=self.env
            )
            return " / ".join(line.strip() for line in p.stdout.splitlines() if line.strip()) or p.stderr.strip()
        except OSError as e:
            return f"unavailable: {e}"


@dataclass
class Assertion:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class CaseResult:
    id: str
    status: str  # pass / fail / skip
    assertions: list[Assertion] = field(default_factory=list)
    skip_reason: str = ""
    secs: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "skip_reason": self.skip_reason,
            "secs": round(self.secs, 3),
            "assertions": [{"name": a.name, "ok": a.ok, "detail": a.detail} for a in self.assertions],
        }


class Env:
    """Shared for one runtime's run: the probe, the rootfs template, the runtime's private state root."""

    def __init__(self, runtime: Runtime, workdir: Path, template: Path, tag: str):
        self.runtime = runtime
        self.workdir = workdir
        self.template = template
        self.tag = tag
        self.state_root = workdir / "state"
        self.state_root.mkdir(parents=True, exist_ok=True)
        self.seq = 0


class Ctx:
    def __init__(self, env: Env, c: Case, index: int):
        self.env = env
        self.case = c
        self.index = index
        self.dir = env.workdir / ("c%03d" % index)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.assertions: list[Assertion] = []
        self.containers: list[str] = []
        self.pids: list[int] = []
        self.cleanups: list[Callable[[], None]] = []
        self.nid = 0
        self.cgroups: list[str] = []

    # ---- configs and bundles

    def new_id(self) -> str:
        self.nid += 1
        cid = "conf-%s-%03d-%d" % (self.env.tag, self.index, self.nid)
        return cid

    def cgroups_path(self) -> str:
        p = "/%s/%s-%03d-%d" % (CGROUP_PARENT, self.env.tag, self.index, len(self.cgroups))
        self.cgroups.append(p)
        return p

    def config(self) -> dict[str, Any]:
        return bundlemod.base_config(self.cgroups_path())

    def bundle(self, cfg: dict[str, Any], name: str = "") -> Path:
        self.nid += 0
        name = name or "bundle%d" % (len(list(self.dir.glob("bundle*"))))
        return bundlemod.write_bundle(self.dir / name, self.env.template, cfg)

    # ---- the runtime's command line

    def rt(
        self,
        *args: str,
        timeout: float = 30,
        stdout: Any = None,
        stderr: Any = None,
        pass_fds: tuple[int, ...] = (),
        stdin: Any = subprocess.DEVNULL,
    ) -> Res:
        argv = self.env.runtime.argv + ["--root", str(self.env.state_root)] + list(args)
        t0 = time.monotonic()
        out_f = stdout if stdout is not None else subprocess.PIPE
        err_f = stderr if stderr is not None else subprocess.PIPE
        try:
            p = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=out_f,
                stderr=err_f,
                pass_fds=pass_fds,
                text=True,
                env=self.env.runtime.env,
                cwd=str(self.dir),
            )
        except OSError as e:
            return Res(127, "", str(e), 0.0)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            try:  # a container that inherited the pipes may hold them open: do not wait for their EOF
                out, err = p.communicate(timeout=2)
            except subprocess.TimeoutExpired:
                out, err = "", ""
                p.wait()
            return Res(124, out or "", (err or "") + f" [timed out after {timeout}s]", time.monotonic() - t0)
        return Res(p.returncode, out or "", err or "", time.monotonic() - t0)

    def create(
        self, bundle: Any, cid: str | None = None, extra: tuple[str, ...] = (), pass_fds: tuple[int, ...] = ()
    ) -> tuple[str, Res]:
        """create --bundle B ID; the container's stdout/stderr go to <casedir>/<id>.out/.err."""
        cid = cid or self.new_id()
        self.containers.append(cid)
        with open(self.dir / (cid + ".out"), "ab") as o, open(self.dir / (cid + ".err"), "ab") as e:
            r = self.rt("create", "--bundle", str(bundle), *extra, cid, stdout=o, stderr=e, pass_fds=pass_fds)
        # the runtime's own messages were mixed into the files: read them back for the result
        r.err = (self.dir / (cid + ".err")).read_text(errors="replace")
        return cid, r

    def output(self, cid: str) -> str:
        p = self.dir / (cid + ".out")
        return p.read_text(errors="replace") if p.exists() else ""

    def start(self, cid: str) -> Res:
        return self.rt("start", cid)

    def state(self, cid: str) -> tuple[Res, dict[str, Any] | None]:
        r = self.rt("state", cid)
        try:
            return r, json.loads(r.out) if r.rc == 0 else None
        except ValueError:
            return r, None

    def status(self, cid: str) -> str | None:
        _, st = self.state(cid)
        return st.get("status") if st else None

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> str | None:
        end = time.monotonic() + timeout
        s = None
        while time.monotonic() < end:
            s = self.status(cid)
            if s == want:
                return s
            time.sleep(0.05)
        return s

    def kill(self, cid: str, sig: str = "KILL") -> Res:
        return self.rt("kill", cid, sig)

    def delete(self, cid: str, force: bool = False) -> Res:
        return self.rt("delete", *(["--force"] if force else []), cid)

    def probe(
        self,
        cfg: dict[str, Any],
        *reqs: str,
        name: str = "the container ran the probe",
        expect_ok: bool = True,
        bundle: Path | None = None,
    ) -> dict[str, Any]:
        """create + start a container whose process is the probe, wait until it is stopped, parse its JSON, delete.
        Records one assertion (that the probe ran and printed) unless expect_ok is False."""
        cfg.setdefault("process", {})["args"] = ["/probe", *reqs]
        if bundle is not None:
            (bundle / "config.json").write_text(json.dumps(cfg, indent=2))
            b = bundle
        else:
            b = self.bundle(cfg)
        cid, r = self.create(b)
        facts: dict[str, Any] = {}
        detail = f"create: {r}"
        if r.rc == 0:
            rs = self.start(cid)
            detail = f"start: {rs}"
            if rs.rc == 0:
                st = self.wait_status(cid, "stopped")
                out = self.output(cid)
                for line in out.splitlines():
                    if line.startswith("{"):
                        try:
                            facts = json.loads(line)
                        except ValueError:
                            pass
                detail = f"status={st} output={out[:300]!r}"
        self.delete(cid, force=True)
        if expect_ok:
            self.check(name, bool(facts), "" if facts else detail)
        facts["_detail"] = detail
        return facts

    # ---- assertions

    def check(self, name: str, ok: Any, detail: str = "") -> bool:
        if any(a.name == name for a in self.assertions):
            raise ValueError(f"duplicate assertion name {name!r} in {self.case.id}")
        self.assertions.append(Assertion(name, bool(ok), "" if ok else str(detail)))
        return bool(ok)

    def eq(self, name: str, got: Any, want: Any, ctx: str = "") -> bool:
        return self.check(name, got == want, "got {!r}, want {!r}{}".format(got, want, (f" ({ctx})") if ctx else ""))

    def skip(self, reason: str) -> None:
        raise Skip(reason)

    # ---- helpers

    def spawn(self, argv: list[str]) -> subprocess.Popen:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pids.append(p.pid)
        self.cleanups.append(lambda: (p.poll() is None and p.kill(), p.wait()))
        return p

    def cleanup(self) -> None:
        for cid in self.containers:
            self.rt("delete", "--force", cid, timeout=20)
        for fn in self.cleanups:
            try:
                fn()
            except Exception:
                pass
        for cg in self.cgroups:  # rmdir only: a cgroup with processes in it stays (and is reported by the runner)
            for ctrl in V1_ROOT.iterdir() if V1_ROOT.is_dir() else []:
                d = ctrl / cg.lstrip("/")
                if d.is_dir():
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
        if not _mounts_under(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def run_case(env: Env, c: Case, index: int) -> CaseResult:
    ctx = Ctx(env, c, index)
    t0 = time.monotonic()
    res = CaseResult(c.id, "pass")
    try:
        c.fn(ctx)
    except Skip as e:
        res.status = "skip"
        res.skip_reason = str(e)
    except Exception:
        ctx.assertions.append(Assertion("the case ran without an internal error", False, traceback.format_exc()[-800:]))
    finally:
        try:
            ctx.cleanup()
        except Exception:
            ctx.assertions.append(Assertion("cleanup", False, traceback.format_exc()[-400:]))
    res.assertions = ctx.assertions
    if res.status != "skip":
        if not res.assertions:
            res.assertions.append(Assertion("the case recorded an assertion", False, "no assertion recorded"))
        res.status = "pass" if all(a.ok for a in res.assertions) else "fail"
    res.secs = time.monotonic() - t0
    return res


def host_ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def cgroup_dirs_of(pid: int) -> dict[str, str]:
    """{controller: path} from /proc/PID/cgroup (v1 lines; '' key for the v2 line)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(",") if ctrls else [""]:
                    out[c.replace("name=", "")] = path
    except OSError:
        pass
    return out


def read_cgroup_file(controller: str, path: str, name: str) -> str | None:
    p = V1_ROOT / controller / path.lstrip("/") / name
    try:
        return p.read_text().strip()
    except OSError:
        return None


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
