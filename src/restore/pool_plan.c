/* The pool's plan: which process opens each file of the tree, and where.
 *
 * A file (an open file description) that only one fd table uses needs
 * no pool: its process opens it once its children are forked, straight
 * to its fd (restore/tree.c's open_own). So 10,000 fds of one process
 * cost 10,000 fds, not twice that, and the files of ten processes don't
 * add up anywhere.
 *
 * A file several fd tables share goes to the pool: made once, by the
 * lowest common ancestor of the processes using it, before it forks them
 * (they inherit it: one description, one offset, as forks and dups left
 * it). Its slot is numbered from that process's base: the root's slots
 * first, then each child's from where its parent's end, so the files of
 * different branches take the same numbers. The root opens, before any
 * fork, what only it can: files in flight in a queue (whoever fills the
 * queue opens them there), files of kinds whose own_open says no (a tty,
 * a packet socket, a file of /proc, ...), --inherit-fd's, and every
 * file of a tree with several mount namespaces (each opened from its
 * mount's, as before). A file no fd uses (a mapping's, the executable)
 * has no slot: it is opened by path where needed.
 *
 * Files made together (a socketpair, a pipe's ends, a listener and its
 * connections: the kinds' ties) go together, opened by one process. */
#include <stdlib.h>
#include <string.h>

#include "restore/rst.h"
#include "util/log.h"

#define NONE -1	/* used by no fd table (in flight, a socket's peer alone) */

struct plan {
	const struct rst_tree *tr;
	int *up;	/* union-find over the files: a group's root is its own up */
	int *opener;	/* per group root: the fd table (its first process)
			 * using it, the common ancestor of those, or NONE */
	bool *shared;	/* per group root: several fd tables use it */
	bool *root;	/* per group root: the root opens it (see above) */
	bool *flight;	/* per group root: tied to no process (in flight) */
	int *once;	/* union-find over the files made at once (ties at_once) */
	int nr;
};

static int depth(const struct rst_tree *tr, int i)
{
	int d = 0;
	for (; tr->t[i].parent >= 0; i = tr->t[i].parent)
		d++;
	return d;
}

/* The lowest common ancestor of processes a and b (NONE: either). */
static int ancestor(const struct rst_tree *tr, int a, int b)
{
	if (a == NONE || b == NONE)
		return a == NONE ? b : a;
	int da = depth(tr, a), db = depth(tr, b);
	for (; da > db; da--)
		a = tr->t[a].parent;
	for (; db > da; db--)
		b = tr->t[b].parent;
	while (a != b) {
		a = tr->t[a].parent;
		b = tr->t[b].parent;
	}
	return a;
}

static int find(int *up, int i)
{
	while (up[i] != i) {
		up[i] = up[up[i]];
		i = up[i];
	}
	return i;
}

static int root_of(struct plan *p, int i)
{
	return find(p->up, i);
}

/* files_tie_fn: a and b are opened by one process, made at once if
 * at_once; b -1: the root opens a. */
static void tie(void *arg, int a, int b, bool at_once)
{
	struct plan *p = arg;
	if (a < 0 || a >= p->nr || b >= p->nr)
		return;
	if (at_once && b >= 0)
		p->once[find(p->once, b)] = find(p->once, a);
	int ra = root_of(p, a);
	if (b < 0) {
		p->root[ra] = p->flight[ra] = true;
		return;
	}
	int rb = root_of(p, b);
	if (ra == rb)
		return;
	p->up[rb] = ra;
	p->shared[ra] |= p->shared[rb] || p->opener[ra] != p->opener[rb];
	p->root[ra] |= p->root[rb];
	p->flight[ra] |= p->flight[rb];
	p->opener[ra] = ancestor(p->tr, p->opener[ra], p->opener[rb]);
}

/* Which fd tables use each file, by their first processes. */
static void note_users(const struct rst_tree *tr, struct plan *p)
{
	for (int i = 0; i < tr->nr; i++) {
		const struct rst_ctx *rc = &tr->t[i];
		if (rc->zombie || rc->shares_fdt)
			continue;	/* a shared table's fds are its first process's */
		for (int f = 0; f < rc->nr_fdinfo; f++) {
			int idx = rc->fdi_file[f];
			if (idx < 0)
				continue;	/* reported where it is opened */
			p->shared[idx] |= p->opener[idx] != NONE && p->opener[idx] != i;
			p->opener[idx] = ancestor(tr, p->opener[idx], i);
		}
	}
}

