/* Private anonymous memory a process shares with its parent, copy-on-write,
 * as it did before the dump: a forking server's children all read the
 * heap of their parent without a copy of their own.
 *
 * Each new process, still running stasis code and before it forks its
 * children, maps its private anonymous mappings at their final addresses
 * and fills them from its pages image (the "premapped" ones). A child
 * finds its parent's there, inherited by fork: where one of its own
 * mappings is the same range, it keeps it, writes only the pages whose
 * saved contents differ and drops the ones it did not have; the rest of
 * the parent's it unmaps. The pages it leaves alone stay shared with the
 * parent. A mapping that can't be put in place now (stasis itself is
 * there, its pages are not plain runs of the pages image) is left to the
 * rebuild, which makes it as before (mem.c); which ones were premapped
 * the processes tell stasis through a table they all share. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/pagemap.h"
#include "image/vma.h"
#include "restore/fill.h"
#include "restore/rst.h"
#include "util/compat.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/grow.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define TASK_SIZE_47 0x7ffffffff000ul
#define CMP_BUF (1ul << 20)

int rst_premap_plan(struct rst_tree *tr)
{
	size_t total = 0;
	/* a lazy restore makes private memory in the rebuild, where its
	 * process registers it with its userfaultfd (lazy.c) */
	if (tr->o->lazy_pages)
		return 0;
	for (int i = 0; i < tr->nr; i++)
		if (!tr->t[i].zombie)
			total += tr->t[i].mm->n_vmas;
	if (!total)
		return 0;
	tr->premap_len = (total + PAGE_SZ - 1) & ~(PAGE_SZ - 1);
	char *p = mmap(NULL, tr->premap_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		pr_perror("can't map the table of premapped memory");
		tr->premap_len = 0;
		return -1;
	}
	tr->premap_table = p;
	for (int i = 0; i < tr->nr; i++)
		if (!tr->t[i].zombie) {
			tr->t[i].premapped = (bool *)p;
			p += tr->t[i].mm->n_vmas;
		}
	return 0;
}

void rst_premap_free(struct rst_tree *tr)
{
	if (tr->premap_table)
		munmap(tr->premap_table, tr->premap_len);
	tr->premap_table = NULL;
	for (int i = 0; tr->t && i < tr->nr; i++)
		tr->t[i].premapped = NULL;
}

bool rst_premapped(const struct rst_ctx *rc, size_t vma)
{
	return rc->premapped && rc->premapped[vma];
}

/* ---- in the new process ---- */

/* What can be made here: private memory of the program, anonymous or
 * copied from a file, not the kernel's areas, not a stack that grows
 * (its guard gap), locked memory (charged to stasis's limits now) nor
 * huge pages (a scarce pool: no copy of a parent's to compare). */
static bool premappable(const VmaEntry *e)
{
	return (e->status & VMA_AREA_REGULAR) && (e->status & (VMA_ANON_PRIVATE | VMA_FILE_PRIVATE)) &&
	       !(e->status & (VMA_AREA_VDSO | VMA_AREA_VVAR | VMA_AREA_VSYSCALL | VMA_ANON_SHARED |
			      VMA_FILE_SHARED | VMA_AREA_MEMFD)) &&
	       !(e->flags & (MAP_SHARED | MAP_GROWSDOWN | MAP_LOCKED | MAP_HUGETLB)) &&
	       e->start < e->end && e->end <= TASK_SIZE_47 && !((e->start | e->end) & (PAGE_SZ - 1));
}

/* Where the bytes of the process's pages are: runs of its own pages
 * image (src 0) or of a parent dump's (src = its depth, parent.c). */
struct src_run {
	uint64_t vaddr, len, off;
	int src;
};

struct src_runs {
	const MmEntry *mm;
	struct src_run *r;
	int nr, cap;
	int nsrc;		/* 1 + the deepest parent dump used */
};

static int add_one(struct src_runs *sr, uint64_t vaddr, uint64_t len, uint64_t off, int src)
{
	if (grow_array(sr->r, sr->cap, sr->nr + 1, 64) < 0)
		return -1;
	sr->r[sr->nr++] = (struct src_run){ vaddr, len, off, src };
	if (src >= sr->nsrc)
		sr->nsrc = src + 1;
	return 0;
}

/* A run as one per mapping it lies in: a run may span adjacent mappings
 * (CRIU's can; a stasis dump's PE_PARENT runs do where two mappings'
 * unchanged pages meet), and each mapping is premapped with its own
 * part. */
