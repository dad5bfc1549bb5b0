"""Shared by the security tests: the integration helpers (bundles, the runtime driver, fixtures), a static probe
program built once per session, and libseccomp look-ups. conftest.py loads this file by path as
`ocipy_security_common` (a unique name: no collision on sys.path) and registers the fixtures."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from seccomp_profiles import native_syscall_names  # tests/security/seccomp_profiles.py

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]


def _load(name: str, path: Path) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


h: Any = _load("ocipy_it_helpers", PROJECT / "tests" / "integration" / "helpers.py")

# x86_64 system call numbers the probes use
NR_SCHED_YIELD = 24  # ignores its arguments: the seccomp tests put any value in them
NR_MKDIR = 83
NR_GETPPID = 110
NR_KEXEC_LOAD = 246
NR_UNKNOWN = 1000  # no such system call
NR_I386_SCHED_YIELD = 158

_PROBE: Path | None = None


def root_only(fn: Any) -> Any:
    """The integration tests' marks (skip without root/busybox/the built shim, a timeout) for one test."""
    for mark in h.pytestmark():
        fn = mark(fn)
    return fn


def probe_binary() -> Path:
    """tests/security/probe.c built statically (once per session)."""
    global _PROBE
    if _PROBE is None:
        if shutil.which("gcc") is None:
            pytest.skip("gcc is needed to build the seccomp probe (apt-get install gcc libc6-dev)")
        base = Path(tempfile.mkdtemp(prefix="ocipy-sec-probe-"))
        atexit.register(shutil.rmtree, base, True)
        out = base / "probe"
        res = subprocess.run(
            ["gcc", "-static", "-O1", "-o", str(out), str(HERE / "probe.c")],
            check=False,
            capture_output=True,
            timeout=120,
        )
        if res.returncode != 0:
            pytest.skip(f"cannot build the static probe: {res.stderr.decode(errors='replace')[-500:]}")
        _PROBE = out
    return _PROBE


def install_probe(bundle: Any) -> None:
    dest = Path(bundle.rootfs) / "probe"
    shutil.copy(probe_binary(), dest)
    dest.chmod(0o755)


def allow_all_but(*denied: str) -> list[str]:
    return [n for n in native_syscall_names() if n not in denied]


def host_file_digest(path: str | Path) -> tuple[int, int, bytes]:
    """(size, mtime_ns, first and last 64 KiB) of a host file: enough to see that nobody wrote it."""
    st = os.stat(path)
    with open(path, "rb") as f:
        head = f.read(65536)
        f.seek(max(0, st.st_size - 65536))
        tail = f.read()
    return st.st_size, st.st_mtime_ns, head + tail
