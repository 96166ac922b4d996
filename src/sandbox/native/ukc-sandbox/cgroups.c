/*
 * cgroups.c: joins the cgroups named on the command line (v2 dirs or v1
 * controller dirs). Touches only `<dir>/cgroup.procs` of those dirs; runs in
 * init before anything else, so every later process is charged to them.
 */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Join each cgroup by writing "0" (= this process). */
void join_cgroups(void) {
	for (int i = 0; i < spec.ncgroups; i++) {
		char p[4096];
		if (fmt_checked(p, sizeof p, "%s/cgroup.procs", spec.cgroups[i]) < 0) fail("cgroup", "path too long");
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0) fail("cgroup", spec.cgroups[i]);
		if (write(fd, "0", 1) != 1) fail("cgroup", spec.cgroups[i]);
		close(fd);
	}
}
