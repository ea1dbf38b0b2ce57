#ifndef STASIS_UTIL_GROW_H
#define STASIS_UTIL_GROW_H

/* Arrays built one element at a time, their capacity doubled when full:
 * the one place that doubling, and its overflow checks, are written. */

#include <limits.h>
#include <stddef.h>

/* *v made room for need elements of elem bytes: *cap doubled (from first
 * when 0) until it holds need, at most max. 0, or -1 with errno ENOMEM
 * and *v and *cap as they were. Use grow_array. */
int grow_mem(void **v, size_t *cap, size_t need, size_t elem, size_t first, size_t max);

/* The largest value the capacity's variable holds; another type does not
 * compile. */
#define GROW_CAP_MAX(cap) _Generic((cap),		\
	int: (size_t)INT_MAX,				\
	unsigned: (size_t)UINT_MAX,			\
	long: (size_t)LONG_MAX,				\
	unsigned long: (size_t)ULONG_MAX)

/* Room in array v (a typed pointer) of capacity cap (an int, unsigned,
 * long or size_t variable) for need elements, the first allocation of
 * first elements: 0, or -1 (errno ENOMEM) with v and cap as they were.
 * A caller that has room pays one comparison. */
#define grow_array(v, cap, need, first) __extension__ ({		\
	size_t grow_need_ = (need);					\
	int grow_ret_ = 0;						\
	if (grow_need_ > (size_t)(cap)) {				\
		void *grow_v_ = (v);					\
		size_t grow_cap_ = (cap);				\
		grow_ret_ = grow_mem(&grow_v_, &grow_cap_, grow_need_,	\
				     sizeof(*(v)), (first), GROW_CAP_MAX(cap)); \
		if (!grow_ret_) {					\
			(v) = grow_v_;					\
			(cap) = grow_cap_;				\
		}							\
	}								\
	grow_ret_;							\
})

#endif
