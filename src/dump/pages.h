/* Runs of pages to save, shared by mem.c (finding and copying them) and
 * track.c (which of them the parent dump already holds). */
#ifndef STASIS_DUMP_PAGES_H
#define STASIS_DUMP_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct page_run {
	uint64_t start, end;
	bool readable;		/* process_vm_readv can read it */
};

struct page_runs {
	struct page_run *r;
	size_t nr, cap;
	uint64_t bytes;
};

int page_runs_add(struct page_runs *pr, uint64_t start, uint64_t end, bool readable);

/* A pre-dump's copy, beside the running tree: the len bytes at addr read
 * page by page through memfd (/proc/PID/mem; -1: the process is gone),
 * each page that can't be read (unmapped meanwhile) zeros in buf.
 * Returns how many pages were zeroed (mem.c says why that is sound). */
uint64_t pages_read_or_zero(int memfd, uint64_t addr, size_t len, char *buf);

#endif
