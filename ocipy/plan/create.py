"""The create plan composed from the sections: stage 0, the rootfs and its mounts and devices, the paths after
the root switch, the process, and the report of a late failure. docs/plan.md gives the op order and why."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`), `collections.abc` ~1.3 ms: annotations only
    from collections.abc import Sequence

    from ocipy.spec import views

from ocipy import mountopts as mo
from ocipy import posixlite as px
from ocipy.plan.base import CreatePlan, PlanError, _clean, _items, opt, pointer
from ocipy.plan.devices import DevicesSection
from ocipy.plan.host import HostFacts
from ocipy.plan.mounts import MountsSection
from ocipy.plan.namespaces import NamespacesSection
from ocipy.plan.process import ProcessSection
from ocipy.plan.sysctl import SysctlSection
from ocipy.planfmt import (
    NOSTR,
    OP_BIND_ROOT,
    OP_CHROOT,
    OP_CONSOLE,
    OP_LOOPBACK_UP,
    OP_MASK_PATH,
    OP_MKDIR,
    OP_MOUNT_PROPAGATION,
    OP_OPEN_DEVNULL,
    OP_OPEN_ROOT,
    OP_PIVOT_ROOT,
    OP_READONLY_PATH,
    OP_REMOUNT_ROOT_RO,
    OP_REPORT,
    OP_SETDOMAINNAME,
    OP_SETHOSTNAME,
    OP_SIGNAL_CREATED,
    OP_SYNC_HOOKS,
    OP_SYSCTL,
    REPORT_COUNT,
    REPORT_FIRST,
    REPORT_JSON,
    REPORT_LOG,
    REPORT_TEXTS,
)

ROOTFS_PROPAGATION = mo.PROPAGATION
CHROOT_ONLY = 1  # OP_CHROOT a0: chroot without moving the rootfs onto / (no mount namespace of the container's own)


def compile_create(
    spec: views.Spec,
    *,
    rootfs: str,
    bundle: str,
    fifo: str,
    console_fd: int | None,
    extra_fds: int,
    no_pivot: bool,
    no_new_keyring: bool,
    env_extra: Sequence[str] = (),
    host_uid: int = 0,
    cgroup_procs: Sequence[str] = (),
    host: HostFacts | None = None,
    seccomp_cache: str | None = None,
    log: tuple[str | None, str] = (None, "text"),
) -> CreatePlan:
    """The plan that turns the config into a created container waiting for `start`.

    `cgroup_procs`: host cgroup.procs files the init joins first (before any namespace: a new cgroup namespace is
    rooted at the cgroup the process is in when it unshares). Empty when the caller places the process itself.
    `seccomp_cache`: a directory of compiled seccomp programs (`ocipy.seccomp.compile_cached`); None: no cache.
    `log`: the --log path (None: none) and format ("text" or "json"), where the init reports a failure that happens
    after `create` has returned (OP_REPORT), beside the container's stderr.
    """
    compiler = _Compiler(
        spec,
        rootfs=rootfs,
        bundle=bundle,
        fifo=fifo,
        console_fd=console_fd,
        extra_fds=extra_fds,
        no_pivot=no_pivot,
        no_new_keyring=no_new_keyring,
        env_extra=list(env_extra),
        host_uid=host_uid,
        cgroup_procs=list(cgroup_procs),
        host=host or HostFacts.probe(),
    )
    compiler.seccomp_cache = seccomp_cache
    compiler.log = log
    return compiler.run()


class _Compiler(ProcessSection, NamespacesSection, MountsSection, DevicesSection, SysctlSection):
    """The create plan: the sections in the order docs/plan.md gives."""

    # -- driver

    def run(self) -> CreatePlan:
        if not px.isabs(self.rootfs):
            raise PlanError("/root/path", f"rootfs {self.rootfs!r} must be an absolute path")
        self.read_namespaces()
        self.check_config()
        self.check_lsm()
        report = self.op(OP_REPORT, "", what="how to report a failure after create")
        self.stage0()
        self.stage1_rootfs()
        self.stage1_after_root_switch()
        self.process_ops()
        self.fill_report(report)
        return self.plan

    def fill_report(self, index: int) -> None:
        """OP_REPORT: the log, and "FIELD (WHAT)" for every op after `created` (the init names them itself)."""
        plan = self.plan
        created = next((i for i, op in enumerate(plan.ops) if op.code == OP_SIGNAL_CREATED), None)
        path, fmt = self.log
        first = len(plan.ops) if created is None else created + 1
        texts = []
        for i in range(first, len(plan.ops)):
            field, what = plan.field_of(i) or "runtime", plan.what[i]
            texts.append(f"{field} ({what})" if what else field)
        s, a = [NOSTR, NOSTR], [0, 0, 0]
        if path:
            s[REPORT_LOG] = self.strv("", [px.abspath(path)])
        if texts:
            s[REPORT_TEXTS] = self.strv("/process/args", texts)
        a[REPORT_JSON] = 1 if fmt == "json" else 0
        a[REPORT_FIRST], a[REPORT_COUNT] = first, len(texts)
        plan.fill(index, s=s, a=a)

    # -- stage 1: the container init, before the root switch

    def stage1_rootfs(self) -> None:
        if "network" in self.ns.new:
            # a new network namespace has only lo, and it is down: bring it up as runc does
            self.op(OP_LOOPBACK_UP, pointer("linux", "namespaces", self.ns.new["network"]), what="loopback up")
        self.proc_writes()
        prop_name = opt(self.linux).rootfs_propagation
        if prop_name:
            if prop_name not in ROOTFS_PROPAGATION:
                raise PlanError("/linux/rootfsPropagation", f"unknown propagation {prop_name!r}")
            self.propagation = ROOTFS_PROPAGATION[prop_name]
        if "mount" in self.ns.new:
            # Recursive always, so no mount made below reaches the host (a non-recursive value would leave the
            # mount holding the rootfs shared). Unbindable would forbid binding the rootfs: private until the end.
            # The asked-for value is applied to the new root after the switch: a shared first step would put
            # every setup mount below into the host's peer group (and pivot_root refuses shared parents).
            first = mo.MS_SLAVE | mo.MS_REC
            if self.propagation & mo.MS_UNBINDABLE:
                first = mo.MS_PRIVATE | mo.MS_REC
            field = "/linux/rootfsPropagation" if prop_name else ""
            self.op(OP_MOUNT_PROPAGATION, field, s=("/",), a=(first,), what="stop propagation to the host")
        if self.ns.has("mount") or opt(opt(self.spec).root).readonly:
            self.op(OP_BIND_ROOT, "/root/path", s=(self.rootfs,), what="rootfs")
        else:
            # No mount namespace (the spec allows inheriting every one; runc runs it): whatever is mounted lands in
            # the caller's mount namespace and stays there, so nothing the config did not ask for is mounted, not
            # even the rootfs on itself (a read-only root needs that bind, above). The root switch is a chroot.
            self.op(OP_OPEN_ROOT, "/root/path", s=(self.rootfs,), what="rootfs (no mount namespace: not bound)")
        self.op(OP_OPEN_DEVNULL, "", what="host /dev/null for masking")
        for i, m in enumerate(opt(self.spec).mounts or ()):
            self.mount(i, m)
        self.devices()
        hooks = opt(opt(self.spec).hooks)
        kinds = (("prestart", hooks.prestart), ("create_runtime", hooks.create_runtime))
        wanted = [n for n, hs in (*kinds, ("create_container", hooks.create_container)) if hs]
        if wanted:
            self.op(OP_SYNC_HOOKS, "/hooks", what="run " + ", ".join(wanted) + " hooks")
        if not self.ns.has("mount"):
            # pivot_root or moving the rootfs onto / would change the caller's own root
            self.op(OP_CHROOT, "/root/path", a=(CHROOT_ONLY,), what="chroot into the rootfs (no mount namespace)")
        elif self.no_pivot:
            self.op(OP_CHROOT, "/root/path", what="move the rootfs to / and chroot")
        else:
            self.op(OP_PIVOT_ROOT, "/root/path", what="pivot_root into the rootfs")

    # -- stage 1 after the root switch: container paths

    def stage1_after_root_switch(self) -> None:
        proc, linux = self.process, self.linux
        cwd = opt(proc).cwd if proc is not None else "/"
        if not cwd or not cwd.startswith("/"):
            raise PlanError("/process/cwd", f"{cwd!r} must be an absolute path")
        if _clean(cwd) != "/":
            # runc creates a missing cwd, as root and before the root may turn read-only
            self.op(OP_MKDIR, "/process/cwd", s=(None, cwd), a=(0o755,), what="create the working directory")
        if opt(proc).terminal:
            if self.console_fd is None:
                raise PlanError("/process/terminal", "a terminal needs a console socket (--console-socket)")
            size = opt(proc).console_size
            rows, cols = int(opt(size).height or 0), int(opt(size).width or 0)
            self.op(OP_CONSOLE, "/process/terminal", a=(self.console_fd, rows, cols), what="console on /dev/console")
        if opt(self.spec).hostname:
            self.op(OP_SETHOSTNAME, "/hostname", s=(self.spec.hostname,), what="hostname")
        if opt(self.spec).domainname:
            self.op(OP_SETDOMAINNAME, "/domainname", s=(self.spec.domainname,), what="domainname")
        for key, value in sorted(_items(opt(linux).sysctl)):
            ptr = pointer("linux", "sysctl", key)
            self.check_sysctl(ptr, key, value)
            self.op(OP_SYSCTL, ptr, s=(key, str(value)), what=f"sysctl {key}")
        # read-only paths before masks, as runc: a read-only bind of a parent must not cover a mask made before
        for i, path in enumerate(opt(linux).readonly_paths or ()):
            self.container_path_op(OP_READONLY_PATH, pointer("linux", "readonlyPaths", i), path, "read-only")
        for i, path in enumerate(opt(linux).masked_paths or ()):
            self.container_path_op(OP_MASK_PATH, pointer("linux", "maskedPaths", i), path, "mask")
        for ptr in self.dev_ro:
            self.op(OP_READONLY_PATH, ptr, s=(None, "/dev"), what="/dev read-only")
        if self.propagation and "mount" in self.ns.new:
            self.op(
                OP_MOUNT_PROPAGATION,
                "/linux/rootfsPropagation",
                s=("/",),
                a=(self.propagation,),
                what=f"rootfs propagation {opt(linux).rootfs_propagation}",
            )
        root = opt(self.spec).root
        if opt(root).readonly:
            self.op(OP_REMOUNT_ROOT_RO, "/root/readonly", what="read-only rootfs")

    def container_path_op(self, code: int, ptr: str, path: str, what: str) -> None:
        if not path or not path.startswith("/"):
            raise PlanError(ptr, f"{path!r} must be an absolute path")
        self.op(code, ptr, s=(None, _clean(path)), what=f"{what} {path}")
