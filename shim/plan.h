/* The plan: the one message Python sends the C init (ocipy-init).
 *
 * Python (ocipy/plan/) decides everything and encodes a flat list of operations; the init executes them in
 * order with raw system calls and never calls back into Python. This header is the contract: ocipy/planfmt.py
 * mirrors these numbers and a unit test compares the two.
 *
 * Layout (little endian, no padding surprises: every field is 4 or 8 bytes and the op record is 64 bytes):
 *   struct plan_header  header;
 *   struct plan_op      ops[header.n_ops];
 *   char                strtab[header.strtab_len];   strings are NUL-terminated; offsets point into strtab
 *
 * A "strv" is `count` NUL-terminated strings stored back to back starting at one offset (args, env, groups...).
 *
 * The parent <-> init message sequence over the sync socket (SOCK_SEQPACKET, struct sync_msg), in the order a
 * create meets it (Python's side: Launch.drive in ocipy/launch.py; the handlers: ocipy/creator.py):
 *
 *   op reached                 init sends                      parent does, then answers
 *   -------------------------  ------------------------------  -------------------------------------------------
 *   OP_SYNC_USERMAP            MSG_USERMAP(pid), waits         writes uid_map/gid_map of pid, clones idmapped /
 *                                                              runtime-side bind trees -> MSG_ACK (+ tree fds)
 *   OP_CLONE (stage 0)         MSG_PID(pid of stage 1), exits  records the pid (pidfd, start time), moves netDevices
 *   OP_SYNC_HOOKS              MSG_HOOKS(pid), waits           runs prestart/createRuntime/createContainer -> MSG_ACK
 *   OP_SECCOMP a2=1 / OP_SYNC  MSG_SYNC(op) (+ listener fd)    sends the listener to listenerPath -> MSG_ACK
 *   OP_SYNC a0=SYNC_MOUNT_TREES  MSG_SYNC(op), waits           no new user namespace: clones and idmaps the sources
 *                                                              of idmapped binds -> MSG_ACK (+ tree fds)
 *   OP_SIGNAL_CREATED          MSG_CREATED(pid)                `create` returns; the init waits on the exec fifo
 *   any op fails               MSG_ERROR(op, errno, detail)    one line naming the op's config field; the sender
 *                              and exits 1                     has exited
 *   execve done                EOF (CLOEXEC closes the socket) success (exec, hooks in the container: no CREATED)
 *
 * MSG_ACK with err != 0 tells the init to exit quietly (the parent gave up). exec and in-container hooks see the
 * same sequence minus what their plans do not contain.
 */
#ifndef OCIPY_PLAN_H
#define OCIPY_PLAN_H

#include <stdint.h>

/* The tables below are aligned by hand (ocipy/planfmt.py mirrors them; a test compares): */
/* clang-format off */

#define PLAN_MAGIC "OCIPLAN2"
#define PLAN_NOSTR 0xFFFFFFFFu

struct plan_header {
	char magic[8];
	uint32_t n_ops;
	uint32_t strtab_len;
};

struct plan_op {
	uint32_t code;  /* OP_* */
	uint32_t field; /* index into Python's field table (JSON pointer); the init only echoes it back */
	uint32_t s[4];  /* string offsets into strtab, PLAN_NOSTR when absent */
	int64_t a[5];   /* integer arguments */
};

/* Messages on the sync socket (SOCK_SEQPACKET, fd given by --sync-fd). Init -> Python unless noted. */
struct sync_msg {
	uint32_t type;   /* MSG_* */
	int32_t op;      /* index of the op this is about, -1 if none */
	int32_t err;     /* errno, 0 if none */
	int32_t pid;     /* a pid in the caller's pid namespace, or 0 */
	char detail[240]; /* short NUL-terminated text: the object that failed ("/proc", "sh") */
};

