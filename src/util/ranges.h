#ifndef STASIS_UTIL_RANGES_H
#define STASIS_UTIL_RANGES_H

/* Address ranges added in ascending order, neighbours merged: what a
 * parent dump's pagemap holds, asked "is [start, end) all in it?" by the
 * dump's trackers (dump/track*.c) and the page server (pagexfer/). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addr_ranges {
	uint64_t (*r)[2];	/* [start, end), sorted, not overlapping */
	size_t nr;
};

/* Adds [start, end), which must not start below the last range's end
 * (ranges_in_order says). 0, or -1 out of memory. */
int ranges_add(struct addr_ranges *a, uint64_t start, uint64_t end);
/* May [start, ...) be added after what is there? */
bool ranges_in_order(const struct addr_ranges *a, uint64_t start);
/* Is [start, end) inside one range? */
bool ranges_cover(const struct addr_ranges *a, uint64_t start, uint64_t end);
void ranges_free(struct addr_ranges *a);

/* Runs of pages kept in an array sorted by address, not overlapping,
 * each element beginning with its uint64_t start and end ([start, end)):
 * the index of the one holding addr, or -1. runs_index checks that
 * layout of arr's elements when it is compiled. */
ptrdiff_t runs_bsearch(const void *runs, size_t nr, size_t size, uint64_t addr);
#define runs_index(arr, nr, addr)                                                                   \
	((void)sizeof(struct {                                                                      \
		_Static_assert(offsetof(__typeof__(*(arr)), start) == 0 &&                          \
				       offsetof(__typeof__(*(arr)), end) == sizeof(uint64_t),       \
			       "a run begins with its start and end");                              \
		int unused;                                                                         \
	}),                                                                                         \
	 runs_bsearch((arr), (nr), sizeof(*(arr)), (addr)))

#endif
