/* The tools CRIU runs for a network namespace (ip, iptables-save, ...),
 * run the same way: forked by the calling thread, so in its network
 * namespace, with an image as stdin or stdout. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/netns.h"
#include "util/log.h"

int net_tool(char *const argv[], int in, int out, bool quiet)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(in >= 0 ? in : null, 0);
		dup2(out >= 0 ? out : null, 1);
		if (quiet)
			dup2(null, 2);
		execvp(argv[0], argv);
		fprintf(stderr, "Error: can't run %s: %m\n", argv[0]);
		_exit(127);
	}
	if (pid < 0) {
		pr_perror("can't run %s", argv[0]);
		return -1;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			pr_perror("can't wait for %s", argv[0]);
			return -1;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (!quiet)
			pr_err("%s %s%s failed (status 0x%x)", argv[0], argv[1] ? argv[1] : "",
			       argv[1] && argv[2] ? " ..." : "", status);
		return -1;
	}
	return 0;
}
