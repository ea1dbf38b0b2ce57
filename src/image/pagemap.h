/* Pagemap entries (pagemap-PID.img, pagemap-shmem-*.img): one run of
 * pages each. */
#ifndef STASIS_PAGEMAP_H
#define STASIS_PAGEMAP_H

#include <stdint.h>

#include "image/img.h"
#include "pagemap.pb-c.h"

/* A run's page count: newer CRIU puts it in nr_pages_64 (nr_pages 0). */
static inline uint64_t pagemap_run_pages(const PagemapEntry *pe)
{
	return pe->has_nr_pages_64 ? pe->nr_pages_64 : pe->nr_pages;
}

/* Writes a run with both counts, for old and new readers; flags PE_*. */
int pagemap_write_run(struct img *img, uint64_t vaddr, uint64_t pages, uint32_t flags);

#endif
