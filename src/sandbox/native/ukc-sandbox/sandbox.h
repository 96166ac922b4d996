/*
 * sandbox.h: what the parts of ukc-sandbox share. The launcher is split by
 * concern (as bubblewrap is); each .c file says at its top what it may touch:
 *
 *   main.c     the supervisor: signals, events, waiting (host namespaces)
 *   args.c     the command line and the spec read from a pipe (no side effects but exit on bad input)
 *   init.c     init (PID 1 inside) and the app (PID 2) up to execve
 *   mounts.c   the new root: overlay, pivot_root, /proc, /dev, tmpfs, binds, stubs
 *   cgroups.c  joining the cgroups given on the command line
 *   console.c  the capped console: the app's output through a pipe into a file that never exceeds its cap
 *   userns.c   the app's user namespace and the idmapped layers that keep the image's owners
 *   privs.c    capabilities, uid/gid, no_new_privs
 *   seccomp.c  the default seccomp filter (its profile is data in seccomp-profile.h,
 *              compiled at build time by gen/seccomp-gen.c)
 *   utils.c    messages to the supervisor, checked strings, numbers and allocations
 *
 * The protocol on --event-fd is documented at the top of main.c.
 */
#ifndef UKC_SANDBOX_H
#define UKC_SANDBOX_H
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAX_LIST 64
#define MAX_ENV 1024
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* Most bytes a spec read from a pipe may have (the whole launcher command line, NUL-separated). */
#define MAX_SPEC_BYTES (1 << 20)

struct bind { const char *src, *dst; int ro; int fd; };

struct spec {
	const char *rootfs, *upper, *work, *hostname, *netns, *cwd;
	const char *lower[MAX_LIST]; int nlower;
	const char *cgroups[MAX_LIST]; int ncgroups;
	const char *env[MAX_ENV + 1]; int nenv; /* +1 for the NULL terminator */
	const char *tmpfs[MAX_LIST]; int ntmpfs;
	struct bind binds[MAX_LIST]; int nbinds;
	gid_t groups[MAX_LIST]; int ngroups;
	uid_t uid; gid_t gid;
	int new_netns, readonly_root, proc, dev, devpts, remove_stubs, event_fd, grace_ms, trace, spec_stdin;
	int spec_fd; /* with spec_stdin: where the spec comes from (0 = stdin, or --spec-fd N) */
	unsigned long upper_tmpfs_bytes; /* > 0: the overlay's upper and work dirs live on a tmpfs of this size */
	unsigned long userns_base; /* > 0: the app runs in its own user namespace, 0..65535 -> this..+65535 */
	unsigned long console_max_bytes; /* > 0: stdout/stderr go through the supervisor, which caps the file at this */
	char **argv;
};
extern struct spec spec;

/* Messages from init/app to the supervisor over the exec pipe (atomic: < PIPE_BUF). */
enum { MSG_EXEC = 1, MSG_ERROR, MSG_STUB, MSG_MARK, MSG_READY };
struct msg { int32_t kind, err; int64_t a, b; char text[256]; };

extern int exec_pipe[2], status_pipe[2], console_pipe[2];
extern int main_argc;
extern char **main_argv;
extern volatile pid_t child_pid; /* supervisor: init's host pid; init: the app's pid */
extern int in_init;              /* set in init: usage errors in a spec read from stdin become events */
extern int event_fd_given;       /* --event-fd was on the command line (then it must be open) */

/* Supervisor -> init: "kill everything but yourself now" (init then cleans up and exits). */
#define SIG_KILLALL (SIGRTMIN + 2)

/* utils.c */
int64_t now_ns(void);
void send_msg(int kind, int err, int64_t a, int64_t b, const char *text);
void mark(const char *stage);
__attribute__((noreturn)) void fail(const char *stage, const char *what);
__attribute__((noreturn)) void die_usage(const char *m);
void *xmalloc(size_t n);
char *xstrdup(const char *s);
/* A bounded string under construction: appends fail as a whole once the buffer would overflow. */
struct strbuf { char *buf; size_t cap, len; int truncated; };
void sb_init(struct strbuf *sb, char *buf, size_t cap);
void sb_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats into buf; returns 0, or -1 with errno = ENAMETOOLONG when it did not fit. */
int fmt_checked(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Decimal number in [0, max]; returns 0, or -1 (errno EINVAL/ERANGE) on garbage or out of range. */
int parse_ulong(const char *s, unsigned long max, unsigned long *out);

/* args.c */
void parse_args(int argc, char **argv, int partial);
void read_spec(void);

/* console.c */
void console_start(void);
void console_finish(void);

/* userns.c */
extern int userns_fd;
void userns_create(void);
void idmapped_bind(const char *src, const char *dst);
void userns_allow_low_ports(void);
void userns_enter(void);

/* cgroups.c */
void join_cgroups(void);

/* mounts.c */
void setup_root(void);
void capture_binds(void);
void enter_root(void);
void setup_mounts_inside(void);
int remove_stubs(void);

/* privs.c */
void drop_privileges(void);

/* seccomp.c */
void seccomp_install(void);

/* init.c */
int init_main(void *unused);

#endif
