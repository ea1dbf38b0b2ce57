/* Guard regions (madvise(MADV_GUARD_INSTALL)): see guards.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "infect/inject.h"
#include "proc/proc.h"
#include "task/guards.h"
#include "util/compat.h"
#include "util/log.h"

#define GUARD_VEC 64

/* A page of our own, guarded, must come back from the scan. */
bool guards_supported(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	known = 0;
	long pg = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct page_region vec[2];
	struct pm_scan_arg a = { .size = sizeof(a), .start = (uint64_t)p, .end = (uint64_t)p + 2 * pg,
				 .vec = (uint64_t)vec, .vec_len = 2,
				 .category_mask = PAGE_IS_GUARD, .return_mask = PAGE_IS_GUARD };
	if (fd >= 0 && !madvise(p, pg, MADV_GUARD_INSTALL) && ioctl(fd, PAGEMAP_SCAN, &a) == 1 &&
	    vec[0].start == (uint64_t)p && vec[0].end == (uint64_t)p + pg && (vec[0].categories & PAGE_IS_GUARD))
		known = 1;
	if (fd >= 0)
		close(fd);
	munmap(p, 2 * pg);
	return known;
}

static int add_guard(VmaEntry ***out, size_t *nr, uint64_t start, uint64_t end)
{
	/* a region going on from the mapping before (the scan stops at each) */
	if (*nr && (*out)[*nr - 1]->end == start) {
		(*out)[*nr - 1]->end = end;
		return 0;
	}
	VmaEntry **n = realloc(*out, (*nr + 1) * sizeof(*n));
	if (!n)
		return -1;
	*out = n;
	VmaEntry *e = calloc(1, sizeof(*e));
	if (!e)
		return -1;
	vma_entry__init(e);
	e->start = start;
	e->end = end;
	e->status = VMA_AREA_GUARD;
	e->fd = -1;
	n[(*nr)++] = e;
	return 0;
}

static int scan_range(pid_t pid, int pm, uint64_t start, uint64_t end, VmaEntry ***out, size_t *nr)
{
	struct page_region vec[GUARD_VEC];
	struct pm_scan_arg a = { .size = sizeof(a), .start = start, .end = end, .vec = (uint64_t)vec,
				 .vec_len = GUARD_VEC, .category_mask = PAGE_IS_GUARD,
				 .return_mask = PAGE_IS_GUARD };
	while (a.start < a.end) {
		long n = ioctl(pm, PAGEMAP_SCAN, &a);
		if (n < 0) {
			pr_perror("pid %d: can't scan %#lx-%#lx for guard pages", pid, (unsigned long)a.start,
				  (unsigned long)end);
			return -1;
		}
		for (long i = 0; i < n; i++)
			if (add_guard(out, nr, vec[i].start, vec[i].end) < 0) {
				pr_err("pid %d: out of memory listing guard pages", pid);
				return -1;
			}
		if (a.walk_end <= a.start && n == 0)
			break;
		a.start = a.walk_end;
	}
	return 0;
}

int guards_dump(pid_t pid, const struct proc_vmas *vmas, VmaEntry ***out, size_t *nr)
{
	char path[64];

	if (!guards_supported())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int pm = open(path, O_RDONLY | O_CLOEXEC);
	if (pm < 0) {
		pr_perror("pid %d: can't open %s", pid, path);
		return -1;
	}
	int ret = 0;
	for (int i = 0; !ret && i < vmas->nr; i++)
		if (vmas->v[i].special != VMA_VSYSCALL)
			ret = scan_range(pid, pm, vmas->v[i].start, vmas->v[i].end, out, nr);
	close(pm);
	if (!ret && *nr)
		pr_info("pid %d: %zu guard region%s", pid, *nr, *nr == 1 ? "" : "s");
	return ret;
}

int guards_split(pid_t pid, MmEntry *mm, size_t *nr_guards)
{
	size_t n = mm->n_vmas;
	while (n && mm->vmas[n - 1]->status == VMA_AREA_GUARD)
		n--;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		if ((e->status & VMA_AREA_GUARD) && (i < n || e->end <= e->start)) {
			pr_err("image mm-%d.img: bad guard region entry %#lx-%#lx (status %#x)", pid,
			       (unsigned long)e->start, (unsigned long)e->end, e->status);
			return -1;
		}
	}
	*nr_guards = mm->n_vmas - n;
	mm->n_vmas = n;
	return 0;
}

void guards_put_back(MmEntry *mm, size_t nr_guards)
{
	mm->n_vmas += nr_guards;
}

int guards_install(struct inj *ij, pid_t pid, VmaEntry *const *guards, size_t nr)
{
	struct inj_batch b = { 0 };
	if (!nr)
		return 0;
	for (size_t i = 0; i < nr; i++)
		if (inj_batch_add(ij, &b, "guard pages (MADV_GUARD_INSTALL)",
				  INJ(SYS_madvise, guards[i]->start, guards[i]->end - guards[i]->start,
				      MADV_GUARD_INSTALL)) < 0)
			return -1;
	pr_debug("pid %d: %zu guard region%s to install", pid, nr, nr == 1 ? "" : "s");
	return inj_batch_run(ij, &b);
}
