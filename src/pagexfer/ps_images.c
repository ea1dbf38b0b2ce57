/* The pages of a finished dump for a lazy-pages daemon (ps_images.h).
 * As CRIU's page server in that mode, only the runs a dump marks lazy
 * (PE_LAZY, image/lazy.h) are served: the daemons ask for nothing else.
 * Those are never left to a parent dump (a pre-dump's pages the dump
 * found unchanged are PE_PARENT, without PE_LAZY, and the restore reads
 * them from the parent's images), so their bytes are all in the dump's
 * own pages image: where, is counted as restore counts it, over the
 * runs saved there (PE_PRESENT, not in the parent), in order. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "image/checksum.h"
#include "image/img.h"
#include "image/lazy.h"
#include "image/pagemap.h"
#include "image/vma.h"
#include "pagexfer/ps_images.h"
#include "pstree.pb-c.h"
#include "util/ranges.h"
#include "util/log.h"

#define MAX_RUN_PAGES (1ull << 36)

struct img_run {
	uint64_t start, end, off;	/* off: in the pages image */
};

struct img_task {
	uint32_t pid;
	int fd;			/* its pages image */
	struct img_run *run;	/* the lazy runs, sorted */
	size_t nr;
};

struct img_pages {
	struct ps_pages p;
	struct img_task *t;
	size_t nr;
};

static struct img_task *task_of(struct img_pages *ip, uint64_t pid)
{
	for (size_t i = 0; i < ip->nr; i++)
		if (ip->t[i].pid == pid)
			return &ip->t[i];
	return NULL;
}

static const struct img_run *run_of(const struct img_task *t, uint64_t addr)
{
	ptrdiff_t i = runs_index(t->run, t->nr, addr);
	return i < 0 ? NULL : &t->run[i];
}

static uint64_t img_avail(struct ps_pages *p, uint64_t pid, uint64_t addr, uint64_t nr)
{
	struct img_task *t = task_of((struct img_pages *)p, pid);
	const struct img_run *r = t ? run_of(t, addr) : NULL;
	if (!r)
		return 0;
	uint64_t avail = (r->end - addr) / PAGE_SZ;
	return nr < avail ? nr : avail;
}

static int img_read_pages(struct ps_pages *p, uint64_t pid, uint64_t addr, void *buf, size_t len)
{
	struct img_task *t = task_of((struct img_pages *)p, pid);
	const struct img_run *r = run_of(t, addr);
	uint64_t off = r->off + (addr - r->start);
	for (char *at = buf; len;) {
		ssize_t n = pread(t->fd, at, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				pr_err("lazy pages: pid %u: its pages image is short at %#lx", t->pid, (unsigned long)addr);
			else
				pr_perror("lazy pages: pid %u: can't read its pages image", t->pid);
			return -1;
		}
		at += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* The lazy runs of pagemap-PID.img and its pages image. */
static int task_load(int dirfd, struct img_task *t)
{
	char name[IMG_NAME_MAX];
	PagemapHead *h;
	PagemapEntry **pe = NULL;
	int n = 0, ret = -1;
	uint64_t off = 0, prev_end = 0;

	if (img_load_headed(dirfd, IMG_PAGEMAP, t->pid, (ProtobufCMessage **)&h, (void ***)&pe, &n) < 0)
		return -1;
	img_name(name, sizeof(name), IMG_PAGES, h->pages_id);
	img_free(h);
	t->run = calloc(n ? n : 1, sizeof(*t->run));
	if (!t->run) {
		pr_err("lazy pages: out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		uint64_t pages = pagemap_run_pages(pe[i]), start = pe[i]->vaddr, len = pages * PAGE_SZ;
		if ((start & (PAGE_SZ - 1)) || pages > MAX_RUN_PAGES || start + len < start || start < prev_end) {
			pr_err("image pagemap-%u.img: bad page run %#lx+%lu (runs overlap, are not sorted or not "
			       "whole pages)", t->pid, (unsigned long)start, (unsigned long)pages);
			goto out;
		}
		prev_end = start + len;
		if (!pagemap_run_saved(pe[i]))
			continue;
		if (pagemap_run_lazy(pe[i]) && pages)
			t->run[t->nr++] = (struct img_run){ start, start + len, off };
		off += len;
	}
	t->fd = img_open_regular(dirfd, name);
	if (t->fd < 0) {
		pr_perror("lazy pages: pid %u: can't open %s", t->pid, name);
		goto out;
	}
	pr_info("lazy pages: pid %u: %zu lazy runs in %s", t->pid, t->nr, name);
	ret = 0;
out:
	for (int i = 0; i < n; i++)
		img_free(pe[i]);
	free(pe);
	return ret;
}

void ps_images_close(struct ps_pages *p)
{
	struct img_pages *ip = (struct img_pages *)p;
	if (!ip)
		return;
	for (size_t i = 0; i < ip->nr; i++) {
		if (ip->t[i].fd >= 0)
			close(ip->t[i].fd);
		free(ip->t[i].run);
	}
	free(ip->t);
	free(ip);
}

struct ps_pages *ps_images_open(int dirfd, const struct opts *o)
{
	PstreeEntry **pe = NULL;
	int n = 0;
	struct img_pages *ip = calloc(1, sizeof(*ip));

	if (!ip) {
		pr_err("lazy pages: out of memory");
		return NULL;
	}
	ip->p = (struct ps_pages){ img_avail, img_read_pages, .fail_after_pages = false, .idle = o->timeout,
				   .gone_fd = -1 };
	/* what goes on the wire is checked here, at its source (CRIU's
	 * protocol carries no checksum): a damaged pages file is refused
	 * before anything listens, as a lazy restore from it would be */
	if (!o->skip_checksums && ck_verify_chain(dirfd, o->images_dir, CK_ONLY_PAGES) < 0)
		goto fail;
	if (img_load_all(dirfd, IMG_PSTREE, 0, (void ***)&pe, &n) < 0 || !n) {
		if (!n)
			pr_err("lazy pages: no dump in the images directory (pstree.img names no process)");
		goto fail;
	}
	ip->t = calloc(n, sizeof(*ip->t));
	if (!ip->t) {
		pr_err("lazy pages: out of memory");
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		char name[IMG_NAME_MAX];
		img_name(name, sizeof(name), IMG_PAGEMAP, pe[i]->pid);
		/* a zombie has no memory, and no pagemap */
		if (faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			continue;
		struct img_task *t = &ip->t[ip->nr++];
		t->pid = pe[i]->pid;
		t->fd = -1;
		if (task_load(dirfd, t) < 0)
			goto fail;
	}
	for (int i = 0; i < n; i++)
		img_free(pe[i]);
	free(pe);
	return &ip->p;
fail:
	for (int i = 0; i < n; i++)
		img_free(pe[i]);
	free(pe);
	ps_images_close(&ip->p);
	return NULL;
}
