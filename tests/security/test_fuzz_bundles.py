"""Fuzzing of bundle parsing and planning: generated (mostly hostile) bundles must end in a clean OcipyError or a
plan, never a traceback or a hang, and leave nothing behind.

- in process: >= 10,000 bundles through `ocipy.bundle.load_bundle` + `ocipy.plan.compile_create` (the seccomp
  compiler included), each under a 5 s alarm; the bundle dir and this process's fds are compared before and after;
- through the real command line: a few hundred `create` calls in subprocesses (exit 0 or 1, no traceback), each
  created container force-deleted by id; the state root, our children, the host mounts and the cgroup trees must
  show nothing left.

Generation is mutation based: a valid default config with a few fields replaced by generated JSON (hostile strings
included), whole-file garbage, and rootfs variants (missing, a file, a symlink). The counts are printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import ocipy_security_common as c  # loaded by conftest.py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

h = c.h

from ocipy.bundle import load_bundle
from ocipy.errors import OcipyError
from ocipy.plan import HostFacts, compile_create

IN_PROCESS_EXAMPLES = int(os.environ.get("OCIPY_FUZZ_EXAMPLES", "10000"))
CLI_EXAMPLES = int(os.environ.get("OCIPY_FUZZ_CLI_EXAMPLES", "200"))
HANG_SECONDS = 5

HOSTILE_STRINGS = [
    "",
    "/",
    ".",
    "..",
    "../../../../etc",
    "/proc",
    "/proc/self/fd/3",
    "/proc/sys/kernel/core_pattern",
    "/dev/null",
    "/dev/console",
    "/sys",
    "rootfs",
    "a\x00b",
    "\n",
    "x" * 5000,
    "ro,rw,bind",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_ERRNO",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_ARCH_X86",
    "CAP_SYS_ADMIN",
    "RLIMIT_NOFILE",
    "mount",
    "user",
    "pid",
    "tmpfs",
    "proc",
    "bind",
    "rbind",
    "idmap",
    "\udcff",
    "😀",
]
HOSTILE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), 10**30]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(HOSTILE_INTS),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(HOSTILE_STRINGS[:30]) | st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)

seccomp_objects = st.fixed_dictionaries(
    {
        "defaultAction": st.sampled_from(
            ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_NOTIFY", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"]
        ),
        "syscalls": st.lists(
            st.fixed_dictionaries(
                {
                    "names": st.lists(
                        st.sampled_from(["mkdir", "read", "write", "sendmsg", "socketcall", "no_such", "clone3", ""]),
                        min_size=0,
                        max_size=3,
                    ),
                    "action": st.sampled_from(
                        [
                            "SCMP_ACT_ALLOW",
                            "SCMP_ACT_ERRNO",
                            "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_TRAP",
                            "SCMP_ACT_NOTIFY",
                        ]
                    ),
                },
                optional={
                    "errnoRet": st.sampled_from([0, 1, 38, 65535, 65536, 2**32 - 1]),
                    "args": st.lists(
                        st.fixed_dictionaries(
                            {
                                "index": st.integers(0, 7),
                                "value": st.sampled_from([0, 1, 2**63, 2**64 - 1]),
                                "op": st.sampled_from(
                                    ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_GT", "SCMP_CMP_LE"]
                                ),
                            },
                            optional={"valueTwo": st.sampled_from([0, 7, 2**64 - 1])},
                        ),
                        max_size=3,
                    ),
                },
            ),
            max_size=4,
        ),
    },
    optional={
        "defaultErrnoRet": st.sampled_from([1, 38, 70000]),
        "architectures": st.lists(st.sampled_from(["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]), max_size=3),
        "flags": st.lists(
            st.sampled_from(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
            max_size=2,
        ),
        "listenerPath": st.sampled_from(["/run/agent.sock", "relative.sock", ""]),
        "listenerMetadata": st.sampled_from(["x", ""]),
    },
)

POINTERS = [
    "/ociVersion",
    "/process",
    "/process/args",
    "/process/args/0",
    "/process/cwd",
    "/process/env",
    "/process/user",
    "/process/user/uid",
    "/process/user/additionalGids",
    "/process/capabilities",
    "/process/capabilities/bounding",
    "/process/capabilities/inheritable",
    "/process/rlimits",
    "/process/terminal",
    "/process/noNewPrivileges",
    "/process/apparmorProfile",
    "/process/selinuxLabel",
    "/process/oomScoreAdj",
    "/process/scheduler",
    "/process/ioPriority",
    "/root",
    "/root/path",
    "/root/readonly",
    "/mounts",
    "/mounts/0",
    "/mounts/0/destination",
    "/mounts/0/type",
    "/mounts/0/options",
    "/mounts/-",
    "/hostname",
    "/domainname",
    "/hooks",
    "/annotations",
    "/linux",
    "/linux/namespaces",
    "/linux/namespaces/-",
    "/linux/uidMappings",
    "/linux/gidMappings",
    "/linux/devices",
    "/linux/sysctl",
    "/linux/seccomp",
    "/linux/maskedPaths",
    "/linux/readonlyPaths",
    "/linux/rootfsPropagation",
    "/linux/mountLabel",
    "/linux/personality",
    "/linux/timeOffsets",
]

mount_objects = st.fixed_dictionaries(
    {"destination": st.sampled_from(HOSTILE_STRINGS[:12] + ["/mnt", "/dev/shm", "/proc/meminfo"])},
    optional={
        "type": st.sampled_from(["bind", "tmpfs", "proc", "sysfs", "cgroup", "devpts", "mqueue", "", "nfs"]),
        "source": st.sampled_from(["/tmp", "tmpfs", "proc", "rel/dir", "/proc/self/fd/3", "", "/etc/hostname"]),
        "options": st.lists(
            st.sampled_from(["ro", "rbind", "bind", "nosuid", "idmap", "rprivate", "size=1k", "mode=755", "x=\x00"]),
            max_size=4,
        ),
    },
)


def set_pointer(doc: dict[str, Any], pointer: str, value: Any) -> None:
    parts = pointer.strip("/").split("/")
    cur: Any = doc
    for part in parts[:-1]:
        if isinstance(cur, dict):
            cur = cur.setdefault(part, {})
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


@st.composite
def bundles(draw: Any) -> tuple[bytes, str]:
    """(config.json bytes, rootfs kind)."""
    rootfs = draw(st.sampled_from(["dir"] * 12 + ["missing", "file", "symlink-dir", "symlink-slash"]))
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.binary(max_size=200)), rootfs
    if kind == 1:
        return json.dumps(draw(json_values)).encode(), rootfs
    cfg = h.default_config(["true"])
    if kind in (2, 3, 4):
        set_pointer(cfg, "/linux/seccomp", draw(seccomp_objects))  # a generated filter on an otherwise valid config
    for _ in range(draw(st.integers(0 if kind in (2, 3, 4) else 1, 3))):
        pointer = draw(st.sampled_from(POINTERS))
        if pointer == "/linux/seccomp" or (kind in (2, 3) and draw(st.booleans())):
            set_pointer(cfg, "/linux/seccomp", draw(seccomp_objects))
        elif pointer.startswith("/mounts") and draw(st.booleans()):
            set_pointer(cfg, pointer if pointer != "/mounts" else "/mounts/-", draw(mount_objects))
        elif draw(st.integers(0, 9)) == 0:
            # drop the field
            parts = pointer.strip("/").split("/")
            parent: Any = cfg
            for part in parts[:-1]:
                parent = parent.get(part) if isinstance(parent, dict) else None
            if isinstance(parent, dict):
                parent.pop(parts[-1], None)
        else:
            set_pointer(cfg, pointer, draw(json_values))
    return json.dumps(cfg, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass"), rootfs


def make_rootfs(bundle: Path, kind: str) -> None:
    path = bundle / "rootfs"
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        if kind == "dir":
            return
        path.rmdir()
    if kind == "dir":
        path.mkdir()
    elif kind == "file":
        path.write_text("x")
    elif kind == "symlink-dir":
        (bundle / "real").mkdir(exist_ok=True)
        path.symlink_to("real")
    elif kind == "symlink-slash":
        path.symlink_to("/")


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


class Hang(Exception):
    pass


def _alarm(_sig: int, _frame: Any) -> None:
    raise Hang(f"no verdict within {HANG_SECONDS}s")


@pytest.mark.timeout(900)
def test_fuzz_load_and_plan_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    host = HostFacts()
    counts = {"total": 0, "planned": 0, "refused": 0}
    fds_before = _fds()
    old = signal.signal(signal.SIGALRM, _alarm)

    @settings(
        max_examples=IN_PROCESS_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(bundles())
    def one(case: tuple[bytes, str]) -> None:
        data, rootfs_kind = case
        (bundle / "config.json").write_bytes(data)
        make_rootfs(bundle, rootfs_kind)
        before = sorted(os.listdir(bundle))
        counts["total"] += 1
        signal.alarm(HANG_SECONDS)
        try:
            spec, rootfs, _ = load_bundle(str(bundle))
            compile_create(
                spec,
                rootfs=rootfs,
                bundle=str(bundle),
                fifo="/run/ocipy-fuzz/exec.fifo",
                console_fd=None,
                extra_fds=0,
                no_pivot=False,
                no_new_keyring=False,
                host=host,
            )
            counts["planned"] += 1
        except OcipyError as exc:
            assert str(exc).strip(), "an error must say what is wrong"  # (errors.py prints it as one line)
            counts["refused"] += 1
        finally:
            signal.alarm(0)
        assert sorted(os.listdir(bundle)) == before

    try:
        one()
    finally:
        signal.signal(signal.SIGALRM, old)
    assert _fds() == fds_before, "file descriptors leaked"
    assert not os.path.exists("/run/ocipy-fuzz")
    with capsys.disabled():
        print(
            f"\nfuzz (in process): {counts['total']} generated bundles, {counts['planned']} planned, "
            f"{counts['refused']} refused with OcipyError, 0 tracebacks"
        )
    assert counts["total"] >= min(IN_PROCESS_EXAMPLES, 10000) * 0.95


@c.root_only
@pytest.mark.timeout(900)
def test_fuzz_cli_create(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    subprocess.run(["cp", "-a", str(h.rootfs_template()), str(bundle / "rootfs")], check=True, timeout=60)
    (bundle / "rootfs").rename(bundle / "rootfs-template")
    state = tmp_path / "state"
    out, err = tmp_path / "out", tmp_path / "err"
    counts = {"total": 0, "created": 0, "refused": 0}
    mounts_before = h.host_mounts()
    n = [0]

    def call(*args: str) -> int:
        with open(out, "wb") as fo, open(err, "wb") as fe:
            return subprocess.run(
                [*h.runtime_argv(), "--root", str(state), *args],
                check=False,
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                env=h.runtime_env(),
                timeout=30,
            ).returncode

    def rootfs_for(kind: str) -> None:
        path = bundle / "rootfs"
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            path.rename(bundle / "rootfs-template")
        if kind == "dir":
            (bundle / "rootfs-template").rename(path)
        elif kind == "file":
            path.write_text("x")
        elif kind == "symlink-dir":
            path.symlink_to("rootfs-template")
        elif kind == "symlink-slash":
            path.symlink_to("/")

    @settings(max_examples=CLI_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(bundles())
    def one(case: tuple[bytes, str]) -> None:
        data, rootfs_kind = case
        n[0] += 1
        cid = f"fuzz-{os.getpid()}-{n[0]}"
        (bundle / "config.json").write_bytes(data)
        rootfs_for(rootfs_kind)
        counts["total"] += 1
        try:
            rc = call("create", "--bundle", str(bundle), cid)
            text = err.read_text(errors="replace")
            assert "Traceback" not in text, text
            assert "internal error" not in text, text
            assert rc in (0, 1), (rc, text)
            if rc == 0:
                counts["created"] += 1
            else:
                counts["refused"] += 1
                assert text.strip(), "a failed create must say why"
        finally:
            if call("delete", "--force", cid) != 0:
                raise AssertionError(f"delete --force {cid}: {err.read_text(errors='replace')}")
            h.reap_children()
        assert not os.path.exists(state / cid), f"state of {cid} left behind"
        assert not h.cmdline_pids(cid)

    with h.subreaper():
        one()
    # other work may mount things on this host meanwhile: only mounts that name our bundle or ids count
    mine = [m for m in h.host_mounts() - mounts_before if str(tmp_path) in m or f"fuzz-{os.getpid()}-" in m]
    assert not mine, f"mounts left on the host: {mine}"
    # the runtime's compiled-seccomp cache (`@cache`) is not a container's state
    assert not [d for d in os.listdir(state) if d != "@cache"] if state.exists() else True
    assert not h.cgroup_dirs_named(f"fuzz-{os.getpid()}-"), "cgroups left behind"
    with capsys.disabled():
        print(
            f"\nfuzz (command line): {counts['total']} generated bundles through `create`, {counts['created']} created "
            f"(then deleted), {counts['refused']} refused, 0 tracebacks, nothing left"
        )