enum sync_type {
	MSG_ERROR = 1,   /* op failed: op, err, detail. The sender exits right after. */
	MSG_USERMAP = 2, /* OP_SYNC_USERMAP reached: write uid/gid maps of `pid`, then reply MSG_ACK */
	MSG_PID = 3,     /* OP_CLONE done: `pid` is the new process (the container init); reply MSG_ACK (once it is
	                    recorded), then stage 0 lets the child go on and exits */
	MSG_HOOKS = 4,   /* OP_SYNC_HOOKS reached (pid = the init): run createRuntime/createContainer hooks, reply MSG_ACK */
	MSG_CREATED = 5, /* OP_SIGNAL_CREATED: everything is set up; the init now waits for `start` */
	MSG_ACK = 6,     /* Python -> init: go on. err != 0 means abort (the init exits quietly) */
	MSG_SYNC = 7,    /* OP_SYNC reached (generic rendezvous, op = index); reply MSG_ACK */
	MSG_TRACE = 8,   /* only when started with a third argument "trace" (--debug): op `op` is done; no reply.
	                    Not sent once a seccomp filter is about to be installed (it may forbid sending) nor after
	                    OP_SIGNAL_CREATED (nobody reads any more). */
};

/* Operations. Unless marked, a failure is reported as MSG_ERROR(op index, errno, detail) and the process exits 1.
 * "path in root" = resolved beneath the root fd saved by OP_OPEN_ROOT (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS),
 * never through a symlink leaving it; missing components are created when the op says so. */
enum plan_code {
	/* 0 is no op: a zeroed op is an unknown op. shim/init/main.c dispatches through `handlers`, one row per code. */

	/* --- namespaces (stage 0: runs in the caller's namespaces) --- */
	OP_SETNS = 1,           /* s0 = path of a namespace file, a0 = CLONE_NEW* type (0 = any). Joins it. */
	OP_UNSHARE = 2,         /* a0 = CLONE_NEW* flags. */
	OP_SYNC_USERMAP = 3,    /* send MSG_USERMAP(pid = getpid()), wait for MSG_ACK, then setresuid/setresgid(0). */
	OP_TIMENS_OFFSETS = 4,  /* s0 = text written to /proc/self/timens_offsets ("monotonic 5 0\nboottime 1 0\n"). */
	OP_CLONE = 5,           /* clone(CLONE_PARENT|SIGCHLD, a0 = extra CLONE_NEW* flags). Parent sends MSG_PID, waits
	                           for MSG_ACK and exits 0; the child waits until then (EOF: it exits), then goes on.
	                           Fds (the exec fifo) are inherited: stage 0 drops its copies when it exits. */

