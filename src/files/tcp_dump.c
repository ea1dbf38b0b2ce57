/* TCP connections, dump (--tcp-established): each socket is put in
 * repair mode (TCP_REPAIR, our own fd on it), with its send queue chosen
 * for repair: what the kernel would send from then on it marks sent
 * without sending it. Its sequence numbers, both queues (read with
 * MSG_PEEK through TCP_REPAIR_QUEUE), the options agreed at the handshake
 * and the window are saved in tcp-stream-INO.img (CRIU's tcp_stream_entry).
 *
 * All the connections of the tree are silenced first, then all read one
 * right after the other (tcp_dump_prepare, before any fd is dumped): both
 * ends of a connection within the tree are caught at nearly one moment,
 * and what one still got from the other meanwhile is taken out of the
 * sender's queue (reconcile). A peer outside the tree may still send
 * until the dump ends: only a network lock stops that.
 *
 * The sockets stay in repair mode until the dump ends: when the tree is
 * killed after the dump, the connections die silently (the restored
 * sockets take them over); when the dump fails or the tree runs on
 * (--leave-running), repair mode is left and the connections go on. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "files/inet.h"
#include "files/sock_diag.h"
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

/* Queue q (TCP_RECV_QUEUE, TCP_SEND_QUEUE) chosen for repair. */
static int repair_queue(int sk, int q, const char *what)
{
	if (setsockopt(sk, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) < 0) {
		pr_perror("%s: can't choose its %s queue for repair", what, q == TCP_RECV_QUEUE ? "receive" : "send");
		return -1;
	}
	return 0;
}

/* The sequence number the chosen queue ends at, and its len bytes; one
 * byte more is asked for to be sure there are not more. */
static int read_queue(int sk, uint32_t len, uint32_t *seq, char **buf, const char *what, const char *queue)
{
	socklen_t l = sizeof(*seq);

	if (getsockopt(sk, SOL_TCP, TCP_QUEUE_SEQ, seq, &l) < 0) {
		pr_perror("%s: can't read the sequence number of its %s queue", what, queue);
		return -1;
	}
	*buf = NULL;
	if (!len)
		return 0;
	if (!(*buf = malloc(len + 1))) {
		pr_err("%s: out of memory for its %s queue of %u bytes", what, queue, len);
		return -1;
	}
	ssize_t n = recv(sk, *buf, len + 1, MSG_PEEK | MSG_DONTWAIT);
	if (n != (ssize_t)len) {
		pr_perror("%s: read %zd bytes of its %s queue, which holds %u", what, n, queue, len);
		return -1;
	}
	return 0;
}

/* The receive queue: its length and bytes. */
static int save_recv(struct tcp_conn *c, TcpStreamEntry *e, const char *what)
{
	int in;

	if (repair_queue(c->fd, TCP_RECV_QUEUE, what) < 0)
		return -1;
	if (ioctl(c->fd, SIOCINQ, &in) < 0) {
		pr_perror("%s: can't read the length of its receive queue", what);
		return -1;
	}
	e->inq_len = in;
	return read_queue(c->fd, e->inq_len, &e->inq_seq, &c->inq, what, "receive");
}

/* The send queue: what was sent and not acknowledged, what was not sent
 * yet; a FIN in it (a half-closed state) is no data: not counted, as
 * CRIU counts. Read in the send queue's repair mode, the silent one (see
 * silence): what was sent meanwhile is counted as sent. */
static int save_send(struct tcp_conn *c, int state, TcpStreamEntry *e, const char *what)
{
	int out, unsent;

	if (repair_queue(c->fd, TCP_SEND_QUEUE, what) < 0)
		return -1;
	if (ioctl(c->fd, SIOCOUTQ, &out) < 0 || ioctl(c->fd, SIOCOUTQNSD, &unsent) < 0) {
		pr_perror("%s: can't read the length of its send queue", what);
		return -1;
	}
	if ((1 << state) & TCP_SNDQ_FIN) {
		out = out ? out - 1 : 0;
		unsent = unsent ? unsent - 1 : 0;
	}
	/* closed (a reset can leave data there): the program can't read
	 * it, and no peer will acknowledge it (CRIU drops it too) */
	if (state == TCP_CLOSE)
		out = unsent = 0;
	e->outq_len = out;
	e->has_unsq_len = true;
	e->unsq_len = unsent;
	return read_queue(c->fd, e->outq_len, &e->outq_seq, &c->outq, what, "send");
}

