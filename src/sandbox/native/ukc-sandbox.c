/*
 * ukc-sandbox: start one program in fresh Linux namespaces, supervise it, and
 * report what happened as text lines on an event fd.
 *
 * Process tree (the design choice, and why):
 *
 *   supervisor (this binary, host namespaces, parent of init; stays small)
 *     └─ init   (PID 1 of the new pid namespace; same binary, no exec)
 *          └─ app (PID 2; execve of the user's argv)
 *
 * The app is NOT PID 1: the kernel drops signals to PID 1 that have no handler,
 * so a plain SIGTERM would do nothing to most apps, and nobody would reap
 * orphaned grandchildren. Our init forwards SIGTERM to every process in the
 * namespace, reaps zombies, and when the app exits hands its wait status to the
 * supervisor and exits itself; the kernel then SIGKILLs whatever is left in the
 * pid namespace and the mount namespace (with every mount in it) disappears.
 * init has PDEATHSIG=SIGKILL, so killing the supervisor kills the sandbox.
 *
 * Events (one line each, on --event-fd, default 3; writes never block us for
 * long as lines are tiny; if the reader is gone we keep supervising):
 *   pid <host pid of init>
 *   ready                                  (--spec-stdin: cgroups joined, waiting for the spec)
 *   stub <path inside root> <parent mtime sec> <parent mtime nsec>   (mount point we created)
 *   mark <stage> <CLOCK_MONOTONIC ns>                                 (with --trace: setup stage done)
 *   exec <CLOCK_MONOTONIC ns taken right before the successful execve>
 *   error <stage> <errno> <message>                                  (setup or exec failed)
 *   cleanup ok | cleanup incomplete          (only with --remove-stubs: were the stubs removed?)
 *   exit code <n> | exit signal <n>
 * Exit status of the supervisor mirrors the app: its code, or 128+signal;
 * 127 when the program was not found, 126 when it could not be executed,
 * 125 when the sandbox itself could not be set up.
 *
 * Signals to the supervisor: SIGTERM/SIGINT/SIGHUP = graceful stop (SIGTERM to
 * everything in the sandbox, then kill after --grace-ms); SIGUSR1 = kill now.
 * "Kill" first asks init to SIGKILL everything else (so --remove-stubs can
 * still run), and SIGKILLs init itself 2 s later if it has not exited.
 *
 * Pre-started mode (--spec-stdin), for a node's pool of warm launchers: the
 * command line holds only --cgroup, --event-fd, --grace-ms, --trace; init joins
 * the cgroups (on cgroup v1 that waits for an RCU grace period, ~10 ms, the
 * slowest step of a start), reports `ready`, then reads the rest of the
 * command line (NUL-terminated arguments, --rootfs ... -- argv) from stdin
 * until EOF, unshares its mount (and, with --new-netns, net) namespace, and
 * goes on as usual. EOF without a spec (the node went away) ends the sandbox.
 *
 * Mount targets are created inside the new root after pivot_root, so a hostile
 * rootfs with symlinks (e.g. /etc/resolv.conf -> /etc/shadow) can only point
 * at files inside itself. Bind sources are host paths captured with open_tree()
 * before the pivot.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <grp.h>
#include <time.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

#define MAX_LIST 64
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct bind { const char *src, *dst; int ro; int fd; };

static struct {
	const char *rootfs, *upper, *work, *hostname, *netns, *cwd;
	const char *lower[MAX_LIST]; int nlower;
	const char *cgroups[MAX_LIST]; int ncgroups;
	const char *env[1024 + 1]; int nenv; /* +1 for the NULL terminator */
	const char *tmpfs[MAX_LIST]; int ntmpfs;
	struct bind binds[MAX_LIST]; int nbinds;
	gid_t groups[MAX_LIST]; int ngroups;
	uid_t uid; gid_t gid;
	int new_netns, readonly_root, proc, dev, devpts, remove_stubs, event_fd, grace_ms, trace, spec_stdin;
	char **argv;
} spec = { .event_fd = 3, .grace_ms = 10000 };

/* Messages from init/app to the supervisor over the exec pipe (atomic: < PIPE_BUF). */
enum { MSG_EXEC = 1, MSG_ERROR, MSG_STUB, MSG_MARK, MSG_READY };
struct msg { int32_t kind, err; int64_t a, b; char text[256]; };

