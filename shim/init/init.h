/* ocipy-init: shared state and helpers of the child program.
 *
 * The init executes a plan (shim/plan.h) op by op. Every op handler returns 0 or a positive errno and, on failure,
 * points c->detail at the object that failed (a path, a name); main.c reports it once as MSG_ERROR and exits 1.
 * Nothing here allocates with malloc: buffers live on the stack or in the mmap'ed plan.
 */
#ifndef OCIPY_INIT_H
#define OCIPY_INIT_H

#define _GNU_SOURCE
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plan.h"

struct ctx {
	const struct plan_op *ops;
	const char *strtab;
	uint32_t n_ops;
	uint32_t strtab_len;
	int sync_fd;
	int root_fd;        /* OP_BIND_ROOT/OP_OPEN_ROOT, "/" after the root switch; -1 before */
	int devnull_fd;     /* OP_OPEN_DEVNULL: a verified char 1:3, -1 before */
	int fifo_fd;        /* OP_OPEN_FIFO, -1 before */
	pid_t host_pid;     /* this process as the caller sees it (MSG_PID value after OP_CLONE) */
	int cur;            /* index of the op being executed */
	const char *detail; /* the object a failure is about */
	char detail_buf[240];
	int idmap_fds[32]; /* idmapped mount trees the runtime sent with an ACK, used in order by OP_MOUNT */
	int n_idmap, idmap_next;
	int have_exec;   /* OP_FIND_EXEC ran: exec_path holds the program */
	int cwd_pending; /* OP_CHDIR a0=1 could not enter the cwd as root: OP_CHDIR a0=2 tries again */
	int created;     /* OP_SIGNAL_CREATED ran: `create` has returned, nobody reads the sync socket */
	int trace;       /* argv[3] == "trace": MSG_TRACE after each op (until seccomp or created) */
	int log_fd;      /* OP_REPORT: the --log file, -1 if none */
	int log_json;
	const struct plan_op *report; /* OP_REPORT, NULL before */
	char exec_path[PATH_MAX];
};

/* The string s[i] of op, or NULL when absent. Offsets were validated when the plan was read. */
const char *op_str(const struct ctx *c, const struct plan_op *op, int i);

/* Set the failure detail to a string (kept by pointer) or to a formatted copy of two parts. */
int fail(struct ctx *c, int err, const char *detail);
int fail2(struct ctx *c, int err, const char *prefix, const char *detail);

/* sync socket (main.c) */
void sync_send(struct ctx *c, uint32_t type, int32_t op, int32_t err, int32_t pid, const char *detail);
int send_fd(int sock, const void *data, size_t len, int fd);
int sync_send_fd(struct ctx *c, uint32_t type, int32_t op, int fd);
int sync_wait_ack(struct ctx *c); /* 0 on MSG_ACK with err 0; exits quietly otherwise */
__attribute__((noreturn)) void die_quietly(int status);

/* small string helpers (main.c) */
size_t str_copy(char *dst, size_t size, const char *src); /* strlcpy */
char *fmt_uint(char *out, unsigned long v);               /* writes decimal, returns the end (NUL written) */
void fd_path(char out[32], int fd);                       /* "/proc/self/fd/N" */
int parse_u64(const char **p, uint64_t *out);             /* decimal, advances *p */

/* ns.c */
int op_setns(struct ctx *c, const struct plan_op *op);
int op_unshare(struct ctx *c, const struct plan_op *op);
int op_sync_usermap(struct ctx *c, const struct plan_op *op);
int op_timens_offsets(struct ctx *c, const struct plan_op *op);
int op_clone(struct ctx *c, const struct plan_op *op);

/* path.c: "path in root" */
#define MK_NONE 0
#define MK_DIR 1
#define MK_FILE 2
/* Resolve path beneath c->root_fd (RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS|extra_resolve) as an O_PATH fd. When
 * missing and mk != MK_NONE, create the missing components (directories, the last one per mk with mode). With
 * nofollow the last component is not followed (a symlink there is returned as itself). */
int root_open(struct ctx *c, const char *path, int mk, mode_t mode, int nofollow, uint64_t extra_resolve, int *out);
/* The parent directory of path (created when mkparents) as an O_PATH fd plus the last component in name. */
int root_parent(struct ctx *c, const char *path, int mkparents, int *dirfd, char name[NAME_MAX + 1]);

