/* Output helpers shared by the bench's target programs: they write with
 * write(2) (never stdio buffers, which a dump would carry along). */
#ifndef BENCH_HOG_H
#define BENCH_HOG_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += n;
		len -= (size_t)n;
	}
}

static inline void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 1;
	if (n > 0)
		write_all(1, buf, (size_t)n);
}

/* The one option of a target that takes a count, -n N (at least 2):
 * N, or -1 after saying how it is used (the caller exits 2). */
static inline long hog_count(int argc, char **argv, long n, const char *prog, const char *what)
{
	int opt;
	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n') {
			say("usage: %s [-n %s]\n", prog, what);
			return -1;
		}
		n = atol(optarg);
	}
	if (n < 2) {
		say("%s: bad -n\n", prog);
		return -1;
	}
	return n;
}

#endif
