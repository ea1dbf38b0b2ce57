#include <stdlib.h>
#include <string.h>

#include "lazy/ranges.h"
#include "util/ranges.h"
#include "util/grow.h"

static int grow(struct lranges *l, size_t need)
{
	return grow_array(l->r, l->cap, need, 16);
}

int lr_add(struct lranges *l, uint64_t start, uint64_t end, uint64_t img)
{
	if (end <= start)
		return 0;
	if (grow(l, l->nr + 1) < 0)
		return -1;
	l->r[l->nr++] = (struct lrange){ start, end, img };
	l->bytes += end - start;
	return 0;
}

struct lrange *lr_find(struct lranges *l, uint64_t addr)
{
	ptrdiff_t i = runs_index(l->r, l->nr, addr);
	return i < 0 ? NULL : &l->r[i];
}

/* The part of each range outside [start, end) is kept: at most one range
 * becomes two. */
int lr_drop(struct lranges *l, uint64_t start, uint64_t end)
{
	if (end <= start)
		return 0;
	if (grow(l, l->nr + 1) < 0)
		return -1;
	for (size_t i = 0; i < l->nr; i++) {
		struct lrange *r = &l->r[i];
		if (r->end <= start || r->start >= end)
			continue;
		uint64_t cut_s = r->start > start ? r->start : start;
		uint64_t cut_e = r->end < end ? r->end : end;
		l->bytes -= cut_e - cut_s;
		if (cut_s > r->start && cut_e < r->end) {	/* a hole in the middle */
			memmove(r + 2, r + 1, (l->nr - i - 1) * sizeof(*r));
			l->nr++;
			r[1] = (struct lrange){ cut_e, r->end, r->img + (cut_e - r->start) };
			r->end = cut_s;
			return 0;
		}
		if (cut_s > r->start) {
			r->end = cut_s;
		} else if (cut_e < r->end) {
			r->img += cut_e - r->start;
			r->start = cut_e;
		} else {
			memmove(r, r + 1, (l->nr - i - 1) * sizeof(*r));
			l->nr--;
			i--;
		}
	}
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct lrange *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

int lr_remap(struct lranges *l, uint64_t from, uint64_t to, uint64_t len)
{
	struct lranges moved = { 0 };
	for (size_t i = 0; i < l->nr; i++) {
		const struct lrange *r = &l->r[i];
		uint64_t s = r->start > from ? r->start : from;
		uint64_t e = r->end < from + len ? r->end : from + len;
		if (s < e && lr_add(&moved, s - from + to, e - from + to, r->img + (s - r->start)) < 0)
			goto fail;
	}
	if (lr_drop(l, from, from + len) < 0 || lr_drop(l, to, to + len) < 0 || grow(l, l->nr + moved.nr) < 0)
		goto fail;
	memcpy(l->r + l->nr, moved.r, moved.nr * sizeof(*moved.r));
	l->nr += moved.nr;
	l->bytes += moved.bytes;
	qsort(l->r, l->nr, sizeof(*l->r), by_start);
	lr_free(&moved);
	return 0;
fail:
	lr_free(&moved);
	return -1;
}

int lr_copy(struct lranges *dst, const struct lranges *src)
{
	memset(dst, 0, sizeof(*dst));
	if (grow(dst, src->nr) < 0)
		return -1;
	memcpy(dst->r, src->r, src->nr * sizeof(*src->r));
	dst->nr = src->nr;
	dst->bytes = src->bytes;
	return 0;
}

void lr_free(struct lranges *l)
{
	free(l->r);
	memset(l, 0, sizeof(*l));
}
