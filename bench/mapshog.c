/* mapshog: many-mappings target for bench.sh (case maps).
 *
 *   mapshog [-n MAPPINGS]     (default 100000)
 *
 * One process holding MAPPINGS private anonymous mappings of one page each,
 * side by side in one reserved range. Neighbours differ (even ones are
 * read-write and touched with a pattern of their index, odd ones read-only
 * and never touched), so the kernel cannot merge them: the range is
 * MAPPINGS vmas. The kernel's vm.max_map_count must allow them (bench.sh
 * checks). Writes "READY MAPPINGS\n", then sleeps in a pause() loop.
 *
 * On SIGUSR1 it checks every even page's pattern, that every odd page reads
 * as zeros, and that /proc/self/maps shows exactly MAPPINGS vmas in the
 * range with the expected protections, and appends "VERIFY OK MAPPINGS\n" or
 * "VERIFY BAD ...\n". The check can be repeated.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hog.h"

static volatile sig_atomic_t verify_requested;

static void on_usr1(int sig)
{
	(void)sig;
	verify_requested = 1;
}

static uint64_t tag(long i)
{
	return (uint64_t)i * 0x9e3779b97f4a7c15ull ^ 0x4d41505300000000ull; /* "MAPS" */
}

/* vmas of /proc/self/maps inside [lo, hi) and how many have the wrong protection */
static long count_vmas(uintptr_t lo, uintptr_t hi, size_t psz, long *badprot)
{
	int fd = open("/proc/self/maps", O_RDONLY);
	static char buf[1 << 16];
	char line[512];
	size_t ll = 0;
	long n = 0;
	ssize_t r;

	*badprot = 0;
	if (fd < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t k = 0; k < r; k++) {
			if (buf[k] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[k];
				continue;
			}
			line[ll] = 0;
			ll = 0;
			unsigned long s, e;
			char prot[8];
			if (sscanf(line, "%lx-%lx %7s", &s, &e, prot) != 3 || s < lo || e > hi)
				continue;
			n++;
			long idx = (long)((s - lo) / psz);
			const char *want = idx % 2 ? "r--p" : "rw-p";
			if (e - s != psz || strcmp(prot, want))
				(*badprot)++;
		}
	}
	close(fd);
	return n;
}

static long verify(unsigned char *base, long n, size_t psz)
{
	long bad = 0, badprot;

	for (long i = 0; i < n; i++) {
		const uint64_t *p = (const uint64_t *)(base + (size_t)i * psz);
		int ok = i % 2 ? p[0] == 0 && p[psz / 8 - 1] == 0 : p[0] == tag(i) && p[psz / 8 - 1] == ~tag(i);
		if (!ok) {
			if (!bad)
				say("VERIFY BAD mapping %ld: content\n", i);
			bad++;
		}
	}
	long vmas = count_vmas((uintptr_t)base, (uintptr_t)base + (size_t)n * psz, psz, &badprot);
	if (vmas != n || badprot) {
		say("VERIFY BAD %ld vmas in the range (expected %ld), %ld of wrong size or protection\n",
		    vmas, n, badprot);
		bad++;
	}
	return bad;
}

int main(int argc, char **argv)
{
	long n = hog_count(argc, argv, 100000, "mapshog", "MAPPINGS");
	if (n < 0)
		return 2;
	syscall(SYS_close_range, 3, ~0U, 0);
	signal(SIGUSR1, on_usr1);

	size_t psz = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *base = mmap(NULL, (size_t)n * psz, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		say("mapshog: mmap %ld pages: %s\n", n, strerror(errno));
		return 1;
	}
	/* one vma per page: THP would fold pages back into one huge page's range */
	madvise(base, (size_t)n * psz, MADV_NOHUGEPAGE);
	for (long i = 0; i < n; i += 2) {
		uint64_t *p = (uint64_t *)(base + (size_t)i * psz);
		p[0] = tag(i);
		p[psz / 8 - 1] = ~tag(i);
	}
	for (long i = 1; i < n; i += 2)
		if (mprotect(base + (size_t)i * psz, psz, PROT_READ) < 0) {
			say("mapshog: mprotect of mapping %ld: %s (vm.max_map_count?)\n", i, strerror(errno));
			return 1;
		}
	say("READY %ld\n", n);
	for (;;) {
		pause();
		if (verify_requested) {
			verify_requested = 0;
			long bad = verify(base, n, psz);
			if (bad)
				say("VERIFY BAD %ld of %ld mappings\n", bad, n);
			else
				say("VERIFY OK %ld\n", n);
		}
	}
}
