"""The runtime features document (features.md, features-linux.md, schema features-schema.json)."""

from typing import Annotated

from pydantic import Field

from ocipy.spec._base import OciVersion, Opt, SpecModel, StrList, StrMap
from ocipy.spec.linux import (
    MemoryPolicyFlag,
    MemoryPolicyMode,
    NamespaceType,
    SeccompAction,
    SeccompArch,
    SeccompFlag,
    SeccompOperator,
)

# Features list what a runtime recognises, which may be newer than ocipy's list, so only the shape is checked.
CapabilityName = Annotated[str, Field(pattern=r"^CAP_[A-Z_]+$")]


class Enabled(SpecModel):
    enabled: Opt[bool] = None


class CgroupFeatures(SpecModel):
    v1: Opt[bool] = None
    v2: Opt[bool] = None
    systemd: Opt[bool] = None
    systemd_user: Opt[bool] = Field(None, alias="systemdUser")
    rdma: Opt[bool] = None


class SeccompFeatures(SpecModel):
    enabled: Opt[bool] = None
    actions: Opt[list[SeccompAction]] = None
    operators: Opt[list[SeccompOperator]] = None
    archs: Opt[list[SeccompArch]] = None
    known_flags: Opt[list[SeccompFlag]] = Field(None, alias="knownFlags")
    supported_flags: Opt[list[SeccompFlag]] = Field(None, alias="supportedFlags")


class MemoryPolicyFeatures(SpecModel):
    # In features-linux.md but not in the official schema.
    modes: Opt[list[MemoryPolicyMode]] = None
    flags: Opt[list[MemoryPolicyFlag]] = None


class IntelRdtFeatures(SpecModel):
    enabled: Opt[bool] = None
    # `schemata` and `monitoring` are in features-linux.md but not in the official schema.
    schemata: Opt[bool] = None
    monitoring: Opt[bool] = None


class MountExtensions(SpecModel):
    idmap: Opt[Enabled] = None


class LinuxFeatures(SpecModel):
    namespaces: Opt[list[NamespaceType]] = None
    capabilities: Opt[list[CapabilityName]] = None
    cgroup: Opt[CgroupFeatures] = None
    seccomp: Opt[SeccompFeatures] = None
    apparmor: Opt[Enabled] = None
    selinux: Opt[Enabled] = None
    intel_rdt: Opt[IntelRdtFeatures] = Field(None, alias="intelRdt")
    memory_policy: Opt[MemoryPolicyFeatures] = Field(None, alias="memoryPolicy")
    mount_extensions: Opt[MountExtensions] = Field(None, alias="mountExtensions")
    net_devices: Opt[Enabled] = Field(None, alias="netDevices")


class Features(SpecModel):
    oci_version_min: OciVersion = Field(alias="ociVersionMin")
    oci_version_max: OciVersion = Field(alias="ociVersionMax")
    hooks: Opt[StrList] = None
    mount_options: Opt[StrList] = Field(None, alias="mountOptions")
    annotations: Opt[StrMap] = None
    potentially_unsafe_config_annotations: Opt[StrList] = Field(None, alias="potentiallyUnsafeConfigAnnotations")
    linux: Opt[LinuxFeatures] = None
