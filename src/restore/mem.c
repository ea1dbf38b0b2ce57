/* Rebuilding the address space of the new task, from outside, by syscalls
 * injected into it: everything of stasis is unmapped, the vdso is moved
 * where the image had it, the image's mappings are created (shared
 * anonymous memory from the object stasis made and filled already,
 * restore/shmem.c), the pages of private ones read from pages-ID.img
 * straight into place (one copy), protections and hints set, and last
 * the mm fields (brk, arg/env, auxv, exe) with PR_SET_MM_MAP. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/prctl.h>

#include "image/pagemap.h"
#include "image/vma.h"
#include "proc/proc.h"
#include "restore/rst.h"
#include "task/guards.h"
#include "task/sysv_shm.h"
#include "util/compat.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/progress.h"

#define TASK_SIZE_47 0x7ffffffff000ul
#define IOV_BATCH 1024

static bool vma_is_vdso_part(const VmaEntry *e)
{
	return e->status & (VMA_AREA_VDSO | VMA_AREA_VVAR);
}

static bool vma_skipped(const VmaEntry *e)
{
	return (e->status & VMA_AREA_VSYSCALL) || vma_is_vdso_part(e);
}

/* ---- child side: files the mappings need, opened before it stops ---- */

/* A file mapping, or shared anonymous memory: mapped from the object
 * stasis made (restore/shmem.c); a socket's rings, from the socket. */
static bool vma_needs_file(const VmaEntry *e)
{
	return (e->status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED | VMA_ANON_SHARED | VMA_AREA_SOCKET)) &&
	       !(e->status & VMA_AREA_SYSVIPC) && !vma_skipped(e);
}

void rst_mem_plan_fds(struct rst_ctx *rc, int *next_fd)
{
	for (size_t i = 0; i < rc->mm->n_vmas; i++)
		rc->vma_fd[i] = vma_needs_file(rc->mm->vmas[i]) ? (*next_fd)++ : -1;
}

/* The object stasis made, inherited: a copy of its fd. */
static int open_shmem(struct rst_ctx *rc, const VmaEntry *e)
{
	int made = rst_shmem_fd(rc->shmem, e->shmid);
	if (made < 0) {
		pr_err("pid %d: shared memory %lu of mapping %#lx was not made", rc->pid,
		       (unsigned long)e->shmid, (unsigned long)e->start);
		return -1;
	}
	int fd = dup(made);
	if (fd < 0)
		pr_perror("pid %d: can't take shared memory %lu for mapping %#lx", rc->pid,
			  (unsigned long)e->shmid, (unsigned long)e->start);
	return fd;
}

int rst_mem_open_file(struct rst_ctx *rc, const VmaEntry *e)
{
	if (!files_find(rc->files, e->shmid)) {
		pr_err("image mm-%d.img: mapping %#lx refers to unknown file %lu", rc->pid,
		       (unsigned long)e->start, (unsigned long)e->shmid);
		return -1;
	}
	uint32_t flags = e->has_fdflags ? e->fdflags : O_RDONLY;
	snprintf(rc->files->who, sizeof(rc->files->who), "mapping %#lx of pid %d",
		 (unsigned long)e->start, rc->pid);
	int fd = files_open_path(rc->files, e->shmid, flags);
	/* shared and writable once, read-only now: reading will do */
	if (fd < 0 && (flags & O_ACCMODE) == O_RDWR && !(e->prot & PROT_WRITE))
		fd = files_open_path(rc->files, e->shmid, O_RDONLY);
	return fd;
}

int rst_mem_open_fds(struct rst_ctx *rc)
{
	for (size_t i = 0; i < rc->mm->n_vmas; i++) {
		const VmaEntry *e = rc->mm->vmas[i];
		if (rc->vma_fd[i] < 0)
			continue;
		int fd = e->status & VMA_ANON_SHARED ? open_shmem(rc, e) : rst_mem_open_file(rc, e);
		if (fd < 0)
			return -1;
		if (dup2(fd, rc->vma_fd[i]) < 0) {
			pr_perror("can't move the fd of mapping %#lx", (unsigned long)e->start);
			return -1;
		}
		/* opened right at its place (the lowest free fd was it) */
		if (fd != rc->vma_fd[i])
			close(fd);
	}
	return 0;
}