/* What the handshake agreed (mss, window scales, SACK, timestamps). */
static int stream_options(int sk, const struct tcp_info_head *ti, TcpStreamEntry *e, const char *what)
{
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
	return 0;
fail:
	pr_perror("%s: can't read its TCP options", what);
	return -1;
}

/* The window, which TCP_REPAIR_WINDOW reads since Linux 4.8: read before
 * the receive queue, so that it is never ahead of it (the peer may still
 * send meanwhile). */
static int save_window(int sk, TcpStreamEntry *e, const char *what)
{
	struct tcp_repair_window w;
	socklen_t l = sizeof(w);

	if (getsockopt(sk, SOL_TCP, TCP_REPAIR_WINDOW, &w, &l) < 0) {
		if (errno == ENOPROTOOPT)
			return 0;
		pr_perror("%s: can't read its window", what);
		return -1;
	}
	e->has_snd_wl1 = e->has_snd_wnd = e->has_max_window = e->has_rcv_wnd = e->has_rcv_wup = true;
	e->snd_wl1 = w.snd_wl1;
	e->snd_wnd = w.snd_wnd;
	e->max_window = w.max_window;
	e->rcv_wnd = w.rcv_wnd;
	e->rcv_wup = w.rcv_wup;
	return 0;
}

/* The window TCP_REPAIR_WINDOW sets: snd_wnd and snd_wl1 from e (saved
 * earlier) if e, else shut: no room in the peer's window, and the
 * peer's segments seen as too old to open it. A timer of a connection in
 * repair mode still sends (a probe of the peer's window carries data),
 * which the image would miss: with no window, a probe carries none. */
static int set_send_window(int sk, const TcpStreamEntry *e)
{
	struct tcp_repair_window w;
	socklen_t l = sizeof(w);

	if (getsockopt(sk, SOL_TCP, TCP_REPAIR_WINDOW, &w, &l) < 0)
		return errno == ENOPROTOOPT ? 0 : -1;
	if (e && !e->has_snd_wnd)
		return 0;
	w.snd_wnd = e ? e->snd_wnd : 0;
	w.snd_wl1 = e ? e->snd_wl1 : w.rcv_wup + w.rcv_wnd;
	if (w.max_window < w.snd_wnd)
		w.max_window = w.snd_wnd;
	return setsockopt(sk, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w));
}

/* The connection's state, read in repair mode (nothing moves then but
 * what the peer sends): into c. */
static int read_stream(struct tcp_conn *c, const char *what)
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
	if (!tcp_conn_state(ti.state) && ti.state != TCP_CLOSE) {
		pr_err("%s: went to state %s during the dump", what, tcp_state_name(ti.state));
		return -1;
	}
	c->state = ti.state;
	/* the receive queue first: the send queue's mode is the silent one,
	 * left on (see silence) */
	if (save_window(c->fd, e, what) < 0 || save_recv(c, e, what) < 0 || save_send(c, ti.state, e, what) < 0 ||
	    stream_options(c->fd, &ti, e, what) < 0)
		return -1;
	if (set_send_window(c->fd, NULL) < 0)
		pr_warn("%s: can't shut its send window for the dump: %s", what, strerror(errno));
	pr_debug("%s: %s, receive queue %u bytes up to %u, send queue %u (%u unsent) up to %u", what,
		 tcp_state_name(c->state), e->inq_len, e->inq_seq, e->outq_len, e->unsq_len, e->outq_seq);
	return 0;
}

/* What read_stream read is dropped (to be read again, and said why). */
static void forget_stream(struct tcp_conn *c)
{
	if (c->e)
		tcp_stream_entry__free_unpacked(c->e, NULL);
	free(c->inq);
	free(c->outq);
	c->e = NULL;
	c->inq = c->outq = NULL;
}

/* The connection of fd as the network lock names it (host mode). */
static int conn_tuple(int fd, struct netlock_conn *nc)
{
	struct sockaddr_storage a, b;
	socklen_t la = sizeof(a), lb;

	*nc = (struct netlock_conn){ 0 };
	/* SO_PEERNAME: getpeername says ENOTCONN for a socket still opening
	 * (SYN_SENT) or closed (reset); its length exactly the address's */
	if (getsockname(fd, (struct sockaddr *)&a, &la) < 0)
		return -1;
	lb = a.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERNAME, &b, &lb) < 0)
		return -1;
	nc->family = a.ss_family;
	if (a.ss_family == AF_INET) {
		memcpy(nc->src, &((struct sockaddr_in *)&a)->sin_addr, 4);
		memcpy(nc->dst, &((struct sockaddr_in *)&b)->sin_addr, 4);
		nc->sport = ntohs(((struct sockaddr_in *)&a)->sin_port);
		nc->dport = ntohs(((struct sockaddr_in *)&b)->sin_port);
	} else {
		memcpy(nc->src, &((struct sockaddr_in6 *)&a)->sin6_addr, 16);
		memcpy(nc->dst, &((struct sockaddr_in6 *)&b)->sin6_addr, 16);
		nc->sport = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
		nc->dport = ntohs(((struct sockaddr_in6 *)&b)->sin6_port);
	}
	return 0;
}

