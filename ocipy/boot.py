"""A verb's ocipy modules executed from one file, its boot image, instead of imported one by one (docs/startup.md)."""

# Every `ocipy` command is a fresh interpreter, and importlib spends ~50 us on each module: it searches the path,
# stats the source, opens and checks the .pyc, takes the module lock, sets the attributes. The launchers call
# `start()` before importing ocipy.cli: it finds the verb in argv and reads `__pycache__/boot.VERB.TAG.img`, which
# an earlier successful run of the verb wrote (ocipy/bootsave.py). If the image is sound and every source it names
# is unchanged, the modules every run of the verb imports are executed straight into sys.modules, dependencies
# first, and the others it holds are served from memory when a function imports them. Anything wrong and the image
# is not used: normal import follows, and the run records a new one.
#
# This module is itself imported the usual way on every command, so it is small and imports nothing: `posix`,
# `marshal` and `_imp` are loaded before any script runs, and so are importlib's ModuleSpec and SourceFileLoader.
# Docstrings would be loaded on every command too: the explanations here are comments.

import _imp
import marshal
import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

    # name, path under ROOT, package?, the source's st_mtime_ns and st_size, code (bytes for one served on demand)
    Entry = tuple[str, str, bool, int, int, Any]

FORMAT = 2  # 2: what a path-dependent run pulled in is on demand (bootsave.Recorder._pulling)
HEAD = sys.modules["_frozen_importlib_external"].MAGIC_NUMBER + b"ocipy-boot-image" + bytes((FORMAT,))
HASH_KEY = 0x6F63697079  # _imp.source_hash's key (SipHash, as hash-based .pyc files use): any constant
MARK = "ocipy.boot"  # the `loader_state` of the spec of a module whose code came from an image
OPT_OUT = "OCIPY_NO_BOOT_IMAGE"  # set (to anything): no image is read or written

ROOT = __file__.rpartition("/")[0].rpartition("/")[0]  # the directory holding the ocipy package
CACHE_DIR = f"{ROOT}/ocipy/__pycache__"

_ModuleSpec = sys.modules["_frozen_importlib"].ModuleSpec
_SourceFileLoader = sys.modules["_frozen_importlib_external"].SourceFileLoader
_Module = type(sys)
_Code = type((lambda: 0).__code__)

# runc's global flags (ocipy/cli.py parse_globals): those that take a value, and the booleans
_VALUE_FLAGS = frozenset(("--root", "--log", "--log-format", "--criu"))
_BOOL_FLAGS = frozenset(("--debug", "--systemd-cgroup"))
_ROOTLESS_VALUES = ("true", "false", "auto")  # --rootless takes one of these, or nothing (a test checks all three)

# what start() did, for finish() and bootsave.save()
verb = ""
path = ""
pid = 0
eager: "tuple[Entry, ...]" = ()
lazy: "tuple[Entry, ...]" = ()
used = False
ran = False  # the verb itself ran (ocipy.cli.dispatch): not --help, not a usage error
recorder: "Any" = None
note = ""


def find_verb(argv: list[str]) -> str | None:
    # The verb past runc's global flags (argv[0] is the command). None when unsure (help, version, a flag this does
    # not know): the CLI decides those, without an image.
    i, n = 1, len(argv)
    while i < n:
        tok = argv[i]
        if tok[:1] != "-":
            break
        # Go's flag package takes -flag and --flag alike, and -flag=value
        name, eq, _ = (tok if tok[:2] == "--" else "-" + tok).partition("=")
        if name in _VALUE_FLAGS:
            i += 1 if eq else 2
        elif name in _BOOL_FLAGS:
            i += 1
        elif name == "--rootless":  # takes true/false/auto, or nothing
            i += 2 if not eq and i + 1 < n and argv[i + 1] in _ROOTLESS_VALUES else 1
        else:
            return None
    if i >= n:
        return None
    word = argv[i]
    return word if word.isascii() and word.isalpha() and word.islower() and len(word) <= 20 else None