static int exec_pipe[2] = { -1, -1 }, status_pipe[2] = { -1, -1 };
static int main_argc;
static char **main_argv;
static volatile pid_t child_pid = 0; /* supervisor: init's host pid; init: the app's pid */

static int in_init; /* set in init: usage errors in a spec read from stdin are reported as events */
static void fail(const char *stage, const char *what);

static void die_usage(const char *m) {
	if (in_init) { errno = EINVAL; fail("spec", m); }
	fprintf(stderr, "ukc-sandbox: %s\n", m);
	exit(125);
}

static int64_t now_ns(void);

static void send_msg(int kind, int err, int64_t a, int64_t b, const char *text) {
	struct msg m = { .kind = kind, .err = err, .a = a, .b = b };
	if (text) snprintf(m.text, sizeof m.text, "%s", text);
	ssize_t r;
	do r = write(exec_pipe[1], &m, sizeof m); while (r < 0 && errno == EINTR);
}

/* With --trace: a named CLOCK_MONOTONIC timestamp of a setup stage (profiling aid). */
static void mark(const char *stage) {
	if (spec.trace) send_msg(MSG_MARK, 0, now_ns(), 0, stage);
}

/* Report a setup failure with its stage and errno, then leave with 125. */
static void fail(const char *stage, const char *what) {
	int e = errno;
	char buf[256];
	snprintf(buf, sizeof buf, "%s: %s", stage, what ? what : "");
	send_msg(MSG_ERROR, e, 0, 0, buf);
	_exit(125);
}

static void parse_ids(const char *s, gid_t *out, int *n) {
	char *copy = strdup(s), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t && *n < MAX_LIST; t = strtok_r(NULL, ",", &save))
		out[(*n)++] = (gid_t)strtoul(t, NULL, 10);
	free(copy);
}

static unsigned long parse_num(const char *s) {
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || !*s) die_usage("expected a number");
	return v;
}

/* `partial`: the command line of a --spec-stdin launcher, whose rootfs and argv come later. */
static void parse_args(int argc, char **argv, int partial) {
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
		else if (!strcmp(a, "--uid")) { TAKE(); spec.uid = (uid_t)parse_num(v); }
		else if (!strcmp(a, "--gid")) { TAKE(); spec.gid = (gid_t)parse_num(v); }
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
		else if (!strcmp(a, "--event-fd")) { TAKE(); spec.event_fd = (int)strtol(v, NULL, 10); }
		else if (!strcmp(a, "--grace-ms")) { TAKE(); spec.grace_ms = (int)parse_num(v); }
		else if (!strcmp(a, "--bind")) {
			TAKE();
			if (spec.nbinds >= MAX_LIST) die_usage("too many --bind");
			/* SRC:DST[:ro] — paths with ':' are not supported (documented). */
			char *copy = strdup(v), *dst = strchr(copy, ':');
			if (!dst) die_usage("--bind needs SRC:DST[:ro]");
			*dst++ = 0;
			char *opt = strchr(dst, ':');
			int ro = 0;
			if (opt) { *opt++ = 0; if (strcmp(opt, "ro") && strcmp(opt, "rw")) die_usage("--bind option must be ro or rw"); ro = !strcmp(opt, "ro"); }
			if (dst[0] != '/') die_usage("--bind DST must be absolute");
			spec.binds[spec.nbinds++] = (struct bind){ copy, dst, ro, -1 };
		} else die_usage("unknown option (see the header of ukc-sandbox.c)");
	}
	if (partial) {
		if (spec.rootfs || i < argc) die_usage("--spec-stdin takes --rootfs and the argv from stdin");
		return;
	}
	if (!spec.rootfs) die_usage("--rootfs is required");
	if (i >= argc) die_usage("missing -- argv");
	if (spec.nlower && (!spec.upper || !spec.work)) die_usage("--lower needs --upper and --work");
	if (spec.remove_stubs && spec.readonly_root) die_usage("--remove-stubs needs a writable root");
	if (spec.netns && spec.new_netns) die_usage("--netns and --new-netns exclude each other");
	spec.argv = &argv[i];
}

/* ---- inside the new root ---------------------------------------------------- */

/* What init created or mounted, so --remove-stubs can undo it after the app exits. */
struct stub { char path[512]; struct timespec parent_atime, parent_mtime, parent_mtime_after; int is_dir; };
static struct stub stubs[MAX_LIST];
static int nstubs;
static const char *mounted[MAX_LIST + 8];
static int nmounted;

