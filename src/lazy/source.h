/* Where the lazy-pages daemon gets a process's pages from: the local
 * images (source_local.c) or the dump side's page server (PS_IOV_GET,
 * source_ps.c). Addresses are the process's at dump time. */
#ifndef STASIS_LAZY_SOURCE_H
#define STASIS_LAZY_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lazy/ranges.h"

struct lazy_src {
	/* len bytes of pages at img_addr: where they are (in a mapping of
	 * the source's, or read into buf, of len bytes); NULL: reported */
	const void *(*get)(struct lazy_src *s, uint64_t img_addr, void *buf, size_t len);
	void (*free)(struct lazy_src *s);
	pid_t pid;
	int refs;		/* processes forked in the lazy phase share it */
};

/* The ranges of pid's lazy pages, from mm-PID.img and pagemap-PID.img in
 * dirfd: each lazy run (image/lazy.h), split where mappings end (a copy
 * stays in one mapping). 0 or -1 (reported). */
int lazy_plan(int dirfd, pid_t pid, struct lranges *out);

/* From pages-ID.img of the images in dirfd. NULL: reported. */
struct lazy_src *lazy_src_local(int dirfd, pid_t pid);

/* From the page server on sk (a dump --lazy-pages), which the caller
 * keeps open and closes. NULL: reported. */
struct lazy_src *lazy_src_remote(int sk, pid_t pid);

static inline void lazy_src_put(struct lazy_src *s)
{
	if (s && --s->refs == 0)
		s->free(s);
}

#endif
