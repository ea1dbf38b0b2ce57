/* files/desc_index.h */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "files/desc_index.h"
#include "util/kcmp_order.h"
#include "util/grow.h"

static uint64_t ino_key(dev_t dev, ino_t ino)
{
	return (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;
}

static struct desc_group *group_of(const struct desc_index *x, dev_t dev, ino_t ino)
{
	unsigned pos = 0;
	for (int i; (i = idmap_next(&x->by_ino, ino_key(dev, ino), &pos)) >= 0;)
		if (x->g[i].dev == dev && x->g[i].ino == ino)
			return &x->g[i];
	return NULL;
}

static void rep_at(const void *arg, int i, pid_t *pid, unsigned long *idx)
{
	const struct desc_group *g = arg;
	*pid = g->r[i].pid;
	*idx = (unsigned long)g->r[i].fd;
}

/* Where fd of pid is, or goes, in g's order: *same if a rep is it. A
 * kcmp that can't order the two (a rep's process or fd gone) gives up
 * the order: a scan of all for an equal one, and the end. */
static int search(const struct desc_group *g, pid_t pid, int fd, bool *same)
{
	int at = kcmp_bisect(KCMP_FILE, pid, fd, rep_at, g, g->nr, same);
	if (at >= 0)
		return at;
	for (int i = 0; i < g->nr; i++)
		if (syscall(SYS_kcmp, pid, g->r[i].pid, KCMP_FILE, fd, g->r[i].fd) == 0) {
			*same = true;
			return i;
		}
	return g->nr;
}

uint32_t desc_find(const struct desc_index *x, pid_t pid, int fd, dev_t dev, ino_t ino)
{
	const struct desc_group *g = group_of(x, dev, ino);
	bool same;
	if (!g)
		return 0;
	int at = search(g, pid, fd, &same);
	return same ? g->r[at].id : 0;
}

static struct desc_group *group_add(struct desc_index *x, dev_t dev, ino_t ino)
{
	if (grow_array(x->g, x->cap, x->nr + 1, 64) < 0)
		return NULL;
	if (idmap_add(&x->by_ino, ino_key(dev, ino), x->nr) < 0)
		return NULL;
	x->g[x->nr] = (struct desc_group){ .dev = dev, .ino = ino };
	return &x->g[x->nr++];
}

int desc_add(struct desc_index *x, pid_t pid, int fd, dev_t dev, ino_t ino, uint32_t id)
{
	struct desc_group *g = group_of(x, dev, ino);
	bool same;
	if (!g && !(g = group_add(x, dev, ino)))
		return -1;
	int at = search(g, pid, fd, &same);
	if (same)
		return 0;
	if (grow_array(g->r, g->cap, g->nr + 1, 4) < 0)
		return -1;
	memmove(&g->r[at + 1], &g->r[at], (g->nr - at) * sizeof(*g->r));
	g->r[at] = (struct desc_rep){ pid, fd, id };
	g->nr++;
	return 0;
}

void desc_free(struct desc_index *x)
{
	for (int i = 0; i < x->nr; i++)
		free(x->g[i].r);
	free(x->g);
	idmap_free(&x->by_ino);
	memset(x, 0, sizeof(*x));
}
