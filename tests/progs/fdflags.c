/*
 * fdflags: every open file description keeps its own status flags, its
 * owner (F_SETOWN_EX, F_SETSIG, the owner's uids) and O_ASYNC; O_PATH fds
 * on symlinks, kept and deleted, come back.
 *
 *   pipe   its two ends, a dup of the write end (shares its O_NONBLOCK)
 *          and each end reopened through /proc (own descriptions, with
 *          O_LARGEFILE, which open() adds): O_NONBLOCK on the write end
 *          and on the reopened read end only
 *   file   one file opened twice: O_RDWR with O_NONBLOCK set by fcntl,
 *          and O_WRONLY|O_APPEND
 *   fifo   a FIFO's read end O_NONBLOCK, a second read end without
 *   owner  a pipe's read end owned by this process (F_SETOWN_EX, set
 *          with euid 1), signal SIGUSR2 (F_SETSIG), O_ASYNC: a write
 *          after restore must signal it, with si_fd; its write end owned
 *          by the process group
 *   link   O_PATH|O_NOFOLLOW on a symlink, and on another one then
 *          unlinked: still symlinks, pointing where they did
 *
 * Each fd's F_GETFL must be what it was before (all bits).
 *
 * test fdflags: plain restore chain leave_running
 */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>

#ifndef F_GETOWNER_UIDS
#define F_GETOWNER_UIDS 17
#endif

enum { P_R, P_W, P_WDUP, P_R2, P_W2, F_A, F_B, FIFO_R, FIFO_R2, FIFO_W, O_R, O_W, L_KEPT, L_GONE, NFDS };
static const char *names[NFDS] = { "pipe read", "pipe write", "dup of pipe write", "reopened pipe read",
				   "reopened pipe write", "file rdwr", "file append", "fifo read",
				   "fifo read 2", "fifo write", "owned read end", "owned write end",
				   "symlink", "deleted symlink" };
static int fds[NFDS], flags[NFDS];
static volatile sig_atomic_t sigio_count, sigio_fd = -1;

static void on_sigio(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	sigio_count++;
	sigio_fd = si->si_fd;
}

static int reopen(int fd, int how)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int n = open(path, how);
	if (n < 0)
		die(path);
	return n;
}

static void add_flag(int fd, int fl)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | fl) < 0)
		die("F_SETFL");
}

static void setup_pipes(void)
{
	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	fds[P_R] = p[0];
	fds[P_W] = p[1];
	fds[P_WDUP] = dup(p[1]);
	fds[P_R2] = reopen(p[0], O_RDONLY);
	fds[P_W2] = reopen(p[1], O_WRONLY);
	add_flag(fds[P_W], O_NONBLOCK);
	add_flag(fds[P_R2], O_NONBLOCK);
}

