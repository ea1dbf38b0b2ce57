/* --auto-dedup (dedup.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/falloc.h>

#include "image/checksum.h"
#include "image/dedup.h"
#include "image/img.h"
#include "image/pagemap.h"
#include "image/vma.h"
#include "pagemap.pb-c.h"
#include "util/fsop.h"
#include "util/log.h"

int dedup_open(struct dedup *d, int parentfd, enum img_kind kind, uint32_t id)
{
	char name[IMG_NAME_MAX];
	ProtobufCMessage *head;
	PagemapEntry **e;
	int n;
	uint64_t off = 0;

	memset(d, 0, sizeof(*d));
	d->parentfd = parentfd;
	d->pages_fd = -1;
	img_name(name, sizeof(name), kind, id);
	if (parentfd < 0 || faccessat(parentfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (img_load_headed(parentfd, kind, id, &head, (void ***)&e, &n) < 0)
		return -1;
	img_name(d->pages_name, sizeof(d->pages_name), IMG_PAGES, ((PagemapHead *)head)->pages_id);
	img_free(head);
	d->r = calloc(n ? n : 1, sizeof(*d->r));
	for (int i = 0; i < n; i++) {
		uint64_t len = pagemap_run_pages(e[i]) * PAGE_SZ;
		if (d->r && (!e[i]->has_flags || (e[i]->flags & PE_PRESENT))) {
			d->r[d->nr][0] = e[i]->vaddr;
			d->r[d->nr][1] = e[i]->vaddr + len;
			d->r[d->nr++][2] = off;
			off += len;
		}
		img_free(e[i]);
	}
	free(e);
	if (!d->r)
		return -1;
	d->pages_fd = fs_open_write(parentfd, d->pages_name, true);
	if (d->pages_fd < 0) {
		pr_perror("--auto-dedup: can't open the parent's %s", d->pages_name);
		return -1;
	}
	return 0;
}

int dedup_run(struct dedup *d, uint64_t start, uint64_t end)
{
	if (d->pages_fd < 0)
		return 0;
	for (size_t i = 0; i < d->nr; i++) {
		uint64_t s = d->r[i][0] > start ? d->r[i][0] : start, e = d->r[i][1] < end ? d->r[i][1] : end;
		if (s >= e)
			continue;
		if (fallocate(d->pages_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, d->r[i][2] + (s - d->r[i][0]),
			      e - s) < 0) {
			pr_perror("--auto-dedup: can't punch the parent's %s", d->pages_name);
			return -1;
		}
		d->punched += e - s;
	}
	return 0;
}

int dedup_close(struct dedup *d)
{
	int ret = 0;
	if (d->pages_fd >= 0) {
		close(d->pages_fd);
		if (d->punched) {
			pr_info("--auto-dedup: %lu KiB punched out of the parent's %s", (unsigned long)(d->punched >> 10),
				d->pages_name);
			ret = ck_lists_update(d->parentfd, d->pages_name);
		}
	}
	free(d->r);
	d->r = NULL;
	d->pages_fd = -1;
	return ret;
}
