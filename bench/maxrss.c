/* Run a command and write its peak RSS (KiB, wait4's ru_maxrss) to the file named by argv[1], then exit with its
 * status. bench/containers.py runs `create` through this: a child of the 14 MB Python bench would report the
 * bench's own high-water mark (the kernel keeps the pre-exec mm's peak in ru_maxrss); a child of this small
 * program reports its own. */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: maxrss OUTFILE COMMAND [ARG...]\n");
		return 2;
	}
	pid_t pid = fork();
	if (pid < 0)
		return 127;
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0)
		return 127;
	FILE *out = fopen(argv[1], "w");
	if (out == NULL)
		return 127;
	fprintf(out, "%ld\n", ru.ru_maxrss);
	fclose(out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
