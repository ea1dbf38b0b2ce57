#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "image/img.h"
#include "image/pagemap.h"
#include "image/shmem_pages.h"
#include "image/vma.h"
#include "util/log.h"

#define CHUNK (1ul << 20)

/* ---- scanning ---- */

struct scan {
	shmem_run_fn *run;
	void *arg;
	uint8_t *buf;
	const char *what;
};

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < PAGE_SZ / 8; i++)
		if (w[i])
			return false;
	return true;
}

static int read_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;	/* the object shrank under us */
			return -1;
		}
		buf += n;
		len -= n;
		off += n;
	}
	return 0;
}

/* The data of [from, to) (whole pages), read a chunk at a time: each run
 * of non-zero pages of a chunk goes to the callback. */
static int scan_segment(struct scan *sc, int fd, uint64_t from, uint64_t to)
{
	for (uint64_t a = from; a < to; a += CHUNK) {
		size_t len = to - a < CHUNK ? to - a : CHUNK, p = 0;
		if (read_full(fd, sc->buf, len, a) < 0) {
			pr_perror("%s: can't read its pages at offset %#lx", sc->what, (unsigned long)a);
			return -1;
		}
		while (p < len) {
			if (page_is_zero(sc->buf + p)) {
				p += PAGE_SZ;
				continue;
			}
			size_t q = p + PAGE_SZ;
			while (q < len && !page_is_zero(sc->buf + q))
				q += PAGE_SZ;
			if (sc->run(sc->arg, a + p, sc->buf + p, (q - p) / PAGE_SZ) < 0)
				return -1;
			p = q;
		}
	}
	return 0;
}

/* Only the parts that hold data (SEEK_DATA: pages in memory or swapped
 * out, whoever wrote them) are read. */
int shmem_pages_scan(int fd, uint64_t size, const char *what, shmem_run_fn *run, void *arg)
{
	struct scan sc = { run, arg, malloc(CHUNK), what };
	int ret = 0;

	if (!sc.buf) {
		pr_err("%s: out of memory", what);
		return -1;
	}
	for (uint64_t off = 0; off < size && !ret;) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		off_t hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
		if (data < 0 || hole < 0) {
			pr_perror("%s: can't find its pages", what);
			ret = -1;
			break;
		}
		uint64_t from = (uint64_t)data & ~(PAGE_SZ - 1);
		uint64_t to = ((uint64_t)hole + PAGE_SZ - 1) & ~(PAGE_SZ - 1);
		if (from >= size)
			break;
		if (to > size)
			to = size;
		ret = scan_segment(&sc, fd, from, to);
		off = to;
	}
	free(sc.buf);
	return ret;
}

/* ---- writing ---- */

/* The run of non-zero pages being gathered: its entry is written when it
 * ends (runs that meet at a chunk's edge are one), its bytes as they
 * come (so they follow the entries in order). */
struct run_writer {
	struct img pm, pg;
	uint64_t start, pages;
	uint64_t saved;
};

static int run_end(struct run_writer *w)
{
	if (!w->pages)
		return 0;
	int ret = pagemap_write_run(&w->pm, w->start, w->pages, PE_PRESENT);
	w->saved += w->pages * PAGE_SZ;
	w->pages = 0;
	return ret;
}

static int run_add(void *arg, uint64_t off, const uint8_t *data, uint64_t nr)
{
	struct run_writer *w = arg;
	if (w->pages && w->start + w->pages * PAGE_SZ != off && run_end(w) < 0)
		return -1;
	if (!w->pages)
		w->start = off;
	w->pages += nr;
	return img_write_raw(&w->pg, data, nr * PAGE_SZ);
}

