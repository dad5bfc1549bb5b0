"""Fuzzing through the real `create` command: mutated configs, each created and force-deleted by id.

Every trial must end in exit 0 (created; `delete --force` then removes it) or exit 1 with one error line of bounded
length (the field and a shortened value, never a 10 MB echo), never an "internal error" or a traceback, never a hang
of more than 20 s, and nothing may be left behind (process, mount, cgroup directory in any hierarchy, state
directory). The generator is seeded: the seed is printed with the figures and `OCIPY_FUZZ_SEED=S` replays a run;
`OCIPY_FUZZ_CREATE=N` sets the number of trials (default 250 after a fixed corpus of once-found cases: 1-2 minutes
on an idle machine, ~0.3 s a trial). A failing trial's config is kept
under the test's tmp dir and named in the failure.

The mutations aim where the runtime touches the OS with what the config says: hostile strings (lone surrogates, NUL,
newlines, 10 MB values) in every string field, wrong types and extreme numbers, mounts the kernel rejects,
`netDevices` naming missing devices, hooks that fail, resources that do not fit, cgroups paths of every shape.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h  # loaded by conftest.py
import ocipy_leftovers as L  # loaded by conftest.py
import pytest

pytestmark = [*(m for m in h.pytestmark() if m.name != "timeout"), pytest.mark.timeout(900)]

SEED = int(os.environ.get("OCIPY_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
TRIALS = int(os.environ.get("OCIPY_FUZZ_CREATE", "250"))
HANG = 20.0
MAX_ERR_CHARS = 1100  # one line: the field, the start of the value, its length, the reason (errors.MAX_LINE)
BIG = 10 * 1024 * 1024

STRINGS = [
    "",
    "/",
    ".",
    "..",
    "../../../../etc",
    "/proc/self/fd/3",
    "/proc/sys/kernel/core_pattern",
    "/dev/null",
    "/sys",
    "a\x00b",
    "\x00",
    "\n",
    "line\nbreak",
    "\udcff",
    "\ud800x",
    "x\udfff",
    "\U0001f600",
    "é",
    "\t\r\x1b[31m",
    "x" * 5000,
    "%s%n%d",
    "${HOME}",
    "ro,rw,bind",
    "CAP_SYS_ADMIN",
    "RLIMIT_NOFILE",
    "SCMP_ACT_ERRNO",
    "tmpfs",
    "proc",
    "bind",
    "rbind",
    "idmap",
]
INTS = [0, -1, 1, 7, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), 10**30]

STRING_FIELDS = [
    "/process/args/0",
    "/process/args/1",
    "/process/cwd",
    "/process/env/0",
    "/process/apparmorProfile",
    "/process/selinuxLabel",
    "/process/user/username",
    "/process/capabilities/bounding/0",
    "/process/rlimits/0/type",
    "/root/path",
    "/hostname",
    "/domainname",
    "/mounts/0/destination",
    "/mounts/1/source",
    "/mounts/2/type",
    "/mounts/3/options/0",
    "/linux/maskedPaths/0",
    "/linux/readonlyPaths/0",
    "/linux/rootfsPropagation",
    "/linux/mountLabel",
    "/linux/namespaces/0/path",
    "/linux/sysctl/net.ipv4.ip_forward",
    "/ociVersion",
]
ANY_FIELDS = [
    "/process",
    "/process/args",
    "/process/env",
    "/process/user",
    "/process/user/uid",
    "/process/user/gid",
    "/process/user/additionalGids",
    "/process/user/umask",
    "/process/capabilities",
    "/process/rlimits",
    "/process/rlimits/0/soft",
    "/process/terminal",
    "/process/noNewPrivileges",
    "/process/oomScoreAdj",
    "/process/scheduler",
    "/process/ioPriority",
    "/process/consoleSize",
    "/root",
    "/root/readonly",
    "/mounts",
    "/mounts/0",
    "/mounts/0/options",
    "/hooks",
    "/annotations",
    "/linux",
    "/linux/namespaces",
    "/linux/uidMappings",
    "/linux/devices",
    "/linux/sysctl",
    "/linux/resources",
    "/linux/resources/memory/limit",
    "/linux/resources/pids/limit",
    "/linux/resources/cpu/shares",
    "/linux/resources/cpu/cpus",
    "/linux/resources/devices",
    "/linux/resources/unified",
    "/linux/seccomp",
    "/linux/personality",
    "/linux/timeOffsets",
    "/linux/netDevices",
]


class Gen:
    """Mutations of a valid config, drawn from one seeded random source."""

    def __init__(self, rng: random.Random, token: str) -> None:
        self.r = rng
        self.token = token

    def string(self) -> str:
        r = self.r
        k = r.randrange(10)
        if k < 6:
            return r.choice(STRINGS)
        if k == 6:
            return "".join(
                chr(r.choice([r.randrange(0x20, 0x7F), r.randrange(0xD800, 0xE000), r.randrange(0x110000)]))
                for _ in range(r.randrange(1, 12))
            )
        if k == 7 and r.random() < 0.3:  # 10 MB values cost time: the corpus has one in each kind of field
            return r.choice(["/", "x", "a\x00"]) * r.choice([BIG // 4, BIG])
        if k == 7:
            return r.choice(["/", "x", "a\x00", "\udcff"]) * r.choice([300, 5000, 70000])
        if k == 8:
            return "/" + r.choice(STRINGS) + "/" + r.choice(STRINGS)
        return "".join(r.choice("abc/.\x00\n") for _ in range(r.randrange(1, 20)))

    def value(self, depth: int = 0) -> Any:
        r = self.r
        k = r.randrange(9 if depth < 2 else 6)
        if k == 0:
            return None
        if k == 1:
            return r.choice([True, False])
        if k == 2:
            return r.choice(INTS)
        if k == 3:
            return r.choice([0.5, -1.5, 1e300, 2.0**64])
        if k in (4, 5):
            return self.string()
        if k == 6:
            return [self.value(depth + 1) for _ in range(r.randrange(4))]
        return {self.string()[:64]: self.value(depth + 1) for _ in range(r.randrange(4))}

    def mount(self) -> dict[str, Any]:
        r = self.r
        m: dict[str, Any] = {
            "destination": r.choice(["/mnt", "/tmp/x", "/proc", "/dev/null", "/sys/fs", self.string()])
        }
        if r.random() < 0.8:
            m["type"] = r.choice(["bind", "tmpfs", "proc", "sysfs", "cgroup", "devpts", "mqueue", "", "nfs", "ext4"])
        if r.random() < 0.8:
            m["source"] = r.choice(
                ["/tmp", "tmpfs", "proc", "rel/dir", "/nonexistent", "", "/etc/hostname", self.string()]
            )
        if r.random() < 0.7:
            m["options"] = [
                r.choice(
                    [
                        "ro",
                        "rbind",
                        "bind",
                        "nosuid",
                        "idmap",
                        "rprivate",
                        "size=1k",
                        "mode=755",
                        "x=\x00",
                        "size=-1",
                        "uid=99999999999",
                        self.string(),
                    ]
                )
                for _ in range(r.randrange(4))
            ]
        return m

    def mutate(self, cfg: dict[str, Any]) -> list[str]:
        """1-3 mutations in place; what was done, for the report."""
        r = self.r
        done = []
        for _ in range(r.randrange(1, 4)):
            k = r.randrange(12)
            if k < 4:
                ptr = r.choice(STRING_FIELDS)
                set_pointer(cfg, ptr, self.string())
            elif k < 7:
                ptr = r.choice(ANY_FIELDS)
                set_pointer(cfg, ptr, self.value())
            elif k == 7:
                ptr = "/mounts/-"
                set_pointer(cfg, ptr, self.mount())
            elif k == 8:
                ptr = "/annotations"
                cfg["annotations"] = {self.string()[:100]: self.string() for _ in range(r.randrange(1, 4))}
            elif k == 9:
                ptr = "/linux/netDevices"
                set_pointer(
                    cfg,
                    ptr,
                    {
                        r.choice(["ocipy-nodev0", "lo", self.string()[:30]]): r.choice(
                            [{}, {"name": self.string()[:30]}]
                        )
                    },
                )
                if r.random() < 0.5:
                    set_pointer(cfg, "/mounts/-", self.mount())
            elif k == 10:
                ptr = "/hooks"
                kind = r.choice(["prestart", "createRuntime", "createContainer", "startContainer", "poststop"])
                cfg["hooks"] = {
                    kind: [
                        {
                            "path": r.choice(["/bin/false", "/nonexistent", "rel", self.string()]),
                            "args": [self.string()],
                            "timeout": r.choice([1, 0, -1, 2**40]),
                        }
                    ]
                }
            else:
                ptr = "/linux/cgroupsPath"
                set_pointer(
                    cfg,
                    ptr,
                    r.choice(
                        [
                            f"/ocipy-fz-{self.token}/sub",
                            f"ocipy-fz-{self.token}-rel",
                            f"/../ocipy-fz-{self.token}-up",
                            f"system.slice:ocipy:fz-{self.token}",
                            f"/ocipy-fz-{self.token}/\x00",
                            "/",
                        ]
                    ),
                )
            linux = cfg.get("linux")
            if isinstance(linux, dict) and linux.get("cgroupsPath") == "/":
                linux["cgroupsPath"] = f"/ocipy-fz-{self.token}-root"  # never the host's root cgroup
            done.append(ptr)
        return done


def set_pointer(doc: dict[str, Any], pointer: str, value: Any) -> None:
    parts = pointer.strip("/").split("/")
    cur: Any = doc
    for part in parts[:-1]:
        if isinstance(cur, dict):
            nxt = cur.get(part)
            if not isinstance(nxt, dict | list):
                nxt = cur[part] = {}
            cur = nxt
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return
    last = parts[-1]
    if isinstance(cur, dict):
        cur[last] = value
    elif isinstance(cur, list):
        if last == "-":
            cur.append(value)
        elif last.isdigit() and int(last) < len(cur):
            cur[int(last)] = value


def error_lines(text: str) -> list[str]:
    """stderr without warning lines (config.md: an unknown capability MUST be logged as a warning)."""
    return [x for x in text.strip().splitlines() if x.strip() and not x.startswith("ocipy: warning: ")]


def encode(cfg: dict[str, Any]) -> bytes:
    # ensure_ascii: lone surrogates and NUL as \u escapes, which JSON permits
    return json.dumps(cfg, ensure_ascii=True).encode()


class Fuzz:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "state"
        self.bundle = h.make_bundle(tmp)
        self.token = uuid.uuid4().hex[:6]
        self.n = 0
        self.failures: list[str] = []
        self.counts = {
            "trials": 0,
            "created": 0,
            "refused": 0,
            "leaks": 0,
            "internal": 0,
            "hangs": 0,
            "silent": 0,
            "long": 0,
        }

    def call(self, *args: str, timeout: float = HANG) -> tuple[int, bytes, float]:
        err = self.tmp / "err"
        t0 = time.monotonic()
        with open(err, "wb") as fe:
            proc = subprocess.Popen(
                [*h.runtime_argv(), "--root", str(self.root), *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=fe,
                env=h.runtime_env(),
            )
            L.OURS.add(proc.pid)
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = -999
        return rc, err.read_bytes(), time.monotonic() - t0

    def fail(self, kind: str, what: str, data: bytes) -> None:
        self.counts[kind] += 1
        keep = self.tmp / f"failed-{self.n}.json"
        keep.write_bytes(data)
        self.failures.append(f"trial {self.n} [{what}] ({keep}): {kind}")

    def trial(self, cfg: dict[str, Any], what: str) -> None:
        self.n += 1
        self.counts["trials"] += 1
        cid = f"fz-{self.token}-{self.n}"
        cg = f"ocipy-fz-{self.token}-{self.n}"
        if isinstance(cfg.get("linux"), dict) and "cgroupsPath" not in cfg["linux"]:
            cfg["linux"]["cgroupsPath"] = f"/{cg}"
        data = encode(cfg)
        (self.bundle.path / "config.json").write_bytes(data)
        probe = L.Probe(self.root, cid, cg, marks=[str(self.bundle.path), cid])
        rc, err, _took = self.call("create", "--bundle", str(self.bundle.path), cid)
        text = err.decode(errors="replace")
        if rc == -999:
            self.fail("hangs", what, data)
        elif b"internal error" in err or b"Traceback" in err:
            self.fail("internal", f"{what}: {text[:300]!r}", data)
        elif rc == 0:
            self.counts["created"] += 1
        else:
            self.counts["refused"] += 1
            if rc != 1 or not text.strip():
                self.fail("silent", f"{what}: exit {rc}, stderr {text[:200]!r}", data)
            elif len(text) > MAX_ERR_CHARS or len(error_lines(text)) != 1:
                self.fail("long", f"{what}: {len(err)} bytes, {len(text.splitlines())} lines: {text[:200]!r}", data)
        drc, derr, _ = self.call("delete", "--force", cid)
        if drc != 0 or b"internal error" in derr:
            self.fail("internal", f"{what}: delete --force exited {drc}: {derr[:300]!r}", data)
        found = probe.check(grace=2.0)
        if found:
            self.fail("leaks", f"{what}: {found}", data)
            probe.clean()


# configs the fuzzer found once, kept so they are tried on every run whatever the seed
def _corpus(base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []

    def case(what: str, **changes: Any) -> None:
        cfg = copy.deepcopy(base)
        for ptr, value in changes.items():
            set_pointer(cfg, ptr.replace("__", "/"), value)
        out.append((what, cfg))

    case("lone surrogate in an annotation", __annotations={"k": "\udcff"})
    case("lone surrogate in an annotation key", __annotations={"\ud800": "v"})
    case("NUL in an annotation", __annotations={"k": "a\x00b"})
    case("10 MB annotation", __annotations={"k": "x" * BIG})
    case("10 MB args[0]", __process__args=["x" * BIG])
    case("10 MB mount destination", __mounts__0__destination="/" + "x" * BIG)
    case("NUL in args[0]", __process__args=["a\x00b"])
    case("lone surrogate in env", __process__env=["A=\udcff"])
    case("lone surrogate in hostname", __hostname="\udcff")
    case("NUL in a hook's args", __hooks={"createRuntime": [{"path": "/bin/true", "args": ["a\x00b"]}]})
    case("NUL in an in-container hook's args", __hooks={"createContainer": [{"path": "/bin/true", "args": ["a\x00"]}]})
    case("hook timeout beyond the clock", __hooks={"createRuntime": [{"path": "/bin/true", "timeout": 2**40}]})
    cfg = copy.deepcopy(base)
    cfg["linux"]["netDevices"] = {"ocipy-nodev0": {}}
    cfg["mounts"].append({"destination": "/mnt", "type": "ext4", "source": "/nonexistent"})
    out.append(("netDevices naming a missing device and a mount the kernel rejects", cfg))
    return out


def test_create_fuzz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fz = Fuzz(tmp_path)
    base = h.default_config(["true"])
    rng = random.Random(SEED)
    gen = Gen(rng, fz.token)
    t0 = time.monotonic()
    with h.subreaper(), L.Reaper():
        for what, cfg in _corpus(base):
            fz.trial(cfg, what)
        for _ in range(TRIALS):
            cfg = copy.deepcopy(base)
            what = " ".join(gen.mutate(cfg))
            fz.trial(cfg, what)
        L.reap()
    # cgroups a mutated cgroupsPath put elsewhere than /<name>: anything with the run's token, at any depth. An
    # empty parent a cgroupsPath named (`/ocipy-fz-T/sub`) stays, as runc leaves parents (other containers may
    # share them): the test removes those itself.
    parents = [os.path.join(m, f"ocipy-fz-{fz.token}") for m in L.cgroup_mountpoints()]
    for d in parents:
        with contextlib.suppress(OSError):
            os.rmdir(d)
    stray = [d for m in L.cgroup_mountpoints() for d in h.cgroup_dirs_named(fz.token, m, 4)]
    if stray:
        fz.counts["leaks"] += 1
        fz.failures.append(f"cgroups left: {stray}")
        for d in sorted(stray, key=len, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(d)
    c = fz.counts
    with capsys.disabled():
        print(
            f"\ncreate fuzz [seed {SEED}; replay: OCIPY_FUZZ_SEED={SEED}]: {c['trials']} trials in "
            f"{time.monotonic() - t0:.0f}s, {c['created']} created, {c['refused']} refused; internal errors "
            f"{c['internal']}, hangs {c['hangs']}, silent failures {c['silent']}, long/multi-line errors {c['long']}, "
            f"trials with leftovers {c['leaks']}"
        )
        for f in fz.failures[:25]:
            print("  " + f)
    assert not fz.failures, f"{len(fz.failures)} failures (seed {SEED}):\n" + "\n".join(fz.failures[:25])
