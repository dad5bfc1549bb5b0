"""One module per spec area; importing this package registers every case."""

from . import (  # noqa: F401
    lifecycle,
    state,
    process,
    root_mounts,
    namespaces,
    devices,
    sysctl,
    masked_readonly,
    rlimits,
    capabilities,
    hooks,
    linux_runtime,
    cgroups,
    features,
)
