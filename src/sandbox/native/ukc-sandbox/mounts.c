/*
 * mounts.c: the sandbox's root, in init's private mount namespace only.
 * May touch: the mount table of that namespace (overlay or bind of --rootfs,
 * pivot_root, /proc, /dev, tmpfs, binds), and — inside the new root only —
 * the mount points it creates (reported as stubs, removed with --remove-stubs).
 *
 * Every layer is nodev,nosuid: the root (overlay or bind), binds and tmpfs;
 * only /dev (our own tmpfs of standard nodes) allows device files, and the
 * node's device cgroup decides which of them open.
 *
 * Mount targets are created after pivot_root, so a hostile rootfs with
 * symlinks (e.g. /etc/resolv.conf -> /etc/shadow) can only point at files
 * inside itself. Bind sources are host paths captured with open_tree() before
 * the pivot.
 */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

/* What init created or mounted, so --remove-stubs can undo it after the app exits. */
struct stub { char path[512]; struct timespec parent_atime, parent_mtime, parent_mtime_after; int is_dir; };
static struct stub stubs[MAX_LIST];
static int nstubs;
static const char *mounted[MAX_LIST + 8];
static int nmounted;

static void note_mount(const char *dst) { if (nmounted < (int)(sizeof mounted / sizeof mounted[0])) mounted[nmounted++] = dst; }

/* `path` fits in `out` (callers check): both are buffers of the same size. */
static void parent_of(const char *path, char *out, size_t n) {
	if (fmt_checked(out, n, "%s", path) < 0) fail("mountpoint", "path too long");
	char *slash = strrchr(out, '/');
	if (!slash) { out[0] = 0; return; }
	if (slash == out) slash[1] = 0; else *slash = 0;
}

/* Unmount what we mounted, then remove the mount points we created (newest first), but only
 * while they are still empty; a parent's times are restored only if nobody else changed it. */
int remove_stubs(void) {
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
	if (path[0] != '/') { errno = EINVAL; fail("mountpoint", "path is relative"); }
	if (fmt_checked(buf, sizeof buf, "%s", path) < 0) fail("mountpoint", "path too long");
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
			memcpy(st->path, buf, sizeof st->path); /* same size, NUL-terminated */
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
		if (fmt_checked(p, sizeof p, "/dev/%s", nodes[i].name) < 0) fail("mknod", nodes[i].name);
		if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0) fail("mknod", p);
	}
	umask(old);
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
		if (symlink(links[i][0], links[i][1]) < 0) fail("symlink", links[i][1]);
	/* Root inside owns its /dev (as it would without a user namespace); the nodes stay host root's, 0666. */
	if (spec.userns_base && chown("/dev", (uid_t)spec.userns_base, (gid_t)spec.userns_base) < 0) fail("chown", "/dev");
	if (mkdir("/dev/shm", 01777) < 0 || chmod("/dev/shm", 01777) < 0) fail("mkdir", "/dev/shm");
	do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
	if (mkdir("/dev/pts", 0755) < 0) fail("mkdir", "/dev/pts");
	if (spec.devpts)
		do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
}

