"""Loading a bundle: config.json through the models, plus the facts a Linux runtime needs beyond the schema.

`validate_bundle` reports every problem at once (for `ocipy validate`); `load_bundle` stops at the first one (for
`ocipy create`). Both name each problem with an RFC 6901 pointer into config.json.

`load_bundle` decides validity with the compiled validator (ocipy/spec/fast.py) and imports pydantic only for a
config that fails it, to word the problem; `validate_bundle` always uses the models.
"""

from __future__ import annotations

import posix as os  # not `os` (~1.2 ms of every create: ocipy/posixlite.py); the same functions
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` imports `re` and `contextlib` (~5 ms per create): annotations only
    from typing import Any

from ocipy import errors
from ocipy import posixlite as px
from ocipy.errors import OcipyError, os_reason
from ocipy.spec.checks import CAPABILITIES
from ocipy.spec.document import Problem, SpecError, parse_json
from ocipy.state import HOOK_KINDS as _HOOK_KINDS

CONFIG_NAME = "config.json"


def validate_bundle(bundle_dir: str) -> list[tuple[str, str]]:
    """Every problem of the bundle as (pointer, message); an empty list means it is valid."""
    return _check(bundle_dir)[2]


def load_bundle(bundle_dir: str) -> tuple[Any, str, dict[str, Any]]:
    """(config, absolute rootfs path, config document), or OcipyError naming the first problem.

    The config has the attributes of `ocipy.spec.config.Spec` (it is a record of ocipy/spec/compiled.py); the
    document is config.json as parsed, after the lenient fixes, for what is handed on as JSON (hooks, resources)."""
    spec, rootfs, problems, document = _check(bundle_dir, lenient=True)
    if problems:
        pointer, message = problems[0]
        if not pointer and px.isdir(bundle_dir):  # the file itself (unreadable, not JSON): its whole path
            raise OcipyError(f"{px.join(px.abspath(bundle_dir), CONFIG_NAME)}: {message}")
        raise OcipyError(format_bundle_problem(problems[0]))
    assert spec is not None and rootfs is not None  # no problems means both were produced
    return spec, rootfs, document


def format_bundle_problem(problem: Problem) -> str:
    """One line: `/mounts/3/destination: must be an absolute path`, or `config.json: <message>` for the file."""
    pointer, message = problem
    return f"{pointer}: {message}" if pointer else f"{CONFIG_NAME}: {message}"


# What a device's type puts in st_mode's file-type bits (S_IFCHR, S_IFBLK, S_IFIFO).
_TYPE_BITS = {"c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000}


def _lenient(obj: object) -> None:
    """What `create` runs although `validate` reports it, because the spec or runc's practice lets it run."""
    _accept_mode_type_bits(obj)
    _drop_unknown_capabilities(obj)
    _absolute_destinations(obj)


def _drop_unknown_capabilities(obj: object) -> None:
    """config.md: a capability that cannot be mapped to the kernel MUST be logged as a warning, and runtimes SHOULD
    NOT fail on it."""
    process = obj.get("process") if isinstance(obj, dict) else None
    capsets = process.get("capabilities") if isinstance(process, dict) else None
    if not isinstance(capsets, dict):
        return
    known = frozenset(CAPABILITIES)
    for key, names in capsets.items():
        if isinstance(names, list):
            for i, name in enumerate(names):
                if isinstance(name, str) and name not in known:
                    # a warning where runc puts it (stderr without --log): config.md says logged, not dropped
                    errors.warning(f"/process/capabilities/{key}/{i}: unknown capability {name!r}: ignored")
            capsets[key] = [n for n in names if not isinstance(n, str) or n in known]


def _absolute_destinations(obj: object) -> None:
    """config.md: a relative mount destination MUST be interpreted as relative to "/"."""
    mounts = obj.get("mounts") if isinstance(obj, dict) else None
    for m in mounts if isinstance(mounts, list) else ():
        if isinstance(m, dict) and isinstance(m.get("destination"), str) and not m["destination"].startswith("/"):
            m["destination"] = "/" + m["destination"]


def _accept_mode_type_bits(obj: object) -> None:
    """Podman writes /linux/devices/N/fileMode with the file-type bits (0o20600 for a char device). The schema
    allows permission bits only and `validate` says so, but runc runs such configs, so `create` drops type bits
    that match the device's own type; any other stray bit is still an error."""
    linux = obj.get("linux") if isinstance(obj, dict) else None
    devices = linux.get("devices") if isinstance(linux, dict) else None
    for dev in devices if isinstance(devices, list) else ():
        if not isinstance(dev, dict):
            continue
        mode, bits = dev.get("fileMode"), _TYPE_BITS.get(dev.get("type"))  # type: ignore[arg-type]
        if type(mode) is int and bits and mode & 0o170000 == bits:
            dev["fileMode"] = mode & 0o7777


def _check(bundle_dir: str, lenient: bool = False) -> tuple[Any, str | None, list[Problem], Any]:
    bundle_abs = px.abspath(bundle_dir)
    if not px.isdir(bundle_abs):
        what = "does not exist" if not px.lexists(bundle_abs) else "is not a directory"
        return None, None, [("", f"bundle {bundle_abs} {what}")], None
    path = px.join(bundle_abs, CONFIG_NAME)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return None, None, [("", os_reason(exc))], None
    try:
        obj = parse_json(data)
    except SpecError as exc:
        return None, None, exc.problems, None
    if lenient:
        _lenient(obj)
    spec, problems = _validate(obj, fast=lenient)
    rootfs = None
    if isinstance(obj, dict):
        reported = {p for p, _ in problems}
        facts: list[Problem] = []
        rootfs = _bundle_facts(obj, bundle_abs, facts)
        problems.extend(p for p in facts if p[0] not in reported)
    return (spec if not problems else None), rootfs, problems, obj


def _validate(obj: Any, fast: bool) -> tuple[Any, list[Problem]]:
    """The config object and its problems; with `fast`, the models only word the problems of an invalid config."""
    if fast:
        # pure Python first (ocipy/spec/light.py, the rules generated from the models): pydantic-core's extension,
        # its validator and the `re`/`datetime` it imports cost ~8 ms of create's CPU; it still decides (and the
        # models word the problems) when light.py says invalid, as for exec
        from ocipy.spec import light

        checked = light.validate("Create", obj)
        if checked is not None:
            from ocipy.spec.checks import version_problem

            problem = version_problem(obj.get("ociVersion"))
            return (None, [problem]) if problem else (checked, [])
        from ocipy.spec import fast as fast_mod

        return fast_mod.check_config(obj)
    from ocipy.spec.load import config_problems

    return config_problems(obj)


def _bundle_facts(cfg: dict[str, Any], bundle_abs: str, out: list[Problem]) -> str | None:
    """Checks the schema cannot make; returns the absolute rootfs path when it is usable."""
    rootfs = _check_root(cfg, bundle_abs, out)

    process = cfg.get("process")
    if isinstance(process, dict):
        args = process.get("args")
        if args is None:
            out.append(("/process/args", "missing required field (the command to run)"))
        elif isinstance(args, list) and not args:
            out.append(("/process/args", "must not be empty"))
        cwd = process.get("cwd")
        if isinstance(cwd, str) and not cwd.startswith("/"):
            out.append(("/process/cwd", "must be an absolute path"))

    mounts = cfg.get("mounts")
    if isinstance(mounts, list):
        for i, m in enumerate(mounts):
            dest = m.get("destination") if isinstance(m, dict) else None
            # config.md still allows relative destinations on Linux (deprecated, read against "/"): `create` runs
            # them (see _lenient), `validate` reports them so a bundle can be fixed.
            if isinstance(dest, str) and not dest.startswith("/"):
                out.append((f"/mounts/{i}/destination", "must be an absolute path"))

    hooks = cfg.get("hooks")
    if isinstance(hooks, dict):
        for kind in _HOOK_KINDS:
            entries = hooks.get(kind)
            if not isinstance(entries, list):
                continue
            for i, hook in enumerate(entries):
                hpath = hook.get("path") if isinstance(hook, dict) else None
                if isinstance(hpath, str) and not hpath.startswith("/"):
                    out.append((f"/hooks/{kind}/{i}/path", "must be an absolute path"))

    linux = cfg.get("linux")
    if isinstance(linux, dict):
        _check_userns(linux, out)
    return rootfs


def _check_root(cfg: dict[str, Any], bundle_abs: str, out: list[Problem]) -> str | None:
    root = cfg.get("root")
    if root is None:
        out.append(
            (
                "/root",
                "missing required field (linux containers need a root filesystem)",
            )
        )
        return None
    if not isinstance(root, dict) or not isinstance(root.get("path"), str):
        return None  # the model reports it
    path: str = root["path"]
    if not path:
        out.append(("/root/path", "must not be empty"))
        return None
    if "\0" in path:
        out.append(("/root/path", "must not contain a NUL byte"))
        return None
    rootfs = px.normpath(px.join(bundle_abs, path))  # join keeps an absolute path as is
    try:
        st = os.lstat(rootfs)
    except OSError as exc:
        out.append(("/root/path", f"{rootfs}: {os_reason(exc)}"))
        return None
    if stat.S_ISLNK(st.st_mode):
        out.append(("/root/path", f"{rootfs}: must not be a symlink"))
        return None
    if not stat.S_ISDIR(st.st_mode):
        out.append(("/root/path", f"{rootfs}: not a directory"))
        return None
    return rootfs


def _check_userns(linux: dict[str, Any], out: list[Problem]) -> None:
    namespaces = linux.get("namespaces")
    if not isinstance(namespaces, list):
        return
    new_userns = any(isinstance(ns, dict) and ns.get("type") == "user" and "path" not in ns for ns in namespaces)
    if not new_userns:
        return
    for key in ("uidMappings", "gidMappings"):
        if not linux.get(key):
            out.append((f"/linux/{key}", "required when a new user namespace is created"))