/* ---- ptracer side ---- */

struct range {
	uint64_t start, end;
};

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

static bool range_free_in_image(const struct rst_ctx *rc, uint64_t s, uint64_t e)
{
	for (size_t i = 0; i < rc->mm->n_vmas; i++)
		if (overlaps(s, e, rc->mm->vmas[i]->start, rc->mm->vmas[i]->end))
			return false;
	return true;
}

/* An address range of len bytes that no image mapping and no avoid range
 * touches: for the scratch area and for parking the vdso. */
static uint64_t find_hole(const struct rst_ctx *rc, uint64_t len, const struct range *avoid)
{
	for (uint64_t a = 1ul << 32; a + len < TASK_SIZE_47; a += 1ul << 30) {
		if (!range_free_in_image(rc, a, a + len))
			continue;
		if (avoid && overlaps(a, a + len, avoid->start, avoid->end))
			continue;
		return a;
	}
	return 0;
}

/* The vdso block of the new task (inherited from stasis) and of the image. */
struct vdso_block {
	uint64_t start, end;
	uint64_t part_start[4], part_end[4];
	int nr;
	uint64_t vdso;		/* start of the [vdso] part */
};

static struct vdso_block own_block;
static int own_block_ret;

static void own_vdso_parse(void)
{
	struct vdso_block *b = &own_block;
	struct proc_vmas vmas;
	own_block_ret = -1;
	if (proc_parse_smaps(getpid(), &vmas) < 0)
		return;
	for (int i = 0; i < vmas.nr; i++) {
		const struct proc_vma *v = &vmas.v[i];
		if (v->special != VMA_VDSO && v->special != VMA_VVAR)
			continue;
		if (b->nr == 4)
			break;
		if (v->special == VMA_VDSO)
			b->vdso = v->start;
		b->part_start[b->nr] = v->start;
		b->part_end[b->nr++] = v->end;
	}
	proc_vmas_free(&vmas);
	if (!b->nr || !b->vdso) {
		pr_err("stasis itself has no vdso");
		return;
	}
	b->start = b->part_start[0];
	b->end = b->part_end[b->nr - 1];
	own_block_ret = 0;
}

/* The new task's vdso block is stasis's (it was forked from it), which
 * never moves: read once. Reading stasis's smaps walks all its memory,
 * which holds the images of every process of the tree: once per process
 * it grew with the square of their number (1000 processes: 0.7 s). */
static int own_vdso_block(struct vdso_block *b)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, own_vdso_parse);
	*b = own_block;
	return own_block_ret;
}

static int image_vdso_block(const struct rst_ctx *rc, struct vdso_block *b)
{
	memset(b, 0, sizeof(*b));
	for (size_t i = 0; i < rc->mm->n_vmas; i++) {
		const VmaEntry *e = rc->mm->vmas[i];
		if (!vma_is_vdso_part(e))
			continue;
		if (b->nr == 4) {
			pr_err("image mm-%d.img has more vdso/vvar parts than this kernel", rc->pid);
			return -1;
		}
		if (e->status & VMA_AREA_VDSO)
			b->vdso = e->start;
		b->part_start[b->nr] = e->start;
		b->part_end[b->nr++] = e->end;
	}
	if (b->nr) {
		b->start = b->part_start[0];
		b->end = b->part_end[b->nr - 1];
	}
	return 0;
}

/* The vdso can only be moved if this kernel's block has the image's size
 * and the vdso at the same offset in it (vvar before it, in one piece or
 * two: CRIU saves [vvar] and [vvar_vclock] as one mapping). */