/* A connection of ino in repair mode and silent: our own fd on it (from
 * sk), kept in the dump's list; NULL if repair mode can't be had (errno).
 * Host mode: locked both ways first (net/netlock.c, as CRIU locks it),
 * so that its peer's packets from now until the restore get no reset;
 * unless the caller locked it already (locked), which is undone if
 * repair fails. */
static struct tcp_conn *silence(struct inet_dump *u, int sk, uint32_t ino, const struct netlock_conn *locked)
{
	struct netlock_conn nc;
	struct tcp_conn *n = realloc(u->conns, (u->nr_conns + 1) * sizeof(*n));
	if (!n)
		return NULL;
	u->conns = n;
	struct tcp_conn *c = &u->conns[u->nr_conns];
	*c = (struct tcp_conn){ .ino = ino, .fd = fcntl(sk, F_DUPFD_CLOEXEC, 0) };
	socklen_t l = sizeof(c->reuseaddr);
	bool lock = u->netlock && !locked;
	if (c->fd < 0 || idmap_add(&u->conn_by_ino, ino, u->nr_conns) < 0 ||
	    getsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &c->reuseaddr, &l) < 0 ||
	    (lock && (conn_tuple(c->fd, &nc) < 0 || netlock_conn_lock(u->netlock, &nc) < 0)) ||
	    repair(c->fd, 1) < 0) {
		int e = errno;
		if (c->fd >= 0)
			close(c->fd);
		if (locked && u->netlock)
			netlock_conn_unlock(u->netlock, locked);
		errno = e;
		return NULL;
	}
	u->nr_conns++;	/* from here on, undone by tcp_dump_end */
	/* What the kernel would send from now on it marks sent without
	 * sending (repair mode alone still sends new data the peer's window
	 * lets out): the peer gets nothing our image does not hold. */
	int q = TCP_SEND_QUEUE;
	setsockopt(c->fd, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
	return c;
}

static struct tcp_conn *find_conn(struct inet_dump *u, uint32_t ino)
{
	unsigned pos = 0;
	for (int i; (i = idmap_next(&u->conn_by_ino, ino, &pos)) >= 0;)
		if (i < u->nr_conns && u->conns[i].ino == ino)
			return &u->conns[i];
	return NULL;
}

/* The tree's connections found before any is silenced: our fd on each
 * (sk), its inode, its tuple for the lock. */
struct tcp_found {
	int sk;
	uint32_t ino;
	struct netlock_conn nc;
};

struct tcp_found_list {
	struct tcp_found *f;
	int nr;
	struct idmap by_ino;
};

static bool found_has(const struct tcp_found_list *fl, uint32_t ino)
{
	unsigned pos = 0;
	for (int i; (i = idmap_next(&fl->by_ino, ino, &pos)) >= 0;)
		if (i < fl->nr && fl->f[i].ino == ino)	/* a stale one past the end: unused */
			return true;
	return false;
}

/* A TCP connection of fd of tf's task (a socket, inode ino, says the
 * census), into fl: the socket itself is asked (our own fd on it). */
static void find_fd(struct inet_dump *u, struct tcp_found_list *fl, const struct task_fds *tf, int fd,
		    uint64_t ino)
{
	char proto[16];
	struct stat st;
	struct tcp_info_head ti;
	socklen_t l = sizeof(ti);

	if (find_conn(u, ino) || found_has(fl, ino))
		return;
	int sk = task_fds_take(tf, fd);
	if (sk < 0)
		return;
	struct tcp_found *n = NULL;
	/* one that fails is left to tcp_conn_dump, which says why */
	if (fstat(sk, &st) < 0 || st.st_ino != ino || sock_fd_proto_name(sk, proto, sizeof(proto)) < 0 ||
	    (strcmp(proto, "TCP") && strcmp(proto, "TCPv6")) || getsockopt(sk, SOL_TCP, TCP_INFO, &ti, &l) ||
	    !tcp_conn_state(ti.state) || idmap_add(&fl->by_ino, ino, fl->nr) < 0 ||
	    !(n = realloc(fl->f, (fl->nr + 1) * sizeof(*n)))) {
		close(sk);
		return;
	}
	fl->f = n;
	fl->f[fl->nr++] = (struct tcp_found){ .sk = sk, .ino = ino };
	pr_debug("pid %d: fd %d: TCP socket %" PRIu64 " found", tf->pid, fd, ino);
}

