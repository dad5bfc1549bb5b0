"""The state record and the lifecycle rules: one table of what each status allows, runc's refusals beside it."""

from __future__ import annotations

import pytest

from ocipy.errors import OcipyError
from ocipy.state import CREATED, CREATING, PAUSED, REFUSED, RUNNING, STOPPED, State, Status

ALL = (CREATING, CREATED, RUNNING, PAUSED, STOPPED)
# action -> the statuses that allow it (runc's rules; delete without --force)
ALLOWED = {
    "start": {CREATED},
    "kill": {CREATING, CREATED, RUNNING, PAUSED},
    "delete": {CREATED, STOPPED},
    "pause": {RUNNING, CREATED},  # runc 1.5.1 pauses a created container too
    "resume": {PAUSED},
    "exec": {CREATING, CREATED, RUNNING},
    "update": {CREATING, CREATED, RUNNING, PAUSED},
    "read_events": {CREATING, CREATED, RUNNING, PAUSED},
    "checkpoint": {RUNNING, PAUSED},
}


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("status", ALL)
def test_rules_and_refusals(action: str, status: Status) -> None:
    if status in ALLOWED[action]:
        status.require(action, "web")
        return
    with pytest.raises(OcipyError) as err:
        status.require(action, "web")
    assert err.value.message == (REFUSED.get(f"{action}/{status}") or REFUSED[action]).format(id="web", status=status)


def test_runc_wording() -> None:
    with pytest.raises(OcipyError, match="^cannot start a container that has stopped$"):
        STOPPED.require("start")
    with pytest.raises(OcipyError, match="^cannot delete container web that is not stopped: running$"):
        RUNNING.require("delete", "web")
    with pytest.raises(OcipyError, match="^cannot start a container in the paused state$"):
        PAUSED.require("start")
    PAUSED.require("exec", ignore_paused=True)
    with pytest.raises(OcipyError, match=r"--ignore-paused"):
        PAUSED.require("exec")


def test_every_refusal_has_a_rule() -> None:
    for key in REFUSED:
        assert hasattr(Status, "can_" + key.split("/")[0]), key


def test_record_round_trip_keeps_unknown_private_keys() -> None:
    st = State("a", pid=7, bundle="/b", rootfs="/b/rootfs", created="now", annotations={"k": "v"})
    st.private = {"starttime": 42, "hooks": {"poststop": [{"path": "/bin/true"}]}, "future": 1}
    st.cgroup = {"v2": "/sys/fs/cgroup/x"}
    back = State.from_json("a", st.to_json())
    assert (back.pid, back.starttime, back.cgroup, back.private["future"]) == (7, 42, {"v2": "/sys/fs/cgroup/x"}, 1)
    assert back.hooks == {"poststop": [{"path": "/bin/true"}]}
    assert list(back.oci(RUNNING)) == [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "annotations",
        "owner",
    ]
    assert back.oci(STOPPED)["pid"] == 0


def test_wrong_types_read_as_absent() -> None:
    st = State.from_json("a", {"pid": True, "bundle": 3, "ocipy": {"starttime": "x", "hooks": []}})
    assert (st.pid, st.bundle, st.starttime, st.hooks, st.cgroup) == (0, "", None, {}, None)
