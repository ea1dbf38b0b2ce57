/* --join-ns net:PATH|PID: the tree is restored into an existing network
 * namespace, as CRIU's --join-ns does it for net. Stasis enters it
 * itself before it makes anything (every process, socket and network
 * lock it then touches is that namespace's). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "restore/join_ns.h"
#include "util/log.h"

/* CRIU's forms: a number is a pid (its /proc/PID/ns/net), else a path. */
static int open_net_ns(const char *what)
{
	char path[64], *end;
	long pid = strtol(what, &end, 10);
	if (*what && !*end && pid > 0 && pid <= 4194304) {
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
		what = path;
	}
	int fd = open(what, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("--join-ns net:%s: can't open the namespace", what);
	return fd;
}

int join_ns_enter(const struct opts *o)
{
	if (!o->join_net)
		return 0;
	int fd = open_net_ns(o->join_net);
	if (fd < 0)
		return -1;
	int ret = setns(fd, CLONE_NEWNET);
	if (ret < 0)
		pr_perror("--join-ns net:%s: can't enter the network namespace", o->join_net);
	else
		pr_info("restoring into the network namespace of %s", o->join_net);
	close(fd);
	return ret;
}
