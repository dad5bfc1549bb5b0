/* ocipy-init mounts: propagation, the root bind, OP_MOUNT, device binds, the root switch, masked and read-only
 * paths.
 *
 * How a mount reaches its resolved destination: stage-1 mounts (OP_MOUNT, OP_BIND_DEV) use mount(2) with the
 * target "/proc/self/fd/N" (N = the O_PATH fd from "path in root"); before the root switch /proc is the host's and
 * always there. After the mount the destination is resolved again, so the remount, the propagation change and
 * mount_setattr act on the new mount and not on the one it covers. After the root switch (masks, read-only paths,
 * the console bind) only the new mount API is used: open_tree(OPEN_TREE_CLONE) / fsmount, then
 * move_mount(MOVE_MOUNT_T_EMPTY_PATH) onto the fd, so nothing depends on the container's /proc.
 */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef ST_RELATIME
#define ST_RELATIME 4096
#endif

static int sys_open_tree(int dfd, const char *path, unsigned flags)
{
	return (int)syscall(SYS_open_tree, dfd, path, flags);
}

static int sys_move_mount(int from, int to)
{
	return (int)syscall(SYS_move_mount, from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

static int sys_mount_setattr(int dfd, unsigned flags, uint64_t set, uint64_t clr)
{
	struct mount_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.attr_set = set;
	attr.attr_clr = clr;
	return (int)syscall(SYS_mount_setattr, dfd, "", flags | AT_EMPTY_PATH, &attr, sizeof attr);
}

int attach_clone_of(int src_fd, int target_fd, int recursive)
{
	int t = sys_open_tree(src_fd, "",
			      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
	int e = 0;
	if (t < 0)
		return errno;
	if (sys_move_mount(t, target_fd) < 0)
		e = errno;
	close(t);
	return e;
}

int op_mount_propagation(struct ctx *c, const struct plan_op *op)
{
	const char *target = op_str(c, op, 0);
	if (!target)
		target = "/";
	if (mount(NULL, target, NULL, (unsigned long)op->a[0], NULL) < 0)
		return fail(c, errno, target);
	return 0;
}

static int set_root(struct ctx *c, const char *path)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(c, errno, path);
	if (c->root_fd >= 0)
		close(c->root_fd);
	c->root_fd = fd;
	return 0;
}

int op_bind_root(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 0);
	if (!path)
		return fail(c, EINVAL, "no rootfs path");
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(c, errno, path);
	return set_root(c, path);
}

int op_open_root(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 0);
	if (!path)
		return fail(c, EINVAL, "no root path");
	return set_root(c, path);
}

#define ATIME_FLAGS (MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)
#define LOCKED_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

/* Remount the mount at fd with flags; in a user namespace flags the mount carries are locked (clearing one fails
 * with EPERM), so on EPERM try again with the flags the mount already has added. Unless flags name an atime mode
 * the current one is kept. */
static int remount_keep_locked(int fd, unsigned long flags, const char *data)
{
	char p[32];
	struct statfs st;
	unsigned long have, f;

	if (fstatfs(fd, &st) < 0)
		return errno;
	have = (unsigned long)st.f_flags &
	       (unsigned long)(ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_NOATIME | ST_NODIRATIME | ST_RELATIME);
	f = flags;
	if (!(f & ATIME_FLAGS))
		f |= have & ATIME_FLAGS;
	fd_path(p, fd);
	if (mount(NULL, p, NULL, f, data) == 0)
		return 0;
	if (errno != EPERM)
		return errno;
	f = (flags & ~(unsigned long)ATIME_FLAGS) | (have & (LOCKED_FLAGS | ATIME_FLAGS));
	if (mount(NULL, p, NULL, f, data) == 0)
		return 0;
	return errno;
}

