/*
 * console.c: the capped console (--console-max-bytes N). Without it the app
 * writes straight into the supervisor's stdout (the node's console file), and
 * nothing bounds that file while the node is down. With it, init points the
 * app's stdout and stderr at a pipe, and a thread of the supervisor copies the
 * pipe into stdout: once a write would take a regular file past N bytes, the
 * file is cut to 0 first (the reader sees the size shrink and starts over), so
 * the file never exceeds N, whoever reads it or not. A chunk larger than N
 * keeps only its last N bytes.
 *
 * May touch: the pipe, fd 1 of the supervisor. The thread is started with every
 * signal blocked (signals stay the main thread's) and joined before the exit
 * event, so the last output is in the file before the node hears of the exit.
 */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

int console_pipe[2] = { -1, -1 };
static pthread_t copier;
static int copying;

static void write_all(const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) return; /* the file is gone or full: output is dropped, the app goes on */
		p += w;
		n -= (size_t)w;
	}
}

static void *copy_console(void *unused) {
	(void)unused;
	static char buf[65536];
	size_t cap = spec.console_max_bytes;
	for (;;) {
		ssize_t r = read(console_pipe[0], buf, sizeof buf);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) break;
		const char *p = buf;
		size_t n = (size_t)r;
		if (n > cap) { p += n - cap; n = cap; }
		struct stat st;
		if (fstat(1, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size + n > cap) {
			if (ftruncate(1, 0) == 0) lseek(1, 0, SEEK_SET);
		}
		write_all(p, n);
	}
	return NULL;
}

/* Supervisor, after clone (signals still all blocked): keep the read end, copy in a thread. */
void console_start(void) {
	if (console_pipe[0] < 0) return;
	close(console_pipe[1]);
	console_pipe[1] = -1;
	copying = pthread_create(&copier, NULL, copy_console, NULL) == 0;
	if (!copying) { close(console_pipe[0]); console_pipe[0] = -1; } /* the app then gets EPIPE: no unbounded fallback */
}

/* Supervisor, once init has exited (every writer is gone): wait for the last bytes. */
void console_finish(void) {
	if (copying) pthread_join(copier, NULL);
	copying = 0;
}
