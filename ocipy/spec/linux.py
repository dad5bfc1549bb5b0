"""The `linux` section of config.json (config-linux.md, schema config-linux.json and defs-linux.json)."""

from typing import Annotated, Literal

from pydantic import Field

from ocipy.spec._base import (
    AbsPath,
    FileMode,
    Int32,
    Int64,
    Opt,
    SpecModel,
    StrList,
    StrMap,
    Uint16,
    Uint32,
    Uint64,
)

NamespaceType = Literal["mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time"]
# the spec names four values; runc also takes the recursive forms, and rootless Podman sends "rslave" (--device)
RootfsPropagation = Literal["private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable"]
SeccompAction = Literal[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
]
SeccompArch = Literal[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
]
SeccompFlag = Literal[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
]
SeccompOperator = Literal[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
]
MemoryPolicyMode = Literal[
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
]
MemoryPolicyFlag = Literal["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
SchedulerPolicy = Literal[
    "SCHED_OTHER",
    "SCHED_FIFO",
    "SCHED_RR",
    "SCHED_BATCH",
    "SCHED_ISO",
    "SCHED_IDLE",
    "SCHED_DEADLINE",
]
SchedulerFlag = Literal[
    "SCHED_FLAG_RESET_ON_FORK",
    "SCHED_FLAG_RECLAIM",
    "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY",
    "SCHED_FLAG_KEEP_PARAMS",
    "SCHED_FLAG_UTIL_CLAMP_MIN",
    "SCHED_FLAG_UTIL_CLAMP_MAX",
]


class IDMapping(SpecModel):
    container_id: Uint32 = Field(alias="containerID")
    host_id: Uint32 = Field(alias="hostID")
    size: Uint32


class Namespace(SpecModel):
    type: NamespaceType
    # config-linux.md: "MUST be an absolute path in the runtime mount namespace".
    path: Opt[AbsPath] = None


class TimeOffset(SpecModel):
    secs: Opt[Int64] = None
    nanosecs: Opt[Uint32] = None


class TimeOffsets(SpecModel):
    boottime: Opt[TimeOffset] = None
    monotonic: Opt[TimeOffset] = None


class Device(SpecModel):
    type: Annotated[str, Field(pattern=r"^[cbup]$")]
    # "full path to device inside container".
    path: AbsPath
    file_mode: Opt[FileMode] = Field(None, alias="fileMode")
    major: Opt[Int64] = None
    minor: Opt[Int64] = None
    uid: Opt[Uint32] = None
    gid: Opt[Uint32] = None


class NetDevice(SpecModel):
    name: Opt[str] = None


class DeviceCgroup(SpecModel):
    allow: bool
    # The prose lists a/c/b; the official schema allows any string (see docs/spec-models.md).
    type: Opt[Literal["a", "c", "b"]] = None
    major: Opt[Int64] = None
    minor: Opt[Int64] = None
    access: Opt[Annotated[str, Field(pattern=r"^[rwm]*$")]] = None


class Memory(SpecModel):
    limit: Opt[Int64] = None
    reservation: Opt[Int64] = None
    swap: Opt[Int64] = None
    kernel: Opt[Int64] = None
    kernel_tcp: Opt[Int64] = Field(None, alias="kernelTCP")
    swappiness: Opt[Uint64] = None
    disable_oom_killer: Opt[bool] = Field(None, alias="disableOOMKiller")
    use_hierarchy: Opt[bool] = Field(None, alias="useHierarchy")
    check_before_update: Opt[bool] = Field(None, alias="checkBeforeUpdate")


class CPU(SpecModel):
    shares: Opt[Uint64] = None
    quota: Opt[Int64] = None
    burst: Opt[Uint64] = None
    period: Opt[Uint64] = None
    realtime_runtime: Opt[Int64] = Field(None, alias="realtimeRuntime")
    realtime_period: Opt[Uint64] = Field(None, alias="realtimePeriod")
    cpus: Opt[str] = None
    mems: Opt[str] = None
    idle: Opt[Int64] = None


class Pids(SpecModel):
    # Required by the official schema although the 1.3 prose calls it optional.
    limit: Int64


class WeightDevice(SpecModel):
    major: Int64
    minor: Int64
    weight: Opt[Uint16] = None
    leaf_weight: Opt[Uint16] = Field(None, alias="leafWeight")


class ThrottleDevice(SpecModel):
    major: Int64
    minor: Int64
    rate: Opt[Uint64] = None


class BlockIO(SpecModel):
    weight: Opt[Uint16] = None
    leaf_weight: Opt[Uint16] = Field(None, alias="leafWeight")
    weight_device: Opt[list[WeightDevice]] = Field(None, alias="weightDevice")
    throttle_read_bps_device: Opt[list[ThrottleDevice]] = Field(None, alias="throttleReadBpsDevice")
    throttle_write_bps_device: Opt[list[ThrottleDevice]] = Field(None, alias="throttleWriteBpsDevice")
    throttle_read_iops_device: Opt[list[ThrottleDevice]] = Field(None, alias="throttleReadIOPSDevice")
    throttle_write_iops_device: Opt[list[ThrottleDevice]] = Field(None, alias="throttleWriteIOPSDevice")


class HugepageLimit(SpecModel):
    page_size: Annotated[str, Field(pattern=r"^[1-9][0-9]*[KMG]B$")] = Field(alias="pageSize")
    limit: Uint64


class InterfacePriority(SpecModel):
    name: str
    priority: Uint32


class Network(SpecModel):
    class_id: Opt[Uint32] = Field(None, alias="classID")
    priorities: Opt[list[InterfacePriority]] = None


class Rdma(SpecModel):
    hca_handles: Opt[Uint32] = Field(None, alias="hcaHandles")
    hca_objects: Opt[Uint32] = Field(None, alias="hcaObjects")


class Resources(SpecModel):
    devices: Opt[list[DeviceCgroup]] = None
    memory: Opt[Memory] = None
    cpu: Opt[CPU] = None
    pids: Opt[Pids] = None
    block_io: Opt[BlockIO] = Field(None, alias="blockIO")
    hugepage_limits: Opt[list[HugepageLimit]] = Field(None, alias="hugepageLimits")
    network: Opt[Network] = None
    rdma: Opt[dict[str, Rdma]] = None
    unified: Opt[StrMap] = None


class SyscallArg(SpecModel):
    index: Uint32
    value: Uint64
    value_two: Opt[Uint64] = Field(None, alias="valueTwo")
    op: SeccompOperator


class Syscall(SpecModel):
    names: Annotated[list[str], Field(min_length=1)]
    action: SeccompAction
    errno_ret: Opt[Uint32] = Field(None, alias="errnoRet")
    args: Opt[list[SyscallArg]] = None


class Seccomp(SpecModel):
    default_action: SeccompAction = Field(alias="defaultAction")
    default_errno_ret: Opt[Uint32] = Field(None, alias="defaultErrnoRet")
    architectures: Opt[list[SeccompArch]] = None
    flags: Opt[list[SeccompFlag]] = None
    listener_path: Opt[str] = Field(None, alias="listenerPath")
    listener_metadata: Opt[str] = Field(None, alias="listenerMetadata")
    syscalls: Opt[list[Syscall]] = None


class IntelRdt(SpecModel):
    clos_id: Opt[str] = Field(None, alias="closID")
    schemata: Opt[StrList] = None
    l3_cache_schema: Opt[str] = Field(None, alias="l3CacheSchema")
    mem_bw_schema: Opt[Annotated[str, Field(pattern=r"^MB:[^\n]*$")]] = Field(None, alias="memBwSchema")
    enable_monitoring: Opt[bool] = Field(None, alias="enableMonitoring")


class MemoryPolicy(SpecModel):
    # The prose calls `mode` required; the official schema does not (see docs/spec-models.md).
    mode: Opt[MemoryPolicyMode] = None
    nodes: Opt[str] = None
    flags: Opt[list[MemoryPolicyFlag]] = None


class Personality(SpecModel):
    domain: Opt[Literal["LINUX", "LINUX32"]] = None
    flags: Opt[StrList] = None


class Linux(SpecModel):
    namespaces: Opt[list[Namespace]] = None
    uid_mappings: Opt[list[IDMapping]] = Field(None, alias="uidMappings")
    gid_mappings: Opt[list[IDMapping]] = Field(None, alias="gidMappings")
    time_offsets: Opt[TimeOffsets] = Field(None, alias="timeOffsets")
    devices: Opt[list[Device]] = None
    net_devices: Opt[dict[str, NetDevice]] = Field(None, alias="netDevices")
    cgroups_path: Opt[str] = Field(None, alias="cgroupsPath")
    resources: Opt[Resources] = None
    rootfs_propagation: Opt[RootfsPropagation] = Field(None, alias="rootfsPropagation")
    seccomp: Opt[Seccomp] = None
    sysctl: Opt[StrMap] = None
    # config-linux.md: masked and readonly paths "MUST be absolute paths in the container namespace".
    masked_paths: Opt[list[AbsPath]] = Field(None, alias="maskedPaths")
    readonly_paths: Opt[list[AbsPath]] = Field(None, alias="readonlyPaths")
    mount_label: Opt[str] = Field(None, alias="mountLabel")
    intel_rdt: Opt[IntelRdt] = Field(None, alias="intelRdt")
    memory_policy: Opt[MemoryPolicy] = Field(None, alias="memoryPolicy")
    personality: Opt[Personality] = None


# Process-level Linux settings (they live under `process` in config.json).


class Scheduler(SpecModel):
    policy: SchedulerPolicy
    nice: Opt[Int32] = None
    priority: Opt[Int32] = None
    flags: Opt[list[SchedulerFlag]] = None
    runtime: Opt[Uint64] = None
    deadline: Opt[Uint64] = None
    period: Opt[Uint64] = None


class IOPriority(SpecModel):
    class_: Literal["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"] = Field(alias="class")
    # The prose calls `priority` required; the official schema does not.
    priority: Opt[Int32] = None


class ExecCPUAffinity(SpecModel):
    initial: Opt[Annotated[str, Field(pattern=r"^[0-9, -]*$")]] = None
    final: Opt[Annotated[str, Field(pattern=r"^[0-9, -]*$")]] = None