static void note_mount(const char *dst) { if (nmounted < (int)(sizeof mounted / sizeof mounted[0])) mounted[nmounted++] = dst; }

static void parent_of(const char *path, char *out, size_t n) {
	snprintf(out, n, "%s", path);
	char *slash = strrchr(out, '/');
	if (slash == out) slash[1] = 0; else *slash = 0;
}

/* Unmount what we mounted, then remove the mount points we created (newest first), but only
 * while they are still empty; a parent's times are restored only if nobody else changed it. */
static int remove_stubs(void) {
	int ok = 1;
	for (int i = nmounted - 1; i >= 0; i--) umount2(mounted[i], MNT_DETACH);
	for (int i = nstubs - 1; i >= 0; i--) {
		struct stub *st = &stubs[i];
		char parent[512];
		struct stat pst, self;
		parent_of(st->path, parent, sizeof parent);
		int untouched = stat(parent, &pst) == 0 && pst.st_mtim.tv_sec == st->parent_mtime_after.tv_sec &&
			pst.st_mtim.tv_nsec == st->parent_mtime_after.tv_nsec;
		if (lstat(st->path, &self) < 0) continue;
		if (st->is_dir ? rmdir(st->path) < 0 : (self.st_size != 0 || unlink(st->path) < 0)) { ok = 0; continue; }
		struct timespec times[2] = { st->parent_atime, st->parent_mtime };
		if (untouched) utimensat(AT_FDCWD, parent, times, AT_SYMLINK_NOFOLLOW);
	}
	return ok;
}

/* mkdir -p for a path inside the (already pivoted) root; reports created dirs as stubs. */
static void make_path(const char *path, int last_is_file) {
	char buf[512];
	if (strlen(path) >= sizeof buf || path[0] != '/') { errno = ENAMETOOLONG; fail("mountpoint", "path too long or relative"); }
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; ; p++) {
		int end = *p == 0;
		if (*p != '/' && !end) continue;
		*p = 0;
		struct stat st;
		if (lstat(buf, &st) < 0) {
			if (errno != ENOENT) fail("mountpoint", buf);
			/* Remember the parent's times so removing the stub can restore them. */
			char parent[512];
			parent_of(buf, parent, sizeof parent);
			struct stat pst = { 0 }, after = { 0 };
			stat(parent, &pst);
			int is_dir = !(end && last_is_file);
			if (!is_dir) {
				int fd = open(buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
				if (fd < 0) fail("mountpoint", buf);
				close(fd);
			} else if (mkdir(buf, 0755) < 0) fail("mountpoint", buf);
			stat(parent, &after);
			if (nstubs >= MAX_LIST) { errno = E2BIG; fail("mountpoint", "too many"); }
			struct stub *st = &stubs[nstubs++];
			snprintf(st->path, sizeof st->path, "%s", buf);
			st->parent_atime = pst.st_atim; st->parent_mtime = pst.st_mtim; st->parent_mtime_after = after.st_mtim;
			st->is_dir = is_dir;
			send_msg(MSG_STUB, 0, pst.st_mtim.tv_sec, pst.st_mtim.tv_nsec, buf);
		}
		if (end) break;
		*p = '/';
	}
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
	if (mount(src, dst, type, flags, data) < 0) fail("mount", dst);
}

static void remount_ro(const char *dst, unsigned long extra) {
	do_mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | extra, NULL);
}

/* Read-only or masked views of /proc entries that would let root in the sandbox change the host. */
static void harden_proc(void) {
	static const char *ro[] = { "/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs" };
	static const char *mask[] = { "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/kallsyms" };
	for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
		if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) < 0) { if (errno == ENOENT) continue; fail("mount", ro[i]); }
		remount_ro(ro[i], MS_NOSUID | MS_NODEV | MS_NOEXEC);
	}
	if (!spec.dev) return; /* masking binds /dev/null over the files */
	for (size_t i = 0; i < sizeof mask / sizeof mask[0]; i++)
		if (mount("/dev/null", mask[i], NULL, MS_BIND, NULL) < 0 && errno != ENOENT) fail("mount", mask[i]);
}

