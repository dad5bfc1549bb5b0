/* ocipy-init console: a pty pair from the container's own devpts, the master sent to the caller's console socket,
 * the peer bound on /dev/console (unless a3 = 1: exec) and made the controlling terminal and stdio. */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static int send_master(int sock, int master)
{
	static const char payload[] = "/dev/ptmx";

	return send_fd(sock, payload, sizeof payload - 1, master);
}

int op_console(struct ctx *c, const struct plan_op *op)
{
	int sock = (int)op->a[0], master = -1, peer = -1, dst = -1, e = 0, unlock = 0, i;
	struct open_how how;
	struct statfs sf;

	if (c->root_fd < 0)
		return fail(c, EBADF, "no root opened");
	/* the container's devpts instance: resolved in root without any symlink, and checked to be devpts */
	memset(&how, 0, sizeof how);
	how.flags = O_RDWR | O_NOCTTY | O_CLOEXEC;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
	master = (int)syscall(SYS_openat2, c->root_fd, "/dev/pts/ptmx", &how, sizeof how);
	if (master < 0)
		return fail(c, errno, "/dev/pts/ptmx");
	if (fstatfs(master, &sf) < 0 || sf.f_type != DEVPTS_SUPER_MAGIC) {
		e = fail(c, EPERM, "/dev/pts/ptmx is not on devpts");
		goto out;
	}
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0) {
		e = fail(c, errno, "unlock pty");
		goto out;
	}
	peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (peer < 0) {
		e = fail(c, errno, "open pty peer");
		goto out;
	}
	if (op->a[1] > 0 || op->a[2] > 0) {
		struct winsize ws;
		memset(&ws, 0, sizeof ws);
		if (ioctl(master, TIOCGWINSZ, &ws) < 0) {
			e = fail(c, errno, "console size");
			goto out;
		}
		if (op->a[1] > 0)
			ws.ws_row = (unsigned short)op->a[1];
		if (op->a[2] > 0)
			ws.ws_col = (unsigned short)op->a[2];
		if (ioctl(master, TIOCSWINSZ, &ws) < 0) {
			e = fail(c, errno, "console size");
			goto out;
		}
	}
	/* /dev/console: a file in the container's /dev, never reached through a symlink. Not for exec (a3 = 1): the
	 * container's console stays the init's. */
	if (op->a[3] != 1) {
		struct stat st;
		e = root_open(c, "/dev/console", MK_FILE, 0600, 1, RESOLVE_NO_SYMLINKS, &dst);
		if (e)
			goto out;
		if (fstat(dst, &st) < 0 || S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode)) {
			e = fail(c, ELOOP, "/dev/console");
			goto out;
		}
		e = attach_clone_of(peer, dst, 0);
		if (e) {
			e = fail(c, e, "/dev/console");
			goto out;
		}
	}
	e = send_master(sock, master);
	if (e) {
		e = fail(c, e, "console socket");
		goto out;
	}
	close(sock);
	sock = -1;
	close(master);
	master = -1;
	if (setsid() < 0 && errno != EPERM) {
		e = fail(c, errno, "setsid");
		goto out;
	}
	if (ioctl(peer, TIOCSCTTY, 0) < 0) {
		e = fail(c, errno, "controlling terminal");
		goto out;
	}
	for (i = 0; i < 3; i++)
		if (dup2(peer, i) < 0) {
			e = fail(c, errno, "console stdio");
			goto out;
		}
out:
	if (dst >= 0)
		close(dst);
	if (peer > 2)
		close(peer);
	if (master >= 0)
		close(master);
	return e;
}
