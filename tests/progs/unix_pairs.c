/*
 * unix_pairs: socketpairs of the three types between a parent and its
 * child, with messages queued both ways, must come back byte-exact with
 * their boundaries, and keep talking. Also: a stream pair shut down for
 * writing on one side (data then EOF; EPIPE on the other), options
 * (SO_RCVBUF, SO_PASSCRED, O_NONBLOCK), one socket shared by parent
 * and child across fork (still one open file: kcmp), and a stream pair
 * whose child end wrote and closed (data, then EOF, in the parent).
 */
#include "unix_common.h"

#include <linux/kcmp.h>
#include <sys/syscall.h>

#define NT 3
#define NM 6
static const int types[NT] = { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET };
static const char *tname[NT] = { "stream", "dgram", "seqpacket" };
static const size_t sizes[NM] = { 1, 10, 0, 1000, 30000, 7 };	/* 0: an empty datagram */
static int like_criu;	/* for the CRIU interop test: what CRIU can't do is left out */

static int sp[NT][2], sh[2], cl[2];

static unsigned seed(int dir, int t, int i)
{
	return dir * 1000 + t * 100 + i;
}

static void send_queue(int side, int dir)
{
	for (int t = 0; t < NT; t++)
		for (int i = 0; i < NM; i++)
			if (sizes[i] || !like_criu)	/* CRIU's dump stops at an empty one */
				send_pattern(sp[t][side], sizes[i], seed(dir, t, i), tname[t]);
}

static void check_queue(int side, int dir, const char *who)
{
	char what[64];
	for (int t = 0; t < NT; t++) {
		snprintf(what, sizeof(what), "%s %s", who, tname[t]);
		if (types[t] == SOCK_STREAM) {
			size_t total = 0;
			for (int i = 0; i < NM; i++)
				total += sizes[i];
			unsigned char *got = malloc(total), *want = malloc(total), *w = want;
			for (int i = 0; i < NM; i++) {
				pattern(w, sizes[i], seed(dir, t, i));
				w += sizes[i];
			}
			if (recv_all(sp[t][side], got, total) < 0)
				fail("%s: could not read the %zu queued bytes", what, total);
			else
				CHECK(!memcmp(got, want, total), "%s: queued bytes differ", what);
			free(got);
			free(want);
		} else {
			for (int i = 0; i < NM; i++)
				if (sizes[i] || !like_criu)
					expect_msg(sp[t][side], sizes[i], seed(dir, t, i), what);
		}
	}
}

/* After the queues: one more message each way on each pair (right
 * after the queue, so a byte too many in it shows here). */
static void talk(int side, const char *who)
{
	char what[64];
	for (int t = 0; t < NT; t++) {
		snprintf(what, sizeof(what), "%s %s after restore", who, tname[t]);
		send_pattern(sp[t][side], 333, 7000 + side * 10 + t, what);
	}
	for (int t = 0; t < NT; t++) {
		snprintf(what, sizeof(what), "%s %s after restore", who, tname[t]);
		if (types[t] == SOCK_STREAM)
			expect_stream(sp[t][side], 333, 7000 + (1 - side) * 10 + t, what);
		else
			expect_msg(sp[t][side], 333, 7000 + (1 - side) * 10 + t, what);
	}
}

static int child_main(int ready)
{
	int v = 1;
	close(sp[1][0]);
	close(sp[2][0]);	/* keeps sp[0][0], shared with the parent */
	close(sh[0]);
	close(cl[0]);
	send_all(cl[1], "last-words", 10, "closed pair");
	close(cl[1]);
	int passcred = !like_criu;	/* CRIU can't dump queued credentials */
	if (passcred && setsockopt(sp[1][1], SOL_SOCKET, SO_PASSCRED, &v, sizeof(v)) < 0)
		die("SO_PASSCRED");
	send_queue(1, 2);
	send_all(sh[1], "bye-data", 8, "shutdown pair");
	if (shutdown(sh[1], SHUT_WR) < 0)
		die("shutdown");
	sync_write(ready, 'c');
	close(ready);
	proto_wait();

	check_queue(1, 1, "child");
	talk(1, "child");
	socklen_t l = sizeof(v);
	v = 0;
	CHECK(!getsockopt(sp[1][1], SOL_SOCKET, SO_PASSCRED, &v, &l) && v == passcred, "child: SO_PASSCRED lost");
	CHECK(send(sh[1], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE,
	      "child: the shut down socket can still send");
	long r = syscall(SYS_kcmp, getpid(), getppid(), KCMP_FILE, sp[0][0], sp[0][0]);
	CHECK(r == 0, "child: the stream end shared with the parent is not one open file any more (kcmp %ld)", r);
	return failures ? 1 : 0;
}

int main(void)
{
	int sync[2], rcvbuf = 100000, before = 0;
	socklen_t l = sizeof(before);

	proto_init();
	like_criu = getenv("UNIX_LIKE_CRIU") != NULL;
	for (int t = 0; t < NT; t++)
		if (socketpair(AF_UNIX, types[t], 0, sp[t]) < 0)
			die("socketpair");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sh) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, cl) < 0 ||
	    pipe(sync) < 0)
		die("socketpair");
	if (setsockopt(sp[0][0], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0 ||
	    getsockopt(sp[0][0], SOL_SOCKET, SO_RCVBUF, &before, &l) < 0)
		die("SO_RCVBUF");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(sync[0]);
		_exit(child_main(sync[1]));
	}
	close(sync[1]);
	for (int t = 0; t < NT; t++)
		close(sp[t][1]);
	close(sh[1]);
	close(cl[1]);
	send_queue(0, 1);
	sync_read(sync[0], 'c');
	close(sync[0]);
	if (fcntl(sp[2][0], F_SETFL, O_NONBLOCK) < 0)
		die("O_NONBLOCK");
	proto_ready();
	proto_wait();

	kill(child, SIGUSR1);
	CHECK(fcntl(sp[2][0], F_GETFL) & O_NONBLOCK, "parent: O_NONBLOCK lost");
	int after = 0;
	l = sizeof(after);
	CHECK(!getsockopt(sp[0][0], SOL_SOCKET, SO_RCVBUF, &after, &l) && after == before,
	      "parent: SO_RCVBUF is %d, was %d", after, before);
	check_queue(0, 2, "parent");
	talk(0, "parent");
	char buf[16] = { 0 };
	CHECK(recv_all(sh[0], buf, 8) == 0 && !memcmp(buf, "bye-data", 8), "parent: data before the shutdown lost");
	CHECK(recv(sh[0], buf, 1, 0) == 0, "parent: no EOF after the peer's shutdown");
	CHECK(recv_all(cl[0], buf, 10) == 0 && !memcmp(buf, "last-words", 10), "parent: the closed peer's data lost");
	CHECK(recv(cl[0], buf, 1, 0) == 0, "parent: no EOF after the peer closed");
	CHECK(send(cl[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "parent: can send to a closed peer");
	reap(child);
	return proto_finish();
}