static void setup_dev(void) {
	static const struct { const char *name; unsigned maj, min; } nodes[] = {
		{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
	};
	static const char *links[][2] = {
		{ "/proc/self/fd", "/dev/fd" }, { "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" }, { "pts/ptmx", "/dev/ptmx" },
	};
	make_path("/dev", 0);
	note_mount("/dev");
	do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k,nr_inodes=1024");
	mode_t old = umask(0);
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
		char p[64];
		snprintf(p, sizeof p, "/dev/%s", nodes[i].name);
		if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0) fail("mknod", p);
	}
	umask(old);
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
		if (symlink(links[i][0], links[i][1]) < 0) fail("symlink", links[i][1]);
	if (mkdir("/dev/shm", 01777) < 0 || chmod("/dev/shm", 01777) < 0) fail("mkdir", "/dev/shm");
	do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
	if (mkdir("/dev/pts", 0755) < 0) fail("mkdir", "/dev/pts");
	if (spec.devpts)
		do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
}

static void lo_up(void) {
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { 0 };
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail("network", "lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("network", "lo up");
	close(s);
}

/* Join each cgroup (v2 dir or one v1 controller dir) by writing "0" (= this process). */
static void join_cgroups(void) {
	for (int i = 0; i < spec.ncgroups; i++) {
		char p[4096];
		snprintf(p, sizeof p, "%s/cgroup.procs", spec.cgroups[i]);
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1) fail("cgroup", spec.cgroups[i]);
		close(fd);
	}
}

/* Capabilities kept for root in the sandbox (Docker's default set minus MKNOD):
 * enough for package managers and chown, not enough to mount, load modules,
 * trace, or open_by_handle_at out of the root. */
static const int keep_caps[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_NET_RAW, CAP_SETGID, CAP_SETUID,
	CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
};

static void drop_caps_bounding(void) {
	for (int c = 0; c <= 63; c++) {
		int keep = 0;
		for (size_t i = 0; i < sizeof keep_caps / sizeof keep_caps[0]; i++) keep |= keep_caps[i] == c;
		if (!keep && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) fail("caps", "bounding set");
	}
}

static void limit_caps(void) {
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { 0 };
	if (syscall(SYS_capget, &h, d) < 0) fail("caps", "capget");
	uint32_t keep[2] = { 0, 0 };
	for (size_t i = 0; i < sizeof keep_caps / sizeof keep_caps[0]; i++) keep[keep_caps[i] / 32] |= 1u << (keep_caps[i] % 32);
	for (int i = 0; i < 2; i++) {
		d[i].effective &= keep[i]; d[i].permitted &= keep[i]; d[i].inheritable = 0;
	}
	if (syscall(SYS_capset, &h, d) < 0) fail("caps", "capset");
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The app: PID 2. Drops privileges, then execs, searching PATH from the given env only. */
static void run_app(void) {
	sigset_t none;
	sigemptyset(&none);
	for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Keep only stdio and the exec pipe (close-on-exec) across the exec. */
	if (exec_pipe[1] > 3) syscall(SYS_close_range, 3, exec_pipe[1] - 1, 0);
	syscall(SYS_close_range, exec_pipe[1] + 1, ~0U, 0);
	if (setsid() < 0) fail("setsid", NULL);
	if (spec.cwd && chdir(spec.cwd) < 0) fail("chdir", spec.cwd);
	drop_caps_bounding();
	if (setgroups(spec.ngroups, spec.groups) < 0) fail("user", "setgroups");
	if (setresgid(spec.gid, spec.gid, spec.gid) < 0) fail("user", "setgid");
	if (setresuid(spec.uid, spec.uid, spec.uid) < 0) fail("user", "setuid");
	if (spec.uid == 0) limit_caps();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("prctl", "no_new_privs");

	char **envp = (char **)spec.env;
	spec.env[spec.nenv] = NULL;
	const char *file = spec.argv[0], *path = NULL;
	for (int i = 0; i < spec.nenv; i++) if (!strncmp(spec.env[i], "PATH=", 5)) path = spec.env[i] + 5;
	if (!path) path = DEFAULT_PATH;
	int err = ENOENT;
	send_msg(MSG_EXEC, 0, now_ns(), 0, NULL);
	if (strchr(file, '/')) {
		execve(file, spec.argv, envp);
		err = errno;
	} else {
		int saw_eacces = 0;
		for (const char *p = path; ; ) {
			const char *colon = strchrnul(p, ':');
			char full[4096];
			snprintf(full, sizeof full, "%.*s%s%s", (int)(colon - p), p, colon == p ? "" : "/", file);
			execve(full, spec.argv, envp);
			if (errno == EACCES) saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR) { err = errno; break; }
			if (!*colon) { err = saw_eacces ? EACCES : ENOENT; break; }
			p = colon + 1;
		}
	}
	errno = err;
	send_msg(MSG_ERROR, err, 0, 0, spec.argv[0]);
	_exit(err == ENOENT ? 127 : 126);
}

