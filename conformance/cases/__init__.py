"""One module per spec area; importing this package registers every case."""

from . import (  # noqa: F401
    capabilities,
    cgroups,
    devices,
    features,
    hooks,
    lifecycle,
    linux_runtime,
    masked_readonly,
    namespaces,
    process,
    rlimits,
    root_mounts,
    state,
    sysctl,
)
