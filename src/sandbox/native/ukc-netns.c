/*
 * ukc-netns: builds and removes instance network namespaces over rtnetlink,
 * many per process. The node keeps one running and feeds it requests, so a
 * start that finds the netns pool empty costs a few syscalls instead of three
 * `ip` processes (why this exists: those processes, on a busy 2-core node,
 * made 50 simultaneous starts wait ~300 ms each for their network).
 *
 * Protocol: one request per line on stdin, one reply per request line on
 * stdout, in the same order, flushed at once. Tokens are single spaces apart.
 *
 *   add <netns> <veth> <bridge> <a.b.c.d/len> <gateway> <hostns|->
 *       /run/netns/<netns> (a bind mount of a fresh netns, as `ip netns add`
 *       makes), lo up, `eth0` inside with the address, up, default route via
 *       the gateway; the host end <veth> is up and enslaved to <bridge>, which
 *       lives in /run/netns/<hostns> or, with `-`, in our own netns.
 *   del <netns> <veth> <hostns|->
 *       deletes <veth> (and with it eth0), unmounts and unlinks
 *       /run/netns/<netns>; what is already gone is not an error.
 *
 *   ok <netns>
 *   error <netns|-> <errno> <operation>: <strerror text>
 *
 * A failed add undoes what it did (veth, mount, file) before replying. EOF on
 * stdin ends the process (the node went away). Exit status: 0 after EOF, 2 on
 * a usage error.
 *
 * Invariant: between requests the process is back in the netns it started in
 * (every path that leaves it returns through setns), so one request can never
 * build inside another's namespace.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NETNS_RUN_DIR "/run/netns"
#define MAX_LINE 1024
#define MSG_BUF 4096

static int orig_ns = -1;     /* the netns we started in */
/* How long a removal waits for the kernel to destroy the netns before deleting the veth itself. */
#define DEL_WAIT_MS 2000
static uint32_t seq_no = 1;

/* What went wrong: the operation and errno of the first failure of a request. */
static const char *fail_op;
static int fail_errno;

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int failed(const char *op, int err) {
	if (!fail_op) { fail_op = op; fail_errno = err; }
	return -1;
}

/* ---- netlink message building -------------------------------------------------- */

struct req { struct nlmsghdr *h; char buf[MSG_BUF]; };

static void *req_init(struct req *r, uint16_t type, uint16_t flags, size_t body) {
	memset(r->buf, 0, sizeof r->buf);
	r->h = (struct nlmsghdr *)r->buf;
	r->h->nlmsg_len = NLMSG_LENGTH(body);
	r->h->nlmsg_type = type;
	r->h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	r->h->nlmsg_seq = seq_no++;
	return NLMSG_DATA(r->h);
}

static struct rtattr *attr(struct req *r, uint16_t type, const void *data, size_t len) {
	size_t at = NLMSG_ALIGN(r->h->nlmsg_len);
	if (at + RTA_SPACE(len) > sizeof r->buf) abort(); /* messages here are fixed and small */
	struct rtattr *a = (struct rtattr *)(r->buf + at);
	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	if (len) memcpy(RTA_DATA(a), data, len);
	r->h->nlmsg_len = at + RTA_SPACE(len);
	return a;
}

static void attr_str(struct req *r, uint16_t type, const char *s) { attr(r, type, s, strlen(s) + 1); }
static void attr_u32(struct req *r, uint16_t type, uint32_t v) { attr(r, type, &v, sizeof v); }
static struct rtattr *nest_begin(struct req *r, uint16_t type) { return attr(r, type, NULL, 0); }
static void nest_end(struct req *r, struct rtattr *a) { a->rta_len = (unsigned short)(r->buf + r->h->nlmsg_len - (char *)a); }

/* Sends the request and waits for its ack; on NLMSG_ERROR returns -1 with errno set. `reply`
 * (optional) receives the first non-error message of the answer (for RTM_GETLINK). */
