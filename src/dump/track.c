/* Which pages changed since the last dump: the interface dump.c and
 * mem.c use (track.h). It loads what the parent dump holds, and hands
 * every other step to the tracker this kernel has (track_method): the
 * userfaultfd one (track_uffd.c, whose notes are track_registry.c) or
 * soft-dirty bits (softdirty.c). What both use is track_common.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "dump/track_backend.h"
#include "dump/ps_send.h"
#include "image/img.h"
#include "image/pagemap.h"
#include "image/vma.h"
#include "pagemap.pb-c.h"
#include "util/compat.h"
#include "util/fsop.h"
#include "util/log.h"

/* ---- the parent's pages ---- */

/* A parent dump that sent its pages to a page server keeps what its
 * pagemap there names (dump/ps_send.h); none: a new process. */
static int sent_cover_load(struct dump_ctx *dc, int parentfd, struct parent_cover *c)
{
	char name[64];
	uint64_t v[256][2];
	ssize_t n;
	snprintf(name, sizeof(name), PS_SENT_NAME, dc->ns_pid);
	int fd = fs_open_read(parentfd, name);
	if (fd < 0)
		return 0;
	while ((n = read(fd, v, sizeof(v))) > 0) {
		if (n % sizeof(v[0])) {
			pr_err("parent image %s is truncated", name);
			break;
		}
		for (size_t i = 0; i < n / sizeof(v[0]); i++)
			if (v[i][0] >= v[i][1] || ((v[i][0] | v[i][1]) & (PAGE_SZ - 1)) ||
			    !ranges_in_order(&c->pages, v[i][0]) || ranges_add(&c->pages, v[i][0], v[i][1]) < 0) {
				pr_err("parent image %s: bad page run at %#lx", name, (unsigned long)v[i][0]);
				close(fd);
				return -1;
			}
	}
	close(fd);
	return n == 0 ? 0 : -1;
}

/* Every page the parent's pagemap names, saved there or further up. */
static int cover_load(struct dump_ctx *dc, int parentfd, struct parent_cover *c)
{
	char name[64];
	PagemapEntry **e;
	ProtobufCMessage *head;
	int n, ret = 0;

	img_name(name, sizeof(name), IMG_PAGEMAP, dc->ns_pid);
	if (faccessat(parentfd, name, F_OK, 0) < 0)
		return sent_cover_load(dc, parentfd, c);
	if (img_load_headed(parentfd, IMG_PAGEMAP, dc->ns_pid, &head, (void ***)&e, &n) < 0)
		return -1;
	img_free(head);
	for (int i = 0; i < n && !ret; i++) {
		const PagemapEntry *pe = e[i];
		uint64_t pages = pagemap_run_pages(pe);
		if (pages > (1ull << 36) || pe->vaddr & (PAGE_SZ - 1)) {
			pr_err("parent image %s: bad page run at %#lx", name, (unsigned long)pe->vaddr);
			ret = -1;
		} else if (ranges_add(&c->pages, pe->vaddr, pe->vaddr + pages * PAGE_SZ) < 0) {
			ret = -1;
		}
	}
	for (int i = 0; i < n; i++)
		img_free(e[i]);
	free(e);
	return ret;
}

int track_adopt(struct dump_ctx *dc, int parentfd)
{
	if (parentfd < 0)
		return track_method() == TRACK_SOFT_DIRTY ? sd_adopt(dc, parentfd) : 0;
	struct parent_cover *c = calloc(1, sizeof(*c));
	if (!c || cover_load(dc, parentfd, c) < 0) {
		if (c)
			ranges_free(&c->pages);
		free(c);
		return -1;
	}
	dc->cover = c;
	if (track_method() == TRACK_SOFT_DIRTY)
		return sd_adopt(dc, parentfd);
	uffd_adopt(dc, parentfd);
	return 0;
}

void track_undo(struct dump_ctx *dc)
{
	/* soft-dirty: a clear can't be taken back; its new note makes every
	 * parent stale (softdirty.c) */
	uffd_undo(dc);
}

void track_free(struct dump_ctx *dc)
{
	uffd_release(dc);
	if (dc->cover)
		ranges_free(&dc->cover->pages);
	free(dc->cover);
	dc->cover = NULL;
	free(dc->uffd_fds);
	dc->uffd_fds = NULL;
	dc->nr_uffd_fds = 0;
}

