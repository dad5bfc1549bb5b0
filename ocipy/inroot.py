"""Read a file of a container's root filesystem from the host, as the runtime, without ever leaving that root.

Symlinks are resolved by hand, one component at a time, against the root (an absolute link starts again at the root,
`..` stops there), every component is opened with O_NOFOLLOW, and only a regular file is read: a rootfs cannot make
the runtime read a host file through a link. Stdlib only.
"""

from __future__ import annotations

import posix as os  # not `os` (~1 ms on every exec: ocipy/posixlite.py); the same functions
from _stat import S_ISLNK, S_ISREG  # `stat` is this C module plus a Python layer

MAX_LINKS = 40


def read_in_root(root: str, path: str, limit: int = 1 << 20) -> bytes | None:
    """The first `limit` bytes of `path` (a container path) under `root`; None when it is absent or not a file."""
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    stack = [root_fd]
    try:
        parts = [p for p in path.split("/") if p]
        links = 0
        while parts:
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            cur = stack[-1]
            st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            if S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    return None
                target = os.readlink(name, dir_fd=cur)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                parts = [p for p in target.split("/") if p] + parts
                continue
            if parts:
                # O_DIRECTORY with O_NOFOLLOW: a component swapped for a link since the stat fails here
                stack.append(os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur))
                continue
            if not S_ISREG(st.st_mode):
                return None
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=cur)
            try:
                if not S_ISREG(os.fstat(fd).st_mode):
                    return None
                return os.read(fd, limit)
            finally:
                os.close(fd)
        return None
    except OSError:
        return None
    finally:
        for fd in stack:
            os.close(fd)


def passwd_home(passwd: bytes | None, uid: int) -> str | None:
    """The home directory of `uid` in an /etc/passwd text, None when it has no entry."""
    for line in (passwd or b"").decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2].strip() == str(uid):
            return fields[5] or None
    return None