static int vdso_layout_matches(const struct rst_ctx *rc, const struct vdso_block *own,
			       const struct vdso_block *img)
{
	bool same = own->end - own->start == img->end - img->start &&
		    own->vdso - own->start == img->vdso - img->start;
	if (!same)
		pr_err("pid %d: the image's vdso/vvar layout differs from this kernel's; "
		       "restoring on another kernel is not supported yet", rc->pid);
	return same ? 0 : -1;
}

static int move_vdso_block(struct rst_ctx *rc, struct vdso_block *from, uint64_t to)
{
	for (int i = 0; i < from->nr; i++) {
		uint64_t len = from->part_end[i] - from->part_start[i];
		uint64_t dst = to + (from->part_start[i] - from->start);
		if (inj_must(&rc->inj, "vdso move", NULL,
			     INJ(SYS_mremap, from->part_start[i], len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst)) < 0)
			return -1;
	}
	uint64_t delta = to - from->start;
	for (int i = 0; i < from->nr; i++) {
		from->part_start[i] += delta;
		from->part_end[i] += delta;
	}
	from->start += delta;
	from->end += delta;
	from->vdso += delta;
	inj_vdso_moved(&rc->inj, delta);
	return 0;
}

static int unmap_gap(struct rst_ctx *rc, uint64_t from, uint64_t to)
{
	if (from >= to)
		return 0;
	return inj_must(&rc->inj, "unmap of stasis", NULL, INJ(SYS_munmap, from, to - from));
}

/* Everything but the vdso and the mappings the process premapped itself
 * (premap.c), which are image mappings, in order, and so never overlap
 * the vdso block (it was mapped when they were made). */
static int unmap_all_but(struct rst_ctx *rc, const struct vdso_block *own)
{
	uint64_t at = 0;
	bool vdso_done = false;

	for (size_t i = 0; i <= rc->mm->n_vmas; i++) {
		const VmaEntry *e = i < rc->mm->n_vmas ? rc->mm->vmas[i] : NULL;
		if (e && !rst_premapped(rc, i))
			continue;
		uint64_t next = e ? e->start : TASK_SIZE_47;
		if (!vdso_done && own->start < next) {
			if (unmap_gap(rc, at, own->start) < 0)
				return -1;
			at = own->end;
			vdso_done = true;
		}
		if (unmap_gap(rc, at, next) < 0)
			return -1;
		if (e)
			at = e->end;
	}
	return 0;
}

/* Drops every mapping stasis had and puts the vdso where the image wants it. */
static int clear_address_space(struct rst_ctx *rc)
{
	struct vdso_block own, img;

	if (own_vdso_block(&own) < 0 || image_vdso_block(rc, &img) < 0)
		return -1;
	if (unmap_all_but(rc, &own) < 0)
		return -1;
	if (!img.nr)	/* the task ran without a vdso */
		return 0;
	if (vdso_layout_matches(rc, &own, &img) < 0)
		return -1;
	if (own.start == img.start)
		return 0;
	if (overlaps(own.start, own.end, img.start, img.end)) {
		struct range avoid = { own.start, own.end };
		uint64_t park = find_hole(rc, own.end - own.start, &avoid);
		if (!park || move_vdso_block(rc, &own, park) < 0)
			return -1;
	}
	return move_vdso_block(rc, &own, img.start);
}

int rst_mem_drop_vdso(struct rst_ctx *rc)
{
	struct vdso_block own, img;
	if (image_vdso_block(rc, &img) < 0)
		return -1;
	if (img.nr)
		return 0;
	if (own_vdso_block(&own) < 0)
		return -1;
	inj_use(&rc->inj, 0);
	return inj_must(&rc->inj, "unmap of the vdso", NULL, INJ(SYS_munmap, own.start, own.end - own.start));
}

