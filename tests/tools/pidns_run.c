/*
 * pidns_run: run a command as pid 1 of a new pid namespace.
 *
 *   pidns_run CMD [ARGS...]
 *
 * The command is started with clone(CLONE_NEWPID), becomes a session
 * leader there (setsid: its session and group are its own, inside the
 * namespace), and execs CMD.  No new mount namespace: /proc stays the
 * host's, so the runner sees the namespace's processes with their host
 * pids, and their namespace pids in the NSpid lines of /proc/PID/status.
 *
 * pidns_run waits for the command and exits with its status (128+N if
 * signal N killed it).  When the command (the namespace's init) dies, the
 * kernel kills everything else in the namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int status;
	pid_t child;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CMD [ARGS...]\n", argv[0]);
		return 2;
	}
	/* fork-like clone: no new stack needed */
	child = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	if (child < 0) {
		perror("clone(CLONE_NEWPID)");
		return 2;
	}
	if (child == 0) {
		if (setsid() < 0)
			perror("setsid");
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR) {
			perror("waitpid");
			return 2;
		}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
