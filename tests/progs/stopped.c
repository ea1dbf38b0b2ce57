/*
 * stopped: a process stopped by SIGSTOP must come back stopped, and must
 * then carry on when it gets SIGCONT.
 *
 *   root ── S  stops itself with SIGSTOP before READY; with the argument
 *        │     "threads" it has a second thread (the whole group stops)
 *        └─ W  an ordinary running child
 *
 * The root prints READY once waitpid(WUNTRACED) has reported S stopped.
 * The runner checks from outside that S (both threads) is in state T,
 * dumps and restores, checks T again, sends SIGCONT to S, waits until S
 * runs, and sends SIGUSR1 to the root, which forwards it to S and W.
 *
 * After SIGUSR1: the root must get S's "continued" report from
 * waitpid(WCONTINUED) (the kernel only makes one when a stopped process is
 * continued), S must have run its SIGCONT handler exactly once (the one
 * SIGCONT of the runner: a restore must not send its own), its second
 * thread (if any) must be alive and joinable, and memory, pids and parents must be as before.
 *
 * test tree.stopped: tree.plain tree.restore
 * test tree.stopped_threads (threads): tree.plain tree.restore
 */
#include "tree.h"

#include <pthread.h>

#define AREA (128 * 1024)

static volatile sig_atomic_t cont_count;
static uint64_t *area;
static pthread_t helper;
static volatile int helper_up, helper_go;
static int with_thread;		/* argv[1] == "threads" */

static void on_cont(int sig)
{
	(void)sig;
	cont_count++;
}

static void *helper_main(void *arg)
{
	sigset_t m;
	(void)arg;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigaddset(&m, SIGCONT);
	pthread_sigmask(SIG_BLOCK, &m, NULL); /* signals go to the main thread */
	helper_up = 1;
	while (!helper_go)
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	return (void *)42L;
}

static int stopper(int idx)
{
	struct sigaction sa;
	void *ret = NULL;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cont;
	if (sigaction(SIGCONT, &sa, NULL))
		die("sigaction(SIGCONT)");
	area = tree_fill(AREA, getpid(), idx);
	if (with_thread) {
		if ((errno = pthread_create(&helper, NULL, helper_main, NULL)))
			die("pthread_create");
		while (!helper_up)
			nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	}
	tree_sync_done();
	kill(getpid(), SIGSTOP);
	/* continued (by the runner's SIGCONT) */
	proto_wait();
	tree_check_ids(1);
	tree_check_fill(area, AREA, tree_pid, idx);
	CHECK(cont_count == 1, "S: the SIGCONT handler ran %d times, expected once", (int)cont_count);
	helper_go = 1;
	if (with_thread) {
		struct timespec dl;
		int e;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 10;
		e = pthread_timedjoin_np(helper, &ret, &dl);
		CHECK(e == 0 && ret == (void *)42L, "S: its second thread could not be joined (%s, returned %p)",
		      e ? strerror(e) : "ok", ret);
	}
	return tree_child_result();
}

static int worker(int idx)
{
	area = tree_fill(AREA, getpid(), idx);
	tree_sync_done();
	proto_wait();
	tree_check_ids(1);
	tree_check_fill(area, AREA, tree_pid, idx);
	return tree_child_result();
}

int main(int argc, char **argv)
{
	pid_t S;
	int st;

	with_thread = argc > 1 && strcmp(argv[1], "threads") == 0;
	tree_init();
	tree_sync_init();
	S = tree_fork(1, stopper, 0);
	tree_fork(2, worker, 0);
	tree_sync_wait();
	if (waitpid(S, &st, WUNTRACED) != S)
		die("waitpid(S, WUNTRACED)");
	CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "setup: S %d did not stop with SIGSTOP (status %#x)", S,
	      st);
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();

	/* S was continued by the runner before our SIGUSR1 */
	{
		pid_t r = 0;
		for (int i = 0; i < 500 && r == 0; i++) {
			r = waitpid(S, &st, WCONTINUED | WNOHANG);
			if (r == 0)
				nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
		}
		CHECK(r == S && WIFCONTINUED(st),
		      "no 'continued' report for S %d from waitpid(WCONTINUED) (got %d, status %#x): it was not "
		      "stopped when SIGCONT came",
		      S, r, st);
	}
	tree_forward();
	tree_check_ids(0);
	tree_reap(20);
	tree_check_no_more_children();
	return proto_finish();
}