static int map_scratch(struct rst_ctx *rc)
{
	uint64_t vdso = rc->inj.cur->syscall_ip & ~4095ul;
	struct range avoid = { vdso, vdso + (1ul << 20) };
	uint64_t at = find_hole(rc, RST_SCRATCH_SIZE, &avoid);
	if (!at) {
		pr_err("pid %d: no room for a scratch area", rc->pid);
		return -1;
	}
	return inj_scratch_map(&rc->inj, at, RST_SCRATCH_SIZE);
}

/* Pages restore writes into the mapping from the process's pagemap:
 * those of private memory, and of shared anonymous memory that an older
 * stasis saved there (the object's own are in its pagemap-shmem image,
 * already in it). */
static bool vma_gets_pages(const VmaEntry *e)
{
	return vma_restores_pages(e->status) || ((e->status & VMA_ANON_SHARED) && !(e->status & VMA_AREA_SYSVIPC));
}

void rst_note_pagemap_order(struct rst_ctx *rc)
{
	rc->pagemap_ordered = true;
	for (int i = 1; i < rc->nr_pagemap; i++)
		if (rc->pagemap[i]->vaddr < rc->pagemap[i - 1]->vaddr + pagemap_run_pages(rc->pagemap[i - 1]) * PAGE_SZ)
			rc->pagemap_ordered = false;
}

/* Runs out of order (no kernel's walk gives them so): assume pages. */
bool rst_has_pages_in(const struct rst_ctx *rc, uint64_t start, uint64_t end)
{
	if (!rc->pagemap_ordered)
		return true;
	int lo = 0, hi = rc->nr_pagemap;	/* the first run ending after start */
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		const PagemapEntry *pe = rc->pagemap[mid];
		if (pe->vaddr + pagemap_run_pages(pe) * PAGE_SZ <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < rc->nr_pagemap && rc->pagemap[lo]->vaddr < end;
}

/* A private anonymous mapping the program can't write, with no pages to
 * take: made as it is. Made writable, the kernel would count all of it
 * against the memory it commits to (a reservation of 8 TiB without
 * access, as MariaDB makes, then fails with ENOMEM), where the program's
 * mapping counted nothing. */
bool rst_vma_made_as_is(const struct rst_ctx *rc, const VmaEntry *e)
{
	return (e->status & VMA_ANON_PRIVATE) && !(e->prot & PROT_WRITE) && !rst_has_pages_in(rc, e->start, e->end);
}

/* The protection a mapping is made with: its own, plus write while its
 * pages go in. */
static int vma_make_prot(const struct rst_ctx *rc, const VmaEntry *e)
{
	if (!vma_gets_pages(e) || (e->prot & PROT_WRITE) || rst_vma_made_as_is(rc, e))
		return e->prot;
	return e->prot | PROT_WRITE;
}

/* System V shared memory: the segment attached again where it was, by the
 * task itself (with its own rights to it), then given its protection. */
static int attach_sysv(struct rst_ctx *rc, const VmaEntry *e)
{
	long ret;
	if (inj_must(&rc->inj, "System V shared memory attach", &ret,
		     INJ(SYS_shmat, e->shmid, e->start, sysv_shm_attach_flags(e))) < 0)
		return -1;
	if ((uint64_t)ret != e->start) {
		pr_err("pid %d: System V shared memory %lu landed at %#lx, not %#lx", rc->pid,
		       (unsigned long)e->shmid, ret, (unsigned long)e->start);
		return -1;
	}
	if (!(e->prot & PROT_READ) &&
	    inj_must(&rc->inj, "mapping protection", NULL, INJ(SYS_mprotect, e->start, e->end - e->start, e->prot)) < 0)
		return -1;
	return 0;
}

/* The mmap flags of the image that restore makes the mapping with; its
 * type (shared, private, droppable) among them. */
#define MAP_FLAGS_KEPT (MAP_TYPE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | \
			MAP_HUGETLB | ((unsigned)MAP_HUGE_MASK << MAP_HUGE_SHIFT))

