/*
 * seccomp-profile.h: the default seccomp profile of every sandbox, as data.
 * (Only data here; seccomp.c turns it into a filter with libseccomp.)
 *
 * Model: the default profile container engines ship (moby's
 * profiles/seccomp/default.json, the same one podman and containerd use), for
 * x86_64, for an app without CAP_SYS_ADMIN, with a few calls taken out:
 *
 *  - Default action: the call fails with EPERM (never a kill: a denied call is an
 *    error the program can handle, and nothing dies unexplained). Calls of other
 *    architectures (32-bit int 0x80, x32) fail the same way.
 *  - Allowed: the names in `seccomp_allow` below, unconditionally.
 *  - Allowed with argument checks (`seccomp_allow_if`): clone without any
 *    namespace flag (no nested user namespace, nor any other), socket of every
 *    family but AF_VSOCK, personality only with the values programs use
 *    (0 = Linux, 8 = UNAME26, 0x20000 = ADDR_NO_RANDOMIZE, 0x20008, 0xffffffff = query).
 *  - clone3 fails with ENOSYS, not EPERM: its flags are in memory a filter cannot
 *    read, and ENOSYS makes the C library fall back to clone, which is checked.
 *  - Denied (not listed), among others: add_key, request_key, keyctl (the kernel
 *    keyring is not namespaced by a mount or pid namespace); unshare, setns and
 *    clone with namespace flags (no nested user namespaces); io_uring_setup,
 *    io_uring_enter, io_uring_register (moby allows them; we do not: a large, often
 *    exploited surface); bpf; perf_event_open; userfaultfd; kexec_load,
 *    kexec_file_load; init_module, finit_module, delete_module; mount, umount2,
 *    pivot_root, the new mount API (fsopen, fsmount, fspick, fsconfig, move_mount,
 *    open_tree, mount_setattr); swapon, swapoff; reboot; settimeofday,
 *    clock_settime, clock_adjtime, adjtimex; open_by_handle_at ("shocker");
 *    acct, quotactl, syslog, iopl, ioperm, lookup_dcookie, vhangup, kcmp, pidfd_getfd.
 *  - Kept as in container engines: chroot (CAP_SYS_CHROOT stays), ptrace and
 *    process_vm_readv/writev (the pid namespace confines them; moby allows them on
 *    kernels >= 4.8).
 *
 * Calls newer than the libseccomp the launcher is built with are given by number
 * (x86_64), so that programs built for newer kernels get them instead of EPERM
 * (which, unlike ENOSYS, makes the C library give up instead of falling back).
 * To change the profile: edit the tables, rebuild (npm run build); the tests in
 * test/e2e/sandbox-seccomp.test.ts check the denied calls and `Seccomp: 2`.
 */
#ifndef UKC_SECCOMP_PROFILE_H
#define UKC_SECCOMP_PROFILE_H

/* A syscall by name, with its x86_64 number for names this libseccomp may not know (-1: none needed). */
struct seccomp_name { const char *name; int nr; };

