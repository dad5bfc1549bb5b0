"""The mount option table: every option the runtime spec lists, and runc's order-sensitive semantics."""

from __future__ import annotations

import pytest

from ocipy import mountopts as mo

# option -> (flags set, flags cleared from a start of "everything set")
FLAG_CASES = {
    "ro": mo.MS_RDONLY,
    "nosuid": mo.MS_NOSUID,
    "nodev": mo.MS_NODEV,
    "noexec": mo.MS_NOEXEC,
    "sync": mo.MS_SYNCHRONOUS,
    "dirsync": mo.MS_DIRSYNC,
    "remount": mo.MS_REMOUNT,
    "mand": mo.MS_MANDLOCK,
    "noatime": mo.MS_NOATIME,
    "nodiratime": mo.MS_NODIRATIME,
    "relatime": mo.MS_RELATIME,
    "strictatime": mo.MS_STRICTATIME,
    "nosymfollow": mo.MS_NOSYMFOLLOW,
    "lazytime": mo.MS_LAZYTIME,
    "iversion": mo.MS_I_VERSION,
    "silent": mo.MS_SILENT,
    "bind": mo.MS_BIND,
    "rbind": mo.MS_BIND | mo.MS_REC,
}
OPPOSITES = {
    "rw": "ro",
    "suid": "nosuid",
    "dev": "nodev",
    "exec": "noexec",
    "async": "sync",
    "nomand": "mand",
    "atime": "noatime",
    "diratime": "nodiratime",
    "norelatime": "relatime",
    "nostrictatime": "strictatime",
    "symfollow": "nosymfollow",
    "nolazytime": "lazytime",
    "noiversion": "iversion",
    "loud": "silent",
}


@pytest.mark.parametrize(("opt", "flag"), sorted(FLAG_CASES.items()))
def test_flag(opt: str, flag: int) -> None:
    parsed = mo.parse([opt])
    assert parsed.flags == flag and not parsed.data


@pytest.mark.parametrize(("opt", "opposite"), sorted(OPPOSITES.items()))
def test_clearing_flag_is_order_sensitive(opt: str, opposite: str) -> None:
    assert mo.parse([opposite, opt]).flags == 0
    assert mo.parse([opt, opposite]).flags == FLAG_CASES[opposite]


def test_defaults_is_nothing() -> None:
    parsed = mo.parse(["defaults"])
    assert parsed.flags == 0 and parsed.data == []


@pytest.mark.parametrize(
    ("opt", "flag"),
    [
        ("private", mo.MS_PRIVATE),
        ("rprivate", mo.MS_PRIVATE | mo.MS_REC),
        ("shared", mo.MS_SHARED),
        ("rshared", mo.MS_SHARED | mo.MS_REC),
        ("slave", mo.MS_SLAVE),
        ("rslave", mo.MS_SLAVE | mo.MS_REC),
        ("unbindable", mo.MS_UNBINDABLE),
        ("runbindable", mo.MS_UNBINDABLE | mo.MS_REC),
    ],
)
def test_propagation(opt: str, flag: int) -> None:
    parsed = mo.parse([opt])
    assert parsed.propagation == flag and parsed.flags == 0


def test_last_propagation_wins() -> None:
    assert mo.parse(["rshared", "rprivate"]).propagation == mo.MS_PRIVATE | mo.MS_REC


@pytest.mark.parametrize(
    ("opt", "attr"),
    [
        ("rro", mo.MOUNT_ATTR_RDONLY),
        ("rnosuid", mo.MOUNT_ATTR_NOSUID),
        ("rnodev", mo.MOUNT_ATTR_NODEV),
        ("rnoexec", mo.MOUNT_ATTR_NOEXEC),
        ("rnodiratime", mo.MOUNT_ATTR_NODIRATIME),
        ("rnosymfollow", mo.MOUNT_ATTR_NOSYMFOLLOW),
    ],
)
def test_recursive_set(opt: str, attr: int) -> None:
    parsed = mo.parse([opt])
    assert (parsed.attr_set, parsed.attr_clr, parsed.flags) == (attr, 0, 0)