/* The overlay's option string; the mount fails cleanly (ENAMETOOLONG) rather than overflowing. */
static void mount_overlay(void) {
	char opts[8192];
	struct strbuf sb;
	sb_init(&sb, opts, sizeof opts);
	const char *upper = spec.upper, *work = spec.work;
	char up[4096], wk[4096];
	if (spec.upper_tmpfs_bytes) {
		/* The writable layer in memory (charged to the sandbox's memory cgroup), capped: a write past it is ENOSPC. */
		char data[64];
		if (fmt_checked(data, sizeof data, "size=%lu,mode=0755", spec.upper_tmpfs_bytes) < 0) fail("mount", "tmpfs size");
		do_mount("tmpfs", spec.upper, "tmpfs", MS_NODEV | MS_NOSUID, data);
		if (fmt_checked(up, sizeof up, "%s/upper", spec.upper) < 0 || fmt_checked(wk, sizeof wk, "%s/work", spec.upper) < 0) fail("mount", "upper path too long");
		if (mkdir(up, 0755) < 0 || mkdir(wk, 0700) < 0) fail("mkdir", "upper");
		upper = up;
		work = wk;
	}
	/* With a user namespace, each lower (the image's own ids on disk) is idmapped at <tmpfs>/lowerN; the
	 * tmpfs upper is not (it keeps host ids, so the overlay, mounted by host root, can make its work dir),
	 * and its root belongs to root inside. */
	static char lowers[MAX_LIST][4096];
	if (spec.userns_base) {
		for (int i = 0; i < spec.nlower; i++) {
			if (fmt_checked(lowers[i], sizeof lowers[i], "%s/lower%d", spec.upper, i) < 0) fail("mount", "lower path too long");
			if (mkdir(lowers[i], 0700) < 0) fail("mkdir", "lower");
			idmapped_bind(spec.lower[i], lowers[i]);
		}
		if (chown(upper, (uid_t)spec.userns_base, (gid_t)spec.userns_base) < 0) fail("chown", "upper");
	}
	sb_addf(&sb, "lowerdir=");
	const char *target = spec.rootfs;
	char target_fd[64];
	int cwd = -1, rootfd = -1;
	if (spec.userns_base) {
		/* Every layer is inside the tmpfs: named relative to it, so the instance's mountinfo shows no host path
		 * (the target, a host path too, is reached through an fd opened before the chdir). */
		for (int i = 0; i < spec.nlower; i++) sb_addf(&sb, "%slower%d", i ? ":" : "", i);
		sb_addf(&sb, ",upperdir=upper,workdir=work");
		cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		rootfd = open(spec.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cwd < 0 || rootfd < 0 || fmt_checked(target_fd, sizeof target_fd, "/proc/self/fd/%d", rootfd) < 0) fail("open", spec.rootfs);
		target = target_fd;
		if (chdir(spec.upper) < 0) fail("chdir", spec.upper);
	} else {
		for (int i = 0; i < spec.nlower; i++) sb_addf(&sb, "%s%s", i ? ":" : "", spec.lower[i]);
		sb_addf(&sb, ",upperdir=%s,workdir=%s", upper, work);
	}
	if (sb.truncated) { errno = ENAMETOOLONG; fail("mount", "overlay options too long"); }
	if (mount("overlay", target, "overlay", MS_NODEV | MS_NOSUID, opts) < 0) fail("mount", spec.rootfs);
	if (cwd >= 0) {
		if (fchdir(cwd) < 0) fail("chdir", "back");
		close(cwd);
		close(rootfd);
	}
}

/* Makes the namespace private, then mounts the root (overlay, or a bind so pivot_root has a mount point). */
void setup_root(void) {
	/* Nothing we mount may leak back to the host, nor host mounts change under us. */
	do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	if (spec.nlower) mount_overlay();
	else {
		do_mount(spec.rootfs, spec.rootfs, NULL, MS_BIND | MS_REC, NULL);
		do_mount(NULL, spec.rootfs, NULL, MS_REMOUNT | MS_BIND | MS_NODEV | MS_NOSUID, NULL);
	}
}

/* Capture bind sources (host paths) as detached mounts before the host disappears. */
void capture_binds(void) {
	for (int i = 0; i < spec.nbinds; i++) {
		spec.binds[i].fd = (int)syscall(SYS_open_tree, AT_FDCWD, spec.binds[i].src, OPEN_TREE_CLONE | O_CLOEXEC);
		if (spec.binds[i].fd < 0) fail("bind", spec.binds[i].src);
	}
}

/* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves no host path. */
void enter_root(void) {
	if (chdir(spec.rootfs) < 0) fail("chdir", spec.rootfs);
	if (syscall(SYS_pivot_root, ".", ".") < 0) fail("pivot_root", spec.rootfs);
	if (umount2(".", MNT_DETACH) < 0) fail("umount", "old root");
	if (chdir("/") < 0) fail("chdir", "/");
}

/* Everything mounted inside the new root: /proc, /dev, tmpfs, binds, then the root read-only if asked. */
void setup_mounts_inside(void) {
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
		else do_mount(NULL, spec.binds[i].dst, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, NULL);
	}
	if (spec.readonly_root) remount_ro("/", MS_NODEV | MS_NOSUID);
	mark("binds");
}
