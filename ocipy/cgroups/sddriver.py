"""The systemd cgroup driver's class, in the driver table (`driver.DRIVERS["systemd"]`).

Light on purpose: `pause`, `resume`, `kill`, `ps`, `state` and `exec` of a container made with `--systemd-cgroup`
load this module and use the cgroupfs driver's methods on the scope's directories (the record is a cgroupfs record
plus `"systemd": {"unit", "slice"}`). Only create, apply (update, the deferred pids limit) and remove go through
systemd, and only they import `systemd.py` (unit properties, the placeholder) and its D-Bus client.
"""

from __future__ import annotations

from .driver import Cgroupfs, Driver

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .systemd import Placeholder


class Systemd(Cgroupfs):
    """A transient scope unit per container (ocipy/cgroups/systemd.py, docs/cgroups.md "The systemd driver")."""

    name = "systemd"
    _holder: Placeholder | None = None

    @classmethod
    def create(cls, cid: str, cgroups_path: str | None, resources: dict[str, Any], systemd: bool) -> Driver:
        from . import layout
        from .systemd import create

        now = {k: v for k, v in resources.items() if k != "pids"}  # pids once the init is set up (apply_deferred)
        record, holder = create(layout.detect(), cgroups_path, cid, now)
        record["resources"] = resources
        drv = cls(record)
        drv._holder = holder
        return drv

    def _release(self) -> None:
        """The placeholder goes (it also leaves by itself once the init is in the scope)."""
        if self._holder is not None:
            self._holder.release()
            self._holder = None

    def apply(self, resources: dict[str, Any], update: bool = False) -> None:
        """SetUnitProperties (runtime) for what systemd expresses, then the files (as runc's Set)."""
        from . import layout, manager
        from .systemd import properties, set_properties, unified

        self._release()
        lay = layout.detect()
        props, files = properties(resources, unified=unified(lay), create=not update)
        if props:
            set_properties(self.record, props)
        manager.apply(lay, self.record, files, update=update)  # a CgroupError names the field

    def remove(self) -> None:
        """StopUnit + ResetFailedUnit, then the directories ocipy made (cpuset, freezer, ... on v1)."""
        from .systemd import stop

        self._release()
        stop(self.record)
        super().remove()
