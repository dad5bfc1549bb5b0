/* ocipy-init main: reading and validating the plan, the dispatch loop, the sync socket.
 *
 * Usage: ocipy-init <sync-fd> <plan-fd>
 * The plan is read whole into an anonymous mapping (no malloc), validated (magic, sizes, every string offset inside
 * the NUL-terminated string table, string vectors and blobs within bounds), and the plan fd is closed. Then every op
 * runs in order; the first failure is sent once as MSG_ERROR(op index, errno, detail) and the process exits 1.
 */
#include "init.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <unistd.h>

_Static_assert(sizeof(struct plan_header) == 16, "plan_header size");
_Static_assert(sizeof(struct plan_op) == 64, "plan_op size");
_Static_assert(sizeof(struct sync_msg) == 256, "sync_msg size");

void die_quietly(int status)
{
	_exit(status);
}

size_t str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (size) {
		size_t k = n < size - 1 ? n : size - 1;
		memcpy(dst, src, k);
		dst[k] = '\0';
	}
	return n;
}

char *fmt_uint(char *out, unsigned long v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*out++ = tmp[--n];
	*out = '\0';
	return out;
}

void fd_path(char out[32], int fd)
{
	memcpy(out, "/proc/self/fd/", 14);
	fmt_uint(out + 14, (unsigned long)fd);
}

int parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

const char *op_str(const struct ctx *c, const struct plan_op *op, int i)
{
	uint32_t off = op->s[i];
	if (off == PLAN_NOSTR)
		return NULL;
	return c->strtab + off;
}

int fail(struct ctx *c, int err, const char *detail)
{
	c->detail = detail;
	return err ? err : EIO;
}

int fail2(struct ctx *c, int err, const char *prefix, const char *detail)
{
	size_t n = str_copy(c->detail_buf, sizeof c->detail_buf, prefix);
	if (n < sizeof c->detail_buf && detail)
		str_copy(c->detail_buf + n, sizeof c->detail_buf - n, detail);
	c->detail = c->detail_buf;
	return err ? err : EIO;
}

static void fill_msg(struct sync_msg *m, uint32_t type, int32_t op, int32_t err, int32_t pid, const char *detail)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	m->op = op;
	m->err = err;
	m->pid = pid;
	if (detail)
		str_copy(m->detail, sizeof m->detail, detail);
}

void sync_send(struct ctx *c, uint32_t type, int32_t op, int32_t err, int32_t pid, const char *detail)
{
	struct sync_msg m;
	fill_msg(&m, type, op, err, pid, detail);
	while (send(c->sync_fd, &m, sizeof m, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* One message of `len` bytes with one fd attached (SCM_RIGHTS): the sync socket's MSG_SYNC with the seccomp
 * listener, the console socket's pty master. 0, or the errno of sendmsg. */
int send_fd(int sock, const void *data, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)(uintptr_t)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	struct cmsghdr *cm;

	memset(&u, 0, sizeof u);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0) {
		if (errno != EINTR)
			return errno;
	}
	return 0;
}

int sync_send_fd(struct ctx *c, uint32_t type, int32_t op, int fd)
{
	struct sync_msg m;

	fill_msg(&m, type, op, 0, c->host_pid, NULL);
	return send_fd(c->sync_fd, &m, sizeof m, fd);
}

int sync_wait_ack(struct ctx *c)
{
	struct sync_msg m;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 32)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
	struct cmsghdr *cm;
	ssize_t n;
	do {
		n = recvmsg(c->sync_fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	/* EOF, a short message, anything but a clean ACK: the caller gave up; leave without a word. */
	if (n != (ssize_t)sizeof m || m.type != MSG_ACK || m.err != 0 || (msg.msg_flags & MSG_CTRUNC))
		die_quietly(1);
	/* fds that came along (idmapped mount trees) are kept for the ops that use them */
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t i, k;
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
			if (c->n_idmap < (int)(sizeof c->idmap_fds / sizeof c->idmap_fds[0]))
				c->idmap_fds[c->n_idmap++] = fd;
			else
				close(fd);
		}
	}
	return 0;
}

/* Read the whole plan into an anonymous mapping; returns its size or -1. */
static char *read_plan(int fd, size_t *len_out)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return NULL;
	for (;;) {
		ssize_t n;
		if (len == cap) {
			char *nb;
			if (cap >= (size_t)1 << 30) {
				errno = EFBIG;
				return NULL;
			}
			nb = mremap(buf, cap, cap * 2, MREMAP_MAYMOVE);
			if (nb == MAP_FAILED)
				return NULL;
			buf = nb;
			cap *= 2;
		}
		n = pread(fd, buf + len, cap - len, (off_t)len);
		if (n < 0 && errno == ESPIPE)
			n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*len_out = len;
	return buf;
}

