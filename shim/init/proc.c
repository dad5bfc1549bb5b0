/* ocipy-init the process: limits, scheduling, credentials, capabilities, seccomp, working directory, finding the
 * executable, closing fds and the final execve. */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int op_setrlimit(struct ctx *c, const struct plan_op *op)
{
	struct rlimit64 {
		uint64_t cur, max;
	} rl = {(uint64_t)op->a[1], (uint64_t)op->a[2]};
	if (syscall(SYS_prlimit64, 0, (int)op->a[0], &rl, NULL) < 0)
		return fail(c, errno, "setrlimit");
	return 0;
}

int op_personality(struct ctx *c, const struct plan_op *op)
{
	if (personality((unsigned long)op->a[0]) < 0)
		return fail(c, errno, "personality");
	return 0;
}

int op_scheduler(struct ctx *c, const struct plan_op *op)
{
	struct {
		uint32_t size, policy;
		uint64_t flags;
		int32_t nice;
		uint32_t priority;
		uint64_t runtime, deadline, period;
	} attr;
	const char *s = op_str(c, op, 0);

	memset(&attr, 0, sizeof attr);
	attr.size = sizeof attr; /* SCHED_ATTR_SIZE_VER0 = 48 */
	attr.policy = (uint32_t)op->a[0];
	attr.nice = (int32_t)op->a[1];
	attr.priority = (uint32_t)op->a[2];
	attr.flags = (uint64_t)op->a[3];
	if (s) {
		uint64_t *v[3] = {&attr.runtime, &attr.deadline, &attr.period};
		int i;
		for (i = 0; i < 3; i++) {
			while (*s == ' ')
				s++;
			if (parse_u64(&s, v[i]))
				return fail(c, EINVAL, "scheduler: bad runtime/deadline/period");
		}
	}
	if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0)
		return fail(c, errno, "sched_setattr");
	return 0;
}

int op_ioprio(struct ctx *c, const struct plan_op *op)
{
	if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (int)op->a[0]) < 0)
		return fail(c, errno, "ioprio_set");
	return 0;
}

int op_cpu_affinity(struct ctx *c, const struct plan_op *op)
{
	unsigned long mask[64]; /* 4096 cpus */
	const char *s = op_str(c, op, 0);

	if (!s)
		return fail(c, EINVAL, "cpu affinity: no list");
	if (parse_id_list(s, mask, sizeof mask * 8))
		return fail(c, EINVAL, s);
	if (syscall(SYS_sched_setaffinity, 0, sizeof mask, mask) < 0)
		return fail(c, errno, s);
	return 0;
}

int op_new_keyring(struct ctx *c, const struct plan_op *op)
{
	const char *name = op_str(c, op, 0);
	if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name) < 0 && errno != ENOSYS)
		return fail(c, errno, name ? name : "session keyring");
	return 0;
}

int op_cap_bounding(struct ctx *c, const struct plan_op *op)
{
	uint64_t keep = (uint64_t)op->a[0];
	int cap;
	for (cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0)
			break; /* past the last capability this kernel knows */
		if (r == 1 && !(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return fail(c, errno, "capability bounding set");
	}
	return 0;
}

int op_setgroups(struct ctx *c, const struct plan_op *op)
{
	static gid_t gids[65536];
	int64_t n = op->a[0], i;
	const char *s = op_str(c, op, 0);

	if (n < 0 || n > 65536)
		return fail(c, EINVAL, "setgroups: too many groups");
	for (i = 0; i < n; i++) {
		uint64_t v;
		const char *p = s;
		if (parse_u64(&p, &v) || *p || v > UINT32_MAX)
			return fail(c, EINVAL, s);
		gids[i] = (gid_t)v;
		s = p + 1;
	}
	if (syscall(SYS_setgroups, (size_t)n, gids) < 0) {
		int e = errno;
		char buf[8] = "";
		int fd;

		/* A joined user namespace may have setgroups denied: clearing the groups is then impossible and moot
		 * (the namespace never had any beyond what its creator held), so only an empty list is let through. */
		if (e == EPERM && n == 0 && (fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC)) >= 0) {
			ssize_t r = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (r >= 4 && strncmp(buf, "deny", 4) == 0)
				return 0;
		}
		return fail(c, e, "setgroups");
	}
	return 0;
}

