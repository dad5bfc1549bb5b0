"""Bundle loading and validation, and the `spec` and `validate` verbs."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ocipy.bundle import load_bundle, validate_bundle
from ocipy.errors import OcipyError
from ocipy.operations import spec as spec_op
from ocipy.operations import validate as validate_op
from ocipy.spec.default import default_config


def make_bundle(tmp_path: Path, config: Any = None, rootfs: bool = True) -> Path:
    if rootfs:
        (tmp_path / "rootfs").mkdir()
    cfg = default_config(False) if config is None else config
    text = cfg if isinstance(cfg, str) else json.dumps(cfg)
    (tmp_path / "config.json").write_text(text, encoding="utf-8")
    return tmp_path


def test_valid_bundle(tmp_path: Path) -> None:
    make_bundle(tmp_path)
    assert validate_bundle(str(tmp_path)) == []
    spec, rootfs, _ = load_bundle(str(tmp_path))
    assert rootfs == str(tmp_path / "rootfs") and os.path.isabs(rootfs)
    assert spec.root is not None and spec.root.readonly is True


def test_relative_bundle_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_bundle(tmp_path)
    monkeypatch.chdir(tmp_path)
    _, rootfs, _ = load_bundle(".")
    assert rootfs == str(tmp_path / "rootfs")


def test_absolute_root_path(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    cfg = default_config(False)
    cfg["root"]["path"] = str(other)
    bundle = tmp_path / "b"
    bundle.mkdir()
    make_bundle(bundle, cfg, rootfs=False)
    assert load_bundle(str(bundle))[1] == str(other)


def test_every_problem_at_once(tmp_path: Path) -> None:
    cfg = default_config(False)
    cfg["process"]["cwd"] = "work"
    cfg["process"]["args"] = []
    cfg["mounts"][3]["destination"] = "dev/shm"
    cfg["hooks"] = {"poststart": [{"path": "notify"}], "prestart": [{"path": "/bin/true"}]}
    cfg["linux"]["namespaces"][0]["type"] = "pids"
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["process"]["capabilities"]["bounding"].append("CAP_NOPE")
    make_bundle(tmp_path, cfg, rootfs=False)
    problems = validate_bundle(str(tmp_path))
    pointers = [p for p, _ in problems]
    for expected in (
        "/process/cwd",
        "/process/capabilities/bounding/3",
        "/hooks/poststart/0/path",
        "/linux/namespaces/0/type",
        "/root/path",
        "/process/args",
        "/mounts/3/destination",
        "/linux/uidMappings",
        "/linux/gidMappings",
    ):
        assert expected in pointers, (expected, problems)
    assert len(pointers) == len(set(pointers)), "a problem is reported twice"
    assert ("/mounts/3/destination", "must be an absolute path") in problems
    with pytest.raises(OcipyError) as info:
        load_bundle(str(tmp_path))
    assert str(info.value) == f"{problems[0][0]}: {problems[0][1]}"


def test_missing_config(tmp_path: Path) -> None:
    problems = validate_bundle(str(tmp_path))
    assert problems == [("", "no such file or directory")]
    # create names the whole path (a caller has many bundles)
    with pytest.raises(OcipyError) as err:
        load_bundle(str(tmp_path))
    assert str(err.value) == f"{tmp_path}/config.json: no such file or directory"


def test_missing_bundle_dir(tmp_path: Path) -> None:
    problems = validate_bundle(str(tmp_path / "nope"))
    assert len(problems) == 1 and problems[0][0] == "" and "does not exist" in problems[0][1]


def test_unreadable_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    [(ptr, msg)] = validate_bundle(str(tmp_path))
    assert ptr == "" and msg == "is a directory"


def test_malformed_config(tmp_path: Path) -> None:
    make_bundle(tmp_path, '{"ociVersion": "1.3.0",')
    [(ptr, msg)] = validate_bundle(str(tmp_path))
    assert ptr == "" and msg.startswith("invalid json") and "line 1 column" in msg


def test_unsupported_version(tmp_path: Path) -> None:
    cfg = default_config(False)
    cfg["ociVersion"] = "1.4.0"
    make_bundle(tmp_path, cfg)
    with pytest.raises(OcipyError, match=r"^/ociVersion: unsupported version 1\.4\.0"):
        load_bundle(str(tmp_path))


def test_root_missing_and_rootfs_kinds(tmp_path: Path) -> None:
    cfg = default_config(False)
    del cfg["root"]
    make_bundle(tmp_path, cfg, rootfs=False)
    assert validate_bundle(str(tmp_path))[0][0] == "/root"

    cfg = default_config(False)
    make_bundle(tmp_path, cfg, rootfs=False)
    (tmp_path / "rootfs").write_text("not a dir")
    [(ptr, msg)] = validate_bundle(str(tmp_path))
    assert ptr == "/root/path" and msg.endswith("not a directory")

    (tmp_path / "rootfs").unlink()
    (tmp_path / "real").mkdir()
    (tmp_path / "rootfs").symlink_to("real")
    [(ptr, msg)] = validate_bundle(str(tmp_path))
    assert ptr == "/root/path" and "symlink" in msg

    (tmp_path / "rootfs").unlink()
    [(ptr, msg)] = validate_bundle(str(tmp_path))
    assert ptr == "/root/path" and "no such file or directory" in msg


def test_process_args_missing(tmp_path: Path) -> None:
    cfg = default_config(False)
    del cfg["process"]["args"]
    make_bundle(tmp_path, cfg)
    assert [p for p, _ in validate_bundle(str(tmp_path))] == ["/process/args"]


def test_no_process_is_fine_for_validate(tmp_path: Path) -> None:
    cfg = default_config(False)
    del cfg["process"]
    make_bundle(tmp_path, cfg)
    assert validate_bundle(str(tmp_path)) == []


def test_userns_with_path_needs_no_mappings(tmp_path: Path) -> None:
    cfg = default_config(False)
    cfg["linux"]["namespaces"].append({"type": "user", "path": "/proc/1/ns/user"})
    make_bundle(tmp_path, cfg)
    assert validate_bundle(str(tmp_path)) == []


def test_rootless_default_is_valid(tmp_path: Path) -> None:
    make_bundle(tmp_path, default_config(True))
    assert validate_bundle(str(tmp_path)) == []


def test_windows_style_cwd_is_refused_by_the_bundle(tmp_path: Path) -> None:
    cfg = default_config(False)
    cfg["process"]["cwd"] = "C:\\work"  # absolute for the spec, not for a Linux container
    make_bundle(tmp_path, cfg)
    assert validate_bundle(str(tmp_path)) == [("/process/cwd", "must be an absolute path")]


# --- ocipy spec ------------------------------------------------------------------------------------------------------


def test_spec_writes_config(tmp_path: Path) -> None:
    assert spec_op.main(argparse.Namespace(bundle=str(tmp_path), rootless_spec=False)) == 0
    text = (tmp_path / "config.json").read_text()
    assert text.endswith("}\n") and '\t"ociVersion": "1.3.0"' in text
    assert json.loads(text) == default_config(False)
    (tmp_path / "rootfs").mkdir()
    assert validate_bundle(str(tmp_path)) == []


def test_spec_rootless(tmp_path: Path) -> None:
    assert spec_op.main(argparse.Namespace(bundle=str(tmp_path), rootless_spec=True)) == 0
    assert json.loads((tmp_path / "config.json").read_text()) == default_config(True)


def test_spec_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("mine")
    with pytest.raises(OcipyError, match="config.json exists, remove it first"):
        spec_op.main(argparse.Namespace(bundle=str(tmp_path), rootless_spec=False))
    assert (tmp_path / "config.json").read_text() == "mine"


def test_spec_default_bundle_is_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert spec_op.main(argparse.Namespace(bundle=".", rootless_spec=False)) == 0
    assert (tmp_path / "config.json").exists()


def test_spec_missing_bundle_dir(tmp_path: Path) -> None:
    with pytest.raises(OcipyError, match="no such directory"):
        spec_op.main(argparse.Namespace(bundle=str(tmp_path / "nope"), rootless_spec=False))


# --- ocipy validate ------------------------------------------------------------------------------------------------


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_bundle(tmp_path)
    assert validate_op.main(argparse.Namespace(bundle=str(tmp_path))) == 0
    out = capsys.readouterr()
    assert out.out == f"bundle {tmp_path} is valid\n" and out.err == ""


def test_validate_reports_each_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = default_config(False)
    cfg["mounts"][3]["destination"] = "dev/shm"
    cfg["process"]["cwd"] = "rel"
    make_bundle(tmp_path, cfg)
    assert validate_op.main(argparse.Namespace(bundle=str(tmp_path))) == 1
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.splitlines()
    assert "config.json: /mounts/3/destination: must be an absolute path" in lines
    assert "config.json: /process/cwd: must be an absolute path" in lines
    assert len(lines) == 2


def test_validate_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_op.main(argparse.Namespace(bundle=str(tmp_path))) == 1
    assert capsys.readouterr().err == "config.json: no such file or directory\n"


def test_device_mode_with_matching_type_bits_is_run_but_reported(tmp_path: Path) -> None:
    """Podman's fileMode carries S_IFCHR (0o20600): create runs it like runc, validate still reports it."""
    config = default_config(False)
    config["linux"]["devices"] = [{"path": "/dev/vm0", "type": "c", "major": 10, "minor": 232, "fileMode": 0o20600}]
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "rootfs").mkdir()
    spec, _, _ = load_bundle(str(tmp_path))
    assert spec.linux is not None and spec.linux.devices is not None
    assert spec.linux.devices[0].file_mode == 0o600
    assert [p for p, _ in validate_bundle(str(tmp_path))] == ["/linux/devices/0/fileMode"]
    config["linux"]["devices"][0]["fileMode"] = 0o60600  # block bits on a char device: still an error
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(OcipyError, match="/linux/devices/0/fileMode"):
        load_bundle(str(tmp_path))


def test_create_runs_what_the_spec_lets_run_and_validate_reports_it(tmp_path: Path) -> None:
    """Unknown capability names (config.md: warn, SHOULD NOT fail) and relative mount destinations (read against
    "/") are run by create; validate still names them so the bundle can be fixed."""
    config = default_config(False)
    config["process"]["capabilities"]["bounding"].append("CAP_NOT_A_CAPABILITY")
    config["mounts"].append({"destination": "relative/tmp", "type": "tmpfs", "source": "tmpfs"})
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "rootfs").mkdir()
    spec, _, _ = load_bundle(str(tmp_path))
    assert spec.process is not None and spec.process.capabilities is not None
    assert "CAP_NOT_A_CAPABILITY" not in (spec.process.capabilities.bounding or [])
    assert spec.mounts is not None and spec.mounts[-1].destination == "/relative/tmp"
    pointers = {p for p, _ in validate_bundle(str(tmp_path))}
    assert pointers == {"/process/capabilities/bounding/3", f"/mounts/{len(config['mounts']) - 1}/destination"}
