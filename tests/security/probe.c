/* A tiny static probe for the seccomp tests: makes one system call and prints what happened.
 *
 *   probe NR [ARG...]   syscall(NR, ARG...) -> "ret=R errno=E"
 *   probe x86 NR        the i386 system call NR through int $0x80 -> "ret=R" (R is -errno)
 *
 * A SIGSYS (SCMP_ACT_TRAP) is caught and reported as "SIGSYS nr=N"; the probe then exits 42.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char buf[64];
	int n = snprintf(buf, sizeof buf, "SIGSYS nr=%d\n", si->si_syscall);
	(void)sig;
	(void)uc;
	if (write(1, buf, (size_t)n) < 0)
		_exit(43);
	_exit(42);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	unsigned long a[6] = {0};
	long nr, ret;
	int i;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	if (argc == 3 && strcmp(argv[1], "x86") == 0) {
		nr = strtol(argv[2], NULL, 0);
		__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory", "r8", "r9", "r10", "r11");
		printf("ret=%ld\n", ret);
		return 0;
	}
	if (argc < 2 || argc > 8)
		return 2;
	nr = strtol(argv[1], NULL, 0);
	for (i = 2; i < argc; i++)
		a[i - 2] = strtoull(argv[i], NULL, 0);
	errno = 0;
	ret = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	printf("ret=%ld errno=%d\n", ret, ret < 0 ? errno : 0);
	return 0;
}
