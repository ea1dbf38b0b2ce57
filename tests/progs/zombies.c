/*
 * zombies: children that have exited but were not reaped must come back as
 * zombies, with their pids and their exit statuses.
 *
 *   root ── Z1  exit(3)
 *        ├─ Z2  exit(5)
 *        ├─ Z3  killed by SIGTERM
 *        └─ C   alive ── Z4  exit(9)     (a zombie one level down)
 *
 * Before READY the root checks, with waitid(WNOWAIT) (which reports without
 * reaping), that Z1-Z3 have ended as planned; C does the same for Z4.
 * After SIGUSR1 the root forwards it to C, reaps Z1-Z3 with waitpid() on
 * each pid and checks each status, then reaps C; C reaps Z4.  Nobody may
 * have any other child (a zombie restored twice, or as a live process,
 * would show up here).
 *
 * test tree.zombies: tree.plain tree.restore
 */
#include "tree.h"

struct zombie {
	pid_t pid;
	int code;	/* exit status, or -signal */
};

static struct zombie z[3] = { { 0, 3 }, { 0, 5 }, { 0, -SIGTERM } };
static struct zombie z4 = { 0, 9 };

static pid_t spawn(int code)
{
	pid_t p = fork();

	if (p < 0)
		die("fork");
	if (p == 0) {
		if (code >= 0)
			_exit(code);
		for (;;)
			pause(); /* until the parent's SIGTERM */
	}
	if (code < 0)
		kill(p, -code);
	return p;
}

static int matches(int code, int wcode, int wstatus)
{
	if (code >= 0)
		return wcode == CLD_EXITED && wstatus == code;
	return wcode == CLD_KILLED && wstatus == -code;
}

/* Has the child ended as planned?  With WNOWAIT it stays a zombie. */
static void check_ended(const struct zombie *zz, const char *who)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)zz->pid, &si, WEXITED | WNOWAIT)) {
		fail("setup: waitid(%s %d): %s", who, zz->pid, strerror(errno));
		return;
	}
	CHECK(matches(zz->code, si.si_code, si.si_status),
	      "setup: %s %d ended with code %d status %d, expected %s %d", who, zz->pid, si.si_code,
	      si.si_status, zz->code >= 0 ? "exit" : "signal", zz->code >= 0 ? zz->code : -zz->code);
}

/* waitpid() the zombie: its pid and status must be as before the dump. */
static void reap(const struct zombie *zz, const char *who)
{
	int st;
	char buf[64];
	pid_t r = waitpid(zz->pid, &st, WNOHANG);

	if (r != zz->pid) {
		fail("%s %d: waitpid() = %d (%s), expected the zombie to be reaped at once", who, zz->pid, r,
		     r < 0 ? strerror(errno) : "still running");
		return;
	}
	if (zz->code >= 0)
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == zz->code, "%s %d: %s, expected exit status %d", who,
		      zz->pid, status_text(st, buf, sizeof(buf)), zz->code);
	else
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == -zz->code, "%s %d: %s, expected killed by signal %d",
		      who, zz->pid, status_text(st, buf, sizeof(buf)), -zz->code);
}

static int middle(int idx)
{
	(void)idx;
	z4.pid = spawn(z4.code);
	check_ended(&z4, "grandchild Z4");
	tree_sync_done();
	if (failures)
		return 1;
	proto_wait();
	tree_check_ids(1);
	reap(&z4, "grandchild Z4");
	tree_check_no_more_children();
	return tree_child_result();
}

int main(void)
{
	tree_init();
	tree_sync_init();
	for (int i = 0; i < 3; i++)
		z[i].pid = spawn(z[i].code);
	tree_fork(4, middle, 0);
	for (int i = 0; i < 3; i++)
		check_ended(&z[i], "child");
	tree_sync_wait();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	tree_forward();
	tree_check_ids(0);
	for (int i = 0; i < 3; i++)
		reap(&z[i], "child");
	tree_reap(20);
	tree_check_no_more_children();
	return proto_finish();
}
