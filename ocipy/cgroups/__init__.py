"""Container cgroups: host layout detection (`layout`), cgroupsPath resolution (`paths`), resource writers for v1
(`v1`) and the unified hierarchy (`v2`), device rules (`devices`: v1 lists and the v2 eBPF program), the cgroup a
container lives in (`manager`) and statistics for `events` (`stats`).

Resources are plain JSON (the `linux.resources` object with spec key names), never pydantic models, so `update` and
`events` stay light. docs/cgroups.md says what is honoured on which hierarchy and why.
"""

from ..errors import ConfigError


class CgroupError(ConfigError):
    """A cgroup failure naming the config field: `str()` is `pointer: message` (pointer may be empty)."""