static int talk(int sk, struct req *r, void *reply, size_t reply_len) {
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	if (sendto(sk, r->buf, r->h->nlmsg_len, 0, (struct sockaddr *)&to, sizeof to) < 0) return -1;
	char in[MSG_BUF * 2];
	for (;;) {
		ssize_t n = recv(sk, in, sizeof in, 0);
		if (n < 0) { if (errno == EINTR) continue; return -1; }
		for (struct nlmsghdr *h = (struct nlmsghdr *)in; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != r->h->nlmsg_seq) continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				if (e->error == 0) return 0;
				errno = -e->error;
				return -1;
			}
			if (reply && h->nlmsg_len <= reply_len) memcpy(reply, h, h->nlmsg_len);
		}
	}
}

static int nl_socket(void) {
	int sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (sk < 0) return -1;
	struct sockaddr_nl me = { .nl_family = AF_NETLINK };
	if (bind(sk, (struct sockaddr *)&me, sizeof me) < 0) { int e = errno; close(sk); errno = e; return -1; }
	return sk;
}

/* The ifindex of `name` in the socket's netns, or -1 (errno set). */
static int link_index(int sk, const char *name) {
	struct req r;
	req_init(&r, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
	attr_str(&r, IFLA_IFNAME, name);
	union { struct nlmsghdr h; char b[MSG_BUF * 2]; } reply;
	memset(&reply, 0, sizeof reply);
	if (talk(sk, &r, &reply, sizeof reply) < 0) return -1;
	if (reply.h.nlmsg_type != RTM_NEWLINK) { errno = ENODEV; return -1; }
	return ((struct ifinfomsg *)NLMSG_DATA(&reply.h))->ifi_index;
}

/* Sets IFF_UP on an existing link. */
static int link_up(int sk, int index) {
	struct req r;
	struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, 0, sizeof *ifi);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = index;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return talk(sk, &r, NULL, 0);
}

/* veth pair: <host> (up, on the bridge) here, its peer `eth0` (down) in the netns `peer_ns_fd`.
 * The peer cannot come up in this message: veth_open() fails with ENOTCONN until both ends are
 * linked, which happens after the peer is configured (the outer device is configured later). */
static int veth_add(int sk, const char *host, int bridge_index, int peer_ns_fd) {
	struct req r;
	struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifi);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	attr_str(&r, IFLA_IFNAME, host);
	attr_u32(&r, IFLA_MASTER, (uint32_t)bridge_index);
	struct rtattr *info = nest_begin(&r, IFLA_LINKINFO);
	attr_str(&r, IFLA_INFO_KIND, "veth");
	struct rtattr *data = nest_begin(&r, IFLA_INFO_DATA);
	struct rtattr *peer = nest_begin(&r, VETH_INFO_PEER);
	/* The peer's attributes follow its own ifinfomsg. */
	struct ifinfomsg peer_ifi = { .ifi_family = AF_UNSPEC };
	size_t at = r.h->nlmsg_len;
	if (at + NLMSG_ALIGN(sizeof peer_ifi) > sizeof r.buf) abort();
	memcpy(r.buf + at, &peer_ifi, sizeof peer_ifi);
	r.h->nlmsg_len = at + NLMSG_ALIGN(sizeof peer_ifi);
	attr_str(&r, IFLA_IFNAME, "eth0");
	attr_u32(&r, IFLA_NET_NS_FD, (uint32_t)peer_ns_fd);
	nest_end(&r, peer);
	nest_end(&r, data);
	nest_end(&r, info);
	return talk(sk, &r, NULL, 0);
}

static int link_del(int sk, const char *name) {
	struct req r;
	struct ifinfomsg *ifi = req_init(&r, RTM_DELLINK, 0, sizeof *ifi);
	ifi->ifi_family = AF_UNSPEC;
	attr_str(&r, IFLA_IFNAME, name);
	return talk(sk, &r, NULL, 0);
}

static int addr_add(int sk, int index, struct in_addr a, int prefix) {
	struct req r;
	struct ifaddrmsg *ifa = req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifa);
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned)index;
	attr(&r, IFA_LOCAL, &a, sizeof a);
	attr(&r, IFA_ADDRESS, &a, sizeof a);
	return talk(sk, &r, NULL, 0);
}

