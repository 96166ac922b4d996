/*
 * main.c: the supervisor (host namespaces). May touch: its signals, the event
 * fd, the pipes to init, and nothing in the sandbox but signals to init.
 *
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
 * `--spec-fd N` (N > 3) is the same with the spec on fd N and stdin left to
 * the app: how every caller passes env and args (secrets) off the command line.
 *
 * The tenant boundary's options (a node's `micro` instances use all three):
 *   --userns-base N         the app in its own user namespace, 0..65535 -> N..N+65535, the
 *                           image's layers idmapped (userns.c); needs --upper-tmpfs-bytes
 *   --upper-tmpfs-bytes N   the overlay's writable layer on a tmpfs of N bytes (ENOSPC past it)
 *   --console-max-bytes N   command line only: the app's output through the supervisor, which keeps
 *                           its stdout file at most N bytes (console.c)
 *
 * The parts: see sandbox.h.
 */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

int exec_pipe[2] = { -1, -1 }, status_pipe[2] = { -1, -1 };
int main_argc;
char **main_argv;
volatile pid_t child_pid = 0;
int in_init;

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
	for (int k = 1; k < argc; k++) if (!strcmp(argv[k], "--spec-stdin") || !strcmp(argv[k], "--spec-fd")) spec.spec_stdin = 1;
	parse_args(argc, argv, spec.spec_stdin);
	if (spec.trace) event("mark main %lld\n", (long long)main_at);
	signal(SIGPIPE, SIG_IGN);
	/* The default fd 3 may simply not be open (no events wanted); a given one must be. */
	if (spec.event_fd >= 0 && fcntl(spec.event_fd, F_SETFD, FD_CLOEXEC) < 0) {
		if (event_fd_given) die_usage("--event-fd is not an open file descriptor");
		spec.event_fd = -1;
	}
	if (pipe2(exec_pipe, O_CLOEXEC) < 0 || pipe2(status_pipe, O_CLOEXEC) < 0) { perror("pipe"); return 125; }
	if (spec.console_max_bytes && pipe2(console_pipe, O_CLOEXEC) < 0) { perror("pipe"); return 125; }

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
	console_start();
	/* Only init reads the spec. */
	if (spec.spec_stdin && spec.spec_fd != 0) close(spec.spec_fd);
	else if (spec.spec_stdin) { int nul = open("/dev/null", O_RDONLY); if (nul >= 0) { dup2(nul, 0); close(nul); } }
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
	console_finish();
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
