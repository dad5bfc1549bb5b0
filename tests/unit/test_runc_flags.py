"""Every flag runc 1.5.1 has is in ocipy's grammar (runc 1.5.1's `VERB --help`, recorded here so CI needs no runc)."""

from __future__ import annotations

from ocipy.cligrammar import VERBS

RUNC_151 = {
    "checkpoint": [
        "--auto-dedup",
        "--empty-ns",
        "--ext-unix-sk",
        "--file-locks",
        "--image-path",
        "--lazy-pages",
        "--leave-running",
        "--link-remap",
        "--manage-cgroups-mode",
        "--page-server",
        "--parent-path",
        "--pre-dump",
        "--shell-job",
        "--status-fd",
        "--tcp-established",
        "--tcp-skip-in-flight",
        "--work-path",
    ],
    "create": [
        "--bundle",
        "--console-socket",
        "--no-new-keyring",
        "--no-pivot",
        "--pid-file",
        "--pidfd-socket",
        "--preserve-fds",
    ],
    "delete": [
        "--force",
    ],
    "events": [
        "--interval",
        "--stats",
    ],
    "exec": [
        "--additional-gids",
        "--apparmor",
        "--cap",
        "--cgroup",
        "--console-socket",
        "--cwd",
        "--detach",
        "--env",
        "--ignore-paused",
        "--no-new-privs",
        "--pid-file",
        "--pidfd-socket",
        "--preserve-fds",
        "--process",
        "--process-label",
        "--tty",
        "--user",
    ],
    "kill": [],
    "list": [
        "--format",
        "--quiet",
    ],
    "pause": [],
    "ps": [
        "--format",
    ],
    "restore": [
        "--auto-dedup",
        "--bundle",
        "--console-socket",
        "--detach",
        "--empty-ns",
        "--ext-unix-sk",
        "--file-locks",
        "--image-path",
        "--lazy-pages",
        "--lsm-mount-context",
        "--lsm-profile",
        "--manage-cgroups-mode",
        "--no-pivot",
        "--no-subreaper",
        "--pid-file",
        "--shell-job",
        "--tcp-established",
        "--work-path",
    ],
    "resume": [],
    "run": [
        "--bundle",
        "--console-socket",
        "--detach",
        "--keep",
        "--no-new-keyring",
        "--no-pivot",
        "--no-subreaper",
        "--pid-file",
        "--pidfd-socket",
        "--preserve-fds",
    ],
    "spec": [
        "--bundle",
        "--rootless",
    ],
    "start": [],
    "state": [],
    "update": [
        "--blkio-weight",
        "--cpu-burst",
        "--cpu-idle",
        "--cpu-period",
        "--cpu-quota",
        "--cpu-rt-period",
        "--cpu-rt-runtime",
        "--cpu-share",
        "--cpuset-cpus",
        "--cpuset-mems",
        "--l3-cache-schema",
        "--mem-bw-schema",
        "--memory",
        "--memory-reservation",
        "--memory-swap",
        "--pids-limit",
        "--resources",
    ],
    "features": [],
}
# known gaps, each owned by an issue: the test fails when one is closed, so the list stays true
NOT_YET: dict[str, set[str]] = {}


def test_every_runc_151_flag_is_accepted() -> None:
    gaps: dict[str, set[str]] = {}
    for verb, flags in RUNC_151.items():
        ours = {f for o in VERBS[verb].opts for f in o.flags}
        missing = set(flags) - ours
        if missing:
            gaps[verb] = missing
    assert gaps == NOT_YET
