/* IPv4 and IPv6 sockets, dump: the socket itself (our own fd on it)
 * tells its type, protocol, addresses, TCP state and options; the
 * kernel's socket list (sock_diag) a listener's backlog and waiting
 * connections, and shutdown bits. What can't be restored as it is (an
 * established TCP connection, a listener with connections in its queue,
 * a corked UDP socket) is refused. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <linux/sock_diag.h>

#include "files/inet.h"
#include "files/sock_diag.h"
#include "files/sockopts.h"
#include "util/log.h"

/* ---- the kernel's socket list ---- */

static int diag_add(const struct nlmsghdr *h, void *arg)
{
	struct isk_diag_list *l = arg;
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	struct isk_diag d = { .ino = m->idiag_inode, .state = m->idiag_state, .rq = m->idiag_rqueue,
			      .wq = m->idiag_wqueue };
	int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));

	for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == INET_DIAG_SHUTDOWN && RTA_PAYLOAD(a) >= 1)
			d.shutdown = *(uint8_t *)RTA_DATA(a);
	struct isk_diag *n = realloc(l->d, (l->nr + 1) * sizeof(*n));
	if (!n)
		return -1;
	l->d = n;
	l->d[l->nr++] = d;
	return 0;
}

/* Every socket of family and proto in our network namespace. */
static int diag_load(struct isk_diag_list *l)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = {
		.r = { .sdiag_family = l->family, .sdiag_protocol = l->proto,
		       /* TCP: listeners only (the others are read from the socket) */
		       .idiag_states = l->proto == IPPROTO_TCP ? 1u << TCP_LISTEN : ~0u },
	};
	char what[64];

	snprintf(what, sizeof(what), "the %s sockets", inet_proto_name(l->family, l->proto));
	return sock_diag_list(&req, sizeof(req), what, diag_add, l);
}

/* What sock_diag says of socket ino (of family, proto); NULL if it is
 * not listed (an unbound socket, another network namespace) and *err
 * set if the list could not be read. */
static const struct isk_diag *diag_find(struct file_table *t, int family, int proto, uint32_t ino, int *err)
{
	struct inet_dump *u = files_dump_state(t, &fd_kind_inet);
	struct isk_diag_list *l = NULL;

	*err = 0;
	for (int i = 0; i < u->nr_lists && !l; i++)
		if (u->lists[i].family == family && u->lists[i].proto == proto)
			l = &u->lists[i];
	if (!l) {
		if (u->nr_lists == (int)(sizeof(u->lists) / sizeof(u->lists[0]))) {
			*err = -1;
			return NULL;
		}
		l = &u->lists[u->nr_lists++];
		*l = (struct isk_diag_list){ .family = family, .proto = proto };
		if (diag_load(l) < 0) {
			*err = -1;
			return NULL;
		}
	}
	for (int i = 0; i < l->nr; i++)
		if (l->d[i].ino == ino)
			return &l->d[i];
	return NULL;
}

int inet_write_images(struct file_table *t, int dirfd)
{
	struct inet_dump *u = files_dump_state(t, &fd_kind_inet);
	if (tcp_write_streams(t, dirfd) < 0)
		return -1;
	/* the tree runs on: its connections too (and it is still frozen) */
	if (u->o && u->o->leave_running)
		tcp_dump_end(t, true);
	return 0;
}

void inet_dump_failed(struct file_table *t)
{
	tcp_dump_end(t, true);
}

void inet_free_images(struct file_table *t)
{
	struct inet_dump *u = files_dump_state(t, &fd_kind_inet);
	tcp_dump_end(t, false);
	for (int i = 0; i < u->nr_lists; i++)
		free(u->lists[i].d);
}

/* ---- the socket ---- */

static int get_opt(int sk, int level, int name, int *val)
{
	socklen_t l = sizeof(*val);
	*val = 0;
	return getsockopt(sk, level, name, val, &l);
}

/* addr (getsockname's or getpeername's) into the image's words and port. */
static int set_addr(const struct sockaddr_storage *ss, uint32_t **words, size_t *n, uint32_t *port)
{
	bool v6 = ss->ss_family == AF_INET6;
	*n = v6 ? INET_ALEN6 : INET_ALEN4;
	if (!(*words = calloc(*n, sizeof(uint32_t))))
		return -1;
	if (v6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		memcpy(*words, &a->sin6_addr, 16);
		*port = ntohs(a->sin6_port);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		memcpy(*words, &a->sin_addr, 4);
		*port = ntohs(a->sin_port);
	}
	return 0;
}

