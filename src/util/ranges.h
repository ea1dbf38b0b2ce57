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

#endif
