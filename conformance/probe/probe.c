/* ocipy conformance probe: prints facts about the process it runs as, as one JSON object on stdout.
 * Built static (gcc -static -Os -Wall -Werror) by the suite; runs as the container process.
 * Arguments are requests, each "verb:arg":
 *   stat:PATH  lstat (type, mode, rdev, uid, gid, symlink target)   read:PATH  first 4 KiB, or the errno
 *   ls:PATH    directory entries                                      sysctl:a.b.c  /proc/sys/a/b/c
 *   open:PATH:r|w  open and report the errno (0 = ok)                 touch:PATH  create a file, report errno
 *   mkdir:PATH mkdir, report errno                                     sleep:N  sleep N seconds after printing
 *   exit:N     exit status after printing
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <unistd.h>

extern char **environ;
static int first;

static void jstr(const char *s) {
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') printf("\\%c", c);
		else if (c == '\n') fputs("\\n", stdout);
		else if (c == '\t') fputs("\\t", stdout);
		else if (c < 0x20 || c >= 0x7f) printf("\\u%04x", c);
		else putchar(c);
	}
	putchar('"');
}
static void key(const char *k) {
	if (!first) putchar(',');
	first = 0;
	jstr(k);
	putchar(':');
}
static void kstr(const char *k, const char *v) { key(k); jstr(v); }
static void kint(const char *k, long long v) { key(k); printf("%lld", v); }
static void kuint(const char *k, unsigned long long v) { key(k); printf("%llu", v); }

static int slurp(const char *path, char *buf, size_t n) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -errno;
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, n - 1 - got);
		if (r < 0) { int e = errno; close(fd); return -e; }
		if (r == 0 || got + (size_t)r >= n - 1) { got += (size_t)(r > 0 ? r : 0); break; }
		got += (size_t)r;
	}
	buf[got] = 0;
	close(fd);
	return (int)got;
}

static char big[1 << 18];

static void lines(const char *k, const char *path) {
	key(k);
	int n = slurp(path, big, sizeof big);
	if (n < 0) { printf("null"); return; }
	putchar('[');
	int f = 1;
	for (char *save = NULL, *l = strtok_r(big, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!f) putchar(',');
		f = 0;
		jstr(l);
	}
	putchar(']');
}

static void status_field(const char *name, const char *out) {
	static char st[16384];
	if (slurp("/proc/self/status", st, sizeof st) < 0) return;
	size_t ln = strlen(name);
	for (char *save = NULL, *l = strtok_r(st, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, name, ln) == 0 && l[ln] == ':') {
			char *v = l + ln + 1;
			while (*v == ' ' || *v == '\t') v++;
			kstr(out, v);
			return;
		}
	}
}

static const char *ftype(mode_t m) {
	switch (m & S_IFMT) {
	case S_IFCHR: return "c";
	case S_IFBLK: return "b";
	case S_IFIFO: return "p";
	case S_IFDIR: return "d";
	case S_IFLNK: return "l";
	case S_IFSOCK: return "s";
	default: return "f";
	}
}

static void do_stat(const char *p) {
	struct stat st;
	putchar('{');
	first = 1;
	if (lstat(p, &st) < 0) { kint("errno", errno); putchar('}'); return; }
	kstr("type", ftype(st.st_mode));
	kint("mode", st.st_mode & 07777);
	kint("major", major(st.st_rdev));
	kint("minor", minor(st.st_rdev));
	kint("uid", st.st_uid);
	kint("gid", st.st_gid);
	if (S_ISLNK(st.st_mode)) {
		char t[4096];
		ssize_t n = readlink(p, t, sizeof t - 1);
		t[n < 0 ? 0 : n] = 0;
		kstr("target", t);
	}
	putchar('}');
}

static void do_read(const char *p) {
	static char b[4097];
	int n = slurp(p, b, sizeof b);
	putchar('{');
	first = 1;
	if (n < 0) kint("errno", -n);
	else { kint("len", n); kstr("data", b); }
	putchar('}');
}

static void do_ls(const char *p) {
	DIR *d = opendir(p);
	if (!d) { printf("{\"errno\":%d}", errno); return; }
	printf("{\"entries\":[");
	int f = 1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
		if (!f) putchar(',');
		f = 0;
		jstr(e->d_name);
	}
	printf("]}");
	closedir(d);
}

static const struct { const char *name; int res; } rl[] = {
	{"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_CPU", RLIMIT_CPU},
	{"RLIMIT_DATA", RLIMIT_DATA}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_LOCKS", RLIMIT_LOCKS},
	{"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
	{"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_RSS", RLIMIT_RSS},
	{"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME}, {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
	{"RLIMIT_STACK", RLIMIT_STACK},
};

int main(int argc, char **argv) {
	int sleep_s = 0, exit_code = 0;
	char buf[4096];
	/* Facts about fds first, before this program opens anything. */
	static char fds[8192];
	size_t fo = 0;
	fds[0] = 0;
	DIR *fdd = opendir("/proc/self/fd");
	if (fdd) {
		int self = dirfd(fdd);
		struct dirent *e;
		int f = 1;
		fo += (size_t)snprintf(fds + fo, sizeof fds - fo, "{");
		while ((e = readdir(fdd)) && fo < sizeof fds - 600) {
			if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
			char t[512], p[300];
			snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
			ssize_t n = readlink(p, t, sizeof t - 1);
			t[n < 0 ? 0 : n] = 0;
			for (char *c = t; *c; c++) if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = '?';
			fo += (size_t)snprintf(fds + fo, sizeof fds - fo, "%s\"%s\":\"%s\"", f ? "" : ",", e->d_name, t);
			f = 0;
		}
		snprintf(fds + fo, sizeof fds - fo, "}");
		closedir(fdd);
	}
	mode_t um = umask(0);
	umask(um);

	putchar('{');
	first = 1;
	key("argv");
	putchar('[');
	for (int i = 0; i < argc; i++) { if (i) putchar(','); jstr(argv[i]); }
	putchar(']');
	key("env");
	putchar('[');
	for (char **e = environ; *e; e++) { if (e != environ) putchar(','); jstr(*e); }
	putchar(']');
	kint("pid", getpid());
	kint("ppid", getppid());
	kint("uid", getuid());
	kint("euid", geteuid());
	kint("gid", getgid());
	kint("egid", getegid());
	gid_t g[256];
	int ng = getgroups(256, g);
	key("groups");
	putchar('[');
	for (int i = 0; i < ng; i++) printf("%s%u", i ? "," : "", g[i]);
	putchar(']');
	kint("umask", um);
	kstr("cwd", getcwd(buf, sizeof buf) ? buf : "");
	struct utsname u;
	uname(&u);
	kstr("hostname", u.nodename);
	kstr("domainname", u.domainname);
	kstr("machine", u.machine);
	status_field("CapInh", "CapInh");
	status_field("CapPrm", "CapPrm");
	status_field("CapEff", "CapEff");
	status_field("CapBnd", "CapBnd");
	status_field("CapAmb", "CapAmb");
	status_field("NoNewPrivs", "NoNewPrivs");
	status_field("Seccomp", "Seccomp");
	if (slurp("/proc/self/oom_score_adj", buf, sizeof buf) > 0) kint("oom_score_adj", atoi(buf));
	key("rlimits");
	putchar('{');
	for (size_t i = 0; i < sizeof rl / sizeof rl[0]; i++) {
		struct rlimit r;
		getrlimit(rl[i].res, &r);
		printf("%s\"%s\":[%llu,%llu]", i ? "," : "", rl[i].name, (unsigned long long)r.rlim_cur,
		       (unsigned long long)r.rlim_max);
	}
	putchar('}');
	key("ns");
	putchar('{');
	const char *nss[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "user", "uts"};
	for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++) {
		char p[64], t[128];
		snprintf(p, sizeof p, "/proc/self/ns/%s", nss[i]);
		ssize_t n = readlink(p, t, sizeof t - 1);
		t[n < 0 ? 0 : n] = 0;
		printf("%s\"%s\":", i ? "," : "", nss[i]);
		jstr(t);
	}
	putchar('}');
	lines("cgroup", "/proc/self/cgroup");
	lines("mountinfo", "/proc/self/mountinfo");
	lines("uid_map", "/proc/self/uid_map");
	lines("gid_map", "/proc/self/gid_map");
	lines("timens_offsets", "/proc/self/timens_offsets");
	key("isatty");
	printf("[%d,%d,%d]", isatty(0), isatty(1), isatty(2));
	key("fds");
	fputs(fds, stdout);
	kint("sched_policy", sched_getscheduler(0));
	errno = 0;
	kint("nice", getpriority(PRIO_PROCESS, 0));
	kint("ioprio", syscall(SYS_ioprio_get, 1, 0));
	{
		int mode = -1;
		unsigned long mask[16] = {0};
		if (syscall(SYS_get_mempolicy, &mode, mask, 1024, NULL, 0) < 0) mode = -errno - 1000;
		kint("mempolicy", mode);
		kuint("mempolicy_nodes", mask[0]);
	}
	kint("personality", personality(0xffffffff));

	key("req");
	putchar('{');
	int fr = 1;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i], *c = strchr(a, ':');
		if (!c) continue;
		*c = 0;
		char *arg = c + 1;
		if (!strcmp(a, "sleep")) { sleep_s = atoi(arg); *c = ':'; continue; }
		if (!strcmp(a, "exit")) { exit_code = atoi(arg); *c = ':'; continue; }
		*c = ':';
		if (!fr) putchar(',');
		fr = 0;
		jstr(a);
		putchar(':');
		*c = 0;
		if (!strcmp(a, "stat")) do_stat(arg);
		else if (!strcmp(a, "read")) do_read(arg);
		else if (!strcmp(a, "ls")) do_ls(arg);
		else if (!strcmp(a, "sysctl")) {
			char p[512];
			snprintf(p, sizeof p, "/proc/sys/%s", arg);
			for (char *q = p + 10; *q; q++) if (*q == '.') *q = '/';
			do_read(p);
		} else if (!strcmp(a, "open")) {
			char *m = strrchr(arg, ':');
			int fl = O_RDONLY;
			if (m) { *m = 0; fl = m[1] == 'w' ? O_WRONLY : O_RDONLY; }
			int fd = open(arg, fl | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
			printf("%d", fd < 0 ? errno : 0);
			if (fd >= 0) close(fd);
			if (m) *m = ':';
		} else if (!strcmp(a, "touch")) {
			int fd = open(arg, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			printf("%d", fd < 0 ? errno : 0);
			if (fd >= 0) close(fd);
		} else if (!strcmp(a, "mkdir")) {
			printf("%d", mkdir(arg, 0755) < 0 ? errno : 0);
		} else printf("null");
		*c = ':';
	}
	putchar('}');
	printf("}\n");
	fflush(stdout);
	if (sleep_s) sleep((unsigned)sleep_s);
	return exit_code;
}
