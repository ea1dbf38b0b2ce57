/*
 * fdslots: hundreds of unix sockets (stream and datagram socketpairs,
 * connections to a listener, every other pair with a byte queued each
 * way), restored in place, also with the restore's log on stderr (the
 * stderr_log scenario: no -o, one fd fewer in the tool).
 *
 * Why: the restore opens each file at the lowest free fd and moves it to
 * its slot (a mapping's, the pool's); a file opened right at its slot was
 * closed by that move. This program run by hand in a shell and restored
 * without -o hit it (mmap of a mapping: EBADF); under the runner the
 * numbers differ and it passed either way, so this is a guard for the
 * log-on-stderr path more than a reproducer (bench.sh -c unix is one).
 *
 * test fdslots: plain restore stderr_log
 */
#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#define NFDS 600

enum { SK_A, SK_B, DGRAM_A, DGRAM_B, CONN_A, CONN_B, KINDS };
static int fds[NFDS], kind[NFDS];
static struct sockaddr_un addr = { .sun_family = AF_UNIX };
static socklen_t addr_len;
static int listener;

/* every other socket pair has nothing queued (made another way) */
static bool queued(int i)
{
	return i / KINDS % 2 == 0;
}

static int connect_pair(int two[2])
{
	two[0] = socket(AF_UNIX, SOCK_STREAM, 0);
	if (two[0] < 0 || connect(two[0], (struct sockaddr *)&addr, addr_len) < 0)
		return -1;
	two[1] = accept(listener, NULL, NULL);
	return two[1] < 0 ? -1 : 0;
}

static void setup(void)
{
	addr_len = offsetof(struct sockaddr_un, sun_path) + 1 +
		   snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "fdslots.%d", getpid());
	listener = socket(AF_UNIX, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, addr_len) < 0 || listen(listener, 16) < 0)
		die("listener");
	for (int i = 0; i + 1 < NFDS; i += 2) {
		int two[2];
		unsigned char b = (unsigned char)i;
		kind[i] = i % KINDS;
		kind[i + 1] = kind[i] + 1;
		if ((kind[i] == CONN_A ? connect_pair(two) :
		     socketpair(AF_UNIX, kind[i] == SK_A ? SOCK_STREAM : SOCK_DGRAM, 0, two)) < 0 ||
		    (queued(i) && (write(two[0], &b, 1) != 1 || write(two[1], &b, 1) != 1)))
			die("socket");
		fds[i] = two[0];
		fds[i + 1] = two[1];
	}
}

static void check(void)
{
	for (int i = 0; i + 1 < NFDS; i += 2) {
		unsigned char b = 0, want = (unsigned char)i;
		for (int k = 0; k < 2; k++) {
			CHECK(!queued(i) || (read(fds[i + k], &b, 1) == 1 && b == want),
			      "fd %d (kind %d): queued byte %u, want %u", fds[i + k], kind[i], b, want);
			CHECK(write(fds[i + k], &b, 1) == 1 && read(fds[i + 1 - k], &b, 1) == 1,
			      "fd %d (kind %d): does not carry a byte to its peer", fds[i + k], kind[i]);
		}
	}
}

int main(void)
{
	proto_init();
	syscall(SYS_close_range, 3, ~0U, 0);	/* no fd of the harness's between ours */
	setup();
	proto_ready();
	proto_wait();
	check();
	return proto_finish();
}