static int default_route(int sk, int index, struct in_addr gw) {
	struct req r;
	struct rtmsg *rt = req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof *rt);
	rt->rtm_family = AF_INET;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_UNICAST;
	attr(&r, RTA_GATEWAY, &gw, sizeof gw);
	attr_u32(&r, RTA_OIF, (uint32_t)index);
	return talk(sk, &r, NULL, 0);
}

/* ---- namespaces ------------------------------------------------------------------ */

/* Like `ip netns add`: /run/netns is a shared mount point, so the unmount of a netns file
 * reaches copies in other mount namespaces and the netns can be freed. */
static int prepare_run_dir(void) {
	if (mkdir(NETNS_RUN_DIR, 0755) < 0 && errno != EEXIST) return failed("mkdir " NETNS_RUN_DIR, errno);
	for (int made = 0; mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0; made = 1) {
		if (errno != EINVAL || made) return failed("mount --make-rshared " NETNS_RUN_DIR, errno);
		if (mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0) return failed("mount --bind " NETNS_RUN_DIR, errno);
	}
	return 0;
}

/* The host side's netns: ours for "-", else /run/netns/<name>; -1 on failure. */
static int open_host_ns(const char *hostns) {
	if (!strcmp(hostns, "-")) return dup(orig_ns);
	char path[128];
	snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", hostns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) failed("open host netns", errno);
	return fd;
}

static void back_home(void) {
	if (setns(orig_ns, CLONE_NEWNET) < 0) {
		/* Never build anything in a foreign netns: stop rather than go on from here. */
		perror("ukc-netns: setns back");
		exit(3);
	}
}

static void remove_netns_file(const char *path) {
	umount2(path, MNT_DETACH);
	unlink(path);
}

static int do_add(const char *name, const char *veth, const char *bridge, const char *cidr, const char *gateway, const char *hostns) {
	char ip[32];
	const char *slash = strchr(cidr, '/');
	if (!slash || (size_t)(slash - cidr) >= sizeof ip) return failed("parse address", EINVAL);
	memcpy(ip, cidr, (size_t)(slash - cidr));
	ip[slash - cidr] = 0;
	char *end;
	long prefix = strtol(slash + 1, &end, 10);
	struct in_addr addr, gw;
	if (*end || prefix < 1 || prefix > 32 || inet_pton(AF_INET, ip, &addr) != 1) return failed("parse address", EINVAL);
	if (inet_pton(AF_INET, gateway, &gw) != 1) return failed("parse gateway", EINVAL);

	char path[128];
	snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", name);
	int host_ns = -1, ns_fd = -1, ns_sk = -1, host_sk = -1, rc = -1, made_file = 0, made_veth = 0;
	if (prepare_run_dir() < 0) goto out;
	if ((host_ns = open_host_ns(hostns)) < 0) goto out;
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0) { failed("create netns file", errno); goto out; }
	close(fd);
	made_file = 1;
	if (unshare(CLONE_NEWNET) < 0) { failed("unshare netns", errno); goto out; }
	/* From here until back_home() we are inside the new netns. */
	if (mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) < 0) { failed("bind netns file", errno); back_home(); goto out; }
	ns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns_fd < 0) { failed("open new netns", errno); back_home(); goto out; }
	ns_sk = nl_socket(); /* a netlink socket talks to the netns it was made in */
	if (ns_sk < 0) { failed("netlink socket (instance)", errno); back_home(); goto out; }
	if (setns(host_ns, CLONE_NEWNET) < 0) { failed("setns host", errno); back_home(); goto out; }
	host_sk = nl_socket();
	int host_sk_err = errno;
	back_home();
	if (host_sk < 0) { failed("netlink socket (host)", host_sk_err); goto out; }
	int bridge_index = link_index(host_sk, bridge);
	if (bridge_index < 0) { failed("RTM_GETLINK bridge", errno); goto out; }

	if (veth_add(host_sk, veth, bridge_index, ns_fd) < 0) { failed("RTM_NEWLINK veth", errno); goto out; }
	made_veth = 1;
	if (link_up(ns_sk, 1) < 0) { failed("RTM_NEWLINK lo up", errno); goto out; }
	int eth0 = link_index(ns_sk, "eth0");
	if (eth0 < 0) { failed("RTM_GETLINK eth0", errno); goto out; }
	if (link_up(ns_sk, eth0) < 0) { failed("RTM_NEWLINK eth0 up", errno); goto out; }
	if (addr_add(ns_sk, eth0, addr, (int)prefix) < 0) { failed("RTM_NEWADDR eth0", errno); goto out; }
	if (default_route(ns_sk, eth0, gw) < 0) { failed("RTM_NEWROUTE default", errno); goto out; }
	rc = 0;
