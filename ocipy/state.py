"""A container's state: the typed record kept in `state.json`, and the status with the lifecycle rules.

`Status` carries what each verb may do in each status (as youki's `ContainerStatus`), and `REFUSED` beside it holds
runc's words for a refusal, so no verb writes its own check or message. `State` is the record; `ocipy/store.py`
reads and writes it (docs/contracts.md has the JSON layout). The status itself is never stored: the store derives
it on every read.

On the lifecycle path: stdlib only, no `typing` at run time.
"""

from .errors import OcipyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# the hook kinds of runtime.md's lifecycle, in order: create runs the first three, the state keeps the others
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
CREATE_HOOKS = HOOK_KINDS[:3]
KEPT_HOOKS = HOOK_KINDS[3:]
KILL_TIMEOUT = 10.0  # seconds to wait for a SIGKILLed init to exit (delete, kill, an undone create)
OCI_VERSION = "1.3.0"  # the runtime-spec version ocipy implements (version.SPEC, spec/default.py take it from here)


class Status(str):
    """One of `creating`, `created`, `running`, `paused`, `stopped`; compares equal to the plain string."""

    __slots__ = ()

    def can_start(self) -> bool:
        return self == CREATED

    def can_kill(self) -> bool:
        return self != STOPPED

    def can_delete(self) -> bool:
        """Without --force: only a stopped or a created container (runc)."""
        return self in (STOPPED, CREATED)

    def can_pause(self) -> bool:
        # a created container too, as runc: it reads `paused` (the freezer comes first), and `resume` makes it
        # `created` again (the exec fifo is still there)
        return self in (RUNNING, CREATED)

    def can_resume(self) -> bool:
        return self == PAUSED

    def can_exec(self, ignore_paused: bool = False) -> bool:
        return self != STOPPED and (self != PAUSED or ignore_paused)

    def can_update(self) -> bool:
        return self != STOPPED

    def can_read_events(self) -> bool:
        return self != STOPPED

    def can_checkpoint(self) -> bool:
        return self in (RUNNING, PAUSED)

    def require(self, action: str, cid: str = "", **flags: bool) -> None:
        """Raise runc's refusal (from REFUSED) unless `can_<action>` allows it."""
        if getattr(self, f"can_{action}")(**flags):
            return
        message = REFUSED.get(f"{action}/{self}") or REFUSED[action]
        raise OcipyError(message.format(id=cid, status=str(self)))


CREATING = Status("creating")
CREATED = Status("created")
RUNNING = Status("running")
PAUSED = Status("paused")
STOPPED = Status("stopped")

# action[/status] -> runc's message when the action is refused (the status-specific row wins)
REFUSED = {
    "start": "cannot start an already running container",
    "start/stopped": "cannot start a container that has stopped",
    "start/paused": "cannot start a container in the paused state",  # a created container, paused
    "kill": "container not running",
    "delete": "cannot delete container {id} that is not stopped: {status}",
    "pause": "container not running",
    "resume": "container not paused",
    "exec": "cannot exec in a paused container (use --ignore-paused to override)",
    "exec/stopped": "cannot exec in a stopped container",
    "update": "container not running",
    "read_events": "container not running",
    "checkpoint": "container cannot be checkpointed in {status} state",
}


def _str(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


class State:
    """The record in state.json: the OCI state fields but `status`, and ocipy's private ones (`"ocipy"` object).

    Private (`private`, the `"ocipy"` object, kept whole so keys this version does not know survive a rewrite):
    `starttime` (field 22 of /proc/PID/stat: tells the init from a reused pid), `hooks` (the kinds run after create:
    startContainer, poststart, poststop), `cgroup` (the cgroup driver's record), `rootless` (created without root).
    """

    __slots__ = ("annotations", "bundle", "created", "id", "oci_version", "owner", "pid", "private", "rootfs")

    def __init__(
        self,
        cid: str,
        *,
        oci_version: str = OCI_VERSION,
        pid: int = 0,
        bundle: str = "",
        rootfs: str = "",
        created: str = "",
        annotations: dict[str, str] | None = None,
        owner: str = "",
        private: "dict[str, Any] | None" = None,
    ) -> None:
        self.oci_version = oci_version
        self.id = cid
        self.pid = pid
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.annotations = annotations or {}
        self.owner = owner
        self.private: dict[str, Any] = private if private is not None else {}

    # --- private fields ----------------------------------------------------------------------------------------
    @property
    def starttime(self) -> int | None:
        st = self.private.get("starttime")
        return st if isinstance(st, int) and not isinstance(st, bool) else None

    @property
    def hooks(self) -> "dict[str, list[dict[str, Any]]]":
        hooks = self.private.get("hooks")
        return hooks if isinstance(hooks, dict) else {}

    @property
    def rootless(self) -> bool:
        """Created by a user without root (ocipy/rootless.py words the errors of its missing cgroup)."""
        return self.private.get("rootless") is True

    @property
    def cgroup(self) -> "Any":
        """The cgroup driver's record (None when the container has no cgroup)."""
        return self.private.get("cgroup")

    @cgroup.setter
    def cgroup(self, record: "dict[str, Any] | None") -> None:
        if record is None:
            self.private.pop("cgroup", None)
        else:
            self.private["cgroup"] = record

    # --- JSON ----------------------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, cid: str, data: "dict[str, Any]") -> "State":
        """A record read back; a field of the wrong type reads as absent."""
        pid = data.get("pid")
        annotations = data.get("annotations")
        private = data.get("ocipy")
        return cls(
            cid,
            oci_version=_str(data.get("ociVersion"), OCI_VERSION),
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else 0,
            bundle=_str(data.get("bundle")),
            rootfs=_str(data.get("rootfs")),
            created=_str(data.get("created")),
            annotations=annotations if isinstance(annotations, dict) else None,
            owner=_str(data.get("owner")),
            private=dict(private) if isinstance(private, dict) else None,
        )

    def to_json(self) -> "dict[str, Any]":
        out: dict[str, Any] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        }
        if self.annotations:
            out["annotations"] = self.annotations
        out["ocipy"] = self.private
        return out

    def oci(self, status: str) -> "dict[str, Any]":
        """The OCI state (state verb, hooks' stdin) in runc's key order; pid 0 once stopped, no empty annotations."""
        out: dict[str, Any] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid if status != STOPPED else 0,
            "status": str(status),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
        }
        if self.annotations:
            out["annotations"] = self.annotations
        out["owner"] = self.owner
        return out
