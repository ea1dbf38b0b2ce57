/* IPv4 and IPv6 sockets, restore: the socket is made anew by the
 * restored process (so with its credentials: binding a privileged port
 * needs what the process had), bound, listening or connected again, then
 * its options set. It is bound with SO_REUSEADDR and SO_REUSEPORT so
 * that every socket of a port binds again whatever order they come in;
 * their own values come back in after_install, once every file of the
 * tree is open (CRIU does the same). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "files/inet.h"
#include "files/sockopts.h"
#include "util/log.h"

static int set_opt(int sk, int level, int name, int val)
{
	return setsockopt(sk, level, name, &val, sizeof(val));
}

/* The entry is one we can make: checked before anything is made. */
static int check_entry(const struct rst_files *rf, const FileEntry *fe)
{
	const InetSkEntry *ie = fe->isk;
	if (!ie || !ie->opts) {
		pr_err("image files.img: inet socket entry %u is empty", fe->id);
		return -1;
	}
	size_t alen = ie->family == AF_INET6 ? INET_ALEN6 : INET_ALEN4;
	if (ie->family != AF_INET && ie->family != AF_INET6) {
		pr_err("image files.img: inet socket %u has family %u", ie->ino, ie->family);
		return -1;
	}
	if (ie->n_src_addr < alen || ie->n_dst_addr < alen || ie->src_port > 65535 || ie->dst_port > 65535) {
		pr_err("image files.img: inet socket %u has a bad address", ie->ino);
		return -1;
	}
	bool tcp = ie->type == SOCK_STREAM && ie->proto == IPPROTO_TCP;
	bool dgram = ie->type == SOCK_DGRAM && (ie->proto == IPPROTO_UDP || ie->proto == IPPROTO_UDPLITE ||
						ie->proto == IPPROTO_ICMP || ie->proto == IPPROTO_ICMPV6);
	bool raw = ie->type == SOCK_RAW;	/* any protocol: the kernel checks it */
	if (!tcp && !dgram && !raw) {
		pr_err("image files.img: inet socket %u has type %u protocol %u, which stasis can't restore",
		       ie->ino, ie->type, ie->proto);
		return -1;
	}
	bool closed_conn = tcp && ie->state == TCP_CLOSE && ie->dst_port && rf->o->tcp_close;
	if (tcp && !tcp_conn_entry(ie) && !closed_conn && (ie->dst_port || (ie->state != TCP_LISTEN && ie->state != TCP_CLOSE))) {
		pr_err("image files.img: socket %u is a TCP socket %s -> %s in state %s, which stasis can't "
		       "restore", ie->ino, SRC_STR(ie), DST_STR(ie), tcp_state_name(ie->state));
		return -1;
	}
	if (tcp && tcp_conn_entry(ie) && !rf->o->tcp_established && !rf->o->tcp_close) {
		pr_err("image files.img: socket %u is a TCP connection %s -> %s: restore it with "
		       "--tcp-established (or --tcp-close to have it closed)", ie->ino, SRC_STR(ie), DST_STR(ie));
		return -1;
	}
	return 0;
}

