/*
 * utils.c: helpers every part uses. Touches nothing but the exec pipe to the
 * supervisor (send_msg), stderr (before that pipe exists) and memory.
 * Everything here fails cleanly: string building never writes past its buffer
 * and reports truncation, number parsing rejects garbage and out-of-range
 * values, allocations are checked.
 */
#include "sandbox.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void send_msg(int kind, int err, int64_t a, int64_t b, const char *text) {
	struct msg m = { .kind = kind, .err = err, .a = a, .b = b };
	/* Truncating a message is fine: the text is informational and kept on one line. */
	if (text) (void)fmt_checked(m.text, sizeof m.text, "%s", text);
	ssize_t r;
	do r = write(exec_pipe[1], &m, sizeof m); while (r < 0 && errno == EINTR);
}

/* With --trace: a named CLOCK_MONOTONIC timestamp of a setup stage (profiling aid). */
void mark(const char *stage) {
	if (spec.trace) send_msg(MSG_MARK, 0, now_ns(), 0, stage);
}

/* Report a setup failure with its stage and errno, then leave with 125. Before the exec
 * pipe exists (argument parsing in the supervisor), the report goes to stderr. */
void fail(const char *stage, const char *what) {
	int e = errno;
	char buf[256];
	(void)fmt_checked(buf, sizeof buf, "%s: %s", stage, what ? what : "");
	if (exec_pipe[1] < 0) {
		fprintf(stderr, "ukc-sandbox: %s: %s\n", buf, strerror(e));
		exit(125);
	}
	send_msg(MSG_ERROR, e, 0, 0, buf);
	_exit(125);
}

void die_usage(const char *m) {
	if (in_init) { errno = EINVAL; fail("spec", m); }
	fprintf(stderr, "ukc-sandbox: %s\n", m);
	exit(125);
}

void *xmalloc(size_t n) {
	void *p = malloc(n);
	if (!p) { errno = ENOMEM; fail("alloc", "out of memory"); }
	return p;
}

char *xstrdup(const char *s) {
	char *p = strdup(s);
	if (!p) { errno = ENOMEM; fail("alloc", "out of memory"); }
	return p;
}

void sb_init(struct strbuf *sb, char *buf, size_t cap) {
	sb->buf = buf; sb->cap = cap; sb->len = 0; sb->truncated = 0;
	if (cap) buf[0] = 0;
}

/* Appends, or marks the whole string truncated (and leaves it as it was) when it would not fit. */
void sb_addf(struct strbuf *sb, const char *fmt, ...) {
	if (sb->truncated) return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sb->cap - sb->len) {
		sb->truncated = 1;
		sb->buf[sb->len] = 0;
		return;
	}
	sb->len += (size_t)n;
}

int fmt_checked(char *buf, size_t cap, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap) { errno = ENAMETOOLONG; return -1; }
	return 0;
}

int parse_ulong(const char *s, unsigned long max, unsigned long *out) {
	/* strtoul accepts leading space and a sign ("-1" wraps to ULONG_MAX): digits only. */
	if (!s || *s < '0' || *s > '9') { errno = EINVAL; return -1; }
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno) return -1;
	if (*end) { errno = EINVAL; return -1; }
	if (v > max) { errno = ERANGE; return -1; }
	*out = v;
	return 0;
}
