/*
 * The pod sandbox's process for the CRI suite (tests/cri): the image containerd's `sandbox_image` names is built
 * from this file alone (no registry). It holds the pod's namespaces open, reaps the orphans it inherits when the
 * pod shares one pid namespace (it is that namespace's init), and exits 0 on SIGINT or SIGTERM, as Kubernetes'
 * pause does. Built static (cc -static) so the image is this one file.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		static const char v[] = "ocipy-pause 1\n";
		return write(1, v, sizeof v - 1) == (ssize_t)(sizeof v - 1) ? 0 : 1;
	}
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return 1;
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		return 1;
	for (;;)
		pause();
}
