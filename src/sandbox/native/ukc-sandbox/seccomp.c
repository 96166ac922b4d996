/*
 * seccomp.c: installs the default seccomp filter as the very last step before
 * execve (after no_new_privs). The profile is data in seccomp-profile.h; it is
 * compiled with libseccomp at build time (gen/seccomp-gen.c) into the BPF array
 * included here, so a start pays nothing for it. Touches only the calling
 * process's seccomp state.
 */
#include "sandbox.h"
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include "seccomp-bpf.gen.h"

/* From here on, denied calls fail with EPERM (clone3 with ENOSYS). */
void seccomp_install(void) {
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof seccomp_default_filter / sizeof seccomp_default_filter[0]),
		.filter = (struct sock_filter *)seccomp_default_filter,
	};
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) fail("seccomp", "install");
}