int op_setgid(struct ctx *c, const struct plan_op *op)
{
	gid_t g = (gid_t)op->a[0];
	if (syscall(SYS_setresgid, g, g, g) < 0)
		return fail(c, errno, "setgid");
	return 0;
}

int op_setuid(struct ctx *c, const struct plan_op *op)
{
	uid_t u = (uid_t)op->a[0];
	int e = 0;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return fail(c, errno, "keepcaps");
	if (syscall(SYS_setresuid, u, u, u) < 0)
		e = errno;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 && !e)
		e = errno;
	return e ? fail(c, e, "setuid") : 0;
}

int op_capset(struct ctx *c, const struct plan_op *op)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	uint64_t eff = (uint64_t)op->a[0], perm = (uint64_t)op->a[1], inh = (uint64_t)op->a[2];
	uint64_t amb = (uint64_t)op->a[3];
	int cap;

	data[0].effective = (uint32_t)eff;
	data[1].effective = (uint32_t)(eff >> 32);
	data[0].permitted = (uint32_t)perm;
	data[1].permitted = (uint32_t)(perm >> 32);
	data[0].inheritable = (uint32_t)inh;
	data[1].inheritable = (uint32_t)(inh >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		return fail(c, errno, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(c, errno, "clear ambient capabilities");
	for (cap = 0; cap < 64; cap++)
		if ((amb & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return fail(c, errno, "raise ambient capability");
	return 0;
}

int op_no_new_privs(struct ctx *c, const struct plan_op *op)
{
	(void)op;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(c, errno, "no_new_privs");
	return 0;
}

int op_seccomp(struct ctx *c, const struct plan_op *op)
{
	struct sock_fprog prog;
	long fd;

	prog.len = (unsigned short)(op->a[0] / 8);
	prog.filter = (struct sock_filter *)(uintptr_t)(c->strtab + op->s[0]);
	if (op->a[0] / 8 > 0xFFFF)
		return fail(c, EINVAL, "seccomp: program too long");
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)op->a[1], &prog);
	if (fd < 0)
		return fail(c, errno, "seccomp");
	if (op->a[2] && fd > 0) {
		int e = sync_send_fd(c, MSG_SYNC, c->cur, (int)fd);
		close((int)fd);
		if (e)
			return fail(c, e, "seccomp listener");
		sync_wait_ack(c);
	}
	return 0;
}

int op_umask(struct ctx *c, const struct plan_op *op)
{
	(void)c;
	umask((mode_t)op->a[0]);
	return 0;
}

int op_chdir(struct ctx *c, const struct plan_op *op)
{
	const char *dir = op_str(c, op, 0);
	char buf[PATH_MAX];
	long n;

	if (!dir)
		return fail(c, EINVAL, "chdir: no path");
	if (op->a[0] == 2 && !c->cwd_pending)
		return 0; /* the first attempt, as root, succeeded */
	if (chdir(dir) < 0) {
		if (op->a[0] == 1 && (errno == EACCES || errno == EPERM)) {
			c->cwd_pending = 1; /* as root it could not: again once the process has its own ids */
			return 0;
		}
		return fail(c, errno, dir);
	}
	c->cwd_pending = 0;
	/* CVE-2024-21626: a cwd outside the root (a leaked host fd) shows as "(unreachable)..." */
	n = syscall(SYS_getcwd, buf, sizeof buf);
	if (n < 0)
		return fail(c, errno, dir);
	if (buf[0] != '/')
		return fail2(c, EPERM, "working directory outside the container root: ", dir);
	return 0;
}

static int is_exec_file(const char *path, int *exists)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	*exists = 1;
	return S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

int op_find_exec(struct ctx *c, const struct plan_op *op)
{
	const char *name = op_str(c, op, 0), *path = op_str(c, op, 1);
	int exists = 0;

	if (!name || !*name)
		return fail(c, ENOENT, "executable file not found in $PATH: ");
	if (strchr(name, '/')) {
		if (is_exec_file(name, &exists))
			goto found_name;
		if (!exists)
			return fail2(c, ENOENT, "no such file or directory: ", name);
		return fail2(c, EACCES, "permission denied: ", name);
	}
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (;;) {
		const char *end = strchr(path, ':');
		size_t dl = end ? (size_t)(end - path) : strlen(path), nl = strlen(name);
		char cand[PATH_MAX];
		if (dl == 0) { /* an empty entry is the working directory */
			cand[0] = '.';
			dl = 1;
		} else if (dl < sizeof cand) {
			memcpy(cand, path, dl);
		}
		if (dl + 1 + nl < sizeof cand) {
			cand[dl] = '/';
			memcpy(cand + dl + 1, name, nl + 1);
			if (is_exec_file(cand, &exists)) {
				str_copy(c->exec_path, sizeof c->exec_path, cand);
				c->have_exec = 1;
				return 0;
			}
		}
		if (!end)
			break;
		path = end + 1;
	}
	if (exists)
		return fail2(c, EACCES, "permission denied: ", name);
	return fail2(c, ENOENT, "executable file not found in $PATH: ", name);
found_name:
	str_copy(c->exec_path, sizeof c->exec_path, name);
	c->have_exec = 1;
	return 0;
}

int op_close_fds(struct ctx *c, const struct plan_op *op)
{
	unsigned first = 3 + (unsigned)op->a[0];
	struct rlimit rl;
	unsigned fd, last;

	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	/* no close_range (an old kernel, a seccomp profile without it): every fd up to the limit, one by one */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return fail(c, errno, "close_range");
	last = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20) ? (1u << 20) : (unsigned)rl.rlim_cur;
	for (fd = first; fd < last; fd++) {
		int fl = fcntl((int)fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC) && fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC) < 0)
			return fail(c, errno, "mark fds close-on-exec");
	}
	return 0;
}

