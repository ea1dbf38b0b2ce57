/*
 * forktree: a tree of 20 processes, 3 levels below the root, must come
 * back with the same pids, the same parents and each process's memory.
 *
 *   0 ── 1 ── 4 ── 10, 11
 *   │    │    └ 5 ── 12, 13
 *   │    2 ── 6 ── 14, 15
 *   │         └ 7 ── 16
 *   │    3 ── 8 ── 17
 *   │         └ 9 ── 18, 19
 *
 * Each process:
 *   - checks the 256 KiB area the root filled before the first fork (shared
 *     copy-on-write by the whole tree); odd-numbered processes overwrite its
 *     first half with their own pattern after the fork (a COW break), so
 *     the dump must keep each process's copy apart;
 *   - fills an area of its own (64 KiB + index pages) with a pattern made
 *     of its pid and index;
 *   - checks getpid(), gettid() and getppid() against values recorded
 *     before READY (getppid() not for the root: a detached restore
 *     re-parents it);
 *   - checks that its stdout is the very open file of its parent (kcmp):
 *     processes that shared one file description before the dump must
 *     share one after it, or their writes would overwrite each other.
 *
 * After SIGUSR1 every process forwards it to its children, checks itself,
 * reaps its children (each must exit 0) and exits 0 or 1; the root prints
 * PASS only if the whole tree passed.
 *
 * test tree.forktree: tree.plain tree.restore tree.chain3 tree.leave_running tree.predump
 */
#include "tree.h"

#include <linux/kcmp.h>

#define NPROC 20
#define INHERITED (256 * 1024)

static const int parent_of[NPROC] = {
	-1, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 8, 9, 9,
};

static uint64_t *inherited;	/* root's pattern, COW-shared */
static pid_t root_pid;
static uint64_t *own;
static size_t own_bytes;

static void check_self(void)
{
	size_t half = INHERITED / 2;

	tree_check_ids(tree_index != 0);
	if (tree_index & 1) {
		tree_check_fill(inherited, half, tree_pid, 1000 + tree_index);
		/* the second half is still the root's */
		for (size_t i = half / 8; i < INHERITED / 8; i++)
			if (inherited[i] != tree_word(root_pid, 0, i)) {
				fail("process %d (pid %d): inherited word %zu is %#llx, expected the root's %#llx",
				     tree_index, tree_pid, i, (unsigned long long)inherited[i],
				     (unsigned long long)tree_word(root_pid, 0, i));
				break;
			}
	} else {
		tree_check_fill(inherited, INHERITED, root_pid, 0);
	}
	tree_check_fill(own, own_bytes, tree_pid, tree_index);
	if (tree_index != 0) {
		long r = syscall(SYS_kcmp, getpid(), getppid(), KCMP_FILE, 1, 1);

		CHECK(r == 0, "process %d (pid %d): its stdout is not the same open file as its parent's (kcmp = %ld%s%s)",
		      tree_index, tree_pid, r, r < 0 ? ", " : "", r < 0 ? strerror(errno) : "");
	}
}

static int node(int idx)
{
	for (int i = 0; i < NPROC; i++)
		if (parent_of[i] == idx)
			tree_fork(i, node, 0);
	if (idx & 1) {
		/* COW break: this process's own copy of the first half */
		size_t half = INHERITED / 2;
		for (size_t i = 0; i < half / 8; i++)
			inherited[i] = tree_word(getpid(), 1000 + idx, i);
	}
	own_bytes = 64 * 1024 + (size_t)idx * 4096;
	own = tree_fill(own_bytes, getpid(), idx);
	check_self();
	if (idx == 0)
		return 0;
	tree_sync_done();
	proto_wait();
	tree_forward();
	check_self();
	tree_reap(30);
	tree_check_no_more_children();
	return tree_child_result();
}

int main(void)
{
	tree_init();
	root_pid = getpid();
	inherited = tree_fill(INHERITED, root_pid, 0);
	tree_sync_init();
	node(0);
	tree_sync_wait();
	for (int i = 0; i < tree_nkids; i++) {
		int st;
		CHECK(waitpid(tree_kids[i].pid, &st, WNOHANG) == 0, "setup: child %d died before READY",
		      tree_kids[i].index);
	}
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	tree_forward();
	check_self();
	tree_reap(30);
	tree_check_no_more_children();
	return proto_finish();
}
