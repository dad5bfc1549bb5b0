/* A user namespace made only to carry id mappings: the mappings of an idmapped mount that has its own
 * uidMappings/gidMappings (or a container without a user namespace). mount_setattr(MOUNT_ATTR_IDMAP) takes a user
 * namespace fd, and a user namespace exists only while something is in it or holds it open, so a child is cloned
 * into a new one, its maps are written, /proc/PID/ns/user is opened, and the child is killed and reaped before
 * this returns: nothing is left but the fd.
 *
 * The child only blocks in pause() with every signal blocked (it runs no Python and no libc function that could
 * take a lock the parent held at the clone); PR_SET_PDEATHSIG ends it if the caller dies first.
 */
#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_proc(pid_t pid, const char *name, const char *text)
{
	char path[64];
	size_t len = strlen(text);
	ssize_t n;
	int fd, e = 0;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	/* one write: the kernel takes a map in a single write(2) only */
	do {
		n = write(fd, text, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		e = errno;
	else if ((size_t)n != len)
		e = EIO;
	close(fd);
	return e;
}

int ocipy_userns_fd(const char *uid_map, const char *gid_map, int *step_out)
{
	sigset_t all, old;
	pid_t pid, parent = getpid();
	int fd = -1, err = 0, step = USERNS_STEP_CLONE;
	char path[64];

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0UL);
	if (pid == 0) {
		/* the child: signals stay blocked (nothing of the caller's may run here); SIGKILL ends it */
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != parent)
			_exit(0);
		for (;;)
			pause();
	}
	if (pid < 0)
		err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto out;

	step = USERNS_STEP_UID_MAP;
	if ((err = write_proc(pid, "uid_map", uid_map)) != 0)
		goto reap;
	/* as runc: setgroups is denied in the helper namespace (it never runs anything) */
	step = USERNS_STEP_SETGROUPS;
	if ((err = write_proc(pid, "setgroups", "deny")) != 0)
		goto reap;
	step = USERNS_STEP_GID_MAP;
	if ((err = write_proc(pid, "gid_map", gid_map)) != 0)
		goto reap;
	step = USERNS_STEP_OPEN;
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		err = errno;
reap:
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
out:
	if (err) {
		*step_out = step;
		return -err;
	}
	*step_out = 0;
	return fd;
}