def image_path(word: str) -> str:
    return f"{CACHE_DIR}/boot.{word}.{sys.implementation.cache_tag}.img"


def start(argv: list[str] | None = None) -> None:
    # Load the verb's image if it is sound, else arrange to record one. Never raises for a bad image.
    global verb, path, pid, note, recorder
    word = find_verb(sys.argv if argv is None else argv)
    if (
        word is None
        or OPT_OUT.encode() in posix.environ
        or sys.flags.optimize  # an image holds the code of the plain .pyc files
        or sys.flags.verbose
        or "importtime" in sys._xoptions  # who asks what is imported sees every module imported
        or sys.pycache_prefix is not None
        or sys.implementation.cache_tag is None
    ):
        return
    verb, path, pid = word, image_path(word), posix.getpid()
    try:
        note = _load()
    except Exception as exc:  # noqa: BLE001 -- damage of any kind: normal import follows, a new image is written
        note = f"not used ({type(exc).__name__}: {exc})"
    if not used and may_write():
        from . import bootsave

        recorder = bootsave.Recorder()
        recorder.install()


def may_write() -> bool:
    # who may write .pyc files here may write images (-B: neither)
    return not sys.dont_write_bytecode and posix.access(CACHE_DIR, posix.W_OK)


def _load() -> str:
    global eager, lazy, used
    try:
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC | posix.O_NOFOLLOW)
    except OSError as exc:
        return f"none ({posix.strerror(exc.errno or 0).lower()})"
    try:
        info = posix.fstat(fd)
        # it is code run as root: only a regular file of ours or root's that nobody else could have written
        if info.st_mode & 0o170000 != 0o100000:
            return "not used (not a regular file)"
        if info.st_uid not in (0, posix.geteuid()):
            return f"not used (owned by uid {info.st_uid})"
        if info.st_mode & 0o022:
            return f"not used (mode {info.st_mode & 0o777:o}: writable by others)"
        chunks = []
        while chunk := posix.read(fd, info.st_size + 1):
            chunks.append(chunk)
        data = b"".join(chunks)
    finally:
        posix.close(fd)
    # HEAD (this Python's magic number, the format), the body's length and hash, the body
    n = len(HEAD)
    if data[:n] != HEAD:
        return "not used (another Python or format)"
    body = memoryview(data)[n + 16 :]
    if (
        len(body) != int.from_bytes(data[n : n + 8], "little")
        or _imp.source_hash(HASH_KEY, body) != data[n + 8 : n + 16]
    ):
        return "not used (damaged)"
    root, first, later = marshal.loads(body)
    if root != ROOT:
        return f"not used (made for {root})"
    for entry in (*first, *later):
        rel = entry[1]
        try:
            src = posix.stat(f"{ROOT}/{rel}")
        except OSError:
            return f"not used ({rel} is gone)"
        if src.st_mtime_ns != entry[3] or src.st_size != entry[4]:
            return f"not used ({rel} changed)"
    eager, lazy = first, later
    if later:
        sys.meta_path.insert(0, Finder(later))
    executed = _run(first)
    used = True  # only now: a module that failed in _run leaves the image unused (and the run records anew)
    return f"{executed} of {len(first)} modules executed, {len(later)} on demand"


