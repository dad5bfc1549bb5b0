"""config.json: the top-level `Spec` and the platform-neutral parts (config.md, config-schema.json, defs.json)."""

from typing import Annotated

from pydantic import Field

from ocipy.spec._base import (
    AbsPath,
    Capability,
    OciVersion,
    Opt,
    RlimitType,
    SpecModel,
    StrList,
    StrMap,
    Uint32,
    Uint64,
)
from ocipy.spec.checks import CAPABILITIES, RLIMITS
from ocipy.spec.linux import (
    CPU,
    Device,
    DeviceCgroup,
    ExecCPUAffinity,
    IDMapping,
    IOPriority,
    Linux,
    Namespace,
    Resources,
    Scheduler,
    Seccomp,
)
from ocipy.spec.platforms import VM, ZOS, FreeBSD, Solaris, Windows

__all__ = [
    "CAPABILITIES",
    "CPU",
    "RLIMITS",
    "VM",
    "ZOS",
    "Box",
    "Capabilities",
    "Device",
    "DeviceCgroup",
    "FreeBSD",
    "Hook",
    "Hooks",
    "IDMapping",
    "Linux",
    "Mount",
    "Namespace",
    "Process",
    "Resources",
    "Rlimit",
    "Root",
    "Seccomp",
    "Solaris",
    "Spec",
    "User",
    "Windows",
]


class Root(SpecModel):
    # Absolute, or relative to the bundle; bundle.py resolves and checks it.
    path: str
    readonly: Opt[bool] = None


class Mount(SpecModel):
    # Linux allows a (deprecated) relative destination, so the model accepts it; ocipy's bundle check refuses it.
    destination: str
    source: Opt[str] = None
    options: Opt[StrList] = None
    type: Opt[str] = None
    uid_mappings: Opt[list[IDMapping]] = Field(None, alias="uidMappings")
    gid_mappings: Opt[list[IDMapping]] = Field(None, alias="gidMappings")


class Box(SpecModel):
    height: Uint64
    width: Uint64


class User(SpecModel):
    # config.md calls uid/gid required on POSIX; the official schema does not, and the schema wins (runc reads 0).
    uid: Opt[Uint32] = None
    gid: Opt[Uint32] = None
    umask: Opt[Uint32] = None
    additional_gids: Opt[list[Uint32]] = Field(None, alias="additionalGids")
    username: Opt[str] = None


class Capabilities(SpecModel):
    bounding: Opt[list[Capability]] = None
    effective: Opt[list[Capability]] = None
    inheritable: Opt[list[Capability]] = None
    permitted: Opt[list[Capability]] = None
    ambient: Opt[list[Capability]] = None


class Rlimit(SpecModel):
    type: RlimitType
    soft: Uint64
    hard: Uint64


class Process(SpecModel):
    terminal: Opt[bool] = None
    console_size: Opt[Box] = Field(None, alias="consoleSize")
    user: Opt[User] = None
    args: Opt[StrList] = None
    command_line: Opt[str] = Field(None, alias="commandLine")
    env: Opt[StrList] = None
    # config.md: cwd "MUST be an absolute path".
    cwd: AbsPath
    capabilities: Opt[Capabilities] = None
    rlimits: Opt[list[Rlimit]] = None
    no_new_privileges: Opt[bool] = Field(None, alias="noNewPrivileges")
    apparmor_profile: Opt[str] = Field(None, alias="apparmorProfile")
    oom_score_adj: Opt[int] = Field(None, alias="oomScoreAdj")
    scheduler: Opt[Scheduler] = None
    selinux_label: Opt[str] = Field(None, alias="selinuxLabel")
    io_priority: Opt[IOPriority] = Field(None, alias="ioPriority")
    exec_cpu_affinity: Opt[ExecCPUAffinity] = Field(None, alias="execCPUAffinity")


class Hook(SpecModel):
    # config.md: "This specification extends the IEEE standard in that path MUST be absolute."
    path: AbsPath
    args: Opt[StrList] = None
    env: Opt[StrList] = None
    timeout: Opt[Annotated[int, Field(ge=1)]] = None


class Hooks(SpecModel):
    prestart: Opt[list[Hook]] = None
    create_runtime: Opt[list[Hook]] = Field(None, alias="createRuntime")
    create_container: Opt[list[Hook]] = Field(None, alias="createContainer")
    start_container: Opt[list[Hook]] = Field(None, alias="startContainer")
    poststart: Opt[list[Hook]] = None
    poststop: Opt[list[Hook]] = None


class Spec(SpecModel):
    oci_version: OciVersion = Field(alias="ociVersion")
    root: Opt[Root] = None
    mounts: Opt[list[Mount]] = None
    process: Opt[Process] = None
    hostname: Opt[str] = None
    domainname: Opt[str] = None
    hooks: Opt[Hooks] = None
    annotations: Opt[StrMap] = None
    linux: Opt[Linux] = None
    solaris: Opt[Solaris] = None
    windows: Opt[Windows] = None
    vm: Opt[VM] = None
    zos: Opt[ZOS] = None
    freebsd: Opt[FreeBSD] = None