/* The mapping, added to b: with MAP_FIXED it lands where it was or
 * fails, so the mappings of a process go in one round trip (they run in
 * the image's order); a System V segment is attached on its own, in
 * that order too. */
static int map_one(struct rst_ctx *rc, struct inj_batch *b, size_t i)
{
	const VmaEntry *e = rc->mm->vmas[i];
	int prot = vma_make_prot(rc, e);
	int flags = (e->flags & MAP_FLAGS_KEPT) | MAP_FIXED;
	long fd = -1;

	if (rst_premapped(rc, i))
		return 0;	/* in place, filled (premap.c) */
	if (e->end <= e->start || (e->start | e->end) & (PAGE_SZ - 1) || e->end > TASK_SIZE_47) {
		pr_err("image mm-%d.img: bad mapping %#lx-%#lx", rc->pid, (unsigned long)e->start,
		       (unsigned long)e->end);
		return -1;
	}
	if (e->status & VMA_AREA_SYSVIPC)
		return inj_batch_run(&rc->inj, b) < 0 ? -1 : attach_sysv(rc, e);
	if (e->status & VMA_AREA_AIORING) {
		/* the saved ring as plain memory, until aio.c puts a new one over it */
		flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
	} else if (vma_needs_file(e)) {
		fd = rc->vma_fd[i];
		flags &= ~MAP_ANONYMOUS;
	} else {
		flags |= MAP_ANONYMOUS;
	}
	return inj_batch_add(&rc->inj, b, "mapping",
			     INJ(SYS_mmap, e->start, e->end - e->start, prot, flags, fd, fd >= 0 ? e->pgoff : 0));
}

/* Whether the image lists its mappings by address, none overlapping (a
 * kernel's always does): then the mapping of an address is found by
 * bisection, not by a scan of all of them for each run (with 100,000
 * mappings that was quadratic). */
bool rst_vmas_ordered(struct rst_ctx *rc)
{
	if (!rc->vmas_ordered) {
		rc->vmas_ordered = 1;
		for (size_t i = 0; i < rc->mm->n_vmas; i++)
			if (rc->mm->vmas[i]->end <= rc->mm->vmas[i]->start ||
			    (i && rc->mm->vmas[i]->start < rc->mm->vmas[i - 1]->end))
				rc->vmas_ordered = -1;
	}
	return rc->vmas_ordered > 0;
}

/* The mapping holding a: the first in the image that does (ordered:
 * the only one); -1 if none. */
static int first_holding(struct rst_ctx *rc, uint64_t a, uint64_t end)
{
	if (rst_vmas_ordered(rc)) {
		int i = rst_vma_at(rc->mm, a);
		return i >= 0 && end <= rc->mm->vmas[i]->end ? i : -1;
	}
	for (size_t i = 0; i < rc->mm->n_vmas; i++)
		if (a >= rc->mm->vmas[i]->start && end <= rc->mm->vmas[i]->end)
			return i;
	return -1;
}

/* The last mapping in the image holding a (ordered: the only one), -1
 * if none. */
static int last_holding(struct rst_ctx *rc, uint64_t a)
{
	int hit = -1;
	if (rst_vmas_ordered(rc))
		return rst_vma_at(rc->mm, a);
	for (size_t i = 0; i < rc->mm->n_vmas; i++)
		if (a >= rc->mm->vmas[i]->start && a < rc->mm->vmas[i]->end)
			hit = i;
	return hit;
}

static int bad_run(struct rst_ctx *rc, const PagemapEntry *pe)
{
	pr_err("image pagemap-%d.img: page run %#lx+%lu pages lies outside the mappings", rc->pid,
	       (unsigned long)pe->vaddr, (unsigned long)pagemap_run_pages(pe));
	return -1;
}

/* The end of the run, 0 if it has none (reported). */
static uint64_t run_end(struct rst_ctx *rc, const PagemapEntry *pe)
{
	uint64_t end = pe->vaddr + pagemap_run_pages(pe) * PAGE_SZ;
	if (pe->vaddr & (PAGE_SZ - 1) || pagemap_run_pages(pe) > (1ull << 36) || end <= pe->vaddr) {
		bad_run(rc, pe);
		return 0;
	}
	return end;
}

