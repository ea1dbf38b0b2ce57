/*
 * daemons: processes left in a session whose leader exited must come back
 * in that session. This is what the classic double fork of a daemon
 * leaves under a container's init or any child subreaper.
 *
 *   R   a child subreaper, session R (the runner made it a session leader)
 *   ├─ D1  session A, group A: forked by A after its setsid(), then A
 *   │   │  exited and R reaped it, so D1 was reparented to R
 *   │   └─ E   session A, group A: D1's own child (inherits the session)
 *   ├─ D2  session A, group A, like D1
 *   └─ D3  session A, group D3: it made a group of its own in A's session
 *
 * Pid A is no process after the restore (whatever stood in for A is gone),
 * yet every process is in session A. Each process records getpid(),
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

static int grandchild(int idx)
{
	(void)idx;
	tree_record_session();
	return tree_child_session_end();
}

/* A daemon: waits to be an orphan (R its parent) before it records its ids. */
static int daemon_main(int idx)
{
	if (idx == 3 && setpgid(0, 0) && errno != EACCES)
		die("D3: setpgid(0, 0)");
	if (idx == 1)
		tree_fork(4, grandchild, 0);
	while (getppid() == A)
		usleep(1000);
	tree_record_session();
	if (tree_sid != A) {
		sayf("FAIL: setup: daemon %d: getsid(0) = %d, expected %d (its first parent's)\n", idx, tree_sid, A);
		return 2;
	}
	return tree_child_session_end();
}

/* A: a session of its own, three daemons in it, then it exits. Tells R
 * their pids through `out`. */
static void __attribute__((noreturn)) first_parent(int out)
{
	pid_t d[NR_DAEMONS];

	A = getpid();
	if (setsid() < 0)
		die("A: setsid");
	for (int i = 0; i < NR_DAEMONS; i++)
		d[i] = tree_fork(i + 1, daemon_main, 0);
	/* both sides set D3's group, so it is in place whoever runs first */
	if (setpgid(d[2], d[2]) && errno != EACCES)
		die("A: setpgid(D3, D3)");
	if (write(out, d, sizeof(d)) != sizeof(d))
		die("A: write");
	_exit(0);
}

int main(void)
{
	pid_t d[NR_DAEMONS];
	int p[2], st;

	tree_init();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		die("prctl(PR_SET_CHILD_SUBREAPER)");
	tree_sync_init();
	if (pipe(p))
		die("pipe");
	A = fork();
	if (A < 0)
		die("fork");
	if (A == 0) {
		close(p[0]);
		first_parent(p[1]);
	}
	close(p[1]);
	if (read(p[0], d, sizeof(d)) != sizeof(d))
		die("read the daemons' pids");
	close(p[0]);
	if (waitpid(A, &st, 0) != A || !WIFEXITED(st) || WEXITSTATUS(st))
		die("A did not exit 0");
	/* the daemons are ours now: reaped and checked as our own */
	for (int i = 0; i < NR_DAEMONS; i++)
		tree_kids[tree_nkids++] = (struct tree_kid){ d[i], i + 1, 0 };
	tree_sync_wait();

	tree_record_session();
	for (int i = 0; i < NR_DAEMONS; i++)
		CHECK(getsid(d[i]) == A, "setup: daemon %d (pid %d): sid %d, expected %d", i + 1, d[i],
		      getsid(d[i]), A);
	if (!tree_root_session_wait())
		return proto_finish();
	tree_check_gone(A, "dead session leader");
	for (int i = 0; i < NR_DAEMONS; i++)
		CHECK(getsid(d[i]) == A, "daemon %d (pid %d): sid %d, expected %d (its dead leader's)", i + 1,
		      d[i], getsid(d[i]), A);
	tree_reap(20);
	tree_check_no_more_children();
	return proto_finish();
}
