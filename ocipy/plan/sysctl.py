"""linux.sysctl: only keys of a namespace the container owns (runc's rule), never the host's."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from typing import Any

from ocipy.plan.base import PlanError, Section, opt

# sysctl prefixes and the namespace that makes them per-container (runc's validator)
IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)
UTS_SYSCTLS = frozenset({"kernel.hostname", "kernel.domainname"})


class SysctlSection(Section):
    def check_sysctl(self, ptr: str, key: str, value: Any = None) -> None:
        """Only sysctls of a namespace the container owns (runc's rule): never write the host's."""
        name = key.replace("/", ".")
        if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if not self.ns.has("ipc"):
                raise PlanError(ptr, "needs an ipc namespace")
        elif name in UTS_SYSCTLS:
            if not self.ns.has("uts"):
                raise PlanError(ptr, "needs a uts namespace")
            if name == "kernel.hostname":
                # as runc and crun: the dedicated field says it, and the two could disagree
                raise PlanError(ptr, "not allowed: it conflicts with the /hostname field (set /hostname instead)")
            domainname = opt(self.spec).domainname
            if domainname and str(value) != domainname:
                raise PlanError(ptr, f"value {value!r} conflicts with /domainname {domainname!r}")
        elif name.startswith("net."):
            if "network" in self.ns.new:
                return
            joined = self.ns.joined.get("network")
            if joined is None or self.host.is_host_netns(joined[1]):
                raise PlanError(ptr, "needs a network namespace other than the host's")
        else:
            raise PlanError(ptr, "not in a namespace of the container: it would change the host")
