"""What `ocipy create` imports (issue 15: create within 1.5x of runc 1.5.1): a plain config, as the -IS launcher runs
it, must not pay for the stdlib modules that only annotations or rare configs need."""

from __future__ import annotations

import subprocess
import sys
import uuid

import ocipy_it_helpers as h  # loaded by conftest.py

pytestmark = h.pytestmark()

# typing imports re/contextlib; dataclasses imports inspect, ast, dis, tokenize; socket converts its constants to
# enums; pyroute2 (netDevices only) and cffi's compiler (seccomp only, and never its parser) are for the configs
# that ask for them; a valid config is checked by ocipy/spec/light.py, pydantic-core (with its `re` and `datetime`)
# only words the problems of an invalid one
CREATE_FORBIDDEN = {
    "typing",
    "dataclasses",
    "inspect",
    "ast",
    "socket",
    "argparse",
    "pydantic",
    "typing_extensions",
    "jsonschema",
    "pyroute2",
    "cffi",
    "pycparser",
    "ocipy.netdev",
    "ocipy.seccomp",
    "pydantic_core",
    "ocipy.spec.fast",
    "ocipy.spec.compiled",
    "re",
    "datetime",
    "contextlib",  # creator's undo stack is its own (contextlib brings collections and functools)
    "collections",
    "ctypes",  # the device eBPF program's bpf(2) goes through the shim (ctypes cost ~1.5 ms of every create)
    "_ctypes",
}


def _imported(rt, tmp_path, *args: str) -> tuple[int, str, set[str]]:
    """Run ocipy under -X importtime; stdio go to files (a created container keeps create's stdio open)."""
    code = (
        f"import sys; sys.path[:0] = [{str(h.PROJECT)!r}, *{[p for p in sys.path if p.endswith('site-packages')]!r}]; "
        "sys.argv[0] = 'ocipy'; from ocipy.cli import entry; entry()"
    )
    err = tmp_path / "importtime.err"
    with open(err, "wb") as f:
        rc = subprocess.run(
            [sys.executable, "-IS", "-X", "importtime", "-c", code, "--root", str(rt.root), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=f,
            timeout=60,
            check=False,
        ).returncode
    text = err.read_text()
    names = {
        line.rsplit("|", 1)[1].strip() for line in text.splitlines() if line.startswith("import time:") and "|" in line
    }
    return rc, text, names


def test_create_import_budget(rt, bundle, tmp_path):
    bundle.args("true")
    bundle.write()
    cid = f"imports-{uuid.uuid4().hex[:8]}"
    rc, err, names = _imported(rt, tmp_path, "create", "--bundle", str(bundle.path), cid)
    try:
        assert rc == 0, err[-2000:]
        assert "ocipy.creator" in names
        bad = {n for n in names if n in CREATE_FORBIDDEN or n.split(".")[0] in CREATE_FORBIDDEN}
        assert not bad, f"create imported {sorted(bad)}"
    finally:
        rt.delete(cid, "--force")


# `run` is create + start + wait + delete: none of those needs `signal` (its constants become enums: `enum`) or the
# modules create leaves out (contextlib brings collections and functools: ~3 ms of every run together)
RUN_FORBIDDEN = CREATE_FORBIDDEN | {"signal", "enum", "functools"}


def test_run_import_budget(rt, bundle, tmp_path):
    bundle.args("true")
    bundle.write()
    cid = f"imports-run-{uuid.uuid4().hex[:8]}"
    rc, err, names = _imported(rt, tmp_path, "run", "--bundle", str(bundle.path), cid)
    try:
        assert rc == 0, err[-2000:]
        assert "ocipy.operations.run" in names and "ocipy.lifecycle" in names
        bad = {n for n in names if n in RUN_FORBIDDEN or n.split(".")[0] in RUN_FORBIDDEN}
        assert not bad, f"run imported {sorted(bad)}"
    finally:
        rt.delete(cid, "--force")
