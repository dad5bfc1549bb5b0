"""The cache of compiled seccomp programs (`ocipy.seccomp.compile_cached`): real libseccomp, real files.

A hit gives the same program as compiling; the key changes with every field compile_filter reads; files or
directories anyone but the euid could have written, and files not exactly in the format, are ignored and replaced;
a hit neither imports cffi nor maps libseccomp; no cache directory means no file at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ocipy import seccomp as sc
from ocipy import seccompcache as scc
from ocipy.spec.linux import Seccomp

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sc.find_libseccomp() is None, reason="libseccomp.so.2 is not installed")

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")

PROFILE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
        {"names": ["read", "write", "openat", "close", "exit_group", "no_such_call_42"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
        },
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        },
    ],
}


def profile(**changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(PROFILE))
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}  # None: leave the field out


def model(doc: dict[str, Any] | None = None) -> Any:
    return Seccomp.model_validate(doc or PROFILE)


def cache_file(cache: Path, cfg: Any) -> Path:
    key = sc.cache_key(cfg)
    assert key is not None
    return cache / key


def other_program() -> sc.Program:
    """A valid program that is not PROFILE's: what a planted file would hold."""
    return sc.compile_filter(model({"defaultAction": "SCMP_ACT_ALLOW"}))


def plant(cache: Path, cfg: Any, data: bytes, mode: int = 0o600) -> Path:
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = cache_file(cache, cfg)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def assert_replaced(path: Path, cfg: Any) -> None:
    st = path.stat()
    assert st.st_uid == os.geteuid() and st.st_mode & 0o777 == 0o600
    assert scc._decode(path.read_bytes(), path.name) == sc.compile_filter(cfg)


# ----------------------------------------------------------------------------------------------------------------
# hits and keys
# ----------------------------------------------------------------------------------------------------------------


def test_hit_is_identical_to_a_fresh_compile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "@cache" / "seccomp"
    cfg = model()
    fresh = sc.compile_filter(cfg)
    assert fresh.skipped == ("no_such_call_42",) and fresh.flags == sc.FLAG_LOG
    miss = sc.compile_cached(cfg, cache_dir=str(cache))
    assert miss == fresh
    # the directories are made on demand, 0700; the file is 0600
    assert (tmp_path / "@cache").stat().st_mode & 0o777 == 0o700
    assert cache.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in cache.iterdir()] == [sc.cache_key(cfg)]
    assert cache_file(cache, cfg).stat().st_mode & 0o777 == 0o600

    def no_compile(*_: Any) -> sc.Program:
        raise AssertionError("a hit compiled the profile")

    monkeypatch.setattr(sc, "compile_filter", no_compile)
    hit = sc.compile_cached(model(), cache_dir=str(cache))
    assert hit == fresh
    assert (hit.bpf, hit.flags, hit.listener, hit.skipped) == (fresh.bpf, fresh.flags, fresh.listener, fresh.skipped)