/* mount.c */
int op_mount_propagation(struct ctx *c, const struct plan_op *op);
int op_bind_root(struct ctx *c, const struct plan_op *op);
int op_open_root(struct ctx *c, const struct plan_op *op);
int op_mount(struct ctx *c, const struct plan_op *op);
int op_bind_dev(struct ctx *c, const struct plan_op *op);
int op_pivot_root(struct ctx *c, const struct plan_op *op);
int op_chroot(struct ctx *c, const struct plan_op *op);
int op_mask_path(struct ctx *c, const struct plan_op *op);
int op_readonly_path(struct ctx *c, const struct plan_op *op);
int op_remount_root_ro(struct ctx *c, const struct plan_op *op);
int attach_clone_of(int src_fd, int target_fd, int recursive); /* open_tree(CLONE) + move_mount; 0 or errno */

/* fs.c */
int op_mknod(struct ctx *c, const struct plan_op *op);
int op_symlink(struct ctx *c, const struct plan_op *op);
int op_mkdir(struct ctx *c, const struct plan_op *op);
int op_open_devnull(struct ctx *c, const struct plan_op *op);
int op_sysctl(struct ctx *c, const struct plan_op *op);
int op_write_proc(struct ctx *c, const struct plan_op *op);
int op_join_cgroup(struct ctx *c, const struct plan_op *op);
int write_all(int fd, const char *buf, size_t len); /* 0 or errno */

/* proc.c */
int op_setrlimit(struct ctx *c, const struct plan_op *op);
int op_personality(struct ctx *c, const struct plan_op *op);
int op_scheduler(struct ctx *c, const struct plan_op *op);
int op_ioprio(struct ctx *c, const struct plan_op *op);
int op_cpu_affinity(struct ctx *c, const struct plan_op *op);
int op_new_keyring(struct ctx *c, const struct plan_op *op);
int op_cap_bounding(struct ctx *c, const struct plan_op *op);
int op_setgroups(struct ctx *c, const struct plan_op *op);
int op_setgid(struct ctx *c, const struct plan_op *op);
int op_setuid(struct ctx *c, const struct plan_op *op);
int op_capset(struct ctx *c, const struct plan_op *op);
int op_no_new_privs(struct ctx *c, const struct plan_op *op);
int op_seccomp(struct ctx *c, const struct plan_op *op);
int op_umask(struct ctx *c, const struct plan_op *op);
int op_chdir(struct ctx *c, const struct plan_op *op);
int op_find_exec(struct ctx *c, const struct plan_op *op);
int op_close_fds(struct ctx *c, const struct plan_op *op);
int op_exec(struct ctx *c, const struct plan_op *op);
int op_setsid(struct ctx *c, const struct plan_op *op);
int op_sethostname(struct ctx *c, const struct plan_op *op);
int op_setdomainname(struct ctx *c, const struct plan_op *op);

/* report.c: a failure after `create` returned, on stderr and in the log */
int op_report(struct ctx *c, const struct plan_op *op);
void late_report(struct ctx *c, int index, int err);

/* copyup.c: copy what the directory olddir holds into newroot (owners, modes, times); 0 or errno */
int copy_up(int olddir, int newroot);

/* numa.c */
#define MEMPOLICY_MAX_NODES 1024 /* the node numbers a memoryPolicy may name (as runc: 0-1023) */
/* "0-3,7" into mask (bits bits, cleared first); a number >= bits, a bad range or syntax: EINVAL. NULL: empty. */
int parse_id_list(const char *s, unsigned long *mask, unsigned bits);
int op_mempolicy(struct ctx *c, const struct plan_op *op);

/* net.c */
int op_loopback_up(struct ctx *c, const struct plan_op *op);

/* console.c */
int op_console(struct ctx *c, const struct plan_op *op);

/* wait.c */
int op_open_fifo(struct ctx *c, const struct plan_op *op);
int op_wait_start(struct ctx *c, const struct plan_op *op);
void die_on_signal(int sig);
void set_handlers(void (*h)(int)); /* every catchable terminating signal */
void reset_signals(void);          /* every disposition SIG_DFL, nothing blocked */

#endif
