"""What `ocipy --version`, `features` and `check` say about this build: version, commit, spec, Python, libseccomp.

Stdlib only and nothing is loaded: the commit comes from the file the package build writes (`ocipy/COMMIT`, see
setup.py) or, for a source checkout or an editable install, from the checkout's `.git` read as files (no `git`
process); the libseccomp version from the name of the library file `dlopen` would load (libseccomp.so.2.5.4).
"""

from __future__ import annotations

import os
import sys

from ocipy import __version__
from ocipy.posixlite import read_text
from ocipy.state import OCI_VERSION

VERSION = __version__  # the one place each is written: ocipy/__init__.py, ocipy/state.py
SPEC = OCI_VERSION

_PKG = os.path.dirname(os.path.abspath(__file__))


def _read(path: str) -> str:
    return (read_text(path) or "").strip()


def _git_dir(top: str) -> str:
    """The git directory of a checkout at `top` (a worktree's `.git` is a file naming it)."""
    dot = os.path.join(top, ".git")
    if os.path.isdir(dot):
        return dot
    text = _read(dot)
    if text.startswith("gitdir:"):
        gd = text[len("gitdir:") :].strip()
        return gd if os.path.isabs(gd) else os.path.normpath(os.path.join(top, gd))
    return ""


def _git_head(gitdir: str) -> str:
    head = _read(os.path.join(gitdir, "HEAD"))
    if not head.startswith("ref:"):
        return head
    ref = head[len("ref:") :].strip()
    # a worktree keeps HEAD but shares refs with the main repository (`commondir`)
    common = _read(os.path.join(gitdir, "commondir"))
    dirs = [gitdir] + ([os.path.normpath(os.path.join(gitdir, common))] if common else [])
    for d in dirs:
        sha = _read(os.path.join(d, ref))
        if sha:
            return sha
        for line in _read(os.path.join(d, "packed-refs")).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    return ""


def commit() -> str:
    """The git commit this ocipy was built from, or "" when nobody knows."""
    built = _read(os.path.join(_PKG, "COMMIT"))
    if built:
        return built
    gitdir = _git_dir(os.path.dirname(_PKG))
    sha = _git_head(gitdir) if gitdir else ""
    return sha if len(sha) == 40 and all(c in "0123456789abcdef" for c in sha) else ""


def python() -> str:
    v = sys.version_info
    return f"{sys.implementation.name} {v.major}.{v.minor}.{v.micro}"


def libseccomp() -> str:
    """The version of the libseccomp.so.2 `dlopen` would load, from its file name; "" when not found."""
    from . import seccomp

    found = seccomp.find_libseccomp()
    if found is None:
        return ""
    name = os.path.basename(os.path.realpath(found[0]))
    prefix = "libseccomp.so."
    ver = name[len(prefix) :] if name.startswith(prefix) else ""
    return ver if ver.count(".") == 2 else ""


def text() -> str:
    """`ocipy --version`, in runc's shape (docker info reads the `commit:` line)."""
    lines = [f"ocipy version {VERSION}", f"commit: {commit()}", f"spec: {SPEC}", f"python: {python()}"]
    seccomp = libseccomp()
    if seccomp:
        lines.append(f"libseccomp: {seccomp}")
    return "\n".join(lines)
