/* ocipy-init "path in root": resolving (and creating) paths beneath the root fd, never leaving it.
 *
 * Every lookup is openat2(root_fd, path, O_PATH, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS): ".." and absolute symlinks
 * are clamped to the root, /proc magic links are refused. Missing components are created one at a time: the parent
 * is resolved the same way, then mkdirat/openat(O_CREAT|O_EXCL|O_NOFOLLOW) of one plain name beneath that fd, then
 * the prefix is resolved again. A symlink swapped in between can only redirect inside the root.
 */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int in_root(struct ctx *c, const char *path, int flags, uint64_t extra)
{
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra;
	return (int)syscall(SYS_openat2, c->root_fd, path, &how, sizeof how);
}

static int create_one(int dirfd, const char *name, int as_file, mode_t mode)
{
	if (as_file) {
		int fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, mode);
		if (fd < 0)
			return errno == EEXIST ? 0 : errno;
		close(fd);
		return 0;
	}
	if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
		return errno;
	return 0;
}

/* A missing component that exists as a symlink is a dangling symlink: continue with its target spliced into the
 * path (absolute targets restart at the root), like a lexical in-root join; openat2 clamps any ".." at the root. */
static int splice_link(int dirfd, const char *name, char *buf, size_t start, size_t end, const char *rest)
{
	char link[PATH_MAX], out[PATH_MAX];
	ssize_t ln = readlinkat(dirfd, name, link, sizeof link - 1);
	size_t n = 0, k;

	if (ln < 0)
		return errno == EINVAL ? ENOENT : errno; /* not a symlink: something else is missing */
	link[ln] = '\0';
	if (link[0] != '/') {
		memcpy(out, buf, start);
		n = start;
	}
	k = str_copy(out + n, sizeof out - n, link);
	if (n + k >= sizeof out)
		return ENAMETOOLONG;
	n += k;
	k = str_copy(out + n, sizeof out - n, rest);
	if (n + k >= sizeof out)
		return ENAMETOOLONG;
	(void)end;
	memcpy(buf, out, n + k + 1);
	return 0;
}

int root_open(struct ctx *c, const char *path, int mk, mode_t mode, int nofollow, uint64_t extra, int *out)
{
	char buf[PATH_MAX], rest[PATH_MAX];
	int oflags = O_PATH | (nofollow ? O_NOFOLLOW : 0);
	int fd, parent = -1, links = 0;
	size_t i, n;

	if (c->root_fd < 0)
		return fail(c, EBADF, "no root opened");
	fd = in_root(c, path, oflags, extra);
	if (fd >= 0) {
		*out = fd;
		return 0;
	}
	if (errno != ENOENT || mk == MK_NONE)
		return fail(c, errno, path);

	n = str_copy(buf, sizeof buf, path);
	if (n >= sizeof buf)
		return fail(c, ENAMETOOLONG, path);
restart:
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	i = 0;
	while (i < n) {
		size_t start, end;
		char save;
		int last, e;

		while (i < n && buf[i] == '/')
			i++;
		if (i >= n)
			break;
		start = i;
		while (i < n && buf[i] != '/')
			i++;
		end = i;
		last = end >= n;
		save = buf[end];
		buf[end] = '\0';
		fd = in_root(c, buf, last ? oflags : O_PATH, extra);
		if (fd < 0 && errno == ENOENT) {
			int dirfd = parent >= 0 ? parent : c->root_fd;
			e = create_one(dirfd, buf + start, last && mk == MK_FILE, last ? mode : 0755);
			if (e) {
				if (parent >= 0)
					close(parent);
				return fail(c, e, path);
			}
			fd = in_root(c, buf, last ? oflags : O_PATH, extra);
			if (fd < 0 && errno == ENOENT) {
				/* it exists (mkdirat said EEXIST) yet does not resolve: a dangling symlink */
				buf[end] = save;
				str_copy(rest, sizeof rest, buf + end);
				buf[end] = '\0';
				e = ++links > 40 ? ELOOP : splice_link(dirfd, buf + start, buf, start, end, rest);
				if (parent >= 0)
					close(parent);
				parent = -1;
				if (e)
					return fail(c, e, path);
				n = strlen(buf);
				goto restart;
			}
		}
		if (fd < 0) {
			e = errno;
			if (parent >= 0)
				close(parent);
			return fail(c, e, path);
		}
		buf[end] = save;
		if (parent >= 0)
			close(parent);
		parent = fd;
	}
	if (parent < 0) /* the path was "/" */
		parent = in_root(c, "/", O_PATH, extra);
	if (parent < 0)
		return fail(c, errno, path);
	*out = parent;
	return 0;
}

int root_parent(struct ctx *c, const char *path, int mkparents, int *dirfd, char name[NAME_MAX + 1])
{
	char buf[PATH_MAX];
	size_t n = str_copy(buf, sizeof buf, path);
	char *slash, *base;

	if (n >= sizeof buf)
		return fail(c, ENAMETOOLONG, path);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	slash = strrchr(buf, '/');
	base = slash ? slash + 1 : buf;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strlen(base) > NAME_MAX)
		return fail(c, EINVAL, path);
	str_copy(name, NAME_MAX + 1, base);
	if (!slash)
		buf[0] = '\0';
	else if (slash == buf)
		buf[1] = '\0';
	else
		*slash = '\0';
	if (!buf[0]) {
		buf[0] = '/';
		buf[1] = '\0';
	}
	{
		int e = root_open(c, buf, mkparents ? MK_DIR : MK_NONE, 0755, 0, 0, dirfd);
		if (e)
			return fail(c, e, path);
	}
	return 0;
}
