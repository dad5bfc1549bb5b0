"""The non-Linux platform sections of config.json, typed as the official schema types them.

ocipy only runs Linux containers; these exist so a config written for (or shared with) another platform is still
checked the way the official schema checks it.
"""

from typing import Annotated, Any, Literal

from pydantic import Field

from ocipy.spec._base import (
    FileMode,
    Opt,
    SpecModel,
    StrList,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
)

# --- Windows (config-windows.json) ---


class WindowsDevice(SpecModel):
    id: str
    id_type: Literal["class"] = Field(alias="idType")


class WindowsMemory(SpecModel):
    limit: Opt[Uint64] = None


class WindowsCPUAffinity(SpecModel):
    mask: Opt[Uint64] = None
    group: Opt[Uint32] = None


class WindowsCPU(SpecModel):
    count: Opt[Uint64] = None
    shares: Opt[Uint16] = None
    maximum: Opt[Uint16] = None
    affinity: Opt[WindowsCPUAffinity] = None


class WindowsStorage(SpecModel):
    iops: Opt[Uint64] = None
    bps: Opt[Uint64] = None
    sandbox_size: Opt[Uint64] = Field(None, alias="sandboxSize")


class WindowsResources(SpecModel):
    memory: Opt[WindowsMemory] = None
    cpu: Opt[WindowsCPU] = None
    storage: Opt[WindowsStorage] = None


class WindowsNetwork(SpecModel):
    endpoint_list: Opt[StrList] = Field(None, alias="endpointList")
    allow_unqualified_dns_query: Opt[bool] = Field(None, alias="allowUnqualifiedDNSQuery")
    dns_search_list: Opt[StrList] = Field(None, alias="DNSSearchList")
    network_shared_container_name: Opt[str] = Field(None, alias="networkSharedContainerName")
    network_namespace: Opt[str] = Field(None, alias="networkNamespace")


class WindowsHyperV(SpecModel):
    utility_vm_path: Opt[str] = Field(None, alias="utilityVMPath")


class Windows(SpecModel):
    layer_folders: Annotated[StrList, Field(min_length=1)] = Field(alias="layerFolders")
    devices: Opt[list[WindowsDevice]] = None
    resources: Opt[WindowsResources] = None
    network: Opt[WindowsNetwork] = None
    credential_spec: Opt[dict[str, Any]] = Field(None, alias="credentialSpec")
    servicing: Opt[bool] = None
    ignore_flushes_during_boot: Opt[bool] = Field(None, alias="ignoreFlushesDuringBoot")
    hyperv: Opt[WindowsHyperV] = None


# --- Solaris (config-solaris.json) ---


class SolarisCappedCPU(SpecModel):
    ncpus: Opt[str] = None


class SolarisCappedMemory(SpecModel):
    physical: Opt[str] = None
    swap: Opt[str] = None


class SolarisAnet(SpecModel):
    linkname: Opt[str] = None
    lower_link: Opt[str] = Field(None, alias="lowerLink")
    allowed_address: Opt[str] = Field(None, alias="allowedAddress")
    configure_allowed_address: Opt[str] = Field(None, alias="configureAllowedAddress")
    defrouter: Opt[str] = None
    mac_address: Opt[str] = Field(None, alias="macAddress")
    link_protection: Opt[str] = Field(None, alias="linkProtection")


class Solaris(SpecModel):
    milestone: Opt[str] = None
    limitpriv: Opt[str] = None
    max_shm_memory: Opt[str] = Field(None, alias="maxShmMemory")
    capped_cpu: Opt[SolarisCappedCPU] = Field(None, alias="cappedCPU")
    capped_memory: Opt[SolarisCappedMemory] = Field(None, alias="cappedMemory")
    anet: Opt[list[SolarisAnet]] = None


# --- Virtual machines (config-vm.json) ---


class VMHypervisor(SpecModel):
    path: str
    parameters: Opt[StrList] = None


class VMKernel(SpecModel):
    path: str
    parameters: Opt[StrList] = None
    initrd: Opt[str] = None


class VMImage(SpecModel):
    path: str
    format: Literal["raw", "qcow2", "vdi", "vmdk", "vhd"]


class VMIOMem(SpecModel):
    first_gfn: Opt[Uint64] = Field(None, alias="firstGFN")
    first_mfn: Uint64 = Field(alias="firstMFN")
    nr_mfns: Uint64 = Field(alias="nrMFNs")


class VMHWConfig(SpecModel):
    device_tree: Opt[str] = Field(None, alias="deviceTree")
    vcpus: Opt[Uint32] = None
    memory: Opt[Uint64] = None
    dtdevs: Opt[StrList] = None
    # The official schema uses tuple-form `items` here (checks only the first entry); ocipy checks them all.
    iomems: Opt[list[VMIOMem]] = None
    irqs: Opt[list[Uint32]] = None


class VM(SpecModel):
    hypervisor: Opt[VMHypervisor] = None
    kernel: VMKernel
    image: Opt[VMImage] = None
    hw_config: Opt[VMHWConfig] = Field(None, alias="hwConfig")


# --- z/OS (config-zos.json) ---


class ZOSNamespace(SpecModel):
    type: Literal["mount", "pid", "uts", "ipc"]
    path: Opt[str] = None


class ZOS(SpecModel):
    namespaces: Opt[list[ZOSNamespace]] = None


# --- FreeBSD (config-freebsd.json) ---

SharingMode = Literal["disable", "new", "inherit"]
SharingModeNoDisable = Literal["new", "inherit"]


class FreeBSDDevice(SpecModel):
    path: Opt[str] = None
    mode: Opt[FileMode] = None


class FreeBSDJailAllow(SpecModel):
    set_hostname: Opt[bool] = Field(None, alias="setHostname")
    raw_sockets: Opt[bool] = Field(None, alias="rawSockets")
    chflags: Opt[bool] = None
    mount: Opt[StrList] = None
    quotas: Opt[bool] = None
    socket_af: Opt[bool] = Field(None, alias="socketAf")
    mlock: Opt[bool] = None
    reserved_ports: Opt[bool] = Field(None, alias="reservedPorts")
    suser: Opt[bool] = None


class FreeBSDJail(SpecModel):
    parent: Opt[str] = None
    host: Opt[SharingModeNoDisable] = None
    ip4: Opt[SharingMode] = None
    ip4_addr: Opt[StrList] = Field(None, alias="ip4Addr")
    ip6: Opt[SharingMode] = None
    ip6_addr: Opt[StrList] = Field(None, alias="ip6Addr")
    vnet: Opt[SharingModeNoDisable] = None
    interface: Opt[str] = None
    vnet_interfaces: Opt[StrList] = Field(None, alias="vnetInterfaces")
    sysvmsg: Opt[SharingMode] = None
    sysvsem: Opt[SharingMode] = None
    sysvshm: Opt[SharingMode] = None
    enforce_statfs: Opt[Uint8] = Field(None, alias="enforceStatfs")
    allow: Opt[FreeBSDJailAllow] = None


class FreeBSD(SpecModel):
    devices: Opt[list[FreeBSDDevice]] = None
    jail: Opt[FreeBSDJail] = None
