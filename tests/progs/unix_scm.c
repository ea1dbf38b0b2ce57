/*
 * unix_scm: files in flight. Messages carrying fds (SCM_RIGHTS) wait in
 * the queues of unix sockets of the three types; after restore each
 * queue must read back byte-exact, in order, with the fds at the same
 * messages, and every fd received must work:
 *  - datagram: the read end of a pipe that only the queue holds (its
 *    unread bytes come too, and the write end the program kept still
 *    feeds it), a plain message, an eventfd only in flight (its count),
 *    an epoll only in flight watching a socket of the program (its target
 *    and data come back);
 *  - seqpacket: one message with two fds: a regular file also open in
 *    the program (one open file description: same offset, kcmp) and a
 *    memfd only in flight (its bytes);
 *  - stream: bytes, bytes with a socket whose own queue holds bytes and
 *    a pipe in flight (a socket in flight, nested), bytes; the received
 *    socket still talks to its peer, which the program kept.
 * CRIU restores all of it too (unix.criu_interop.scm).
 *
 * test unix.scm: plain restore chain leave_running
 */
#define _GNU_SOURCE
#include "unix_common.h"

#include <linux/kcmp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static void send_fds(int sk, const char *msg, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)] = { 0 };
	struct iovec iov = { (void *)msg, strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	if (sendmsg(sk, &mh, 0) != (ssize_t)strlen(msg))
		die("sendmsg");
}

/* One recvmsg: its bytes in buf (NUL-terminated), fds in fds; the number
 * of fds, or -1. */
static int recv_fds(int sk, char *buf, size_t len, int *fds, int max)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { buf, len - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t r = recvmsg(sk, &mh, MSG_DONTWAIT);
	if (r < 0)
		return -1;
	buf[r] = 0;
	int n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) && n < max; i++)
				memcpy(&fds[n++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	CHECK(!(mh.msg_flags & MSG_CTRUNC), "control data truncated");
	return n;
}

static void expect_read(int fd, const char *want, const char *what)
{
	char buf[64] = { 0 };
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, n), "%s: read %zd bytes '%s', want '%s'", what,
	      n, n > 0 ? buf : "", want);
}

static int dg[2], sp[2], st[2], pipe_w, reg, nested_peer;

static void setup_dgram(void)
{
	int p[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) < 0 || pipe(p) < 0)
		die("dgram setup");
	write_all(p[1], "through-the-pipe", 16);
	send_fds(dg[0], "pipe-msg", &p[0], 1);
	close(p[0]);	/* in flight only */
	pipe_w = p[1];
	send_fds(dg[0], "plain-1", NULL, 0);
	int efd = eventfd(42, 0);
	if (efd < 0)
		die("eventfd");
	send_fds(dg[0], "efd", &efd, 1);
	close(efd);
}

/* After setup_seqpacket: watches its receiving end, which holds "two". */
static void send_epoll(void)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 77 };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sp[1], &ev) < 0)
		die("epoll");
	send_fds(dg[0], "ep", &ep, 1);
	close(ep);
}

static void check_dgram(void)
{
	char buf[64];
	int fds[8];
	int n = recv_fds(dg[1], buf, sizeof(buf), fds, 8);
	CHECK(n == 1 && !strcmp(buf, "pipe-msg"), "dgram: first message '%s' with %d fds", buf, n);
	if (n == 1) {
		expect_read(fds[0], "through-the-pipe", "dgram: the pipe in flight");
		write_all(pipe_w, "after", 5);
		expect_read(fds[0], "after", "dgram: the pipe in flight, fed after restore");
	}
	n = recv_fds(dg[1], buf, sizeof(buf), fds, 8);
	CHECK(n == 0 && !strcmp(buf, "plain-1"), "dgram: second message '%s' with %d fds", buf, n);
	n = recv_fds(dg[1], buf, sizeof(buf), fds, 8);
	CHECK(n == 1 && !strcmp(buf, "efd"), "dgram: third message '%s' with %d fds", buf, n);
	if (n == 1) {
		uint64_t v = 0;
		CHECK(read(fds[0], &v, 8) == 8 && v == 42, "dgram: the eventfd in flight counts %llu",
		      (unsigned long long)v);
	}
	n = recv_fds(dg[1], buf, sizeof(buf), fds, 8);
	CHECK(n == 1 && !strcmp(buf, "ep"), "dgram: fourth message '%s' with %d fds", buf, n);
	if (n == 1) {
		struct epoll_event ev = { 0 };
		int r = epoll_wait(fds[0], &ev, 1, 0);
		CHECK(r == 1 && ev.data.u64 == 77 && (ev.events & EPOLLIN),
		      "dgram: the epoll in flight sees %d events (data %llu), want its socket ready", r,
		      (unsigned long long)ev.data.u64);
	}
	expect_empty(dg[1], "dgram");
}

