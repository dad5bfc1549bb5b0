"""libseccomp's declarations come precompiled (ocipy/_seccomp_ffi.py, cffi's out-of-line ABI module): the file is
what shim/build_shim.py generates from SECCOMP_CDEF today, and an uncached compile parses no C (no `cffi` package,
no pycparser: ~50 ms per create with a seccomp profile, issue 15)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ocipy import seccomp as sc

PROJECT = Path(__file__).resolve().parents[2]


def _build_shim():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ocipy_build_shim", PROJECT / "shim" / "build_shim.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_precompiled_declarations_are_current() -> None:
    expected = _build_shim().seccomp_ffi_source()
    assert (PROJECT / "ocipy" / "_seccomp_ffi.py").read_text() == expected, (
        "ocipy/_seccomp_ffi.py is stale: run `python shim/build_shim.py --seccomp-ffi`"
    )


@pytest.mark.skipif(sc.find_libseccomp() is None, reason="libseccomp.so.2 is not installed")
def test_uncached_compile_parses_no_declarations(tmp_path: Path) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
            },
        ],
    }
    code = (
        "import json, sys; from ocipy import seccomp as sc; from ocipy.spec.linux import Seccomp; "
        f"p = sc.compile_filter(Seccomp.model_validate(json.loads({json.dumps(profile)!r}))); "
        "print(len(p.bpf), sorted(m for m in sys.modules if m.split('.')[0] in ('cffi', 'pycparser')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT, timeout=60
    ).stdout.split(" ", 1)
    assert int(out[0]) > 0
    assert out[1].strip() == "[]"
