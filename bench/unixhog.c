/* unixhog: many-unix-sockets target for bench.sh (case unix).
 *
 *   unixhog [-n SOCKETS]     (default 10000)
 *
 * One process holding SOCKETS unix sockets (SOCKETS/2 connected pairs,
 * plus a listener), in turn:
 *   - a stream socketpair,
 *   - a datagram socketpair,
 *   - a stream connection to the process's listener (abstract name
 *     "\0unixhog.PID"), both ends kept;
 * every other pair has a message of its number queued each way, the
 * others none. The soft fd limit is raised to the hard one. Writes
 * "READY SOCKETS\n", then sleeps in a pause() loop.
 *
 * On SIGUSR1 it reads and checks each queued message, then sends one more
 * each way through every pair, and appends "VERIFY OK SOCKETS\n" or
 * "VERIFY BAD ...\n". Once only: the queues are read then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "hog.h"

static volatile sig_atomic_t verify_requested;

static void on_usr1(int sig)
{
	(void)sig;
	verify_requested = 1;
}

static int msg(char *b, size_t len, int pair, int side, const char *what)
{
	return snprintf(b, len, "%s %d side %d", what, pair, side);
}

/* sends what pair's side says, then reads it at the other end */
static int exchange(int from, int to, int pair, int side, const char *what, int send_it)
{
	char m[64], r[64];
	int len = msg(m, sizeof(m), pair, side, what);
	if (send_it && send(from, m, len, MSG_NOSIGNAL) != len)
		return -1;
	ssize_t got = recv(to, r, sizeof(r), MSG_DONTWAIT);
	return got == len && !memcmp(m, r, len) ? 0 : -1;
}

static int verify(int (*p)[2], int pairs)
{
	int bad = 0;
	for (int i = 0; i < pairs; i++) {
		int queued = i % 2 == 0;
		if ((queued && (exchange(p[i][0], p[i][1], i, 0, "queued", 0) < 0 ||
				exchange(p[i][1], p[i][0], i, 1, "queued", 0) < 0)) ||
		    exchange(p[i][0], p[i][1], i, 0, "ping", 1) < 0 || exchange(p[i][1], p[i][0], i, 1, "ping", 1) < 0) {
			if (!bad)
				say("VERIFY BAD pair %d (kind %d)\n", i, i % 3);
			bad++;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	long count = hog_count(argc, argv, 10000, "unixhog", "SOCKETS");
	if (count < 0)
		return 2;
	int n = (int)count;
	syscall(SYS_close_range, 3, ~0U, 0);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGUSR1, on_usr1);

	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int alen = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "unixhog.%d", getpid()) + 1 +
		   (int)offsetof(struct sockaddr_un, sun_path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, alen) < 0 || listen(l, 128) < 0) {
		say("unixhog: listener: %s\n", strerror(errno));
		return 1;
	}
	int pairs = n / 2;
	int (*p)[2] = calloc(pairs, sizeof(*p));
	if (!p)
		return 1;
	for (int i = 0; i < pairs; i++) {
		int r;
		switch (i % 3) {
		case 0:
			r = socketpair(AF_UNIX, SOCK_STREAM, 0, p[i]);
			break;
		case 1:
			r = socketpair(AF_UNIX, SOCK_DGRAM, 0, p[i]);
			break;
		default:
			p[i][0] = socket(AF_UNIX, SOCK_STREAM, 0);
			r = p[i][0] < 0 || connect(p[i][0], (struct sockaddr *)&a, alen) < 0 ||
			    (p[i][1] = accept(l, NULL, NULL)) < 0 ? -1 : 0;
		}
		if (r < 0) {
			say("unixhog: pair %d: %s\n", i, strerror(errno));
			return 1;
		}
		char m[64];
		for (int side = 0; side < 2 && i % 2 == 0; side++) {
			int len = msg(m, sizeof(m), i, side, "queued");
			if (send(p[i][side], m, len, MSG_NOSIGNAL) != len) {
				say("unixhog: pair %d: send: %s\n", i, strerror(errno));
				return 1;
			}
		}
	}
	say("READY %d\n", n);
	for (;;) {
		pause();
		if (verify_requested) {
			verify_requested = 0;
			int bad = verify(p, pairs);
			if (bad)
				say("VERIFY BAD %d of %d pairs\n", bad, pairs);
			else
				say("VERIFY OK %d\n", n);
		}
	}
}