socklen_t inet_sockaddr(const InetSkEntry *ie, const uint32_t *addr, uint32_t port, int ifindex,
			     struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ie->family == AF_INET6) {
		struct sockaddr_in6 *a = (void *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		memcpy(&a->sin6_addr, addr, 16);
		a->sin6_scope_id = ifindex;
		return sizeof(*a);
	}
	struct sockaddr_in *a = (void *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	memcpy(&a->sin_addr, addr, 4);
	return sizeof(*a);
}

/* IP_FREEBIND, which an IPv6 raw socket knows only as IPV6_FREEBIND
 * (an IPv6 UDP or TCP one as both). */
static int set_freebind(int sk, const InetSkEntry *ie, int val)
{
	if (ie->family == AF_INET6 && !set_opt(sk, SOL_IPV6, IPV6_FREEBIND, val))
		return 0;
	return set_opt(sk, SOL_IP, IP_FREEBIND, val);
}

/* An IPv6 address may still be "tentative" (just configured): it binds
 * only with IP_FREEBIND, lent for the bind if the socket hadn't it. */
int inet_bind(int sk, const InetSkEntry *ie)
{
	struct sockaddr_storage ss;
	int ifindex = 0;

	if (ie->ifname && !(ifindex = if_nametoindex(ie->ifname))) {
		pr_err("can't bind %s socket %u to %s: no device %s here",
		       inet_proto_name(ie->family, ie->proto), ie->ino, SRC_STR(ie), ie->ifname);
		return -1;
	}
	socklen_t len = inet_sockaddr(ie, ie->src_addr, ie->src_port, ifindex, &ss);
	bool freebind = ie->ip_opts && ie->ip_opts->has_freebind && ie->ip_opts->freebind;
	bool lend = ie->family == AF_INET6 && ie->type != SOCK_RAW && !freebind;
	/* a socket that had it may be bound to an address not (yet) here */
	if ((freebind || lend) && set_freebind(sk, ie, 1) < 0 && freebind) {
		pr_perror("can't set IP_FREEBIND on socket %u", ie->ino);
		return -1;
	}
	if (bind(sk, (struct sockaddr *)&ss, len) < 0) {
		pr_perror("can't bind %s socket %u to %s%s", inet_proto_name(ie->family, ie->proto), ie->ino,
			  SRC_STR(ie), errno == EADDRINUSE ? " (is the dumped program still running?)" :
				       errno == EACCES ? " (a privileged port: binding it needs CAP_NET_BIND_SERVICE, "
							 "which the restored process has not)" : "");
		return -1;
	}
	if (lend && set_freebind(sk, ie, 0) < 0) {
		pr_perror("can't set IP_FREEBIND back on socket %u", ie->ino);
		return -1;
	}
	return 0;
}

static int restore_raw_opts(int sk, const InetSkEntry *ie, const IpOptsRawEntry *r)
{
	bool v6 = ie->family == AF_INET6;
	size_t words = v6 ? 8 : 1;	/* struct icmp6_filter, icmp_filter */
	int ret = 0;

	if (r->n_icmpv_filter && ie->proto == (v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP)) {
		if (r->n_icmpv_filter != words) {
			pr_err("image files.img: raw socket %u has an ICMP filter of %zu words", ie->ino,
			       r->n_icmpv_filter);
			return -1;
		}
		ret |= setsockopt(sk, v6 ? SOL_ICMPV6 : SOL_RAW, 1 /* ICMP(V6)_FILTER */, r->icmpv_filter,
				  words * sizeof(uint32_t));
	}
	if (r->has_nodefrag && !v6)
		ret |= set_opt(sk, SOL_IP, IP_NODEFRAG, r->nodefrag);
	if (r->has_hdrincl)
		ret |= set_opt(sk, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_HDRINCL : IP_HDRINCL, r->hdrincl);
	if (ret)
		pr_perror("can't set the options of raw socket %u", ie->ino);
	return ret;
}

static int restore_ip_opts(int sk, const InetSkEntry *ie)
{
	const IpOptsEntry *io = ie->ip_opts;
	int ret = 0;

	if (!io)
		return 0;
	if (io->raw && ie->type == SOCK_RAW && restore_raw_opts(sk, ie, io->raw) < 0)
		return -1;
	if (ie->family == AF_INET6) {
		if (io->has_freebind)
			ret |= set_freebind(sk, ie, io->freebind);
		if (io->has_pktinfo)
			ret |= set_opt(sk, SOL_IPV6, IPV6_RECVPKTINFO, io->pktinfo);
	} else {
		if (io->has_freebind)
			ret |= set_opt(sk, SOL_IP, IP_FREEBIND, io->freebind);
		if (io->has_pktinfo)
			ret |= set_opt(sk, SOL_IP, IP_PKTINFO, io->pktinfo);
		if (io->has_tos)
			ret |= set_opt(sk, SOL_IP, IP_TOS, io->tos);
		if (io->has_ttl)
			ret |= set_opt(sk, SOL_IP, IP_TTL, io->ttl);
	}
	if (ret)
		pr_perror("can't set the IP options of socket %u", ie->ino);
	return ret;
}

static int restore_tcp_opts(int sk, const InetSkEntry *ie)
{
	const TcpOptsEntry *to = ie->tcp_opts;
	const SkOptsEntry *so = ie->opts;
	int ret = 0;

	/* the sk_opts_entry fields of older images (CRIU reads them too) */
	if (so->has_tcp_keepcnt)
		ret |= set_opt(sk, SOL_TCP, TCP_KEEPCNT, so->tcp_keepcnt);
	if (so->has_tcp_keepidle)
		ret |= set_opt(sk, SOL_TCP, TCP_KEEPIDLE, so->tcp_keepidle);
	if (so->has_tcp_keepintvl)
		ret |= set_opt(sk, SOL_TCP, TCP_KEEPINTVL, so->tcp_keepintvl);
	if (to && to->has_nodelay)
		ret |= set_opt(sk, SOL_TCP, TCP_NODELAY, to->nodelay);
	if (to && to->has_cork)
		ret |= set_opt(sk, SOL_TCP, TCP_CORK, to->cork);
	if (to && to->has_keepcnt)
		ret |= set_opt(sk, SOL_TCP, TCP_KEEPCNT, to->keepcnt);
	if (to && to->has_keepidle)
		ret |= set_opt(sk, SOL_TCP, TCP_KEEPIDLE, to->keepidle);
	if (to && to->has_keepintvl)
		ret |= set_opt(sk, SOL_TCP, TCP_KEEPINTVL, to->keepintvl);
	if (ret)
		pr_perror("can't set the TCP options of socket %u", ie->ino);
	return ret;
}

/* Bound, listening or connected as it was. */
static int place(int sk, const InetSkEntry *ie)
{
	bool ping = ie->proto == IPPROTO_ICMP || ie->proto == IPPROTO_ICMPV6;

	/* a ping socket's "port" is its echo id, taken again on first use */
	if (ie->src_port && !ping && inet_bind(sk, ie) < 0)
		return -1;
	if (ie->state == TCP_LISTEN && listen(sk, ie->backlog) < 0) {
		pr_perror("can't listen on TCP socket %u (%s)", ie->ino, SRC_STR(ie));
		return -1;
	}
	if (ie->dst_port) {
		struct sockaddr_storage ss;
		socklen_t len = inet_sockaddr(ie, ie->dst_addr, ie->dst_port, 0, &ss);
		if (connect(sk, (struct sockaddr *)&ss, len) < 0) {
			pr_perror("can't connect %s socket %u (%s) to %s again",
				  inet_proto_name(ie->family, ie->proto), ie->ino, SRC_STR(ie), DST_STR(ie));
			return -1;
		}
	}
	return 0;
}

static int finish(int sk, const InetSkEntry *ie, char *what)
{
	if (fcntl(sk, F_SETFL, ie->flags & O_NONBLOCK) < 0) {
		pr_perror("can't set the file flags of %s", what);
		return -1;
	}
	if (restore_ip_opts(sk, ie) < 0 || skopts_restore(sk, ie->opts, what) < 0)
		return -1;
	if (ie->proto == IPPROTO_TCP && restore_tcp_opts(sk, ie) < 0)
		return -1;
	bool shuts = ie->type != SOCK_RAW && (ie->proto == IPPROTO_TCP || ie->proto == IPPROTO_UDP ||
					      ie->proto == IPPROTO_UDPLITE);
	if (ie->has_shutdown && ie->shutdown != SK_SHUTDOWN__NONE && shuts &&
	    shutdown(sk, ie->shutdown - 1) < 0 &&	/* READ 1 -> SHUT_RD 0 */
	    errno != ENOTCONN) {	/* not connected: the bits are set all the same */
		pr_perror("can't shut down %s", what);
		return -1;
	}
	return 0;
}

int inet_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	(void)fdflags;
	if (check_entry(rf, fe) < 0)
		return -1;
	const InetSkEntry *ie = fe->isk;
	char what[96];
	snprintf(what, sizeof(what), "%s socket %u (%s)", inet_proto_name(ie->family, ie->proto), ie->ino,
		 SRC_STR(ie));

	int sk = socket(ie->family, ie->type, ie->proto);
	if (sk < 0) {
		pr_perror("can't make %s%s", what, errno == EACCES && ie->type == SOCK_DGRAM &&
			  (ie->proto == IPPROTO_ICMP || ie->proto == IPPROTO_ICMPV6) ?
			  " (the process's group is not in net.ipv4.ping_group_range)" : "");
		return -1;
	}
	if (ie->family == AF_INET6 && ie->has_v6only && ie->v6only &&
	    set_opt(sk, SOL_IPV6, IPV6_V6ONLY, 1) < 0) {
		pr_perror("can't set IPV6_V6ONLY on %s", what);
		goto fail;
	}
	if (set_opt(sk, SOL_SOCKET, SO_REUSEADDR, 1) < 0 || set_opt(sk, SOL_SOCKET, SO_REUSEPORT, 1) < 0) {
		pr_perror("can't set SO_REUSEADDR on %s", what);
		goto fail;
	}
	bool closed_conn = ie->proto == IPPROTO_TCP && ie->state == TCP_CLOSE && ie->dst_port;
	if (closed_conn && rf->o->tcp_close) {
		if (tcp_conn_restore(rf, sk, ie, what) < 0)	/* CRIU's way: shut down, not bound */
			goto fail;
	} else if (tcp_conn_entry(ie)) {
		/* a connection still opening connects without waiting */
		if (fcntl(sk, F_SETFL, O_NONBLOCK) < 0 || tcp_conn_restore(rf, sk, ie, what) < 0)
			goto fail;
	} else if (place(sk, ie) < 0)
		goto fail;
	if (finish(sk, ie, what) < 0)
		goto fail;
	return sk;
fail:
	close(sk);
	return -1;
}

