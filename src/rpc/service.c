/* The two ways to reach the RPC protocol: `stasis swrk FD`, started by a
 * client with one end of a socketpair (pycriu, runc), and `stasis service
 * --address SOCK`, a daemon serving any number of clients, each
 * connection in a worker process of its own (a crash or a hang in one
 * leaves the others, and the daemon, alone). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rpc/rpc.h"
#include "util/log.h"
#include "util/pidfile.h"

/* A client may exec us with 0-2 closed: fds opened later would land there
 * and be taken for stdio. */
static void fill_stdio(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return;
}

int stasis_swrk(const char *fd_arg)
{
	char *end;
	long fd = strtol(fd_arg, &end, 10);
	struct rpc_conn c;
	int type, tlen = sizeof(type);

	if (!*fd_arg || *end || fd < 0 || fd > 1 << 20 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, (socklen_t *)&tlen) < 0 || type != SOCK_SEQPACKET) {
		fprintf(stderr, "Error: swrk needs the fd of a SOCK_SEQPACKET socket, not '%s'\n", fd_arg);
		return 1;
	}
	fill_stdio();
	if (rpc_conn_init(&c, fd, true) < 0)
		return 1;
	return rpc_serve(&c) < 0 ? 1 : 0;
}

/* The socket file is made by us alone (no other user may connect
 * unless mode allows it) and only ever replaces an old socket. */
static int service_socket(const char *address, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (strlen(address) >= sizeof(sa.sun_path)) {
		pr_err("service address %s is too long for a unix socket", address);
		return -1;
	}
	strcpy(sa.sun_path, address);
	if (lstat(address, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			pr_err("service address %s exists and is not a socket", address);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (live) {
			pr_err("service address %s is already served by another process", address);
			return -1;
		}
		unlink(address);
	}
	int sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	mode_t old = umask(0777 & ~mode);
	int r = sk < 0 ? -1 : bind(sk, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(address, mode) < 0 || listen(sk, 64) < 0) {
		pr_perror("can't serve on %s", address);
		if (sk >= 0)
			close(sk);
		return -1;
	}
	return sk;
}

static void serve_connection(int lsk, int sk, const struct rpc_allowed *allowed)
{
	struct rpc_conn c;
	close(lsk);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (rpc_conn_init(&c, sk, false) < 0)
		_exit(1);
	c.allowed = allowed;
	_exit(rpc_serve(&c) < 0 ? 1 : 0);
}

static volatile sig_atomic_t stop;
static void on_term(int sig) { stop = 1; }

static void reap_workers(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static int accept_loop(int lsk, const struct rpc_allowed *allowed)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!stop) {
		struct pollfd p = { lsk, POLLIN, 0 };
		int n = poll(&p, 1, 200);
		reap_workers();
		if (n <= 0)
			continue;
		int sk = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
		if (sk < 0)
			continue;
		pid_t pid = fork();
		if (pid == 0)
			serve_connection(lsk, sk, allowed);
		if (pid < 0)
			pr_perror("service: can't fork a worker");
		close(sk);
	}
	return 0;
}

int stasis_service(const char *address, int lsk, bool daemonize, const char *pidfile, mode_t mode,
		   const struct rpc_allowed *allowed)
{
	bool ours = lsk < 0;
	if (ours)
		lsk = service_socket(address, mode);
	if (lsk < 0)
		return 1;
	if (daemonize) {
		/* the socket exists before the caller gets control back */
		pid_t pid = fork();
		if (pid < 0) {
			pr_perror("service: can't daemonize");
			return 1;
		}
		if (pid > 0) {
			int rc = pidfile && write_pidfile(pidfile, pid) < 0 ? 1 : 0;
			_exit(rc);
		}
		setsid();
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			if (null > 2)
				close(null);
		}
	} else if (pidfile && write_pidfile(pidfile, getpid()) < 0) {
		return 1;
	}
	pr_info("service: serving on %s (root%s)", ours ? address : "the socket systemd passed",
		allowed->nr ? " and the users of --allow-users" : " only");
	accept_loop(lsk, allowed);
	close(lsk);
	if (ours)	/* systemd's socket is systemd's to remove */
		unlink(address);
	return 0;
}