/* Every pagemap entry is checked against the mappings, so a corrupt one
 * can't write outside them. A run may span adjacent mappings (CRIU's
 * can; a stasis dump's PE_PARENT runs do where two mappings' unchanged
 * pages meet): then it goes mapping by mapping, since a premapped one's
 * part must be left alone (written over, its pages would no longer be
 * shared with the parent process). For the part of the run from a to
 * end (checked by run_end): where it stops in *to, and 0: read it in;
 * 1: saved pages restore does not use (the old vdso's, a premapped
 * mapping's); -1: bad (reported). */
static int run_piece(struct rst_ctx *rc, const PagemapEntry *pe, uint64_t a, uint64_t end, uint64_t *to)
{
	*to = end;
	int i = a == pe->vaddr ? first_holding(rc, a, end) : -1;
	if (i >= 0) {	/* all in one mapping */
		const VmaEntry *e = rc->mm->vmas[i];
		if (rst_premapped(rc, i))
			return 1;	/* its process wrote them in (premap.c) */
		if (vma_gets_pages(e))
			return 0;
		return vma_has_pages(e->status) ? 1 : bad_run(rc, pe);
	}
	/* across mappings: each must take pages */
	i = last_holding(rc, a);
	if (i < 0 || !vma_gets_pages(rc->mm->vmas[i]))
		return bad_run(rc, pe);
	if (rc->mm->vmas[i]->end < end)
		*to = rc->mm->vmas[i]->end;
	return rst_premapped(rc, i) ? 1 : 0;
}

/* Faulting fresh pages in one by one from inside preadv costs more than
 * allocating them in bulk first; small runs are not worth a syscall. */
#define POPULATE_MIN (256u << 10)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int populate(struct rst_ctx *rc, const struct iovec *iov, int n)
{
	for (int i = 0; i < n; i++) {
		long ret;
		if (iov[i].iov_len < POPULATE_MIN)
			continue;
		if (inj_call(&rc->inj, &ret, INJ(SYS_madvise, (long)iov[i].iov_base, iov[i].iov_len,
						 MADV_POPULATE_WRITE)) < 0)
			return -1;
		/* an old kernel without it just faults them in later */
	}
	return 0;
}

static int read_batch(struct rst_ctx *rc, struct iovec *iov, int n, uint64_t off, uint64_t len)
{
	if (populate(rc, iov, n) < 0)
		return -1;
	rc->pages_read += len;
	uint64_t len_all = len;
	while (len) {
		size_t mark = inj_args_mark(&rc->inj);
		uint64_t at;
		long ret;
		int failed = inj_arg(&rc->inj, iov, n * sizeof(*iov), &at) < 0 ||
			     inj_must(&rc->inj, "page contents", &ret,
				      INJ(SYS_preadv, rc->pages_fd, at, n, off)) < 0;
		inj_args_release(&rc->inj, mark);
		if (failed)
			return -1;
		if (ret == 0) {
			pr_err("image %s is truncated (pagemap-%d.img wants more)", rc->pages_name, rc->pid);
			return -1;
		}
		/* short read: drop what arrived and go on */
		off += ret;
		len -= ret;
		while (ret && n) {
			if ((uint64_t)ret >= iov->iov_len) {
				ret -= iov->iov_len;
				iov++;
				n--;
			} else {
				iov->iov_base = (char *)iov->iov_base + ret;
				iov->iov_len -= ret;
				ret = 0;
			}
		}
	}
	progress_bytes(len_all);
	fault_point("pages-read");
	return 0;
}

/* Consecutive runs of the pages file, read with one preadv of up to
 * IOV_BATCH pieces. */
struct page_batch {
	struct iovec iov[IOV_BATCH];
	int n;
	uint64_t off, len;	/* where its bytes are in the pages file */
};