int shmem_pages_write(int dirfd, uint64_t shmid, uint32_t pages_id, int fd, uint64_t size,
		      const char *what, uint64_t *saved)
{
	struct run_writer w = { 0 };
	PagemapHead head = PAGEMAP_HEAD__INIT;

	if (shmid > UINT32_MAX) {	/* inodes of the kernel's internal shmem mount are 32-bit */
		pr_err("%s: shared memory object %llu: its inode does not fit CRIU's image name", what,
		       (unsigned long long)shmid);
		return -1;
	}
	if (img_create(dirfd, &w.pm, IMG_PAGEMAP_SHMEM, shmid) < 0)
		return -1;
	if (img_create(dirfd, &w.pg, IMG_PAGES, pages_id) < 0) {
		img_abort(&w.pm);
		return -1;
	}
	head.pages_id = pages_id;
	if (img_write(&w.pm, &head.base) < 0 || shmem_pages_scan(fd, size, what, run_add, &w) < 0 ||
	    run_end(&w) < 0) {
		img_abort(&w.pm);
		img_abort(&w.pg);
		return -1;
	}
	if (img_finish(&w.pm) < 0) {
		img_abort(&w.pg);
		return -1;
	}
	*saved = w.saved;
	return img_finish(&w.pg);
}

/* ---- reading ---- */

static bool entry_in_parent(const PagemapEntry *pe)
{
	return (pe->has_flags && (pe->flags & PE_PARENT)) || (pe->has_in_parent && pe->in_parent);
}

static bool entry_present(const PagemapEntry *pe)
{
	return !pe->has_flags || (pe->flags & PE_PRESENT);
}

/* One entry: its bytes at *off in the pages file go to mem. */
static int read_entry(const PagemapEntry *pe, int pages_fd, uint64_t *off, uint8_t *mem, uint64_t size,
		      const char *pm_name)
{
	uint64_t pages = pagemap_run_pages(pe), len = pages * PAGE_SZ;
	if (entry_in_parent(pe)) {
		pr_err("image %s: pages at offset %#lx are in a parent dump, which stasis can't read "
		       "for shared memory", pm_name, (unsigned long)pe->vaddr);
		return -1;
	}
	if (!entry_present(pe))
		return 0;
	if (pe->vaddr & (PAGE_SZ - 1) || pe->vaddr > size || pages > (size - pe->vaddr) / PAGE_SZ) {
		pr_err("image %s: %lu pages at offset %#lx lie outside the object (%lu bytes)", pm_name,
		       (unsigned long)pages, (unsigned long)pe->vaddr, (unsigned long)size);
		return -1;
	}
	if (read_full(pages_fd, mem + pe->vaddr, len, *off) < 0) {
		pr_perror("image %s: can't read its pages at %#lx", pm_name, (unsigned long)*off);
		return -1;
	}
	*off += len;
	return 0;
}

int shmem_pages_read(int dirfd, uint64_t shmid, uint8_t *mem, uint64_t size)
{
	char pm_name[64], pg_name[64];
	struct img pm;
	PagemapHead *head;
	PagemapEntry *pe;
	uint64_t off = 0;
	int ret;

	if (shmid > UINT32_MAX) {
		pr_err("shared memory object %llu: no image can name it", (unsigned long long)shmid);
		return -1;
	}
	img_name(pm_name, sizeof(pm_name), IMG_PAGEMAP_SHMEM, shmid);
	if (img_open(dirfd, &pm, IMG_PAGEMAP_SHMEM, shmid) < 0)
		return errno == ENOENT ? 0 : -1;
	if (img_read_one(&pm, &pagemap_head__descriptor, (ProtobufCMessage **)&head) < 0) {
		img_close(&pm);
		return -1;
	}
	img_name(pg_name, sizeof(pg_name), IMG_PAGES, head->pages_id);
	img_free(head);
	int pages_fd = img_open_regular(dirfd, pg_name);
	if (pages_fd < 0) {
		pr_perror("can't open image %s (named by %s)", pg_name, pm_name);
		img_close(&pm);
		return -1;
	}
	while ((ret = img_read(&pm, &pagemap_entry__descriptor, (ProtobufCMessage **)&pe)) == 1) {
		ret = read_entry(pe, pages_fd, &off, mem, size, pm_name);
		img_free(pe);
		if (ret < 0)
			break;
	}
	close(pages_fd);
	img_close(&pm);
	return ret;
}
