"""What `checkpoint` and `restore` share: their flags as CRIU options, the image and work directories, failures."""

from __future__ import annotations

import os
from typing import Any

from ocipy.criu import messages
from ocipy.criu.swrk import CriuFailed
from ocipy.errors import OcipyError, os_reason
from ocipy.namespaces import CLONE_FLAGS

CONFIG_ANNOTATION = "org.criu.config"
DEFAULT_CONFIG_FILE = "/etc/criu/ocipy.conf"
EMPTY_NS = {"network": CLONE_FLAGS["network"], "net": CLONE_FLAGS["network"]}


def _reason(exc: OSError) -> str:
    return os_reason(exc)


class Dirs:
    """The open image directory (and work directory): CRIU opens them as /proc/<our pid>/fd/N."""

    def __init__(self, images: str, images_fd: int, work: str | None, work_fd: int | None) -> None:
        self.images = images
        self.images_fd = images_fd
        self.work = work
        self.work_fd = work_fd

    @property
    def log_dir(self) -> str:
        return self.work or self.images

    def log_path(self, name: str) -> str:
        return os.path.join(self.log_dir, name)

    def close(self) -> None:
        for fd in (self.images_fd, self.work_fd):
            if fd is not None and fd >= 0:
                os.close(fd)
        self.images_fd, self.work_fd = -1, None


def _open_dir(path: str, flag: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise OcipyError(f"{flag} {path}: {_reason(exc)}") from None


def open_dirs(args: Any, create_images: bool) -> Dirs:
    """--image-path (default ./checkpoint, as runc) and --work-path; made (0700) when missing for a checkpoint."""
    images = os.path.abspath(getattr(args, "image_path", None) or os.path.join(os.getcwd(), "checkpoint"))
    work = getattr(args, "work_path", None)
    work = os.path.abspath(work) if work else None
    for path, flag, make in ((images, "--image-path", create_images), (work, "--work-path", True)):
        if path is None or not make:
            continue
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise OcipyError(f"{flag} {path}: {_reason(exc)}") from None
    images_fd = _open_dir(images, "--image-path")
    try:
        work_fd = _open_dir(work, "--work-path") if work else None
    except BaseException:
        os.close(images_fd)
        raise
    return Dirs(images, images_fd, work, work_fd)


def cg_mode(args: Any) -> int:
    mode = getattr(args, "manage_cgroups_mode", None) or ""
    if mode not in messages.CG_MODES or mode in ("none", "props"):
        raise OcipyError(f"--manage-cgroups-mode {mode}: must be one of soft, full, strict or ignore")
    return messages.CG_MODES[mode]


def empty_ns(args: Any) -> int:
    """--empty-ns network (repeatable, comma lists too): CRIU makes the namespace but restores none of its contents.

    Unlike runc, ocipy does not add the network namespace by default: a network namespace of the container's own
    (no path in the config) is dumped and restored whole, loopback address and TCP connections included
    (docs/checkpoint.md). A joined one is external either way."""
    value = getattr(args, "empty_ns", None)
    items: list[str] = []
    for v in value if isinstance(value, list) else [value] if value else []:
        items.extend(x for x in str(v).split(",") if x)
    mask = 0
    for ns in items:
        if ns not in EMPTY_NS:
            raise OcipyError(f"--empty-ns {ns}: only the network namespace is supported")
        mask |= EMPTY_NS[ns]
    return mask


def common_opts(args: Any, dirs: Dirs, document: dict[str, Any], log_file: str) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "images_dir_fd": dirs.images_fd,
        "log_level": 4,
        "log_file": log_file,
        "manage_cgroups": True,
        "manage_cgroups_mode": cg_mode(args),
        "notify_scripts": True,
        "shell_job": bool(getattr(args, "shell_job", False)),
        "ext_unix_sk": bool(getattr(args, "ext_unix_sk", False)),
        "tcp_established": bool(getattr(args, "tcp_established", False)),
        "file_locks": bool(getattr(args, "file_locks", False)),
        "empty_ns": empty_ns(args),
        "orphan_pts_master": True,
        "auto_dedup": bool(getattr(args, "auto_dedup", False)),
        "lazy_pages": bool(getattr(args, "lazy_pages", False)),
    }
    if dirs.work_fd is not None:
        opts["work_dir_fd"] = dirs.work_fd
    annotations = document.get("annotations") or {}
    if CONFIG_ANNOTATION in annotations:
        if annotations[CONFIG_ANNOTATION]:
            opts["config_file"] = str(annotations[CONFIG_ANNOTATION])
    else:
        opts["config_file"] = DEFAULT_CONFIG_FILE
    return opts


def failure(what: str, exc: CriuFailed, log_path: str) -> OcipyError:
    """One line: CRIU's reason (the first error of its log, else its answer) and where the log is."""
    from ocipy.criu import log

    reason = log.first_error(log_path) or exc.reason or "failed"
    if exc.errno and "errno" not in reason:
        reason += f" (errno {exc.errno}: {os_reason(exc.errno)})"
    return OcipyError(f"criu {what}: {reason} (log: {log_path})")
