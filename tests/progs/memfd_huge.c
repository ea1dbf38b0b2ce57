/*
 * memfd_huge: a memfd_create(MFD_HUGETLB) file comes back on hugetlbfs,
 * in huge pages of the same size, with its contents, its fd and its
 * mappings one object again.
 *
 *   fd  a MFD_HUGETLB memfd "huge", two huge pages: page 0 starts with
 *       "first", page 1 with "second"
 *   S   the fd mapped MAP_SHARED, whole
 *   P   the fd mapped MAP_PRIVATE, whole; its page 1 written ("copy": a
 *       private copy), page 0 only read
 *
 * After SIGUSR1 every mapping is still in huge pages (KernelPageSize) and
 * the fd on hugetlbfs with the same block size; S and the fd hold the
 * contents; a write through S shows through the fd and in P's untouched
 * page; P's copy is its own and never reached the file.
 *
 * test memfd_huge: plain restore chain leave_running --needs hugepages
 */
#include "common.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#define HUGE (2UL << 20)

static char *s, *p;
static int fd;

/* KernelPageSize of the mapping holding addr, in kB (0: not found). */
static unsigned long page_kb(const void *addr)
{
	unsigned long a = (unsigned long)addr, st, e, kb = 0;
	char line[512];
	int inside = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &st, &e) == 2)
			inside = a >= st && a < e;
		else if (inside && sscanf(line, "KernelPageSize: %lu", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

static void setup(void)
{
	fd = memfd_create("huge", MFD_CLOEXEC | MFD_HUGETLB);
	if (fd < 0)
		die("memfd_create(MFD_HUGETLB)");
	if (ftruncate(fd, 2 * HUGE) < 0)
		die("ftruncate");
	s = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		die("mmap shared (free huge pages?)");
	strcpy(s, "first");
	strcpy(s + HUGE, "second");
	p = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		die("mmap private");
	strcpy(p + HUGE, "copy");
}

static void check(int gen)
{
	struct statfs sf;
	char buf[16] = "", word[16];

	CHECK(page_kb(s) == HUGE >> 10, "S is in %lu kB pages, not %lu", page_kb(s), HUGE >> 10);
	CHECK(page_kb(p) == HUGE >> 10, "P is in %lu kB pages, not %lu", page_kb(p), HUGE >> 10);
	CHECK(!fstatfs(fd, &sf) && sf.f_type == HUGETLBFS_MAGIC && (unsigned long)sf.f_bsize == HUGE,
	      "the memfd is not on hugetlbfs in %lu kB pages", HUGE >> 10);
	CHECK(!strcmp(s + HUGE, "second"), "S page 1: \"%.8s\", not \"second\" (P's copy reached the file?)",
	      s + HUGE);
	CHECK(!strcmp(p + HUGE, "copy"), "P page 1 (private copy): \"%.8s\", not \"copy\"", p + HUGE);
	snprintf(word, sizeof(word), "gen%d", gen);
	strcpy(s, word);
	CHECK(!strcmp(p, word), "P page 0 does not show what S wrote in the file (\"%.8s\")", p);
	CHECK(pread(fd, buf, sizeof(buf) - 1, 0) > 0 && !strcmp(buf, word),
	      "the fd does not read what S wrote (\"%.8s\")", buf);
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
