/*
 * guard_pages: guard regions (madvise(MADV_GUARD_INSTALL), 6.13+) come
 * back where they were, and only there: a guarded page faults with
 * SIGSEGV on any access, the pages around keep their contents.
 *
 *   A  private anonymous, 6 pages: pages 1-2 and 5 guarded
 *   F  a private mapping of a file of ours, 4 pages: page 0 guarded,
 *      page 2 written (a private copy)
 *   W  private anonymous, 2 pages, MADV_WIPEONFORK: page 1 guarded (a
 *      child of fork has none there: the kernel wipes such memory, guards
 *      too, in the child)
 *
 * After SIGUSR1: the process's own PAGEMAP_SCAN reports exactly the same
 * guard regions; each guarded page faults on a read; every other page
 * holds what was written (F's untouched pages the file's bytes); and a
 * child of fork sees A's and F's guards too, but not W's.
 *
 * test guard_pages: plain restore chain leave_running --needs kernel:guard_pages
 */
#include "common.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "../../src/util/compat.h"

#define PG 4096
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static char *a, *f, *w;
static sigjmp_buf jb;
static volatile sig_atomic_t armed;

static void on_segv(int sig)
{
	(void)sig;
	if (armed)
		siglongjmp(jb, 1);
	_exit(3);
}

/* Does reading addr fault? */
static int faults(const char *addr)
{
	int hit = 0;
	armed = 1;
	if (sigsetjmp(jb, 1))
		hit = 1;
	else
		(void)*(const volatile char *)addr;
	armed = 0;
	return hit;
}

static void guard(char *addr, int pages)
{
	if (madvise(addr, pages * PG, MADV_GUARD_INSTALL))
		die("madvise(MADV_GUARD_INSTALL)");
}

static void setup(void)
{
	struct sigaction sa = { .sa_handler = on_segv, .sa_flags = SA_NODEFER };
	char buf[PG];
	int fd;

	sigaction(SIGSEGV, &sa, NULL);
	fd = open("guarded.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("open");
	for (int i = 0; i < 4; i++) {
		memset(buf, 'a' + i, sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != sizeof(buf))
			die("write");
	}
	a = mmap(NULL, 6 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	w = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || f == MAP_FAILED || w == MAP_FAILED)
		die("mmap");
	close(fd);
	for (int i = 0; i < 6; i++)
		memset(a + i * PG, 'A' + i, PG);
	f[2 * PG] = 'X';
	w[0] = 'W';
	if (madvise(w, 2 * PG, MADV_WIPEONFORK))
		die("madvise(MADV_WIPEONFORK)");
	guard(a + PG, 2);
	guard(a + 5 * PG, 1);
	guard(f, 1);
	guard(w + PG, 1);
}

/* The guard regions PAGEMAP_SCAN finds in [start, start + len). */
static int scan(const char *start, size_t len, struct page_region *vec, int max)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	struct pm_scan_arg arg = { .size = sizeof(arg), .start = (uint64_t)start, .end = (uint64_t)start + len,
				   .vec = (uint64_t)vec, .vec_len = max, .category_mask = PAGE_IS_GUARD,
				   .return_mask = PAGE_IS_GUARD };
	int n = fd < 0 ? -1 : ioctl(fd, PAGEMAP_SCAN, &arg);
	if (fd >= 0)
		close(fd);
	return n;
}

static void check_regions(const char *name, const char *base, size_t len, int n, const int (*want)[2])
{
	struct page_region vec[8];
	int got = scan(base, len, vec, 8);
	CHECK(got == n, "%s: %d guard regions, not %d", name, got, n);
	for (int i = 0; i < n && i < got; i++)
		CHECK(vec[i].start == (uint64_t)base + want[i][0] * PG &&
			      vec[i].end == (uint64_t)base + want[i][1] * PG,
		      "%s: guard region %d is pages %ld-%ld, not %d-%d", name, i,
		      (long)((vec[i].start - (uint64_t)base) / PG), (long)((vec[i].end - (uint64_t)base) / PG),
		      want[i][0], want[i][1]);
}

/* in_child: after fork, where wipe-on-fork memory lost its guard */
static void check(int in_child)
{
	static const int ga[][2] = { { 1, 3 }, { 5, 6 } }, gf[][2] = { { 0, 1 } }, gw[][2] = { { 1, 2 } };

	check_regions("A", a, 6 * PG, 2, ga);
	check_regions("F", f, 4 * PG, 1, gf);
	check_regions("W", w, 2 * PG, in_child ? 0 : 1, gw);
	for (int i = 0; i < 6; i++) {
		int guarded = i == 1 || i == 2 || i == 5;
		CHECK(faults(a + i * PG) == guarded, "A page %d %s", i, guarded ? "does not fault" : "faults");
		if (!guarded)
			CHECK(a[i * PG] == 'A' + i, "A page %d holds %c, not %c", i, a[i * PG], 'A' + i);
	}
	CHECK(faults(f), "F page 0 does not fault");
	CHECK(!faults(f + PG) && f[PG] == 'b', "F page 1 does not hold the file's bytes");
	CHECK(!faults(f + 2 * PG) && f[2 * PG] == 'X', "F page 2 lost its private copy");
	CHECK(!faults(f + 3 * PG) && f[3 * PG] == 'd', "F page 3 does not hold the file's bytes");
	CHECK(faults(w + PG) != in_child, "W page 1 %s", in_child ? "faults in a child" : "does not fault");
	CHECK(w[0] == (in_child ? 0 : 'W'), "W page 0 holds %#x", w[0]);
}

static void check_all(void)
{
	check(0);
	pid_t pid = fork();
	if (pid == 0) {
		check(1);
		_exit(failures ? 1 : 0);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("the child of fork saw the guards wrong (status %#x)", st);
}

int main(void)
{
	proto_init();
	setup();
	check_all();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check_all();
	return proto_finish();
}
