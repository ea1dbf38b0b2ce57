/*
 * sessions: sessions and process groups must come back as they were,
 * including a group whose leader is gone and a session led by a process
 * other than the tree's root.
 *
 *   R   session R, group R (the runner made it a session leader)
 *   ├─ C1  setsid(): session C1, group C1 (a session not led by the root)
 *   │   ├─ G1  setpgid(0, 0): group G1 in session C1
 *   │   ├─ G2  setpgid(0, G1): joins its sibling's group G1
 *   │   └─ G3  stays in group C1
 *   ├─ C3  joins group L, then L is killed and reaped: C3 stays alone in a
 *   │      group whose leader (pid L) no longer exists
 *   └─ C4  setpgid(0, 0): group C4 in session R
 *
 * Each process records getpid(), getppid(), getsid(0) and getpgid(0)
 * before READY and compares after SIGUSR1, which each forwards to its
 * children.  The root also checks the layout itself before READY.
 *
 * test tree.sessions: tree.plain tree.restore
 */
#include "tree.h"

static pid_t g1;		/* C1's first child, the leader of G1's group */
static pid_t L;			/* the group leader that is gone before READY */

/* The part every non-root process runs once its ids are in place. */
static int wait_and_check(void)
{
	tree_record_session();
	return tree_child_session_end();
}

static int grandchild(int idx)
{
	switch (idx) {
	case 11: /* G1 */
		if (setpgid(0, 0) && errno != EACCES)
			die("G1: setpgid(0, 0)");
		break;
	case 12: /* G2 */
		if (setpgid(0, g1) && errno != EACCES)
			die("G2: setpgid(0, G1)");
		break;
	}
	return wait_and_check();
}

static int c1(int idx)
{
	pid_t p;

	(void)idx;
	if (setsid() < 0)
		die("C1: setsid");
	g1 = tree_fork(11, grandchild, 0);
	/* both sides set the group, so it is in place whoever runs first */
	if (setpgid(g1, g1))
		die("C1: setpgid(G1, G1)");
	p = tree_fork(12, grandchild, 0);
	if (setpgid(p, g1))
		die("C1: setpgid(G2, G1)");
	tree_fork(13, grandchild, 0);
	return wait_and_check();
}

static int c3(int idx)
{
	(void)idx;
	/* The root also puts us in L's group, and kills L only after that:
	 * if this fails, L is gone and we are in its group already. */
	setpgid(0, L);
	return wait_and_check();
}

static int c4(int idx)
{
	(void)idx;
	if (setpgid(0, 0) && errno != EACCES)
		die("C4: setpgid(0, 0)");
	return wait_and_check();
}

static void __attribute__((noreturn)) leader(void)
{
	for (;;)
		pause(); /* until the root kills it */
}

int main(void)
{
	pid_t C1, C3, C4;
	int st;

	tree_init();
	tree_sync_init();
	C1 = tree_fork(1, c1, 0);

	/* L leads a group, C3 joins it, L is killed and reaped. */
	L = fork();
	if (L < 0)
		die("fork");
	if (L == 0)
		leader();
	if (setpgid(L, L))
		die("setpgid(L, L)");
	C3 = tree_fork(3, c3, 0);
	if (setpgid(C3, L))
		die("setpgid(C3, L)");
	kill(L, SIGKILL);
	if (waitpid(L, &st, 0) != L)
		die("waitpid(L)");

	C4 = tree_fork(4, c4, 0);
	if (setpgid(C4, C4) && errno != EACCES)
		die("setpgid(C4, C4)");
	tree_sync_wait();

	/* the layout, as seen from the root */
	tree_record_session();
	CHECK(tree_sid == getpid() && tree_pgid == getpid(), "setup: the root is not a session and group leader");
	CHECK(getsid(C1) == C1 && getpgid(C1) == C1, "setup: C1 %d: sid %d pgid %d, expected its own", C1,
	      getsid(C1), getpgid(C1));
	CHECK(getsid(C3) == getpid() && getpgid(C3) == L, "setup: C3 %d: sid %d pgid %d, expected %d and %d",
	      C3, getsid(C3), getpgid(C3), getpid(), L);
	CHECK(kill(L, 0) < 0 && errno == ESRCH, "setup: the group leader %d still exists", L);
	CHECK(getpgid(C4) == C4, "setup: C4 %d: pgid %d, expected its own", C4, getpgid(C4));
	if (!tree_root_session_wait())
		return proto_finish();
	tree_check_gone(L, "dead group leader");
	CHECK(getpgid(C3) == L, "C3 %d: pgid %d, expected %d (its dead leader's)", C3, getpgid(C3), L);
	tree_reap(20);
	tree_check_no_more_children();
	return proto_finish();
}
