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

/* The pages of one mapping: runs first..last-1 of the pagemap, whose
 * bytes start at off in the pages image. */
struct vma_runs {
	bool ok;
	int first, last;
	uint64_t off;
};

/* Only pagemaps whose every run is in this dump's pages image (not in a
 * parent dump, not only on a page server): then a run's offset is the sum
 * of those before. */
static bool pagemap_plain(const struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_pagemap; i++) {
		const PagemapEntry *pe = rc->pagemap[i];
		if ((pe->has_in_parent && pe->in_parent) || (pe->has_flags && (pe->flags & ~PE_LAZY) != PE_PRESENT))
			return false;
	}
	return true;
}

/* The mapping holding addr, by bisection (the image lists them by
 * address; if it does not, a run is just not found and its mapping is
 * not premapped). -1 if none. */
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

/* Which mappings can be premapped, and where their runs are: every run
 * must lie inside one mapping, and a mapping's runs come one after the
 * other, by address. */
static void plan_runs(const struct rst_ctx *rc, struct vma_runs *vr)
{
	const MmEntry *mm = rc->mm;
	uint64_t off = 0, prev_end = 0;
	int prev = -1;

	for (size_t i = 0; i < mm->n_vmas; i++)
		vr[i] = (struct vma_runs){ premappable(mm->vmas[i]), -1, -1, 0 };
	for (int i = 0; i < rc->nr_pagemap; i++) {
		const PagemapEntry *pe = rc->pagemap[i];
		uint64_t len = pagemap_run_pages(pe) * PAGE_SZ, end = pe->vaddr + len;
		int v = rst_vma_at(mm, pe->vaddr);
		if (v >= 0 && (end > mm->vmas[v]->end || end <= pe->vaddr || (pe->vaddr & (PAGE_SZ - 1))))
			vr[v].ok = false;
		if (v >= 0 && vr[v].first >= 0 && (v != prev || pe->vaddr < prev_end))
			vr[v].ok = false;	/* its runs are not together, in order */
		if (v >= 0 && vr[v].first < 0) {
			vr[v].first = i;
			vr[v].off = off;
		}
		if (v >= 0)
			vr[v].last = i + 1;
		prev = v;
		prev_end = end;
		off += len;
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

static int read_at(int fd, void *buf, uint64_t len, uint64_t off, const struct rst_ctx *rc)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			pr_perror("pid %d: can't read %s at %lu", rc->pid, rc->pages_name, (unsigned long)off);
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

/* Its runs, to be read in once every new mapping is in place (fill.c). */
static int plan_fill(struct rst_ctx *rc, const VmaEntry *e, const struct vma_runs *vr, struct fill_list *fl)
{
	bool no_clear = (e->flags & MAP_ANONYMOUS) && !may_be_huge(rc, e);
	uint64_t off = vr->off;
	for (int r = vr->first; r >= 0 && r < vr->last; r++) {
		const PagemapEntry *pe = rc->pagemap[r];
		struct fill_job j = { e->start, e->end, pe->vaddr, pagemap_run_pages(pe) * PAGE_SZ, off, no_clear };
		if (fill_add(fl, &j) < 0) {
			pr_err("pid %d: out of memory", rc->pid);
			return -1;
		}
		off += j.len;
	}
	return 0;
}

/* A new mapping, to be filled straight from the pages image (its runs
 * added to fl). 0 if it could not be put there (left to the rebuild), 1
 * if done, -1 on error. */
static int premap_new(struct rst_ctx *rc, size_t i, const struct vma_runs *vr, struct fill_list *fl)
{
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
	void *p = mmap((void *)e->start, e->end - e->start, PROT_READ | PROT_WRITE, flags, fd,
		       fd >= 0 ? e->pgoff : 0);
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
	return plan_fill(rc, e, vr, fl) < 0 ? -1 : 1;
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
static int refill(struct rst_ctx *rc, const VmaEntry *e, uint64_t dst, uint64_t len, uint64_t off,
		  struct fill_list *fl)
{
	if (!len)
		return 0;
	drop_range(dst, dst + len);
	struct fill_job j = { e->start, e->end, dst, len, off, (e->flags & MAP_ANONYMOUS) && !may_be_huge(rc, e) };
	if (fill_add(fl, &j) < 0) {
		pr_err("pid %d: out of memory", rc->pid);
		return -1;
	}
	return 0;
}

/* The pages image mapped once for the comparisons (its page cache, no
 * copy), on first use; MAP_FAILED if it can't be. */
struct image_view {
	const char *win;
	uint64_t len;
	bool tried;
};

static const char *view_image(struct rst_ctx *rc, struct image_view *v)
{
	struct stat st;
	if (!v->tried && fstat(rc->pages_img, &st) == 0 && st.st_size > 0) {
		v->len = (uint64_t)st.st_size;
		v->win = mmap(NULL, v->len, PROT_READ, MAP_SHARED, rc->pages_img, 0);
	}
	v->tried = true;
	return v->win;
}

/* One run's pages against the image's page cache: the same are left
 * shared, the others refilled. 0, or -1 if the image can't be mapped or
 * is shorter than the run says (compared through a buffer then, which
 * says so: the mapping past its end would fault), -2 on errors. */
static int compare_mapped(struct rst_ctx *rc, struct image_view *v, const VmaEntry *e, uint64_t vaddr,
			  uint64_t len, uint64_t off, uint64_t *same, struct fill_list *fl)
{
	const char *img = view_image(rc, v);
	if (img == MAP_FAILED || off + len > v->len)
		return -1;
	const char *win = img + off;
	madvise((void *)win, len, MADV_POPULATE_READ);	/* in bulk, not a fault a page */
	uint64_t diff = 0, ndiff = 0;	/* the differing pages met last, at diff */
	uint64_t refilled = 0;
	int ret = 0;
	for (uint64_t pg = 0; pg < len && !ret; pg += PAGE_SZ) {
		if (memcmp((char *)vaddr + pg, win + pg, PAGE_SZ)) {
			if (!ndiff)
				diff = pg;
			ndiff += PAGE_SZ;
			refilled += PAGE_SZ;
			continue;
		}
		(*same)++;
		ret = refill(rc, e, vaddr + diff, ndiff, off + diff, fl);
		ndiff = 0;
	}
	if (!ret)
		ret = refill(rc, e, vaddr + diff, ndiff, off + diff, fl);
	progress_bytes(len - refilled);	/* what is refilled counts in the fill */
	return ret < 0 ? -2 : 0;
}

/* The same through a buffer: differing pages are written where they are. */
static int compare_read(struct rst_ctx *rc, uint64_t vaddr, uint64_t len, uint64_t off, char *buf, uint64_t *same)
{
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < CMP_BUF ? len - done : CMP_BUF;
		if (read_at(rc->pages_img, buf, n, off + done, rc) < 0)
			return -1;
		for (uint64_t pg = 0; pg < n; pg += PAGE_SZ) {
			char *to = (char *)vaddr + done + pg;
			if (!memcmp(to, buf + pg, PAGE_SZ))
				(*same)++;
			else
				memcpy(to, buf + pg, PAGE_SZ);
		}
		progress_bytes(n);
		done += n;
	}
	return 0;
}

/* The parent's mapping, kept: pages the image has are refilled where
 * they differ, those it has not are dropped (zero, never touched, or the
 * file's own again). */
static int premap_inherited(struct rst_ctx *rc, size_t i, const struct vma_runs *vr, char *buf,
			    struct image_view *v, uint64_t *same, struct fill_list *fl)
{
	const VmaEntry *e = rc->mm->vmas[i];
	uint64_t off = vr->off, at = e->start;

	for (int r = vr->first; r >= 0 && r < vr->last; r++) {
		const PagemapEntry *pe = rc->pagemap[r];
		uint64_t len = pagemap_run_pages(pe) * PAGE_SZ;
		drop_range(at, pe->vaddr);
		int c = compare_mapped(rc, v, e, pe->vaddr, len, off, same, fl);
		if (c == -2 || (c == -1 && compare_read(rc, pe->vaddr, len, off, buf, same) < 0))
			return -1;
		off += len;
		at = pe->vaddr + len;
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

int rst_premap(struct rst_tree *tr, struct rst_ctx *rc)
{
	const struct rst_ctx *par = rc->parent >= 0 ? &tr->t[rc->parent] : NULL;
	if (par && (par->zombie || !par->mm))
		par = NULL;	/* made nothing */
	size_t n = rc->mm->n_vmas;
	struct vma_runs *vr = calloc(n + 1, sizeof(*vr));
	int *from = calloc(n + 1, sizeof(*from));
	bool *keep = par ? calloc(par->mm->n_vmas + 1, sizeof(*keep)) : NULL;
	char *buf = malloc(CMP_BUF);
	struct image_view view = { MAP_FAILED, 0, false };
	uint64_t same = 0, kept = 0;
	struct fill_list fl = { 0 };
	int ret = -1;

	if (!vr || !from || !buf || (par && !keep)) {
		pr_err("pid %d: out of memory", rc->pid);
		goto out;
	}
	bool plain = rc->premapped && pagemap_plain(rc);
	if (plain)
		plan_runs(rc, vr);
	for (size_t i = 0; i < n; i++) {
		from[i] = plain && vr[i].ok && par ? inherited(rc, par, i) : -1;
		if (from[i] >= 0)
			keep[from[i]] = true;
	}
	if (par)
		drop_parents(par, keep);
	/* the kept mappings first, with the image in view; the new ones
	 * once it is gone from where they may want to be */
	for (size_t i = 0; plain && i < n; i++) {
		if (!vr[i].ok || from[i] < 0)
			continue;
		if (premap_inherited(rc, i, &vr[i], buf, &view, &same, &fl) < 0)
			goto out;
		rc->premapped[i] = true;
		kept++;
	}
	if (view.win != MAP_FAILED)
		munmap((void *)view.win, view.len);
	view.win = MAP_FAILED;
	for (size_t i = 0; plain && i < n; i++) {
		if (!vr[i].ok || from[i] >= 0)
			continue;
		int r = premap_new(rc, i, &vr[i], &fl);
		if (r < 0)
			goto out;
		rc->premapped[i] = r;
	}
	/* the new mappings' pages, once they are all in place */
	if (fill_run(&fl, rc->pages_img, rc->pages_name, rc->pid) < 0)
		goto out;
	if (kept)
		pr_info("pid %d: %lu mappings of its parent kept, %lu pages still shared with it", rc->pid,
			(unsigned long)kept, (unsigned long)same);
	fault_point("task-premapped");	/* in the new process (fail.restore_child_died) */
	ret = 0;
out:
	fill_free(&fl);
	free(vr);
	free(from);
	free(keep);
	free(buf);
	if (view.win != MAP_FAILED)
		munmap((void *)view.win, view.len);
	return ret;
}
