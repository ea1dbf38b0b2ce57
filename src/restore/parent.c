/* Pages a dump left to its parent (PE_PARENT entries, after a pre-dump):
 * found in the parent's images (DIR/parent, then its parent, ...) by the
 * same process's pagemap. The chain is opened by stasis before the tree
 * is forked (rst_parent_open), so that the new processes, which inherit
 * it, fill such pages themselves like their own (premap.c); what is left
 * to the rebuild is read by stasis and written into the task. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "image/img.h"
#include "image/pagemap.h"
#include "image/vma.h"
#include "restore/rst.h"
#include "util/log.h"
#include "util/progress.h"

#define PARENT_CHAIN_MAX 64	/* a loop of parent links ends here */
#define COPY_CHUNK (64u << 20)

struct parent_level {
	int dirfd, pages_fd;
	PagemapEntry **e;
	int n;
	uint64_t *off;		/* per entry: where its bytes are in pages_fd */
	uint64_t size;		/* of pages_fd, when it was opened */
	struct parent_level *up;
	int depth;
	bool wants_up;		/* some entry is in the level above */
};

static void level_free(struct parent_level *l)
{
	while (l) {
		struct parent_level *up = l->up;
		for (int i = 0; i < l->n; i++)
			img_free(l->e[i]);
		free(l->e);
		free(l->off);
		if (l->pages_fd >= 0)
			close(l->pages_fd);
		if (l->dirfd >= 0)
			close(l->dirfd);
		free(l);
		l = up;
	}
}

/* The parent of the dump in dirfd, for process pid. */
static struct parent_level *level_open(int dirfd, pid_t pid, int depth)
{
	char name[64];
	PagemapHead *h;
	struct parent_level *l = calloc(1, sizeof(*l));
	struct stat st;

	if (!l)
		return NULL;
	l->pages_fd = -1;
	l->depth = depth;
	l->dirfd = openat(dirfd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0 || depth > PARENT_CHAIN_MAX) {
		pr_perror("pid %d: the image has pages in a parent dump, but its parent directory can't be opened",
			  pid);
		goto err;
	}
	if (img_load_headed(l->dirfd, IMG_PAGEMAP, pid, (ProtobufCMessage **)&h, (void ***)&l->e, &l->n) < 0)
		goto err;
	img_name(name, sizeof(name), IMG_PAGES, h->pages_id);
	img_free(h);
	l->pages_fd = img_open_regular(l->dirfd, name);
	l->off = calloc(l->n ? l->n : 1, sizeof(*l->off));
	if (l->pages_fd < 0 || !l->off || fstat(l->pages_fd, &st) < 0) {
		pr_perror("parent dump: can't open %s", name);
		goto err;
	}
	l->size = (uint64_t)st.st_size;
	uint64_t off = 0;
	for (int i = 0; i < l->n; i++) {
		l->off[i] = off;
		if (pagemap_run_saved(l->e[i]))
			off += pagemap_run_pages(l->e[i]) * PAGE_SZ;
		l->wants_up |= pagemap_run_in_parent(l->e[i]);
	}
	return l;
err:
	level_free(l);
	return NULL;
}

static bool has_parent_runs(const struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_pagemap; i++)
		if (pagemap_run_in_parent(rc->pagemap[i]))
			return true;
	return false;
}

int rst_parent_open(struct rst_ctx *rc)
{
	int levels = 0;
	if (rc->zombie || rc->o->unprivileged || rc->parent_pages || !has_parent_runs(rc))
		return 0;
	struct parent_level **at = &rc->parent_pages;
	for (int dirfd = rc->dirfd, depth = 1;; depth++) {
		if (!(*at = level_open(dirfd, rc->pid, depth)))
			return -1;
		levels++;
		if (!(*at)->wants_up)
			break;
		dirfd = (*at)->dirfd;
		at = &(*at)->up;
	}
	/* the whole chain is open: its directories are not needed again
	 * (a tree of a thousand processes would hold one per level each) */
	for (struct parent_level *l = rc->parent_pages; l; l = l->up) {
		close(l->dirfd);
		l->dirfd = -1;
	}
	return levels;
}

int rst_parent_keep(struct rst_ctx *rc, const struct rst_files *rf)
{
	for (struct parent_level *l = rc->parent_pages; l; l = l->up) {
		l->pages_fd = files_keep_fd(rf, l->pages_fd, "a parent dump's pages image");
		if (l->pages_fd < 0)
			return -1;
	}
	return 0;
}

