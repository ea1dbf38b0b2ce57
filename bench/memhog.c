/* memhog: benchmark target for bench.sh.
 *
 *   memhog [MiB]     (default 1024)
 *
 * Maps MiB of private anonymous memory, fills every page with non-zero data
 * (a per-page byte pattern plus the page index in the first 8 bytes, so no
 * page is a zero page and no two neighbouring pages are identical), writes
 * "READY\n" to stdout and then sleeps forever in a sigsuspend() loop.
 *
 * On SIGUSR1 it re-checks every page and appends "VERIFY OK\n" or
 * "VERIFY BAD page N\n" to stdout; bench.sh uses this after a restore to make
 * sure the restored memory is the memory that was dumped.
 */
#define _GNU_SOURCE
#include <errno.h>
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

static unsigned char page_byte(size_t i)
{
	return (unsigned char)(i * 131u % 255u + 1u); /* 1..255, never 0 */
}

static uint64_t page_tag(size_t i)
{
	return (uint64_t)i ^ 0x4d454d484f470000ull; /* "MEMHOG" */
}

static void verify(unsigned char *mem, size_t npages, size_t psz)
{
	char msg[64];

	for (size_t i = 0; i < npages; i++) {
		unsigned char *p = mem + i * psz;
		unsigned char b = page_byte(i);
		uint64_t tag;
		int bad = 0;

		memcpy(&tag, p, sizeof(tag));
		if (tag != page_tag(i))
			bad = 1;
		for (size_t j = sizeof(tag); !bad && j < psz; j++)
			if (p[j] != b)
				bad = 1;
		if (bad) {
			int n = snprintf(msg, sizeof(msg), "VERIFY BAD page %zu\n", i);
			write_all(1, msg, (size_t)n);
			return;
		}
	}
	write_all(1, "VERIFY OK\n", 10);
}

int main(int argc, char **argv)
{
	unsigned long mib = 1024;
	size_t psz = (size_t)sysconf(_SC_PAGESIZE);
	struct sigaction sa;
	unsigned char *mem;
	size_t len, npages;

	/* Only stdio: fds leaked by whoever started the bench are not ours to dump. */
	syscall(SYS_close_range, 3, ~0u, 0);

	if (argc > 1) {
		char *end;
		errno = 0;
		mib = strtoul(argv[1], &end, 10);
		if (errno || *end || mib == 0) {
			fprintf(stderr, "usage: %s [MiB]  (MiB > 0, default 1024)\n", argv[0]);
			return 2;
		}
	}

	len = (size_t)mib << 20;
	npages = len / psz;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("memhog: mmap");
		return 1;
	}

	for (size_t i = 0; i < npages; i++) {
		unsigned char *p = mem + i * psz;
		uint64_t tag = page_tag(i);

		memset(p, page_byte(i), psz);
		memcpy(p, &tag, sizeof(tag));
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL) < 0) {
		perror("memhog: sigaction");
		return 1;
	}

	/* SIGUSR1 is taken only inside sigsuspend: one that comes while a
	 * check runs, or before the first wait (right after a restore), is
	 * kept pending for the next wait instead of setting the flag just
	 * before a pause() that would then sleep through it. */
	sigset_t usr1, waiting;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &waiting);
	sigdelset(&waiting, SIGUSR1);

	write_all(1, "READY\n", 6);

	for (;;) {
		sigsuspend(&waiting);
		if (verify_requested) {
			verify_requested = 0;
			verify(mem, npages, psz);
		}
	}
}