/* The TCP connections of pid, by its census (taken now if it was not). */
static void find_task(struct file_table *t, struct inet_dump *u, struct tcp_found_list *fl, pid_t pid)
{
	const struct files_census *c = files_census_of(t, pid);
	struct task_fds tf;

	if (!c && files_census(t, pid, NULL, NULL) == 0)
		c = files_census_of(t, pid);
	if (!c || task_fds_open(&tf, pid) < 0)
		return;	/* its fds are dumped (or refused) next */
	for (int i = 0; i < files_census_nr(c); i++) {
		uint64_t ino;
		int fd = files_census_fd(c, i, &ino);
		find_fd(u, fl, &tf, fd, ino);
	}
	task_fds_close(&tf);
}

/* The found connections locked all at once (a thousand connections took
 * seconds one by one); the ones whose tuple can't be had, or all if the
 * batch fails, are locked one by one as they are silenced. */
static void lock_found(struct inet_dump *u, struct tcp_found_list *fl, bool *locked)
{
	struct netlock_conn *ncs = malloc((fl->nr + 1) * sizeof(*ncs));
	int *idx = malloc((fl->nr + 1) * sizeof(*idx)), n = 0;

	if (u->netlock && ncs && idx) {
		for (int i = 0; i < fl->nr; i++)
			if (conn_tuple(fl->f[i].sk, &fl->f[i].nc) == 0) {
				ncs[n] = fl->f[i].nc;
				idx[n++] = i;
			}
		if (n && netlock_conns_lock(u->netlock, ncs, n) == 0)
			for (int i = 0; i < n; i++)
				locked[idx[i]] = true;
	}
	free(ncs);
	free(idx);
}

/* Every TCP connection of the tree is put in repair mode before any is
 * read: one end saved while the other still sends to it would lose what
 * the first received after (with both in the tree, no network lock
 * stops it). */
