/*
 * args.c: the command line, and the rest of it read from a pipe (--spec-stdin,
 * or --spec-fd N: how env and args, which may hold secrets, stay off any
 * command line that `ps` shows).
 * Fills `spec` only; touches no file, mount or process. Bad input ends the
 * launcher with 125 and a message (stderr, or an `error setup` event in init).
 * Numbers are parsed strictly: garbage, signs and out-of-range values are
 * errors, never a silent 0.
 */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct spec spec = { .event_fd = 3, .grace_ms = 10000 };
int event_fd_given;

static unsigned long parse_num(const char *s, unsigned long max, const char *what) {
	unsigned long v;
	if (parse_ulong(s, max, &v) < 0) die_usage(what);
	return v;
}

/* "1,2,3": each a gid below (gid_t)-1; an empty list, empty items or garbage are errors. */
static void parse_ids(const char *s, gid_t *out, int *n) {
	char *copy = xstrdup(s), *save = NULL;
	if (!*copy || copy[strlen(copy) - 1] == ',' || strstr(copy, ",,")) die_usage("--groups needs a comma-separated list of numbers");
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*n >= MAX_LIST) die_usage("too many --groups");
		out[(*n)++] = (gid_t)parse_num(t, (gid_t)-2, "--groups needs a comma-separated list of numbers");
	}
	free(copy);
}

/* `partial`: the command line of a --spec-stdin launcher, whose rootfs and argv come later. */
void parse_args(int argc, char **argv, int partial) {
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) { i++; break; }
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE() do { if (!v) die_usage("missing value"); i++; } while (0)
#define ADD(list, n) do { if (n >= (int)(sizeof list / sizeof list[0]) - 1) die_usage("too many values"); list[n++] = v; } while (0)
		if (!strcmp(a, "--rootfs")) { TAKE(); spec.rootfs = v; }
		else if (!strcmp(a, "--lower")) { TAKE(); ADD(spec.lower, spec.nlower); }
		else if (!strcmp(a, "--upper")) { TAKE(); spec.upper = v; }
		else if (!strcmp(a, "--work")) { TAKE(); spec.work = v; }
		else if (!strcmp(a, "--hostname")) { TAKE(); spec.hostname = v; }
		else if (!strcmp(a, "--netns")) { TAKE(); spec.netns = v; }
		else if (!strcmp(a, "--new-netns")) spec.new_netns = 1;
		else if (!strcmp(a, "--cgroup")) { TAKE(); ADD(spec.cgroups, spec.ncgroups); }
		else if (!strcmp(a, "--uid")) { TAKE(); spec.uid = (uid_t)parse_num(v, (uid_t)-2, "--uid needs a number"); }
		else if (!strcmp(a, "--gid")) { TAKE(); spec.gid = (gid_t)parse_num(v, (gid_t)-2, "--gid needs a number"); }
		else if (!strcmp(a, "--groups")) { TAKE(); parse_ids(v, spec.groups, &spec.ngroups); }
		else if (!strcmp(a, "--cwd")) { TAKE(); spec.cwd = v; }
		else if (!strcmp(a, "--env")) { TAKE(); if (!strchr(v, '=')) die_usage("--env needs K=V"); ADD(spec.env, spec.nenv); }
		else if (!strcmp(a, "--tmpfs")) { TAKE(); ADD(spec.tmpfs, spec.ntmpfs); }
		else if (!strcmp(a, "--readonly-root")) spec.readonly_root = 1;
		else if (!strcmp(a, "--proc")) spec.proc = 1;
		else if (!strcmp(a, "--dev")) spec.dev = 1;
		else if (!strcmp(a, "--devpts")) spec.devpts = 1;
		else if (!strcmp(a, "--remove-stubs")) spec.remove_stubs = 1;
		else if (!strcmp(a, "--trace")) spec.trace = 1;
		else if (!strcmp(a, "--spec-stdin")) spec.spec_stdin = 1;
		else if (!strcmp(a, "--spec-fd")) {
			TAKE();
			spec.spec_fd = (int)parse_num(v, INT_MAX, "--spec-fd needs a file descriptor number");
			if (spec.spec_fd <= 3) die_usage("--spec-fd must be above 3 (stdio and the event fd)");
			spec.spec_stdin = 1;
		}
		else if (!strcmp(a, "--event-fd")) {
			TAKE();
			spec.event_fd = !strcmp(v, "-1") ? -1 : (int)parse_num(v, INT_MAX, "--event-fd needs a file descriptor number or -1");
			event_fd_given = 1;
		}
		else if (!strcmp(a, "--upper-tmpfs-bytes")) { TAKE(); spec.upper_tmpfs_bytes = parse_num(v, 1UL << 50, "--upper-tmpfs-bytes needs a number of bytes"); }
		else if (!strcmp(a, "--userns-base")) { TAKE(); spec.userns_base = parse_num(v, 0xFFFFFFFFUL - 65536, "--userns-base needs a host uid"); if (!spec.userns_base) die_usage("--userns-base must not be 0"); }
		else if (!strcmp(a, "--console-max-bytes")) { TAKE(); spec.console_max_bytes = parse_num(v, 1UL << 50, "--console-max-bytes needs a number of bytes"); }
		else if (!strcmp(a, "--grace-ms")) { TAKE(); spec.grace_ms = (int)parse_num(v, INT_MAX, "--grace-ms needs a number"); }
		else if (!strcmp(a, "--bind")) {
			TAKE();
			if (spec.nbinds >= MAX_LIST) die_usage("too many --bind");
			/* SRC:DST[:ro] — paths with ':' are not supported (documented). */
			char *copy = xstrdup(v), *dst = strchr(copy, ':');
			if (!dst) die_usage("--bind needs SRC:DST[:ro]");
			*dst++ = 0;
			char *opt = strchr(dst, ':');
			int ro = 0;
			if (opt) { *opt++ = 0; if (strcmp(opt, "ro") && strcmp(opt, "rw")) die_usage("--bind option must be ro or rw"); ro = !strcmp(opt, "ro"); }
			if (dst[0] != '/') die_usage("--bind DST must be absolute");
			spec.binds[spec.nbinds++] = (struct bind){ copy, dst, ro, -1 };
		} else die_usage("unknown option (see the header of main.c)");
