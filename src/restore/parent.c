/* Pages a dump left to its parent (PE_PARENT entries, after a pre-dump):
 * found in the parent's images (DIR/parent, then its parent, ...) by the
 * same process's pagemap, read by stasis and written into the task. */
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
	struct parent_level *up;
	int depth;
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
	if (l->pages_fd < 0 || !l->off) {
		pr_perror("parent dump: can't open %s", name);
		goto err;
	}
	uint64_t off = 0;
	for (int i = 0; i < l->n; i++) {
		l->off[i] = off;
		if (pagemap_run_saved(l->e[i]))
			off += pagemap_run_pages(l->e[i]) * PAGE_SZ;
	}
	return l;
err:
	level_free(l);
	return NULL;
}

static int copy_from(struct rst_ctx *rc, struct parent_level *l, uint64_t addr, uint64_t len);

/* [addr, addr + len) lies in entry i of level l. */
static int copy_entry(struct rst_ctx *rc, struct parent_level *l, int i, uint64_t addr, uint64_t len)
{
	const PagemapEntry *pe = l->e[i];
	if (pagemap_run_in_parent(pe)) {
		if (!l->up && !(l->up = level_open(l->dirfd, rc->pid, l->depth + 1)))
			return -1;
		return copy_from(rc, l->up, addr, len);
	}
	if (!pagemap_run_saved(pe))
		return -1;
	/* The pages file is mapped, not read: process_vm_writev then copies
	 * straight from the page cache into the task. Offsets and lengths are
	 * whole pages. */
	uint64_t off = l->off[i] + (addr - pe->vaddr);
	struct stat st;
	if (fstat(l->pages_fd, &st) < 0 || off + len > (uint64_t)st.st_size) {
		pr_err("pid %d: a parent dump's pages image is short at %#lx", rc->pid, (unsigned long)addr);
		return -1;
	}
	while (len) {
		size_t n = len < COPY_CHUNK ? len : COPY_CHUNK;
		void *src = mmap(NULL, n, PROT_READ, MAP_SHARED | MAP_POPULATE, l->pages_fd, off);
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

static int copy_from(struct rst_ctx *rc, struct parent_level *l, uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;
	for (int i = 0; i < l->n && addr < end; i++) {
		uint64_t s = l->e[i]->vaddr, e = s + pagemap_run_pages(l->e[i]) * PAGE_SZ;
		if (e <= addr || s >= end)
			continue;
		if (s > addr)
			break;	/* a hole: entries are sorted */
		uint64_t upto = e < end ? e : end;
		if (copy_entry(rc, l, i, addr, upto - addr) < 0)
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
	return copy_from(rc, rc->parent_pages, addr, len);
}

void rst_parent_free(struct rst_ctx *rc)
{
	level_free(rc->parent_pages);
	rc->parent_pages = NULL;
}
