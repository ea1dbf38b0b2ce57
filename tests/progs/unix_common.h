/* Helpers of the unix socket test programs (unix_*.c). */
#ifndef STASIS_TEST_UNIX_COMMON_H
#define STASIS_TEST_UNIX_COMMON_H

#include "common.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

/* Deterministic bytes for message `seed`. */
static inline void pattern(unsigned char *buf, size_t len, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 12345;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345;
		buf[i] = x >> 16;
	}
}

static inline socklen_t un_addr(struct sockaddr_un *a, const char *name, int abstract)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (abstract) {
		snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "%s", name);
		return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	}
	snprintf(a->sun_path, sizeof(a->sun_path), "%s", name);
	return offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1;
}

static inline int un_socket(int type, const char *bind_to, int abstract)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0)
		die("socket");
	if (bind_to) {
		socklen_t l = un_addr(&a, bind_to, abstract);
		if (!abstract)
			unlink(bind_to);
		if (bind(fd, (struct sockaddr *)&a, l) < 0)
			die("bind");
	}
	return fd;
}

static inline int un_connect(int fd, const char *name, int abstract)
{
	struct sockaddr_un a;
	socklen_t l = un_addr(&a, name, abstract);
	return connect(fd, (struct sockaddr *)&a, l);
}

static inline void send_all(int fd, const void *buf, size_t len, const char *what)
{
	const char *p = buf;
	do {	/* once at least: an empty datagram is a message too */
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("%s: send: %s", what, strerror(errno));
			return;
		}
		p += n;
		len -= n;
	} while (len);
}

/* Reads exactly len bytes of a stream (blocking; the fd's O_NONBLOCK is
 * worked around with poll-free retries). Returns 0 if all came. */
static inline int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	for (int spins = 0; len;) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			if (++spins > 5000)
				return -1;
			usleep(1000);
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* One message of a datagram/seqpacket socket must be exactly `len`
 * bytes of pattern(seed). */
static inline void expect_msg(int fd, size_t len, unsigned seed, const char *what)
{
	static unsigned char got[70000], want[70000];
	ssize_t n;
	int spins = 0;
	while ((n = recv(fd, got, sizeof(got), 0)) < 0 && (errno == EINTR || errno == EAGAIN) && ++spins < 5000)
		usleep(1000);
	pattern(want, len, seed);
	if (n < 0)
		fail("%s: recv: %s", what, strerror(errno));
	else if ((size_t)n != len)
		fail("%s: message of %zd bytes, expected %zu (boundaries lost?)", what, n, len);
	else if (memcmp(got, want, len))
		fail("%s: message of %zu bytes has other bytes", what, len);
}

static inline void expect_stream(int fd, size_t len, unsigned seed, const char *what)
{
	unsigned char *got = malloc(len), *want = malloc(len);
	pattern(want, len, seed);
	if (recv_all(fd, got, len) < 0)
		fail("%s: could not read %zu bytes: %s", what, len, strerror(errno));
	else if (memcmp(got, want, len))
		fail("%s: the %zu bytes read differ", what, len);
	free(got);
	free(want);
}

static inline void send_pattern(int fd, size_t len, unsigned seed, const char *what)
{
	unsigned char *b = malloc(len ? len : 1);
	pattern(b, len, seed);
	send_all(fd, b, len, what);
	free(b);
}

/* Nothing more may be queued. */
static inline void expect_empty(int fd, const char *what)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
	CHECK(n < 0 && errno == EAGAIN, "%s: more data queued than was sent (recv %zd)", what, n);
}

static inline void sync_write(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		die("sync write");
}

static inline void sync_read(int fd, char c)
{
	char g;
	if (read(fd, &g, 1) != 1 || g != c)
		die("sync read");
}

/* Waits for child and folds its result into ours. */
static inline void reap(pid_t child)
{
	int st;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed (status %#x)", child, st);
}

#endif
