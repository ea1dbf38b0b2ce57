/* Unix sockets: their unread data (sk-queues.img, one entry per message
 * or per stream chunk, for the socket that reads it). Dump copies it
 * without taking it (MSG_PEEK with SO_PEEK_OFF); restore sends it back
 * from the socket's peer, or a throwaway one, into the new socket. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "files/unix.h"
#include "image/img.h"
#include "util/log.h"

#define PEEK_CHUNK (256u << 10)

/* Takes over rights (nr of them): freed with the packet. */
static int add_packet(struct unix_dump *u, uint32_t id, const uint8_t *data, size_t len, uint32_t *rights,
		      int nr)
{
	struct usk_packet *np = realloc(u->pk, (u->nr_pk + 1) * sizeof(*np));
	if (!np) {
		free(rights);
		return -1;
	}
	u->pk = np;
	struct usk_packet p = { id, len, malloc(len ? len : 1), rights, nr };
	if (!p.buf) {
		free(rights);
		return -1;
	}
	memcpy(p.buf, data, len);
	u->pk[u->nr_pk++] = p;
	return 0;
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* The files passed with a peeked message (SCM_RIGHTS): each dumped as a
 * file of its own (files_dump_in_flight), its id added to *rights. Only
 * the first piece of a message counts (each peek passes them anew).
 * Credentials are dropped: the restored data carries the restorer's. */
static int take_rights(struct file_table *t, struct unix_dump *u, struct msghdr *mh, bool first,
		       const struct fd_facts *f, uint32_t **rights, int *nr)
{
	char where[96];
	snprintf(where, sizeof(where), "pid %d: fd %d: unix socket %lu", f->pid, f->fd,
		 (unsigned long)f->st.st_ino);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);
		if (!first) {
			close_fds(fds, n);
			continue;
		}
		uint32_t *nr_ = realloc(*rights, (*nr + n + 1) * sizeof(**rights));
		if (!nr_) {
			close_fds(fds, n);
			return files_oom(f);
		}
		*rights = nr_;
		for (int i = 0; i < n; i++)
			if (files_dump_in_flight(t, u->o, fds[i], f->via ? f->via : f->pid, where,
						 &(*rights)[(*nr)++]) < 0) {
				close_fds(fds + i + 1, n - i - 1);
				return -1;
			}
	}
	if (mh->msg_flags & MSG_CTRUNC) {
		pr_err("pid %d: fd %d: unix socket queue holds more control data than expected", f->pid, f->fd);
		return -1;
	}
	return 0;
}

/* Copies the socket's unread data without taking it: MSG_PEEK walking
 * with SO_PEEK_OFF, which is put back as it was. A datagram longer than
 * our buffer comes in several pieces (MSG_TRUNC until its end); an empty
 * one is kept too (the next peek goes past it), except in a socket shut
 * down for reading, where it can't be told from the end. */
int peek_queue(struct file_table *t, struct unix_dump *u, int sk, uint32_t id, const struct usk_diag *d,
		      const struct fd_facts *f)
{
	uint32_t type = d->type;
	int orig = -1, zero = 0, ret = -1;
	socklen_t l = sizeof(orig);
	uint8_t *msg = NULL, *chunk = malloc(PEEK_CHUNK);
	size_t mlen = 0, total = 0;
	uint32_t *rights = NULL;
	int nr_rights = 0;

	if (!chunk)
		return files_oom(f);
	if (getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, &l) < 0 ||
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0) {
		pr_perror("pid %d: fd %d: can't peek at the unix socket's queue", f->pid, f->fd);
		free(chunk);
		return -1;
	}
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int) * SCM_MAX_FD) + CMSG_SPACE(sizeof(struct ucred)) + 256];
		struct iovec iov = { chunk, PEEK_CHUNK };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			pr_perror("pid %d: fd %d: can't peek at the unix socket's queue", f->pid, f->fd);
			goto out;
		}
		if (take_rights(t, u, &mh, !mlen, f, &rights, &nr_rights) < 0)
			goto out;
		if (n == 0 && !(mh.msg_flags & MSG_TRUNC) && (type == SOCK_STREAM || (d->shutdown & 1)))
			break;	/* the end */
		if (n == 0 && !mlen) {	/* an empty datagram */
			int err = add_packet(u, id, chunk, 0, rights, nr_rights);
			rights = NULL;
			nr_rights = 0;
			if (err < 0)
				goto oom;
			continue;
		}
		total += n;
		if (total > QUEUE_MAX) {
			pr_err("pid %d: fd %d: unix socket holds more than %u MiB unread", f->pid, f->fd,
			       QUEUE_MAX >> 20);
			goto out;
		}
		uint8_t *nm = realloc(msg, mlen + n);
		if (!nm)
			goto oom;
		msg = nm;
		memcpy(msg + mlen, chunk, n);
		mlen += n;
		if (type != SOCK_STREAM && (mh.msg_flags & MSG_TRUNC))
			continue;	/* the rest of this datagram comes next */
		int err = add_packet(u, id, msg, mlen, rights, nr_rights);
		rights = NULL;
		nr_rights = 0;
		if (err < 0)
			goto oom;
		mlen = 0;
	}
	ret = 0;
	goto out;
