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

static int add_packet(struct unix_dump *u, uint32_t id, const uint8_t *data, size_t len)
{
	struct usk_packet *np = realloc(u->pk, (u->nr_pk + 1) * sizeof(*np));
	if (!np)
		return -1;
	u->pk = np;
	struct usk_packet p = { id, len, malloc(len ? len : 1) };
	if (!p.buf)
		return -1;
	memcpy(p.buf, data, len);
	u->pk[u->nr_pk++] = p;
	return 0;
}

/* Control messages of a peeked message: credentials are dropped (the
 * restored data carries the restorer's); passed fds are refused. */
static int check_cmsgs(struct msghdr *mh, const struct fd_facts *f)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (int i = 0; i < n; i++)
			close(((int *)CMSG_DATA(c))[i]);
		pr_err("pid %d: fd %d: unix socket %lu has file descriptors in flight (SCM_RIGHTS) in its "
		       "queue, which stasis can't dump", f->pid, f->fd, (unsigned long)f->st.st_ino);
		return -1;
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
int peek_queue(struct unix_dump *u, int sk, uint32_t id, const struct usk_diag *d,
		      const struct fd_facts *f)
{
	uint32_t type = d->type;
	int orig = -1, zero = 0, ret = -1;
	socklen_t l = sizeof(orig);
	uint8_t *msg = NULL, *chunk = malloc(PEEK_CHUNK);
	size_t mlen = 0, total = 0;

	if (!chunk)
		return files_oom(f);
	if (getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, &l) < 0 ||
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0) {
		pr_perror("pid %d: fd %d: can't peek at the unix socket's queue", f->pid, f->fd);
		free(chunk);
		return -1;
	}
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(struct ucred)) + 256];
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
		if (check_cmsgs(&mh, f) < 0)
			goto out;
		if (n == 0 && !(mh.msg_flags & MSG_TRUNC) && (type == SOCK_STREAM || (d->shutdown & 1)))
			break;	/* the end */
		if (n == 0 && !mlen) {	/* an empty datagram */
			if (add_packet(u, id, chunk, 0) < 0)
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
		if (add_packet(u, id, msg, mlen) < 0)
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
		e.id_for = u->pk[i].id_for;
		e.length = u->pk[i].len;
		if (img_write(&img, &e.base) < 0 || img_write_raw(&img, u->pk[i].buf, u->pk[i].len) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
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
		struct usk_packet p = { e->id_for, e->length, NULL };
		bool scm = e->n_scm > 0;
		img_free(e);
		if (scm || p.len > QUEUE_MAX) {
			pr_err("image sk-queues.img: unsupported entry for socket file %u (%u bytes%s)",
			       p.id_for, p.len, scm ? ", passed fds" : "");
			ret = -1;
			break;
		}
		struct usk_packet *nq = realloc(r->q, (r->nr_q + 1) * sizeof(*nq));
		if (!nq || !(p.buf = malloc(p.len ? p.len : 1))) {
			if (nq)
				r->q = nq;
			pr_err("image sk-queues.img: out of memory loading %u bytes for socket file %u",
			       p.len, p.id_for);
			ret = -1;
			break;
		}
		r->q = nq;
		if (img_read_raw(&img, p.buf, p.len) < 0) {
			free(p.buf);
			ret = -1;
			break;
		}
		r->q[r->nr_q++] = p;
	}
	img_close(&img);
	return ret;
}

/* Puts back the unread data of socket `to` (fd to_fd) by sending it from
 * `from`, with room enough in both for the whole queue. */
int fill_queue(struct rst_files *rf, int from, const UnixSkEntry *to, int to_fd)
{
	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	size_t total = 0;

	for (int i = 0; i < r->nr_q; i++)
		if (r->q[i].id_for == to->id)
			total += r->q[i].len;
	if (!total)
		return 0;
	int room = total + (1 << 20);
	if (set_int(from, SO_SNDBUFFORCE, room) < 0 || set_int(to_fd, SO_RCVBUFFORCE, room) < 0)
		pr_warn("can't make room for the %zu unread bytes of unix socket %u: %m", total, to->ino);
	for (int i = 0; i < r->nr_q; i++) {
		const struct usk_packet *p = &r->q[i];
		if (p->id_for != to->id)
			continue;
		size_t off = 0;
		do {	/* a stream may take its bytes in several sends */
			ssize_t n = send(from, p->buf + off, p->len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
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

bool has_queue(const struct rst_files *rf, const UnixSkEntry *ue)
{
	const struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	for (int i = 0; i < r->nr_q; i++)
		if (r->q[i].id_for == ue->id)
			return true;
	return false;
}
