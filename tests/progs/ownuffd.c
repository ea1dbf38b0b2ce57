/*
 * ownuffd - a program with a userfaultfd of its own that looks like
 * stasis's memory tracker: write-protect in async mode, at the highest
 * fd its limit of open files allows (where stasis would put its own).
 *
 * Registers 8 pages, protects them, prints READY. After SIGUSR1 the fd
 * must be the same userfaultfd (inode), none of the 8 pages may read as
 * written (nobody wrote them: a stasis that took the fd for its tracker
 * would have let go of their protection), and a write to page 0 must
 * show as written there only.
 */
#include "common.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef PAGEMAP_SCAN
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct page_region {
	uint64_t start, end, categories;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN (1 << 1)
#endif

#define PAGE 4096
#define NPAGES 8

static uint8_t *mem;

/* Bit i set: page i reads as written. */
static unsigned written_pages(void)
{
	struct page_region vec[NPAGES];
	struct pm_scan_arg a = {
		.size = sizeof(a), .start = (uint64_t)mem, .end = (uint64_t)mem + NPAGES * PAGE,
		.vec = (uint64_t)vec, .vec_len = NPAGES, .return_mask = PAGE_IS_WRITTEN,
	};
	unsigned bits = 0;
	int pm = open("/proc/self/pagemap", O_RDONLY);
	long n = pm < 0 ? -1 : ioctl(pm, PAGEMAP_SCAN, &a);
	if (n < 0)
		fail("PAGEMAP_SCAN: %s", strerror(errno));
	for (long r = 0; r < n; r++)
		for (uint64_t p = vec[r].start; p < vec[r].end; p += PAGE)
			if (vec[r].categories & PAGE_IS_WRITTEN)
				bits |= 1u << ((p - (uint64_t)mem) / PAGE);
	if (pm >= 0)
		close(pm);
	return bits;
}

int main(void)
{
	struct rlimit lim;
	struct stat before, after;
	proto_init();
	mem = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	memset(mem, 7, NPAGES * PAGE);
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	struct uffdio_register reg = { .range = { (uint64_t)mem, NPAGES * PAGE }, .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = { (uint64_t)mem, NPAGES * PAGE },
					  .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg) ||
	    ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
		die("userfaultfd");
	int high = getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 1024 ? (int)lim.rlim_cur - 1 : 1023;
	if (dup3(fd, high, O_CLOEXEC) != high || close(fd) || fstat(high, &before))
		die("dup3");
	if (written_pages())
		die("fresh protection reads as written");
	sayf("UFFD %d\n", high);
	proto_ready();
	proto_wait();
	CHECK(fstat(high, &after) == 0 && after.st_ino == before.st_ino, "fd %d is no longer our userfaultfd", high);
	unsigned w = written_pages();
	CHECK(w == 0, "pages nobody wrote read as written (%#x): our protection was taken away", w);
	mem[0] = 1;
	w = written_pages();
	CHECK(w == 1, "after a write to page 0, the written pages are %#x, want 0x1", w);
	return proto_finish();
}