/* Reads what b holds; the next batch starts at next_off. */
static int batch_flush(struct rst_ctx *rc, struct page_batch *b, uint64_t next_off)
{
	int ret = b->n ? read_batch(rc, b->iov, b->n, b->off, b->len) : 0;
	b->n = 0;
	b->len = 0;
	b->off = next_off;
	return ret;
}

/* A piece that is skipped, or in a parent dump, ends the batch, since a
 * batch is contiguous in the pages file. */
static int fill_pages(struct rst_ctx *rc)
{
	struct page_batch b = { .n = 0 };
	uint64_t off = 0;	/* of the current piece in the pages file */

	for (int i = 0; i < rc->nr_pagemap; i++) {
		const PagemapEntry *pe = rc->pagemap[i];
		bool in_parent = (pe->has_flags && (pe->flags & PE_PARENT)) || (pe->has_in_parent && pe->in_parent);
		if (!in_parent && pe->has_flags && !(pe->flags & PE_PRESENT))
			continue;
		bool lazy = rst_lazy_run(rc, pe);	/* the lazy-pages daemon's (lazy.c) */
		uint64_t end = run_end(rc, pe);
		if (!end)
			return -1;
		for (uint64_t a = pe->vaddr, to; a < end; a = to) {
			int use = run_piece(rc, pe, a, end, &to);
			if (use < 0)
				return -1;
			if (use == 0 && lazy)
				use = 1;
			uint64_t len = to - a;
			if (in_parent) {
				/* not in our pages file: the batch so far is read first */
				struct iovec whole = { (void *)a, len };
				if (batch_flush(rc, &b, off) < 0 ||
				    (use == 0 && (populate(rc, &whole, 1) < 0 || rst_parent_pages(rc, a, len) < 0)))
					return -1;
				continue;
			}
			if ((use == 1 || b.n == IOV_BATCH) && batch_flush(rc, &b, use == 1 ? off + len : off) < 0)
				return -1;
			off += len;
			if (use == 0) {
				b.iov[b.n++] = (struct iovec){ (void *)a, len };
				b.len += len;
			}
		}
	}
	return batch_flush(rc, &b, off);
}

/* Its protection and advice, once its pages are in: each mapping's own. */
static int finish_one(struct rst_ctx *rc, struct inj_batch *b, size_t i)
{
	const VmaEntry *e = rc->mm->vmas[i];
	uint64_t len = e->end - e->start;
	/* made writable to take its pages; a premapped one may be a parent's
	 * (premap.c), made as the parent's pages asked: always set */
	bool made_other = rst_premapped(rc, i) ? e->prot != (PROT_READ | PROT_WRITE) : vma_make_prot(rc, e) != (int)e->prot;

	if (made_other &&
	    inj_batch_add(&rc->inj, b, "mapping protection", INJ(SYS_mprotect, e->start, len, e->prot)) < 0)
		return -1;
	for (int adv = 0; e->has_madv && adv < 64; adv++) {
		if (!(e->madv & (1ull << adv)))
			continue;
		if (inj_batch_add(&rc->inj, b, "memory advice", INJ(SYS_madvise, e->start, len, adv)) < 0)
			return -1;
	}
	return 0;
}

/* A lazy restore writes the pages that are not lazy (a parent dump's)
 * into mappings whose other pages the daemon fills on first touch: a
 * huge page made by one of those writes would cover lazy pages next to
 * it with zeros, which no fault ever asks for. So no huge page until the
 * mappings are registered; rst_mm_fields puts the process's own setting
 * back. */
static int thp_off_for_lazy(struct rst_ctx *rc)
{
	if (!rc->o->lazy_pages || rc->thp_off_lazy)
		return 0;
	if (inj_must(&rc->inj, "THP off while lazy memory is made (PR_SET_THP_DISABLE)", NULL,
		     INJ(SYS_prctl, PR_SET_THP_DISABLE, 1, 0, 0, 0)) < 0)
		return -1;
	rc->thp_off_lazy = true;
	return 0;
}

