/*
 * unix_echo FD: echoes what comes on socket FD (one end of a socketpair
 * whose other end is held outside the tree) until "quit", then prints
 * PASS. Restored with --inherit-fd fd[N]:socket:[INODE], FD is the new
 * socket the restorer gave it.
 */
#include "unix_common.h"

int main(int argc, char **argv)
{
	char buf[256];
	int fd = argc > 1 ? atoi(argv[1]) : 3;

	proto_init();
	proto_ready();
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fail("recv on fd %d: %s", fd, n ? strerror(errno) : "EOF");
			return proto_finish();
		}
		if (n >= 4 && !memcmp(buf + n - 4, "quit", 4))
			return proto_finish();
		send_all(fd, buf, n, "echo");
	}
}
