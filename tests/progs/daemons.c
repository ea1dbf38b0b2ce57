/*
 * daemons: processes left in a session whose leader exited, or whose
 * leader is now their sibling, must come back in that session. This is
 * what the classic double fork of a daemon leaves under a container's init
 * or any child subreaper.
 *
 *   R   a child subreaper, session R (the runner made it a session leader)
 *   ├─ D1  session A, group A: forked by A after its setsid(), then A
 *   │   │  exited and R reaped it, so D1 was reparented to R
 *   │   └─ E   session A, group A: D1's own child (inherits the session)
 *   ├─ D2  session A, group A, like D1
 *   ├─ D3  session A, group D3: it made a group of its own in A's session
 *   ├─ L   session L, group L: a leader that stays
 *   └─ S   session L, group L: forked by L's child C, which exited, so S
 *          was reparented to R: its session's leader is its sibling
 *
 * Pid A is no process after the restore (whatever stood in for A is gone),
 * yet D1, D2, D3 and E are in session A. Each process records getpid(),
 * getppid(), getsid(0) and getpgid(0) before READY and compares after
 * SIGUSR1, which each forwards to its children.
 *
 * test tree.daemons: tree.plain tree.restore tree.chain3
 * test tree.daemons: tree.criu_dump --needs criu
 */
#include "tree.h"

#include <sys/prctl.h>

#define NR_DAEMONS 3

static pid_t A;			/* the session leader that exited */
static int tell[2];		/* to R: the pids of the processes it inherits */
/* set by the process that forks daemons, for them: it, their session */
static pid_t first_parent, daemon_sid;

static int grandchild(int idx)
{
	(void)idx;
	tree_record_session();
	return tree_child_session_end();
}

/* A daemon: waits to be an orphan (R its parent) before it records its ids. */
static int daemon_main(int idx)
{
	close(tell[0]);
	close(tell[1]);
	if (idx == 3 && setpgid(0, 0) && errno != EACCES)
		die("D3: setpgid(0, 0)");
	if (idx == 1)
		tree_fork(4, grandchild, 0);
	while (getppid() == first_parent)
		usleep(1000);
	tree_record_session();
	if (tree_sid != daemon_sid) {
		sayf("FAIL: setup: daemon %d: getsid(0) = %d, expected %d (its first parent's)\n", idx, tree_sid,
		     daemon_sid);
		return 2;
	}
	return tree_child_session_end();
}

/* A: a session of its own, three daemons in it, then it exits. */
static void __attribute__((noreturn)) session_of_daemons(void)
{
	pid_t d[NR_DAEMONS];

	close(tell[0]);
	first_parent = daemon_sid = A = getpid();
	if (setsid() < 0)
		die("A: setsid");
	for (int i = 0; i < NR_DAEMONS; i++)
		d[i] = tree_fork(i + 1, daemon_main, 0);
	/* both sides set D3's group, so it is in place whoever runs first */
	if (setpgid(d[2], d[2]) && errno != EACCES)
		die("A: setpgid(D3, D3)");
	if (write(tell[1], d, sizeof(d)) != sizeof(d))
		die("A: write");
	_exit(0);
}

/* L: a session of its own; its child C forks S and exits. */
static int session_leader(int idx)
{
	pid_t c;
	int st;

	(void)idx;
	close(tell[0]);
	if (setsid() < 0)
		die("L: setsid");
	c = fork();
	if (c < 0)
		die("L: fork");
	if (c == 0) {
		first_parent = getpid();
		daemon_sid = getsid(0);
		pid_t d = tree_fork(6, daemon_main, 0);
		if (write(tell[1], &d, sizeof(d)) != sizeof(d))
			die("C: write");
		_exit(0);
	}
	close(tell[1]);
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
		die("C did not exit 0");
	tree_record_session();
	return tree_child_session_end();
}

/* R inherits n processes: reaped and checked as its own children. */
static void inherit(const pid_t *d, int n, int first_index)
{
	if (read(tell[0], (void *)d, n * sizeof(*d)) != (ssize_t)(n * sizeof(*d)))
		die("read the pids of the daemons");
	for (int i = 0; i < n; i++)
		tree_kids[tree_nkids++] = (struct tree_kid){ d[i], first_index + i, 0 };
}

int main(void)
{
	pid_t d[NR_DAEMONS], L, S;
	int st;

	tree_init();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		die("prctl(PR_SET_CHILD_SUBREAPER)");
	tree_sync_init();
	if (pipe(tell))
		die("pipe");
	A = fork();
	if (A < 0)
		die("fork");
	if (A == 0)
		session_of_daemons();
	inherit(d, NR_DAEMONS, 1);
	if (waitpid(A, &st, 0) != A || !WIFEXITED(st) || WEXITSTATUS(st))
		die("A did not exit 0");
	L = tree_fork(5, session_leader, 0);
	close(tell[1]);
	inherit(&S, 1, 6);
	close(tell[0]);
	tree_sync_wait();

	tree_record_session();
	for (int i = 0; i < NR_DAEMONS; i++)
		CHECK(getsid(d[i]) == A, "setup: daemon %d (pid %d): sid %d, expected %d", i + 1, d[i],
		      getsid(d[i]), A);
	CHECK(getsid(S) == L, "setup: S (pid %d): sid %d, expected %d", S, getsid(S), L);
	if (!tree_root_session_wait())
		return proto_finish();
	tree_check_gone(A, "dead session leader");
	for (int i = 0; i < NR_DAEMONS; i++)
		CHECK(getsid(d[i]) == A, "daemon %d (pid %d): sid %d, expected %d (its dead leader's)", i + 1,
		      d[i], getsid(d[i]), A);
	CHECK(getsid(S) == L, "S (pid %d): sid %d, expected %d (its sibling's)", S, getsid(S), L);
	tree_reap(20);
	tree_check_no_more_children();
	return proto_finish();
}
