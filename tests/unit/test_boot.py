"""The boot image (ocipy/boot.py, ocipy/bootsave.py, docs/startup.md): a verb's modules executed from one file in
`__pycache__`, written by the first successful run, ignored when anything about it is off.

Each test runs the real launcher of a fresh copy of the package in a temp directory, so images are made from
nothing and nothing of the checkout's own `__pycache__` is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
TAG = sys.implementation.cache_tag

sys.path.insert(0, str(PROJECT))
from ocipy import boot  # noqa: E402


class Tree:
    """A copy of the ocipy package with its own launcher and state root."""

    def __init__(self, base: Path) -> None:
        self.root = base / "site"
        shutil.copytree(
            PROJECT / "ocipy", self.root / "ocipy", ignore=shutil.ignore_patterns("__pycache__", "*.img", "*.tmp")
        )
        self.state = base / "state"
        self.state.mkdir()
        self.launcher = base / "ocipy"
        text = subprocess.run(
            [sys.executable, "-c", "from ocipy.launcher import script_text; print(script_text(), end='')"],
            cwd=self.root,
            env={**os.environ, "PYTHONPATH": str(self.root)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"sys.path[:0] = [{str(self.root)!r}" in text
        self.launcher.write_text(text)
        self.launcher.chmod(0o755)

    def image(self, verb: str = "list") -> Path:
        return self.root / "ocipy" / "__pycache__" / f"boot.{verb}.{TAG}.img"

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.launcher), "--root", str(self.state), *args],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **(env or {})},
            timeout=60,
            check=False,
        )

    def boot_line(self, *args: str) -> str:
        res = self.run("--debug", *args)
        assert "Traceback" not in res.stderr, res.stderr
        lines = [line for line in res.stderr.splitlines() if "boot image" in line]
        assert len(lines) == 1, res.stderr
        return lines[0]

    def modules(self, *args: str, env: dict[str, str] | None = None) -> dict[str, list[object]]:
        """Each loaded ocipy module's import attributes at the command's end, as the launcher runs it."""
        dump = (
            "import posix, json\n"
            "import ocipy.posixlite as _px\n"
            "_exit = _px._exit\n"
            "def _dump(code):\n"
            "    out = {n: [getattr(m.__spec__, 'loader_state', None), type(m.__loader__).__name__, m.__file__,\n"
            "               getattr(m, '__cached__', None), m.__package__, getattr(m, '__path__', None),\n"
            "               m.__spec__.origin, m.__spec__.cached, m.__spec__.parent]\n"
            "           for n, m in sys.modules.items() if n.startswith('ocipy')}\n"
            "    posix.write(2, ('MODULES ' + json.dumps(out) + '\\n').encode())\n"
            "    _exit(code)\n"
            "_px._exit = _dump\n"
        )
        text = self.launcher.read_text().replace(
            "from ocipy.cli import entry\n", dump + "from ocipy.cli import entry\n"
        )
        probe = self.launcher.with_name("probe")
        probe.write_text(text)
        probe.chmod(0o755)
        res = subprocess.run(
            [str(probe), "--root", str(self.state), *args],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **(env or {})},
            timeout=60,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        line = next(line for line in res.stderr.splitlines() if line.startswith("MODULES "))
        return dict(json.loads(line.removeprefix("MODULES ")))


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


OFF = {boot.OPT_OUT: "1"}


def test_first_run_writes_the_image_and_the_second_uses_it(tree: Tree) -> None:
    plain = tree.run("list", env=OFF)
    assert plain.returncode == 0 and not tree.image().exists()  # the opt-out writes nothing

    first = tree.boot_line("list")
    assert "none (no such file or directory); wrote" in first
    image = tree.image()
    assert image.stat().st_mode & 0o777 == 0o644
    second = tree.boot_line("list")
    count = int(second.split(": ")[-1].split()[0])
    assert second.endswith(f"{count} of {count} modules executed, 0 on demand"), second
    assert count >= 5
    assert tree.run("list").stdout == plain.stdout
    assert not list(image.parent.glob("*.tmp"))


def test_image_modules_look_imported(tree: Tree) -> None:
    """The same modules, with the attributes importlib gives them (spec, loader, file, cached, package, path), and
    only the spec's loader_state telling that the code came from the image."""
    normal = tree.modules("list", env=OFF)
    tree.run("list")
    assert tree.image().exists()
    booted = tree.modules("list")
    assert booted.keys() == normal.keys()  # the same modules load: the import budget tests hold with an image
    marked = {name for name, attrs in booted.items() if attrs[0] == boot.MARK}
    assert {"ocipy.cli", "ocipy.operations", "ocipy.operations.list_"} <= marked
    for name, attrs in booted.items():
        assert attrs[1:] == normal[name][1:], name
    assert booted["ocipy.operations"][5] == [str(tree.root / "ocipy" / "operations")]


