/* dump --lazy-pages (lazy_serve.h): the source side of a remote lazy
 * restore. The tree stays frozen while the destination's lazy-pages
 * daemon asks for its lazy pages; they are read from the processes
 * themselves (/proc/PID/mem, which reads whatever the protection) and
 * sent as CRIU's page server sends them: the request's header back as
 * PS_IOV_ADD_F|PE_PRESENT with the number of pages that follow, which
 * may be fewer than asked (up to the end of the lazy run). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dump/lazy_serve.h"
#include "image/pagemap.h"
#include "image/vma.h"
#include "pagexfer/ps_proto.h"
#include "pagexfer/ps_server.h"
#include "pagexfer/ps_tls.h"
#include "util/log.h"

#define SEND_CHUNK (1ul << 20)

bool lazy_dump(const struct opts *o)
{
	return o->lazy_pages && !o->pre_dump;
}

enum { S_DONE, S_DROPPED, S_FAILED };

struct server {
	struct dump_tree *tr;
	int *memfd;		/* per process of tr, opened when first asked */
	char *buf;
	uint64_t served;	/* bytes, all sessions */
};

static int io_all(int sk, void *buf, size_t len, bool out)
{
	char *p = buf;
	while (len) {
		ssize_t n = out ? ps_io_send(sk, p, len) : ps_io_recv(sk, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 && !out && p == buf ? 0 : -1;
		p += n;
		len -= n;
	}
	return 1;
}

/* The process whose pages dst names: CRIU's lazy daemon names it by its
 * pid in the images. */
static int task_of(const struct dump_tree *tr, uint64_t dst)
{
	for (int i = 0; i < tr->nr; i++)
		if (tr->t[i].lazy && (uint64_t)tr->t[i].ns_pid == dst)
			return i;
	return -1;
}

static const struct page_run *lazy_run(const struct page_runs *l, uint64_t addr)
{
	size_t lo = 0, hi = l->nr;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < l->r[mid].start)
			hi = mid;
		else if (addr >= l->r[mid].end)
			lo = mid + 1;
		else
			return &l->r[mid];
	}
	return NULL;
}

/* One PS_IOV_GET: 0, or -1 (said; the session ends). */
static int serve_get(struct server *s, int sk, struct ps_iov *pi)
{
	int t = task_of(s->tr, pi->dst_id);
	const struct page_run *r = t < 0 ? NULL : lazy_run(s->tr->t[t].lazy, pi->vaddr);
	if (!r || (pi->vaddr & (PAGE_SZ - 1)) || !pi->nr_pages) {
		pr_err("lazy pages: asked for %lu pages at %#lx of pid %lu, which are no lazy pages of this dump",
		       (unsigned long)pi->nr_pages, (unsigned long)pi->vaddr, (unsigned long)pi->dst_id);
		return -1;
	}
	struct dump_ctx *dc = &s->tr->t[t];
	uint64_t avail = (r->end - pi->vaddr) / PAGE_SZ;
	uint64_t nr = pi->nr_pages < avail ? pi->nr_pages : avail;
	if (s->memfd[t] < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", dc->pid);
		s->memfd[t] = open(path, O_RDONLY | O_CLOEXEC);
		if (s->memfd[t] < 0) {
			pr_perror("lazy pages: can't open %s", path);
			return -1;
		}
	}
	struct ps_iov ans = { .cmd = ps_cmd(PS_IOV_ADD_F, PE_PRESENT), .nr_pages = nr, .vaddr = pi->vaddr,
			      .dst_id = pi->dst_id };
	if (io_all(sk, &ans, sizeof(ans), true) < 0)
		goto lost;
	for (uint64_t off = 0, len = nr * PAGE_SZ; off < len;) {
		size_t n = len - off < SEND_CHUNK ? len - off : SEND_CHUNK;
		ssize_t got = pread(s->memfd[t], s->buf, n, pi->vaddr + off);
		if (got != (ssize_t)n) {
			pr_perror("lazy pages: pid %d: can't read its memory at %#lx", dc->pid,
				  (unsigned long)(pi->vaddr + off));
			return -1;
		}
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

static int session(struct server *s, int sk)
{
	uint64_t before = s->served;
	if (ps_tls_start(sk, true, s->tr->o) < 0)
		return S_DROPPED;
	for (;;) {
		struct ps_iov pi;
		int r = io_all(sk, &pi, sizeof(pi), false);
		if (r <= 0) {
			if (r < 0)
				pr_perror("lazy pages: can't read the daemon's request");
			else
				pr_warn("lazy pages: the connection closed without PS_IOV_CLOSE");
			break;
		}
		uint32_t cmd = pi.cmd & PS_CMD_MASK;
		if (pi.cmd == PS_IOV_CLOSE || pi.cmd == PS_IOV_FORCE_CLOSE) {
			int32_t status = 0;
			if (io_all(sk, &status, sizeof(status), true) < 0)
				pr_warn("lazy pages: the daemon left before the end of its session was confirmed");
			ps_tls_end(false);
			return S_DONE;
		}
		if (cmd != PS_IOV_GET) {
			pr_err("lazy pages: command %#x is no request for pages: the connection is dropped", pi.cmd);
			break;
		}
		if (serve_get(s, sk, &pi) < 0)
			break;
	}
	ps_tls_end(true);
	return s->served > before ? S_FAILED : S_DROPPED;
}

int lazy_dump_serve(struct dump_tree *tr)
{
	const struct opts *o = tr->o;
	struct server s = { .tr = tr };
	unsigned port = 0;
	int ret = -1;

	if (o->ps_socket >= 0) {
		pr_err("dump --lazy-pages serves its pages on --address/--port; --ps-socket is not supported with it");
		return -1;
	}
	s.memfd = malloc(tr->nr * sizeof(int));
	s.buf = mmap(NULL, SEND_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!s.memfd || s.buf == MAP_FAILED) {
		pr_err("lazy pages: out of memory");
		goto out;
	}
	for (int i = 0; i < tr->nr; i++)
		s.memfd[i] = -1;
	int lsk = ps_server_listen(o, &port);
	if (lsk < 0)
		goto out;
	pr_info("lazy pages: serving the tree's lazy memory on %s port %u", o->address ? o->address : "*", port);
	for (;;) {
		int sk = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
		if (sk < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (sk < 0) {
			pr_perror("lazy pages: can't accept");
			break;
		}
		int one = 1;
		setsockopt(sk, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		/* each answer's last segment leaves at once, not after the
		 * daemon's delayed ack of the one before (Nagle) */
		setsockopt(sk, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		int r = session(&s, sk);
		close(sk);
		if (r == S_DONE) {
			ret = 0;
			break;
		}
		if (r == S_FAILED) {
			pr_err("lazy pages: the transfer broke off after %lu KiB: the tree resumes here",
			       (unsigned long)(s.served >> 10));
			break;
		}
		pr_warn("lazy pages: that connection is dropped; waiting for the next");
	}
	close(lsk);
	if (!ret)
		pr_info("lazy pages: the daemon is done, %lu KiB served", (unsigned long)(s.served >> 10));
out:
	if (s.memfd)
		for (int i = 0; i < tr->nr; i++)
			if (s.memfd[i] >= 0)
				close(s.memfd[i]);
	free(s.memfd);
	if (s.buf != MAP_FAILED && s.buf)
		munmap(s.buf, SEND_CHUNK);
	return ret;
}
