/* Runs of pages (pages.h): what mem.c finds and track.c and softdirty.c
 * sort into saved here or left to the parent dump. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump/pages.h"
#include "image/vma.h"
#include "util/log.h"
#include "util/grow.h"

int page_runs_add(struct page_runs *pr, uint64_t start, uint64_t end, bool readable)
{
	if (pr->nr && pr->r[pr->nr - 1].end == start && pr->r[pr->nr - 1].readable == readable) {
		pr->r[pr->nr - 1].end = end;
	} else {
		if (grow_array(pr->r, pr->cap, pr->nr + 1, 256) < 0) {
			pr_err("out of memory listing pages");
			return -1;
		}
		pr->r[pr->nr++] = (struct page_run){ start, end, readable };
	}
	pr->bytes += end - start;
	return 0;
}

uint64_t pages_read_or_zero(int memfd, uint64_t addr, size_t len, char *buf)
{
	uint64_t zeroed = 0;
	for (size_t off = 0; off < len; off += PAGE_SZ)
		if (memfd < 0 || pread(memfd, buf + off, PAGE_SZ, addr + off) != PAGE_SZ) {
			memset(buf + off, 0, PAGE_SZ);
			zeroed++;
		}
	return zeroed;
}