def test_source_tools_work_on_image_modules(tree: Tree) -> None:
    tree.run("list")
    code = (
        "import sys, inspect, importlib, traceback\n"
        f"sys.path[:0] = [{str(tree.root)!r}]\n"
        "from ocipy import boot\n"
        f"boot.start(['ocipy', '--root', {str(tree.state)!r}, 'list'])\n"
        "import ocipy.cli as cli\n"
        "assert cli.__spec__.loader_state == boot.MARK, cli.__spec__\n"
        "assert 'def entry' in inspect.getsource(cli)\n"
        "assert 'def entry' in cli.__loader__.get_source('ocipy.cli')\n"
        "try:\n"
        "    cli.parse_globals(['--log-format', 'xml'])\n"
        "except Exception:\n"
        "    text = traceback.format_exc()\n"
        "assert 'raise OcipyError(f\"invalid log-format' in text, text\n"
        "again = importlib.reload(cli)\n"
        "assert again.__spec__.loader_state is None and again.entry\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, check=False)
    assert res.stdout == "ok\n", res.stderr


@pytest.mark.parametrize("how", ["touched", "resized"])
def test_a_changed_source_voids_the_image_and_the_new_code_runs(tree: Tree, how: str) -> None:
    tree.run("list")
    src = tree.root / "ocipy" / "operations" / "list_.py"
    info = src.stat()
    if how == "touched":  # same content and size, another mtime
        os.utime(src, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
        assert "not used (ocipy/operations/list_.py changed)" in tree.boot_line("list")
    else:  # new code, the old mtime put back: only the size tells
        src.write_text(src.read_text() + "import sys as _s\n_s.stderr.write('NEW CODE\\n')\n")
        os.utime(src, ns=(info.st_atime_ns, info.st_mtime_ns))
        res = tree.run("--debug", "list")
        assert "NEW CODE" in res.stderr and "not used (ocipy/operations/list_.py changed)" in res.stderr
        res = tree.run("--debug", "list")  # the image written by that run holds the new code
        assert "NEW CODE" in res.stderr and "modules executed" in res.stderr


def _damage(image: Path, how: str) -> None:
    data = bytearray(image.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = bytearray()
    elif how == "magic":
        data[0] ^= 0xFF
    elif how == "format":
        data[len(boot.HEAD) - 1] += 1
    elif how == "flipped":
        data[len(data) // 2] ^= 0x01
    elif how == "appended":
        data += b"\0"
    elif how == "garbage":  # a body that is not what the header says, with a hash that matches: the shape is checked
        import _imp
        import marshal

        body = marshal.dumps(("not", "an", "image", "at all"))
        data = bytearray(boot.HEAD + len(body).to_bytes(8, "little") + _imp.source_hash(boot.HASH_KEY, body) + body)
    image.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "empty", "magic", "format", "flipped", "appended", "garbage"])
def test_a_damaged_image_is_ignored_and_rewritten(tree: Tree, how: str) -> None:
    expected = tree.run("list", env=OFF)
    tree.run("list")
    _damage(tree.image(), how)
    res = tree.run("--debug", "list")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert res.stdout == expected.stdout
    line = next(line for line in res.stderr.splitlines() if "boot image" in line)
    assert "not used (" in line and "; wrote" in line, line
    assert "modules executed" in tree.boot_line("list")


def test_an_image_others_could_write_is_ignored(tree: Tree) -> None:
    tree.run("list")
    tree.image().chmod(0o664)
    assert "not used (mode 664: writable by others)" in tree.boot_line("list")  # and rewritten, 0644
    assert tree.image().stat().st_mode & 0o777 == 0o644
    assert "modules executed" in tree.boot_line("list")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_an_image_of_another_user_is_ignored(tree: Tree) -> None:
    tree.run("list")
    os.chown(tree.image(), 65534, 65534)
    assert "not used (owned by uid 65534)" in tree.boot_line("list")


def test_a_symlinked_image_is_ignored(tree: Tree, tmp_path: Path) -> None:
    tree.run("list")
    elsewhere = tmp_path / "elsewhere.img"
    tree.image().rename(elsewhere)
    tree.image().symlink_to(elsewhere)
    assert "none (too many levels of symbolic links)" in tree.boot_line("list")


def test_an_image_of_another_location_is_ignored(tree: Tree, tmp_path: Path) -> None:
    tree.run("list")
    other = Tree(tmp_path / "other")
    other.image().parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(tree.image(), other.image())
    assert f"not used (made for {tree.root})" in other.boot_line("list")


def test_a_failed_run_writes_no_image(tree: Tree) -> None:
    res = tree.run("state", "nope")
    assert res.returncode == 1 and res.stderr.endswith("container does not exist\n"), res.stderr
    assert not tree.image("state").exists()
    res = tree.run("list", "--help")  # a success that is not a run of the verb
    assert res.returncode == 0
    assert not tree.image("list").exists()


def test_help_does_not_rewrite_a_used_image(tree: Tree) -> None:
    tree.run("list")
    before = tree.image().read_bytes()
    res = tree.run("--debug", "list", "--help")  # imports the argparse side, which the image lacks
    assert res.returncode == 0 and "wrote" not in res.stderr, res.stderr
    assert tree.image().read_bytes() == before


def test_an_image_holds_the_source_not_a_stale_pyc(tree: Tree) -> None:
    """A same-size edit within the same second leaves the .pyc looking current to importlib (whole seconds); the
    image, checked in nanoseconds, must hold the new code, not the .pyc's."""
    tree.run("list", env=OFF)  # writes the .pyc files, no image
    src = tree.root / "ocipy" / "operations" / "list_.py"
    info = src.stat()
    text = src.read_text()
    assert "    return 0\n" in text
    src.write_text(text.replace("    return 0\n", "    return 7\n", 1))  # same size
    os.utime(src, ns=(info.st_atime_ns, info.st_mtime_ns + 1))  # same second: the .pyc still passes
    assert tree.run("list", env=OFF).returncode == 0  # importlib runs the stale .pyc (its own, known hole)
    tree.run("list")  # records an image
    assert tree.run("list").returncode == 7  # the image holds what the source says


def test_boots_flag_tables_are_the_clis() -> None:
    from ocipy import cli

    assert boot._VALUE_FLAGS == set(cli._GLOBAL_VALUE)
    assert boot._BOOL_FLAGS == set(cli._GLOBAL_BOOL)
    assert boot._ROOTLESS_VALUES == cli._ROOTLESS_VALUES


def test_a_module_a_later_run_imports_is_added_on_demand(tree: Tree) -> None:
    tree.run("list")
    tree.run("--debug", "list", "--format", "json")  # json output: a module plain `list` does not import
    line = tree.boot_line("list")
    assert line.endswith("on demand") and not line.endswith(" 0 on demand"), line
    normal = tree.modules("list", env=OFF)
    assert tree.modules("list").keys() == normal.keys()  # on demand: a plain list still does not load it


def test_what_a_first_runs_path_pulled_in_stays_on_demand(tree: Tree) -> None:
    """A module the verb imports while it runs that brings in a module from outside ocipy depends on the run's path
    (the systemd driver's D-Bus client in a first `delete`): it is served on demand, so a later run that does not
    take that path does not pay for it. A plain ocipy module imported while the verb ran is still up front."""
    pkg = tree.root / "ocipy"
    (pkg / "pathdep.py").write_text("import colorsys  # stands for jeepney\n\nX = colorsys.ONE_THIRD\n")
    # `__future__` and a builtin module do not count as pulled in
    (pkg / "plain.py").write_text("from __future__ import annotations\n\nimport _thread\n\nY = _thread.get_ident\n")
    verb = pkg / "operations" / "list_.py"
    verb.write_text(
        verb.read_text().replace(
            'fmt = args.format or "table"\n',
            'fmt = args.format or "table"\n'
            "    from .. import plain  # noqa: F401\n"
            "    if posix.environ.get(b'PATHDEP'):\n"
            "        from .. import pathdep  # noqa: F401\n",
        )
        + "\nimport posix\n"
    )
    assert tree.run("list", env={"PATHDEP": "1"}).returncode == 0  # the first run, which records, takes the path
    line = tree.boot_line("list")
    assert line.endswith(" 1 on demand"), line
    loaded = tree.modules("list")
    assert "ocipy.pathdep" not in loaded
    assert loaded["ocipy.plain"][0] == boot.MARK  # executed from the image, up front
    with_path = tree.modules("list", env={"PATHDEP": "1"})
    assert with_path["ocipy.pathdep"][0] == boot.MARK  # served from the image when the path is taken


def test_a_submodule_of_a_package_kept_on_demand_is_on_demand_too(tree: Tree) -> None:
    """A package whose __init__ pulled in a foreign module is on demand; a plain submodule imported after it must
    be too, or executing it up front would find no parent and stop executing the rest of the image."""
    pkg = tree.root / "ocipy" / "pathpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import colorsys  # stands for jeepney\n")
    (pkg / "sub.py").write_text("Z = 1\n")
    verb = tree.root / "ocipy" / "operations" / "list_.py"
    verb.write_text(
        verb.read_text().replace(
            'fmt = args.format or "table"\n',
            'fmt = args.format or "table"\n'
            "    if posix.environ.get(b'PATHDEP'):\n"
            "        from ..pathpkg import sub  # noqa: F401\n",
        )
        + "\nimport posix\n"
    )
    assert tree.run("list", env={"PATHDEP": "1"}).returncode == 0
    line = tree.boot_line("list")
    executed, total = line.split(": ")[-1].split(" modules")[0].split(" of ")
    assert executed == total and line.endswith(" 2 on demand"), line
    assert "ocipy.pathpkg.sub" not in tree.modules("list")


def test_concurrent_first_runs_leave_a_sound_image(tree: Tree) -> None:
    procs = [
        subprocess.Popen(
            [str(tree.launcher), "--root", str(tree.state), "list"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and not err, err
    assert "modules executed" in tree.boot_line("list")
    assert not list(tree.image().parent.glob("*.tmp"))


def test_a_cycle_is_served_on_demand(tree: Tree) -> None:
    """An import cycle sees a half-made module: the image keeps importlib's nesting for it."""
    pkg = tree.root / "ocipy"
    (pkg / "cyc_a.py").write_text("from . import cyc_b\n\nA = cyc_b.B + 1\n")
    (pkg / "cyc_b.py").write_text("from . import cyc_a  # half-made here\n\nB = 1\n")
    verb = pkg / "operations" / "list_.py"
    verb.write_text(verb.read_text() + "\nfrom .. import cyc_a\n\nassert cyc_a.A == 2\n")
    tree.run("list")
    line = tree.boot_line("list")
    assert line.endswith(" 2 on demand"), line
    assert tree.run("list").returncode == 0


@pytest.mark.parametrize("path", ["launcher/ocipy", "ocipy/__main__.py", "generated"])
def test_every_entry_point_boots_before_importing_the_cli(path: str, tmp_path: Path) -> None:
    if path == "generated":
        text = Tree(tmp_path).launcher.read_text()
    else:
        text = (PROJECT / path).read_text()
    assert "from ocipy import boot" in text
    assert text.index("boot.start()") < text.index("from ocipy.cli import entry")


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["state", "x"], "state"),
        (["--root", "/r", "state", "x"], "state"),
        (["--root=/r", "--debug", "kill", "x"], "kill"),
        (["-root", "/r", "-log", "/l", "--log-format", "json", "--criu", "c", "delete", "x"], "delete"),
        (["--systemd-cgroup", "--rootless", "true", "start", "x"], "start"),
        (["--rootless", "start", "x"], "start"),
        (["--rootless=false", "--debug=true", "list"], "list"),
        (["--help"], None),
        (["-v"], None),
        (["--runtime-flag", "x", "state"], None),  # unknown: it may take a value
        (["--", "state"], None),
        (["--root"], None),
        ([], None),
        (["state/../x"], None),
        (["STATE"], None),
    ],
)
def test_find_verb(argv: list[str], verb: str | None) -> None:
    assert boot.find_verb(["ocipy", *argv]) == verb


def test_the_image_order_puts_dependencies_first(tree: Tree) -> None:
    """Each module's module-level ocipy imports come before it in the image (importlib's completion order, read
    from sys.modules: a Python that stopped moving a finished module to its end would fail here)."""
    import ast
    import marshal

    tree.run("list")
    data = tree.image().read_bytes()
    _, first, _ = marshal.loads(data[len(boot.HEAD) + 16 :])
    order = [entry[0] for entry in first]
    checked = 0
    for i, (name, rel, is_pkg, *_) in enumerate(first):
        package = name if is_pkg else name.rpartition(".")[0]
        for node in ast.parse((tree.root / rel).read_text()).body:
            if not isinstance(node, ast.ImportFrom):
                continue
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            for target in (base, *(f"{base}.{alias.name}" for alias in node.names)):
                if target in order and target != name:
                    assert order.index(target) < i, f"{name} before its import {target}"
                    checked += 1
    assert checked >= 5


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_a_user_of_a_root_install_uses_roots_images_and_writes_none() -> None:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="ocipy-boot-"))
    try:
        base.chmod(0o755)
        tree = Tree(base)
        tree.state.chmod(0o777)  # the user's state root
        as_user = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]

        def run_as_user() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*as_user, str(tree.launcher), "--root", str(tree.state), "--debug", "list"],
                capture_output=True,
                text=True,
                env={"PATH": "/usr/bin:/bin"},
                timeout=60,
                check=False,
            )

        res = run_as_user()
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
        # root's __pycache__ is not the user's to write: no recording, no attempt
        assert "wrote" not in res.stderr and "not written" not in res.stderr and not tree.image().exists()
        tree.run("list")  # root's run writes it
        res = run_as_user()
        assert res.returncode == 0, res.stderr
        assert "modules executed" in res.stderr, res.stderr
        # a run that needs a module the image lacks: it does not try to rewrite what it cannot write
        res = subprocess.run(
            [*as_user, str(tree.launcher), "--root", str(tree.state), "--debug", "list", "--format", "json"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            timeout=60,
            check=False,
        )
        assert res.returncode == 0 and "modules executed" in res.stderr, res.stderr
        assert "wrote" not in res.stderr and "not written" not in res.stderr, res.stderr
    finally:
        shutil.rmtree(base)
