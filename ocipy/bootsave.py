"""Recording and writing a verb's boot image (ocipy/boot.py reads it; docs/startup.md). Loaded only by a run that
found no sound image, or that imported a module its image lacks.

The image holds the ocipy modules a successful run of the verb imported, in the order their loading completed:
importlib moves a module to the end of `sys.modules` when it is done, so each module's dependencies come before it.
Modules a later run imports beyond those are added to be served on demand only, so they cost a plain run nothing.

One order cannot be replayed: an import of a module that is still initializing (an import cycle, or a package whose
`__init__` imports its own modules) sees a half-made module, and which half depends on who started first. Such a
module and everything loaded while it was initializing are served on demand, through importlib's own nesting.
"""

import _imp
import builtins
import marshal
import posix
import sys

from . import boot

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import ModuleType

    from .boot import Entry

_SourceFileLoader = boot._SourceFileLoader


def _initializing(name: str) -> bool:
    module = sys.modules.get(name)
    return getattr(getattr(module, "__spec__", None), "_initializing", False) is True


class Recorder:
    """Which ocipy modules a run starts to load, in order (a meta path finder that finds nothing), and the imports
    that reach a module still initializing (a wrapper of `__import__`). Only in a run that records."""

    def __init__(self) -> None:
        self.started: dict[str, int] = {}  # name -> the order in which its loading started
        self.hazards: set[str] = set()
        # every module (ocipy's or not) whose loading started once the verb ran: the order, in one numbering
        self.late: dict[str, int] = {}
        self._import = builtins.__import__

    def install(self) -> None:
        sys.meta_path.insert(0, self)
        builtins.__import__ = self.importing

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if boot.ran and name not in self.late:  # importlib asks finders only for what is not loaded yet
            self.late[name] = len(self.late)
        if name[:6] == "ocipy." and name not in self.started:
            self.started[name] = len(self.started)
            parent = name.rpartition(".")[0]
            if _initializing(parent):  # a package whose __init__ imports its own modules
                self.hazards.add(parent)
        return None

    def importing(
        self,
        name: str,
        globals: "Mapping[str, object] | None" = None,
        locals: "Mapping[str, object] | None" = None,
        fromlist: "Sequence[str] | None" = (),
        level: int = 0,
    ) -> "ModuleType":
        module = self._import(name, globals, locals, fromlist, level)
        if level:  # as importlib resolves a relative name
            package = str((globals or {}).get("__package__") or "")
            base = package.rsplit(".", level - 1)[0] if level > 1 else package
            name = f"{base}.{name}" if name else base
        if name[:5] == "ocipy":
            for target in (name, *(f"{name}.{f}" for f in fromlist or ())):
                if _initializing(target):
                    self.hazards.add(target)
        return module

    def plan(self, modules: "dict[str, ModuleType]") -> tuple[list[str], list[str]]:
        """(the modules to execute up front, in completion order; those to serve on demand)."""
        done = [name for name in modules if name in self.started and _source(modules[name])]
        finished = {name: i for i, name in enumerate(done)}
        eager = set(done) - self._pulling(modules)
        for hazard in self.hazards:
            if hazard in finished:
                s, f = self.started[hazard], finished[hazard]
                eager.difference_update(n for n in done if self.started[n] >= s and finished[n] <= f)
        for name in done:  # a submodule of a package served on demand is too: _run needs the parent loaded
            parent = name.rpartition(".")[0]
            if parent in finished and parent not in eager:
                eager.discard(name)
        return [n for n in done if n in eager], [n for n in done if n not in eager]

    def _pulling(self, modules: "dict[str, ModuleType]") -> set[str]:
        """The ocipy modules the verb imported while it ran that brought in a module from outside ocipy (D-Bus for
        the systemd driver, cffi for seccomp): what a function imports depends on the run's path, and executing such
        a module up front in every later run would pay for that import where the path does not take it (a cgroupfs
        `delete` after a first, systemd-driven one: ~17 ms). A foreign module whose loading started after an ocipy
        module's and completed before it was imported while that one was loading (imports nest)."""
        position = {name: i for i, name in enumerate(modules)}  # completion order, as in plan()
        foreign = [(s, position[n]) for n, s in self.late.items() if n in position and _foreign(n)]
        return {
            name
            for name, start in self.late.items()
            if name[:6] == "ocipy." and name in position
            for fstart, fdone in foreign
            if start < fstart and fdone < position[name]
        }