def _run(entries: "tuple[Entry, ...]") -> int:
    # Execute the modules in order (each one's ocipy dependencies come before it), as importlib's _load_unlocked
    # would: in sys.modules while it runs, removed if it fails, then an attribute of its package.
    modules = sys.modules
    ran = 0
    for name, rel, is_pkg, _, _, code in entries:
        if name in modules:
            continue
        parent, _, child = name.rpartition(".")
        parent_module = modules.get(parent)
        if parent_module is None or type(code) is not _Code:
            break  # the order does not hold: the rest is imported as usual
        module = new_module(name, f"{ROOT}/{rel}", is_pkg, _SourceFileLoader(name, f"{ROOT}/{rel}"))
        spec: Any = module.__spec__
        spec._initializing = True
        modules[name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            del modules[name]
            raise
        finally:
            spec._initializing = False
        setattr(parent_module, child, modules[name])  # a module may have replaced itself in sys.modules
        ran += 1
    return ran


def new_module(name: str, origin: str, is_pkg: bool, loader: object) -> "Any":
    # A module with the attributes importlib gives one a SourceFileLoader loads (_init_module_attrs)
    spec = new_spec(name, origin, is_pkg, loader)
    module: Any = _Module(name)
    module.__loader__ = loader
    module.__package__ = spec.parent
    module.__spec__ = spec
    if is_pkg:
        module.__path__ = spec.submodule_search_locations
    module.__file__ = origin
    module.__cached__ = spec.cached
    return module


def new_spec(name: str, origin: str, is_pkg: bool, loader: object) -> "Any":
    # as spec_from_file_location makes it for a source file, and marked: its code came from an image
    spec = _ModuleSpec(name, loader, origin=origin, loader_state=MARK, is_package=is_pkg)
    spec.has_location = True
    head, _, tail = origin.rpartition("/")
    spec.cached = f"{head}/__pycache__/{tail[:-3]}.{sys.implementation.cache_tag}.pyc"
    if is_pkg:
        spec.submodule_search_locations = [head]
    return spec


class Finder:
    # First on sys.meta_path: the image's modules that only some runs import, each served once from memory (a
    # reload, or an import retried after a failure, reads the files as usual). Through importlib's own protocol, so
    # such a module loads when and only when a normal run would load it.

    def __init__(self, entries: "tuple[Entry, ...]") -> None:
        self.entries = {entry[0]: entry for entry in entries}

    def find_spec(
        self, name: str, path: "Sequence[str] | None" = None, target: "ModuleType | None" = None
    ) -> "ModuleSpec | None":
        entry = self.entries.pop(name, None)
        if entry is None:
            return None
        spec: ModuleSpec = new_spec(name, f"{ROOT}/{entry[1]}", entry[2], self)
        spec.loader_state = (MARK, entry[5])
        return spec

    def create_module(self, spec: "ModuleSpec") -> None:
        return None

    def exec_module(self, module: "ModuleType") -> None:
        spec: Any = module.__spec__
        blob = spec.loader_state[1]
        spec.loader_state = MARK
        # the source's own loader from here on: get_source, reload and importlib.resources work as usual
        module.__loader__ = spec.loader = _SourceFileLoader(spec.name, spec.origin)
        exec(marshal.loads(blob), module.__dict__)


def new_modules() -> list[str]:
    # ocipy modules loaded from their source that the image used lacks (not this module, not bootsave)
    known = {entry[0] for entry in (*eager, *lazy)}
    return [
        name
        for name, module in sys.modules.items()
        if name[:6] == "ocipy."
        and name not in known
        and name not in ("ocipy.boot", "ocipy.bootsave")
        and type(getattr(module, "__loader__", None)) is _SourceFileLoader
    ]


def finish(code: int) -> None:
    # At the command's end (ocipy.cli.entry): after a successful run that had no image, or imported a module its
    # image lacks, write one; then the --debug line.
    global note
    if not verb or pid != posix.getpid():  # a forked child returning through entry() writes nothing
        return
    try:
        if code == 0 and ran and (recorder is not None or used and new_modules() and may_write()):
            from . import bootsave

            saved = bootsave.save()
            if saved:
                note += f"; {saved}"
    except BaseException as exc:  # noqa: BLE001 -- an image is a cache: failing to write one changes nothing else
        note += f"; not written ({type(exc).__name__}: {exc})"
    errors = sys.modules.get("ocipy.errors")
    if errors is not None:
        errors.debug(f"boot image {path}: {note}")
