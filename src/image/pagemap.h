/* Pagemap entries (pagemap-PID.img, pagemap-shmem-*.img): one run of
 * pages each. */
#ifndef STASIS_PAGEMAP_H
#define STASIS_PAGEMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "image/img.h"
#include "image/vma.h"
#include "pagemap.pb-c.h"

/* A run's page count: newer CRIU puts it in nr_pages_64 (nr_pages 0). */
static inline uint64_t pagemap_run_pages(const PagemapEntry *pe)
{
	return pe->has_nr_pages_64 ? pe->nr_pages_64 : pe->nr_pages;
}

/* A run left to the parent dump (PE_PARENT, or older CRIU's in_parent). */
static inline bool pagemap_run_in_parent(const PagemapEntry *pe)
{
	return (pe->has_flags && (pe->flags & PE_PARENT)) || (pe->has_in_parent && pe->in_parent);
}

/* A run whose bytes are in this dump's pages image, which holds those
 * of every such run in the order of the entries. */
static inline bool pagemap_run_saved(const PagemapEntry *pe)
{
	return !pagemap_run_in_parent(pe) && (!pe->has_flags || (pe->flags & PE_PRESENT));
}

/* Writes a run with both counts, for old and new readers; flags PE_*. */
int pagemap_write_run(struct img *img, uint64_t vaddr, uint64_t pages, uint32_t flags);

#endif
