/*
 * subreaper: run a command as a child subreaper and reap every orphan.
 *
 *   subreaper CMD [ARGS...]
 *
 * `stasis restore -d` leaves the restored process orphaned.  Orphans are
 * normally re-parented to pid 1, and a pid 1 that never calls wait() (as in
 * some sandboxes) keeps them as zombies forever: their pids stay taken, and
 * the next restore of the same pid fails.  run.sh re-executes itself under
 * this helper, and starts each test's worker under one more: a test's
 * orphans come to its own subreaper, are reaped at once, and are the
 * test's alone to sweep.
 *
 * Exits with CMD's exit status (128+signal if it was killed).  SIGINT,
 * SIGTERM and SIGHUP are forwarded to CMD.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child;

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	int status = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CMD [ARGS...]\n", argv[0]);
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1)) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	child = fork();
	if (child < 0) {
		perror("fork");
		return 2;
	}
	if (child == 0) {
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	/* Reap everything; stop when the command itself is done. */
	for (;;) {
		int st;
		pid_t p = wait(&st);

		if (p == child) {
			status = st;
			break;
		}
		if (p < 0 && errno != EINTR)
			break;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
