/* What a non-root RPC client may ask for. The service runs as root; a
 * client must get no more from it than it could do itself. The kernel
 * answers that question best, so each check runs in a child that has
 * become the client (its uid, gid and groups, no capabilities) and tries
 * the access itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rpc/rpc.h"
#include "util/log.h"

static int become_client(const struct rpc_conn *c)
{
	if (setgroups(c->ngroups, c->groups) < 0 || setresgid(c->peer_gid, c->peer_gid, c->peer_gid) < 0 ||
	    setresuid(c->peer_uid, c->peer_uid, c->peer_uid) < 0)
		return -1;
	return 0;
}

/* Could the client ptrace pid and all its descendants? Opening
 * /proc/PID/mem asks the kernel exactly that (PTRACE_MODE_ATTACH). */
static bool may_ptrace_tree(pid_t pid, pid_t *denied)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	/* A child caught in fork, exec or exit is refused for an instant
	 * (seen: about 1 in 200 opens of a shell's short-lived children):
	 * only a refusal that lasts counts. */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < 5 && fd < 0 && (errno == EACCES || errno == EPERM); i++) {
		usleep(20000);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0 && (errno == ENOENT || errno == ESRCH))
		return true;	/* gone since it was listed: it won't be dumped */
	if (fd < 0) {
		*denied = pid;
		return false;
	}
	close(fd);
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return true;	/* exited meanwhile */
	bool ok = true;
	for (struct dirent *e; ok && (e = readdir(d));) {
		char cpath[320];
		if (e->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", pid, e->d_name);
		FILE *f = fopen(cpath, "re");
		int child;
		while (ok && f && fscanf(f, "%d", &child) == 1)
			ok = may_ptrace_tree(child, denied);
		if (f)
			fclose(f);
	}
	closedir(d);
	return ok;
}

/* Runs check in a child that is the client; its exit code says. */
static int as_client(const struct rpc_conn *c, int (*check)(const void *arg), const void *arg)
{
	pid_t pid = fork();
	if (pid < 0) {
		pr_perror("rpc: can't fork to check the client's rights");
		return -1;
	}
	if (pid == 0)
		_exit(become_client(c) < 0 ? 2 : check(arg));
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int check_dir_writable(const void *arg)
{
	return faccessat(*(const int *)arg, ".", W_OK | X_OK, AT_EACCESS) == 0 ? 0 : 1;
}

static int check_ptrace(const void *arg)
{
	pid_t denied = 0;
	if (may_ptrace_tree(*(const pid_t *)arg, &denied))
		return 0;
	/* the pid that failed, for the message (pids fit in 22 bits) */
	return denied == *(const pid_t *)arg ? 1 : 3;
}

int rpc_may_dump(const struct rpc_conn *c, pid_t pid)
{
	int r = as_client(c, check_ptrace, &pid);
	if (r != 0) {
		pr_err("rpc: uid %u may not dump pid %d: it could not ptrace %s", c->peer_uid, pid,
		       r == 1 ? "it" : "one of its descendants");
		log_set_errno(EPERM);
		return -1;
	}
	return 0;
}

/* Each seized thread, as it is now (stopped: it can't exec or change
 * ids any more): the client must be able to ptrace it. A process that
 * became another (exec of a setuid binary, or of anything after the
 * first check) is caught here, after the seize, before a byte of it is
 * read. */
struct seized { const pid_t *tids; int nr; };

static int check_seized(const void *arg)
{
	const struct seized *s = arg;
	char path[64];
	for (int i = 0; i < s->nr; i++) {
		snprintf(path, sizeof(path), "/proc/%d/mem", s->tids[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return 10 + i < 250 ? 10 + i : 250;
		close(fd);
	}
	return 0;
}

int rpc_may_dump_seized(void *ctx, const pid_t *tids, int nr)
{
	const struct rpc_conn *c = ctx;
	struct seized s = { tids, nr };
	int r = as_client(c, check_seized, &s);
	if (r == 0)
		return 0;
	if (r >= 10 && r < 250)
		pr_err("rpc: uid %u may not dump thread %d, which it could not ptrace once seized",
		       c->peer_uid, tids[r - 10]);
	else
		pr_err("rpc: uid %u may not dump what was seized (it could not ptrace all of it)", c->peer_uid);
	log_set_errno(EPERM);
	return -1;
}

int rpc_may_write_dir(const struct rpc_conn *c, int dirfd, const char *name)
{
	if (as_client(c, check_dir_writable, &dirfd) != 0) {
		pr_err("rpc: uid %u may not write into %s", c->peer_uid, name);
		log_set_errno(EACCES);
		return -1;
	}
	return 0;
}