static int add_run(struct src_runs *sr, uint64_t vaddr, uint64_t len, uint64_t off, int src)
{
	while (len) {
		int v = rst_vma_at(sr->mm, vaddr);
		uint64_t n = v >= 0 && sr->mm->vmas[v]->end - vaddr < len ? sr->mm->vmas[v]->end - vaddr : len;
		if (add_one(sr, vaddr, n, off, src) < 0)
			return -1;
		vaddr += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int add_parent_piece(void *arg, int depth, int fd, uint64_t off, uint64_t addr, uint64_t len)
{
	(void)fd;
	return add_run(arg, addr, len, off, depth);
}

/* The runs of the pagemap by where their bytes are. 1 if every run's
 * are in this dump's pages image or in a parent dump's that stasis
 * opened (parent.c); 0 if not (pages left to a page server or absent:
 * nothing is premapped), -1 on errors (said). */
static int plan_sources(const struct rst_ctx *rc, struct src_runs *sr)
{
	uint64_t off = 0;
	sr->mm = rc->mm;
	sr->nsrc = 1;
	for (int i = 0; i < rc->nr_pagemap; i++) {
		const PagemapEntry *pe = rc->pagemap[i];
		uint64_t len = pagemap_run_pages(pe) * PAGE_SZ;
		int r;
		if (pagemap_run_in_parent(pe)) {
			if (rst_parent_fd(rc, 1) < 0)
				return 0;
			r = rst_parent_walk(rc, pe->vaddr, len, add_parent_piece, sr);
		} else if (pe->has_flags && (pe->flags & ~PE_LAZY) != PE_PRESENT) {
			return 0;
		} else {
			r = add_run(sr, pe->vaddr, len, off, 0);
			off += len;
		}
		if (r < 0) {
			pr_err("pid %d: can't plan where its pages come from", rc->pid);
			return -1;
		}
	}
	return 1;
}

/* The pages image of src, and its name for messages. */
static struct fill_src source(const struct rst_ctx *rc, int src)
{
	if (!src)
		return (struct fill_src){ rc->pages_img, rc->pages_name };
	return (struct fill_src){ rst_parent_fd(rc, src), "a parent dump's pages image" };
}

/* The pages of one mapping: runs first..last-1 of the source runs. */
struct vma_runs {
	bool ok;
	int first, last;
};

/* The mapping holding addr, by bisection (the image lists them by
 * address: rst_premap checks). -1 if none. */
int rst_vma_at(const MmEntry *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->n_vmas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < mm->vmas[mid]->start)
			hi = mid;
		else if (addr >= mm->vmas[mid]->end)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/* Which mappings can be premapped, and which runs are theirs: every
 * run must lie inside one mapping, and a mapping's runs come one after
 * the other, by address. */
static void plan_runs(const struct rst_ctx *rc, const struct src_runs *sr, struct vma_runs *vr)
{
	const MmEntry *mm = rc->mm;
	uint64_t prev_end = 0;
	int prev = -1;

	for (size_t i = 0; i < mm->n_vmas; i++)
		vr[i] = (struct vma_runs){ premappable(mm->vmas[i]), -1, -1 };
	for (int i = 0; i < sr->nr; i++) {
		const struct src_run *r = &sr->r[i];
		uint64_t end = r->vaddr + r->len;
		int v = rst_vma_at(mm, r->vaddr);
		if (v >= 0 && (end > mm->vmas[v]->end || end <= r->vaddr || (r->vaddr & (PAGE_SZ - 1))))
			vr[v].ok = false;
		if (v >= 0 && vr[v].first >= 0 && (v != prev || r->vaddr < prev_end))
			vr[v].ok = false;	/* its runs are not together, in order */
		if (v >= 0 && vr[v].first < 0)
			vr[v].first = i;
		if (v >= 0)
			vr[v].last = i + 1;
		prev = v;
		prev_end = end;
	}
}

/* The parent's premapped mapping of the same range, or -1. */
static int inherited(const struct rst_ctx *rc, const struct rst_ctx *par, size_t i)
{
	const VmaEntry *e = rc->mm->vmas[i];
	int k = rst_vma_at(par->mm, e->start);
	if (k < 0 || !rst_premapped(par, k))
		return -1;
	const VmaEntry *pe = par->mm->vmas[k];
	bool same = pe->start == e->start && pe->end == e->end &&
		    (pe->flags & MAP_TYPE) == (e->flags & MAP_TYPE) &&
		    (pe->status & VMA_FILE_PRIVATE) == (e->status & VMA_FILE_PRIVATE);
	if (same && (e->status & VMA_FILE_PRIVATE))
		same = pe->shmid == e->shmid && pe->pgoff == e->pgoff;
	return same ? k : -1;
}

/* The pages images mapped once each for the comparisons (their page
 * cache, no copy), on first use; MAP_FAILED if one can't be. */
struct image_view {
	const char *win;
	uint64_t len;
	bool tried;
};

/* One process's premap: where its pages are, the images in view for the
 * comparisons, what is left to fill. */
struct premap {
	struct rst_ctx *rc;
	struct src_runs sr;
	struct image_view *views;	/* per source */
	struct fill_list fl;
	char *buf;			/* CMP_BUF */
	uint64_t same;			/* pages left shared with the parent */
};

static int read_at(const struct premap *pm, int src, void *buf, uint64_t len, uint64_t off)
{
	struct fill_src s = source(pm->rc, src);
	while (len) {
		ssize_t n = pread(s.fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			pr_perror("pid %d: can't read %s at %lu", pm->rc->pid, s.name, (unsigned long)off);
			return -1;
		}
		buf = (char *)buf + n;
		len -= n;
		off += n;
	}
	return 0;
}

/* Whether a plain fault would give this mapping huge pages, which a
 * fill without clearing (fill.c) can't make: with THP "always", in a
 * mapping not kept out of them. */
static bool may_be_huge(const struct rst_ctx *rc, const VmaEntry *e)
{
	bool kept_out = (e->has_madv && (e->madv & (1ull << MADV_NOHUGEPAGE))) ||
			(rc->mm->has_thp_disabled && rc->mm->thp_disabled);
	return fill_thp_always() && !kept_out;
}

/* len bytes at dst of mapping e, from offset off of source src, to be
 * filled once every new mapping is in place (fill.c). */
static int plan_job(struct premap *pm, const VmaEntry *e, uint64_t dst, uint64_t len, uint64_t off, int src)
{
	struct fill_job j = { e->start, e->end, dst, len, off, src,
			      (e->flags & MAP_ANONYMOUS) && !may_be_huge(pm->rc, e) };
	if (fill_add(&pm->fl, &j) < 0) {
		pr_err("pid %d: out of memory", pm->rc->pid);
		return -1;
	}
	return 0;
}

int rst_premap_prot(const struct rst_ctx *rc, const VmaEntry *e)
{
	return rst_vma_made_as_is(rc, e) ? (int)e->prot : PROT_READ | PROT_WRITE;
}

/* A new mapping, to be filled straight from the pages images (its runs
 * added to the fill). 0 if it could not be put there (left to the
 * rebuild), 1 if done, -1 on error. */
static int premap_new(struct premap *pm, size_t i, const struct vma_runs *vr)
{
	struct rst_ctx *rc = pm->rc;
	const VmaEntry *e = rc->mm->vmas[i];
	int flags = (e->flags & (MAP_TYPE | MAP_NORESERVE)) | MAP_FIXED_NOREPLACE, fd = -1;
	if (e->status & VMA_FILE_PRIVATE) {
		/* the file's own pages are shared through the page cache
		 * anyway: only worth it for the ones the process wrote */
		if (vr->first < 0)
			return 0;
		fd = rst_mem_open_file(rc, e);
		if (fd < 0)
			return -1;
	} else {
		flags |= MAP_ANONYMOUS;
	}
	void *p = mmap((void *)e->start, e->end - e->start, rst_premap_prot(rc, e), flags, fd, fd >= 0 ? e->pgoff : 0);
	if (fd >= 0)
		close(fd);
	if (p == MAP_FAILED) {
		pr_debug("pid %d: mapping %#lx-%#lx not premapped (%m): the rebuild makes it", rc->pid,
			 (unsigned long)e->start, (unsigned long)e->end);
		return 0;
	}
	if (p != (void *)e->start) {	/* a kernel before 4.17 took it as a hint */
		munmap(p, e->end - e->start);
		return 0;
	}
	/* A mapping the program kept out of huge pages is filled as it
	 * asked: with THP on always, filling it first would make huge pages
	 * (the rebuild sets every hint again later, as before). */
	if (e->has_madv && (e->madv & (1ull << MADV_NOHUGEPAGE)))
		madvise(p, e->end - e->start, MADV_NOHUGEPAGE);
	for (int r = vr->first; r >= 0 && r < vr->last; r++) {
		const struct src_run *sr = &pm->sr.r[r];
		if (plan_job(pm, e, sr->vaddr, sr->len, sr->off, sr->src) < 0)
			return -1;
	}
	return 1;
}

static void drop_range(uint64_t from, uint64_t to)
{
	if (from < to)
		madvise((void *)from, to - from, MADV_DONTNEED);
}

/* Pages of a kept mapping that differ from the image, dst..dst+len
 * (image offset off): dropped, so that they are filled fresh with the
 * new mappings (fill.c), one copy each, instead of a copy-on-write
 * fault (a copy of the parent's page) and a copy over it. */
static int refill(struct premap *pm, const VmaEntry *e, uint64_t dst, uint64_t len, uint64_t off, int src)
{
	if (!len)
		return 0;
	drop_range(dst, dst + len);
	return plan_job(pm, e, dst, len, off, src);
}

static const char *view_image(struct premap *pm, int src)
{
	struct image_view *v = &pm->views[src];
	struct stat st;
	int fd = source(pm->rc, src).fd;
	if (!v->tried && fstat(fd, &st) == 0 && st.st_size > 0) {
		v->len = (uint64_t)st.st_size;
		v->win = mmap(NULL, v->len, PROT_READ, MAP_SHARED, fd, 0);
	}
	v->tried = true;
	return v->win;
}

static void unview_images(struct premap *pm)
{
	for (int s = 0; pm->views && s < pm->sr.nsrc; s++) {
		if (pm->views[s].win != MAP_FAILED)
			munmap((void *)pm->views[s].win, pm->views[s].len);
		pm->views[s] = (struct image_view){ MAP_FAILED, 0, false };
	}
}

/* One run's pages against its image's page cache: the same are left
 * shared, the others refilled. 0, or -1 if the image can't be mapped or
 * is shorter than the run says (compared through a buffer then, which
 * says so: the mapping past its end would fault), -2 on errors. */
static int compare_mapped(struct premap *pm, const VmaEntry *e, const struct src_run *r)
{
	const char *img = view_image(pm, r->src);
	if (img == MAP_FAILED || r->off + r->len > pm->views[r->src].len)
		return -1;
	const char *win = img + r->off;
	madvise((void *)win, r->len, MADV_POPULATE_READ);	/* in bulk, not a fault a page */
	uint64_t diff = 0, ndiff = 0;	/* the differing pages met last, at diff */
	uint64_t refilled = 0;
	int ret = 0;
	for (uint64_t pg = 0; pg < r->len && !ret; pg += PAGE_SZ) {
		if (memcmp((char *)r->vaddr + pg, win + pg, PAGE_SZ)) {
			if (!ndiff)
				diff = pg;
			ndiff += PAGE_SZ;
			refilled += PAGE_SZ;
			continue;
		}
		pm->same++;
		ret = refill(pm, e, r->vaddr + diff, ndiff, r->off + diff, r->src);
		ndiff = 0;
	}
	if (!ret)
		ret = refill(pm, e, r->vaddr + diff, ndiff, r->off + diff, r->src);
	progress_bytes(r->len - refilled);	/* what is refilled counts in the fill */
	return ret < 0 ? -2 : 0;
}

/* The same through a buffer: differing pages are written where they are. */
static int compare_read(struct premap *pm, const struct src_run *r)
{
	for (uint64_t done = 0; done < r->len;) {
		uint64_t n = r->len - done < CMP_BUF ? r->len - done : CMP_BUF;
		if (read_at(pm, r->src, pm->buf, n, r->off + done) < 0)
			return -1;
		for (uint64_t pg = 0; pg < n; pg += PAGE_SZ) {
			char *to = (char *)r->vaddr + done + pg;
			if (!memcmp(to, pm->buf + pg, PAGE_SZ))
				pm->same++;
			else
				memcpy(to, pm->buf + pg, PAGE_SZ);
		}
		progress_bytes(n);
		done += n;
	}
	return 0;
}

/* The parent's mapping, kept: pages the images have are refilled where
 * they differ, those they have not are dropped (zero, never touched, or
 * the file's own again). */
static int premap_inherited(struct premap *pm, size_t i, const struct vma_runs *vr)
{
	const VmaEntry *e = pm->rc->mm->vmas[i];
	uint64_t at = e->start;

	for (int k = vr->first; k >= 0 && k < vr->last; k++) {
		const struct src_run *r = &pm->sr.r[k];
		drop_range(at, r->vaddr);
		int c = compare_mapped(pm, e, r);
		if (c == -2 || (c == -1 && compare_read(pm, r) < 0))
			return -1;
		at = r->vaddr + r->len;
	}
	drop_range(at, e->end);
	return 1;
}

/* Unmaps the parent's premapped mappings this process does not keep. */
static void drop_parents(const struct rst_ctx *par, const bool *keep)
{
	for (size_t k = 0; k < par->mm->n_vmas; k++)
		if (rst_premapped(par, k) && !keep[k])
			munmap((void *)par->mm->vmas[k]->start, par->mm->vmas[k]->end - par->mm->vmas[k]->start);
}

/* The fill's sources: the process's own pages image and its parent dumps'. */
static int run_fill(struct premap *pm)
{
	struct fill_src src[pm->sr.nsrc];
	for (int s = 0; s < pm->sr.nsrc; s++)
		src[s] = source(pm->rc, s);
	return fill_run(&pm->fl, src, pm->sr.nsrc, pm->rc->pid);
}

int rst_premap(struct rst_tree *tr, struct rst_ctx *rc)
{
	const struct rst_ctx *par = rc->parent >= 0 ? &tr->t[rc->parent] : NULL;
	if (par && (par->zombie || !par->mm))
		par = NULL;	/* made nothing */
	size_t n = rc->mm->n_vmas;
	struct premap pm = { .rc = rc };
	struct vma_runs *vr = calloc(n + 1, sizeof(*vr));
	int *from = calloc(n + 1, sizeof(*from));
	bool *keep = par ? calloc(par->mm->n_vmas + 1, sizeof(*keep)) : NULL;
	uint64_t kept = 0;
	int ret = -1;

	pm.buf = malloc(CMP_BUF);
	if (!vr || !from || !pm.buf || (par && !keep)) {
		pr_err("pid %d: out of memory", rc->pid);
		goto out;
	}
	/* runs are put in their mappings by bisection: an image whose
	 * mappings are not in order (no kernel's) premaps nothing */
	int planned = rc->premapped && rst_vmas_ordered(rc) ? plan_sources(rc, &pm.sr) : 0;
	if (planned < 0)
		goto out;
	pm.views = calloc(pm.sr.nsrc + 1, sizeof(*pm.views));
	if (!pm.views) {
		pr_err("pid %d: out of memory", rc->pid);
		goto out;
	}
	for (int s = 0; s < pm.sr.nsrc; s++)
		pm.views[s] = (struct image_view){ MAP_FAILED, 0, false };
	if (planned)
		plan_runs(rc, &pm.sr, vr);
	for (size_t i = 0; i < n; i++) {
		from[i] = planned && vr[i].ok && par ? inherited(rc, par, i) : -1;
		/* a parent's mapping made without write access (it had no pages
		 * there) can't take this process's pages: made anew */
		if (from[i] >= 0 && vr[i].first >= 0 &&
		    rst_premap_prot(par, par->mm->vmas[from[i]]) != (PROT_READ | PROT_WRITE))
			from[i] = -1;
		if (from[i] >= 0)
			keep[from[i]] = true;
	}
	if (par)
		drop_parents(par, keep);
	/* the kept mappings first, with the images in view; the new ones
	 * once they are gone from where they may want to be */
	for (size_t i = 0; planned && i < n; i++) {
		if (!vr[i].ok || from[i] < 0)
			continue;
		if (premap_inherited(&pm, i, &vr[i]) < 0)
			goto out;
		rc->premapped[i] = true;
		kept++;
	}
	unview_images(&pm);
	for (size_t i = 0; planned && i < n; i++) {
		if (!vr[i].ok || from[i] >= 0)
			continue;
		int r = premap_new(&pm, i, &vr[i]);
		if (r < 0)
			goto out;
		rc->premapped[i] = r;
	}
	/* the new mappings' pages, once they are all in place */
	if (run_fill(&pm) < 0)
		goto out;
	if (kept)
		pr_info("pid %d: %lu mappings of its parent kept, %lu pages still shared with it", rc->pid,
			(unsigned long)kept, (unsigned long)pm.same);
	fault_point("task-premapped");	/* in the new process (fail.restore_child_died) */
	ret = 0;
out:
	unview_images(&pm);
	fill_free(&pm.fl);
	free(pm.sr.r);
	free(pm.views);
	free(pm.buf);
	free(vr);
	free(from);
	free(keep);
	return ret;
}
