/*
 * privs.c: what the app may do, set in the app process (PID 2) right before
 * execve: the capability bounding set, uid/gid and groups, the capabilities
 * root keeps, no_new_privs. Touches only the calling process's credentials.
 */
#include "sandbox.h"
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

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
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) fail("caps", "ambient");
}

void drop_privileges(void) {
	drop_caps_bounding();
	if (setgroups((size_t)spec.ngroups, spec.groups) < 0) fail("user", "setgroups");
	if (setresgid(spec.gid, spec.gid, spec.gid) < 0) fail("user", "setgid");
	if (setresuid(spec.uid, spec.uid, spec.uid) < 0) fail("user", "setuid");
	if (spec.uid == 0) limit_caps();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("prctl", "no_new_privs");
}