static int dump_addrs(int sk, InetSkEntry *ie)
{
	struct sockaddr_storage ss = { .ss_family = ie->family };
	socklen_t l = sizeof(ss);

	if (getsockname(sk, (struct sockaddr *)&ss, &l) < 0)
		return -1;
	ss.ss_family = ie->family;	/* an unbound socket may say AF_UNSPEC */
	if (set_addr(&ss, &ie->src_addr, &ie->n_src_addr, &ie->src_port) < 0)
		return -1;
	memset(&ss, 0, sizeof(ss));
	/* exactly the address's length, which SO_PEERNAME insists on */
	l = ie->family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	/* SO_PEERNAME, not getpeername: a TCP socket closed (reset, or both
	 * ways shut down) still names its peer, as CRIU reads it */
	if (getsockopt(sk, SOL_SOCKET, SO_PEERNAME, &ss, &l) < 0) {
		if (errno != ENOTCONN)
			return -1;
		memset(&ss, 0, sizeof(ss));
	}
	ss.ss_family = ie->family;
	return set_addr(&ss, &ie->dst_addr, &ie->n_dst_addr, &ie->dst_port);
}

/* A link-local (or link-scoped multicast) IPv6 address binds only with
 * its interface; CRIU keeps the device's name for it. */
static bool needs_scope(const uint32_t *a)
{
	const uint8_t *b = (const uint8_t *)a;
	if (b[0] == 0xff)
		return (b[1] & 0x0f) == 1 || (b[1] & 0x0f) == 2;
	return b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
}

/* A raw socket's own options (CRIU's ip_opts_raw_entry): whether it
 * writes the IP header, IP_NODEFRAG, and the ICMP (v6) type filter. */
