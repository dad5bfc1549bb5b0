/* ocipy-init waiting for `start`: the exec fifo and the signals a waiting init must die on.
 *
 * The init holds the fifo's read end (opened O_NONBLOCK: a reader needs no writer). `start` opens it O_WRONLY|
 * O_NONBLOCK (ENXIO once this process is gone), writes "0" and removes it. A pid-namespace init ignores every
 * signal it has no handler for, so every catchable terminating signal gets a handler that exits with 128+sig, like
 * the default action would: from the start of the init (so a signal between MSG_CREATED and the wait is not lost)
 * until execve, which resets handled signals to their defaults (so no rt_sigaction is needed after a seccomp
 * filter is loaded). */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const int term_signals[] = {
	SIGHUP,  SIGINT,  SIGQUIT, SIGILL,    SIGTRAP, SIGABRT, SIGBUS,    SIGFPE,  SIGUSR1, SIGSEGV, SIGUSR2,
	SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO,   SIGPWR,  SIGSYS,
};

void die_on_signal(int sig)
{
	syscall(SYS_exit_group, 128 + sig);
}

void set_handlers(void (*h)(int))
{
	struct sigaction sa;
	size_t i;
	int sig;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < sizeof term_signals / sizeof term_signals[0]; i++)
		sigaction(term_signals[i], &sa, NULL);
	for (sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaction(sig, &sa, NULL);
}

void reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int op_open_fifo(struct ctx *c, const struct plan_op *op)
{
	const char *path = op_str(c, op, 0);
	struct stat st;
	int fd;

	if (!path)
		return fail(c, EINVAL, "no fifo path");
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fail(c, errno, path);
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		return fail(c, EINVAL, path);
	}
	if (c->fifo_fd >= 0)
		close(c->fifo_fd);
	c->fifo_fd = fd;
	return 0;
}

int op_wait_start(struct ctx *c, const struct plan_op *op)
{
	struct pollfd p;
	char b = 0;
	ssize_t n;

	(void)op;
	if (c->fifo_fd < 0)
		return fail(c, EBADF, "no exec fifo (OP_OPEN_FIFO)");
	/* the handlers and the empty mask are main()'s, from the start: nothing to change here */

	p.fd = c->fifo_fd;
	p.events = POLLIN;
	for (;;) {
		p.revents = 0;
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail(c, errno, "exec fifo");
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR))
			break;
	}
	do {
		n = read(c->fifo_fd, &b, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1 || b != '0')
		die_quietly(1);
	close(c->fifo_fd);
	c->fifo_fd = -1;
	/* The handlers stay: execve resets handled signals to their defaults, and a signal before it ends the init
	 * the same way. No rt_sigaction here, where a seccomp filter may already be loaded. */
	return 0;
}
