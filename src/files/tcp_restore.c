/* TCP connections, restore (--tcp-established): the socket is made in
 * repair mode, where bind and connect only set its addresses (no SYN is
 * sent), its sequence numbers and options are set, its queues filled
 * (the receive queue as received; the send queue's sent part as sent
 * and not yet acknowledged, the unsent part written normally), its window
 * set; a half-closed connection gets its FINs back. Repair mode is left
 * once every process of the tree has its files (after_install), so that
 * both ends of a connection within the tree exist before either speaks:
 * then the kernel sends a window probe and the connection goes on.
 *
 * --tcp-close: the socket is made and shut down both ways, as CRIU does:
 * the program finds its connection closed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "files/inet.h"
#include "image/img.h"
#include "util/log.h"

/* More than a socket's queues can hold (net.core.wmem_max/rmem_max are
 * far below): an image saying more is damaged. */
#define TCP_QUEUE_MAX (1u << 30)

static int load_stream(struct inet_rst *r, int dirfd, uint32_t ino)
{
	struct img img;
	TcpStreamEntry *e;

	if (img_open(dirfd, &img, IMG_TCP_STREAM, ino) < 0) {
		if (errno == ENOENT)
			pr_err("TCP connection of socket %u has no image tcp-stream-%x.img (was it dumped with "
			       "--tcp-close? restore it with --tcp-close too)", ino, ino);
		return -1;
	}
	if (img_read_one(&img, &tcp_stream_entry__descriptor, (ProtobufCMessage **)&e) < 0) {
		img_close(&img);
		return -1;
	}
	uint64_t len = (uint64_t)e->inq_len + e->outq_len;
	char *q = NULL;
	if (e->inq_len > TCP_QUEUE_MAX || e->outq_len > TCP_QUEUE_MAX || (e->has_unsq_len && e->unsq_len > e->outq_len) ||
	    !img_has(&img, len) || !(q = malloc(len ? len : 1)) || img_read_raw(&img, q, len) < 0) {
		pr_err("image %s: bad queues (%u and %u bytes)", img.name, e->inq_len, e->outq_len);
		goto fail;
	}
	struct tcp_stream *n = idmap_add(&r->by_ino, ino, r->nr) < 0 ? NULL : realloc(r->s, (r->nr + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory loading %s", img.name);
		goto fail;
	}
	r->s = n;
	r->s[r->nr++] = (struct tcp_stream){ ino, e, q };
	img_close(&img);
	return 0;
fail:
	free(q);
	img_free(e);
	img_close(&img);
	return -1;
}

/* The dump locked each connection (host mode, iptables): the restore's
 * unlock lifts the rules of these. */
static int note_locked(struct rst_files *rf, const InetSkEntry *ie)
{
	struct netlock_conn nc = { .family = ie->family, .sport = ie->src_port, .dport = ie->dst_port };

	if (!rf->netlock)
		return 0;
	memcpy(nc.src, ie->src_addr, ie->n_src_addr * 4 > 16 ? 16 : ie->n_src_addr * 4);
	memcpy(nc.dst, ie->dst_addr, ie->n_dst_addr * 4 > 16 ? 16 : ie->n_dst_addr * 4);
	return netlock_conn_locked(rf->netlock, &nc);
}

int tcp_load_streams(struct rst_files *rf, int dirfd)
{
	struct inet_rst *r = files_rst_state(rf, &fd_kind_inet);

	/* closed at restore (--tcp-close), a connection's lock goes too */
	for (int i = 0; i < rf->nr; i++) {
		const InetSkEntry *ie = rf->e[i]->type == FD_TYPES__INETSK ? rf->e[i]->isk : NULL;
		if (!ie || !tcp_conn_entry(ie))
			continue;
		if (note_locked(rf, ie) < 0 || (!rf->o->tcp_close && load_stream(r, dirfd, ie->ino) < 0))
			return -1;
	}
	return 0;
}

void tcp_unload_streams(struct rst_files *rf)
{
	struct inet_rst *r = files_rst_state(rf, &fd_kind_inet);
	for (int i = 0; i < r->nr; i++) {
		img_free(r->s[i].e);
		free(r->s[i].q);
	}
	free(r->s);
	r->s = NULL;
	r->nr = 0;
	idmap_free(&r->by_ino);
}

static const struct tcp_stream *find_stream(const struct rst_files *rf, uint32_t ino)
{
	const struct inet_rst *r = files_rst_state(rf, &fd_kind_inet);
	unsigned pos = 0;
	for (int i; (i = idmap_next(&r->by_ino, ino, &pos)) >= 0;)
		if (i < r->nr && r->s[i].ino == ino)	/* past the end: a load that failed */
			return &r->s[i];
	return NULL;
}

static int set_int(int sk, int name, int val)
{
	return setsockopt(sk, SOL_TCP, name, &val, sizeof(val));
}

/* len bytes into the queue the socket repairs (or, out of repair, its
 * send queue as the program would write them); a large buffer the kernel
 * can't take whole is given in smaller pieces. */
static int fill(int sk, const char *buf, uint32_t len, const char *what, const char *queue)
{
	uint32_t chunk = len;

	while (len) {
		ssize_t n = send(sk, buf, len < chunk ? len : chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0) {
			if (chunk > 1024) {
				chunk /= 2;
				continue;
			}
			pr_perror("%s: can't put back its %s (%u bytes left)", what, queue, len);
			return -1;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

/* Data into the send queue (the sent part in repair mode, the unsent one
 * out of it). The queue held it all, in buffers the kernel counts with
 * their overhead and a size that had grown: the send buffer is lent room
 * for it (repair mode needs CAP_NET_ADMIN, which SO_SNDBUFFORCE asks),
 * then its own size and lock are set back. */
static int write_roomy(int sk, const char *buf, uint32_t len, const char *what, const char *queue)
{
	int size = 0, lock = 0, big;
	socklen_t l = sizeof(size);

	if (getsockopt(sk, SOL_SOCKET, SO_SNDBUF, &size, &l) < 0) {
		pr_perror("%s: can't read its send buffer size", what);
		return -1;
	}
	l = sizeof(lock);
	bool has_lock = getsockopt(sk, SOL_SOCKET, SO_BUF_LOCK, &lock, &l) == 0;
	big = size / 2 + (len > INT32_MAX / 4 ? INT32_MAX / 2 : (int)len * 2) + (1 << 20);
	if (setsockopt(sk, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0) {
		pr_perror("%s: can't make room for its data not yet sent", what);
		return -1;
	}
	int ret = fill(sk, buf, len, what, queue);
	size /= 2;	/* the kernel doubles what it is given */
	if (setsockopt(sk, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0 ||
	    (has_lock && setsockopt(sk, SOL_SOCKET, SO_BUF_LOCK, &lock, sizeof(lock)) < 0)) {
		pr_perror("%s: can't set its send buffer size back", what);
		return -1;
	}
	return ret;
}

static int queue_seq(int sk, int q, uint32_t seq, const char *what)
{
	if (set_int(sk, TCP_REPAIR_QUEUE, q) < 0 || set_int(sk, TCP_QUEUE_SEQ, seq) < 0) {
		pr_perror("%s: can't set the sequence number of its %s queue", what,
			  q == TCP_RECV_QUEUE ? "receive" : "send");
		return -1;
	}
	return 0;
}

/* The options the handshake agreed, which repair mode lets us set. */
static int agreed_options(int sk, const TcpStreamEntry *e, const char *what)
{
	struct tcp_repair_opt o[4];
	int n = 0;

	if (e->opt_mask & TCPI_OPT_SACK)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (e->opt_mask & TCPI_OPT_WSCALE)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, e->snd_wscale + (e->rcv_wscale << 16) };
	if (e->opt_mask & TCPI_OPT_TIMESTAMPS)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	o[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, e->mss_clamp };
	if (setsockopt(sk, SOL_TCP, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0])) < 0) {
		pr_perror("%s: can't set its TCP options (mss, window scale, SACK, timestamps)", what);
		return -1;
	}
	if ((e->opt_mask & TCPI_OPT_TIMESTAMPS) && set_int(sk, TCP_TIMESTAMP, e->timestamp) < 0) {
		pr_perror("%s: can't set its timestamp", what);
		return -1;
	}
	return 0;
}

/* The kernel's TCP_MAXSEG bounds (TCP_MIN_MSS, MAX_TCP_WINDOW). */
#define USER_MSS_MIN 88
#define USER_MSS_MAX 32767

/* The segment size a connection sends with is fixed at connect from the
 * MSS clamp, which TCP_REPAIR_OPTIONS can only set afterwards: connected
 * with the default clamp (536), it would send 524-byte segments for
 * ever. A user MSS makes connect take the dumped clamp instead (as far
 * as TCP_MAXSEG goes); it is cleared once connected, the program never
 * having set it (the images keep none). */
static int mss_for_connect(int sk, const TcpStreamEntry *e, bool on, const char *what)
{
	uint32_t mss = e ? e->mss_clamp : 0;

	if (mss < USER_MSS_MIN)
		return 0;
	if (set_int(sk, TCP_MAXSEG, on ? (int)(mss > USER_MSS_MAX ? USER_MSS_MAX : mss) : 0) < 0) {
		pr_perror("%s: can't set its segment size (%u)", what, mss);
		return -1;
	}
	return 0;
}

/* Bound and connected in repair mode: the addresses only (and the segment
 * size of an established one, e). */
static int place(int sk, const InetSkEntry *ie, const TcpStreamEntry *e, const char *what)
{
	struct sockaddr_storage ss;
	int ifindex = ie->ifname ? (int)if_nametoindex(ie->ifname) : 0;
	bool syn_sent = ie->state == TCP_SYN_SENT;

	if (inet_bind(sk, ie) < 0)
		return -1;
	socklen_t len = inet_sockaddr(ie, ie->dst_addr, ie->dst_port, ifindex, &ss);
	/* a connection still opening sends its SYN again: out of repair */
	if (syn_sent && set_int(sk, TCP_REPAIR, 0) < 0)
		goto fail;
	if (!syn_sent && mss_for_connect(sk, e, true, what) < 0)
		return -1;
	if (connect(sk, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		pr_perror("can't connect %s again to %s%s", what, DST_STR(ie),
			  errno == EADDRNOTAVAIL ? " (a connection between these addresses exists: is the dumped one still there?)" : "");
		return -1;
	}
	if (!syn_sent && mss_for_connect(sk, e, false, what) < 0)
		return -1;
	if (syn_sent && set_int(sk, TCP_REPAIR, 1) < 0)
		goto fail;
	return 0;
fail:
	pr_perror("%s: can't switch repair mode", what);
	return -1;
}

/* The FIN this end sent: shut down in repair mode, with the send queue
 * repaired if the peer acknowledged it (it counts as sent then). */
static int restore_own_fin(int sk, bool acked, const char *what)
{
	if (acked && set_int(sk, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0)
		goto fail;
	if (shutdown(sk, SHUT_WR) < 0)
		goto fail;
	if (acked && set_int(sk, TCP_REPAIR_QUEUE, TCP_NO_QUEUE) < 0)
		goto fail;
	return 0;
fail:
	pr_perror("%s: can't put back the FIN it sent", what);
	return -1;
}

/* seqs: where each queue starts, as the kernel counts (the FIN not in
 * the images' numbers). */
static int restore_stream(int sk, const InetSkEntry *ie, const struct tcp_stream *s, const char *what)
{
	const TcpStreamEntry *e = s->e;
	uint32_t st = TCPF(ie->state), inq_seq = e->inq_seq, outq_seq = e->outq_seq;
	uint32_t unsent = e->has_unsq_len ? e->unsq_len : 0, sent = e->outq_len - unsent;

	if (st & TCP_RCVQ_FIN)
		inq_seq--;
	if (st & TCP_SNDQ_FIN)
		outq_seq--;
	if (queue_seq(sk, TCP_RECV_QUEUE, inq_seq - e->inq_len, what) < 0 ||
	    queue_seq(sk, TCP_SEND_QUEUE, outq_seq - e->outq_len - (ie->state == TCP_SYN_SENT), what) < 0)
		return -1;
	if (place(sk, ie, e, what) < 0)
		return -1;
	if (ie->state == TCP_SYN_SENT)
		return 0;
	if (agreed_options(sk, e, what) < 0)
		return -1;
	if (e->inq_len && (set_int(sk, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 ||
			   fill(sk, s->q, e->inq_len, what, "receive queue") < 0))
		return -1;
	if (sent && (set_int(sk, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0 ||
		     write_roomy(sk, s->q + e->inq_len, sent, what, "sent data not yet acknowledged") < 0))
		return -1;
	/* what was not sent yet is written once out of repair (tcp_conn_resume),
	 * when the peer exists; but before our FIN if we sent one */
	if (unsent && (st & TCP_SNDQ_FIN) && (set_int(sk, TCP_REPAIR, 0) < 0 ||
		       write_roomy(sk, s->q + e->inq_len + sent, unsent, what, "data not yet sent") < 0 ||
		       set_int(sk, TCP_REPAIR, 1) < 0))
		return -1;
	if (e->has_snd_wnd) {
		struct tcp_repair_window w = { .snd_wl1 = e->snd_wl1, .snd_wnd = e->snd_wnd,
					       .max_window = e->max_window, .rcv_wnd = e->rcv_wnd,
					       .rcv_wup = e->rcv_wup };
		/* never ahead of the receive queue (CRIU's images may be: its
		 * dump reads the window last) */
		if ((int32_t)(w.rcv_wup - inq_seq) > 0)
			w.rcv_wup = inq_seq;
		if ((int32_t)(w.snd_wl1 - (inq_seq + w.rcv_wnd)) > 0)
			w.snd_wl1 = inq_seq;
		if (st & TCP_RCVQ_FIN) {	/* the FIN comes in again below */
			w.rcv_wup--;
			w.rcv_wnd++;
		}
		if (setsockopt(sk, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0) {
			pr_perror("%s: can't set its window", what);
			return -1;
		}
	}
	/* the FINs in the order they came: own first unless it is LAST_ACK */
	uint32_t una = outq_seq - e->outq_len;
	/* the window the peer offers, as its segments say it: unchanged */
	uint32_t peer_win = e->has_snd_wnd ? e->snd_wnd >> (e->opt_mask & TCPI_OPT_WSCALE ? e->snd_wscale : 0) : 0xffff;
	if ((st & TCP_SNDQ_FIRST_FIN) && restore_own_fin(sk, st & TCP_SNDQ_FIN_ACKED, what) < 0)
		return -1;
	if ((st & TCP_RCVQ_FIN) && tcp_send_fake(ie, inq_seq, una, peer_win, true) < 0)
		return -1;
	if ((st & TCP_SNDQ_SECOND_FIN) && restore_own_fin(sk, st & TCP_SNDQ_FIN_ACKED, what) < 0)
		return -1;
	/* the peer's acknowledgement of our FIN, after its own FIN if it
	 * sent one (CLOSE: the connection ends there) */
	uint32_t peer_seq = inq_seq + !!(st & TCP_RCVQ_FIN_ACKED);
	if ((st & TCP_SNDQ_FIN_ACKED) && tcp_send_fake(ie, peer_seq, una + 1, peer_win, false) < 0)
		return -1;
	return 0;
}

int tcp_conn_restore(struct rst_files *rf, int sk, const InetSkEntry *ie, const char *what)
{
	if (rf->o->tcp_close) {
		if (shutdown(sk, SHUT_RDWR) < 0 && errno != ENOTCONN) {
			pr_perror("can't shut down %s", what);
			return -1;
		}
		return 0;
	}
	const struct tcp_stream *s = find_stream(rf, ie->ino);
	if (!s) {
		pr_err("%s: its stream was not loaded", what);
		return -1;
	}
	if (set_int(sk, TCP_REPAIR, 1) < 0) {
		pr_perror("can't restore %s -> %s: TCP repair mode%s", what, DST_STR(ie),
			  errno == EPERM ? " needs CAP_NET_ADMIN" : "");
		return -1;
	}
	return restore_stream(sk, ie, s, what);
}

int tcp_conn_resume(struct rst_files *rf, int fd, const InetSkEntry *ie, const char *where)
{
	char what[160];

	snprintf(what, sizeof(what), "%s: TCP connection %s -> %s", where, SRC_STR(ie), DST_STR(ie));
	if (rf->o->tcp_close)
		return 0;
	if (set_int(fd, TCP_REPAIR, 0) < 0) {
		pr_perror("%s: can't leave repair mode", what);
		return -1;
	}
	const struct tcp_stream *s = find_stream(rf, ie->ino);
	const TcpStreamEntry *e = s ? s->e : NULL;
	uint32_t unsent = e && e->has_unsq_len ? e->unsq_len : 0;
	if (!unsent || (TCPF(ie->state) & TCP_SNDQ_FIN) || ie->state == TCP_SYN_SENT)
		return 0;
	return write_roomy(fd, s->q + e->inq_len + e->outq_len - unsent, unsent, what, "data not yet sent");
}
