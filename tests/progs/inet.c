/*
 * inet: IPv4 and IPv6 sockets that are no TCP connection. TCP listeners
 * on 127.0.0.1, ::1, a dual-stack [::] and a v6only [::] (the kernel picks
 * the ports), two SO_REUSEPORT listeners sharing a port, a bound TCP
 * socket that doesn't listen and an unbound one, non-blocking; UDP bound
 * and connected pairs (v4, v6, UDP-lite), one shut down for writing, a
 * broadcast one; and options: buffers, timeouts, keepalive and its TCP
 * timers, TCP_NODELAY, SO_LINGER, priority, TOS, TTL, IP_FREEBIND, a
 * socket filter; raw ICMP and ICMPv6 sockets with their type filters and
 * IP_HDRINCL. After restore every socket has its address, state and
 * options again, each listener accepts a new connection, the unbound one
 * connects, and the UDP pairs exchange datagrams.
 *
 * test inet: plain restore chain leave_running
 */
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

enum { L4, L6, LDUAL, LV6ONLY, LRP1, LRP2, BOUND, UNBOUND, U4A, U4B, U6A, U6B, ULA, ULB, UBC, RAW, RAW6, NSK };
static int sk[NSK];
static struct sockaddr_storage name[NSK];
static const char *const what[NSK] = { "listener 127.0.0.1", "listener ::1", "dual-stack listener",
	"v6only listener", "reuseport listener 1", "reuseport listener 2", "bound TCP socket",
	"unbound TCP socket", "UDP a", "UDP b", "UDPv6 a", "UDPv6 b", "UDP-lite a", "UDP-lite b",
	"broadcast UDP", "raw ICMP", "raw ICMPv6" };

static int set(int s, int level, int opt, int val)
{
	return setsockopt(s, level, opt, &val, sizeof(val));
}

static int get(int s, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof(v);
	if (getsockopt(s, level, opt, &v, &l) < 0)
		return -1;
	return v;
}

static socklen_t addr_of(int family, const char *ip, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (void *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &a->sin6_addr);
		return sizeof(*a);
	}
	struct sockaddr_in *a = (void *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	inet_pton(AF_INET, ip, &a->sin_addr);
	return sizeof(*a);
}

static int port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6 ? ((struct sockaddr_in6 *)ss)->sin6_port :
						 ((struct sockaddr_in *)ss)->sin_port);
}

static int make(int i, int family, int type, int proto, const char *ip, int port)
{
	struct sockaddr_storage ss;
	int s = socket(family, type, proto);
	if (s < 0)
		die("socket");
	sk[i] = s;
	if (!ip)
		return s;
	socklen_t l = addr_of(family, ip, port, &ss);
	if (bind(s, (struct sockaddr *)&ss, l) < 0)
		die("bind");
	l = sizeof(name[i]);
	getsockname(s, (struct sockaddr *)&name[i], &l);
	return s;
}

static void connect_to(int a, int b)
{
	if (connect(sk[a], (struct sockaddr *)&name[b], sizeof(name[b])) < 0)
		die("connect");
}

/* A new client connects to listener i (through ip) and is accepted. */
static void check_accepts(int i, int family, const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t l = addr_of(family, ip, port_of(&name[i]), &ss);
	int c = socket(family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&ss, l) < 0) {
		fail("%s: a new client can't connect through %s: %s", what[i], ip, strerror(errno));
		return;
	}
	int a = accept(sk[i], NULL, NULL);
	if (a < 0) {
		fail("%s: accept: %s", what[i], strerror(errno));
	} else {
		CHECK(write(c, "hello", 5) == 5 && read(a, (char[8]){ 0 }, 8) == 5, "%s: no data", what[i]);
		close(a);
	}
	close(c);
}

static void check_udp(int a, int b)
{
	char buf[16] = { 0 };
	if (send(sk[a], "ping", 4, 0) != 4) {
		fail("%s: send: %s", what[a], strerror(errno));
		return;
	}
	CHECK(recv(sk[b], buf, sizeof(buf), 0) == 4 && !memcmp(buf, "ping", 4), "%s: got no datagram", what[b]);
}