	/* --- root filesystem (stage 1, before the root switch) --- */
	OP_MOUNT_PROPAGATION = 10, /* mount(NULL, s0 or "/", NULL, a0, NULL): a0 = MS_REC|MS_SLAVE / MS_PRIVATE / ... */
	OP_BIND_ROOT = 11,      /* s0 = absolute rootfs path on the host: mount(s0, s0, MS_BIND|MS_REC) so it is a mount
	                           point, then behaves like OP_OPEN_ROOT on it. */
	OP_OPEN_ROOT = 12,      /* s0 = directory: open it O_PATH|O_DIRECTORY as the root fd for "path in root" ops. */
	OP_MOUNT = 13,          /* s0 = source (may be NULL), s1 = destination (path in root), s2 = fstype (NULL for
	                           binds), s3 = data (NULL if none).
	                           a0 = mount(2) flags for the first mount call (MS_BIND|MS_REC for binds),
	                           a1 = flags for a following remount (0 = none; for binds: MS_REMOUNT|MS_BIND|... and
	                                the init adds the locked flags the source mount already has),
	                           a2 = propagation flags applied after (0 = none),
	                           a3 = recursive mount_setattr(AT_RECURSIVE) attributes, 0 = none: the low 32 bits are
	                                attr_set, the high 32 bits attr_clr (MOUNT_ATTR_* values; an atime change sets
	                                MOUNT_ATTR__ATIME in attr_clr as the kernel requires),
	                           a4 = MNTF_* bits below. */
	OP_MKNOD = 14,          /* s1 = path in root (parents created), a0 = mode incl. S_IFCHR/S_IFBLK/S_IFIFO,
	                           a1 = makedev(major, minor), a2 = uid, a3 = gid (-1 = leave). The mode is set with chmod
	                           afterwards (mknod applies the umask). An existing node of the same type and device is
	                           kept; anything else there is EEXIST (config-linux.md). */
	OP_BIND_DEV = 15,       /* s0 = host device path (opened O_PATH before binding and checked to be a device),
	                           s1 = path in root (created as a file): for user namespaces where mknod is denied. */
	OP_SYMLINK = 16,        /* s0 = target text, s1 = link path in root (parents created). Existing link: skipped. */
	OP_MKDIR = 17,          /* s1 = path in root, a0 = mode (parents created; existing dir is fine). */
	OP_OPEN_DEVNULL = 18,   /* open the host /dev/null, verify char 1:3, and keep a private detached copy of its mount
	                           (open_tree OPEN_TREE_CLONE) for OP_MASK_PATH: a plain fd of the host mount cannot be
	                           bind-mounted once pivot_root has detached the old root. */
	OP_OPEN_FIFO = 19,      /* s0 = host path of the exec fifo: open it O_RDONLY|O_NONBLOCK|O_CLOEXEC (a fifo open
	                           for reading needs no writer) and keep the fd for OP_WAIT_START. While this process
	                           holds it, `start` can open the fifo for writing; once it is gone `start` gets ENXIO. */
	OP_PIVOT_ROOT = 20,     /* pivot_root into the root fd, detach the old root, chdir("/"). */
	OP_CHROOT = 21,         /* --no-pivot: MS_MOVE the root onto "/", chroot("."), chdir("/"). a0 = 1: no MS_MOVE
	                           (a container without a mount namespace of its own: only chroot). */

	/* --- after the root switch: paths are container paths, resolved beneath "/" --- */
	OP_MASK_PATH = 30,      /* s1 = path: a directory gets a read-only empty tmpfs, anything else the verified
	                           /dev/null bind. Missing path: skipped. */
	OP_READONLY_PATH = 31,  /* s1 = path: bind it onto itself and remount read-only (keeping locked flags).
	                           Missing path: skipped. */
	OP_SYSCTL = 32,         /* s0 = key with '.' or '/' separators, s1 = value. Written under /proc/sys after
	                           verifying the file is on procfs (fstatfs PROC_SUPER_MAGIC). */
	OP_REMOUNT_ROOT_RO = 33, /* remount "/" read-only (bind remount, keeping locked flags). */
	OP_SETHOSTNAME = 34,    /* s0 = hostname */
	OP_SETDOMAINNAME = 35,  /* s0 = domainname */
	OP_WRITE_PROC = 36,     /* s0 = path under /proc (e.g. "/proc/self/oom_score_adj"), s1 = text. Verified procfs. */
	OP_CONSOLE = 37,        /* a0 = fd of the connected console socket. Open /dev/pts/ptmx in the container's
	                           devpts, unlock, open the peer (TIOCGPTPEER), bind-mount it on /dev/console (created
	                           as a file if missing), send ONE message with payload "/dev/ptmx" and the master fd
	                           (SCM_RIGHTS), close the socket and master, setsid, TIOCSCTTY, dup the peer to 0,1,2.
	                           a1 = rows, a2 = cols (0 = leave). a3 = 1: no /dev/console bind (exec: the pty of an
	                           exec'd process must not replace the container's console); the root fd must be open
	                           (OP_OPEN_ROOT "/" after joining the container's mount namespace). */

