/* The pages of one process still to come: address ranges, sorted and
 * disjoint, each with where its bytes are in the images (the process's
 * address at dump time), kept up to date as the process moves and drops
 * memory (mremap, munmap, madvise) during the lazy phase. */
#ifndef STASIS_LAZY_RANGES_H
#define STASIS_LAZY_RANGES_H

#include <stddef.h>
#include <stdint.h>

struct lrange {
	uint64_t start, end;	/* now */
	uint64_t img;		/* start's address in the images */
};

struct lranges {
	struct lrange *r;
	size_t nr, cap;
	uint64_t bytes;		/* in all of them */
};

/* Appends [start, end) (after every range there); 0 or -1. */
int lr_add(struct lranges *l, uint64_t start, uint64_t end, uint64_t img);
/* The range holding addr, or NULL. */
struct lrange *lr_find(struct lranges *l, uint64_t addr);
/* [start, end) is no longer to come (copied, unmapped, dropped). */
int lr_drop(struct lranges *l, uint64_t start, uint64_t end);
/* What was at [from, from + len) is now at to. */
int lr_remap(struct lranges *l, uint64_t from, uint64_t to, uint64_t len);
int lr_copy(struct lranges *dst, const struct lranges *src);
void lr_free(struct lranges *l);

#endif