static const struct seccomp_name seccomp_allow[] = {
	{ "accept", -1 }, { "accept4", -1 }, { "access", -1 }, { "alarm", -1 }, { "arch_prctl", -1 }, { "bind", -1 },
	{ "brk", -1 }, { "capget", -1 }, { "capset", -1 }, { "chdir", -1 }, { "chmod", -1 }, { "chown", -1 },
	{ "chroot", -1 }, { "clock_getres", -1 }, { "clock_gettime", -1 }, { "clock_nanosleep", -1 }, { "close", -1 },
	{ "close_range", -1 }, { "connect", -1 }, { "copy_file_range", -1 }, { "creat", -1 }, { "dup", -1 },
	{ "dup2", -1 }, { "dup3", -1 }, { "epoll_create", -1 }, { "epoll_create1", -1 }, { "epoll_ctl", -1 },
	{ "epoll_ctl_old", -1 }, { "epoll_pwait", -1 }, { "epoll_pwait2", -1 }, { "epoll_wait", -1 },
	{ "epoll_wait_old", -1 }, { "eventfd", -1 }, { "eventfd2", -1 }, { "execve", -1 }, { "execveat", -1 },
	{ "exit", -1 }, { "exit_group", -1 }, { "faccessat", -1 }, { "faccessat2", -1 }, { "fadvise64", -1 },
	{ "fallocate", -1 }, { "fanotify_mark", -1 }, { "fchdir", -1 }, { "fchmod", -1 }, { "fchmodat", -1 },
	{ "fchown", -1 }, { "fchownat", -1 }, { "fcntl", -1 }, { "fdatasync", -1 }, { "fgetxattr", -1 },
	{ "flistxattr", -1 }, { "flock", -1 }, { "fork", -1 }, { "fremovexattr", -1 }, { "fsetxattr", -1 },
	{ "fstat", -1 }, { "fstatfs", -1 }, { "fsync", -1 }, { "ftruncate", -1 }, { "futex", -1 },
	{ "futex_waitv", 449 }, { "futimesat", -1 }, { "getcpu", -1 }, { "getcwd", -1 }, { "getdents", -1 },
	{ "getdents64", -1 }, { "getegid", -1 }, { "geteuid", -1 }, { "getgid", -1 }, { "getgroups", -1 },
	{ "getitimer", -1 }, { "getpeername", -1 }, { "getpgid", -1 }, { "getpgrp", -1 }, { "getpid", -1 },
	{ "getppid", -1 }, { "getpriority", -1 }, { "getrandom", -1 }, { "getresgid", -1 }, { "getresuid", -1 },
	{ "getrlimit", -1 }, { "get_robust_list", -1 }, { "getrusage", -1 }, { "getsid", -1 }, { "getsockname", -1 },
	{ "getsockopt", -1 }, { "get_thread_area", -1 }, { "gettid", -1 }, { "gettimeofday", -1 }, { "getuid", -1 },
	{ "getxattr", -1 }, { "inotify_add_watch", -1 }, { "inotify_init", -1 }, { "inotify_init1", -1 },
	{ "inotify_rm_watch", -1 }, { "io_cancel", -1 }, { "ioctl", -1 }, { "io_destroy", -1 }, { "io_getevents", -1 },
	{ "io_pgetevents", -1 }, { "ioprio_get", -1 }, { "ioprio_set", -1 }, { "io_setup", -1 }, { "io_submit", -1 },
	{ "kill", -1 }, { "landlock_add_rule", -1 }, { "landlock_create_ruleset", -1 },
	{ "landlock_restrict_self", -1 }, { "lchown", -1 }, { "lgetxattr", -1 }, { "link", -1 }, { "linkat", -1 },
	{ "listen", -1 }, { "listxattr", -1 }, { "llistxattr", -1 }, { "lremovexattr", -1 }, { "lseek", -1 },
	{ "lsetxattr", -1 }, { "lstat", -1 }, { "madvise", -1 }, { "membarrier", -1 }, { "memfd_create", -1 },
	{ "memfd_secret", -1 }, { "mincore", -1 }, { "mkdir", -1 }, { "mkdirat", -1 }, { "mknod", -1 },
	{ "mknodat", -1 }, { "mlock", -1 }, { "mlock2", -1 }, { "mlockall", -1 }, { "mmap", -1 },
	{ "modify_ldt", -1 }, { "mprotect", -1 }, { "mq_getsetattr", -1 }, { "mq_notify", -1 }, { "mq_open", -1 },
	{ "mq_timedreceive", -1 }, { "mq_timedsend", -1 }, { "mq_unlink", -1 }, { "mremap", -1 }, { "msgctl", -1 },
	{ "msgget", -1 }, { "msgrcv", -1 }, { "msgsnd", -1 }, { "msync", -1 }, { "munlock", -1 },
	{ "munlockall", -1 }, { "munmap", -1 }, { "name_to_handle_at", -1 }, { "nanosleep", -1 },
	{ "newfstatat", -1 }, { "open", -1 }, { "openat", -1 }, { "openat2", -1 }, { "pause", -1 },
	{ "pidfd_open", -1 }, { "pidfd_send_signal", -1 }, { "pipe", -1 }, { "pipe2", -1 }, { "pkey_alloc", -1 },
	{ "pkey_free", -1 }, { "pkey_mprotect", -1 }, { "poll", -1 }, { "ppoll", -1 }, { "prctl", -1 },
	{ "pread64", -1 }, { "preadv", -1 }, { "preadv2", -1 }, { "prlimit64", -1 }, { "process_mrelease", 448 },
	{ "process_vm_readv", -1 }, { "process_vm_writev", -1 }, { "pselect6", -1 }, { "ptrace", -1 },
	{ "pwrite64", -1 }, { "pwritev", -1 }, { "pwritev2", -1 }, { "read", -1 }, { "readahead", -1 },
	{ "readlink", -1 }, { "readlinkat", -1 }, { "readv", -1 }, { "recvfrom", -1 }, { "recvmmsg", -1 },
	{ "recvmsg", -1 }, { "remap_file_pages", -1 }, { "removexattr", -1 }, { "rename", -1 }, { "renameat", -1 },
	{ "renameat2", -1 }, { "restart_syscall", -1 }, { "rmdir", -1 }, { "rseq", -1 }, { "rt_sigaction", -1 },
	{ "rt_sigpending", -1 }, { "rt_sigprocmask", -1 }, { "rt_sigqueueinfo", -1 }, { "rt_sigreturn", -1 },
	{ "rt_sigsuspend", -1 }, { "rt_sigtimedwait", -1 }, { "rt_tgsigqueueinfo", -1 }, { "sched_getaffinity", -1 },
	{ "sched_getattr", -1 }, { "sched_getparam", -1 }, { "sched_get_priority_max", -1 },
	{ "sched_get_priority_min", -1 }, { "sched_getscheduler", -1 }, { "sched_rr_get_interval", -1 },
	{ "sched_setaffinity", -1 }, { "sched_setattr", -1 }, { "sched_setparam", -1 }, { "sched_setscheduler", -1 },
	{ "sched_yield", -1 }, { "seccomp", -1 }, { "select", -1 }, { "semctl", -1 }, { "semget", -1 },
	{ "semop", -1 }, { "semtimedop", -1 }, { "sendfile", -1 }, { "sendmmsg", -1 }, { "sendmsg", -1 },
	{ "sendto", -1 }, { "setfsgid", -1 }, { "setfsuid", -1 }, { "setgid", -1 }, { "setgroups", -1 },
	{ "setitimer", -1 }, { "setpgid", -1 }, { "setpriority", -1 }, { "setregid", -1 }, { "setresgid", -1 },
	{ "setresuid", -1 }, { "setreuid", -1 }, { "setrlimit", -1 }, { "set_robust_list", -1 }, { "setsid", -1 },
	{ "setsockopt", -1 }, { "set_thread_area", -1 }, { "set_tid_address", -1 }, { "setuid", -1 },
	{ "setxattr", -1 }, { "shmat", -1 }, { "shmctl", -1 }, { "shmdt", -1 }, { "shmget", -1 },
	{ "shutdown", -1 }, { "sigaltstack", -1 }, { "signalfd", -1 }, { "signalfd4", -1 }, { "socketpair", -1 },
	{ "splice", -1 }, { "stat", -1 }, { "statfs", -1 }, { "statx", -1 }, { "symlink", -1 }, { "symlinkat", -1 },
	{ "sync", -1 }, { "sync_file_range", -1 }, { "syncfs", -1 }, { "sysinfo", -1 }, { "tee", -1 },
	{ "tgkill", -1 }, { "time", -1 }, { "timer_create", -1 }, { "timer_delete", -1 },
	{ "timer_getoverrun", -1 }, { "timer_gettime", -1 }, { "timer_settime", -1 }, { "timerfd_create", -1 },
	{ "timerfd_gettime", -1 }, { "timerfd_settime", -1 }, { "times", -1 }, { "tkill", -1 }, { "truncate", -1 },
	{ "umask", -1 }, { "uname", -1 }, { "unlink", -1 }, { "unlinkat", -1 }, { "utime", -1 },
	{ "utimensat", -1 }, { "utimes", -1 }, { "vfork", -1 }, { "vmsplice", -1 }, { "wait4", -1 },
	{ "waitid", -1 }, { "write", -1 }, { "writev", -1 },
	/* Newer than libseccomp 2.5.4 (by number on x86_64). */
	{ "cachestat", 451 }, { "fchmodat2", 452 }, { "map_shadow_stack", 453 }, { "futex_wake", 454 },
	{ "futex_wait", 455 }, { "futex_requeue", 456 }, { "mseal", 462 }, { "setxattrat", 463 },
	{ "getxattrat", 464 }, { "listxattrat", 465 }, { "removexattrat", 466 },
};

/* Allowed only when argument `arg` compares to `value` (under `mask` for SCMP_CMP_MASKED_EQ). */
enum seccomp_op { OP_EQ, OP_NE, OP_MASKED_EQ };
struct seccomp_cond { const char *name; unsigned arg; enum seccomp_op op; unsigned long long mask, value; };

/* CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET (moby's 2114060288). */
#define NAMESPACE_FLAGS 0x7E020000ULL

static const struct seccomp_cond seccomp_allow_if[] = {
	{ "clone", 0, OP_MASKED_EQ, NAMESPACE_FLAGS, 0 },
	{ "socket", 0, OP_NE, 0, 40 /* AF_VSOCK */ },
	{ "personality", 0, OP_EQ, 0, 0x0 },
	{ "personality", 0, OP_EQ, 0, 0x8 },
	{ "personality", 0, OP_EQ, 0, 0x20000 },
	{ "personality", 0, OP_EQ, 0, 0x20008 },
	{ "personality", 0, OP_EQ, 0, 0xffffffff },
};

/* Calls that fail with ENOSYS instead of EPERM (see clone3 above). */
static const char *const seccomp_enosys[] = { "clone3" };

#endif