def test_listener_program_round_trips(tmp_path: Path) -> None:
    doc = profile(
        defaultAction="SCMP_ACT_ALLOW",
        defaultErrnoRet=None,
        listenerPath="/run/agent.sock",
        listenerMetadata="meta",
        flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        syscalls=[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    )
    fresh = sc.compile_filter(model(doc))
    assert fresh.listener and fresh.flags == sc.FLAG_NEW_LISTENER | sc.FLAG_WAIT_KILLABLE_RECV
    assert sc.compile_cached(model(doc), cache_dir=str(tmp_path)) == fresh
    assert sc.compile_cached(model(doc), cache_dir=str(tmp_path)) == fresh
    assert len(list(tmp_path.iterdir())) == 1


def changed_rule() -> dict[str, Any]:
    doc = profile()
    doc["syscalls"][0]["names"][1] = "pwrite64"
    return doc


def changed_errno_ret() -> dict[str, Any]:
    doc = profile()
    doc["syscalls"][1]["errnoRet"] = 13
    return doc


def changed_arg() -> dict[str, Any]:
    doc = profile()
    doc["syscalls"][2]["args"][0]["value"] = 0
    return doc


def changed_op() -> dict[str, Any]:
    doc = profile()
    doc["syscalls"][2]["args"][0]["op"] = "SCMP_CMP_NE"
    return doc


def changed_value_two() -> dict[str, Any]:
    doc = profile()
    doc["syscalls"][3]["args"][0]["valueTwo"] = 1
    return doc


def changed_action() -> dict[str, Any]:
    doc = profile()
    doc["syscalls"][1]["action"] = "SCMP_ACT_KILL_PROCESS"
    del doc["syscalls"][1]["errnoRet"]
    return doc


VARIANTS = {
    "rule": changed_rule,
    "errnoRet": changed_errno_ret,
    "arg-value": changed_arg,
    "arg-op": changed_op,
    "arg-valueTwo": changed_value_two,
    "action": changed_action,
    "defaultErrnoRet": lambda: profile(defaultErrnoRet=1),
    "defaultAction": lambda: profile(defaultAction="SCMP_ACT_KILL_PROCESS", defaultErrnoRet=None),
    "arch": lambda: profile(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]),
    "arch-order": lambda: profile(architectures=["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]),
    "flags": lambda: profile(flags=["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
    "listenerPath": lambda: profile(listenerPath="/run/x.sock"),
    "rule-order": lambda: profile(syscalls=list(reversed(PROFILE["syscalls"]))),
}


def test_every_field_is_in_the_key() -> None:
    keys = {"base": sc.cache_key(model())}
    for name, make in VARIANTS.items():
        keys[name] = sc.cache_key(model(make()))
    assert None not in keys.values()
    assert len(set(keys.values())) == len(keys), keys
    assert sc.cache_key(model()) == keys["base"]  # stable


def test_machine_kernel_and_library_are_in_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = model()
    base = sc.cache_key(cfg)
    real_uname = os.uname()
    for field in (4, 2):  # machine, release
        fake = list(real_uname)
        fake[field] += "-other"
        monkeypatch.setattr(os, "uname", lambda fake=fake: os.uname_result(fake))
        assert sc.cache_key(cfg) not in (None, base)
    monkeypatch.setattr(os, "uname", lambda: real_uname)
    assert sc.cache_key(cfg) == base

    found = sc.find_libseccomp()
    assert found is not None
    other = tmp_path / "libseccomp.so.2"
    other.write_bytes(Path(found[0]).read_bytes())
    monkeypatch.setattr(scc, "find_libseccomp", lambda: (str(other), other.stat()))
    assert sc.cache_key(cfg) not in (None, base)
    # the library found is not the one dlopen loaded: compiled, not stored
    cache = tmp_path / "cache"
    assert sc.compile_cached(cfg, cache_dir=str(cache)) == sc.compile_filter(cfg)
    assert not cache.exists() or list(cache.iterdir()) == []
    # no library found: no key, nothing stored
    monkeypatch.setattr(scc, "find_libseccomp", lambda: None)
    assert sc.cache_key(cfg) is None
    assert sc.compile_cached(cfg, cache_dir=str(cache)) == sc.compile_filter(cfg)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_different_profile_never_reads_another_program(tmp_path: Path) -> None:
    for make in (changed_rule, changed_errno_ret, VARIANTS["arch"]):
        sc.compile_cached(model(), cache_dir=str(tmp_path))
        other = model(make())
        assert sc.compile_cached(other, cache_dir=str(tmp_path)) == sc.compile_filter(other)
    assert sc.compile_filter(model(changed_errno_ret())).bpf != sc.compile_filter(model()).bpf


def plain(obj: Any) -> Any:
    """A stand-in like the records of ocipy/spec/compiled.py: the fields and pydantic's internals in __dict__."""
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if not hasattr(type(obj), "model_fields"):
        return obj
    out = SimpleNamespace(**{name: plain(getattr(obj, name)) for name in type(obj).model_fields})
    out.__dict__.update(
        __pydantic_extra__={"unrelated": 1}, __pydantic_fields_set__={"names"}, __pydantic_private__=None
    )
    return out


def test_key_reads_only_the_fields_of_a_model_or_a_stand_in() -> None:
    cfg = model()
    assert sc.cache_key(plain(cfg)) == sc.cache_key(cfg)
    # internals and unknown attributes do not change the key
    stand_in = plain(cfg)
    stand_in.__dict__["__pydantic_fields_set__"] = {"defaultAction"}
    stand_in.extra_field = "x"
    assert sc.cache_key(stand_in) == sc.cache_key(cfg)
    # the same document validated again (aliases, absent optional fields) is the same key
    assert sc.cache_key(model(json.loads(json.dumps(PROFILE)))) == sc.cache_key(cfg)


def test_values_the_key_cannot_represent_are_compiled_without_the_cache(tmp_path: Path) -> None:
    odd = plain(model())
    odd.syscalls[0].names = (n for n in ["read", "write"])  # a generator: reading it for the key would consume it
    assert sc.cache_key(odd) is None
    prog = sc.compile_cached(odd, cache_dir=str(tmp_path))
    assert prog == sc.compile_filter(
        model(profile(syscalls=[{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}] + PROFILE["syscalls"][1:]))
    )
    assert list(tmp_path.iterdir()) == []


def test_compile_errors_are_raised_and_not_cached(tmp_path: Path) -> None:
    bad = model(profile(defaultAction="SCMP_ACT_ALLOW", defaultErrnoRet=1))
    for _ in range(2):
        with pytest.raises(sc.SeccompError) as info:
            sc.compile_cached(bad, cache_dir=str(tmp_path / "c"))
        assert info.value.pointer == "/linux/seccomp/defaultErrnoRet"
    assert not (tmp_path / "c").exists() or list((tmp_path / "c").iterdir()) == []


def test_no_cache_dir_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    def untouched(*_: Any) -> None:
        raise AssertionError("the cache was used without a cache directory")

    for name in ("_key", "_cache_read", "_cache_write", "_mkdirs"):
        monkeypatch.setattr(scc, name, untouched)
    assert sc.compile_cached(model(), cache_dir=None) == sc.compile_filter(model())
    assert sc.compile_cached(model()) == sc.compile_filter(model())
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------------------------
# files that are not trusted
# ----------------------------------------------------------------------------------------------------------------


def valid_bytes(cfg: Any) -> bytes:
    key = sc.cache_key(cfg)
    assert key is not None
    return scc._encode(key, sc.compile_filter(cfg))


def corrupt(kind: str, cfg: Any) -> bytes:
    good = valid_bytes(cfg)
    if kind == "empty":
        return b""
    if kind == "short":
        return good[:20]
    if kind == "truncated":
        return good[:-1]
    if kind == "longer":
        return good + b"\0"
    if kind == "flipped-bpf-byte":
        data = bytearray(good)
        data[scc._HEADER.size + 3] ^= 0x40
        return bytes(data)
    if kind == "garbage":
        return os.urandom(len(good))
    if kind == "another-key":  # a valid file of another profile, renamed
        return valid_bytes(model(changed_rule()))
    if kind == "planted-program":  # the right key and checksum, but not the program of this profile
        key = sc.cache_key(cfg)
        assert key is not None
        return scc._encode(key, other_program())
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["empty", "short", "truncated", "longer", "flipped-bpf-byte", "garbage", "another-key"]
)
def test_corrupt_files_are_ignored_and_replaced(tmp_path: Path, kind: str) -> None:
    cfg = model()
    path = plant(tmp_path, cfg, corrupt(kind, cfg))
    assert sc.compile_cached(cfg, cache_dir=str(tmp_path)) == sc.compile_filter(cfg)
    assert_replaced(path, cfg)


def test_planted_program_in_a_trusted_file_is_used(tmp_path: Path) -> None:
    """The control for the tests below: a well-formed file of the euid, 0600, is believed."""
    cfg = model()
    plant(tmp_path, cfg, corrupt("planted-program", cfg))
    assert sc.compile_cached(cfg, cache_dir=str(tmp_path)) == other_program()


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_group_or_world_writable_file_is_ignored_and_replaced(tmp_path: Path, mode: int) -> None:
    cfg = model()
    path = plant(tmp_path, cfg, corrupt("planted-program", cfg), mode)
    assert path.stat().st_mode & 0o777 == mode
    assert sc.compile_cached(cfg, cache_dir=str(tmp_path)) == sc.compile_filter(cfg)
    assert_replaced(path, cfg)


@root_only
def test_file_of_another_uid_is_ignored_and_replaced(tmp_path: Path) -> None:
    cfg = model()
    path = plant(tmp_path, cfg, corrupt("planted-program", cfg))
    os.chown(path, 65534, 65534)
    assert sc.compile_cached(cfg, cache_dir=str(tmp_path)) == sc.compile_filter(cfg)
    assert_replaced(path, cfg)


def test_symlink_is_not_followed(tmp_path: Path) -> None:
    cfg = model()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(corrupt("planted-program", cfg))
    elsewhere.chmod(0o600)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    link = cache_file(cache, cfg)
    link.symlink_to(elsewhere)
    assert sc.compile_cached(cfg, cache_dir=str(cache)) == sc.compile_filter(cfg)
    assert not link.is_symlink()
    assert_replaced(link, cfg)
    assert scc._decode(elsewhere.read_bytes(), link.name) == other_program()  # the target was not written


def test_group_or_world_writable_directory_is_not_read_and_is_tightened(tmp_path: Path) -> None:
    cfg = model()
    cache = tmp_path / "cache"
    path = plant(cache, cfg, corrupt("planted-program", cfg))
    cache.chmod(0o777)
    assert sc.compile_cached(cfg, cache_dir=str(cache)) == sc.compile_filter(cfg)
    assert cache.stat().st_mode & 0o777 == 0o700
    assert_replaced(path, cfg)


@root_only
def test_directory_of_another_uid_is_neither_read_nor_written(tmp_path: Path) -> None:
    cfg = model()
    cache = tmp_path / "cache"
    planted = corrupt("planted-program", cfg)
    path = plant(cache, cfg, planted)
    os.chown(cache, 65534, 65534)
    assert sc.compile_cached(cfg, cache_dir=str(cache)) == sc.compile_filter(cfg)
    assert path.read_bytes() == planted  # left alone: not ours to fix
    assert sorted(p.name for p in cache.iterdir()) == [path.name]


def test_symlinked_cache_directory_is_not_used(tmp_path: Path) -> None:
    cfg = model()
    real = tmp_path / "real"
    plant(real, cfg, corrupt("planted-program", cfg))
    link = tmp_path / "link"
    link.symlink_to(real)
    assert sc.compile_cached(cfg, cache_dir=str(link)) == sc.compile_filter(cfg)


def test_unwritable_cache_never_fails_the_compile(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cfg = model()
    assert sc.compile_cached(cfg, cache_dir=str(blocker / "seccomp")) == sc.compile_filter(cfg)
    assert sc.compile_cached(cfg, cache_dir=str(blocker)) == sc.compile_filter(cfg)
    assert blocker.read_text() == "not a directory"


def test_old_entries_are_pruned(tmp_path: Path) -> None:
    for i in range(scc._MAX_ENTRIES + 5):
        stray = tmp_path / f"{i:064x}"
        stray.write_bytes(b"old")
        os.utime(stray, ns=(i * 10**9, i * 10**9))
    (tmp_path / ".tmp-stale").write_bytes(b"")
    os.utime(tmp_path / ".tmp-stale", ns=(0, 0))
    (tmp_path / "not-ours").write_bytes(b"")
    cfg = model()
    sc.compile_cached(cfg, cache_dir=str(tmp_path))
    names = {p.name for p in tmp_path.iterdir()}
    assert sc.cache_key(cfg) in names and "not-ours" in names and ".tmp-stale" not in names
    entries = [n for n in names if len(n) == 64]
    assert len(entries) == scc._MAX_ENTRIES
    assert f"{0:064x}" not in names and f"{scc._MAX_ENTRIES + 4:064x}" in names


# ----------------------------------------------------------------------------------------------------------------
# a hit loads neither cffi nor libseccomp; the plan compilers pass the cache on
# ----------------------------------------------------------------------------------------------------------------

HIT_SCRIPT = """
import json, sys
from ocipy import seccomp as sc
from ocipy.spec.linux import Seccomp
prog = sc.compile_cached(Seccomp.model_validate(json.loads(sys.argv[1])), cache_dir=sys.argv[2])
with open("/proc/self/maps") as f:
    mapped = "libseccomp" in f.read()
print(json.dumps({"cffi": sorted(m for m in sys.modules if m.split(".")[0] in ("cffi", "pycparser")),
                  "declarations": "ocipy._seccomp_ffi" in sys.modules,
                  "libseccomp": mapped, "bpf": prog.bpf.hex(), "flags": prog.flags,
                  "listener": prog.listener, "skipped": list(prog.skipped)}))
"""


def run_hit_script(cache: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", HIT_SCRIPT, json.dumps(PROFILE), str(cache)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_a_hit_loads_no_declarations_and_maps_no_libseccomp(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    miss = run_hit_script(cache)  # the control: a miss loads the declarations and libseccomp (never cffi's parser)
    assert miss["declarations"] and miss["libseccomp"] and miss["cffi"] == []
    hit = run_hit_script(cache)
    assert hit["cffi"] == [] and not hit["declarations"] and hit["libseccomp"] is False
    fresh = sc.compile_filter(model())
    assert (bytes.fromhex(hit["bpf"]), hit["flags"], hit["listener"], tuple(hit["skipped"])) == (
        fresh.bpf,
        fresh.flags,
        fresh.listener,
        fresh.skipped,
    )


def test_compile_create_and_compile_exec_use_the_cache(tmp_path: Path) -> None:
    from ocipy.execplan import compile_exec
    from ocipy.plan import HostFacts, compile_create
    from ocipy.spec.load import load_config

    host = HostFacts(has_kcore=True, cap_last_cap=40, cgroups=(), is_dir=lambda p: True, is_host_netns=lambda p: False)
    doc = {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["/bin/true"], "user": {"uid": 0, "gid": 0}, "noNewPrivileges": True},
        "linux": {"namespaces": [{"type": "mount"}], "seccomp": PROFILE},
    }
    spec = load_config(json.dumps(doc).encode())
    args: dict[str, Any] = {
        "rootfs": "/run/b/rootfs",
        "bundle": "/run/b",
        "fifo": "/run/ocipy/c/exec.fifo",
        "console_fd": None,
        "extra_fds": 0,
        "no_pivot": False,
        "no_new_keyring": False,
        "host": host,
    }
    cache = tmp_path / "@cache" / "seccomp"
    plain_plan = compile_create(spec, **args).encode()
    assert compile_create(spec, seccomp_cache=str(cache), **args).encode() == plain_plan
    assert [p.name for p in cache.iterdir()] == [sc.cache_key(spec.linux.seccomp)]
    assert compile_create(spec, seccomp_cache=str(cache), **args).encode() == plain_plan  # a hit

    exec_args: dict[str, Any] = {"init_pid": 1, "joins": [], "host": host}
    plain_exec = compile_exec(spec, spec.process, **exec_args).encode()
    assert compile_exec(spec, spec.process, seccomp_cache=str(cache), **exec_args).encode() == plain_exec
    assert len(list(cache.iterdir())) == 1
