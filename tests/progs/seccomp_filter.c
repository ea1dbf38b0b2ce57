/*
 * seccomp_filter: a process under two seccomp filters, installed with
 * no_new_privs, that would kill it on the syscalls stasis injects:
 *
 *   filter 1: mmap, munmap, rt_sigaction, getitimer -> SECCOMP_RET_KILL_PROCESS
 *             getppid -> EPERM
 *   filter 2: getppid -> EACCES (installed last: its errno wins)
 *
 * With the argument `notify`, a third filter hands uname to a supervisor
 * (SECCOMP_RET_USER_NOTIF; the listener fd stays open here): stasis must
 * refuse that one and leave the program running.
 *
 * After SIGUSR1: filter mode with the same number of filters, no_new_privs,
 * getppid failing with EACCES (the order of the chain), then PASS; last
 * it calls getitimer, and the filter must kill it (SIGSYS: the harness
 * expects 128+31). A program that survives prints a FAIL line.
 */
#include "common.h"
#include "seccomp.h"

#include <sys/resource.h>
#include <sys/time.h>

static long filters_before;

static void check(void)
{
	pid_t me = getpid();

	CHECK(status_field(me, "Seccomp") == SECCOMP_MODE_FILTER, "Seccomp mode %ld, expected 2",
	      status_field(me, "Seccomp"));
	CHECK(status_field(me, "Seccomp_filters") == filters_before, "%ld seccomp filters, expected %ld",
	      status_field(me, "Seccomp_filters"), filters_before);
	CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs is off");
	errno = 0;
	long r = syscall(SYS_getppid);
	CHECK(r == -1 && errno == EACCES, "getppid gave %ld (errno %d), expected -1 with EACCES (%d) "
	      "from the filter installed last", r, errno, EACCES);
}

int main(int argc, char **argv)
{
	const struct rule first[] = {
		{ SYS_mmap, SECCOMP_RET_KILL_PROCESS },
		{ SYS_munmap, SECCOMP_RET_KILL_PROCESS },
		{ SYS_rt_sigaction, SECCOMP_RET_KILL_PROCESS },
		{ SYS_getitimer, SECCOMP_RET_KILL_PROCESS },
		{ SYS_getppid, SECCOMP_RET_ERRNO | EPERM },
	};
	const struct rule second[] = { { SYS_getppid, SECCOMP_RET_ERRNO | EACCES } };
	const struct rule notify[] = { { SYS_uname, SECCOMP_RET_USER_NOTIF } };
	struct rlimit nocore = { 0, 0 };

	proto_init();
	setrlimit(RLIMIT_CORE, &nocore);	/* the last SIGSYS leaves no core */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("PR_SET_NO_NEW_PRIVS");
	if (install_rules(first, 5, 0) < 0 || install_rules(second, 1, 0) < 0)
		die("seccomp filter");
	if (argc > 1 && !strcmp(argv[1], "notify") &&
	    install_rules(notify, 1, SECCOMP_FILTER_FLAG_NEW_LISTENER) < 0)
		die("seccomp filter with a listener");
	filters_before = status_field(getpid(), "Seccomp_filters");
	check();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check();
	if (failures)
		return proto_finish();
	proto_finish();
	struct itimerval it;
	syscall(SYS_getitimer, ITIMER_REAL, &it);
	say("FAIL: getitimer was not killed by the seccomp filter\n");
	return 1;
}
