/* What each process of the tree keeps of the pool (pool_plan.c, tree.c).
 *
 * A process inherits the slots its ancestors opened for their whole
 * subtrees, and opens its own for its children. Kept until the tree is
 * rebuilt, every process would hold the shared files of every branch
 * above it (copied again at each fork, closed at the end, and held by
 * processes that have no business with them). Instead each process
 * closes, as soon as it can, the slots that no process still to come in
 * its table needs: at its start, those its subtree doesn't use; once its
 * children with tables of their own are forked (they have their copy),
 * those only they used; once its own fds are installed from the pool,
 * the rest, but for what children forked later into its own table
 * (CLONE_FILES, and their subtrees) will install or hand down.
 *
 * Slots are numbered so that its ancestors' and its own lie below its
 * pool_top and its descendants' from there up: the slots open in its
 * table are those below pool_top. */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "restore/rst.h"
#include "util/log.h"

bool rst_in_subtree(const struct rst_tree *tr, int a, int j)
{
	for (; j >= 0; j = tr->t[j].parent)
		if (j == a)
			return true;
	return false;
}

/* j is under a child of idx forked later into idx's own table. */
static bool under_table_child(const struct rst_tree *tr, int idx, int j)
{
	while (j >= 0 && tr->t[j].parent != idx)
		j = tr->t[j].parent;
	return j >= 0 && tr->t[j].shares_fdt;
}

/* Process j will still want the slots of idx's table at stage st. */
static bool pending(const struct rst_tree *tr, int idx, int j, enum pool_stage st)
{
	if (tr->t[j].zombie)
		return false;	/* no fds */
	switch (st) {
	case POOL_START:
		return rst_in_subtree(tr, idx, j);
	case POOL_FORKED:
		return j == idx || under_table_child(tr, idx, j);
	default:
		return under_table_child(tr, idx, j);
	}
}

/* Marks in need (pool_top bytes) the slots of idx's table wanted at st. */
static void mark_needed(const struct rst_tree *tr, int idx, enum pool_stage st, char *need)
{
	const struct rst_files *rf = &tr->files;
	int top = tr->t[idx].pool_top;
	bool any = false;
	for (int j = 0; j < tr->nr; j++) {
		if (!pending(tr, idx, j, st))
			continue;
		any = true;
		for (int i = 0; i < tr->t[j].nr_fdinfo; i++) {
			int f = rst_fd_file(&tr->t[j], i);
			int s = f < 0 ? -1 : rf->slot[f];
			if (s >= 0 && s < top)	/* from top up: a descendant's to open */
				need[s] = 1;
		}
	}
	/* files in flight: the root fills the queues before it forks, the
	 * processes holding their sockets want them in their after_install */
	for (int f = 0; (st != POOL_INSTALLED || any) && f < rf->nr; f++)
		if (tr->pool_idle[f] && rf->slot[f] >= 0 && rf->slot[f] < top)
			need[rf->slot[f]] = 1;
}

int rst_pool_drop(const struct rst_tree *tr, int idx, enum pool_stage st)
{
	int top = tr->t[idx].pool_top, base = tr->pool_base;
	if (top <= 0)
		return 0;
	char *need = calloc(top, 1);
	if (!need) {
		pr_err("pid %d: out of memory sorting out its pool", tr->t[idx].pid);
		return -1;
	}
	mark_needed(tr, idx, st, need);
	/* in runs: one call for a pool none of it needs */
	for (int s = 0; s < top;) {
		if (need[s]) {
			s++;
			continue;
		}
		int e = s;
		while (e + 1 < top && !need[e + 1])
			e++;
		if (syscall(SYS_close_range, base + s, base + e, 0) < 0) {
			pr_perror("pid %d: can't close pool fds %d-%d", tr->t[idx].pid, base + s, base + e);
			free(need);
			return -1;
		}
		s = e + 1;
	}
	free(need);
	return 0;
}