static void setup_seqpacket(void)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) < 0)
		die("seqpacket setup");
	reg = open("scm-file", O_RDWR | O_CREAT | O_TRUNC, 0600);
	int mfd = memfd_create("scm-memfd", 0);
	if (reg < 0 || mfd < 0)
		die("open");
	write_all(reg, "0123456789", 10);
	lseek(reg, 5, SEEK_SET);
	write_all(mfd, "memfd-data", 10);
	int fds[2] = { reg, mfd };
	send_fds(sp[0], "two", fds, 2);
	close(mfd);
}

static void check_seqpacket(void)
{
	char buf[64];
	int fds[8];
	int n = recv_fds(sp[1], buf, sizeof(buf), fds, 8);
	CHECK(n == 2 && !strcmp(buf, "two"), "seqpacket: message '%s' with %d fds", buf, n);
	if (n != 2)
		return;
	CHECK(lseek(fds[0], 0, SEEK_CUR) == 5, "seqpacket: the file in flight is at %ld, not 5",
	      (long)lseek(fds[0], 0, SEEK_CUR));
	long r = syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, reg, fds[0]);
	CHECK(r == 0, "seqpacket: the file in flight is not the program's open file any more (kcmp %ld)", r);
	expect_read(fds[0], "56789", "seqpacket: the file in flight");
	char m[16] = { 0 };
	CHECK(pread(fds[1], m, sizeof(m) - 1, 0) == 10 && !strcmp(m, "memfd-data"),
	      "seqpacket: the memfd in flight holds '%s'", m);
	expect_empty(sp[1], "seqpacket");
}

static void setup_stream(void)
{
	int x[2], q[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, x) < 0 ||
	    pipe(q) < 0)
		die("stream setup");
	send_fds(st[0], "abc", NULL, 0);
	write_all(q[1], "deep", 4);
	send_fds(x[1], "nested", &q[0], 1);
	send_fds(st[0], "def", &x[0], 1);	/* x[0] in flight, holding bytes and the pipe */
	close(x[0]);
	close(q[0]);
	close(q[1]);
	nested_peer = x[1];
	send_fds(st[0], "ghi", NULL, 0);
}

static void check_stream(void)
{
	char got[16] = { 0 }, buf[16];
	int fds[8], nfds = 0, len = 0;
	for (int spins = 0; len < 9 && spins < 100; spins++) {
		int n = recv_fds(st[1], buf, sizeof(buf), fds + nfds, 8 - nfds);
		if (n < 0)
			break;
		if (len + strlen(buf) >= sizeof(got))
			break;
		memcpy(got + len, buf, strlen(buf));
		len += strlen(buf);
		nfds += n;
	}
	CHECK(len == 9 && !memcmp(got, "abcdefghi", 9), "stream: read '%s', want 'abcdefghi'", got);
	CHECK(nfds == 1, "stream: %d fds received, want 1", nfds);
	expect_empty(st[1], "stream");
	if (nfds != 1)
		return;
	int q;
	int n = recv_fds(fds[0], buf, sizeof(buf), &q, 1);
	CHECK(n == 1 && !strcmp(buf, "nested"), "stream: the socket in flight holds '%s' with %d fds", buf, n);
	if (n == 1)
		expect_read(q, "deep", "stream: the pipe in flight in the socket in flight");
	send_all(fds[0], "back", 4, "stream: the socket in flight");
	char b[8] = { 0 };
	CHECK(recv_all(nested_peer, b, 4) == 0 && !strcmp(b, "back"),
	      "stream: the socket in flight no longer talks to its peer ('%s')", b);
}

int main(void)
{
	proto_init();
	setup_dgram();
	setup_seqpacket();
	send_epoll();
	setup_stream();
	proto_ready();
	proto_wait();
	check_dgram();
	check_seqpacket();
	check_stream();
	return proto_finish();
}
