/*
 * init.c: init (PID 1 of the new pid namespace; same binary, no exec) and the
 * app (PID 2, execve of the user's argv). init may touch its own namespaces
 * (cgroup, mount, net, uts) and reaps everything inside; it writes to the
 * supervisor only through the exec and status pipes. The app drops its
 * privileges (privs.c) and execs, searching PATH from the given env only.
 */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_app(void) {
	userns_enter(); /* first: the fds below are closed next */
	sigset_t none;
	sigemptyset(&none);
	for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Keep only stdio and the exec pipe (close-on-exec) across the exec. */
	if (exec_pipe[1] > 3) syscall(SYS_close_range, 3, exec_pipe[1] - 1, 0);
	syscall(SYS_close_range, exec_pipe[1] + 1, ~0U, 0);
	if (setsid() < 0) fail("setsid", NULL);
	if (spec.cwd && chdir(spec.cwd) < 0) fail("chdir", spec.cwd);
	drop_privileges();

	char **envp = (char **)spec.env;
	spec.env[spec.nenv] = NULL;
	const char *file = spec.argv[0], *path = NULL;
	for (int i = 0; i < spec.nenv; i++) if (!strncmp(spec.env[i], "PATH=", 5)) path = spec.env[i] + 5;
	if (!path) path = DEFAULT_PATH;
	int err = ENOENT;
	seccomp_install();
	send_msg(MSG_EXEC, 0, now_ns(), 0, NULL);
	if (strchr(file, '/')) {
		execve(file, spec.argv, envp);
		err = errno;
	} else {
		int saw_eacces = 0;
		for (const char *p = path; ; ) {
			const char *colon = strchrnul(p, ':');
			char full[4096];
			/* A PATH entry too long for a path is skipped, as execvp does. */
			if (fmt_checked(full, sizeof full, "%.*s%s%s", (int)(colon - p), p, colon == p ? "" : "/", file) == 0) {
				execve(full, spec.argv, envp);
				if (errno == EACCES) saw_eacces = 1;
				else if (errno != ENOENT && errno != ENOTDIR) { err = errno; break; }
			}
			if (!*colon) { err = saw_eacces ? EACCES : ENOENT; break; }
			p = colon + 1;
		}
	}
	errno = err;
	send_msg(MSG_ERROR, err, 0, 0, spec.argv[0]);
	_exit(err == ENOENT ? 127 : 126);
}

static void init_forward(int sig) {
	/* SIGTERM goes to everyone in the namespace; other signals to the app. */
	if (sig == SIGTERM) kill(-1, SIGTERM);
	else if (sig == SIG_KILLALL) kill(-1, SIGKILL);
	else if (child_pid > 0) kill(child_pid, sig);
}

static void lo_up(void) {
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) fail("network", "lo");
	struct ifreq ifr = { 0 };
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail("network", "lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("network", "lo up");
	close(s);
}

/* Our command line names host paths; blank it so `ps` in the sandbox shows only "init". */
static void blank_cmdline(void) {
	char *arg_end = main_argv[main_argc - 1] + strlen(main_argv[main_argc - 1]);
	size_t room = (size_t)(arg_end - main_argv[0]);
	memset(main_argv[0], 0, room);
	if (room >= 4) memcpy(main_argv[0], "init", 4);
}

int init_main(void *unused) {
	(void)unused;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int s = 1; s < NSIG; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL); /* drop the supervisor's handlers; mask stays full */
	if (spec.event_fd >= 0) close(spec.event_fd);
	close(exec_pipe[0]);
	close(status_pipe[0]);
	if (console_pipe[1] >= 0) {
		/* The app's output goes through the supervisor's capped copy (console.c). */
		if (dup2(console_pipe[1], 1) < 0 || dup2(console_pipe[1], 2) < 0) _exit(125);
		close(console_pipe[0]);
		close(console_pipe[1]);
	}
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
	if (spec.userns_base) {
		userns_create();
		if (spec.netns || spec.new_netns) userns_allow_low_ports();
		mark("userns");
	}

	setup_root();
	mark("rootfs");
	capture_binds();
	enter_root();
	mark("pivot");
	setup_mounts_inside();

	/* Block signals until the app's pid is known, so forwarding cannot race the fork. */
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	pid_t app = fork();
	if (app < 0) fail("fork", NULL);
	if (app == 0) run_app();
	child_pid = app;
	close(exec_pipe[1]);
	blank_cmdline();
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
