"""`ocipy checkpoint`: a running (or paused) container dumped to an image directory by CRIU (docs/checkpoint.md).

Unless --leave-running or --pre-dump, CRIU kills the dumped tasks and the container is destroyed as `delete` would
(cgroups removed, poststop hooks, the state directory gone), as runc does.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ocipy import errors, lifecycle, procfs
from ocipy.criu import common, externals, messages, swrk
from ocipy.errors import OcipyError, os_reason
from ocipy.store import CONFIG_FILE, Container, Store


def _document(c: Container) -> dict[str, Any]:
    """The config as create saw it (the bundle's only for containers made before the store kept one)."""
    from ocipy import fastjson

    raw = c.read_file(CONFIG_FILE)
    if raw is None:
        bundle = c.read_state().bundle
        try:
            with open(os.path.join(bundle, "config.json"), "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise OcipyError(f"{bundle}/config.json: {os_reason(exc)}") from None
    try:
        doc = fastjson.loads(raw)
    except ValueError as exc:
        raise OcipyError(f"{c.dir}/{CONFIG_FILE}: {exc}") from None
    return doc if isinstance(doc, dict) else {}


def _parent_path(args: Any, images: str) -> str | None:
    parent = getattr(args, "parent_path", None)
    if not parent:
        return None
    if os.path.isabs(parent):
        raise OcipyError("--parent-path must be relative (to --image-path)")
    real = os.path.join(images, parent)
    if not os.path.isdir(real):
        raise OcipyError(f"--parent-path {real}: not a directory")
    return str(parent)


def _page_server(args: Any) -> dict[str, Any] | None:
    value = getattr(args, "page_server", None)
    if not value:
        return None
    host, sep, port = str(value).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise OcipyError("--page-server: use ADDRESS:PORT")
    return {"address": host, "port": int(port)}


def _status_fd(args: Any) -> int:
    fd = int(getattr(args, "status_fd", -1) if getattr(args, "status_fd", None) is not None else -1)
    if fd < 0:
        return -1
    import fcntl

    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as exc:
        raise OcipyError(f"--status-fd {fd}: {os_reason(exc)}") from None
    if not flags & (os.O_WRONLY | os.O_RDWR):
        raise OcipyError(f"--status-fd {fd}: not writable")
    return fd


def need_features(criu: str, wanted: dict[str, bool]) -> None:
    """runc's check: --pre-dump needs memory tracking (soft-dirty bits), --lazy-pages userfaultfd."""
    got = swrk.features(criu, wanted)
    missing = [k for k, v in wanted.items() if v and not got.get(k)]
    hints = {
        "mem_track": "memory change tracking (a kernel with CONFIG_MEM_SOFT_DIRTY; `criu check --feature "
        "mem_dirty_track`)",
        "lazy_pages": "lazy pages (userfaultfd; `criu check --feature uffd-noncoop`)",
    }
    if missing:
        raise OcipyError("criu cannot do this here: missing " + ", ".join(hints.get(k, k) for k in missing))


def checkpoint(args: Any) -> int:
    cid = args.container_id
    store = Store.from_args(args)
    c = store.open_locked(cid)
    try:
        return _checkpoint(args, c)
    finally:
        c.close()


def _checkpoint(args: Any, c: Container) -> int:
    c.status().require("checkpoint")
    pre_dump = bool(getattr(args, "pre_dump", False))
    leave_running = bool(getattr(args, "leave_running", False))
    criu = swrk.find_criu(getattr(args, "criu", None))
    document = _document(c)
    seccomp = (document.get("linux") or {}).get("seccomp") or {}
    if isinstance(seccomp, dict) and seccomp.get("listenerPath"):
        raise OcipyError(
            "/linux/seccomp/listenerPath: a container whose seccomp filter notifies a listener cannot be "
            "checkpointed (CRIU cannot hand the listener back)"
        )
    wanted: dict[str, bool] = {}
    if pre_dump:
        wanted["mem_track"] = True
    if getattr(args, "lazy_pages", False):
        wanted["lazy_pages"] = True
    if wanted:
        need_features(criu, wanted)

    dirs = common.open_dirs(args, create_images=True)
    try:
        log_path = dirs.log_path("dump.log")
        opts = common.common_opts(args, dirs, document, "dump.log")
        opts.update(
            pid=c.pid,
            root=c.read_state().rootfs,
            leave_running=leave_running,
            tcp_skip_in_flight=bool(getattr(args, "tcp_skip_in_flight", False)),
            link_remap=bool(getattr(args, "link_remap", False)),
        )
        freezer = c.cgroup().freezer_dir()
        if freezer:
            opts["freeze_cgroup"] = freezer
        ps = _page_server(args)
        if ps:
            opts["ps"] = ps
        parent = _parent_path(args, dirs.images)
        if parent:
            opts["parent_img"] = parent
            opts["track_mem"] = True
        status_fd = _status_fd(args) if opts["lazy_pages"] else -1
        if not pre_dump:
            with open(f"/proc/{c.pid}/mountinfo") as f:
                mounts = externals.parse_mountinfo(f.read())
            plan = externals.for_dump(document, mounts)
            opts["ext_mnt"] = [{"key": k, "val": v} for k, v in plan.ext_mnt]
            stdio = externals.external_stdio(c.pid, mounts)
            opts["external"] = plan.external + [s["key"] for s in stdio]
            externals.write_record(dirs.images_fd, plan, externals.descriptors_of(c.pid), stdio)
        errors.debug(f"criu {'pre-dump' if pre_dump else 'dump'} of {c.id} (pid {c.pid}) into {dirs.images}")

        def notify(script: str, _pid: int, _fds: list[int]) -> None:
            nonlocal status_fd
            if script == "status-ready" and status_fd >= 0:
                with contextlib.suppress(OSError):
                    os.write(status_fd, b"\0")
                    os.close(status_fd)
                status_fd = -1

        request = {"type": messages.PRE_DUMP if pre_dump else messages.DUMP, "opts": opts}
        try:
            with swrk.Session(criu) as session:
                session.call(request, notify)
        except swrk.CriuFailed as exc:
            raise common.failure("pre-dump" if pre_dump else "dump", exc, log_path) from None
    finally:
        dirs.close()
    if not leave_running and not pre_dump:
        destroy(c)
    return 0


def destroy(c: Container) -> None:
    """After a dump that stopped the container: what `delete` does to a stopped container."""
    if not procfs.wait_gone(c.pid, c.starttime, 10.0):
        raise OcipyError(f"container init (pid {c.pid}) still runs after the dump")
    lifecycle.destroy(c)