static int dump_raw_opts(int sk, InetSkEntry *ie, IpOptsEntry *io)
{
	IpOptsRawEntry *r = calloc(1, sizeof(*r));
	bool icmp = ie->proto == (ie->family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	size_t words = ie->family == AF_INET6 ? 8 : 1;	/* struct icmp6_filter, icmp_filter */
	int v, ret = 0;

	if (!r)
		return -1;
	ip_opts_raw_entry__init(r);
	io->raw = r;
	if (ie->family == AF_INET6) {
		ret |= get_opt(sk, SOL_IPV6, IPV6_HDRINCL, &v);
		r->has_hdrincl = r->hdrincl = v != 0;
	} else {
		ret |= get_opt(sk, SOL_IP, IP_HDRINCL, &v);
		r->has_hdrincl = r->hdrincl = v != 0;
		ret |= get_opt(sk, SOL_IP, IP_NODEFRAG, &v);
		r->has_nodefrag = r->nodefrag = v != 0;
	}
	if (!icmp)
		return ret;
	if (!(r->icmpv_filter = calloc(words, sizeof(uint32_t))))
		return -1;
	r->n_icmpv_filter = words;
	socklen_t l = words * sizeof(uint32_t);
	if (getsockopt(sk, ie->family == AF_INET6 ? SOL_ICMPV6 : SOL_RAW, 1 /* ICMP(V6)_FILTER */,
		       r->icmpv_filter, &l) < 0)
		return -1;
	return ret;
}

static int dump_ip_opts(int sk, InetSkEntry *ie)
{
	IpOptsEntry *io = calloc(1, sizeof(*io));
	int v, ret = 0;

	if (!io)
		return -1;
	ip_opts_entry__init(io);
	ie->ip_opts = io;
	if (ie->type == SOCK_RAW && dump_raw_opts(sk, ie, io) < 0)
		return -1;
	if (ie->family == AF_INET6) {
		if (get_opt(sk, SOL_IPV6, IPV6_FREEBIND, &v) < 0)	/* before Linux 5.?: IP_FREEBIND */
			ret |= get_opt(sk, SOL_IP, IP_FREEBIND, &v);
		io->has_freebind = io->freebind = v != 0;
		ret |= get_opt(sk, SOL_IPV6, IPV6_RECVPKTINFO, &v);
		io->has_pktinfo = io->pktinfo = v != 0;
		return ret;
	}
	ret |= get_opt(sk, SOL_IP, IP_FREEBIND, &v);
	io->has_freebind = io->freebind = v != 0;
	ret |= get_opt(sk, SOL_IP, IP_PKTINFO, &v);
	io->has_pktinfo = io->pktinfo = v != 0;
	ret |= get_opt(sk, SOL_IP, IP_TOS, &v);
	io->has_tos = v != 0, io->tos = v;
	ret |= get_opt(sk, SOL_IP, IP_TTL, &v);
	io->has_ttl = v != 0, io->ttl = v;
	return ret;
}

static int dump_tcp_opts(int sk, InetSkEntry *ie)
{
	TcpOptsEntry *to = calloc(1, sizeof(*to));
	int v, ret = 0;

	if (!to)
		return -1;
	tcp_opts_entry__init(to);
	ie->tcp_opts = to;
	ret |= get_opt(sk, SOL_TCP, TCP_NODELAY, &v);
	to->has_nodelay = to->nodelay = v != 0;
	ret |= get_opt(sk, SOL_TCP, TCP_CORK, &v);
	to->has_cork = to->cork = v != 0;
	ret |= get_opt(sk, SOL_TCP, TCP_KEEPCNT, &v);
	to->has_keepcnt = v != 0, to->keepcnt = v;
	ret |= get_opt(sk, SOL_TCP, TCP_KEEPIDLE, &v);
	to->has_keepidle = v != 0, to->keepidle = v;
	ret |= get_opt(sk, SOL_TCP, TCP_KEEPINTVL, &v);
	to->has_keepintvl = v != 0, to->keepintvl = v;
	return ret;
}

/* A TCP socket that is no connection has no way to tell its shutdown
 * bits but poll (tcp_poll): receive shut down shows as POLLRDHUP. */
static int tcp_uncon_shutdown(int sk, InetSkEntry *ie)
{
	struct pollfd p = { .fd = sk, .events = POLLRDHUP | POLLHUP };
	if (poll(&p, 1, 0) < 0)
		return -1;
	if ((p.revents & POLLHUP) && (p.revents & POLLRDHUP))
		ie->has_shutdown = true, ie->shutdown = SK_SHUTDOWN__READ;
	return 0;
}

/* TCP: its state from TCP_INFO; a listener's backlog and queue from
 * sock_diag. Connections are saved through TCP repair (tcp_dump.c). */
static int dump_tcp(struct file_table *t, const struct opts *o, int sk, const struct fd_facts *f, InetSkEntry *ie)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	int err;

	if (getsockopt(sk, SOL_TCP, TCP_INFO, &ti, &l) < 0) {
		pr_perror("pid %d: fd %d: can't read the state of TCP socket %u", f->pid, f->fd, ie->ino);
		return -1;
	}
	ie->state = ti.tcpi_state;
	/* a connection that is over (reset, or closed both ways): with
	 * --tcp-established saved as CRIU saves it, what it had not read
	 * too; without, restored as a socket bound, closed */
	bool repaired = ie->state == TCP_CLOSE && ie->dst_port && o->tcp_established && !o->tcp_close;
	if (ie->state == TCP_CLOSE && ie->dst_port && !o->tcp_close && !repaired)
		ie->dst_port = 0;
	if (repaired && tcp_conn_dump(t, o, sk, f, ie) < 0)
		return -1;
	if (ie->state == TCP_CLOSE)
		return tcp_uncon_shutdown(sk, ie) < 0 ? -1 : dump_tcp_opts(sk, ie);
	if (tcp_conn_state(ie->state))
		return tcp_conn_dump(t, o, sk, f, ie) < 0 ? -1 : dump_tcp_opts(sk, ie);
	if (ie->state != TCP_LISTEN) {
		pr_err("pid %d: fd %d is a TCP socket %s -> %s in state %s, which stasis can't dump (nor can "
		       "CRIU)", f->pid, f->fd, SRC_STR(ie), DST_STR(ie), tcp_state_name(ie->state));
		return -1;
	}
	const struct isk_diag *d = diag_find(t, ie->family, IPPROTO_TCP, ie->ino, &err);
	if (!d) {
		if (!err)
			pr_err("pid %d: fd %d: TCP listener %s (socket %u) is not in the kernel's socket list "
			       "(sock_diag); is it in another network namespace?", f->pid, f->fd, SRC_STR(ie),
			       ie->ino);
		return -1;
	}
	if (d->rq && o->skip_in_flight)
		pr_info("pid %d: fd %d: TCP listener %s: %u connection(s) not yet accepted are dropped "
			"(--skip-in-flight)", f->pid, f->fd, SRC_STR(ie), d->rq);
	else if (d->rq) {
		pr_err("pid %d: fd %d: TCP listener %s has %u connection(s) not yet accepted, which would be "
		       "lost (CRIU refuses them too, or drops them with --skip-in-flight); let the program "
		       "accept them and dump again", f->pid, f->fd, SRC_STR(ie), d->rq);
		return -1;
	}
	ie->backlog = d->wq;
	return dump_tcp_opts(sk, ie);
}

/* UDP, UDP-lite, ping: connected or not; the shutdown bits from
 * sock_diag (an unbound socket is not listed: it has none to keep). */
