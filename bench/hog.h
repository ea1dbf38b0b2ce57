/* Output helpers shared by the bench's target programs: they write with
 * write(2) (never stdio buffers, which a dump would carry along). */
#ifndef BENCH_HOG_H
#define BENCH_HOG_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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

#endif
