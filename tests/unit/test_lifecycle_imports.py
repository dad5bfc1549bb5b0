"""The lifecycle verbs stay on the stdlib: the real command, `python -X importtime`, and a list of what must not load.

Heavy imports (pydantic, jsonschema, pyroute2, the models, the planner) would cost 60-200 ms on commands runc does in
~3 ms; `argparse`, `typing` and `re` (~3-7 ms each) are kept off the plain paths of these verbs too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "pydantic",
    "pydantic_core",
    "jsonschema",
    "pyroute2",
    "typing_extensions",
    "ocipy.spec",
    "ocipy.plan",
    "ocipy.bundle",
}
# what the fast path also avoids: a regression here costs milliseconds, not a design rule
SLOW_STDLIB = {"argparse", "typing", "re", "json", "os"}  # os: ~1 ms (ocipy/posixlite.py)

VERBS = {
    "state": ["state", "nope"],
    "kill": ["kill", "nope", "9"],
    "delete": ["delete", "nope"],
    "start": ["start", "nope"],
    "pause": ["pause", "nope"],
    "resume": ["resume", "nope"],
    "list": ["list"],
    "ps": ["ps", "nope"],
    "exec": ["exec", "nope", "/bin/true"],  # a real exec's imports: tests/integration/test_exec.py
}


_ENTRY = "import sys; sys.argv[0] = 'ocipy'; from ocipy.cli import entry; entry()"


def imported(argv: list[str], root: Path, site: bool = True) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    out = subprocess.run(
        # `-c` as the launcher does (ocipy/launcher.py): `-m` would import runpy, and with it `os`
        [sys.executable, *([] if site else ["-S"]), "-X", "importtime", "-c", _ENTRY, "--root", str(root), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    names = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names, out


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_lifecycle_verb_imports_no_heavy_modules(verb: str, tmp_path: Path) -> None:
    names, out = imported(VERBS[verb], tmp_path)
    assert "ocipy.cli" in names, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    bad = {n for n in names if n in FORBIDDEN or n.split(".")[0] in FORBIDDEN or n.startswith(("ocipy.spec.",))}
    assert not bad, f"{verb} imported {sorted(bad)}"


@pytest.mark.parametrize("verb", ["state", "kill", "delete", "start", "pause", "resume"])
def test_missing_container_path_avoids_slow_stdlib(verb: str, tmp_path: Path) -> None:
    # without `site`: an editable install's .pth finder imports `re` and `pathlib` before ocipy runs at all
    names, out = imported(VERBS[verb], tmp_path, site=False)
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == "ocipy: container does not exist"
    slow = SLOW_STDLIB & names
    assert not slow, f"{verb} of a missing container imported {sorted(slow)}"


# what a verb on a live container no longer loads (issue 15): `_json` is a dlopen (state.json is read by
# ocipy/recordjson.py; fastjson is for writing JSON), `math` is an import too, the driver module and `lifecycle` are ~0.2 ms each, the store's
# writes (storemake) ~40 us, the message writers (logsink) ~25 us: a verb that writes no message needs none
_LIGHT = {"_json", "math", "ocipy.cgroups.driver", "ocipy.lifecycle", "ocipy.storemake", "ocipy.logsink"}
LIVE = {
    "state": (_LIGHT | {"ocipy.signals", "fcntl"}, []),  # fastjson: it prints JSON
    "list": (_LIGHT | {"fcntl", "ocipy.fastjson"}, []),
    "kill": (_LIGHT | {"ocipy.faults", "ocipy.fastjson"}, []),
    "pause": (_LIGHT | {"ocipy.faults", "ocipy.fastjson"}, []),
    "resume": (_LIGHT | {"ocipy.faults", "ocipy.fastjson"}, []),
    "start": ({"_json", "math", "ocipy.cgroups.driver", "ocipy.storemake", "ocipy.logsink", "ocipy.fastjson"}, []),
    "delete": ({"_json", "math", "ocipy.logsink", "ocipy.fastjson"}, ["--force"]),
}


@pytest.mark.parametrize("fifo", [True, False], ids=["created", "running"])
def test_live_container_verbs_stay_light(tmp_path: Path, fifo: bool) -> None:
    """state/list/kill/pause/resume/start/delete of a container whose init is a real process (a sleeper here), with a
    v1 freezer of plain files: each verb works, and loads none of what it no longer needs."""
    from ocipy import procfs
    from ocipy.state import State
    from ocipy.store import Store

    freezer = tmp_path / "freezer"
    freezer.mkdir()
    (freezer / "freezer.state").write_text("THAWED\n")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        st = Store(str(tmp_path / "root"))
        c = st.create_dir("live")
        private = {"starttime": procfs.starttime(sleeper.pid), "cgroup": {"v1": {"freezer": str(freezer)}}}
        c.write_state(State("live", pid=sleeper.pid, bundle="/b", rootfs="/b/rootfs", private=private))
        reader = -1
        if fifo:
            os.mkfifo(os.path.join(c.dir, "exec.fifo"))
            reader = os.open(os.path.join(c.dir, "exec.fifo"), os.O_RDONLY | os.O_NONBLOCK)  # the init's end
        c.close()
        verbs = ["state", "list", "kill", "pause", "state", "resume", *(["start"] if fifo else []), "delete"]
        for verb in verbs:
            forbidden, extra = LIVE[verb]
            argv = [verb, *extra, *(["live"] if verb != "list" else []), *(["0"] if verb == "kill" else [])]
            names, out = imported(argv, tmp_path / "root", site=False)
            assert out.returncode == 0, out.stderr[-2000:]
            assert not forbidden & names, f"{verb} imported {sorted(forbidden & names)}"
            if verb == "pause":
                assert (freezer / "freezer.state").read_text() == "FROZEN"
            if verb == "start":
                assert os.read(reader, 1) == b"0"
        assert (freezer / "freezer.state").read_text() == "THAWED"
        assert not (tmp_path / "root" / "live").exists()
    finally:
        if fifo and reader >= 0:
            os.close(reader)
        sleeper.kill()
        sleeper.wait()


def test_a_verb_builds_only_its_own_grammar(tmp_path: Path) -> None:
    """The grammar table is rows of constants; the fast parser turns only its verb's row into objects (building
    all of them cost ~40 us of every command)."""
    code = (
        f"import sys; sys.path.insert(0, {str(PROJECT)!r})\n"
        "from ocipy import cli, cligrammar\n"
        f"cli.main(['--root', {str(tmp_path)!r}, 'state', 'nope'])\n"
        "print(sorted(cligrammar._specs))\n"
    )
    out = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.split("\n")[0] == "['state']", out.stdout + out.stderr