/* Supervisor -> init: "kill everything but yourself now" (init then cleans up and exits). */
#define SIG_KILLALL (SIGRTMIN + 2)

static void init_forward(int sig) {
	/* SIGTERM goes to everyone in the namespace; other signals to the app. */
	if (sig == SIGTERM) kill(-1, SIGTERM);
	else if (sig == SIG_KILLALL) kill(-1, SIGKILL);
	else if (child_pid > 0) kill(child_pid, sig);
}

/* Most bytes a spec on stdin may have (the whole launcher command line, NUL-separated). */
#define MAX_SPEC_BYTES (1 << 20)

/* --spec-stdin: read the rest of the command line (NUL-terminated arguments) until EOF. */
static void read_spec(void) {
	char *buf = malloc(MAX_SPEC_BYTES);
	size_t n = 0;
	if (!buf) fail("spec", "out of memory");
	for (;;) {
		ssize_t r = read(0, buf + n, MAX_SPEC_BYTES - n);
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
	if (!args) fail("spec", "out of memory");
	args[0] = "ukc-sandbox";
	char *p = buf;
	for (int k = 1; k <= count; k++) { args[k] = p; p += strlen(p) + 1; }
	/* What the supervisor or the cgroup join already used must come on the command line. */
	int ncg = spec.ncgroups, efd = spec.event_fd, grace = spec.grace_ms, rs = spec.remove_stubs, tr = spec.trace;
	parse_args(count + 1, args, 0);
	if (spec.ncgroups != ncg || spec.event_fd != efd || spec.grace_ms != grace || spec.remove_stubs != rs || spec.trace != tr)
		die_usage("--cgroup, --event-fd, --grace-ms, --remove-stubs and --trace belong on the command line");
	/* The app's stdin is /dev/null, as in the plain mode. */
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0 || dup2(nul, 0) < 0) fail("spec", "/dev/null");
	close(nul);
}