/* Walk `count` strings starting at off; 0 if they all lie inside the table. */
static int check_strv(const struct ctx *c, uint32_t off, int64_t count)
{
	if (count < 0 || count > (int64_t)c->strtab_len)
		return -1;
	if (count == 0)
		return 0;
	if (off == PLAN_NOSTR || off >= c->strtab_len)
		return -1;
	while (count--) {
		const char *end;
		if (off >= c->strtab_len)
			return -1;
		end = memchr(c->strtab + off, '\0', c->strtab_len - off);
		if (!end)
			return -1;
		off = (uint32_t)(end - c->strtab) + 1;
	}
	return 0;
}

static int validate(struct ctx *c, const char *buf, size_t len, const char **why)
{
	const struct plan_header *h = (const void *)buf;
	uint64_t need;
	uint32_t i;

	*why = "plan: bad magic";
	if (len < sizeof *h || memcmp(h->magic, PLAN_MAGIC, 8) != 0)
		return -1;
	need = sizeof *h + (uint64_t)h->n_ops * sizeof(struct plan_op) + h->strtab_len;
	*why = "plan: size does not match its header";
	if (need != len)
		return -1;
	c->ops = (const void *)(buf + sizeof *h);
	c->n_ops = h->n_ops;
	c->strtab = buf + sizeof *h + (size_t)h->n_ops * sizeof(struct plan_op);
	c->strtab_len = h->strtab_len;
	*why = "plan: string table not NUL-terminated";
	if (c->strtab_len && c->strtab[c->strtab_len - 1] != '\0')
		return -1;
	for (i = 0; i < c->n_ops; i++) {
		const struct plan_op *op = &c->ops[i];
		int k;
		*why = "plan: string offset out of range";
		/* The table ends with a NUL, so an offset inside it is a terminated string. */
		for (k = 0; k < 4; k++)
			if (op->s[k] != PLAN_NOSTR && op->s[k] >= c->strtab_len)
				return -1;
		*why = "plan: string vector out of range";
		switch (op->code) {
		case OP_EXEC:
			if (op->a[0] < 1 || check_strv(c, op->s[0], op->a[0]) || check_strv(c, op->s[1], op->a[1]))
				return -1;
			break;
		case OP_SETGROUPS:
			if (check_strv(c, op->s[0], op->a[0]))
				return -1;
			break;
		case OP_SECCOMP:
			*why = "plan: seccomp program out of range";
			if (op->s[0] == PLAN_NOSTR || op->a[0] <= 0 || op->a[0] % 8 != 0 ||
			    (uint64_t)op->s[0] + (uint64_t)op->a[0] > c->strtab_len)
				return -1;
			break;
		case OP_CLOSE_FDS:
			*why = "plan: bad fd count";
			if (op->a[0] < 0 || op->a[0] > INT32_MAX - 3)
				return -1;
			break;
		default: break;
		}
	}
	return 0;
}

typedef int (*op_fn)(struct ctx *, const struct plan_op *);

static int op_sync(struct ctx *c, const struct plan_op *op)
{
	(void)op;
	sync_send(c, MSG_SYNC, c->cur, 0, c->host_pid, NULL);
	return sync_wait_ack(c);
}

static int op_sync_hooks(struct ctx *c, const struct plan_op *op)
{
	(void)op;
	sync_send(c, MSG_HOOKS, c->cur, 0, c->host_pid, NULL);
	return sync_wait_ack(c);
}

static int op_signal_created(struct ctx *c, const struct plan_op *op)
{
	(void)op;
	sync_send(c, MSG_CREATED, c->cur, 0, c->host_pid, NULL);
	c->created = 1;
	return 0;
}

/* The op dispatch: one handler per op code, indexed by the code (enum plan_code). The table is as long as the enum
 * (asserted below) and tests/unit/test_planfmt.py checks that every code has its row; a code without one is an
 * unknown op. */
