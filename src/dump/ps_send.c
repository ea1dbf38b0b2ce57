/* dump --page-server (ps_send.h). Pages are read from the process with
 * process_vm_readv (through /proc/PID/mem where the process may not
 * read them itself) and sent one run after another, in address order
 * with the runs left to the parent, as the server's pagemap lists them. */
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

/* One run's bytes, read from the process and sent (and hashed). */
struct sender {
	pid_t pid;
	int sk;
	char *buf;
	int memfd;		/* /proc/PID/mem, opened when first needed */
	struct ck_state ck;
	bool running;		/* a pre-dump's copy: the tree runs (pages_read_or_zero) */
	uint64_t zeroed;	/* pages it could not read then, sent as zeros */
};

static int read_chunk(struct sender *s, uint64_t addr, size_t len, bool readable)
{
	if (readable) {
		struct iovec local = { s->buf, len }, remote = { (void *)addr, len };
		if (process_vm_readv(s->pid, &local, 1, &remote, 1, 0) == (ssize_t)len)
			return 0;
	}
	if (s->memfd < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", s->pid);
		s->memfd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (s->memfd < 0 || pread(s->memfd, s->buf, len, addr) != (ssize_t)len) {
		if (s->running) {	/* as dump/mem.c's pre-dump copy */
			s->zeroed += pages_read_or_zero(s->memfd, addr, len, s->buf);
			return 0;
		}
		pr_perror("pid %d: can't read memory at %#lx", s->pid, (unsigned long)addr);
		return -1;
	}
	return 0;
}

static int send_run(struct sender *s, const struct page_run *r)
{
	for (uint64_t a = r->start; a < r->end;) {
		size_t len = r->end - a < SEND_BUF ? r->end - a : SEND_BUF;
		if (read_chunk(s, a, len, r->readable) < 0 || ps_send(s->sk, s->buf, len) < 0)
			return -1;
		ck_update(&s->ck, s->buf, len);
		fault_point("ps-pages-sent");
		a += len;
	}
	return 0;
}

/* The runs in address order: saved ones with their bytes, the parent's
 * as holes. */
static int send_runs(struct dump_ctx *dc, struct sender *s, uint64_t dst, const struct page_runs *pr,
		     const struct page_runs *par)
{
	size_t i = 0, k = 0;
	while (i < pr->nr || k < par->nr) {
		bool own = k == par->nr || (i < pr->nr && pr->r[i].start < par->r[k].start);
		const struct page_run *r = own ? &pr->r[i++] : &par->r[k++];
		if (ps_add(s->sk, dst, r->start, (r->end - r->start) / PAGE_SZ, own ? PE_PRESENT : PE_PARENT) < 0 ||
		    (own && send_run(s, r) < 0))
			return -1;
	}
	return 0;
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
	struct sender s = { .pid = dc->pid, .sk = dc->ps_sk, .memfd = -1, .running = running };
	uint64_t dst = ps_dst(PS_TYPE_PID, dc->ns_pid), t1 = stats_now_us();
	bool has_parent;
	char name[64];
	int ret = -1;

	s.buf = mmap(NULL, SEND_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s.buf == MAP_FAILED) {
		pr_perror("can't allocate a send buffer");
		return -1;
	}
	ck_init(&s.ck);
	if (ps_open(s.sk, dst, &has_parent) < 0 || send_runs(dc, &s, dst, pr, par) < 0)
		goto out;
	dc->stats->memwrite_us += stats_now_us() - t1;
	snprintf(name, sizeof(name), "pages:pagemap-%d.img", dc->ns_pid);
	if (write_sent(dc, pr, par) < 0 || (dc->ck && ck_list_add_known(dc->ck, name, ck_digest(&s.ck), s.ck.total) < 0))
		goto out;
	if (s.zeroed)
		pr_info("pid %d: %lu pages unmapped or discarded during the copy, sent as zeros", dc->pid,
			(unsigned long)s.zeroed);
	pr_info("pid %d: %zu page runs, %lu MiB of memory sent to the page server%s", dc->pid, pr->nr,
		(unsigned long)(pr->bytes >> 20), running ? " while it ran" : "");
	ret = 0;
out:
	if (s.memfd >= 0)
		close(s.memfd);
	munmap(s.buf, SEND_BUF);
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
