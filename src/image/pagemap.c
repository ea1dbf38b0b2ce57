#include "image/pagemap.h"

int pagemap_write_run(struct img *img, uint64_t vaddr, uint64_t pages, uint32_t flags)
{
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;
	pe.vaddr = vaddr;
	pe.nr_pages = pages > UINT32_MAX ? 0 : pages;
	pe.has_nr_pages_64 = 1;
	pe.nr_pages_64 = pages;
	pe.has_flags = 1;
	pe.flags = flags;
	return img_write(img, &pe.base);
}