static void check_names(void)
{
	for (int i = 0; i < NSK; i++) {
		struct sockaddr_storage ss;
		socklen_t l = sizeof(ss);
		getsockname(sk[i], (struct sockaddr *)&ss, &l);
		if (i == RAW || i == RAW6)
			continue;
		if (i == UNBOUND)
			CHECK(port_of(&ss) == 0, "%s: bound to port %d", what[i], port_of(&ss));
		else
			CHECK(l > 0 && !memcmp(&ss, &name[i], l), "%s: bound elsewhere (port %d, was %d)", what[i],
			      port_of(&ss), port_of(&name[i]));
	}
}

static struct timeval rcvtimeo;

static void check_opts(void)
{
	struct linger lg = { 0, 0 };
	struct timeval tv = { 0, 0 };
	socklen_t l = sizeof(lg);
	getsockopt(sk[L4], SOL_SOCKET, SO_LINGER, &lg, &l);
	CHECK(lg.l_onoff == 1 && lg.l_linger == 17, "SO_LINGER is %d/%d", lg.l_onoff, lg.l_linger);
	l = sizeof(tv);
	getsockopt(sk[L4], SOL_SOCKET, SO_RCVTIMEO, &tv, &l);
	/* the kernel keeps it in jiffies: what it said at setup */
	CHECK(tv.tv_sec == rcvtimeo.tv_sec && tv.tv_usec == rcvtimeo.tv_usec, "SO_RCVTIMEO is %ld.%06ld",
	      (long)tv.tv_sec, (long)tv.tv_usec);
	CHECK(get(sk[L4], SOL_SOCKET, SO_REUSEADDR) == 1, "SO_REUSEADDR lost");
	CHECK(get(sk[L4], SOL_SOCKET, SO_REUSEPORT) == 0, "SO_REUSEPORT set on a socket without it");
	CHECK(get(sk[LRP1], SOL_SOCKET, SO_REUSEPORT) == 1, "SO_REUSEPORT lost");
	CHECK(get(sk[U4A], SOL_SOCKET, SO_REUSEADDR) == 0, "SO_REUSEADDR set on a socket without it");
	CHECK(get(sk[L4], SOL_SOCKET, SO_KEEPALIVE) == 1, "SO_KEEPALIVE lost");
	CHECK(get(sk[L4], SOL_TCP, TCP_KEEPIDLE) == 77, "TCP_KEEPIDLE is %d", get(sk[L4], SOL_TCP, TCP_KEEPIDLE));
	CHECK(get(sk[L4], SOL_TCP, TCP_KEEPINTVL) == 11, "TCP_KEEPINTVL lost");
	CHECK(get(sk[L4], SOL_TCP, TCP_KEEPCNT) == 4, "TCP_KEEPCNT lost");
	CHECK(get(sk[L4], SOL_TCP, TCP_NODELAY) == 1, "TCP_NODELAY lost");
	CHECK(get(sk[L4], SOL_SOCKET, SO_PRIORITY) == 5, "SO_PRIORITY lost");
	CHECK(get(sk[L4], SOL_SOCKET, SO_SNDBUF) == 2 * 65536, "SO_SNDBUF is %d", get(sk[L4], SOL_SOCKET, SO_SNDBUF));
	CHECK(get(sk[L4], SOL_IP, IP_TOS) == 0x10, "IP_TOS is %d", get(sk[L4], SOL_IP, IP_TOS));
	CHECK(get(sk[U4A], SOL_IP, IP_TTL) == 9, "IP_TTL is %d", get(sk[U4A], SOL_IP, IP_TTL));
	CHECK(get(sk[BOUND], SOL_IP, IP_FREEBIND) == 1, "IP_FREEBIND lost");
	CHECK(get(sk[LV6ONLY], SOL_IPV6, IPV6_V6ONLY) == 1, "IPV6_V6ONLY lost");
	CHECK(get(sk[LDUAL], SOL_IPV6, IPV6_V6ONLY) == 0, "IPV6_V6ONLY set on the dual-stack listener");
	CHECK(get(sk[UBC], SOL_SOCKET, SO_BROADCAST) == 1, "SO_BROADCAST lost");
	CHECK(get(sk[L4], SOL_SOCKET, SO_ACCEPTCONN) == 1, "the listener no longer listens");
	CHECK(get(sk[BOUND], SOL_SOCKET, SO_ACCEPTCONN) == 0, "the bound socket listens");
	CHECK(fcntl(sk[L6], F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	CHECK(!(fcntl(sk[L4], F_GETFL) & O_NONBLOCK), "O_NONBLOCK set on a blocking socket");
	struct icmp_filter f4 = { 0 };
	struct icmp6_filter f6;
	memset(&f6, 0, sizeof(f6));
	l = sizeof(f4);
	CHECK(!getsockopt(sk[RAW], SOL_RAW, ICMP_FILTER, &f4, &l) && f4.data == ~(1u << ICMP_ECHOREPLY),
	      "the ICMP filter is %#x", f4.data);
	l = sizeof(f6);
	CHECK(!getsockopt(sk[RAW6], SOL_ICMPV6, ICMP6_FILTER, &f6, &l) && !ICMP6_FILTER_WILLBLOCK(ICMP6_ECHO_REPLY, &f6) &&
	      ICMP6_FILTER_WILLBLOCK(ICMP6_ECHO_REQUEST, &f6), "the ICMPv6 filter is lost");
	CHECK(get(sk[RAW], SOL_IP, IP_HDRINCL) == 1, "IP_HDRINCL lost");
	socklen_t n = 0;
	CHECK(!getsockopt(sk[U6A], SOL_SOCKET, SO_GET_FILTER, NULL, &n) && n == 2, "the socket filter is lost (%u)", n);
	/* shut down for writing: sending fails, receiving works */
	CHECK(send(sk[ULA], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "UDP-lite a can send after SHUT_WR");
}

int main(void)
{
	struct linger lg = { 1, 17 };
	struct timeval tv = { 3, 250000 };
	struct sock_filter accept_all[] = { BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0), BPF_STMT(BPF_RET | BPF_A, 0) };
	struct sock_fprog prog = { 2, accept_all };

	proto_init();
	int s = socket(AF_INET, SOCK_STREAM, 0);
	set(s, SOL_SOCKET, SO_REUSEADDR, 1);
	sk[L4] = s;
	struct sockaddr_storage ss;
	socklen_t l = addr_of(AF_INET, "127.0.0.1", 0, &ss);
	if (bind(s, (struct sockaddr *)&ss, l) < 0 || listen(s, 7) < 0)
		die("listen 127.0.0.1");
	l = sizeof(name[L4]);
	getsockname(s, (struct sockaddr *)&name[L4], &l);
	if (setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 || set(s, SOL_SOCKET, SO_KEEPALIVE, 1) ||
	    set(s, SOL_TCP, TCP_KEEPIDLE, 77) || set(s, SOL_TCP, TCP_KEEPINTVL, 11) || set(s, SOL_TCP, TCP_KEEPCNT, 4) ||
	    set(s, SOL_TCP, TCP_NODELAY, 1) || set(s, SOL_IP, IP_TOS, 0x10) ||	/* TOS sets the priority too */
	    set(s, SOL_SOCKET, SO_PRIORITY, 5) || set(s, SOL_SOCKET, SO_SNDBUF, 65536))
		die("options");
	l = sizeof(rcvtimeo);
	getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &rcvtimeo, &l);

	s = make(L6, AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0, "::1", 0);
	if (listen(s, 3) < 0)
		die("listen ::1");
	s = socket(AF_INET6, SOCK_STREAM, 0);
	set(s, SOL_IPV6, IPV6_V6ONLY, 0);
	sk[LDUAL] = s;
	l = addr_of(AF_INET6, "::", 0, &ss);
	if (bind(s, (struct sockaddr *)&ss, l) < 0 || listen(s, 5) < 0)
		die("listen [::]");
	l = sizeof(name[LDUAL]);
	getsockname(s, (struct sockaddr *)&name[LDUAL], &l);
	s = socket(AF_INET6, SOCK_STREAM, 0);
	set(s, SOL_IPV6, IPV6_V6ONLY, 1);
	sk[LV6ONLY] = s;
	l = addr_of(AF_INET6, "::", 0, &ss);
	if (bind(s, (struct sockaddr *)&ss, l) < 0 || listen(s, 5) < 0)
		die("listen v6only");
	l = sizeof(name[LV6ONLY]);
	getsockname(s, (struct sockaddr *)&name[LV6ONLY], &l);

	s = socket(AF_INET, SOCK_STREAM, 0);
	set(s, SOL_SOCKET, SO_REUSEPORT, 1);
	sk[LRP1] = s;
	l = addr_of(AF_INET, "127.0.0.1", 0, &ss);
	if (bind(s, (struct sockaddr *)&ss, l) < 0 || listen(s, 5) < 0)
		die("listen reuseport 1");
	l = sizeof(name[LRP1]);
	getsockname(s, (struct sockaddr *)&name[LRP1], &l);
	s = socket(AF_INET, SOCK_STREAM, 0);
	set(s, SOL_SOCKET, SO_REUSEPORT, 1);
	sk[LRP2] = s;
	if (bind(s, (struct sockaddr *)&name[LRP1], sizeof(struct sockaddr_in)) < 0 || listen(s, 5) < 0)
		die("listen reuseport 2");
	name[LRP2] = name[LRP1];

	s = socket(AF_INET, SOCK_STREAM, 0);
	set(s, SOL_IP, IP_FREEBIND, 1);
	sk[BOUND] = s;
	l = addr_of(AF_INET, "127.0.0.1", 0, &ss);
	if (bind(s, (struct sockaddr *)&ss, l) < 0)
		die("bind");
	l = sizeof(name[BOUND]);
	getsockname(s, (struct sockaddr *)&name[BOUND], &l);
	make(UNBOUND, AF_INET, SOCK_STREAM, 0, NULL, 0);

	make(U4A, AF_INET, SOCK_DGRAM, 0, "127.0.0.1", 0);
	make(U4B, AF_INET, SOCK_DGRAM, 0, "127.0.0.1", 0);
	connect_to(U4A, U4B);
	connect_to(U4B, U4A);
	set(sk[U4A], SOL_IP, IP_TTL, 9);
	make(U6A, AF_INET6, SOCK_DGRAM, 0, "::1", 0);
	make(U6B, AF_INET6, SOCK_DGRAM, 0, "::1", 0);
	connect_to(U6A, U6B);
	connect_to(U6B, U6A);
	if (setsockopt(sk[U6A], SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		die("SO_ATTACH_FILTER");
	make(ULA, AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, "127.0.0.1", 0);
	make(ULB, AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, "127.0.0.1", 0);
	connect_to(ULA, ULB);
	connect_to(ULB, ULA);
	shutdown(sk[ULA], SHUT_WR);
	make(UBC, AF_INET, SOCK_DGRAM, 0, "0.0.0.0", 0);
	set(sk[UBC], SOL_SOCKET, SO_BROADCAST, 1);

	make(RAW, AF_INET, SOCK_RAW, IPPROTO_ICMP, NULL, 0);
	struct icmp_filter f4 = { ~(1u << ICMP_ECHOREPLY) };
	struct icmp6_filter f6;
	ICMP6_FILTER_SETBLOCKALL(&f6);
	ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f6);
	make(RAW6, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, NULL, 0);
	if (setsockopt(sk[RAW], SOL_RAW, ICMP_FILTER, &f4, sizeof(f4)) < 0 || set(sk[RAW], SOL_IP, IP_HDRINCL, 1) ||
	    setsockopt(sk[RAW6], SOL_ICMPV6, ICMP6_FILTER, &f6, sizeof(f6)) < 0)
		die("raw socket options");

	check_names();
	check_opts();
	proto_ready();
	proto_wait();

	check_names();
	check_opts();
	check_accepts(L4, AF_INET, "127.0.0.1");
	check_accepts(LDUAL, AF_INET, "127.0.0.1");
	check_accepts(LDUAL, AF_INET6, "::1");
	check_accepts(LV6ONLY, AF_INET6, "::1");
	fcntl(sk[L6], F_SETFL, 0);
	check_accepts(L6, AF_INET6, "::1");
	fcntl(sk[L6], F_SETFL, O_NONBLOCK);
	if (connect(sk[UNBOUND], (struct sockaddr *)&name[L4], sizeof(struct sockaddr_in)) < 0)
		fail("the unbound socket can't connect: %s", strerror(errno));
	else
		close(accept(sk[L4], NULL, NULL));
	check_udp(U4A, U4B);
	check_udp(U4B, U4A);
	check_udp(U6A, U6B);
	check_udp(U6B, U6A);
	check_udp(ULB, ULA);
	return proto_finish();
}
