/* util/idmap.h: linear probing; entries are never removed. */
#include <stdlib.h>

#include "util/idmap.h"

static unsigned slot_of(uint64_t key, int cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;	/* a 64-bit mix (MurmurHash3's finaliser) */
	key ^= key >> 33;
	return (unsigned)key & (unsigned)(cap - 1);
}

static void put(struct idmap_slot *slots, int cap, uint64_t key, int idx)
{
	unsigned i = slot_of(key, cap);
	while (slots[i].idx >= 0)
		i = (i + 1) & (cap - 1);
	slots[i] = (struct idmap_slot){ key, idx };
}

int idmap_add(struct idmap *m, uint64_t key, int idx)
{
	if (2 * (m->nr + 1) > m->cap) {
		int cap = m->cap ? m->cap * 2 : 64;
		struct idmap_slot *n = malloc(cap * sizeof(*n));
		if (!n)
			return -1;
		for (int i = 0; i < cap; i++)
			n[i].idx = -1;
		for (int i = 0; i < m->cap; i++)
			if (m->slots[i].idx >= 0)
				put(n, cap, m->slots[i].key, m->slots[i].idx);
		free(m->slots);
		m->slots = n;
		m->cap = cap;
	}
	put(m->slots, m->cap, key, idx);
	m->nr++;
	return 0;
}

int idmap_next(const struct idmap *m, uint64_t key, unsigned *pos)
{
	if (!m->cap)
		return -1;
	/* *pos counts the slots probed so far from key's own */
	for (unsigned i = (slot_of(key, m->cap) + *pos) & (m->cap - 1); m->slots[i].idx >= 0;
	     i = (i + 1) & (m->cap - 1)) {
		(*pos)++;
		if (m->slots[i].key == key)
			return m->slots[i].idx;
	}
	return -1;
}

void idmap_free(struct idmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->nr = m->cap = 0;
}