out:
	if (rc < 0) {
		if (made_veth) link_del(host_sk, veth);
		if (made_file) remove_netns_file(path);
	}
	if (host_sk >= 0) close(host_sk);
	if (ns_sk >= 0) close(ns_sk);
	if (ns_fd >= 0) close(ns_fd);
	if (host_ns >= 0) close(host_ns);
	return rc;
}

/* Removal, in two halves so a batch shares the kernel's work: unlinking the netns file drops
 * the last reference, and the kernel then destroys all such namespaces together (their devices,
 * both veth ends included, in one unregister batch: ~1 ms each instead of ~30 ms for a
 * RTM_DELLINK, which waits for an RCU grace period per device). */
static int del_unlink(const char *name) {
	char path[128];
	snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", name);
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) return failed("umount netns file", errno);
	if (unlink(path) < 0 && errno != ENOENT) return failed("unlink netns file", errno);
	return 0;
}

/* A netlink socket in the host side's netns, or -1 with *gone set when that netns no longer exists
 * (then neither does any link in it). */
static int host_socket(const char *hostns, int *gone) {
	*gone = 0;
	int host_ns = open_host_ns(hostns);
	if (host_ns < 0) {
		if (fail_errno == ENOENT) { fail_op = NULL; fail_errno = 0; *gone = 1; }
		return -1;
	}
	if (setns(host_ns, CLONE_NEWNET) < 0) { int e = errno; close(host_ns); return failed("setns host", e); }
	int sk = nl_socket();
	int err = errno;
	back_home();
	close(host_ns);
	if (sk < 0) return failed("netlink socket (host)", err);
	return sk;
}

/* Second half: wait (bounded) until the host end is gone; delete it ourselves when the netns is
 * kept alive by someone else (a process still inside, a copy of the mount elsewhere). */
static int del_wait(const char *veth, const char *hostns, int64_t deadline_ns) {
	int gone;
	int sk = host_socket(hostns, &gone);
	if (sk < 0) return gone ? 0 : -1;
	int rc = 0;
	for (;;) {
		if (link_index(sk, veth) < 0) {
			if (errno != ENODEV) rc = failed("RTM_GETLINK veth", errno);
			break;
		}
		if (now_ns() >= deadline_ns) {
			if (link_del(sk, veth) < 0 && errno != ENODEV) rc = failed("RTM_DELLINK veth", errno);
			break;
		}
		struct timespec nap = { 0, 1000000 };
		nanosleep(&nap, NULL);
	}
	close(sk);
	return rc;
}

/* ---- requests --------------------------------------------------------------------- */

/* Names as the node makes them: [A-Za-z0-9][A-Za-z0-9_.-]*, bounded. */
static int valid_name(const char *s, size_t max) {
	size_t n = strlen(s);
	if (n == 0 || n > max || s[0] == '.' || s[0] == '-' || s[0] == '_') return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return 0;
	}
	return 1;
}

static void reply(const char *name, int rc) {
	if (rc == 0) printf("ok %s\n", name);
	else printf("error %s %d %s: %s\n", name, fail_errno, fail_op ? fail_op : "unknown", strerror(fail_errno));
}

/* One parsed request line; `del` requests arriving together are carried out as a batch. */
struct request { int kind; int rc; const char *op; int err; char *tok[8]; };
enum { REQ_BAD, REQ_ADD, REQ_DEL };

