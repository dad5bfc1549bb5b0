/* ocipy-init reporting a failure after `create` has returned.
 *
 * Until OP_SIGNAL_CREATED a failure goes to the runtime on the sync socket, which names the field. After it, the
 * runtime is gone (`create` returned; `start` only writes the fifo), so the init says it itself: one line on its
 * stderr, which is the container's (where the caller, conmon or a shim, reads the container's output), and one
 * error line in the --log file opened in stage 0. The texts naming each late op's field come in OP_REPORT.
 */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int op_report(struct ctx *c, const struct plan_op *op)
{
	const char *log = op_str(c, op, 0);
	c->report = op;
	c->log_json = op->a[0] == 1;
	if (log) {
		/* a log that cannot be opened costs only the log line: the runtime already checked it */
		c->log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	}
	return 0;
}

/* The text OP_REPORT gives for op `index`, or NULL. */
static const char *late_text(const struct ctx *c, int index)
{
	const struct plan_op *r = c->report;
	const char *s;
	int64_t k;
	if (!r || r->s[1] == PLAN_NOSTR || index < r->a[1] || index >= r->a[1] + r->a[2])
		return NULL;
	s = op_str(c, r, 1);
	for (k = r->a[1]; k < index; k++) {
		s += strlen(s) + 1;
		if (s >= c->strtab + c->strtab_len)
			return NULL;
	}
	return s;
}

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *s)
{
	while (*s && b->len + 1 < b->cap)
		b->p[b->len++] = *s++;
	b->p[b->len] = '\0';
}

/* s escaped for a JSON string (json) or a logrus quoted value (text) */
static void put_quoted(struct buf *b, const char *s, int json)
{
	static const char hex[] = "0123456789abcdef";
	for (; *s && b->len + 8 < b->cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			b->p[b->len++] = '\\';
			b->p[b->len++] = (char)ch;
		} else if (ch < 0x20) {
			if (json) {
				b->p[b->len++] = '\\';
				b->p[b->len++] = 'u';
				b->p[b->len++] = '0';
				b->p[b->len++] = '0';
				b->p[b->len++] = hex[ch >> 4];
				b->p[b->len++] = hex[ch & 15];
			} else {
				b->p[b->len++] = ' ';
			}
		} else {
			b->p[b->len++] = (char)ch;
		}
	}
	b->p[b->len] = '\0';
}

static void put_num(struct buf *b, unsigned long v, int width)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v || n < width);
	while (n && b->len + 1 < b->cap)
		b->p[b->len++] = tmp[--n];
	b->p[b->len] = '\0';
}

/* UTC RFC 3339 with nanoseconds, as the runtime writes its own log lines */
static void put_time(struct buf *b)
{
	struct timespec ts;
	long days, secs, y, m, d, era, doe, yoe, doy, mp;

	clock_gettime(CLOCK_REALTIME, &ts);
	days = ts.tv_sec / 86400;
	secs = ts.tv_sec % 86400;
	/* civil date from days since 1970-01-01 (proleptic Gregorian) */
	days += 719468;
	era = days / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	put_num(b, (unsigned long)y, 4);
	put(b, "-");
	put_num(b, (unsigned long)m, 2);
	put(b, "-");
	put_num(b, (unsigned long)d, 2);
	put(b, "T");
	put_num(b, (unsigned long)(secs / 3600), 2);
	put(b, ":");
	put_num(b, (unsigned long)(secs / 60 % 60), 2);
	put(b, ":");
	put_num(b, (unsigned long)(secs % 60), 2);
	put(b, ".");
	put_num(b, (unsigned long)ts.tv_nsec, 9);
	put(b, "Z");
}

void late_report(struct ctx *c, int index, int err)
{
	char msg_s[768], line_s[1280], reason[128];
	struct buf msg = {msg_s, 0, sizeof msg_s}, line = {line_s, 0, sizeof line_s};
	const char *text = late_text(c, index);
	size_t i;

	str_copy(reason, sizeof reason, strerror(err));
	for (i = 0; reason[i]; i++)
		if (reason[i] >= 'A' && reason[i] <= 'Z')
			reason[i] = (char)(reason[i] - 'A' + 'a');
	msg_s[0] = '\0';
	put(&msg, c->ops[index].code == OP_EXEC ? "exec failed: " : "start failed: ");
	put(&msg, text ? text : "runtime");
	if (c->detail && *c->detail) {
		put(&msg, ": ");
		put(&msg, c->detail);
	}
	put(&msg, ": ");
	put(&msg, reason);

	line_s[0] = '\0';
	put(&line, "ocipy: ");
	put(&line, msg_s);
	put(&line, "\n");
	if (write(2, line_s, line.len) < 0) {
		/* nowhere else to say it */
	}
	if (c->log_fd < 0)
		return;
	line.len = 0;
	if (c->log_json) {
		put(&line, "{\"level\":\"error\",\"msg\":\"");
		put_quoted(&line, msg_s, 1);
		put(&line, "\",\"time\":\"");
		put_time(&line);
		put(&line, "\"}\n");
	} else {
		put(&line, "time=\"");
		put_time(&line);
		put(&line, "\" level=error msg=\"");
		put_quoted(&line, msg_s, 0);
		put(&line, "\"\n");
	}
	if (write(c->log_fd, line_s, line.len) < 0) {
		/* the stderr line went out */
	}
}