@pytest.mark.parametrize(
    ("opt", "attr"),
    [
        ("rrw", mo.MOUNT_ATTR_RDONLY),
        ("rsuid", mo.MOUNT_ATTR_NOSUID),
        ("rdev", mo.MOUNT_ATTR_NODEV),
        ("rexec", mo.MOUNT_ATTR_NOEXEC),
        ("rdiratime", mo.MOUNT_ATTR_NODIRATIME),
        ("rsymfollow", mo.MOUNT_ATTR_NOSYMFOLLOW),
    ],
)
def test_recursive_clear(opt: str, attr: int) -> None:
    parsed = mo.parse([opt])
    assert (parsed.attr_set, parsed.attr_clr) == (0, attr)


def test_recursive_set_then_clear() -> None:
    parsed = mo.parse(["rro", "rrw"])
    assert (parsed.attr_set, parsed.attr_clr) == (0, mo.MOUNT_ATTR_RDONLY)
    parsed = mo.parse(["rrw", "rro"])
    assert (parsed.attr_set, parsed.attr_clr) == (mo.MOUNT_ATTR_RDONLY, 0)


@pytest.mark.parametrize(
    ("opt", "mode"),
    [
        ("rnoatime", mo.MOUNT_ATTR_NOATIME),
        ("rstrictatime", mo.MOUNT_ATTR_STRICTATIME),
        ("rnorelatime", mo.MOUNT_ATTR_STRICTATIME),
        ("rrelatime", mo.MOUNT_ATTR_RELATIME),
        ("ratime", mo.MOUNT_ATTR_RELATIME),
        ("rnostrictatime", mo.MOUNT_ATTR_RELATIME),
    ],
)
def test_recursive_atime_is_a_whole_mode(opt: str, mode: int) -> None:
    # the kernel wants the whole MOUNT_ATTR__ATIME in attr_clr whenever the atime mode changes
    parsed = mo.parse(["rnoatime", opt])
    assert parsed.attr_set == mode and parsed.attr_clr == mo.MOUNT_ATTR__ATIME


def test_data_keeps_unknown_options_in_order() -> None:
    parsed = mo.parse(["nosuid", "mode=755", "ro", "size=65536k", "newinstance", "uid=5"])
    assert parsed.data == ["mode=755", "size=65536k", "newinstance", "uid=5"]
    assert parsed.data_string == "mode=755,size=65536k,newinstance,uid=5"
    assert parsed.flags == mo.MS_NOSUID | mo.MS_RDONLY
    assert mo.parse([]).data_string is None and mo.parse(None).flags == 0


def test_idmap_and_tmpcopyup_are_not_data() -> None:
    parsed = mo.parse(["bind", "idmap", "tmpcopyup"])
    assert parsed.idmap and not parsed.ridmap and parsed.tmpcopyup and parsed.data == []
    assert parsed.where == {"bind": 0, "idmap": 1, "tmpcopyup": 2}
    parsed = mo.parse(["rbind", "ridmap"])
    assert parsed.idmap and parsed.ridmap and parsed.bind


def test_every_spec_option_is_known() -> None:
    """Each option of config.md's table is understood (none falls through to the data string)."""
    spec_options = [
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "iversion",
        "lazytime",
        "loud",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "noiversion",
        "nolazytime",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "nosymfollow",
        "private",
        "ratime",
        "rbind",
        "rdev",
        "rdiratime",
        "relatime",
        "remount",
        "rexec",
        "rnoatime",
        "rnodiratime",
        "rnoexec",
        "rnorelatime",
        "rnostrictatime",
        "rnosuid",
        "rnosymfollow",
        "ro",
        "rprivate",
        "rrelatime",
        "rro",
        "rrw",
        "rshared",
        "rslave",
        "rstrictatime",
        "rsuid",
        "rsymfollow",
        "runbindable",
        "rw",
        "shared",
        "silent",
        "slave",
        "strictatime",
        "suid",
        "symfollow",
        "sync",
        "tmpcopyup",
        "unbindable",
        "idmap",
        "ridmap",
    ]
    for opt in spec_options:
        assert mo.parse([opt]).data == [], opt


def test_flags_to_attrs() -> None:
    flags = mo.MS_RDONLY | mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC | mo.MS_NODIRATIME | mo.MS_NOSYMFOLLOW
    want = mo.MOUNT_ATTR_RDONLY | mo.MOUNT_ATTR_NOSUID | mo.MOUNT_ATTR_NODEV | mo.MOUNT_ATTR_NOEXEC
    assert mo.flags_to_attrs(flags | mo.MS_RELATIME) == want | mo.MOUNT_ATTR_NODIRATIME | mo.MOUNT_ATTR_NOSYMFOLLOW
