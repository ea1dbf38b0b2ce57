/* A map from 64-bit keys to indexes of an array (an open-addressing hash
 * table): the tables of thousands of things that are looked up once
 * each (a dump's TCP connections) without a scan of all for each. A key
 * may map to several indexes (a hash of something longer: the caller
 * checks each). */
#ifndef STASIS_UTIL_IDMAP_H
#define STASIS_UTIL_IDMAP_H

#include <stdint.h>

struct idmap {
	struct idmap_slot {
		uint64_t key;
		int idx;	/* -1: free */
	} *slots;
	int nr, cap;	/* cap: a power of two, at least twice nr */
};

/* idx under key; 0, or -1 if out of memory (the map unchanged). */
int idmap_add(struct idmap *m, uint64_t key, int idx);
/* The indexes under key one by one: *pos 0 first, then as left by the
 * call before; -1 when there is no more. */
int idmap_next(const struct idmap *m, uint64_t key, unsigned *pos);
void idmap_free(struct idmap *m);

#endif
