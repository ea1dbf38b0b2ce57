/* Filling a new process's fresh private memory from its pages image:
 * without clearing the pages first where it can, on two cores when there
 * is much of it (fill.c). Used in the new process itself (premap.c). */
#ifndef STASIS_RESTORE_FILL_H
#define STASIS_RESTORE_FILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* len bytes at dst (fresh, never touched) from offset off of pages
 * image src (fill_run's), inside the mapping [vstart, vend); no_clear:
 * anonymous private memory, which may be filled by UFFDIO_COPY (the
 * whole mapping is registered with userfaultfd meanwhile: nothing else
 * may touch it). The jobs of one mapping are added one after the other. */
struct fill_job {
	uint64_t vstart, vend;
	uint64_t dst, len, off;
	int src;
	bool no_clear;
};

/* A pages image the jobs read, named so in messages. */
struct fill_src {
	int fd;
	const char *name;
};

struct fill_list {
	struct fill_job *j;
	size_t nr, cap;
	uint64_t bytes;
};

int fill_add(struct fill_list *fl, const struct fill_job *j);
void fill_free(struct fill_list *fl);
/* THP "always": a plain fault would make huge pages, UFFDIO_COPY can't. */
bool fill_thp_always(void);
/* Fills every job of pid's from its source of src[0..nsrc-1]; reported
 * errors give -1. */
int fill_run(struct fill_list *fl, const struct fill_src *src, int nsrc, pid_t pid);

#endif