static char **strv_array(const char *s, int64_t n)
{
	size_t size = ((size_t)n + 1) * sizeof(char *);
	char **v = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int64_t i;
	if (v == MAP_FAILED)
		return NULL;
	for (i = 0; i < n; i++) {
		v[i] = (char *)(uintptr_t)s;
		s += strlen(s) + 1;
	}
	v[n] = NULL;
	return v;
}

int op_exec(struct ctx *c, const struct plan_op *op)
{
	char **argv = strv_array(op_str(c, op, 0), op->a[0]);
	char **envp = op->a[1] > 0 ? strv_array(op_str(c, op, 1), op->a[1]) : strv_array("", 0);
	const char *path;

	if (!argv || !envp)
		return fail(c, errno, "exec: out of memory");
	path = c->have_exec ? c->exec_path : argv[0];
	execve(path, argv, envp);
	return fail(c, errno, path);
}

int op_setsid(struct ctx *c, const struct plan_op *op)
{
	(void)op;
	if (setsid() < 0)
		return fail(c, errno, "setsid");
	return 0;
}

int op_sethostname(struct ctx *c, const struct plan_op *op)
{
	const char *name = op_str(c, op, 0);
	if (!name)
		return fail(c, EINVAL, "no hostname");
	if (sethostname(name, strlen(name)) < 0)
		return fail(c, errno, name);
	return 0;
}

int op_setdomainname(struct ctx *c, const struct plan_op *op)
{
	const char *name = op_str(c, op, 0);
	if (!name)
		return fail(c, EINVAL, "no domainname");
	if (setdomainname(name, strlen(name)) < 0)
		return fail(c, errno, name);
	return 0;
}