static int dump_dgram(struct file_table *t, int sk, const struct fd_facts *f, InetSkEntry *ie)
{
	int v, err;

	ie->state = ie->dst_port ? TCP_ESTABLISHED : TCP_CLOSE;
	if (ie->proto == IPPROTO_ICMP || ie->proto == IPPROTO_ICMPV6)
		return 0;
	if (!get_opt(sk, SOL_UDP, UDP_CORK, &v) && v) {
		pr_err("pid %d: fd %d: %s socket %s is corked (UDP_CORK), its pending datagram would be "
		       "lost; stasis can't dump it (nor can CRIU)", f->pid, f->fd,
		       inet_proto_name(ie->family, ie->proto), SRC_STR(ie));
		return -1;
	}
	const struct isk_diag *d = ie->src_port ? diag_find(t, ie->family, ie->proto, ie->ino, &err) : NULL;
	if (!d && ie->src_port && err)
		return -1;
	if (d && d->shutdown & 3)
		ie->has_shutdown = true, ie->shutdown = d->shutdown & 3;
	if (d && d->rq)
		pr_warn("pid %d: fd %d: the datagrams queued on %s socket %s are dropped (as CRIU does)",
			f->pid, f->fd, inet_proto_name(ie->family, ie->proto), SRC_STR(ie));
	return 0;
}

static bool peer_set(const InetSkEntry *ie)
{
	for (size_t i = 0; i < ie->n_dst_addr; i++)
		if (ie->dst_addr[i])
			return true;
	return false;
}

/* A raw socket: connected (to an address, no port) or not. */
static int dump_raw(InetSkEntry *ie)
{
	ie->state = peer_set(ie) ? TCP_ESTABLISHED : TCP_CLOSE;
	return 0;
}

static InetSkEntry *new_isk(void)
{
	InetSkEntry *ie = calloc(1, sizeof(*ie));
	FownEntry *fown = calloc(1, sizeof(*fown));
	SkOptsEntry *so = skopts_new();
	if (!ie || !fown || !so) {
		free(ie);
		free(fown);
		free(so);
		return NULL;
	}
	inet_sk_entry__init(ie);
	fown_entry__init(fown);
	ie->fown = fown;
	ie->opts = so;
	return ie;
}

static int dump_v6(int sk, const struct fd_facts *f, InetSkEntry *ie)
{
	int v;
	if (get_opt(sk, SOL_IPV6, IPV6_V6ONLY, &v) < 0)
		return -1;
	ie->has_v6only = true;
	ie->v6only = v != 0;
	if (!ie->src_port || !needs_scope(ie->src_addr))
		return 0;
	char dev[IFNAMSIZ + 1] = { 0 };
	socklen_t l = IFNAMSIZ;
	if (getsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, dev, &l) < 0 || !dev[0]) {
		pr_err("pid %d: fd %d: socket bound to link-local %s has no device to bind it with again",
		       f->pid, f->fd, SRC_STR(ie));
		return -1;
	}
	return (ie->ifname = strdup(dev)) ? 0 : -1;
}

int inet_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	((struct inet_dump *)files_dump_state(t, &fd_kind_inet))->o = o;
	InetSkEntry *ie = new_isk();
	if (!ie)
		return files_oom(f);
	fe->isk = ie;
	ie->id = fe->id;
	ie->ino = f->st.st_ino;
	ie->flags = f->fi.flags & ~O_CLOEXEC;

	int sk = f->sk, ret = -1, v;
	if (get_opt(sk, SOL_SOCKET, SO_DOMAIN, &v) < 0)
		goto fail;
	ie->family = v;
	if (get_opt(sk, SOL_SOCKET, SO_TYPE, &v) < 0)
		goto fail;
	ie->type = v;
	if (get_opt(sk, SOL_SOCKET, SO_PROTOCOL, &v) < 0)
		goto fail;
	ie->proto = v;
	if (dump_addrs(sk, ie) < 0 || (ie->family == AF_INET6 && dump_v6(sk, f, ie) < 0))
		goto fail;
	/* before TCP repair mode, which changes SO_REUSEADDR */
	if (dump_ip_opts(sk, ie) < 0 || skopts_dump(sk, ie->family, ie->opts) < 0)
		goto fail;
	if (ie->type == SOCK_STREAM && ie->proto == IPPROTO_TCP)
		ret = dump_tcp(t, o, sk, f, ie);
	else if (ie->type == SOCK_DGRAM)
		ret = dump_dgram(t, sk, f, ie);
	else if (ie->type == SOCK_RAW)	/* its "port" is its protocol */
		ret = dump_raw(ie);
	else
		pr_err("pid %d: fd %d: an IP socket of type %u protocol %u, which stasis can't dump", f->pid,
		       f->fd, ie->type, ie->proto);
	if (ret < 0)
		goto out;
	pr_debug("pid %d: fd %d: %s socket %u state %u %s -> %s", f->pid, f->fd,
		 inet_proto_name(ie->family, ie->proto), ie->ino, ie->state, SRC_STR(ie), DST_STR(ie));
	ret = 0;
	goto out;
fail:
	if (errno == ENOMEM)
		ret = files_oom(f);
	else
		pr_perror("pid %d: fd %d: can't read %s socket %u", f->pid, f->fd,
			  inet_proto_name(ie->family, ie->proto), ie->ino);
out:
	return ret;
}