int rst_parent_fd(const struct rst_ctx *rc, int depth)
{
	for (const struct parent_level *l = rc->parent_pages; l; l = l->up)
		if (l->depth == depth)
			return l->pages_fd;
	return -1;
}

/* The first entry of l that ends after addr (entries are sorted). */
static int first_after(const struct parent_level *l, uint64_t addr)
{
	int lo = 0, hi = l->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (l->e[mid]->vaddr + pagemap_run_pages(l->e[mid]) * PAGE_SZ <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Calls fn for each piece of [addr, addr + len) where some level of the
 * chain from l up holds its bytes. */
static int walk(const struct rst_ctx *rc, struct parent_level *l, uint64_t addr, uint64_t len,
		parent_piece_fn fn, void *arg)
{
	uint64_t end = addr + len;
	for (int i = first_after(l, addr); i < l->n && addr < end; i++) {
		const PagemapEntry *pe = l->e[i];
		uint64_t s = pe->vaddr, e = s + pagemap_run_pages(pe) * PAGE_SZ;
		if (s > addr)
			break;	/* a hole */
		uint64_t upto = e < end ? e : end;
		int r;
		if (pagemap_run_in_parent(pe)) {
			if (!l->up && !(l->up = level_open(l->dirfd, rc->pid, l->depth + 1)))
				return -1;
			r = walk(rc, l->up, addr, upto - addr, fn, arg);
		} else if (pagemap_run_saved(pe)) {
			uint64_t off = l->off[i] + (addr - s);
			if (off + (upto - addr) > l->size) {
				pr_err("pid %d: a parent dump's pages image is short at %#lx", rc->pid,
				       (unsigned long)addr);
				return -1;
			}
			r = fn(arg, l->depth, l->pages_fd, off, addr, upto - addr);
		} else {
			break;	/* not saved anywhere */
		}
		if (r < 0)
			return -1;
		addr = upto;
	}
	if (addr < end) {
		pr_err("pid %d: page %#lx is in no parent dump (the chain of --prev-images-dir is broken)", rc->pid,
		       (unsigned long)addr);
		return -1;
	}
	return 0;
}

int rst_parent_walk(const struct rst_ctx *rc, uint64_t addr, uint64_t len, parent_piece_fn fn, void *arg)
{
	if (!rc->parent_pages) {
		pr_err("pid %d: the parent dumps of its image were not opened", rc->pid);
		return -1;
	}
	return walk(rc, rc->parent_pages, addr, len, fn, arg);
}

/* The pages file is mapped, not read: process_vm_writev then copies
 * straight from the page cache into the task. Offsets and lengths are
 * whole pages. */
static int write_piece(void *arg, int depth, int fd, uint64_t off, uint64_t addr, uint64_t len)
{
	const struct rst_ctx *rc = arg;
	(void)depth;
	while (len) {
		size_t n = len < COPY_CHUNK ? len : COPY_CHUNK;
		void *src = mmap(NULL, n, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, off);
		if (src == MAP_FAILED) {
			pr_perror("pid %d: can't map a parent dump's pages", rc->pid);
			return -1;
		}
		struct iovec local = { src, n }, remote = { (void *)addr, n };
		ssize_t w = process_vm_writev(rc->real_pid, &local, 1, &remote, 1, 0);
		munmap(src, n);
		if (w != (ssize_t)n) {
			pr_perror("pid %d: can't write the parent dump's pages at %#lx", rc->pid, (unsigned long)addr);
			return -1;
		}
		progress_bytes(n);
		addr += n;
		off += n;
		len -= n;
	}
	return 0;
}

int rst_parent_pages(struct rst_ctx *rc, uint64_t addr, uint64_t len)
{
	/* the parent link could lead anywhere, and stasis reads it as root */
	if (rc->o->unprivileged) {
		pr_err("image pagemap-%d.img has pages in a parent dump, which a client of uid %u may not "
		       "restore", rc->pid, rc->o->client_uid);
		return -1;
	}
	if (!rc->parent_pages && !(rc->parent_pages = level_open(rc->dirfd, rc->pid, 1)))
		return -1;
	return walk(rc, rc->parent_pages, addr, len, write_piece, rc);
}

void rst_parent_free(struct rst_ctx *rc)
{
	level_free(rc->parent_pages);
	rc->parent_pages = NULL;
}