int op_mount(struct ctx *c, const struct plan_op *op)
{
	const char *src = op_str(c, op, 0), *dst = op_str(c, op, 1), *fstype = op_str(c, op, 2);
	const char *data = op_str(c, op, 3);
	unsigned long flags = (unsigned long)op->a[0], reflags = (unsigned long)op->a[1];
	unsigned long prop = (unsigned long)op->a[2];
	uint64_t attrs = (uint64_t)op->a[3], mntf = (uint64_t)op->a[4];
	int mk = (mntf & MNTF_MKDIR) ? MK_DIR : (mntf & MNTF_MKFILE) ? MK_FILE : MK_NONE;
	int tfd = -1, sfd = -1, nfd = -1, olddir = -1, e;
	char tpath[32], spath[32];
	static char databuf[8192];
	struct stat st;

	if (!dst)
		return fail(c, EINVAL, "mount: no destination");
	if (mntf & (MNTF_TMPFS_MODE | MNTF_COPYUP)) {
		/* what is there before the mount: its mode (tmpfs without mode=), its contents (tmpcopyup) */
		int probe = -1;
		e = root_open(c, dst, MK_NONE, 0, 0, 0, &probe);
		if (e && e != ENOENT)
			return e;
		c->detail = NULL;
		if (!e) {
			if (fstat(probe, &st) == 0 && S_ISDIR(st.st_mode)) {
				const char *d0 = data ? data : "";
				if ((mntf & MNTF_TMPFS_MODE) && strlen(d0) < sizeof databuf - 16) {
					char *p = databuf;
					memcpy(p, "mode=0", 6);
					p += 6;
					*p++ = (char)('0' + ((st.st_mode >> 9) & 7));
					*p++ = (char)('0' + ((st.st_mode >> 6) & 7));
					*p++ = (char)('0' + ((st.st_mode >> 3) & 7));
					*p++ = (char)('0' + (st.st_mode & 7));
					if (*d0)
						*p++ = ',';
					str_copy(p, sizeof databuf - (size_t)(p - databuf), d0);
					data = databuf;
				}
				if ((mntf & MNTF_COPYUP) &&
				    (olddir = openat(probe, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
					e = fail2(c, errno, "tmpcopyup: open ", dst);
					close(probe);
					return e;
				}
			}
			close(probe);
		}
	}
	e = root_open(c, dst, mk, mk == MK_FILE ? 0644 : 0755, (mntf & MNTF_PROC) != 0, 0, &tfd);
	if (e)
		return e;
	if (mntf & MNTF_PROC) {
		/* CVE-2019-16884/19921: procfs/sysfs only on a real directory, never through a symlink */
		if (fstat(tfd, &st) < 0) {
			e = fail(c, errno, dst);
			goto out;
		}
		if (!S_ISDIR(st.st_mode)) {
			e = fail(c, S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR, dst);
			goto out;
		}
	}
	fd_path(tpath, tfd);

	if (mntf & (MNTF_IDMAP | MNTF_TREE)) {
		/* The runtime, still the host's root, cloned the source and idmapped it with this container's user
		 * namespace (which this process can no longer do), and handed the trees over with the usermap ACK,
		 * one per idmapped mount, in plan order. */
		int tree = c->idmap_next < c->n_idmap ? c->idmap_fds[c->idmap_next++] : -1;
		if (tree < 0) {
			e = fail2(c, EBADF, "idmapped mount: no tree from the runtime for ", dst);
			goto out;
		}
		e = sys_move_mount(tree, tfd) < 0 ? errno : 0;
		close(tree);
		if (e) {
			e = fail2(c, e, "idmapped mount on ", dst);
			goto out;
		}
		goto attached;
	}

	if (src && (flags & MS_BIND)) {
		/* open the source first: its absence is then reported against the source, and the bind uses what we
		 * opened */
		sfd = open(src, O_PATH | O_CLOEXEC);
		if (sfd < 0) {
			e = fail(c, errno, src);
			goto out;
		}
		fd_path(spath, sfd);
		src = spath;
	}

	if (mount(src, tpath, fstype, flags, data) < 0) {
		e = fail(c, errno, dst);
		goto out;
	}
attached:
	if (olddir >= 0) {
		int newdir;
		e = root_open(c, dst, MK_NONE, 0, 0, 0, &nfd);
		if (e)
			goto out;
		newdir = openat(nfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		e = newdir < 0 ? errno : copy_up(olddir, newdir);
		if (newdir >= 0)
			close(newdir);
		close(nfd);
		nfd = -1;
		if (e) {
			e = fail2(c, e, "tmpcopyup into ", dst);
			goto out;
		}
	}
	if (!reflags && !prop && !attrs)
		goto out;

	/* the new mount, not the directory it covers */
	e = root_open(c, dst, MK_NONE, 0, 0, 0, &nfd);
	if (e)
		goto out;
	if (reflags) {
		e = remount_keep_locked(nfd, reflags, (reflags & MS_BIND) ? NULL : data);
		if (e) {
			e = fail2(c, e, "remount ", dst);
			goto out;
		}
	}
	if (prop) {
		char np[32];
		fd_path(np, nfd);
		if (mount(NULL, np, NULL, prop, NULL) < 0) {
			e = fail2(c, errno, "propagation of ", dst);
			goto out;
		}
	}
	if (attrs) {
		/* a3 packs attr_set in the low 32 bits and attr_clr in the high 32 (planfmt.mount_attrs) */
		uint64_t set = attrs & 0xFFFFFFFFu, clr = attrs >> 32;
		if (set & MOUNT_ATTR__ATIME)
			clr |= MOUNT_ATTR__ATIME; /* the kernel wants the whole atime field cleared to change it */
		if (sys_mount_setattr(nfd, AT_RECURSIVE, set, clr) < 0) {
			e = fail2(c, errno, "mount_setattr ", dst);
			goto out;
		}
	}
out:
	if (olddir >= 0)
		close(olddir);
	if (nfd >= 0)
		close(nfd);
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	return e;
}

int op_bind_dev(struct ctx *c, const struct plan_op *op)
{
	const char *src = op_str(c, op, 0), *dst = op_str(c, op, 1);
	char sp[32], tp[32];
	struct stat st;
	int sfd, tfd = -1, e = 0;

	if (!src || !dst)
		return fail(c, EINVAL, "bind device: missing path");
	sfd = open(src, O_PATH | O_CLOEXEC);
	if (sfd < 0)
		return fail(c, errno, src);
	if (fstat(sfd, &st) < 0) {
		e = fail(c, errno, src);
		goto out;
	}
	if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
		e = fail(c, ENODEV, src);
		goto out;
	}
	e = root_open(c, dst, MK_FILE, 0644, 0, 0, &tfd);
	if (e)
		goto out;
	fd_path(sp, sfd);
	fd_path(tp, tfd);
	if (mount(sp, tp, NULL, MS_BIND, NULL) < 0)
		e = fail(c, errno, dst);
out:
	if (tfd >= 0)
		close(tfd);
	close(sfd);
	return e;
}

int op_pivot_root(struct ctx *c, const struct plan_op *op)
{
	int old;
	(void)op;
	if (c->root_fd < 0)
		return fail(c, EBADF, "no root opened");
	old = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (old < 0)
		return fail(c, errno, "/");
	if (fchdir(c->root_fd) < 0)
		goto err;
	/* new root and put_old are the same directory: the old root ends up stacked on top of the new one */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		goto err;
	if (fchdir(old) < 0)
		goto err;
	/* the old root (now on top of "/") must not propagate its detach to the host */
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		goto err;
	if (umount2(".", MNT_DETACH) < 0)
		goto err;
	if (chdir("/") < 0)
		goto err;
	close(old);
	return set_root(c, "/");
err : {
	int e = errno;
	close(old);
	return fail(c, e, "pivot_root");
}
}

int op_chroot(struct ctx *c, const struct plan_op *op)
{
	if (c->root_fd < 0)
		return fail(c, EBADF, "no root opened");
	if (fchdir(c->root_fd) < 0)
		return fail(c, errno, "fchdir root");
	/* a0 = 1: no mount namespace of the container's own, so no move onto the caller's "/" */
	if (op->a[0] != 1 && mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		return fail(c, errno, "move root");
	if (chroot(".") < 0)
		return fail(c, errno, "chroot");
	if (chdir("/") < 0)
		return fail(c, errno, "chdir /");
	return set_root(c, "/");
}

static int ro_tmpfs_on(int target)
{
	int fs, m, e = 0;
	fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return errno;
	if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", "0", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		e = errno;
		close(fs);
		return e;
	}
	m = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
			 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	e = m < 0 ? errno : 0;
	close(fs);
	if (e)
		return e;
	if (sys_move_mount(m, target) < 0)
		e = errno;
	close(m);
	return e;
}

int op_mask_path(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 1);
	struct stat st;
	int fd, e;

	if (!path)
		return fail(c, EINVAL, "mask: no path");
	e = root_open(c, path, MK_NONE, 0, 0, 0, &fd);
	if (e == ENOENT)
		return 0;
	if (e)
		return e;
	if (fstat(fd, &st) < 0) {
		e = errno;
	} else if (S_ISDIR(st.st_mode)) {
		e = ro_tmpfs_on(fd);
	} else if (c->devnull_fd < 0) {
		e = EBADF;
		c->detail = "mask: no verified /dev/null (OP_OPEN_DEVNULL)";
	} else {
		/* CVE-2025-31133: the verified char 1:3 itself, never whatever /dev/null is by now */
		e = attach_clone_of(c->devnull_fd, fd, 0);
	}
	close(fd);
	if (e && !c->detail)
		c->detail = path;
	return e;
}

int op_readonly_path(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 1);
	int fd, t, e = 0;

	if (!path)
		return fail(c, EINVAL, "readonly: no path");
	e = root_open(c, path, MK_NONE, 0, 0, 0, &fd);
	if (e == ENOENT)
		return 0;
	if (e)
		return e;
	/* a read-only recursive clone of the path put on top of itself: flags the mount already has are kept */
	t = sys_open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	if (t < 0) {
		e = errno;
	} else {
		if (sys_mount_setattr(t, AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0) < 0 || sys_move_mount(t, fd) < 0)
			e = errno;
		close(t);
	}
	close(fd);
	return e ? fail(c, e, path) : 0;
}

int op_remount_root_ro(struct ctx *c, const struct plan_op *op)
{
	(void)op;
	if (c->root_fd < 0)
		return fail(c, EBADF, "no root opened");
	if (sys_mount_setattr(c->root_fd, 0, MOUNT_ATTR_RDONLY, 0) < 0)
		return fail(c, errno, "/");
	return 0;
}
