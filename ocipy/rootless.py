"""Is ocipy running rootless, and where does a rootless ocipy keep its state (docs/rootless.md).

Rootless means "owns nothing on the host", as runc's `--rootless auto` decides it:
- the effective uid is not 0 (a plain user), or
- the process sits in a user namespace that does not map the whole id range (`/proc/self/uid_map` is not
  `0 0 4294967295`): uid 0 there, as under rootless Podman, is still an unprivileged user of the host.

`--rootless true|false` overrides the detection (runc's flag); `auto` is the default.

The state root follows runc's choice: `$XDG_RUNTIME_DIR/ocipy` for an unprivileged caller (in a partial user
namespace too, unless `USER=root`, runc's exception for a root that runs in a user namespace of its own), else
`/run/ocipy`. `--root` always wins. When the caller is unprivileged and `$XDG_RUNTIME_DIR` is not usable, the error
names the variable.

Stdlib only, through posixlite: the lifecycle verbs import this module (no `os`, no `re`).
"""

from __future__ import annotations

from posix import W_OK, X_OK, access

from . import posixlite as px
from .errors import OcipyError, os_reason
from .posixlite import read_text

DEFAULT_ROOT = "/run/ocipy"
FULL_RANGE = 4294967295  # a uid_map line "0 0 4294967295" is the initial user namespace (or one mapping all)
ROOTLESS_VALUES = ("true", "false", "auto")

_userns_cache: list[bool] = []


def map_is_partial(text: str) -> bool:
    """A uid_map text that does not map the whole range (moby/sys/userns's rule): any line other than
    `0 0 4294967295` alone. An empty map (a user namespace whose map is not written yet) is partial too."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        return True
    try:
        inside, outside, count = (int(x) for x in lines[0])
    except ValueError:
        return True
    return not (inside == 0 and outside == 0 and count == FULL_RANGE)


def in_user_namespace() -> bool:
    """True when this process runs in a user namespace that does not map every id (cached: it cannot change)."""
    if not _userns_cache:
        text = read_text("/proc/self/uid_map")
        # no /proc/self/uid_map: a kernel without user namespaces, so the initial one
        _userns_cache.append(False if text is None else map_is_partial(text))
    return _userns_cache[0]


def detect(flag: str = "auto") -> bool:
    """The effective rootless setting: `--rootless true|false` as given, else runc's auto detection."""
    if flag == "true":
        return True
    if flag == "false":
        return False
    if flag not in ("", "auto"):
        raise OcipyError(f"invalid --rootless value: {flag} (true, false or auto)")
    return px.geteuid() != 0 or in_user_namespace()


def reason() -> str:
    """Why auto detection says rootless, for messages (`uid 1000`, `uid 0 in a user namespace`), or ""."""
    euid = px.geteuid()
    if euid != 0:
        return f"uid {euid}"
    if in_user_namespace():
        return "uid 0 in a user namespace that does not map the host's root"
    return ""


def honor_xdg_runtime_dir() -> bool:
    """runc's shouldHonorXDGRuntimeDir: an unprivileged caller, or root in a partial user namespace unless USER is
    root (a root that made a user namespace of its own keeps /run/ocipy)."""
    if px.geteuid() != 0:
        return True
    if not in_user_namespace():
        return False
    return px.getenv("USER", "\0") != "root"


def default_root() -> str:
    """The state root when no --root is given (see the module doc). Raises OcipyError naming XDG_RUNTIME_DIR when
    an unprivileged caller has none it can use and cannot write /run/ocipy either."""
    if not honor_xdg_runtime_dir():
        # Podman (as root) calls with XDG_RUNTIME_DIR= and no PATH: root's choice depends on neither
        return DEFAULT_ROOT
    xdg = px.getenv("XDG_RUNTIME_DIR", "")
    if xdg:
        if not xdg.startswith("/"):
            raise OcipyError(
                f"$XDG_RUNTIME_DIR ({xdg}) is not an absolute path; set it to a directory you own or pass --root"
            )
        return px.join(xdg, "ocipy")
    if _writable_dir(DEFAULT_ROOT):
        return DEFAULT_ROOT
    raise OcipyError(
        f"rootless ({reason() or 'unprivileged'}): $XDG_RUNTIME_DIR is not set and {DEFAULT_ROOT} is not writable;"
        " set XDG_RUNTIME_DIR to a directory you own (e.g. /run/user/$(id -u)) or pass --root"
    )


def _writable_dir(path: str) -> bool:
    try:
        return access(path, W_OK | X_OK)
    except OSError:
        return False


def explain_root_error(root: str, exc: OSError, given: bool) -> str:
    """One line for a state root that cannot be made or used: names XDG_RUNTIME_DIR when the root came from it or
    when an unprivileged caller fell back to /run/ocipy."""
    why = os_reason(exc)
    if given:
        return f"state root {root} (--root): {why}"
    if honor_xdg_runtime_dir() and px.getenv("XDG_RUNTIME_DIR", ""):
        return f"state root {root} (from $XDG_RUNTIME_DIR): {why}; set XDG_RUNTIME_DIR to a directory you own or pass --root"
    if px.geteuid() != 0 or in_user_namespace():
        return (
            f"state root {root}: {why}; rootless ({reason()}): set XDG_RUNTIME_DIR to a directory you own"
            " or pass --root"
        )
    return f"state root {root}: {why}"


def no_cgroup_message(what: str, private: object) -> str:
    """Why pause, update, events or ps cannot work on a container without a cgroup (`private`: the container's
    private state record, which says whether it was created rootless)."""
    if isinstance(private, dict) and private.get("rootless"):
        return (
            f"container has no cgroup to {what}: it was created rootless without a cgroup this user may write"
            " (delegate a cgroup v2 subtree and set /linux/cgroupsPath; docs/rootless.md)"
        )
    return f"container has no cgroup to {what}"