int tcp_dump_prepare(struct file_table *t, const struct opts *o, const pid_t *pids, int nr)
{
	struct inet_dump *u = files_dump_state(t, &fd_kind_inet);
	struct tcp_found_list fl = { 0 };

	u->o = o;
	u->netlock = t->netlock;
	if (!o->tcp_established || o->tcp_close || o->pre_dump)
		return 0;
	for (int i = 0; i < nr; i++)
		find_task(t, u, &fl, pids[i]);
	bool *locked = calloc(fl.nr + 1, sizeof(*locked));
	if (locked)
		lock_found(u, &fl, locked);
	for (int i = 0; i < fl.nr; i++) {
		if (silence(u, fl.f[i].sk, fl.f[i].ino, locked && locked[i] ? &fl.f[i].nc : NULL))
			pr_debug("TCP socket %u in repair mode", fl.f[i].ino);
		else
			pr_debug("TCP socket %u: repair mode refused: %s", fl.f[i].ino, strerror(errno));
		close(fl.f[i].sk);
	}
	free(locked);
	free(fl.f);
	idmap_free(&fl.by_ino);
	/* then all read, one right after the other: the kernel still sends
	 * what a timer of a connection in repair mode sends (a window probe
	 * with data, a retransmission), which the other end, read before,
	 * would receive too late */
	for (int i = 0; i < u->nr_conns; i++) {
		char what[32];
		snprintf(what, sizeof(what), "TCP socket %u", u->conns[i].ino);
		if (read_stream(&u->conns[i], what) < 0)
			forget_stream(&u->conns[i]);	/* read again by tcp_conn_dump, which says why */
	}
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
	struct tcp_conn *c = find_conn(u, ie->ino);
	u->netlock = t->netlock;
	if (!c && !(c = silence(u, sk, ie->ino, NULL))) {
		if (errno == ENOMEM)
			return files_oom(f);
		pr_perror("%s: can't put it in repair mode (TCP_REPAIR%s)", what,
			  errno == EPERM ? ": it needs CAP_NET_ADMIN" : "");
		return -1;
	}
	memcpy(c->addr[0], ie->src_addr, ie->n_src_addr * sizeof(uint32_t));
	memcpy(c->addr[1], ie->dst_addr, ie->n_dst_addr * sizeof(uint32_t));
	c->port[0] = ie->src_port;
	c->port[1] = ie->dst_port;
	if (!c->e && read_stream(c, what) < 0)
		return -1;
	ie->state = c->state;
	return 0;
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

/* A connection's addresses and ports, own first (peer: the peer's
 * first), mixed into a key of conn_by_tuple. */
static uint64_t tuple_key(const struct tcp_conn *c, bool peer)
{
	uint64_t k = 1469598103934665603ull;	/* FNV-1a over the words */
	int a = peer, b = !peer;
	for (int i = 0; i < 4; i++)
		k = (k ^ c->addr[a][i]) * 1099511628211ull;
	for (int i = 0; i < 4; i++)
		k = (k ^ c->addr[b][i]) * 1099511628211ull;
	k = (k ^ c->port[a]) * 1099511628211ull;
	return (k ^ c->port[b]) * 1099511628211ull;
}

/* The other end of c, if the tree has it (by_tuple: the conns by
 * tuple_key of their own tuple). */
static struct tcp_conn *peer_of(struct inet_dump *u, const struct idmap *by_tuple, const struct tcp_conn *c)
{
	unsigned pos = 0;
	for (int i; (i = idmap_next(by_tuple, tuple_key(c, true), &pos)) >= 0;) {
		struct tcp_conn *p = &u->conns[i];
		if (p != c && p->e && p->port[0] == c->port[1] && p->port[1] == c->port[0] &&
		    !memcmp(p->addr[0], c->addr[1], sizeof(p->addr[0])) &&
		    !memcmp(p->addr[1], c->addr[0], sizeof(p->addr[1])))
			return p;
	}
	return NULL;
}

/* The two ends of a connection within the tree are read one after the
 * other: what c sent may have reached p's receive queue while c still
 * counts it as its own, not acknowledged (or not even sent: the kernel
 * may take back a send). Those bytes are p's now: they leave c's send
 * queue, or c would send again what p has, and p's acknowledgement of
 * it would be one c never sent data for (and ignores). */
static void reconcile(struct tcp_conn *c, const struct tcp_conn *p)
{
	TcpStreamEntry *e = c->e;
	if (c->state != TCP_ESTABLISHED || p->state != TCP_ESTABLISHED)
		return;
	uint32_t una = e->outq_seq - e->outq_len, d = p->e->inq_seq - una;
	if ((int32_t)d <= 0 || d > e->outq_len) {
		if ((int32_t)d < 0)
			pr_warn("TCP socket %u: its peer %u in the tree expects byte %u, which it had seen "
				"acknowledged up to %u", c->ino, p->ino, p->e->inq_seq, una);
		return;
	}
	uint32_t unsent = e->unsq_len, sent = e->outq_len - unsent;
	if (d > sent)
		unsent -= d - sent;
	e->outq_len -= d;
	e->unsq_len = unsent;
	memmove(c->outq, c->outq + d, e->outq_len);
	pr_info("TCP socket %u: %u bytes of its send queue are in its peer's (%u) receive queue already",
		c->ino, d, p->ino);
}

int tcp_write_streams(struct file_table *t, int dirfd)
{
	struct inet_dump *u = files_dump_state(t, &fd_kind_inet);

	struct idmap by_tuple = { 0 };
	for (int i = 0; i < u->nr_conns; i++)
		if (idmap_add(&by_tuple, tuple_key(&u->conns[i], false), i) < 0) {
			idmap_free(&by_tuple);
			pr_err("out of memory pairing the TCP connections of the tree");
			return -1;
		}
	for (int i = 0; i < u->nr_conns; i++) {
		struct tcp_conn *p = u->conns[i].e ? peer_of(u, &by_tuple, &u->conns[i]) : NULL;
		if (p)
			reconcile(&u->conns[i], p);
	}
	idmap_free(&by_tuple);

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
			/* the peer's window as it was; leaving repair mode resets
			 * SO_REUSEADDR: its own value back */
			if (c->e && set_send_window(c->fd, c->e) < 0)
				pr_perror("can't give TCP socket %u its send window back", c->ino);
			if (repair(c->fd, 0) < 0)
				pr_perror("can't take TCP socket %u out of repair mode: its connection is stuck",
					  c->ino);
			setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &c->reuseaddr, sizeof(c->reuseaddr));
		}
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		forget_stream(c);
	}
	free(u->conns);
	u->conns = NULL;
	u->nr_conns = 0;
	idmap_free(&u->conn_by_ino);
}