static int set_reuse(int fd, const InetSkEntry *ie, const char *where)
{
	bool addr = ie->opts->has_reuseaddr && ie->opts->reuseaddr;
	bool port = ie->opts->has_so_reuseport && ie->opts->so_reuseport;
	if (set_opt(fd, SOL_SOCKET, SO_REUSEADDR, addr) < 0 || set_opt(fd, SOL_SOCKET, SO_REUSEPORT, port) < 0) {
		pr_perror("%s: can't set SO_REUSEADDR/SO_REUSEPORT back on socket %u", where, ie->ino);
		return -1;
	}
	return 0;
}

/* Every socket of the tree is bound now: each gets its own SO_REUSEADDR
 * and SO_REUSEPORT back; a TCP connection once out of repair mode, which
 * resets SO_REUSEADDR (inet_after_unlock). */
int inet_after_install(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid)
{
	(void)rf;
	const InetSkEntry *ie = fe->isk;
	if (!ie || !ie->opts || tcp_conn_entry(ie))
		return 0;
	char where[64];
	snprintf(where, sizeof(where), "pid %d: fd %d", pid, fd);
	return set_reuse(fd, ie, where);
}

/* The dump's lock is lifted and every socket of the tree exists: the
 * connections leave repair mode (CRIU's order). Out of repair mode, an
 * established socket sends a window probe: the lock would drop it, and a
 * peer gone meanwhile (reset) would not answer it with its reset until
 * the first retransmission, long after the program wrote again (zdtm
 * socket-tcp-reseted). */
int inet_after_unlock(struct rst_files *rf, const FileEntry *fe, int fd, const char *where)
{
	const InetSkEntry *ie = fe->isk;
	if (!ie || !ie->opts || !tcp_conn_entry(ie))
		return 0;
	if (tcp_conn_resume(rf, fd, ie, where) < 0)
		return -1;
	return set_reuse(fd, ie, where);
}