int rst_mem_rebuild(struct rst_ctx *rc)
{
	if (thp_off_for_lazy(rc) < 0 || clear_address_space(rc) < 0 || map_scratch(rc) < 0)
		return -1;
	struct inj_batch b = { 0 };
	for (size_t i = 0; i < rc->mm->n_vmas; i++)
		if (!vma_skipped(rc->mm->vmas[i]) && map_one(rc, &b, i) < 0)
			return -1;
	if (inj_batch_run(&rc->inj, &b) < 0 || fill_pages(rc) < 0)
		return -1;
	for (size_t i = 0; i < rc->mm->n_vmas; i++)
		if (!vma_skipped(rc->mm->vmas[i]) && finish_one(rc, &b, i) < 0)
			return -1;
	if (inj_batch_run(&rc->inj, &b) < 0 ||
	    guards_install(&rc->inj, rc->pid, rc->mm->vmas + rc->mm->n_vmas, rc->nr_guards) < 0)
		return -1;
	return rst_aio_rings(rc);
}

/* Kernel's struct prctl_mm_map. */
struct mm_map {
	uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv;
	uint32_t auxv_size;
	uint32_t exe_fd;
};

/* The exe link is lent to a non-root client's task (unpriv.c). */
static int set_mm_map(struct rst_ctx *rc, const struct mm_map *m)
{
	struct inj_call c = INJ(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, 0, sizeof(*m));
	if (rst_client_lend_inject(rc, 0, true) < 0 ||
	    inj_must_in(&rc->inj, "mm fields (PR_SET_MM_MAP)", c, 2, m, sizeof(*m)) < 0)
		return -1;
	return rst_client_lend_inject(rc, 0, false);
}

int rst_mm_fields(struct rst_ctx *rc)
{
	const MmEntry *mm = rc->mm;
	struct mm_map m = {
		.start_code = mm->mm_start_code, .end_code = mm->mm_end_code,
		.start_data = mm->mm_start_data, .end_data = mm->mm_end_data,
		.start_brk = mm->mm_start_brk, .brk = mm->mm_brk, .start_stack = mm->mm_start_stack,
		.arg_start = mm->mm_arg_start, .arg_end = mm->mm_arg_end,
		.env_start = mm->mm_env_start, .env_end = mm->mm_env_end,
		.auxv_size = mm->n_mm_saved_auxv * sizeof(uint64_t),
		.exe_fd = rc->exe_fd,
	};
	if (mm->n_mm_saved_auxv > 128) {
		pr_err("image mm-%d.img: auxv of %zu words is too long", rc->pid, mm->n_mm_saved_auxv);
		return -1;
	}
	size_t mark = inj_args_mark(&rc->inj);
	int failed = inj_arg(&rc->inj, mm->mm_saved_auxv, m.auxv_size, &m.auxv) < 0 ||
		     set_mm_map(rc, &m) < 0;
	inj_args_release(&rc->inj, mark);
	if (failed)
		return -1;
	/* the new task is stasis's fork, whose huge pages are on (or were
	 * turned off for a lazy restore: thp_off_for_lazy) */
	bool thp_off = mm->has_thp_disabled && mm->thp_disabled;
	if ((thp_off || rc->thp_off_lazy) &&
	    inj_must(&rc->inj, "THP setting (PR_SET_THP_DISABLE)", NULL,
		     INJ(SYS_prctl, PR_SET_THP_DISABLE, thp_off, 0, 0, 0)) < 0)
		return -1;
	/* a non-root client's task gets it last (rst_client_dumpable) */
	if (mm->has_dumpable && !rc->o->unprivileged &&
	    inj_must(&rc->inj, "dumpable flag", NULL, INJ(SYS_prctl, PR_SET_DUMPABLE, mm->dumpable)) < 0)
		return -1;
	return 0;
}