static const op_fn handlers[] = {
	[OP_SETNS] = op_setns,
	[OP_UNSHARE] = op_unshare,
	[OP_SYNC_USERMAP] = op_sync_usermap,
	[OP_TIMENS_OFFSETS] = op_timens_offsets,
	[OP_CLONE] = op_clone,
	[OP_MOUNT_PROPAGATION] = op_mount_propagation,
	[OP_BIND_ROOT] = op_bind_root,
	[OP_OPEN_ROOT] = op_open_root,
	[OP_MOUNT] = op_mount,
	[OP_MKNOD] = op_mknod,
	[OP_BIND_DEV] = op_bind_dev,
	[OP_SYMLINK] = op_symlink,
	[OP_MKDIR] = op_mkdir,
	[OP_OPEN_DEVNULL] = op_open_devnull,
	[OP_OPEN_FIFO] = op_open_fifo,
	[OP_PIVOT_ROOT] = op_pivot_root,
	[OP_CHROOT] = op_chroot,
	[OP_MASK_PATH] = op_mask_path,
	[OP_READONLY_PATH] = op_readonly_path,
	[OP_SYSCTL] = op_sysctl,
	[OP_REMOUNT_ROOT_RO] = op_remount_root_ro,
	[OP_SETHOSTNAME] = op_sethostname,
	[OP_SETDOMAINNAME] = op_setdomainname,
	[OP_WRITE_PROC] = op_write_proc,
	[OP_CONSOLE] = op_console,
	[OP_SETRLIMIT] = op_setrlimit,
	[OP_PERSONALITY] = op_personality,
	[OP_SCHEDULER] = op_scheduler,
	[OP_IOPRIO] = op_ioprio,
	[OP_CPU_AFFINITY] = op_cpu_affinity,
	[OP_NEW_KEYRING] = op_new_keyring,
	[OP_CAP_BOUNDING] = op_cap_bounding,
	[OP_SETGROUPS] = op_setgroups,
	[OP_SETGID] = op_setgid,
	[OP_SETUID] = op_setuid,
	[OP_CAPSET] = op_capset,
	[OP_NO_NEW_PRIVS] = op_no_new_privs,
	[OP_SECCOMP] = op_seccomp,
	[OP_UMASK] = op_umask,
	[OP_CHDIR] = op_chdir,
	[OP_FIND_EXEC] = op_find_exec,
	[OP_SIGNAL_CREATED] = op_signal_created,
	[OP_WAIT_START] = op_wait_start,
	[OP_CLOSE_FDS] = op_close_fds,
	[OP_EXEC] = op_exec,
	[OP_SYNC] = op_sync,
	[OP_SYNC_HOOKS] = op_sync_hooks,
	[OP_SETSID] = op_setsid,
	[OP_JOIN_CGROUP] = op_join_cgroup,
	[OP_REPORT] = op_report,
	[OP_LOOPBACK_UP] = op_loopback_up,
	[OP_MEMPOLICY] = op_mempolicy,
};
_Static_assert(sizeof handlers / sizeof handlers[0] == OP__COUNT, "a handler row for the last op code in plan.h");

static op_fn lookup(uint32_t code)
{
	return code < OP__COUNT ? handlers[code] : NULL;
}

static int parse_fd(const char *s)
{
	uint64_t v;
	if (parse_u64(&s, &v) || *s || v > INT32_MAX)
		return -1;
	return (int)v;
}

int main(int argc, char **argv)
{
	struct ctx c;
	const char *why;
	char *buf;
	size_t len;
	int plan_fd;
	uint32_t i;

	/* Until the final execve nothing of this process may be inspected or written through /proc (CVE-2019-5736). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	memset(&c, 0, sizeof c);
	c.root_fd = c.devnull_fd = c.fifo_fd = c.log_fd = -1;
	c.cur = -1;
	if (argc != 3 && !(argc == 4 && strcmp(argv[3], "trace") == 0))
		die_quietly(2);
	c.trace = argc == 4;
	c.sync_fd = parse_fd(argv[1]);
	plan_fd = parse_fd(argv[2]);
	if (c.sync_fd < 0 || plan_fd < 0 || fcntl(c.sync_fd, F_SETFD, FD_CLOEXEC) < 0)
		die_quietly(2);
	c.host_pid = getpid();
	/* a pid-namespace init ignores signals without handlers: be killable by SIGTERM & co. from the start. Handled
	 * signals go back to their defaults at execve; ignored ones and the mask would not, so they are reset now,
	 * long before any seccomp filter could forbid rt_sigaction. */
	reset_signals();
	set_handlers(die_on_signal);

	buf = read_plan(plan_fd, &len);
	if (!buf) {
		sync_send(&c, MSG_ERROR, -1, errno ? errno : EIO, 0, "plan");
		die_quietly(1);
	}
	close(plan_fd);
	if (validate(&c, buf, len, &why) != 0) {
		sync_send(&c, MSG_ERROR, -1, EINVAL, 0, why);
		die_quietly(1);
	}
	mprotect(buf, len, PROT_READ);

	for (i = 0; i < c.n_ops; i++) {
		const struct plan_op *op = &c.ops[i];
		op_fn fn = lookup(op->code);
		int err;

		c.cur = (int)i;
		c.detail = NULL;
		if (op->code == OP_SECCOMP)
			c.trace = 0; /* the filter may forbid sending (or kill on it) */
		if (!fn)
			err = fail(&c, EINVAL, "unknown operation");
		else
			err = fn(&c, op);
		if (err) {
			if (c.created)
				late_report(&c, (int)i, err); /* nobody reads the sync socket any more */
			else
				sync_send(&c, MSG_ERROR, (int32_t)i, err, 0, c.detail ? c.detail : "");
			die_quietly(1);
		}
		if (c.trace && !c.created)
			sync_send(&c, MSG_TRACE, (int32_t)i, 0, 0, NULL);
	}
	/* A plan without OP_EXEC ends here: success. */
	return 0;
}
