/* Answering PS_IOV_GET (ps_lazy.h): the sessions of lazy-pages daemons,
 * one at a time, and what each request gets. The pages source only says
 * where its lazy runs end and reads bytes; what is a valid request, how
 * an answer looks and when the serving is over are decided here, once,
 * for the tree's memory and for the images alike. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "image/vma.h"
#include "pagexfer/ps_lazy.h"
#include "pagexfer/ps_proto.h"
#include "pagexfer/ps_tls.h"
#include "util/log.h"

#define SEND_CHUNK (1ul << 20)
#define EOF_WAIT_MS 5000

enum { S_DONE, S_DROPPED, S_FAILED, S_GONE };

struct server {
	struct ps_pages *src;
	const struct opts *o;
	char *buf;
	uint64_t served;	/* bytes, all sessions */
};

/* 1: all of it; 0: the peer closed before the first byte (reading);
 * -1: errno */
static int io_all(int sk, void *buf, size_t len, bool out)
{
	char *p = buf;
	while (len) {
		ssize_t n = out ? ps_io_send(sk, p, len) : ps_io_recv(sk, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 && !out && p == buf)
				return 0;
			if (n == 0)
				errno = ECONNRESET;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 1;
}

/* One PS_IOV_GET: 0, or -1 (said; the session ends). */
static int serve_get(struct server *s, int sk, const struct ps_iov *pi)
{
	uint64_t nr = 0;
	if (!(pi->vaddr & (PAGE_SZ - 1)) && pi->nr_pages)
		nr = s->src->avail(s->src, pi->dst_id, pi->vaddr, pi->nr_pages);
	if (!nr || nr > pi->nr_pages) {
		pr_err("lazy pages: asked for %lu pages at %#lx of pid %lu, which are no lazy pages of this dump",
		       (unsigned long)pi->nr_pages, (unsigned long)pi->vaddr, (unsigned long)pi->dst_id);
		return -1;
	}
	struct ps_iov ans = { .cmd = ps_cmd(PS_IOV_ADD_F, PE_PRESENT), .nr_pages = nr, .vaddr = pi->vaddr,
			      .dst_id = pi->dst_id };
	if (io_all(sk, &ans, sizeof(ans), true) < 0)
		goto lost;
	for (uint64_t off = 0, len = nr * PAGE_SZ; off < len;) {
		size_t n = len - off < SEND_CHUNK ? len - off : SEND_CHUNK;
		if (s->src->read(s->src, pi->dst_id, pi->vaddr + off, s->buf, n) < 0)
			return -1;
		if (io_all(sk, s->buf, n, true) < 0)
			goto lost;
		off += n;
	}
	s->served += nr * PAGE_SZ;
	return 0;
lost:
	pr_perror("lazy pages: can't send pages to the lazy-pages daemon");
	return -1;
}

/* Whether the source went while fd was waited for (fd readable, or the
 * daemon silent for the source's idle seconds, end the wait): a killed
 * process of a frozen tree stays a zombie its parent can't reap while
 * we trace it, so neither a daemon that never comes nor one that never
 * ends may keep us from seeing it. */
static bool source_gone(struct server *s, int fd)
{
	if (s->src->gone_fd < 0 || ps_io_pending())
		return false;
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = s->src->gone_fd, .events = POLLIN } };
	int r;
	do
		r = poll(p, 2, s->src->idle ? (int)s->src->idle * 1000 : -1);
	while (r < 0 && errno == EINTR);
	return r > 0 && p[1].revents;
}

/* As CRIU: the daemon closes first (no TIME_WAIT here), but one that
 * keeps the connection open is not waited for long. */
static void wait_eof(int sk)
{
	struct pollfd p = { .fd = sk, .events = POLLIN };
	char c;
	if (poll(&p, 1, EOF_WAIT_MS) == 1 && ps_io_recv(sk, &c, 1) > 0)
		pr_warn("lazy pages: the daemon sent more after the end of its session");
}

static int session(struct server *s, int sk, bool listened)
{
	uint64_t before = s->served;
	if (ps_tls_start(sk, true, s->o) < 0)
		return S_DROPPED;
	for (;;) {
		struct ps_iov pi;
		if (source_gone(s, sk)) {
			ps_tls_end(true);
			return S_GONE;
		}
		int r = io_all(sk, &pi, sizeof(pi), false);
		if (r <= 0) {
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				pr_err("lazy pages: the daemon sent nothing for %u s (--timeout)", s->src->idle);
			else if (r < 0)
				pr_perror("lazy pages: can't read the daemon's request");
			else
				pr_warn("lazy pages: the connection closed without PS_IOV_CLOSE");
			break;
		}
		if (pi.cmd == PS_IOV_CLOSE || pi.cmd == PS_IOV_FORCE_CLOSE) {
			int32_t status = 0;
			if (io_all(sk, &status, sizeof(status), true) < 0)
				pr_warn("lazy pages: the daemon left before the end of its session was confirmed");
			else if (listened)
				wait_eof(sk);
			ps_tls_end(false);
			return S_DONE;
		}
		if (pi.cmd != PS_IOV_GET) {
			pr_err("lazy pages: command %#x is no request for pages: the connection is dropped", pi.cmd);
			break;
		}
		if (serve_get(s, sk, &pi) < 0)
			break;
	}
	ps_tls_end(true);
	return s->served > before && s->src->fail_after_pages ? S_FAILED : S_DROPPED;
}

static void tune(int sk, unsigned idle)
{
	int one = 1;
	setsockopt(sk, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	/* each answer's last segment leaves at once, not after the daemon's
	 * delayed ack of the one before (Nagle) */
	setsockopt(sk, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (idle) {
		struct timeval tv = { .tv_sec = idle };
		setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
}

/* Sessions on lsk until one is done (S_DONE) or failed (S_FAILED). */
static int accept_loop(struct server *s, int lsk)
{
	for (;;) {
		if (source_gone(s, lsk))
			return S_GONE;
		int sk = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
		if (sk < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (sk < 0) {
			pr_perror("lazy pages: can't accept");
			return S_FAILED;
		}
		tune(sk, s->src->idle);
		int r = session(s, sk, true);
		close(sk);
		if (r != S_DROPPED)
			return r;
		pr_warn("lazy pages: that connection is dropped; waiting for the next");
	}
}

int ps_lazy_serve(int lsk, int sk, const struct opts *o, struct ps_pages *src)
{
	struct server s = { .src = src, .o = o };
	s.buf = mmap(NULL, SEND_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s.buf == MAP_FAILED) {
		pr_perror("lazy pages: out of memory");
		return -1;
	}
	int r;
	if (sk >= 0) {
		tune(sk, src->idle);
		r = session(&s, sk, false);
	} else
		r = accept_loop(&s, lsk);
	munmap(s.buf, SEND_CHUNK);
	if (r == S_DONE) {
		pr_info("lazy pages: the daemon is done, %lu KiB served", (unsigned long)(s.served >> 10));
		return 0;
	}
	if (r == S_GONE)
		src->gone(src);
	else if (r == S_FAILED && s.served)
		pr_err("lazy pages: the transfer broke off after %lu KiB", (unsigned long)(s.served >> 10));
	else if (sk >= 0)
		pr_err("lazy pages: the session on --ps-socket failed");
	return -1;
}
