#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/grow.h"

int grow_mem(void **v, size_t *cap, size_t need, size_t elem, size_t first, size_t max)
{
	if (elem && max > SIZE_MAX / elem)
		max = SIZE_MAX / elem;	/* n * elem below must not wrap */
	if (need > max) {
		errno = ENOMEM;
		return -1;
	}
	size_t n = *cap;
	while (n < need)
		n = !n ? (first ? first : 1) : n > max / 2 ? max : 2 * n;
	if (n > max)
		n = max;	/* first was above it */
	void *p = realloc(*v, n * elem);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	*v = p;
	*cap = n;
	return 0;
}