/* A file only the root may open (see above). */
static bool root_only(const struct rst_tree *tr, const struct plan *p, int idx)
{
	const struct rst_files *rf = &tr->files;
	return p->opener[idx] == NONE || !files_own_open(rf, idx) ||
	       rst_inherited_fd(tr->o, rf, rf->e[idx]) >= 0 || tr->ns.mnt.nr_ns > 1;
}

/* The process that opens a shared file: a process sharing its parent's
 * fd table (CLONE_FILES, forked once the table is filled) can't, its
 * table's first process does; a zombie has no fds. */
static int opener_of(const struct rst_tree *tr, int i)
{
	while (i > 0 && (tr->t[i].shares_fdt || tr->t[i].zombie))
		i = tr->t[i].parent;
	return i;
}

/* A process's slots start at its base: its parent's base plus the
 * parent's own slots (the root's at 0). */
static int base_of(const struct rst_tree *tr, int *base, const int *count, int i)
{
	if (base[i] < 0) {
		int pa = tr->t[i].parent;
		base[i] = pa < 0 ? 0 : base_of(tr, base, count, pa) + count[pa];
	}
	return base[i];
}

static int number_slots(struct rst_tree *tr, const int *count)
{
	int *base = malloc((tr->nr ? tr->nr : 1) * sizeof(*base)), top = 0;
	if (!base)
		return -1;
	for (int i = 0; i < tr->nr; i++)
		base[i] = -1;
	for (int i = 0; i < tr->nr; i++)
		if (base_of(tr, base, count, i) + count[i] > top)
			top = base[i] + count[i];
	for (int i = 0; i < tr->nr; i++)
		tr->t[i].pool_top = base[i] + count[i];
	int *next = base;	/* from here, each process's next slot */
	for (int f = 0; f < tr->files.nr; f++)
		if (tr->pool_opener[f] >= 0)
			tr->files.slot[f] = next[tr->pool_opener[f]]++;
	free(base);
	tr->files.nr_pool = top;
	return 0;
}

/* ---- what opening the files keeps above the pool ----
 *
 * Files made at once (a listener and all its connections, a pair, a
 * pipe's ends) are kept above the pool (files_keep_fd) from the first
 * open of one of them until each is opened: a listener's 5,000
 * connections hold 10,000 fds there for a moment. The need check counts
 * the most any process holds so, following the order it opens its files
 * in: its pool's first (tree.c's pool_open: its subtree's fds, process by
 * process), then its own (open_own: its fds in order). A group of n is
 * taken to hold n + 1 from its first open (a pipe keeps both ends even
 * for one entry), one less at each of its files opened, none once all
 * are; a file no process opens (a socket's peer alone) is held to the
 * end. */
struct keeping {
	const struct rst_tree *tr;
	struct plan *p;
	int *left;	/* per group root: its files not opened yet */
	int *size;	/* per group root: its files */
	bool *opened;
	int held, peak;
};

static void keep_open(struct keeping *k, int f)
{
	if (k->opened[f])
		return;	/* a dup, or another process's fd on it */
	k->opened[f] = true;
	int g = find(k->p->once, f);
	if (k->left[g] == k->size[g]) {
		k->held += k->size[g] + 1;
		if (k->held > k->peak)
			k->peak = k->held;
	}
	k->held--;
	if (--k->left[g] == 0)
		k->held--;
}

/* What process q holds at most while it opens its files. */
static int peak_of(struct keeping *k, int q)
{
	const struct rst_tree *tr = k->tr;
	k->held = k->peak = 0;
	for (int j = 0; j < tr->nr; j++) {
		if (tr->t[j].zombie || !rst_in_subtree(tr, q, j))
			continue;
		for (int i = 0; i < tr->t[j].nr_fdinfo; i++) {
			int f = tr->t[j].fdi_file[i];
			if (f >= 0 && tr->pool_opener[f] == q)
				keep_open(k, f);
		}
	}
	for (int i = 0; i < tr->t[q].nr_fdinfo; i++) {
		int f = tr->t[q].fdi_file[i];
		if (f >= 0 && tr->pool_opener[f] < 0)
			keep_open(k, f);
	}
	return k->peak;
}

