/* tcphog: benchmark target for bench.sh (case tcp).
 *
 *   tcphog [-n CONNS] [-b BYTES]     (defaults 1000, 1024)
 *
 * One process holding CONNS established TCP connections on loopback, both
 * ends of each in the process (2 x CONNS sockets, plus their listener):
 * each end has sent BYTES (a pattern of the connection's number and the
 * byte's index) that the other has not read, so every connection has
 * data in its queues at the dump. Writes "READY CONNS\n" to stdout, then
 * sleeps in a pause() loop.
 *
 * On SIGUSR1 every end reads its BYTES and checks them, then each
 * connection carries one more message each way, and "VERIFY OK CONNS\n"
 * or "VERIFY BAD conn N ...\n" is appended to stdout; after that the
 * check can't be repeated (the queues are read).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hog.h"

static volatile sig_atomic_t verify_requested;

static void on_usr1(int sig)
{
	(void)sig;
	verify_requested = 1;
}

static unsigned char pattern(int conn, int side, size_t i)
{
	return (unsigned char)(conn * 7u + side * 101u + i * 13u);
}

static int send_all(int fd, const unsigned char *b, size_t len)
{
	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, unsigned char *b, size_t len)
{
	while (len) {
		ssize_t n = recv(fd, b, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The BYTES side `side` of connection c sent, read from fd and checked. */
static int check_side(int fd, int c, int side, unsigned char *buf, size_t bytes)
{
	if (recv_all(fd, buf, bytes) < 0)
		return -1;
	for (size_t i = 0; i < bytes; i++)
		if (buf[i] != pattern(c, side, i))
			return -1;
	return 0;
}

static int verify(const int *cl, const int *sv, int conns, size_t bytes)
{
	unsigned char *buf = malloc(bytes + 16);
	int bad = 0;

	if (!buf)
		return conns;
	for (int c = 0; c < conns; c++) {
		unsigned char m[16], r[16];
		int len = snprintf((char *)m, sizeof(m), "ping %d", c);
		if (check_side(sv[c], c, 0, buf, bytes) < 0 || check_side(cl[c], c, 1, buf, bytes) < 0 ||
		    send_all(cl[c], m, len) < 0 || recv_all(sv[c], r, len) < 0 || memcmp(m, r, len) ||
		    send_all(sv[c], m, len) < 0 || recv_all(cl[c], r, len) < 0 || memcmp(m, r, len)) {
			if (!bad)
				say("VERIFY BAD conn %d\n", c);
			bad++;
		}
	}
	free(buf);
	return bad;
}

int main(int argc, char **argv)
{
	int conns = 1000, opt;
	size_t bytes = 1024;

	while ((opt = getopt(argc, argv, "n:b:")) != -1) {
		if (opt == 'n')
			conns = atoi(optarg);
		else if (opt == 'b')
			bytes = strtoul(optarg, NULL, 10);
		else {
			say("usage: tcphog [-n CONNS] [-b BYTES]\n");
			return 2;
		}
	}
	if (conns < 1 || bytes < 1 || bytes > (1 << 16)) {
		say("tcphog: bad -n or -b\n");
		return 2;
	}
	syscall(SYS_close_range, 3, ~0U, 0);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns * 2 + 16) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGUSR1, on_usr1);

	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 128) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0) {
		say("tcphog: listener: %s\n", strerror(errno));
		return 1;
	}
	int *cl = calloc(conns, sizeof(int)), *sv = calloc(conns, sizeof(int));
	unsigned char *buf = malloc(bytes);
	if (!cl || !sv || !buf)
		return 1;
	for (int c = 0; c < conns; c++) {
		cl[c] = socket(AF_INET, SOCK_STREAM, 0);
		if (cl[c] < 0 || connect(cl[c], (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    (sv[c] = accept(l, NULL, NULL)) < 0) {
			say("tcphog: connection %d: %s\n", c, strerror(errno));
			return 1;
		}
		for (int side = 0; side < 2; side++) {
			for (size_t i = 0; i < bytes; i++)
				buf[i] = pattern(c, side, i);
			if (send_all(side ? sv[c] : cl[c], buf, bytes) < 0) {
				say("tcphog: connection %d: send: %s\n", c, strerror(errno));
				return 1;
			}
		}
	}
	free(buf);
	usleep(200000);	/* the delayed acknowledgements sent */
	say("READY %d\n", conns);
	for (;;) {
		pause();
		if (verify_requested) {
			verify_requested = 0;
			int bad = verify(cl, sv, conns, bytes);
			if (bad)
				say("VERIFY BAD %d of %d connections\n", bad, conns);
			else
				say("VERIFY OK %d\n", conns);
		}
	}
}
