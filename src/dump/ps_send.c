/* dump --page-server (ps_send.h). Pages are read from the process with
 * process_vm_readv (through /proc/PID/mem where the process may not
 * read them itself) and sent one run after another, in address order
 * with the runs left to the parent, as the server's pagemap lists them.
 * Small runs go in batches: one read and one sendmsg for up to
 * BATCH_RUNS headers and their pages (a dump after a pre-dump sends
 * thousands of one-page runs, three syscalls each before). The bytes on
 * the wire are the same. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dump/ps_send.h"
#include "dump/track.h"
#include "dump/track_backend.h"
#include "image/img.h"
#include "image/shmem_pages.h"
#include "image/vma.h"
#include "pagexfer/ps_client.h"
#include "pagexfer/ps_tls.h"
#include "util/fault.h"
#include "util/fsop.h"
#include "util/io.h"
#include "util/log.h"

#define SEND_BUF (4ul << 20)
#define BATCH_RUNS 256		/* 2 iovecs each in one sendmsg, under IOV_MAX */

int ps_dump_connect(struct dump_tree *tr)
{
	const struct opts *o = tr->o;
	if (!o->page_server)
		return 0;
	if (o->ps_socket >= 0) {
		tr->ps_sk = dup(o->ps_socket);
		if (tr->ps_sk < 0)
			pr_perror("--ps-socket %d", o->ps_socket);
	} else {
		tr->ps_sk = ps_connect(o->address, o->port);
	}
	if (tr->ps_sk < 0)
		return -1;
	ps_set_timeout(tr->ps_sk, o->timeout ? o->timeout : 10);
	if (ps_tls_start(tr->ps_sk, false, o) < 0) {
		close(tr->ps_sk);
		tr->ps_sk = -1;
		return -1;
	}
	return 0;
}

/* Runs waiting to be sent together: their headers, and the bytes of
 * the saved ones one after the other in the sender's buffer. */
struct batch {
	int n;
	struct ps_iov hdr[BATCH_RUNS];
	const struct page_run *run[BATCH_RUNS];	/* NULL: left to the parent */
	uint64_t bytes;
	bool readable;		/* all its runs: one process_vm_readv reads them */
};

/* One run's bytes, read from the process and sent (and hashed). */
struct sender {
	pid_t pid;
	int sk;
	uint64_t dst;
	char *buf;
	int memfd;		/* /proc/PID/mem, opened when first needed */
	struct ck_state ck;
	bool running;		/* a pre-dump's copy: the tree runs (pages_read_or_zero) */
	uint64_t zeroed;	/* pages it could not read then, sent as zeros */
	struct batch b;
};