	/* --- the process (joined for exec, too) --- */
	OP_SETRLIMIT = 40,      /* a0 = RLIMIT_*, a1 = soft, a2 = hard (as unsigned 64-bit; -1 = RLIM_INFINITY) */
	OP_PERSONALITY = 41,    /* a0 = persona */
	OP_SCHEDULER = 42,      /* sched_setattr(0): a0 = policy, a1 = nice, a2 = priority, a3 = flags,
	                           s0 = "runtime deadline period" as three decimal u64 (NULL = 0 0 0) */
	OP_IOPRIO = 43,         /* ioprio_set(IOPRIO_WHO_PROCESS, 0, a0) with a0 already IOPRIO_PRIO_VALUE(class, data) */
	OP_CPU_AFFINITY = 44,   /* s0 = cpu list "0-3,7": sched_setaffinity(0) */
	OP_NEW_KEYRING = 45,    /* keyctl(KEYCTL_JOIN_SESSION_KEYRING, s0 or NULL) */
	OP_CAP_BOUNDING = 46,   /* drop every bounding-set capability not in the mask a0 (bits = capability numbers) */
	OP_SETGROUPS = 47,      /* a0 = count, s0 = strv of decimal gids */
	OP_SETGID = 48,         /* setresgid(a0, a0, a0) */
	OP_SETUID = 49,         /* prctl(PR_SET_KEEPCAPS, 1); setresuid(a0, a0, a0); prctl(PR_SET_KEEPCAPS, 0) */
	OP_CAPSET = 50,         /* capset: a0 = effective, a1 = permitted, a2 = inheritable masks; then raise ambient a3
	                           (after PR_CAP_AMBIENT_CLEAR_ALL) */
	OP_NO_NEW_PRIVS = 51,   /* prctl(PR_SET_NO_NEW_PRIVS, 1) */
	OP_SECCOMP = 52,        /* s0 = BPF program (a0 = byte length; may contain NULs), a1 = SECCOMP_FILTER_FLAG_*,
	                           a2 = 1 to send the returned listener fd in a MSG_SYNC message (SCM_RIGHTS) and wait
	                           for MSG_ACK */
	OP_UMASK = 53,          /* umask(a0) */
	OP_CHDIR = 54,          /* s0 = cwd: chdir, then verify the cwd is reachable from the root (getcwd must not
	                           start with "(unreachable)"), against CVE-2024-21626. a0 = 1: a first attempt as root
	                           (before any seccomp filter, which may deny getcwd): EACCES/EPERM is remembered, not
	                           an error; a0 = 2: again, with the process's ids, only if that first attempt failed. */
	OP_FIND_EXEC = 55,      /* s0 = args[0], s1 = PATH value from the process env (NULL = default PATH):
	                           resolve like execvp inside the container and keep the result for OP_EXEC.
	                           Not found: MSG_ERROR(err = ENOENT, detail = "executable file not found in $PATH: X")
	                           (or "no such file or directory: X" for a path with a '/'); not executable: EACCES. */
	OP_SIGNAL_CREATED = 56, /* send MSG_CREATED(pid = getpid() as the caller sees it: the init pid sent earlier) */
	OP_WAIT_START = 57,     /* (the init resets every signal disposition and the mask, then installs handlers that
	                           _exit(128+sig) for the catchable terminating signals when it starts, since a pid-1
	                           init ignores signals it has no handler for; execve resets them) poll() the kept fifo
	                           fd for POLLIN (a fifo that never had a writer reports no POLLHUP), read one byte;
	                           anything but "0" means _exit(1). Close it. `start` opens the fifo O_WRONLY|O_NONBLOCK,
	                           writes "0" and removes the fifo. Only poll, read and close: a seccomp filter may be
	                           loaded already. */
	OP_CLOSE_FDS = 58,      /* keep fds 0..2 and 3..3+a0-1; mark every other fd close-on-exec (close_range, else
	                           fcntl one by one up to RLIMIT_NOFILE). Before any seccomp filter. */
	OP_EXEC = 59,           /* s0 = strv args (a0 = count), s1 = strv env (a1 = count). execve the path from
	                           OP_FIND_EXEC (or args[0] if none). Before: PR_SET_DUMPABLE stays 0 until here. */
	OP_SYNC = 60,           /* send MSG_SYNC(op), wait for MSG_ACK (fds that come with it are kept like
	                           OP_SYNC_USERMAP's). a0 tells the runtime what to do, the init ignores it: 0 nothing,
	                           SYNC_MOUNT_TREES the idmapped mount trees (a container without a user namespace of
	                           its own; with one they come with OP_SYNC_USERMAP's ACK) */
	OP_SYNC_HOOKS = 61,     /* send MSG_HOOKS(pid), wait for MSG_ACK */
	OP_SETSID = 62,         /* setsid() */
	OP_JOIN_CGROUP = 64,    /* s0 = a cgroup.procs path on the host: write "0" (this process) into it */
	OP_REPORT = 65,         /* how to report a failure once `create` has returned (after OP_SIGNAL_CREATED nobody
	                           reads the sync socket): s0 = the --log file (NULL = none), opened O_APPEND now (stage 0,
	                           the caller's mount namespace), a0 = 1 for JSON lines (else logrus text);
	                           s1 = strv of a2 texts "FIELD (WHAT)" for the ops a1, a1+1, ... The init then writes
	                           one line "ocipy: exec failed: FIELD (WHAT): DETAIL: REASON" on its stderr (the
	                           container's, where the caller reads it) and one error line in the log. */
	OP_LOOPBACK_UP = 66,    /* bring "lo" up (SIOCSIFFLAGS IFF_UP) in the network namespace the init is in */
	OP_MEMPOLICY = 67,      /* set_mempolicy(a0 = MPOL_* mode | MPOL_F_* flags, nodes of s0): s0 = node list "0-3,7"
	                           (NULL or "" = no nodes: a NULL mask), nodes 0-1023 */