static int kept_peak(struct rst_tree *tr, struct plan *p)
{
	int n = tr->files.nr + 1;
	struct keeping k = { tr, p, calloc(n, sizeof(int)), calloc(n, sizeof(int)), calloc(n, sizeof(bool)), 0, 0 };
	int ret = -1;
	tr->files_kept = 0;
	if (k.left && k.size && k.opened) {
		for (int f = 0; f < tr->files.nr; f++)
			k.size[find(p->once, f)]++;
		memcpy(k.left, k.size, n * sizeof(int));
		for (int q = 0; q < tr->nr; q++)
			if (!tr->t[q].zombie && !tr->t[q].shares_fdt && peak_of(&k, q) > tr->files_kept)
				tr->files_kept = k.peak;
		ret = 0;
	}
	free(k.left);
	free(k.size);
	free(k.opened);
	return ret;
}

static int plan_files(struct rst_tree *tr, struct plan *p, int *count)
{
	struct rst_files *rf = &tr->files;
	for (int i = 0; i < rf->nr; i++) {
		p->up[i] = p->once[i] = i;
		p->opener[i] = NONE;
	}
	note_users(tr, p);
	for (int i = 0; i < rf->nr; i++) {
		p->root[i] = root_only(tr, p, i);
		tr->pool_idle[i] = p->opener[i] == NONE;
	}
	files_ties(rf, tie, p);
	int own = 0, unused = 0;
	for (int i = 0; i < rf->nr; i++) {
		int g = root_of(p, i);
		rf->slot[i] = -1;
		tr->pool_opener[i] = p->root[g] ? 0 : p->shared[g] ? opener_of(tr, p->opener[g]) : -1;
		/* used by path only (a mapping's, a working directory), with
		 * nothing of its to open: no slot */
		if (p->opener[g] == NONE && !p->flight[g])
			tr->pool_opener[i] = -1;
		if (tr->pool_opener[i] >= 0)
			count[tr->pool_opener[i]]++;
		else if (p->opener[g] == NONE)
			unused++;
		else
			own++;
	}
	if (number_slots(tr, count) < 0 || kept_peak(tr, p) < 0)
		return -1;
	pr_info("files: %d opened by their processes, %d in the pool (%d slots, %d of them the root's); "
		"up to %d made together kept above it; %d used by no fd",
		own, rf->nr - own - unused, rf->nr_pool, tr->nr ? count[0] : 0, tr->files_kept, unused);
	return 0;
}

/* Each process's fds' files, looked up once. */
static int index_fds(struct rst_tree *tr)
{
	for (int i = 0; i < tr->nr; i++) {
		struct rst_ctx *rc = &tr->t[i];
		if (!rc->nr_fdinfo)
			continue;
		if (!(rc->fdi_file = malloc(rc->nr_fdinfo * sizeof(int))))
			return -1;
		for (int f = 0; f < rc->nr_fdinfo; f++)
			rc->fdi_file[f] = files_index(&tr->files, rc->fdinfo[f]->id);
	}
	return 0;
}

int rst_pool_plan(struct rst_tree *tr)
{
	struct rst_files *rf = &tr->files;
	size_t n = rf->nr + 1;
	struct plan p = { tr, calloc(n, sizeof(int)), calloc(n, sizeof(int)), calloc(n, sizeof(bool)),
			  calloc(n, sizeof(bool)), calloc(n, sizeof(bool)), calloc(n, sizeof(int)), rf->nr };
	int *count = calloc(tr->nr + 1, sizeof(int)), ret = -1;
	rf->slot = calloc(n, sizeof(int));
	tr->pool_opener = calloc(n, sizeof(int));
	tr->pool_idle = calloc(n, sizeof(bool));
	if (p.up && p.opener && p.shared && p.root && p.flight && p.once && count && rf->slot && tr->pool_opener &&
	    tr->pool_idle && index_fds(tr) == 0)
		ret = plan_files(tr, &p, count);
	if (ret < 0)
		pr_err("out of memory planning the restore's files");
	free(p.up);
	free(p.opener);
	free(p.shared);
	free(p.root);
	free(p.flight);
	free(p.once);
	free(count);
	return ret;
}
