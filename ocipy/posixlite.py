"""`os` for the lifecycle path, without `import os`.

`import os` costs ~1 ms here (it builds `os.environ` and imports `_collections_abc` for it): a seventh of an
`ocipy kill`, whose whole budget over the interpreter's start-up is ~1.5 ms. The functions below are the built-in
`posix` module's, which `os` re-exports unchanged; the path helpers follow `posixpath` (a test compares them).
Code off the lifecycle path uses `os` as usual.
"""

from posix import (
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_DIRECTORY,
    O_NOFOLLOW,
    O_NONBLOCK,
    O_RDONLY,
    O_TRUNC,
    O_WRONLY,
    _exit,
    close,
    dup2,
    environ,
    fstat,
    fsync,
    getcwd,
    geteuid,
    getpid,
    listdir,
    lstat,
    mkdir,
    open,
    pidfd_open,
    read,
    rename,
    rmdir,
    scandir,
    stat,
    strerror,
    unlink,
    write,
)

__all__ = [
    "O_APPEND",
    "O_CLOEXEC",
    "O_CREAT",
    "O_DIRECTORY",
    "O_NOFOLLOW",
    "O_NONBLOCK",
    "O_RDONLY",
    "O_TRUNC",
    "O_WRONLY",
    "_exit",
    "abspath",
    "close",
    "dirname",
    "dup2",
    "environ",
    "exists",
    "fstat",
    "fsync",
    "getenv",
    "geteuid",
    "getpid",
    "isabs",
    "isdir",
    "isfile",
    "ismount",
    "join",
    "lexists",
    "listdir",
    "lstat",
    "mkdir",
    "normpath",
    "open",
    "pidfd_open",
    "read",
    "read_all",
    "read_text",
    "rename",
    "rmdir",
    "scandir",
    "stat",
    "strerror",
    "unlink",
    "write",
]

DEVNULL = "/dev/null"
_S_IFMT, _S_IFREG, _S_IFDIR, _S_IFLNK = 0o170000, 0o100000, 0o040000, 0o120000


def getenv(name: str, default: str = "") -> str:
    """os.environ.get for str: posix.environ has bytes keys and values (decoded like os.fsdecode)."""
    value = environ.get(name.encode("utf-8", "surrogateescape"))
    return default if value is None else value.decode("utf-8", "surrogateescape")


def join(a: str, *parts: str) -> str:
    """posixpath.join: an absolute part starts over."""
    path = a
    for b in parts:
        if b.startswith("/"):
            path = b
        elif not path or path.endswith("/"):
            path += b
        else:
            path += "/" + b
    return path


def normpath(path: str) -> str:
    """posixpath.normpath: `.` and empty parts go, `..` takes the part before it; POSIX keeps exactly two leading
    slashes as they are."""
    if not path:
        return "."
    initial = 2 if path.startswith("//") and not path.startswith("///") else 1 if path.startswith("/") else 0
    comps: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp != ".." or (not initial and not comps) or (comps and comps[-1] == ".."):
            comps.append(comp)
        elif comps:
            comps.pop()
    return "/" * initial + "/".join(comps) or "."


def abspath(path: str) -> str:
    return normpath(path if path.startswith("/") else join(getcwd(), path))


def isfile(path: str) -> bool:
    try:
        return stat(path).st_mode & _S_IFMT == _S_IFREG
    except (OSError, ValueError):
        return False


def read_text(path: str) -> str | None:
    """A small file's text (proc, sys, cgroup and git files), None when it cannot be read. Raw reads and
    bytes.decode: a text-mode open with encoding="ascii" imports the codec module (encodings.ascii)."""
    try:
        fd = open(path, O_RDONLY | O_CLOEXEC)
    except OSError:
        return None
    try:
        data = read_all(fd)
    except OSError:
        return None
    finally:
        close(fd)
    return data.decode("ascii", "replace")


def read_all(fd: int) -> bytes:
    """What is left to read from `fd`, in raw reads: no io object (its buffer and extra syscalls are a tenth of a small
    file's read). The caller opens and closes `fd`; an OSError of the read is the caller's."""
    chunks = []
    while chunk := read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def isdir(path: str) -> bool:
    try:
        return stat(path).st_mode & _S_IFMT == _S_IFDIR
    except (OSError, ValueError):
        return False


def exists(path: str) -> bool:
    try:
        stat(path)
    except (OSError, ValueError):
        return False
    return True


def lexists(path: str) -> bool:
    try:
        lstat(path)
    except (OSError, ValueError):
        return False
    return True


def isabs(path: str) -> bool:
    return path.startswith("/")


def dirname(path: str) -> str:
    """posixpath.dirname: everything before the last slash, trailing slashes dropped unless it is all slashes."""
    head = path[: path.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def ismount(path: str) -> bool:
    """posixpath.ismount: not a symlink, and on another device than its parent or the same inode as it."""
    try:
        st = lstat(path)
    except (OSError, ValueError):
        return False
    if st.st_mode & _S_IFMT == _S_IFLNK:
        return False
    try:
        parent = lstat(join(path, ".."))
    except (OSError, ValueError):
        return False
    return st.st_dev != parent.st_dev or st.st_ino == parent.st_ino