#undef TAKE
#undef ADD
	}
	if (partial) {
		if (spec.rootfs || i < argc) die_usage("--spec-stdin / --spec-fd take --rootfs and the argv from the pipe");
		return;
	}
	if (!spec.rootfs) die_usage("--rootfs is required");
	if (i >= argc) die_usage("missing -- argv");
	if (spec.nlower && (!spec.upper || !spec.work)) die_usage("--lower needs --upper and --work");
	if (spec.remove_stubs && spec.readonly_root) die_usage("--remove-stubs needs a writable root");
	if (spec.netns && spec.new_netns) die_usage("--netns and --new-netns exclude each other");
	if (spec.userns_base && !spec.upper_tmpfs_bytes) die_usage("--userns-base needs --upper-tmpfs-bytes (the idmapped writable layer)");
	spec.argv = &argv[i];
}

/* --spec-stdin / --spec-fd: read the rest of the command line (NUL-terminated arguments) until EOF. */
void read_spec(void) {
	char *buf = xmalloc(MAX_SPEC_BYTES);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(spec.spec_fd, buf + n, MAX_SPEC_BYTES - n);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) fail("spec", "read");
		if (r == 0) break;
		n += (size_t)r;
		if (n == MAX_SPEC_BYTES) { errno = E2BIG; fail("spec", "too large"); }
	}
	if (n == 0) { errno = ENODATA; fail("spec", "none given"); }
	if (buf[n - 1] != 0) { errno = EINVAL; fail("spec", "not NUL-terminated"); }
	int count = 0;
	for (size_t k = 0; k < n; k++) count += buf[k] == 0;
	char **args = calloc((size_t)count + 2, sizeof *args);
	if (!args) { errno = ENOMEM; fail("spec", "out of memory"); }
	args[0] = "ukc-sandbox";
	char *p = buf;
	for (int k = 1; k <= count; k++) { args[k] = p; p += strlen(p) + 1; }
	/* What the supervisor or the cgroup join already used must come on the command line. */
	int ncg = spec.ncgroups, efd = spec.event_fd, grace = spec.grace_ms, rs = spec.remove_stubs, tr = spec.trace, sfd = spec.spec_fd;
	unsigned long cmax = spec.console_max_bytes;
	parse_args(count + 1, args, 0);
	if (spec.ncgroups != ncg || spec.event_fd != efd || spec.grace_ms != grace || spec.remove_stubs != rs || spec.trace != tr || spec.spec_fd != sfd ||
	    spec.console_max_bytes != cmax)
		die_usage("--cgroup, --event-fd, --grace-ms, --remove-stubs, --trace, --spec-fd and --console-max-bytes belong on the command line");
	if (spec.spec_fd != 0) { close(spec.spec_fd); return; } /* stdin stays the caller's */
	/* The app's stdin is /dev/null, as in the plain mode. */
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0 || dup2(nul, 0) < 0) fail("spec", "/dev/null");
	close(nul);
}
