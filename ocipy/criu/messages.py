"""The part of CRIU's RPC protocol (criu 4.2, images/rpc.proto) that ocipy uses, as `wire` schemas.

Field numbers are the protocol's; a unit test compares them with rpc.proto when the CRIU source is at hand.
"""

from __future__ import annotations

from ocipy.criu.wire import Field

# criu_req_type
EMPTY, DUMP, RESTORE, CHECK, PRE_DUMP, PAGE_SERVER, NOTIFY = 0, 1, 2, 3, 4, 5, 6
FEATURE_CHECK, VERSION = 9, 10
REQ_NAMES = {
    EMPTY: "empty",
    DUMP: "dump",
    RESTORE: "restore",
    CHECK: "check",
    PRE_DUMP: "pre-dump",
    NOTIFY: "notify",
    FEATURE_CHECK: "feature-check",
    VERSION: "version",
}

# criu_cg_mode
CG_MODES = {"ignore": 0, "none": 1, "props": 2, "soft": 3, "full": 4, "strict": 5, "": 6}

PAGE_SERVER_INFO = {
    "address": Field(1, "string"),
    "port": Field(2, "int32"),
    "pid": Field(3, "int32"),
    "fd": Field(4, "int32"),
}
KEY_VAL = {"key": Field(1, "string"), "val": Field(2, "string")}
JOIN_NAMESPACE = {"ns": Field(1, "string"), "ns_file": Field(2, "string"), "extra_opt": Field(3, "string")}
INHERIT_FD = {"key": Field(1, "string"), "fd": Field(2, "int32")}
CGROUP_ROOT = {"ctrl": Field(1, "string"), "path": Field(2, "string")}
FEATURES = {"mem_track": Field(1, "bool"), "lazy_pages": Field(2, "bool"), "pidfd_store": Field(3, "bool")}

OPTS = {
    "images_dir_fd": Field(1, "int32"),
    "pid": Field(2, "int32"),
    "leave_running": Field(3, "bool"),
    "ext_unix_sk": Field(4, "bool"),
    "tcp_established": Field(5, "bool"),
    "evasive_devices": Field(6, "bool"),
    "shell_job": Field(7, "bool"),
    "file_locks": Field(8, "bool"),
    "log_level": Field(9, "int32"),
    "log_file": Field(10, "string"),
    "ps": Field(11, "message", PAGE_SERVER_INFO),
    "notify_scripts": Field(12, "bool"),
    "root": Field(13, "string"),
    "parent_img": Field(14, "string"),
    "track_mem": Field(15, "bool"),
    "auto_dedup": Field(16, "bool"),
    "work_dir_fd": Field(17, "int32"),
    "link_remap": Field(18, "bool"),
    "ext_mnt": Field(23, "message", KEY_VAL, repeated=True),
    "manage_cgroups": Field(24, "bool"),
    "cg_root": Field(25, "message", CGROUP_ROOT, repeated=True),
    "rst_sibling": Field(26, "bool"),
    "inherit_fd": Field(27, "message", INHERIT_FD, repeated=True),
    "manage_cgroups_mode": Field(34, "enum"),
    "external": Field(37, "string", repeated=True),
    "empty_ns": Field(38, "uint32"),
    "join_ns": Field(39, "message", JOIN_NAMESPACE, repeated=True),
    "freeze_cgroup": Field(44, "string"),
    "tcp_skip_in_flight": Field(46, "bool"),
    "lazy_pages": Field(48, "bool"),
    "status_fd": Field(49, "int32"),
    "orphan_pts_master": Field(50, "bool"),
    "config_file": Field(51, "string"),
    "lsm_profile": Field(53, "string"),
    "lsm_mount_context": Field(63, "string"),
    "images_dir": Field(68, "string"),
}

REQ = {
    "type": Field(1, "enum"),
    "opts": Field(2, "message", OPTS),
    "notify_success": Field(3, "bool"),
    "keep_open": Field(4, "bool"),
    "features": Field(5, "message", FEATURES),
    "pid": Field(6, "uint32"),
}

VERSION_MSG = {
    "major_number": Field(1, "int32"),
    "minor_number": Field(2, "int32"),
    "gitid": Field(3, "string"),
    "sublevel": Field(4, "int32"),
    "extra": Field(5, "int32"),
    "name": Field(6, "string"),
}

RESP = {
    "type": Field(1, "enum"),
    "success": Field(2, "bool"),
    "dump": Field(3, "message", {"restored": Field(1, "bool")}),
    "restore": Field(4, "message", {"pid": Field(1, "int32")}),
    "notify": Field(5, "message", {"script": Field(1, "string"), "pid": Field(2, "int32")}),
    "ps": Field(6, "message", PAGE_SERVER_INFO),
    "cr_errno": Field(7, "int32"),
    "features": Field(8, "message", FEATURES),
    "cr_errmsg": Field(9, "string"),
    "version": Field(10, "message", VERSION_MSG),
    "status": Field(11, "int32"),
}