static void parse(char *line, struct request *q) {
	int n = 0;
	q->kind = REQ_BAD;
	for (char *save = NULL, *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == 8) return;
		q->tok[n++] = t;
	}
	if (n < 2 || !valid_name(q->tok[1], 64)) { q->tok[1] = "-"; return; }
	const char *hostns = q->tok[n - 1];
	if (strcmp(hostns, "-") && !valid_name(hostns, 64)) return;
	if (n == 7 && !strcmp(q->tok[0], "add") && valid_name(q->tok[2], 15) && valid_name(q->tok[3], 15)) q->kind = REQ_ADD;
	if (n == 4 && !strcmp(q->tok[0], "del") && valid_name(q->tok[2], 15)) q->kind = REQ_DEL;
}

static void settle(struct request *q, int rc) {
	q->rc = rc;
	q->op = fail_op;
	q->err = fail_errno;
	fail_op = NULL;
	fail_errno = 0;
}

static void answer(struct request *q) {
	fail_op = q->op;
	fail_errno = q->err;
	reply(q->tok[1], q->rc);
	fflush(stdout);
	fail_op = NULL;
	fail_errno = 0;
}

/* Carries out the requests in order and answers each as soon as it is done; a run of `del`s is
 * carried out together (unlink all, then wait for all) and answered at its end. */
static void handle_all(struct request *q, int n) {
	for (int i = 0; i < n; i++) {
		if (q[i].kind == REQ_BAD) { settle(&q[i], failed("parse request", EINVAL)); answer(&q[i]); continue; }
		if (q[i].kind == REQ_ADD) {
			settle(&q[i], do_add(q[i].tok[1], q[i].tok[2], q[i].tok[3], q[i].tok[4], q[i].tok[5], q[i].tok[6]));
			answer(&q[i]);
			continue;
		}
		int j = i;
		while (j < n && q[j].kind == REQ_DEL) { settle(&q[j], del_unlink(q[j].tok[1])); j++; }
		int64_t deadline = now_ns() + (int64_t)DEL_WAIT_MS * 1000000;
		for (int k = i; k < j; k++) if (q[k].rc == 0) settle(&q[k], del_wait(q[k].tok[2], q[k].tok[3], deadline));
		for (int k = i; k < j; k++) answer(&q[k]);
		i = j - 1;
	}
}

#define MAX_BATCH 256

int main(int argc, char **argv) {
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: ukc-netns < requests (see the header of ukc-netns.c)\n");
		return 2;
	}
	orig_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig_ns < 0) { perror("ukc-netns: open own netns"); return 2; }
	static char buf[MAX_LINE * MAX_BATCH];
	static struct request q[MAX_BATCH];
	size_t have = 0;
	int skipping = 0; /* inside an over-long line: drop until its newline */
	for (;;) {
		ssize_t r = read(0, buf + have, sizeof buf - have);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) break;
		have += (size_t)r;
		/* Every complete line that arrived together forms one batch (at most MAX_BATCH at a time). */
		for (;;) {
			int n = 0;
			size_t start = 0;
			for (size_t k = 0; k < have && n < MAX_BATCH; k++) {
				if (buf[k] != '\n') continue;
				buf[k] = 0;
				if (skipping) { skipping = 0; start = k + 1; continue; }
				if (k - start >= MAX_LINE) { q[n].kind = REQ_BAD; q[n].tok[1] = "-"; n++; start = k + 1; continue; }
				parse(buf + start, &q[n]);
				n++;
				start = k + 1;
			}
			if (n) handle_all(q, n);
			memmove(buf, buf + start, have - start);
			have -= start;
			if (n < MAX_BATCH) break;
		}
		if (have >= MAX_LINE) {
			/* An over-long line without its end yet: answer once, drop it up to its newline. */
			if (!skipping) { q[0].kind = REQ_BAD; q[0].tok[1] = "-"; handle_all(q, 1); }
			have = 0;
			skipping = 1;
		}
	}
	return 0;
}
