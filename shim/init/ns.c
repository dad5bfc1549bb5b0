/* ocipy-init namespaces: setns, unshare, the user-map rendezvous, time namespace offsets, and the clone that makes
 * the container init (stage 0 -> stage 1). */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int op_setns(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 0);
	int fd, r;
	if (!path)
		return fail(c, EINVAL, "setns: no path");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(c, errno, path);
	r = setns(fd, (int)op->a[0]);
	if (r < 0) {
		int e = errno;
		close(fd);
		return fail(c, e, path);
	}
	close(fd);
	return 0;
}

int op_unshare(struct ctx *c, const struct plan_op *op)
{
	if (unshare((int)op->a[0]) < 0)
		return fail(c, errno, "unshare");
	return 0;
}

int op_sync_usermap(struct ctx *c, const struct plan_op *op)
{
	(void)op;
	/* Dumpable for the rendezvous only (runc does the same): a non-dumpable process's /proc files belong to the
	 * host's root, so an unprivileged runtime could not write this process's uid_map, gid_map and setgroups. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		return fail(c, errno, "prctl PR_SET_DUMPABLE 1");
	sync_send(c, MSG_USERMAP, c->cur, 0, getpid(), NULL);
	sync_wait_ack(c);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail(c, errno, "prctl PR_SET_DUMPABLE 0");
	/* raw syscalls: glibc's wrappers would try to broadcast to other threads; there are none */
	if (syscall(SYS_setresgid, 0, 0, 0) < 0)
		return fail(c, errno, "setresgid 0");
	if (syscall(SYS_setresuid, 0, 0, 0) < 0)
		return fail(c, errno, "setresuid 0");
	return 0;
}

int op_timens_offsets(struct ctx *c, const struct plan_op *op)
{
	const char *text = op_str(c, op, 0);
	int fd, err;
	if (!text)
		return fail(c, EINVAL, "timens_offsets: no text");
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(c, errno, "/proc/self/timens_offsets");
	err = write_all(fd, text, strlen(text));
	close(fd);
	if (err)
		return fail(c, err, "/proc/self/timens_offsets");
	return 0;
}

/* The parent (stage 0) reports the child's pid and leaves; the child waits until that report is on the socket (so
 * the caller always sees MSG_PID before anything the child says) and learns its own pid as the caller sees it. */
int op_clone(struct ctx *c, const struct plan_op *op)
{
	int p[2];
	long pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return fail(c, errno, "pipe");
	pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD) | (unsigned long)op->a[0], NULL, NULL, NULL,
		      0UL);
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return fail(c, e, "clone");
	}
	if (pid > 0) {
		int32_t v = (int32_t)pid;
		close(p[0]);
		sync_send(c, MSG_PID, c->cur, 0, v, NULL);
		/* The caller records the pid (its recovery journal) before it lets the child go on: if the caller dies
		 * first, this process dies of its parent-death signal or reads EOF here, and the child, its pipe
		 * closed, leaves too (docs/contracts.md, "Recovery"). */
		sync_wait_ack(c);
		(void)!write(p[1], &v, sizeof v);
		_exit(0);
	}
	/* child */
	close(p[1]);
	{
		int32_t v = 0;
		ssize_t n;
		do {
			n = read(p[0], &v, sizeof v);
		} while (n < 0 && errno == EINTR);
		close(p[0]);
		if (n != (ssize_t)sizeof v)
			die_quietly(1); /* stage 0 died before reporting us */
		c->host_pid = v;
	}
	return 0;
}
