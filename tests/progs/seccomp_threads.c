/*
 * seccomp_threads: threads with seccomp states of their own.
 *
 * `mixed`:  thread S went into strict mode before anything else; then the
 *           main thread installed filter 1 (getppid -> EPERM; getitimer
 *           and munmap, which restore injects last, kill) under
 *           no_new_privs, and created thread A, which
 *           inherited it and added filter 2 (getppid -> EACCES). Three
 *           chains: main [1], A [1, 2], S strict.
 * `tsync`:  two threads, then the main thread installed filter 1 with
 *           SECCOMP_FILTER_FLAG_TSYNC: one chain shared by all three.
 *           After SIGUSR1 the main thread installs filter 2 with TSYNC,
 *           which the kernel allows only if the threads still share the
 *           main thread's filters, and both threads must then feel it.
 *
 * Threads wait in read() on a pipe of their own (strict mode allows
 * read and write), so they are stopped in a syscall at the dump. After
 * SIGUSR1 each is told to check itself and writes one result byte back:
 * 'y', or the letter of what broke. Modes and filter counts are checked
 * from /proc/self/task/TID/status by the main thread.
 */
#include "common.h"
#include "seccomp.h"

#include <pthread.h>

struct worker {
	const char *name;
	pthread_t th;
	int cmd[2], res[2];
	pid_t tid;
	int errno_want;			/* getppid's errno in this thread, 0: not to be called */
	long mode, filters;		/* Seccomp and Seccomp_filters as set up */
	int strict;
	volatile int ready;
};

static struct worker w[2];
static int tsync;

static const struct rule rule1[] = {
	{ SYS_getitimer, SECCOMP_RET_KILL_PROCESS },
	{ SYS_munmap, SECCOMP_RET_KILL_PROCESS },
	{ SYS_getppid, SECCOMP_RET_ERRNO | EPERM },
};
static const struct rule rule2[] = { { SYS_getppid, SECCOMP_RET_ERRNO | EACCES } };

static char getppid_result(int want)
{
	errno = 0;
	long r = syscall(SYS_getppid);
	return r == -1 && errno == want ? 'y' : 'p';
}

static void *work(void *arg)
{
	struct worker *me = arg;
	char c;

	me->tid = gettid();
	if (me->strict && prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) < 0)
		die("strict mode in a thread");
	if (!me->strict && !tsync && install_rules(rule2, 1, 0) < 0)
		die("second filter in thread A");
	me->ready = 1;
	while (read(me->cmd[0], &c, 1) < 0 && errno == EINTR)
		;
	c = me->strict ? 'y' : getppid_result(me->errno_want);
	write_all(me->res[1], &c, 1);
	if (me->strict)
		syscall(SYS_exit, 0);	/* pthread_exit is not allowed in strict mode */
	return NULL;
}

static void start(struct worker *x, const char *name, int strict)
{
	x->name = name;
	x->strict = strict;
	if (pipe(x->cmd) < 0 || pipe(x->res) < 0)
		die("pipe");
	if (pthread_create(&x->th, NULL, work, x))
		die("pthread_create");
	while (!x->ready)
		usleep(1000);
}

static void check_thread(const char *name, pid_t tid, long mode, long filters)
{
	long m = status_field(tid, "Seccomp"), f = status_field(tid, "Seccomp_filters");
	CHECK(m == mode, "%s (tid %d): Seccomp %ld, expected %ld", name, tid, m, mode);
	CHECK(f == filters, "%s (tid %d): %ld seccomp filters, expected %ld", name, tid, f, filters);
}

static void check(void)
{
	check_thread("main thread", gettid(), SECCOMP_MODE_FILTER, 1);
	for (int i = 0; i < 2; i++)
		check_thread(w[i].name, w[i].tid, w[i].mode, w[i].filters);
	CHECK(getppid_result(EPERM) == 'y', "main thread: getppid errno %d, expected EPERM", errno);
	CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "main thread: no_new_privs is off");
}

static void setup_mixed(void)
{
	start(&w[0], "strict thread S", 1);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || install_rules(rule1, 3, 0) < 0)
		die("first filter");
	w[1].errno_want = EACCES;
	start(&w[1], "thread A", 0);
	w[0].mode = SECCOMP_MODE_STRICT, w[0].filters = 0;
	w[1].mode = SECCOMP_MODE_FILTER, w[1].filters = 2;
}

static void setup_tsync(void)
{
	start(&w[0], "thread 1", 0);
	start(&w[1], "thread 2", 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("no_new_privs");
	long r = install_rules(rule1, 3, SECCOMP_FILTER_FLAG_TSYNC);
	if (r != 0)
		die("first filter with TSYNC");
	for (int i = 0; i < 2; i++) {
		w[i].mode = SECCOMP_MODE_FILTER, w[i].filters = 1;
		w[i].errno_want = EACCES;	/* once filter 2 comes, after SIGUSR1 */
	}
}

/* tsync: filter 2 for all, which works only on a shared chain */
static void add_by_tsync(void)
{
	long r = install_rules(rule2, 1, SECCOMP_FILTER_FLAG_TSYNC);
	CHECK(r == 0, "a TSYNC filter install gave %ld (errno %d): the threads do not share "
	      "the main thread's filters any more", r, errno);
	for (int i = 0; i < 2; i++)
		w[i].filters = 2;
	check_thread("main thread", gettid(), SECCOMP_MODE_FILTER, 2);
}

static void run_workers(void)
{
	for (int i = 0; i < 2; i++) {
		char c = 'g';
		write_all(w[i].cmd[1], &c, 1);
		if (read(w[i].res[0], &c, 1) != 1)
			c = '?';
		CHECK(c == 'y', "%s: getppid did not fail with errno %d (got '%c')", w[i].name,
		      w[i].errno_want, c);
	}
	pthread_join(w[tsync ? 0 : 1].th, NULL);
	if (tsync)
		pthread_join(w[1].th, NULL);
}

int main(int argc, char **argv)
{
	tsync = argc > 1 && !strcmp(argv[1], "tsync");
	proto_init();
	if (tsync)
		setup_tsync();
	else
		setup_mixed();
	check();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check();
	if (tsync)
		add_by_tsync();
	run_workers();
	return proto_finish();
}