oom:
	files_oom(f);
out:
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, sizeof(orig)) < 0) {
		pr_perror("pid %d: fd %d: can't put back the unix socket's peek offset", f->pid, f->fd);
		ret = -1;
	}
	free(rights);
	free(msg);
	free(chunk);
	return ret;
}

int write_queues(struct unix_dump *u, int dirfd)
{
	struct img img;
	if (!u->nr_pk)
		return 0;
	if (img_create(dirfd, &img, IMG_SK_QUEUES, 0) < 0)
		return -1;
	for (int i = 0; i < u->nr_pk; i++) {
		SkPacketEntry e = SK_PACKET_ENTRY__INIT;
		ScmEntry scm = SCM_ENTRY__INIT, *scms[1] = { &scm };
		e.id_for = u->pk[i].id_for;
		e.length = u->pk[i].len;
		if (u->pk[i].nr_rights) {
			scm.type = SCM_RIGHTS;
			scm.n_rights = u->pk[i].nr_rights;
			scm.rights = u->pk[i].rights;
			e.n_scm = 1;
			e.scm = scms;
		}
		if (img_write(&img, &e.base) < 0 || img_write_raw(&img, u->pk[i].buf, u->pk[i].len) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

/* The files passed with a message (SCM_RIGHTS entries): their ids in
 * p->rights. Other control messages are not saved by any dump. */
static int load_rights(const SkPacketEntry *e, struct usk_packet *p)
{
	size_t n = 0;
	for (size_t i = 0; i < e->n_scm; i++) {
		if (e->scm[i]->type != SCM_RIGHTS) {
			pr_err("image sk-queues.img: a message for socket file %u carries control data of "
			       "type %u, which stasis can't restore", e->id_for, e->scm[i]->type);
			return -1;
		}
		n += e->scm[i]->n_rights;
	}
	if (!n)
		return 0;
	if (n > SCM_MAX_FD) {
		pr_err("image sk-queues.img: a message for socket file %u passes %zu files (at most %d)",
		       e->id_for, n, SCM_MAX_FD);
		return -1;
	}
	if (!(p->rights = malloc(n * sizeof(*p->rights)))) {
		pr_err("out of memory loading the passed files of socket file %u", e->id_for);
		return -1;
	}
	for (size_t i = 0; i < e->n_scm; i++)
		for (size_t k = 0; k < e->scm[i]->n_rights; k++)
			p->rights[p->nr_rights++] = e->scm[i]->rights[k];
	return 0;
}

static int packet_cmp(const void *a, const void *b)
{
	const struct usk_packet *x = a, *y = b;
	if (x->id_for != y->id_for)
		return x->id_for < y->id_for ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int unix_load_images(struct rst_files *rf, int dirfd)
{
	struct img img;
	SkPacketEntry *e;
	int ret;

	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	if (img_open(dirfd, &img, IMG_SK_QUEUES, 0) < 0)
		return errno == ENOENT ? 0 : -1;
	while ((ret = img_read(&img, &sk_packet_entry__descriptor, (ProtobufCMessage **)&e)) == 1) {
		struct usk_packet p = { e->id_for, e->length, NULL, NULL, 0, r->nr_q };
		int err = load_rights(e, &p);
		img_free(e);
		if (err < 0) {
			ret = -1;
			break;
		}
		if (p.len > QUEUE_MAX) {
			pr_err("image sk-queues.img: unsupported entry for socket file %u (%u bytes)",
			       p.id_for, p.len);
			free(p.rights);
			ret = -1;
			break;
		}
		struct usk_packet *nq = realloc(r->q, (r->nr_q + 1) * sizeof(*nq));
		if (!nq || !(p.buf = malloc(p.len ? p.len : 1))) {
			if (nq)
				r->q = nq;
			pr_err("image sk-queues.img: out of memory loading %u bytes for socket file %u",
			       p.len, p.id_for);
			free(p.rights);
			ret = -1;
			break;
		}
		r->q = nq;
		if (img_read_raw(&img, p.buf, p.len) < 0) {
			free(p.buf);
			free(p.rights);
			ret = -1;
			break;
		}
		r->q[r->nr_q++] = p;
	}
	img_close(&img);
	/* each socket's messages together, in their order: found by
	 * bisection (a scan of all for each socket was quadratic) */
	if (r->nr_q > 1)
		qsort(r->q, r->nr_q, sizeof(*r->q), packet_cmp);
	return ret;
}

/* The messages queued for socket id: *n of them from the returned one. */
static const struct usk_packet *packets_for(const struct unix_rst *r, uint32_t id, int *n)
{
	int lo = 0, hi = r->nr_q;
	while (lo < hi) {	/* the first with id_for >= id */
		int mid = lo + (hi - lo) / 2;
		if (r->q[mid].id_for < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	int end = lo;
	while (end < r->nr_q && r->q[end].id_for == id)
		end++;
	*n = end - lo;
	return r->q + lo;
}

/* Sends len bytes of p from offset off, with p's passed files on the
 * first send (their fds in the pool, opened now if need be). */
static ssize_t send_part(struct rst_files *rf, int from, const struct usk_packet *p, size_t off,
			 const UnixSkEntry *to)
{
	char cbuf[CMSG_SPACE(sizeof(int) * SCM_MAX_FD)] = { 0 };
	struct iovec iov = { p->buf + off, p->len - off };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (!off && p->nr_rights) {
		char where[64];
		snprintf(where, sizeof(where), "the queue of unix socket %u", to->ino);
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * p->nr_rights);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * p->nr_rights);
		for (int i = 0; i < p->nr_rights; i++) {
			int fd = files_pool_fd(rf, p->rights[i], where);
			if (fd < 0)
				return -2;
			memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
		}
	}
	return sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Puts back the unread data of socket `to` (fd to_fd) by sending it from
 * `from`, with room enough in both for the whole queue. */
int fill_queue(struct rst_files *rf, int from, const UnixSkEntry *to, int to_fd)
{
	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	size_t total = 0;
	int nr;
	const struct usk_packet *q = packets_for(r, to->id, &nr);

	if (!nr)
		return 0;
	for (int i = 0; i < nr; i++)
		total += q[i].len;
	int room = total + (1 << 20);
	if (set_int(from, SO_SNDBUFFORCE, room) < 0 || set_int(to_fd, SO_RCVBUFFORCE, room) < 0)
		pr_warn("can't make room for the %zu unread bytes of unix socket %u: %m", total, to->ino);
	for (int i = 0; i < nr; i++) {
		const struct usk_packet *p = &q[i];
		size_t off = 0;
		do {	/* a stream may take its bytes in several sends */
			ssize_t n = send_part(rf, from, p, off, to);
			if (n == -2)
				return -1;
			if (n < 0 || (to->type != SOCK_STREAM && (size_t)n != p->len)) {
				pr_perror("can't put %u unread bytes back into unix socket %u%s", p->len, to->ino,
					  errno == EAGAIN && to->type == SOCK_DGRAM ?
					  " (more datagrams than net.unix.max_dgram_qlen?)" : "");
				return -1;
			}
			off += n;
		} while (off < p->len);
	}
	return 0;
}

/* Sockets in flight in sockets in flight: so deep at most (a cycle of
 * sockets passed over each other would not end). */
#define NESTING_MAX 4

int unix_after_install(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid)
{
	static int nesting;
	const struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	int ret = 0, nr;

	(void)fd;
	if (nesting >= NESTING_MAX || !fe->usk)
		return 0;
	const struct usk_packet *q = packets_for(r, fe->usk->id, &nr);
	nesting++;
	for (int i = 0; i < nr && !ret; i++)
		for (int k = 0; k < q[i].nr_rights && !ret; k++)
			if (q[i].rights[k] != fe->id)
				ret = files_after_install_in_flight(rf, q[i].rights[k], pid);
	nesting--;
	return ret;
}

bool has_queue(const struct rst_files *rf, const UnixSkEntry *ue)
{
	int nr;
	packets_for(files_rst_state(rf, &fd_kind_unix), ue->id, &nr);
	return nr > 0;
}
