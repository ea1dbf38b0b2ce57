/* Who the client is, pinned at accept, and the fds it hands us.
 *
 * The client is known by SO_PEERCRED and SO_PEERGROUPS (what the kernel
 * recorded at connect) and held by a pidfd, so a pid reused later can't
 * take its place. An fd the client names by number is taken from it with
 * pidfd_getfd: its own open file, with its own access mode, never a new
 * open of /proc/PID/fd/N (which would turn an O_PATH fd into a root open
 * for writing of whatever it names). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "proc/proc.h"
#include "rpc/rpc.h"
#include "util/compat.h"
#include "util/log.h"

static long long now_ticks(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	long hz = sysconf(_SC_CLK_TCK);
	return ts.tv_sec * hz + ts.tv_nsec / (1000000000 / hz);
}

/* The peer's pidfd. Kernels before 6.5 have no SO_PEERPIDFD: the pid is
 * opened by number, and must name a process that started before we
 * accepted (one that took a reused pid since is younger). The pid could
 * only have been reused between connect and accept, which takes a whole
 * cycle of the pid space. */
static int peer_pidfd(int sk, pid_t pid, long long accepted)
{
	int fd;
	socklen_t len = sizeof(fd);
	if (getsockopt(sk, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0)
		return fd;
	fd = syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -1;
	uint64_t started;
	if (proc_start_time(pid, &started) < 0 || (long long)started > accepted) {
		close(fd);
		errno = ESRCH;
		return -1;
	}
	return fd;
}

int rpc_conn_init(struct rpc_conn *c, int sk, bool swrk)
{
	long long accepted = now_ticks();
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		pr_perror("rpc: can't learn who the client is");
		return -1;
	}
	*c = (struct rpc_conn){ .sk = sk, .peer_pid = cr.pid, .peer_uid = cr.uid, .peer_gid = cr.gid,
				.swrk = swrk, .pidfd = -1 };
	len = sizeof(c->groups);
	if (getsockopt(sk, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) < 0) {
		pr_perror("rpc: can't learn the groups of client pid %d (more than %d?)", cr.pid,
			  RPC_MAX_GROUPS);
		return -1;
	}
	c->ngroups = len / sizeof(gid_t);
	c->pidfd = peer_pidfd(sk, cr.pid, accepted);
	if (c->pidfd < 0) {
		pr_perror("rpc: can't hold client pid %d", cr.pid);
		return -1;
	}
	return 0;
}

bool rpc_peer_alive(const struct rpc_conn *c)
{
	return syscall(SYS_pidfd_send_signal, c->pidfd, 0, NULL, 0) == 0;
}

/* swrk runs as its client, which may not ptrace its parent (Yama): there
 * a reopen through /proc grants nothing the client does not have. */
static int reopen_own(const struct rpc_conn *c, int n, int flags)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", c->peer_pid, n);
	int fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd >= 0 && !rpc_peer_alive(c)) {
		close(fd);
		errno = ESRCH;
		return -1;
	}
	return fd;
}

static int take_fd(const struct rpc_conn *c, int n, int reopen_flags)
{
	int fd = n < 0 ? (errno = EBADF, -1) : (int)syscall(SYS_pidfd_getfd, c->pidfd, n, 0);
	if (fd < 0 && c->swrk && n >= 0 && geteuid() == c->peer_uid)
		fd = reopen_own(c, n, reopen_flags);
	return fd;
}

int rpc_take_dir(const struct rpc_conn *c, int n, const char *what)
{
	struct stat st;
	int fd = take_fd(c, n, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		pr_perror("rpc: can't take the client's %s %d", what, n);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		pr_err("rpc: the client's %s %d is not a directory", what, n);
		close(fd);
		errno = ENOTDIR;
		return -1;
	}
	return fd;
}

/* An fd we only write a byte to: it must be open for writing (an O_PATH
 * fd writes nothing). */
int rpc_take_writable(const struct rpc_conn *c, int n, const char *what)
{
	int fd = take_fd(c, n, O_WRONLY);
	if (fd < 0) {
		pr_perror("rpc: can't take the client's %s %d", what, n);
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_PATH) || (fl & O_ACCMODE) == O_RDONLY) {
		pr_err("rpc: the client's %s %d is not open for writing", what, n);
		close(fd);
		errno = EBADF;
		return -1;
	}
	return fd;
}

/* What makes fd unfit to carry a dump's pages, or NULL. A client we lend
 * root gets TCP only: on a unix socket each write would carry our
 * credentials to a peer that asks for them (SO_PASSCRED), root's, to a
 * peer the client chose. */
static const char *stream_socket_flaw(int fd, bool tcp_only)
{
	struct stat st;
	struct sockaddr_storage peer;
	int type = 0, listening = 0;
	socklen_t len = sizeof(type), len2 = sizeof(listening), plen = sizeof(peer);

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return "is not a socket connected to the page server";
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return "is not a stream socket connected to the page server";
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len2) < 0 || listening)
		return "is a listening socket, not a connection to the page server";
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
		return "is not connected (connect it to the page server first)";
	if (tcp_only && peer.ss_family != AF_INET && peer.ss_family != AF_INET6)
		return "is not a TCP connection (a unix socket's peer would get root's credentials with our writes)";
	return NULL;
}

/* A socket is taken only with pidfd_getfd (a socket can't be reopened).
 * swrk may be refused that by Yama (a child may not ptrace its parent):
 * the number then means swrk's own fd, inherited from the client, which
 * is what it means to CRIU's swrk. */
int rpc_take_stream_socket(const struct rpc_conn *c, int n, const char *what)
{
	int fd = n < 0 ? (errno = EBADF, -1) : (int)syscall(SYS_pidfd_getfd, c->pidfd, n, 0);
	if (fd < 0 && errno == EPERM && c->swrk && n > STDERR_FILENO)
		fd = fcntl(n, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		pr_perror("rpc: can't take the client's %s %d", what, n);
		return -1;
	}
	const char *flaw = stream_socket_flaw(fd, rpc_lends_root(c));
	if (flaw) {
		pr_err("rpc: the client's %s %d %s", what, n, flaw);
		close(fd);
		errno = ENOTCONN;
		return -1;
	}
	return fd;
}

/* Whether serving the client is done with more than its own rights (a
 * root service, a non-root client): then everything is checked, and its
 * files are made by the broker. swrk started by a user is that user. */
bool rpc_lends_root(const struct rpc_conn *c)
{
	return geteuid() == 0 && c->peer_uid != 0;
}

bool rpc_uid_allowed(const struct rpc_conn *c)
{
	if (c->peer_uid == 0 || c->swrk)
		return true;
	for (int i = 0; c->allowed && i < c->allowed->nr; i++)
		if (c->allowed->uids[i] == c->peer_uid)
			return true;
	return false;
}