static int read_chunk(struct sender *s, char *to, uint64_t addr, size_t len, bool readable)
{
	if (readable) {
		struct iovec local = { to, len }, remote = { (void *)addr, len };
		if (process_vm_readv(s->pid, &local, 1, &remote, 1, 0) == (ssize_t)len)
			return 0;
	}
	if (s->memfd < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", s->pid);
		s->memfd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (s->memfd < 0 || pread(s->memfd, to, len, addr) != (ssize_t)len) {
		if (s->running) {	/* as dump/mem.c's pre-dump copy */
			s->zeroed += pages_read_or_zero(s->memfd, addr, len, to);
			return 0;
		}
		pr_perror("pid %d: can't read memory at %#lx", s->pid, (unsigned long)addr);
		return -1;
	}
	return 0;
}

/* A run too big for a batch: its header, then its bytes a buffer at a time. */
static int send_run(struct sender *s, const struct page_run *r)
{
	if (ps_add(s->sk, s->dst, r->start, (r->end - r->start) / PAGE_SZ, PE_PRESENT) < 0)
		return -1;
	for (uint64_t a = r->start; a < r->end;) {
		size_t len = r->end - a < SEND_BUF ? r->end - a : SEND_BUF;
		if (read_chunk(s, s->buf, a, len, r->readable) < 0 || ps_send(s->sk, s->buf, len) < 0)
			return -1;
		ck_update(&s->ck, s->buf, len);
		fault_point("ps-pages-sent");
		a += len;
	}
	return 0;
}

/* The batch's bytes into the buffer: with one process_vm_readv where it
 * can, else run by run. */
static int batch_read(struct sender *s)
{
	struct batch *b = &s->b;
	struct iovec remote[BATCH_RUNS], local = { s->buf, b->bytes };
	int n = 0;
	for (int i = 0; i < b->n; i++)
		if (b->run[i])
			remote[n++] = (struct iovec){ (void *)b->run[i]->start, b->run[i]->end - b->run[i]->start };
	if (!n || (b->readable && process_vm_readv(s->pid, &local, 1, remote, n, 0) == (ssize_t)b->bytes))
		return 0;
	char *to = s->buf;
	for (int i = 0; i < b->n; i++) {
		const struct page_run *r = b->run[i];
		if (r && read_chunk(s, to, r->start, r->end - r->start, r->readable) < 0)
			return -1;
		to += r ? r->end - r->start : 0;
	}
	return 0;
}

/* Sends the batch: each header followed by its run's bytes. */
static int batch_flush(struct sender *s)
{
	struct batch *b = &s->b;
	struct iovec out[2 * BATCH_RUNS];
	char *at = s->buf;
	int n = 0;

	if (!b->n)
		return 0;
	if (b->bytes && batch_read(s) < 0)
		return -1;
	for (int i = 0; i < b->n; i++) {
		out[n++] = (struct iovec){ &b->hdr[i], sizeof(b->hdr[i]) };
		if (b->run[i]) {
			size_t len = b->run[i]->end - b->run[i]->start;
			out[n++] = (struct iovec){ at, len };
			at += len;
		}
	}
	if (ps_sendv(s->sk, out, n) < 0)
		return -1;
	ck_update(&s->ck, s->buf, b->bytes);
	if (b->bytes)
		fault_point("ps-pages-sent");
	b->n = 0;
	b->bytes = 0;
	b->readable = true;
	return 0;
}

/* A run into the batch (own: its bytes too), or sent on its own if it
 * is too big for one. */
static int batch_add(struct sender *s, const struct page_run *r, bool own)
{
	struct batch *b = &s->b;
	uint64_t len = own ? r->end - r->start : 0;
	if (len > SEND_BUF)
		return batch_flush(s) < 0 ? -1 : send_run(s, r);
	if ((b->n == BATCH_RUNS || b->bytes + len > SEND_BUF) && batch_flush(s) < 0)
		return -1;
	b->hdr[b->n] = (struct ps_iov){ .cmd = ps_cmd(PS_IOV_ADD_F, own ? PE_PRESENT : PE_PARENT),
					.nr_pages = (r->end - r->start) / PAGE_SZ, .vaddr = r->start, .dst_id = s->dst };
	b->run[b->n++] = own ? r : NULL;
	b->bytes += len;
	b->readable &= !own || r->readable;
	return 0;
}

/* The runs in address order: saved ones with their bytes, the parent's
 * as holes. */
static int send_runs(struct sender *s, const struct page_runs *pr, const struct page_runs *par)
{
	size_t i = 0, k = 0;
	s->b.readable = true;
	while (i < pr->nr || k < par->nr) {
		bool own = k == par->nr || (i < pr->nr && pr->r[i].start < par->r[k].start);
		const struct page_run *r = own ? &pr->r[i++] : &par->r[k++];
		if (batch_add(s, r, own) < 0)
			return -1;
	}
	return batch_flush(s);
}

/* PS_SENT_NAME of this process: every run the server now lists. */
static int write_sent(struct dump_ctx *dc, const struct page_runs *pr, const struct page_runs *par)
{
	char name[64];
	size_t n = pr->nr + par->nr, i = 0, k = 0, m = 0;
	uint64_t (*v)[2] = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -1;
	while (i < pr->nr || k < par->nr) {
		bool own = k == par->nr || (i < pr->nr && pr->r[i].start < par->r[k].start);
		const struct page_run *r = own ? &pr->r[i++] : &par->r[k++];
		v[m][0] = r->start;
		v[m++][1] = r->end;
	}
	snprintf(name, sizeof(name), PS_SENT_NAME, dc->ns_pid);
	int ret = write_whole(dc->dirfd, name, (const char *)v, m * sizeof(*v));
	if (ret < 0)
		pr_perror("can't write %s", name);
	free(v);
	return ret;
}

/* The image of dst, opened on the server, gets the runs and their bytes
 * (read while the tree runs, if running); the list of what went. */
static int send_task(struct dump_ctx *dc, const struct page_runs *pr, const struct page_runs *par, bool running)
{
	uint64_t t1 = stats_now_us();
	struct sender *s = calloc(1, sizeof(*s));	/* the batch is big for a stack */
	bool has_parent;
	char name[64];
	int ret = -1;

	if (!s) {
		pr_err("out of memory");
		return -1;
	}
	*s = (struct sender){ .pid = dc->pid, .sk = dc->ps_sk, .dst = ps_dst(PS_TYPE_PID, dc->ns_pid),
			      .memfd = -1, .running = running };
	s->buf = mmap(NULL, SEND_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->buf == MAP_FAILED) {
		pr_perror("can't allocate a send buffer");
		free(s);
		return -1;
	}
	ck_init(&s->ck);
	if (ps_open(s->sk, s->dst, &has_parent) < 0 || send_runs(s, pr, par) < 0)
		goto out;
	dc->stats->memwrite_us += stats_now_us() - t1;
	snprintf(name, sizeof(name), "pages:pagemap-%d.img", dc->ns_pid);
	if (write_sent(dc, pr, par) < 0 ||
	    (dc->ck && ck_list_add_known(dc->ck, name, ck_digest(&s->ck), s->ck.total) < 0))
		goto out;
	if (s->zeroed)
		pr_info("pid %d: %lu pages unmapped or discarded during the copy, sent as zeros", dc->pid,
			(unsigned long)s->zeroed);
	pr_info("pid %d: %zu page runs, %lu MiB of memory sent to the page server%s", dc->pid, pr->nr,
		(unsigned long)(pr->bytes >> 20), running ? " while it ran" : "");
	ret = 0;
out:
	if (s->memfd >= 0)
		close(s->memfd);
	munmap(s->buf, SEND_BUF);
	free(s);
	return ret;
}

/* A pre-dump's runs, sent once the tree runs again (dump/mem.c says
 * why that is sound). */
struct ps_later {
	struct page_runs pr, par;
};

int ps_dump_task(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *par)
{
	uint64_t dst = ps_dst(PS_TYPE_PID, dc->ns_pid);
	bool has_parent, later = dc->o->pre_dump && !dc->o->live_snapshot;

	/* the parent's pages are where the server keeps them, or nowhere */
	if (ps_has_parent(dc->ps_sk, dst, &has_parent) < 0)
		return -1;
	if (dc->cover && !has_parent)
		track_drop_parent(dc, "the page server has no parent images for it");
	if (track_split(dc, pr, par) < 0)
		return -1;
	dc->stats->pages_written += pr->bytes / PAGE_SZ;
	dc->stats->pages_skipped_parent += par->bytes / PAGE_SZ;
	if (!later)
		return send_task(dc, pr, par, false) < 0 ? -1 : track_protect(dc, pr, par);
	if (!(dc->ps_later = calloc(1, sizeof(*dc->ps_later)))) {
		pr_err("out of memory");
		return -1;
	}
	dc->ps_later->pr = *pr;
	dc->ps_later->par = *par;
	*pr = *par = (struct page_runs){ 0 };
	return track_protect(dc, &dc->ps_later->pr, &dc->ps_later->par);
}

void ps_dump_task_drop(struct dump_ctx *dc)
{
	if (!dc->ps_later)
		return;
	free(dc->ps_later->pr.r);
	free(dc->ps_later->par.r);
	free(dc->ps_later);
	dc->ps_later = NULL;
}

int ps_dump_task_later(struct dump_ctx *dc)
{
	if (!dc->ps_later)
		return 0;
	int ret = send_task(dc, &dc->ps_later->pr, &dc->ps_later->par, true);
	ps_dump_task_drop(dc);
	return ret;
}

/* ---- shared memory (dump/shmem.h) ---- */

struct shmem_sender {
	int sk;
	uint64_t dst;
	struct ck_state ck;
};

static int send_shmem_run(void *arg, uint64_t off, const uint8_t *data, uint64_t nr)
{
	struct shmem_sender *ss = arg;
	if (ps_add(ss->sk, ss->dst, off, nr, PE_PRESENT) < 0 || ps_send(ss->sk, data, nr * PAGE_SZ) < 0)
		return -1;
	ck_update(&ss->ck, data, nr * PAGE_SZ);
	return 0;
}

static int send_shmem(void *arg, int i, uint64_t shmid, int fd, uint64_t size, const char *what, uint64_t *saved)
{
	struct dump_tree *tr = arg;
	struct shmem_sender ss = { .sk = tr->ps_sk, .dst = ps_dst(PS_TYPE_SHMEM, shmid) };
	char name[64];
	bool has_parent;

	(void)i;	/* the server numbers the pages files */
	ck_init(&ss.ck);
	if (ps_open(ss.sk, ss.dst, &has_parent) < 0 || shmem_pages_scan(fd, size, what, send_shmem_run, &ss) < 0)
		return -1;
	*saved = ss.ck.total;
	snprintf(name, sizeof(name), "pages:pagemap-shmem-%llu.img", (unsigned long long)shmid);
	return ck_list_add_known(&tr->ck, name, ck_digest(&ss.ck), ss.ck.total);
}

int ps_dump_shmem(struct dump_tree *tr)
{
	return shmem_dump_each(&tr->shmem, send_shmem, tr, &tr->stats.shpages_written);
}

int ps_dump_finish(struct dump_tree *tr)
{
	if (tr->ps_sk < 0)
		return 0;
	int ret = ps_close(tr->ps_sk, tr->o->ps_socket >= 0);
	ps_tls_end(ret < 0);
	close(tr->ps_sk);
	tr->ps_sk = -1;
	if (!ret)
		pr_info("the page server has all the pages");
	return ret;
}

void ps_dump_abort(struct dump_tree *tr)
{
	if (tr->ps_sk >= 0) {
		ps_tls_end(true);
		close(tr->ps_sk);
	}
	tr->ps_sk = -1;
}
