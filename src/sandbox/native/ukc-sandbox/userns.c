/*
 * userns.c: the sandbox's user namespace (--userns-base N): uid and gid
 * 0..65535 inside map to N..N+65535 on the host, a range the node gives each
 * instance alone. Only the app enters it (setns right before exec); init and
 * the supervisor stay host root, so every namespace but the user one (mount,
 * pid, net, uts, ipc, cgroup) is owned by the host's user namespace and the
 * app's capabilities (those of root in its own namespace) act on none of them.
 *
 * How files keep the image's owners: the image's layers are idmapped mounts
 * (mount_setattr MOUNT_ATTR_IDMAP with this namespace) and the overlay is
 * mounted over them; on this node's kernel (6.18) erofs, ext4 (CPIO trees)
 * and tmpfs take an idmap, overlayfs itself does not (EINVAL), so the layers
 * are idmapped, not the overlay. A file the image gives uid 0 appears as N on
 * the host side of the overlay and as 0 inside. The writable tmpfs is not
 * idmapped: it lives only in memory and stores host ids (N + id), so the
 * overlay, mounted by host root, can make its work dir there (through an
 * idmapped upper host root's id 0 has no mapping: EOVERFLOW); its root
 * directory is chowned to N.
 *
 * May touch: a helper child (made to own the namespace, then killed), the
 * mount table of init's private mount namespace, /proc/sys/net/ipv4/
 * ip_unprivileged_port_start of the sandbox's netns (root inside may bind
 * ports below 1024, as without a user namespace).
 */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define USERNS_SIZE 65536

int userns_fd = -1;

static void write_file(const char *path, const char *text) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) fail("userns", path);
	ssize_t n = write(fd, text, strlen(text));
	if (n != (ssize_t)strlen(text)) fail("userns", path);
	close(fd);
}

/* A user namespace mapping 0..65535 to base..base+65535, held by an fd (its helper is gone). */
void userns_create(void) {
	int p[2], q[2];
	if (pipe2(p, O_CLOEXEC) < 0 || pipe2(q, O_CLOEXEC) < 0) fail("userns", "pipe");
	pid_t helper = fork();
	if (helper < 0) fail("userns", "fork");
	if (helper == 0) {
		close(p[0]);
		close(q[1]);
		/* The host /proc names pids of the host: our number there is what init must write to. */
		char self[32] = { 0 };
		int ok = unshare(CLONE_NEWUSER) == 0 && readlink("/proc/self", self, sizeof self - 1) > 0;
		ssize_t w = write(p[1], ok ? self : "", ok ? strlen(self) + 1 : 1);
		(void)w;
		char b;
		w = read(q[0], &b, 1); /* until init has opened our namespace */
		_exit(0);
	}
	close(p[1]);
	close(q[0]);
	char host_pid[32] = { 0 };
	ssize_t r;
	do r = read(p[0], host_pid, sizeof host_pid - 1); while (r < 0 && errno == EINTR);
	if (r <= 1) { errno = EPERM; fail("userns", "unshare"); }
	char path[64], map[64];
	if (fmt_checked(map, sizeof map, "0 %lu %d\n", spec.userns_base, USERNS_SIZE) < 0) fail("userns", "map");
	if (fmt_checked(path, sizeof path, "/proc/%s/uid_map", host_pid) < 0) fail("userns", "path");
	write_file(path, map);
	if (fmt_checked(path, sizeof path, "/proc/%s/gid_map", host_pid) < 0) fail("userns", "path");
	write_file(path, map);
	if (fmt_checked(path, sizeof path, "/proc/%s/ns/user", host_pid) < 0) fail("userns", "path");
	userns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (userns_fd < 0) fail("userns", "open");
	close(q[1]);
	close(p[0]);
	while (waitpid(helper, NULL, 0) < 0 && errno == EINTR) {}
}

/* Mounts `src` again at `dst`, idmapped through the sandbox's user namespace. */
void idmapped_bind(const char *src, const char *dst) {
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0) fail("idmap", src);
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID, .userns_fd = (uint64_t)userns_fd };
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) fail("idmap", src);
	if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0) fail("idmap", dst);
	close(fd);
}

/* In the sandbox's netns (init, before the pivot): root inside may bind low ports. */
void userns_allow_low_ports(void) {
	int fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
	if (fd < 0) fail("userns", "ip_unprivileged_port_start");
	if (write(fd, "0", 1) != 1) fail("userns", "ip_unprivileged_port_start");
	close(fd);
}

/* The app, right before dropping privileges: into the namespace (it was made for this sandbox only). */
void userns_enter(void) {
	if (userns_fd < 0) return;
	if (setns(userns_fd, CLONE_NEWUSER) < 0) fail("userns", "setns");
	close(userns_fd);
}