/* init: PID 1 of the new pid namespace. */
static int init_main(void *unused) {
	(void)unused;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int s = 1; s < NSIG; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL); /* drop the supervisor's handlers; mask stays full */
	if (spec.event_fd >= 0) close(spec.event_fd);
	close(exec_pipe[0]);
	close(status_pipe[0]);
	/* If the supervisor died before PDEATHSIG was set, nobody reads status_pipe any more. */
	struct pollfd pfd = { status_pipe[1], POLLOUT, 0 };
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR)) _exit(125);
	mark("init");

	join_cgroups();
	if (unshare(CLONE_NEWCGROUP) < 0) fail("unshare", "cgroup");
	mark("cgroup");
	if (spec.spec_stdin) {
		/* Pre-started: the slow part (joining the cgroups) is done; wait here for what to run. */
		in_init = 1;
		send_msg(MSG_READY, 0, 0, 0, NULL);
		read_spec();
		mark("spec");
		/* The mount namespace is copied now, so it sees the host's mounts as they are at start. */
		if (unshare(CLONE_NEWNS | (spec.new_netns ? CLONE_NEWNET : 0)) < 0) fail("unshare", "mount/net");
	}
	if (spec.netns) {
		int fd = open(spec.netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) fail("netns", spec.netns);
		close(fd);
	}
	if (spec.new_netns) lo_up();
	if (spec.hostname && sethostname(spec.hostname, strlen(spec.hostname)) < 0) fail("hostname", spec.hostname);
	mark("netns");

	/* Nothing we mount may leak back to the host, nor host mounts change under us. */
	do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	if (spec.nlower) {
		char opts[8192];
		int n = snprintf(opts, sizeof opts, "lowerdir=");
		for (int i = 0; i < spec.nlower; i++) n += snprintf(opts + n, sizeof opts - n, "%s%s", i ? ":" : "", spec.lower[i]);
		snprintf(opts + n, sizeof opts - n, ",upperdir=%s,workdir=%s", spec.upper, spec.work);
		do_mount("overlay", spec.rootfs, "overlay", 0, opts);
	} else {
		do_mount(spec.rootfs, spec.rootfs, NULL, MS_BIND | MS_REC, NULL); /* pivot_root needs a mount point */
	}
	mark("rootfs");
	/* Capture bind sources (host paths) as detached mounts before the host disappears. */
	for (int i = 0; i < spec.nbinds; i++) {
		spec.binds[i].fd = (int)syscall(SYS_open_tree, AT_FDCWD, spec.binds[i].src, OPEN_TREE_CLONE | O_CLOEXEC);
		if (spec.binds[i].fd < 0) fail("bind", spec.binds[i].src);
	}
	/* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves no host path. */
	if (chdir(spec.rootfs) < 0) fail("chdir", spec.rootfs);
	if (syscall(SYS_pivot_root, ".", ".") < 0) fail("pivot_root", spec.rootfs);
	if (umount2(".", MNT_DETACH) < 0) fail("umount", "old root");
	if (chdir("/") < 0) fail("chdir", "/");
	mark("pivot");

	if (spec.proc) {
		make_path("/proc", 0);
		note_mount("/proc");
		do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	}
	mark("proc");
	if (spec.dev) setup_dev();
	mark("dev");
	if (spec.proc) harden_proc();
	mark("harden");
	for (int i = 0; i < spec.ntmpfs; i++) {
		make_path(spec.tmpfs[i], 0);
		note_mount(spec.tmpfs[i]);
		do_mount("tmpfs", spec.tmpfs[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	}
	for (int i = 0; i < spec.nbinds; i++) {
		struct stat st;
		if (fstat(spec.binds[i].fd, &st) < 0) fail("bind", spec.binds[i].src);
		make_path(spec.binds[i].dst, !S_ISDIR(st.st_mode));
		note_mount(spec.binds[i].dst);
		if (syscall(SYS_move_mount, spec.binds[i].fd, "", AT_FDCWD, spec.binds[i].dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			fail("bind", spec.binds[i].dst);
		close(spec.binds[i].fd);
		if (spec.binds[i].ro) remount_ro(spec.binds[i].dst, MS_NOSUID | MS_NODEV);
	}
	if (spec.readonly_root) remount_ro("/", 0);
	mark("binds");

	/* Block signals until the app's pid is known, so forwarding cannot race the fork. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t app = fork();
	if (app < 0) fail("fork", NULL);
	if (app == 0) run_app();
	child_pid = app;
	close(exec_pipe[1]);
	/* Our command line names host paths; blank it so `ps` in the sandbox shows only "init". */
	char *arg_end = main_argv[main_argc - 1] + strlen(main_argv[main_argc - 1]);
	memset(main_argv[0], 0, (size_t)(arg_end - main_argv[0]));
	strcpy(main_argv[0], "init");
	struct sigaction sa = { .sa_handler = init_forward };
	sigemptyset(&sa.sa_mask);
	int fwd[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIG_KILLALL };
	for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) sigaction(fwd[i], &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, 0);
		if (p == app) {
			/* status[1]: 1 = stubs removed (or none asked), 0 = some remain. */
			int status[2] = { st, 1 };
			if (spec.remove_stubs) {
				kill(-1, SIGKILL); /* nothing may keep using the mount points */
				while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
				status[1] = remove_stubs();
			}
			ssize_t r = write(status_pipe[1], status, sizeof status);
			(void)r;
			_exit(0);
		}
		if (p < 0 && errno == ECHILD) _exit(0);
	}
}

/* ---- supervisor -------------------------------------------------------------- */

/* Stop phases: 0 running, 1 SIGTERM sent (timer = grace), 2 kill-all sent (timer = deadline for init). */
static volatile sig_atomic_t stop_phase = 0;

static void arm_timer_ms(int ms) {
	struct itimerval t = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
	if (ms <= 0) t.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &t, NULL);
}

static void sup_signal(int sig) {
	pid_t p = child_pid;
	if (p <= 0) return;
	if (sig == SIGALRM && stop_phase == 2) { kill(p, SIGKILL); return; } /* init did not finish: end it */
	if (sig == SIGUSR1 || sig == SIGALRM) {
		/* First ask init to kill the rest (so it can still clean up), then kill init itself. */
		if (stop_phase == 2) return;
		stop_phase = 2;
		kill(p, SIG_KILLALL);
		arm_timer_ms(2000);
		return;
	}
	if (stop_phase != 0) return;
	stop_phase = 1;
	kill(p, SIGTERM);
	arm_timer_ms(spec.grace_ms);
}

