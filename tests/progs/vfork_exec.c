/*
 * vfork_exec: a process that is inside vfork() nearly all the time. Its
 * child sleeps 300 ms (on its way to exec, as a loaded machine may keep
 * a shell's child from its exec) and execs /bin/true, round after round;
 * the parent prints "round N" after each child that exited 0. A dump
 * that stops the child before its exec can't stop the parent. SIGUSR1:
 * the round in flight ends, PASS if every child exited 0.
 *
 * Test in tests/cases/runtime.sh (runtime.freeze_cgroup_vfork_*).
 */
#include "common.h"

#include <sys/wait.h>
#include <time.h>

int main(void)
{
	proto_init();
	proto_ready();
	for (int round = 1; !go_flag; round++) {
		pid_t pid = vfork();
		if (pid < 0)
			die("vfork");
		if (pid == 0) {
			/* only async-signal-safe calls here: we run on the parent's stack */
			struct timespec t = { 0, 300 * 1000 * 1000 };
			while (nanosleep(&t, &t) < 0 && errno == EINTR)
				;
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		int status;
		pid_t r;
		while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
			;
		CHECK(r == pid, "waitpid: %s", strerror(errno));
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: child status %#x", round, status);
		sayf("round %d\n", round);
	}
	return proto_finish();
}
