#include <stdlib.h>
#include <string.h>

#include "util/ranges.h"

int ranges_add(struct addr_ranges *a, uint64_t start, uint64_t end)
{
	if (a->nr && a->r[a->nr - 1][1] == start) {
		a->r[a->nr - 1][1] = end;
		return 0;
	}
	uint64_t (*n)[2] = realloc(a->r, (a->nr + 1) * sizeof(*n));
	if (!n)
		return -1;
	a->r = n;
	a->r[a->nr][0] = start;
	a->r[a->nr++][1] = end;
	return 0;
}

bool ranges_in_order(const struct addr_ranges *a, uint64_t start)
{
	return !a->nr || start >= a->r[a->nr - 1][1];
}

bool ranges_cover(const struct addr_ranges *a, uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = a->nr;
	while (lo < hi) {	/* the last range starting at or before start */
		size_t mid = (lo + hi) / 2;
		if (a->r[mid][0] <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && a->r[lo - 1][1] >= end;
}

void ranges_free(struct addr_ranges *a)
{
	free(a->r);
	a->r = NULL;
	a->nr = 0;
}

ptrdiff_t runs_bsearch(const void *runs, size_t nr, size_t size, uint64_t addr)
{
	size_t lo = 0, hi = nr;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint64_t se[2];
		memcpy(se, (const char *)runs + mid * size, sizeof(se));
		if (addr < se[0])
			hi = mid;
		else if (addr >= se[1])
			lo = mid + 1;
		else
			return (ptrdiff_t)mid;
	}
	return -1;
}
