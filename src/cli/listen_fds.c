/* systemd's socket activation protocol (sd_listen_fds(3)), without
 * libsystemd: the manager starts us with the listening sockets as fds 3,
 * 4, ..., LISTEN_FDS their number and LISTEN_PID our pid (the variables
 * are inherited by children, which must not act on them). The service
 * serves one SOCK_SEQPACKET unix socket, as CRIU's RPC does: stasis.socket
 * has one ListenSequentialPacket=. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/listen_fds.h"
#include "util/log.h"

#define LISTEN_FDS_START 3

/* A decimal number that is the whole string, or -1. */
static long env_number(const char *name)
{
	const char *s = getenv(name);
	char *end;

	if (!s || !*s)
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	return *end || errno || v < 0 ? -1 : v;
}

static int sockopt(int fd, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);
	return getsockopt(fd, SOL_SOCKET, opt, &v, &len) < 0 ? -1 : v;
}

int systemd_listen_fd(void)
{
	long pid = env_number("LISTEN_PID"), n = env_number("LISTEN_FDS");
	bool ours = getenv("LISTEN_FDS") && pid == (long)getpid();

	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (!ours)
		return -1;
	if (n != 1) {
		pr_err("service: systemd passed %s sockets (LISTEN_FDS), this service serves exactly one",
		       n < 0 ? "an unreadable number of" : n == 0 ? "no" : "several");
		return -2;
	}
	int fd = LISTEN_FDS_START;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		pr_perror("service: fd %d of LISTEN_FDS", fd);
		return -2;
	}
	if (sockopt(fd, SO_DOMAIN) != AF_UNIX || sockopt(fd, SO_TYPE) != SOCK_SEQPACKET ||
	    sockopt(fd, SO_ACCEPTCONN) != 1) {
		pr_err("service: fd %d from systemd is not a listening unix SOCK_SEQPACKET socket "
		       "(the unit needs ListenSequentialPacket= and Accept=no)", fd);
		return -2;
	}
	return fd;
}
