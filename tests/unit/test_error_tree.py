"""One error tree (docs/errors.md): every exception class ocipy defines is an OcipyError, a config error carries its
pointer, the init's error carries op and errno, and the CLI turns any of them into one line in one place."""

from __future__ import annotations

import errno
import importlib
import inspect
import pkgutil

import pytest

import ocipy
from ocipy import cli, planfmt
from ocipy.errors import ConfigError, InitError, OcipyError, os_reason, pointer
from ocipy.launch import Launch, Message

# not a failure users see: the stand-in for dataclasses' own error. Private classes (`_Uncacheable` in seccomp,
# `_Invalid` in spec/light) are signals caught inside their module and are left out too.
NOT_REPORTED = {"ocipy.records.FrozenInstanceError"}


def _modules() -> list[str]:
    names = ["ocipy"]
    for info in pkgutil.walk_packages(ocipy.__path__, "ocipy."):
        if info.name not in ("ocipy.__main__",):
            names.append(info.name)
    return names


def test_every_exception_class_is_an_ocipy_error() -> None:
    roots = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name or not issubclass(cls, BaseException):
                continue
            if f"{name}.{cls.__name__}" in NOT_REPORTED or cls.__name__.startswith("_"):
                continue
            if not issubclass(cls, OcipyError):
                roots.append(f"{name}.{cls.__name__}({cls.__mro__[1].__name__})")
    assert not roots, f"exception classes outside the tree (make them OcipyError/ConfigError subclasses): {roots}"


def test_config_errors_carry_their_pointer() -> None:
    from ocipy.cgroups import CgroupError
    from ocipy.lsm import LabelError
    from ocipy.mempolicy import PolicyError
    from ocipy.plan import PlanError
    from ocipy.seccomp import SeccompError
    from ocipy.spec.document import SpecError

    for cls in (CgroupError, LabelError, PolicyError, PlanError, SeccompError):
        exc = cls("/linux/x/0", "not here")
        assert isinstance(exc, ConfigError)
        assert (exc.pointer, exc.message, str(exc)) == ("/linux/x/0", "not here", "/linux/x/0: not here")
    spec = SpecError([("/process/args", "must not be empty"), ("/root", "missing")])
    assert (spec.pointer, spec.message, str(spec)) == (
        "/process/args",
        "must not be empty",
        spec.problems[0][0] + ": must not be empty",
    )
    assert str(ConfigError("", "invalid json: nested too deeply")) == "invalid json: nested too deeply"


def test_one_pointer_builder_and_one_os_reason() -> None:
    assert pointer("mounts", 3, "options") == "/mounts/3/options"
    assert pointer("annotations", "a/b~c") == "/annotations/a~1b~0c"
    from ocipy.plan import pointer as plan_pointer
    from ocipy.spec.load import pointer as loc_pointer

    assert plan_pointer is pointer and loc_pointer(("a/b", 0)) == "/a~1b/0"
    assert os_reason(errno.ENOENT) == "no such file or directory"
    assert os_reason(PermissionError(errno.EACCES, "Permission denied", "/x")) == "permission denied"


def test_the_inits_error_carries_op_and_errno() -> None:
    plan = planfmt.Plan()
    plan.op(planfmt.OP_MOUNT, "/mounts/3", s=("proc", "/proc", "proc"), what="proc on /proc")
    launch = Launch.__new__(Launch)
    launch.plan = plan
    exc = launch.init_error(Message(planfmt.MSG_ERROR, 0, errno.EPERM, 0, "mount"))
    assert isinstance(exc, InitError) and isinstance(exc, OcipyError)
    assert (exc.op, exc.errno, exc.pointer, exc.detail) == (0, errno.EPERM, "/mounts/3", "mount")
    assert str(exc) == "/mounts/3 (proc on /proc): mount: operation not permitted"
    before = launch.init_error(Message(planfmt.MSG_ERROR, -1, errno.ENOMEM, 0, "clone"))
    assert (before.op, before.pointer, str(before)) == (-1, "", "ocipy-init: clone: cannot allocate memory")


@pytest.mark.parametrize(
    ("verb", "rc"),
    [("state", 1), ("exec", 255)],
)
def test_the_cli_maps_a_config_error_to_one_line(
    verb: str, rc: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ocipy.cgroups import CgroupError

    def fail(verb: str, args: cli.Args) -> int:
        exc = CgroupError("/linux/resources/memory/limit", "write memory.max: invalid argument")
        if verb == "exec":
            exc.exit_code = 255  # what operations/exec does: the same error, runc's exit status
        raise exc

    monkeypatch.setattr(cli, "dispatch", fail)
    argv = ["--debug", "--root", "/nonexistent", verb, "x", *(["true"] if verb == "exec" else [])]
    assert cli.main(argv) == rc
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "ocipy: /linux/resources/memory/limit: write memory.max: invalid argument"
    assert not any("Traceback" in line for line in err)


def test_a_message_goes_out_when_no_descriptor_is_left() -> None:
    """errors.py loads its writers (ocipy/logsink.py) on the first message; with every descriptor taken (EMFILE) that
    import fails, and the message must still be one line on stderr, not a traceback."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, resource\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from ocipy import errors\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
        "held = []\n"
        "try:\n"
        "    while True:\n"
        "        held.append(open('/dev/null'))\n"
        "except OSError:\n"
        "    pass\n"
        "errors.error('the message')\n"
    )
    res = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and res.stderr == "ocipy: the message\n", res.stderr
