/*
 * netlink: netlink sockets. A route socket in the link and IPv4 address
 * groups (and, but with "criu", in group 36, RTNLGRP_STATS, above the
 * first 32); a NETLINK_USERSOCK socket bound to a port id of our choice
 * and another connected to it; an unbound route socket. After restore
 * the groups, port ids and peer are as they were, the connected socket's
 * message reaches the bound one, and an address the program adds to lo
 * and removes (through the unbound socket, which gets the kernel's acks)
 * is announced to the route socket in the groups.
 *
 * Alone: address events of tests side by side would wait unread in the
 * group socket, which the dump refuses (the messages would be lost).
 *
 * test netlink: plain restore chain leave_running --alone
 */
#include "common.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#define HIGH_GROUP 36	/* RTNLGRP_STATS: nothing is sent to it here */
#define GROUPS (RTMGRP_LINK | RTMGRP_IPV4_IFADDR)

static int grp, srv, cli, req;
static uint32_t srv_port;
static struct in_addr addr;
static bool high;

static struct sockaddr_nl name_of(int s, bool peer)
{
	struct sockaddr_nl a = { 0 };
	socklen_t l = sizeof(a);
	if ((peer ? getpeername : getsockname)(s, (struct sockaddr *)&a, &l) < 0)
		memset(&a, 0xff, sizeof(a));
	return a;
}

static bool in_group(int s, int group)
{
	uint32_t g[4] = { 0 };
	socklen_t l = sizeof(g);
	if (getsockopt(s, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &l) < 0)
		return false;
	return g[(group - 1) / 32] >> ((group - 1) % 32) & 1;
}

static void setup(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = GROUPS };
	int g = HIGH_GROUP;

	grp = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (grp < 0 || bind(grp, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("route socket in groups");
	if (high && setsockopt(grp, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0)
		die("NETLINK_ADD_MEMBERSHIP 36");
	srv_port = 0x70000000u | getpid();
	a = (struct sockaddr_nl){ .nl_family = AF_NETLINK, .nl_pid = srv_port };
	srv = socket(AF_NETLINK, SOCK_RAW, NETLINK_USERSOCK);
	if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bound NETLINK_USERSOCK socket");
	cli = socket(AF_NETLINK, SOCK_RAW, NETLINK_USERSOCK);
	if (cli < 0 || connect(cli, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connected NETLINK_USERSOCK socket");
	req = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
	if (req < 0)
		die("unbound route socket");
	addr.s_addr = htonl(0x7f4d0000u | (getpid() & 0xffff));	/* 127.77.x.y */
}

/* The kernel's answer to a request on req: its error (0: acked). */
static int request(int type, int flags)
{
	struct {
		struct nlmsghdr h;
		struct ifaddrmsg m;
		struct rtattr a;
		struct in_addr ip;
	} r = {
		.h = { .nlmsg_len = sizeof(r), .nlmsg_type = type, .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags,
		       .nlmsg_seq = 7 },
		.m = { .ifa_family = AF_INET, .ifa_prefixlen = 32, .ifa_index = if_nametoindex("lo") },
		.a = { .rta_len = RTA_LENGTH(sizeof(struct in_addr)), .rta_type = IFA_LOCAL },
		.ip = addr,
	};
	char buf[4096];
	if (send(req, &r, sizeof(r), 0) != sizeof(r))
		return -errno;
	ssize_t n = recv(req, buf, sizeof(buf), 0);
	struct nlmsghdr *h = (void *)buf;
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || h->nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
}

/* An announcement of type for our address, among what grp reads. */
static bool announced(int type)
{
	char buf[8192];
	struct pollfd p = { grp, POLLIN, 0 };

	while (poll(&p, 1, 3000) == 1) {
		ssize_t n = recv(grp, buf, sizeof(buf), 0);
		if (n <= 0)
			return false;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != type)
				continue;
			struct ifaddrmsg *m = NLMSG_DATA(h);
			int len = IFA_PAYLOAD(h);
			for (struct rtattr *a = IFA_RTA(m); RTA_OK(a, len); a = RTA_NEXT(a, len))
				if (a->rta_type == IFA_LOCAL && !memcmp(RTA_DATA(a), &addr, sizeof(addr)))
					return true;
		}
	}
	return false;
}

/* Whatever else the groups got: read, so that nothing waits at the dump. */
static void drain(void)
{
	char buf[8192];
	struct pollfd p = { grp, POLLIN, 0 };
	while (poll(&p, 1, 100) == 1 && recv(grp, buf, sizeof(buf), 0) > 0)
		;
}

static void check(const char *when)
{
	struct sockaddr_nl a;
	char buf[64];

	a = name_of(grp, false);
	CHECK(a.nl_groups == GROUPS && a.nl_pid, "%s: route socket: port %u groups %#x", when, a.nl_pid,
	      a.nl_groups);
	CHECK(!high || in_group(grp, HIGH_GROUP), "%s: the route socket left group %d", when, HIGH_GROUP);
	CHECK(name_of(srv, false).nl_pid == srv_port, "%s: the bound socket's port is %u, not %u", when,
	      name_of(srv, false).nl_pid, srv_port);
	CHECK(name_of(cli, true).nl_pid == srv_port, "%s: the connected socket's peer is %u, not %u", when,
	      name_of(cli, true).nl_pid, srv_port);
	CHECK(name_of(req, false).nl_pid == 0, "%s: the unbound socket has port %u", when, name_of(req, false).nl_pid);

	struct {
		struct nlmsghdr h;
		char text[16];
	} m = { .h = { .nlmsg_len = sizeof(m), .nlmsg_type = NLMSG_MIN_TYPE }, .text = "stasis" };
	if (send(cli, &m, sizeof(m), 0) != sizeof(m))
		fail("%s: send on the connected socket: %s", when, strerror(errno));
	struct sockaddr_nl from = { 0 };
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(srv, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	CHECK(n == sizeof(m) && !memcmp(buf + sizeof(struct nlmsghdr), "stasis", 7) &&
	      from.nl_pid == name_of(cli, false).nl_pid, "%s: the bound socket did not get the message (%zd)",
	      when, n);

	int err = request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	CHECK(err == 0, "%s: adding %s to lo: %s", when, inet_ntoa(addr), strerror(-err));
	CHECK(announced(RTM_NEWADDR), "%s: no RTM_NEWADDR for %s", when, inet_ntoa(addr));
	err = request(RTM_DELADDR, 0);
	CHECK(err == 0, "%s: removing %s from lo: %s", when, inet_ntoa(addr), strerror(-err));
	CHECK(announced(RTM_DELADDR), "%s: no RTM_DELADDR for %s", when, inet_ntoa(addr));
	drain();
}

int main(int argc, char **argv)
{
	high = !(argc > 1 && !strcmp(argv[1], "criu"));
	proto_init();
	setup();
	check("before");
	CHECK(name_of(req, false).nl_pid != 0, "the unbound socket got no port from its requests");
	/* the requests bound req: a fresh unbound one for the checkpoint */
	close(req);
	req = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
	if (req < 0)
		die("unbound route socket");
	proto_ready();
	proto_wait();
	check("after");
	return proto_finish();
}