static void setup_files(void)
{
	int fd = open("two.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "0123456789", 10) != 10)
		die("two.dat");
	fds[F_A] = fd;
	add_flag(fd, O_NONBLOCK);
	if ((fds[F_B] = open("two.dat", O_WRONLY | O_APPEND)) < 0)
		die("two.dat again");
	if (mkfifo("fifo", 0600) < 0 || (fds[FIFO_R] = open("fifo", O_RDONLY | O_NONBLOCK)) < 0 ||
	    (fds[FIFO_W] = open("fifo", O_WRONLY)) < 0 || (fds[FIFO_R2] = open("fifo", O_RDONLY)) < 0)
		die("fifo");
}

static void setup_owner(void)
{
	int q[2];
	struct sigaction sa = { .sa_sigaction = on_sigio, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	if (pipe(q) < 0 || sigaction(SIGUSR2, &sa, NULL) < 0)
		die("pipe or sigaction");
	fds[O_R] = q[0];
	fds[O_W] = q[1];
	/* the kernel records the ids of whoever sets the owner */
	if (geteuid() == 0 && setresuid(-1, 1, -1) < 0)
		die("setresuid");
	struct f_owner_ex me = { F_OWNER_PID, getpid() }, grp = { F_OWNER_PGRP, getpgrp() };
	if (fcntl(q[0], F_SETOWN_EX, &me) < 0 || fcntl(q[0], F_SETSIG, SIGUSR2) < 0 ||
	    fcntl(q[1], F_SETOWN_EX, &grp) < 0)
		die("F_SETOWN_EX");
	if (getuid() == 0 && setresuid(-1, 0, -1) < 0)
		die("setresuid back");
	add_flag(q[0], O_ASYNC);
}

static void setup_links(void)
{
	if (symlink("somewhere/kept", "kept.lnk") < 0 || symlink("../elsewhere/gone", "gone.lnk") < 0)
		die("symlink");
	fds[L_KEPT] = open("kept.lnk", O_PATH | O_NOFOLLOW);
	fds[L_GONE] = open("gone.lnk", O_PATH | O_NOFOLLOW);
	if (fds[L_KEPT] < 0 || fds[L_GONE] < 0 || unlink("gone.lnk") < 0)
		die("O_PATH on a symlink");
}

static void check_link(int i, const char *target)
{
	struct stat st;
	char buf[256];
	ssize_t n = readlinkat(fds[i], "", buf, sizeof(buf) - 1);
	CHECK(fstat(fds[i], &st) == 0 && S_ISLNK(st.st_mode), "%s: fd %d is no longer on a symlink", names[i],
	      fds[i]);
	if (n >= 0)
		buf[n] = 0;
	CHECK(n >= 0 && !strcmp(buf, target), "%s: points to %s, not %s", names[i], n >= 0 ? buf : "?",
	      target);
}

static void check_owner(void)
{
	struct f_owner_ex o;
	uid_t uids[2];
	CHECK(fcntl(fds[O_R], F_GETOWN_EX, &o) == 0 && o.type == F_OWNER_PID && o.pid == getpid(),
	      "owned read end: owner %d/%d, not pid %d", o.type, o.pid, getpid());
	CHECK(fcntl(fds[O_R], F_GETSIG) == SIGUSR2, "owned read end: signal %d, not SIGUSR2",
	      fcntl(fds[O_R], F_GETSIG));
	if (getuid() == 0)
		CHECK(fcntl(fds[O_R], F_GETOWNER_UIDS, uids) == 0 && uids[0] == 0 && uids[1] == 1,
		      "owned read end: owner's uids %u/%u, not 0/1", uids[0], uids[1]);
	CHECK(fcntl(fds[O_W], F_GETOWN_EX, &o) == 0 && o.type == F_OWNER_PGRP && o.pid == getpgrp(),
	      "owned write end: owner %d/%d, not group %d", o.type, o.pid, getpgrp());
	CHECK(sigio_count == 0, "a signal of the owned pipe before it was written (%d)", (int)sigio_count);
	if (write(fds[O_W], "x", 1) != 1)
		fail("owned write end: write: %s", strerror(errno));
	for (int i = 0; i < 100 && !sigio_count; i++)
		usleep(10000);
	CHECK(sigio_count == 1 && sigio_fd == fds[O_R], "write to the owned pipe: %d signals (si_fd %d), "
	      "not one for fd %d", (int)sigio_count, (int)sigio_fd, fds[O_R]);
}

int main(void)
{
	proto_init();
	setup_pipes();
	setup_files();
	setup_owner();
	setup_links();
	for (int i = 0; i < NFDS; i++)
		flags[i] = fcntl(fds[i], F_GETFL);
	CHECK(flags[P_WDUP] & O_NONBLOCK, "setup: the dup does not share O_NONBLOCK");
	CHECK(!(flags[P_W2] & O_NONBLOCK), "setup: the reopened end shares O_NONBLOCK");
	proto_ready();
	proto_wait();
	for (int i = 0; i < NFDS; i++) {
		int now = fcntl(fds[i], F_GETFL);
		CHECK(now == flags[i], "%s (fd %d): flags %#o, were %#o", names[i], fds[i], now, flags[i]);
	}
	check_link(L_KEPT, "somewhere/kept");
	check_link(L_GONE, "../elsewhere/gone");
	check_owner();
	return proto_finish();
}
