/*
 * shmem_file: shared anonymous memory opened as a file, through
 * /proc/self/map_files, and mapped again from that fd, privately and
 * shared, must come back as one object (CRIU saves such an object as a
 * memfd named "/dev/zero"; so does stasis).
 *
 *   A  MAP_SHARED|MAP_ANONYMOUS, 5 pages; page i starts with 100 + i
 *   fd the object of A, opened through /proc/self/map_files
 *   P  the fd mapped MAP_PRIVATE at offset 1 page, 4 pages: page 1 (the
 *      object's page 2) written (a private copy), the others only read
 *   S  the fd mapped MAP_SHARED at offset 2 pages, 3 pages
 *
 * After SIGUSR1: P's written page keeps its copy and P's other pages still
 * show the object (a write through A after the restore shows in P's
 * untouched page); S and A are one object (a write through S shows in A);
 * the fd is the object too (pwrite through it shows in A, its size is 5
 * pages); A's own pages keep their contents; and P's copy never reached
 * the object.
 *
 * test shmem_file: plain restore chain leave_running
 */
#include "common.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PG 4096
#define NPG 5

static char *a, *p, *s;
static int fd;

static int word(const char *base, int page)
{
	return *(const volatile int *)(base + page * PG);
}

static void setword(char *base, int page, int v)
{
	*(volatile int *)(base + page * PG) = v;
}

static void setup(void)
{
	char path[128];

	a = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		die("mmap shared anonymous");
	for (int i = 0; i < NPG; i++)
		setword(a, i, 100 + i);
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)a,
		 (unsigned long)a + NPG * PG);
	fd = open(path, O_RDWR);
	if (fd < 0)
		die("open map_files");
	p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, PG);
	if (p == MAP_FAILED)
		die("mmap private");
	s = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * PG);
	if (s == MAP_FAILED)
		die("mmap shared");
	setword(p, 1, 222);	/* a private copy of the object's page 2 */
}

static void check(int gen)
{
	struct stat st;

	/* A: the object's pages, page 3 rewritten by the previous check */
	CHECK(word(a, 0) == 100, "A page 0: %d, not 100", word(a, 0));
	CHECK(word(a, 2) == 102, "A page 2: %d, not 102 (P's private copy reached the object?)", word(a, 2));
	CHECK(word(p, 1) == 222, "P page 1 (private copy): %d, not 222", word(p, 1));
	CHECK(word(p, 0) == 101, "P page 0 (not written): %d, not 101", word(p, 0));
	/* P's untouched page follows the object */
	setword(a, 4, 400 + gen);
	CHECK(word(p, 3) == 400 + gen, "P page 3 does not show what A wrote in the object (%d, not %d)",
	      word(p, 3), 400 + gen);
	/* S is the object */
	setword(s, 1, 300 + gen);
	CHECK(word(a, 3) == 300 + gen, "A page 3 does not show what S wrote (%d, not %d)", word(a, 3),
	      300 + gen);
	CHECK(word(p, 2) == 300 + gen, "P page 2 does not show what S wrote (%d, not %d)", word(p, 2),
	      300 + gen);
	/* the fd is the object */
	int v = 500 + gen;
	if (pwrite(fd, &v, sizeof(v), 1 * PG + 8) != sizeof(v))
		fail("pwrite through the fd: %s", strerror(errno));
	CHECK(*(volatile int *)(a + PG + 8) == v, "A does not show what was written through the fd");
	CHECK(!fstat(fd, &st) && st.st_size == NPG * PG, "the fd's size is %ld, not %d", (long)st.st_size,
	      NPG * PG);
}

int main(void)
{
	proto_init();
	setup();
	check(1);
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check(2);
	return proto_finish();
}
