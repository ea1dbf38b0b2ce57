/*
 * common.h - the protocol every Stasis test program follows.
 *
 *   1. set up the state under test;
 *   2. proto_ready():   write "READY\n" to stdout;
 *   3. proto_wait():    wait until SIGUSR1 arrives (the harness dumps and
 *                       restores us in between);
 *   4. check the state with CHECK()/fail();
 *   5. return proto_finish(): prints "PASS" (exit 0) or the FAIL lines (exit 1).
 *
 * stdout is a regular file owned by the harness.  We never use stdio for it:
 * a buffered "READY" could sit in memory across the dump, and we want every
 * line on disk the moment it is produced.
 */
#ifndef STASIS_TEST_COMMON_H
#define STASIS_TEST_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t go_flag;
static int failures;

/* Write the whole buffer, retrying on EINTR (a restore may interrupt us). */
static inline void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static inline void say(const char *s)
{
	write_all(1, s, strlen(s));
}

static inline void sayf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void sayf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say(buf);
}

/* Record one broken expectation.  Only the first few are printed so a
 * completely trashed address space does not flood the output file. */
static inline void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void fail(const char *fmt, ...)
{
	char buf[900];
	va_list ap;

	if (++failures > 20)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sayf("FAIL: %s\n", buf);
}

#define CHECK(cond, ...)                  \
	do {                              \
		if (!(cond))              \
			fail(__VA_ARGS__); \
	} while (0)

/* Setup went wrong before READY: nothing meaningful can be tested. */
static inline void die(const char *what)
{
	sayf("FAIL: setup: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void proto_on_sigusr1(int sig)
{
	(void)sig;
	go_flag = 1;
}

/* Install the SIGUSR1 handler.  SIGUSR1 stays unblocked, so programs that
 * poll go_flag themselves (writer, vector_regs) can use it directly. */
static inline void proto_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = proto_on_sigusr1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		die("sigaction(SIGUSR1)");
}

static inline void proto_ready(void)
{
	say("READY\n");
}

/*
 * Sleep until the harness sends SIGUSR1.  SIGUSR1 is blocked outside
 * sigsuspend() so it cannot slip in between the flag test and the sleep.
 * A restored process may come back from sigsuspend() with EINTR without
 * having seen SIGUSR1, hence the loop on the flag.  The caller's signal
 * mask is left exactly as it was.
 */
static inline void proto_wait(void)
{
	sigset_t usr1, old, during;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	during = old;
	sigdelset(&during, SIGUSR1);
	while (!go_flag)
		sigsuspend(&during);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static inline int proto_finish(void)
{
	if (failures) {
		if (failures > 20)
			sayf("FAIL: ... %d failures in total\n", failures);
		return 1;
	}
	say("PASS\n");
	return 0;
}

/*
 * Look up the VMA containing addr in /proc/self/maps.  Fills start/end, the
 * 4-char permission string and the path column (may be empty).  Returns 0 if
 * no VMA contains addr.
 */
struct vma_info {
	unsigned long start, end, pgoff;
	char perms[5];
	char path[512];
};

static inline int find_vma(const void *addr, struct vma_info *vi)
{
	unsigned long a = (unsigned long)addr;
	char line[1024];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, off;
		char perms[5], path[512] = "";

		if (sscanf(line, "%lx-%lx %4s %lx %*s %*s %511s", &s, &e, perms, &off, path) < 4)
			continue;
		if (a >= s && a < e) {
			vi->start = s;
			vi->end = e;
			vi->pgoff = off;
			memcpy(vi->perms, perms, sizeof(vi->perms));
			snprintf(vi->path, sizeof(vi->path), "%s", path);
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

/*
 * Check that every page of [addr, addr+len) is mapped with the given
 * permissions.  Adjacent compatible VMAs may be merged or split differently
 * after a restore, so we only look at coverage, not at VMA boundaries.
 */
static inline void check_range(const char *name, const void *addr, size_t len, const char *perms)
{
	unsigned long a = (unsigned long)addr, end = a + len;
	struct vma_info vi;

	while (a < end) {
		if (!find_vma((void *)a, &vi)) {
			fail("%s: nothing mapped at %#lx (range %p+%#zx)", name, a, addr, len);
			return;
		}
		if (strcmp(vi.perms, perms)) {
			fail("%s: %#lx-%#lx has permissions %s, expected %s", name, vi.start,
			     vi.end, vi.perms, perms);
			return;
		}
		a = vi.end;
	}
}

#endif
