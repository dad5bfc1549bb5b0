/* ocipy-init files in the container: device nodes, symlinks, directories, the verified /dev/null, and writes to
 * procfs (sysctl, /proc/self/...) and cgroupfs. Every procfs write checks the file is on procfs (fstatfs) first:
 * CVE-2019-16884/19921 (a fake /proc redirecting writes). */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int op_mknod(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 1);
	char name[NAME_MAX + 1];
	mode_t mode = (mode_t)op->a[0];
	dev_t dev = (dev_t)op->a[1];
	int dfd, e = 0;

	if (!path)
		return fail(c, EINVAL, "mknod: no path");
	e = root_parent(c, path, 1, &dfd, name);
	if (e)
		return e;
	if (mknodat(dfd, name, mode, dev) < 0) {
		struct stat st;

		e = errno;
		if (e == EEXIST && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (st.st_mode & S_IFMT) == (mode & S_IFMT) && (S_ISFIFO(st.st_mode) || st.st_rdev == dev)) {
			/* config-linux.md: an existing node that matches the device is fine; anything else is an error */
			e = 0;
		}
		if (e)
			goto out;
	}
	/* mknod applied the umask; the plan's mode is meant as given. The node was just made by us. */
	if (fchmodat(dfd, name, mode & 07777, 0) < 0) {
		e = errno;
		goto out;
	}
	if ((op->a[2] != -1 || op->a[3] != -1) &&
	    fchownat(dfd, name, (uid_t)op->a[2], (gid_t)op->a[3], AT_SYMLINK_NOFOLLOW) < 0)
		e = errno;
out:
	close(dfd);
	return e ? fail(c, e, path) : 0;
}

int op_symlink(struct ctx *c, const struct plan_op *op)
{
	const char *target = op_str(c, op, 0), *path = op_str(c, op, 1);
	char name[NAME_MAX + 1];
	int dfd, e;

	if (!target || !path)
		return fail(c, EINVAL, "symlink: missing argument");
	e = root_parent(c, path, 1, &dfd, name);
	if (e)
		return e;
	e = symlinkat(target, dfd, name) < 0 && errno != EEXIST ? errno : 0;
	close(dfd);
	return e ? fail(c, e, path) : 0;
}

int op_mkdir(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 1);
	struct stat st;
	int fd, e;

	if (!path)
		return fail(c, EINVAL, "mkdir: no path");
	e = root_open(c, path, MK_DIR, (mode_t)op->a[0], 0, 0, &fd);
	if (e)
		return e;
	e = fstat(fd, &st) < 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
	close(fd);
	return e ? fail(c, e, path) : 0;
}

/* The verified null device for OP_MASK_PATH (CVE-2025-31133). Kept as a detached clone of its mount
 * (open_tree(OPEN_TREE_CLONE)) rather than a plain O_PATH fd: the host /dev it lives on is detached by the root
 * switch, and a bind from a mount outside the namespace fails, while a private detached tree can be cloned again
 * for every masked file. A kernel without open_tree falls back to a plain O_PATH fd. */
int op_open_devnull(struct ctx *c, const struct plan_op *op)
{
	struct stat st;
	int fd;
	(void)op;
	fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		fd = open("/dev/null", O_PATH | O_CLOEXEC);
	if (fd < 0)
		return fail(c, errno, "/dev/null");
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
		close(fd);
		return fail(c, ENODEV, "/dev/null is not the null device (char 1:3)");
	}
	if (c->devnull_fd >= 0)
		close(c->devnull_fd);
	c->devnull_fd = fd;
	return 0;
}

/* Open a file under /proc for writing, refusing anything that is not procfs. rel is relative to /proc. */
static int open_procfs(struct ctx *c, const char *rel, uint64_t resolve, const char *what, int *out)
{
	struct open_how how;
	struct statfs sf;
	int proc, fd;

	proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (proc < 0)
		return fail(c, errno, "/proc");
	if (fstatfs(proc, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) {
		close(proc);
		return fail(c, EPERM, "/proc is not procfs");
	}
	memset(&how, 0, sizeof how);
	how.flags = O_WRONLY | O_CLOEXEC | O_NOCTTY;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | resolve;
	fd = (int)syscall(SYS_openat2, proc, rel, &how, sizeof how);
	close(proc);
	if (fd < 0)
		return fail(c, errno, what);
	if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) {
		close(fd);
		return fail2(c, EPERM, "not on procfs: ", what);
	}
	*out = fd;
	return 0;
}

int op_sysctl(struct ctx *c, const struct plan_op *op)
{
	const char *key = op_str(c, op, 0), *value = op_str(c, op, 1);
	char rel[PATH_MAX];
	size_t n;
	int fd, e;

	if (!key || !value)
		return fail(c, EINVAL, "sysctl: missing key or value");
	memcpy(rel, "sys/", 4);
	n = str_copy(rel + 4, sizeof rel - 4, key);
	if (n >= sizeof rel - 4)
		return fail(c, ENAMETOOLONG, key);
	/* "net.ipv4.ip_forward" or "net/ipv4/conf/eth0.100/forwarding": dots are separators only without slashes */
	if (!strchr(key, '/')) {
		char *p;
		for (p = rel + 4; *p; p++)
			if (*p == '.')
				*p = '/';
	}
	e = open_procfs(c, rel, RESOLVE_NO_SYMLINKS, key, &fd);
	if (e)
		return e;
	e = write_all(fd, value, strlen(value));
	close(fd);
	return e ? fail(c, e, key) : 0;
}

int op_write_proc(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 0), *text = op_str(c, op, 1);
	int fd, e;

	if (!path || !text)
		return fail(c, EINVAL, "write proc: missing argument");
	if (strncmp(path, "/proc/", 6) != 0)
		return fail(c, EINVAL, path);
	e = open_procfs(c, path + 6, 0, path, &fd);
	if (e == EACCES && strncmp(path, "/proc/self/", 11) == 0) {
		/* A non-dumpable process's own /proc files belong to the root of the user namespace it was executed in:
		 * for an unprivileged caller the host's root. Dumpable for this one open (runc writes oom_score_adj
		 * before it turns non-dumpable); what the kernel allows is then decided by the write itself. */
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			return fail(c, errno, "prctl PR_SET_DUMPABLE 1");
		e = open_procfs(c, path + 6, 0, path, &fd);
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
			if (!e)
				close(fd);
			return fail(c, errno, "prctl PR_SET_DUMPABLE 0");
		}
	}
	if (e)
		return e;
	e = write_all(fd, text, strlen(text));
	close(fd);
	return e ? fail(c, e, path) : 0;
}

int op_join_cgroup(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 0);
	int fd, e;

	if (!path)
		return fail(c, EINVAL, "cgroup: no path");
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(c, errno, path);
	e = write_all(fd, "0", 1);
	close(fd);
	return e ? fail(c, e, path) : 0;
}