def _foreign(name: str) -> bool:
    """An import worth keeping off other paths: not ocipy's, not built into the interpreter (`time`, `_thread`), not
    `__future__` (what `from __future__ import annotations` loads)."""
    return name[:6] != "ocipy." and name != "ocipy" and name != "__future__" and name not in sys.builtin_module_names


def _source(module: "ModuleType") -> bool:
    """A module of this ocipy package loaded from its .py source (not an extension, not a custom loader)."""
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    return (
        type(getattr(spec, "loader", None)) is _SourceFileLoader
        and isinstance(origin, str)
        and origin.startswith(f"{boot.ROOT}/ocipy/")
        and origin.endswith(".py")
    )


def save() -> str:
    """Write the image this run calls for, if any; what was done, for the --debug line."""
    modules = sys.modules
    if boot.recorder is not None:
        rec: Recorder = boot.recorder
        builtins.__import__ = rec._import
        eager, lazy = rec.plan(modules)
    elif boot.used:
        new = boot.new_modules()
        if not new:
            return ""
        eager = [e[0] for e in boot.eager]
        lazy = [e[0] for e in boot.lazy] + new
    else:
        return ""
    old = {e[0]: e for e in (*boot.eager, *boot.lazy)}
    first = tuple(_entry(n, modules, old) for n in eager)
    later = tuple((*e[:5], marshal.dumps(e[5])) for e in (_entry(n, modules, old) for n in lazy))
    body = marshal.dumps((boot.ROOT, first, later))
    write(boot.path, boot.HEAD + len(body).to_bytes(8, "little") + _imp.source_hash(boot.HASH_KEY, body) + body)
    return f"wrote {len(first)} modules up front, {len(later)} on demand"


def _entry(name: str, modules: "dict[str, ModuleType]", old: "dict[str, Entry]") -> "Entry":
    module = modules.get(name)
    if module is not None:
        spec = module.__spec__
        assert spec is not None and spec.origin is not None
        path, is_pkg = spec.origin, spec.submodule_search_locations is not None
    else:  # on demand in the image this run used, and not imported this time
        path, is_pkg = f"{boot.ROOT}/{old[name][1]}", old[name][2]
    before = posix.stat(path)
    prev = old.get(name)
    if prev is not None and (prev[3], prev[4]) == (before.st_mtime_ns, before.st_size):
        # the image this run used holds it, checked unchanged at start: its code, not a new compile
        code = marshal.loads(prev[5]) if isinstance(prev[5], bytes) else prev[5]
        return (name, prev[1], is_pkg, prev[3], prev[4], code)
    # compiled from the source read now, not taken from the .pyc: a .pyc is checked against whole seconds and the
    # size, and an image is checked against nanoseconds, so a .pyc a same-second edit left stale would outlive it
    loader = _SourceFileLoader(name, path)
    code = loader.source_to_code(loader.get_data(path), path)
    after = posix.stat(path)
    if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size):
        raise OSError(f"{path} changed while it was read")
    return (name, path[len(boot.ROOT) + 1 :], is_pkg, after.st_mtime_ns, after.st_size, code)


def write(path: str, data: bytes) -> None:
    """Atomically: a file of our own in the same directory, renamed over the image (concurrent writers each rename
    a complete file; a reader sees the old image or a new one)."""
    tmp = f"{path}.{posix.getpid()}.tmp"
    try:
        posix.unlink(tmp)  # left by a writer that died with our pid
    except OSError:
        pass
    fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_NOFOLLOW | posix.O_CLOEXEC, 0o644)
    try:
        try:
            posix.fchmod(fd, 0o644)  # whatever the umask: readable by all (a rootless user of a root install)
            view = memoryview(data)
            while view:
                view = view[posix.write(fd, view) :]
        finally:
            posix.close(fd)
        posix.rename(tmp, path)
    except BaseException:
        try:
            posix.unlink(tmp)
        except OSError:
            pass
        raise
