/* TCP connections, dump (--tcp-established): the socket is put in repair
 * mode (TCP_REPAIR, our own fd on it), which silences it: the kernel
 * sends nothing for it from then on, and a close in repair mode ends it
 * without a FIN or a RST. Its sequence numbers, both queues (read with
 * MSG_PEEK through TCP_REPAIR_QUEUE), the options agreed at the handshake
 * and the window are saved in tcp-stream-INO.img (CRIU's tcp_stream_entry).
 *
 * The sockets stay in repair mode until the dump ends: when the tree is
 * killed after the dump, the connections die silently (the restored
 * sockets take them over); when the dump fails or the tree runs on
 * (--leave-running), repair mode is left and the connections go on. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "files/inet.h"
#include "image/img.h"
#include "util/log.h"

#ifndef SIOCOUTQNSD
#define SIOCOUTQNSD 0x894B
#endif

/* The part of struct tcp_info we read: older kernels' layout. */
struct tcp_info_head {
	uint8_t state, ca_state, retransmits, probes, backoff, options;
	uint8_t snd_wscale : 4, rcv_wscale : 4;
};

static int repair(int sk, int on)
{
	return setsockopt(sk, SOL_TCP, TCP_REPAIR, &on, sizeof(on));
}

/* len bytes of queue q (TCP_RECV_QUEUE, TCP_SEND_QUEUE) and the sequence
 * number it ends at; one byte more is asked for to be sure there are not. */
static int read_queue(int sk, int q, uint32_t len, uint32_t *seq, char **buf, const char *what)
{
	socklen_t l = sizeof(*seq);

	if (setsockopt(sk, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) < 0 ||
	    getsockopt(sk, SOL_TCP, TCP_QUEUE_SEQ, seq, &l) < 0) {
		pr_perror("%s: can't read the sequence number of its %s queue", what,
			  q == TCP_RECV_QUEUE ? "receive" : "send");
		return -1;
	}
	*buf = NULL;
	if (!len)
		return 0;
	if (!(*buf = malloc(len + 1))) {
		pr_err("%s: out of memory for its queue of %u bytes", what, len);
		return -1;
	}
	ssize_t n = recv(sk, *buf, len + 1, MSG_PEEK | MSG_DONTWAIT);
	if (n != (ssize_t)len) {
		pr_perror("%s: read %zd bytes of its %s queue, which holds %u", what, n,
			  q == TCP_RECV_QUEUE ? "receive" : "send", len);
		return -1;
	}
	return 0;
}

/* The queues' lengths; a FIN in the send queue (a half-closed state) is
 * no data: not counted, as CRIU counts. */
static int queue_lengths(int sk, int state, TcpStreamEntry *e, const char *what)
{
	int in, out, unsent;

	if (ioctl(sk, SIOCINQ, &in) < 0 || ioctl(sk, SIOCOUTQ, &out) < 0 || ioctl(sk, SIOCOUTQNSD, &unsent) < 0) {
		pr_perror("%s: can't read the length of its queues", what);
		return -1;
	}
	if (state == TCP_CLOSE)	/* reset: what it had to send is gone */
		out = unsent = 0;
	if ((1 << state) & TCP_SNDQ_FIN) {
		out = out ? out - 1 : 0;
		unsent = unsent ? unsent - 1 : 0;
	}
	e->inq_len = in;
	e->outq_len = out;
	e->has_unsq_len = true;
	e->unsq_len = unsent;
	return 0;
}

/* What the handshake agreed (mss, window scales, SACK, timestamps) and
 * the window, which TCP_REPAIR_WINDOW reads since Linux 4.8. */
static int stream_options(int sk, const struct tcp_info_head *ti, TcpStreamEntry *e, const char *what)
{
	struct tcp_repair_window w;
	socklen_t l = sizeof(e->mss_clamp);
	int v;

	if (getsockopt(sk, SOL_TCP, TCP_MAXSEG, &e->mss_clamp, &l) < 0)
		goto fail;
	e->opt_mask = ti->options;
	if (ti->options & TCPI_OPT_WSCALE) {
		e->snd_wscale = ti->snd_wscale;
		e->has_rcv_wscale = true;
		e->rcv_wscale = ti->rcv_wscale;
	}
	if (ti->options & TCPI_OPT_TIMESTAMPS) {
		l = sizeof(v);
		if (getsockopt(sk, SOL_TCP, TCP_TIMESTAMP, &v, &l) < 0)
			goto fail;
		e->has_timestamp = true;
		e->timestamp = v;
	}
	l = sizeof(w);
	if (getsockopt(sk, SOL_TCP, TCP_REPAIR_WINDOW, &w, &l) < 0) {
		if (errno == ENOPROTOOPT)
			return 0;
		goto fail;
	}
	e->has_snd_wl1 = e->has_snd_wnd = e->has_max_window = e->has_rcv_wnd = e->has_rcv_wup = true;
	e->snd_wl1 = w.snd_wl1;
	e->snd_wnd = w.snd_wnd;
	e->max_window = w.max_window;
	e->rcv_wnd = w.rcv_wnd;
	e->rcv_wup = w.rcv_wup;
	return 0;
fail:
	pr_perror("%s: can't read its TCP options", what);
	return -1;
}