static void event(const char *fmt, ...) {
	if (spec.event_fd < 0) return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof buf) n = sizeof buf - 1;
	ssize_t r;
	do r = write(spec.event_fd, buf, (size_t)n); while (r < 0 && errno == EINTR);
}

/* Keep event text on one line. */
static void clean_text(char *s) { for (; *s; s++) if (*s == '\n' || *s == '\r') *s = ' '; }

int main(int argc, char **argv) {
	main_argc = argc;
	main_argv = argv;
	int64_t main_at = now_ns();
	for (int k = 1; k < argc; k++) if (!strcmp(argv[k], "--spec-stdin")) spec.spec_stdin = 1;
	parse_args(argc, argv, spec.spec_stdin);
	if (spec.trace) event("mark main %lld\n", (long long)main_at);
	signal(SIGPIPE, SIG_IGN);
	if (spec.event_fd >= 0 && fcntl(spec.event_fd, F_SETFD, FD_CLOEXEC) < 0) spec.event_fd = -1;
	if (pipe2(exec_pipe, O_CLOEXEC) < 0 || pipe2(status_pipe, O_CLOEXEC) < 0) { perror("pipe"); return 125; }

	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	struct sigaction sa = { .sa_handler = sup_signal };
	sigfillset(&sa.sa_mask);
	int handled[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGALRM };
	for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) sigaction(handled[i], &sa, NULL);

	/* With --spec-stdin, init unshares the mount (and net) namespace once the spec arrived. */
	int flags = CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
	if (!spec.spec_stdin) flags |= CLONE_NEWNS | (spec.new_netns ? CLONE_NEWNET : 0);
	/* The child runs on this stack until it forks; 256 KiB is plenty for init's few frames. */
	static char stack[256 * 1024] __attribute__((aligned(16)));
	if (spec.trace) event("mark clone %lld\n", (long long)now_ns());
	pid_t pid = clone(init_main, stack + sizeof stack, flags | SIGCHLD, NULL);
	if (pid < 0) {
		int e = errno;
		event("error clone %d %s\n", e, strerror(e));
		return 125;
	}
	child_pid = pid;
	close(exec_pipe[1]);
	close(status_pipe[1]);
	if (spec.spec_stdin) { int nul = open("/dev/null", O_RDONLY); if (nul >= 0) { dup2(nul, 0); close(nul); } } /* only init reads the spec */
	event("pid %d\n", pid);
	sigprocmask(SIG_SETMASK, &old, NULL);

	/* Read the exec pipe until EOF: EOF after an exec message means execve succeeded. */
	struct msg m;
	int64_t exec_at = 0;
	int failed = 0;
	for (;;) {
		ssize_t r = read(exec_pipe[0], &m, sizeof m);
		if (r < 0 && errno == EINTR) continue;
		if (r != (ssize_t)sizeof m) break;
		m.text[sizeof m.text - 1] = 0;
		clean_text(m.text);
		if (m.kind == MSG_EXEC) exec_at = m.a;
		else if (m.kind == MSG_READY) event("ready\n");
		else if (m.kind == MSG_MARK) event("mark %s %lld\n", m.text, (long long)m.a);
		else if (m.kind == MSG_STUB) event("stub %s %lld %lld\n", m.text, (long long)m.a, (long long)m.b);
		else if (m.kind == MSG_ERROR) {
			failed = 1;
			const char *stage = exec_at ? "exec" : "setup";
			event("error %s %d %s: %s\n", stage, m.err, strerror(m.err), m.text);
		}
	}
	if (exec_at && !failed) event("exec %lld\n", (long long)exec_at);

	int st = 0, app_st[2] = { 0, 0 };
	while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) { st = 0; break; }
	child_pid = 0;
	int have_app = 0;
	for (;;) {
		ssize_t r = read(status_pipe[0], app_st, sizeof app_st);
		if (r < 0 && errno == EINTR) continue;
		have_app = r == (ssize_t)sizeof app_st;
		break;
	}
	if (spec.remove_stubs) event(have_app && app_st[1] ? "cleanup ok\n" : "cleanup incomplete\n");
	/* Without the app's status, report how init itself ended (e.g. SIGKILL on a forced stop). */
	int s = have_app ? app_st[0] : st;
	if (WIFSIGNALED(s)) {
		event("exit signal %d\n", WTERMSIG(s));
		return 128 + WTERMSIG(s);
	}
	int code = WIFEXITED(s) ? WEXITSTATUS(s) : 125;
	event("exit code %d\n", code);
	return code;
}