	OP__COUNT               /* one past the last code: keep it last (the size of main.c's handler table) */
};

/* OP_SYNC a0 */
#define SYNC_MOUNT_TREES 1

/* OP_MOUNT a4 bits */
#define MNTF_MKDIR 0x1      /* create the destination as a directory (with parents) if missing */
#define MNTF_MKFILE 0x2     /* create the destination as an empty file (parents as directories) if missing */
#define MNTF_PROC 0x4       /* a procfs/sysfs mount: the destination must be a real directory, not a symlink */
#define MNTF_IDMAP 0x8      /* an idmapped bind: the runtime (host root) clones s0 and idmaps it with the container's
                               user namespace, or a user namespace made for the mount's own uidMappings/gidMappings,
                               and sends the detached tree with the MSG_USERMAP ACK, or OP_SYNC SYNC_MOUNT_TREES's
                               (SCM_RIGHTS, one fd per idmapped mount in plan order); the init move_mounts it onto
                               s1 */
#define MNTF_IDMAP_REC 0x40 /* with MNTF_IDMAP: apply the idmapping recursively (option "ridmap": open_tree with
                               AT_RECURSIVE and mount_setattr(AT_RECURSIVE)); without it only the top mount */

#define MNTF_TMPFS_MODE 0x80 /* a tmpfs without mode=: when the destination exists, its mode goes first in the data
                                ("mode=0755,..."), so the mount point keeps the mode it had (as runc) */
#define MNTF_COPYUP 0x100   /* tmpcopyup: what the existing destination directory held is copied into the new tmpfs
                               (owners, modes, times) before any remount */
#define MNTF_TREE 0x200     /* a bind in a new user namespace: like MNTF_IDMAP, the runtime (host root) sends a detached
                               clone of the source, not idmapped, so the source is resolved with the runtime's
                               credentials (a root-only directory on the host stays reachable) */
/* clang-format on */

#endif