/* The connection's state, read in repair mode (nothing moves then but
 * what the peer sends). */
static int save_stream(struct tcp_conn *c, InetSkEntry *ie, const char *what)
{
	struct tcp_info_head ti;
	socklen_t l = sizeof(ti);
	TcpStreamEntry *e = calloc(1, sizeof(*e));

	if (!e) {
		pr_err("%s: out of memory", what);
		return -1;
	}
	tcp_stream_entry__init(e);
	c->e = e;
	if (getsockopt(c->fd, SOL_TCP, TCP_INFO, &ti, &l) < 0) {
		pr_perror("%s: can't read its state", what);
		return -1;
	}
	if (!tcp_conn_state(ti.state)) {
		pr_err("%s: went to state %s during the dump", what, tcp_state_name(ti.state));
		return -1;
	}
	ie->state = ti.state;
	if (queue_lengths(c->fd, ti.state, e, what) < 0 || stream_options(c->fd, &ti, e, what) < 0 ||
	    read_queue(c->fd, TCP_RECV_QUEUE, e->inq_len, &e->inq_seq, &c->inq, what) < 0 ||
	    read_queue(c->fd, TCP_SEND_QUEUE, e->outq_len, &e->outq_seq, &c->outq, what) < 0)
		return -1;
	int q = TCP_NO_QUEUE;
	setsockopt(c->fd, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
	pr_debug("%s: %s, receive queue %u bytes up to %u, send queue %u (%u unsent) up to %u", what,
		 tcp_state_name(ie->state), e->inq_len, e->inq_seq, e->outq_len, e->unsq_len, e->outq_seq);
	return 0;
}

int tcp_conn_dump(struct file_table *t, const struct opts *o, int sk, const struct fd_facts *f, InetSkEntry *ie)
{
	struct inet_dump *u = files_dump_state(t, &fd_kind_inet);
	char what[160];

	snprintf(what, sizeof(what), "pid %d: fd %d: TCP connection %s -> %s", f->pid, f->fd, SRC_STR(ie),
		 DST_STR(ie));
	if (o->tcp_close)	/* saved as it is, made closed on restore (CRIU's way) */
		return 0;
	if (!o->tcp_established) {
		pr_err("pid %d: fd %d is a TCP connection %s -> %s (%s); dump it with --tcp-established "
		       "(or --tcp-close to restore it closed)", f->pid, f->fd, SRC_STR(ie), DST_STR(ie),
		       tcp_state_name(ie->state));
		return -1;
	}
	struct tcp_conn *n = realloc(u->conns, (u->nr_conns + 1) * sizeof(*n));
	if (!n)
		return files_oom(f);
	u->conns = n;
	struct tcp_conn *c = &u->conns[u->nr_conns];
	*c = (struct tcp_conn){ .ino = ie->ino, .fd = dup(sk) };
	socklen_t l = sizeof(c->reuseaddr);
	if (c->fd < 0 || getsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &c->reuseaddr, &l) < 0) {
		pr_perror("%s: can't keep it open", what);
		if (c->fd >= 0)
			close(c->fd);
		return -1;
	}
	if (repair(c->fd, 1) < 0) {
		pr_perror("%s: can't put it in repair mode (TCP_REPAIR%s)", what,
			  errno == EPERM ? ": it needs CAP_NET_ADMIN" : "");
		close(c->fd);
		return -1;
	}
	u->nr_conns++;	/* from here on, undone by tcp_dump_end */
	return save_stream(c, ie, what);
}

static int write_stream(int dirfd, const struct tcp_conn *c)
{
	struct img img;

	if (img_create(dirfd, &img, IMG_TCP_STREAM, c->ino) < 0)
		return -1;
	if (img_write(&img, &c->e->base) < 0 || (c->e->inq_len && img_write_raw(&img, c->inq, c->e->inq_len) < 0) ||
	    (c->e->outq_len && img_write_raw(&img, c->outq, c->e->outq_len) < 0)) {
		img_abort(&img);
		return -1;
	}
	return img_finish(&img);
}

int tcp_write_streams(struct file_table *t, int dirfd)
{
	struct inet_dump *u = files_dump_state(t, &fd_kind_inet);

	for (int i = 0; i < u->nr_conns; i++)
		if (write_stream(dirfd, &u->conns[i]) < 0)
			return -1;
	return 0;
}

void tcp_dump_end(struct file_table *t, bool resume)
{
	struct inet_dump *u = files_dump_state(t, &fd_kind_inet);

	for (int i = 0; i < u->nr_conns; i++) {
		struct tcp_conn *c = &u->conns[i];
		if (c->fd >= 0 && resume) {
			/* leaving repair mode resets SO_REUSEADDR: its own value back */
			if (repair(c->fd, 0) < 0)
				pr_perror("can't take TCP socket %u out of repair mode: its connection is stuck",
					  c->ino);
			setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &c->reuseaddr, sizeof(c->reuseaddr));
		}
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		if (c->e)
			tcp_stream_entry__free_unpacked(c->e, NULL);
		c->e = NULL;
		free(c->inq);
		free(c->outq);
		c->inq = c->outq = NULL;
	}
	free(u->conns);
	u->conns = NULL;
	u->nr_conns = 0;
}
