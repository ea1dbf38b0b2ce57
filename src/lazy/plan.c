#include <stdlib.h>

#include "image/img.h"
#include "image/lazy.h"
#include "lazy/source.h"
#include "util/log.h"

static int add_run(struct lranges *out, const MmEntry *mm, const PagemapEntry *pe, pid_t pid)
{
	uint64_t at = pe->vaddr, end = pe->vaddr + pagemap_run_pages(pe) * PAGE_SZ;
	while (at < end) {
		const VmaEntry *e = vma_holding(mm, at, at + PAGE_SZ);
		uint64_t upto = e && e->end < end ? e->end : end;
		if (out->nr && at < out->r[out->nr - 1].end) {
			pr_err("image pagemap-%d.img: page runs overlap or are not sorted at %#lx", pid,
			       (unsigned long)at);
			return -1;
		}
		if (lr_add(out, at, upto, at) < 0)
			return -1;
		at = upto;
	}
	return 0;
}

int lazy_plan(int dirfd, pid_t pid, struct lranges *out)
{
	MmEntry *mm;
	PagemapHead *h;
	PagemapEntry **pe = NULL;
	int n = 0, ret = -1;

	if (img_load_one(dirfd, IMG_MM, pid, (ProtobufCMessage **)&mm) < 0)
		return -1;
	if (img_load_headed(dirfd, IMG_PAGEMAP, pid, (ProtobufCMessage **)&h, (void ***)&pe, &n) < 0) {
		img_free(mm);
		return -1;
	}
	img_free(h);
	for (int i = 0; i < n; i++) {
		uint64_t pages = pagemap_run_pages(pe[i]);
		if ((pe[i]->vaddr & (PAGE_SZ - 1)) || pages > (1ull << 36) ||
		    pe[i]->vaddr + pages * PAGE_SZ < pe[i]->vaddr) {
			pr_err("image pagemap-%d.img: bad page run %#lx+%lu", pid, (unsigned long)pe[i]->vaddr,
			       (unsigned long)pages);
			goto out;
		}
		if (run_is_lazy(mm, pe[i]) && add_run(out, mm, pe[i], pid) < 0)
			goto out;
	}
	ret = 0;
out:
	for (int i = 0; i < n; i++)
		img_free(pe[i]);
	free(pe);
	img_free(mm);
	return ret;
}