int track_write_list(struct dump_tree *tr)
{
	char buf[96];
	bool any = false;
	for (int i = 0; i < tr->nr; i++)
		any |= tr->t[i].track_task_fd >= 0 || tr->t[i].sd_armed;
	if (!any)
		return 0;
	int fd = fs_create(tr->dirfd, TRACK_LIST, O_WRONLY, 0600);
	if (fd < 0) {
		pr_perror("can't write %s", TRACK_LIST);
		return -1;
	}
	for (int i = 0; i < tr->nr; i++) {
		const struct dump_ctx *dc = &tr->t[i];
		int n = uffd_list_line(dc, buf, sizeof(buf));
		if (!n)
			n = sd_list_line(dc, buf, sizeof(buf));
		if (!n)
			continue;
		if (write(fd, buf, n) != n) {
			pr_perror("can't write %s", TRACK_LIST);
			close(fd);
			return -1;
		}
	}
	return close(fd);
}

/* ---- which tracker: chosen once, by what this kernel has ---- */

bool track_has_uffd_wp_async(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	bool ok = fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0 && (api.features & UFFD_FEATURE_WP_ASYNC);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* The userfaultfd tracker where the kernel has it (6.7+: it also sees
 * writes a clear_refs by anyone else would hide); soft-dirty bits where
 * it has those (CONFIG_MEM_SOFT_DIRTY, e.g. Debian's 6.1). */
enum track_method track_method(void)
{
	static int m = -1;
	if (m < 0)
		m = track_has_uffd_wp_async() ? TRACK_UFFD_WP : sd_kernel_has() ? TRACK_SOFT_DIRTY : TRACK_NONE;
	return m;
}

bool track_has_soft_dirty(void)
{
	return sd_kernel_has();
}

const char *track_method_name(enum track_method m)
{
	switch (m) {
	case TRACK_UFFD_WP:
		return "userfaultfd write-protect (async)";
	case TRACK_SOFT_DIRTY:
		return "soft-dirty bits";
	default:
		return NULL;
	}
}

int track_prepare(struct dump_ctx *dc)
{
	/* soft-dirty: judged in track_adopt, before anything is written
	 * into the task */
	return track_method() == TRACK_SOFT_DIRTY ? 0 : uffd_prepare(dc);
}

bool track_scan_splits(const struct dump_ctx *dc, const struct proc_vma *v)
{
	return v->uffd_wp && dc->cover && dc->uffd >= 0 && track_method() == TRACK_UFFD_WP;
}

bool track_in_parent(const struct dump_ctx *dc, uint64_t start, uint64_t end)
{
	return dc->cover && track_parent_covers(dc->cover, start, end);
}

static int by_start(const void *a, const void *b)
{
	const struct page_run *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

int track_split(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *in_parent)
{
	int ret = track_method() == TRACK_SOFT_DIRTY ? sd_split(dc, pr, in_parent) : uffd_split(dc, pr, in_parent);
	/* the scan put some there already (track_scan_splits): by address
	 * again, as the pagemap lists them */
	if (in_parent->nr > 1)
		qsort(in_parent->r, in_parent->nr, sizeof(in_parent->r[0]), by_start);
	return ret;
}

int track_protect(struct dump_ctx *dc, const struct page_runs *saved, const struct page_runs *in_parent)
{
	/* Armed by a pre-dump or a dump -R --track-mem. Not by a dump that
	 * kills the tree, --track-mem or not: nothing runs on to be tracked.
	 * Arming would only slow the killed task's exit (its protected memory
	 * takes longer to tear down), and a dump that fails and lets the tree
	 * go would leave a tracker no parent knows, where the untouched one
	 * still serves a retry over the same parent. */
	if (!dc->o->pre_dump && !(dc->o->track_mem && dc->o->leave_running))
		return 0;
	switch (track_method()) {
	case TRACK_SOFT_DIRTY:
		return sd_protect(dc);
	case TRACK_UFFD_WP:
		return uffd_protect(dc, saved, in_parent);
	default:
		pr_err("pid %d: this kernel can't track memory writes (neither soft-dirty bits nor "
		       "userfaultfd WP_ASYNC, 6.7+)", dc->pid);
		return -1;
	}
}
