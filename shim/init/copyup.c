/* ocipy-init's tmpcopyup: what a directory held before a tmpfs was mounted on it is copied into the tmpfs (Podman's
 * `--tmpfs /etc` expects the image's /etc there, runc does the same). The old directory stays readable through an fd
 * opened before the mount; files, directories, symlinks and device/fifo nodes are copied with their owner, mode
 * and times. No allocation: getdents64 into a stack buffer per level, one static copy buffer. */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct dirent64_raw {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static char copy_buf[1 << 16];

static int copy_file(int sfd, int dfd, const char *name, const struct stat *st)
{
	int in, out, e = 0;
	in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (in < 0)
		return errno;
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		e = errno;
		close(in);
		return e;
	}
	for (;;) {
		ssize_t n = read(in, copy_buf, sizeof copy_buf), w = 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			break;
		}
		if (n == 0)
			break;
		while (w < n) {
			ssize_t k = write(out, copy_buf + w, (size_t)(n - w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				e = errno;
				break;
			}
			w += k;
		}
		if (e)
			break;
	}
	if (!e && fchown(out, st->st_uid, st->st_gid) < 0)
		e = errno;
	if (!e && fchmod(out, st->st_mode & 07777) < 0)
		e = errno;
	if (!e) {
		struct timespec ts[2] = {st->st_atim, st->st_mtim};
		futimens(out, ts);
	}
	close(in);
	close(out);
	return e;
}

static int copy_tree(int sfd, int dfd, int depth)
{
	char buf[4096];
	if (depth > 128)
		return ELOOP;
	for (;;) {
		long n = syscall(SYS_getdents64, sfd, buf, sizeof buf), off;
		if (n < 0)
			return errno;
		if (n == 0)
			return 0;
		for (off = 0; off < n;) {
			struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
			const char *name = d->d_name;
			struct stat st;
			int e = 0;

			off += d->d_reclen;
			if (!strcmp(name, ".") || !strcmp(name, ".."))
				continue;
			if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return errno;
			switch (st.st_mode & S_IFMT) {
			case S_IFDIR: {
				int s2, d2;
				if (mkdirat(dfd, name, 0700) < 0)
					return errno;
				s2 = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (s2 < 0)
					return errno;
				d2 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (d2 < 0) {
					e = errno;
					close(s2);
					return e;
				}
				e = copy_tree(s2, d2, depth + 1);
				if (!e && fchown(d2, st.st_uid, st.st_gid) < 0)
					e = errno;
				if (!e && fchmod(d2, st.st_mode & 07777) < 0)
					e = errno;
				if (!e) {
					struct timespec ts[2] = {st.st_atim, st.st_mtim};
					futimens(d2, ts);
				}
				close(s2);
				close(d2);
				break;
			}
			case S_IFREG: e = copy_file(sfd, dfd, name, &st); break;
			case S_IFLNK: {
				char target[PATH_MAX];
				ssize_t k = readlinkat(sfd, name, target, sizeof target - 1);
				if (k < 0)
					return errno;
				target[k] = '\0';
				if (symlinkat(target, dfd, name) < 0 ||
				    fchownat(dfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
					e = errno;
				break;
			}
			default:
				if (mknodat(dfd, name, st.st_mode, st.st_rdev) < 0 ||
				    fchownat(dfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
				    fchmodat(dfd, name, st.st_mode & 07777, 0) < 0)
					e = errno;
				break;
			}
			if (e)
				return e;
		}
	}
}

int copy_up(int olddir, int newroot)
{
	struct stat st;
	int e;
	if (fstat(olddir, &st) < 0)
		return errno;
	e = copy_tree(olddir, newroot, 0);
	if (!e && fchown(newroot, st.st_uid, st.st_gid) < 0)
		e = errno;
	if (!e && fchmod(newroot, st.st_mode & 07777) < 0)
		e = errno;
	return e;
}
