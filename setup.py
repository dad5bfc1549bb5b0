"""Only what pyproject.toml cannot say: the cffi extension ocipy._shim_c and the build of ocipy-init it embeds, the
stable-ABI wheel tag, and the commit `ocipy --version` prints (docs/packaging.md).

- The extension uses only the limited API (cffi compiles it with Py_LIMITED_API: `_shim_c.abi3.so`), so the wheel
  is tagged `cp311-abi3` and one wheel installs on CPython 3.11 and every later 3.x.
- `ocipy/COMMIT` is written into the built package (build_py) and into the sdist (from git when building in a
  checkout, else carried over from the sdist being built); it is never written into the source tree.
"""

import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "shim"))
from build_shim import BuildExt


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", HERE, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        out = None
    if out is not None and out.returncode == 0 and len(out.stdout.strip()) == 40:
        return out.stdout.strip()
    try:
        with open(os.path.join(HERE, "ocipy", "COMMIT")) as f:  # an sdist carries it
            return f.read().strip()
    except OSError:
        return ""


def _write_commit(pkg_dir: str) -> None:
    commit = _commit()
    if commit and os.path.isdir(pkg_dir):
        path = os.path.join(pkg_dir, "COMMIT")
        if os.path.islink(path):
            os.unlink(path)  # sdist trees hard-link or copy; never write through into the checkout
        with open(path + ".tmp", "w") as f:
            f.write(commit + "\n")
        os.replace(path + ".tmp", path)


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            _write_commit(os.path.join(self.build_lib, "ocipy"))


class Sdist(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        target = os.path.join(base_dir, "ocipy", "COMMIT")
        if os.path.exists(target):
            os.unlink(target)  # may be a hard link to a file in the source tree
        _write_commit(os.path.join(base_dir, "ocipy"))


setup(
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy, "sdist": Sdist},
    # the `ocipy` command: a /bin/sh + Python file that runs the interpreter beside it with -I -S (launcher/ocipy;
    # docs/packaging.md says why not a console-script entry point)
    scripts=["launcher/ocipy"],
    cffi_modules=["shim/build_shim.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
