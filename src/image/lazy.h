/* Which saved pages a lazy restore leaves for later (CRIU's rule, so that
 * a CRIU lazy-pages daemon and a stasis restore, or the other way round,
 * agree on them): the runs a dump marks PE_LAZY, in private anonymous
 * memory that userfaultfd can fill: not locked, not huge pages, not the
 * kernel's areas, not an aio ring (replaced by a new ring at restore). */
#ifndef STASIS_IMAGE_LAZY_H
#define STASIS_IMAGE_LAZY_H

#include <stdbool.h>
#include <sys/mman.h>

#include "image/pagemap.h"
#include "image/vma.h"
#include "mm.pb-c.h"

static inline bool vma_can_be_lazy(const VmaEntry *e)
{
	return (e->status & VMA_AREA_REGULAR) && (e->status & VMA_ANON_PRIVATE) &&
	       (e->flags & MAP_ANONYMOUS) && (e->flags & MAP_TYPE) == MAP_PRIVATE &&
	       !(e->flags & (MAP_LOCKED | MAP_HUGETLB)) &&
	       !(e->status & (VMA_AREA_VDSO | VMA_AREA_VVAR | VMA_AREA_VSYSCALL | VMA_AREA_AIORING |
			      VMA_AREA_SYSVIPC | VMA_AREA_SOCKET | VMA_AREA_GUARD));
}

static inline bool pagemap_run_lazy(const PagemapEntry *pe)
{
	return pe->has_flags && (pe->flags & PE_LAZY) && !(pe->flags & PE_PARENT);
}

static inline bool vma_holds(const VmaEntry *e, uint64_t start, uint64_t end)
{
	return start >= e->start && end <= e->end;
}

/* The mapping of mm that holds all of [start, end), or NULL. Called once
 * per page run, so a linear scan made a dump of 100,000 mappings
 * quadratic: images list mappings by address (guards last, as CRIU has
 * them), so a binary search finds it; an image out of order, or the
 * guards' tail, falls back to the scan, which is still right. */
static inline const VmaEntry *vma_holding(const MmEntry *mm, uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = mm->n_vmas;
	while (hi - lo > 1) {	/* the last mapping starting at or below start */
		size_t mid = lo + (hi - lo) / 2;
		if (mm->vmas[mid]->start <= start)
			lo = mid;
		else
			hi = mid;
	}
	if (mm->n_vmas && vma_holds(mm->vmas[lo], start, end))
		return mm->vmas[lo];
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (vma_holds(mm->vmas[i], start, end))
			return mm->vmas[i];
	return NULL;
}

/* A run a lazy restore leaves for later: marked lazy, and every byte of
 * it in memory that can be lazy (else it is read in at restore). */
static inline bool run_is_lazy(const MmEntry *mm, const PagemapEntry *pe)
{
	if (!pagemap_run_lazy(pe))
		return false;
	uint64_t at = pe->vaddr, end = pe->vaddr + pagemap_run_pages(pe) * PAGE_SZ;
	while (at < end) {
		const VmaEntry *e = vma_holding(mm, at, at + PAGE_SZ);
		if (!e || !vma_can_be_lazy(e))
			return false;
		at = e->end;
	}
	return end > pe->vaddr;
}

#endif
