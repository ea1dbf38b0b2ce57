/*
 * vfork_wait: a process inside vfork(). Its child (sharing its memory)
 * says READY and waits for SIGUSR1; the parent sleeps in the kernel until
 * the child exits, where no ptrace interrupt reaches it. A dump can't stop
 * such a tree and must say so at once, and leave both running: after
 * SIGUSR1 to the group the child exits, the parent returns from vfork and
 * prints PASS.
 *
 * Test in tests/cases/unsupported.sh (tree.vfork_pending).
 */
#include "common.h"

#include <sys/wait.h>

int main(void)
{
	proto_init();
	pid_t pid = vfork();
	if (pid < 0)
		die("vfork");
	if (pid == 0) {
		/* only async-signal-safe calls here: we run on the parent's stack */
		proto_ready();
		proto_wait();
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	return proto_finish();
}
