/* The tools CRIU runs for a network namespace (ip, iptables-save, ...),
 * run the same way: forked by the calling thread, so in its network
 * namespace, with an image as stdin or stdout. What a tool says on its
 * stderr goes to our log (ip restore's "File exists" of the addresses
 * the kernel made itself is not the user's business), its last line in
 * the error when it fails. */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/netns.h"
#include "util/log.h"

/* The tool's stderr, each line logged; its last line into last. */
static void log_said(int fd, const char *tool, char *last, size_t len)
{
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	*last = '\0';
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *save, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		pr_debug("%s: %s", tool, l);
		snprintf(last, len, "%s", l);
	}
}

int net_tool(char *const argv[], int in, int out, bool quiet)
{
	return net_tool_at(NULL, argv, in, out, quiet);
}

int net_tool_at(const char *netns, char *const argv[], int in, int out, bool quiet)
{
	int err = memfd_create("stasis-tool-stderr", MFD_CLOEXEC);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR), ns = netns ? open(netns, O_RDONLY | O_CLOEXEC) : -1;
		if (netns && (ns < 0 || setns(ns, CLONE_NEWNET) < 0)) {
			dprintf(err, "can't enter the network namespace %s: %m\n", netns);
			_exit(127);
		}
		dup2(in >= 0 ? in : null, 0);
		dup2(out >= 0 ? out : null, 1);
		dup2(err >= 0 ? err : null, 2);
		execvp(argv[0], argv);
		fprintf(stderr, "can't run %s: %m\n", argv[0]);
		_exit(127);
	}
	if (pid < 0) {
		pr_perror("can't run %s", argv[0]);
		if (err >= 0)
			close(err);
		return -1;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			pr_perror("can't wait for %s", argv[0]);
			status = -1;
			break;
		}
	char last[256] = "";
	if (err >= 0) {
		log_said(err, argv[0], last, sizeof(last));
		close(err);
	}
	if (status == -1)
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (!quiet)
			pr_err("%s %s%s failed (status 0x%x)%s%s", argv[0], argv[1] ? argv[1] : "",
			       argv[1] && argv[2] ? " ..." : "", status, *last ? ": " : "", last);
		return -1;
	}
	return 0;
}
