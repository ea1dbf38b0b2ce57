/* Pages from the local images: pages-ID.img holds the bytes of every
 * PE_PRESENT run of pagemap-PID.img, in order. The file is mapped, so
 * that UFFDIO_COPY takes the pages straight from the page cache (one
 * copy); where it can't be mapped, they are read. */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/img.h"
#include "image/pagemap.h"
#include "image/vma.h"
#include "lazy/source.h"
#include "util/log.h"
#include "util/ranges.h"

struct local_run {
	uint64_t start, end;
	int64_t off;		/* in the pages image; -1: not in it */
};

struct local_src {
	struct lazy_src s;
	int fd;
	uint64_t size;
	const char *map;	/* the whole file, or NULL */
	struct local_run *run;
	int nr;
};

static const struct local_run *find_run(const struct local_src *ls, uint64_t addr)
{
	ptrdiff_t i = runs_index(ls->run, (size_t)ls->nr, addr);
	return i < 0 ? NULL : &ls->run[i];
}

static const void *local_get(struct lazy_src *s, uint64_t addr, void *buf, size_t len)
{
	struct local_src *ls = (struct local_src *)s;
	const struct local_run *r = find_run(ls, addr);
	if (!r || addr + len > r->end || r->off < 0) {
		pr_err("pid %d: pages %#lx+%zu are not in the local images (pages left on the dump's page server?)",
		       s->pid, (unsigned long)addr, len);
		return NULL;
	}
	uint64_t off = r->off + (addr - r->start);
	if (off + len > ls->size) {
		pr_err("pid %d: the pages image is short at %#lx", s->pid, (unsigned long)addr);
		return NULL;
	}
	if (ls->map)
		return ls->map + off;
	void *at = buf;
	while (len) {
		ssize_t n = pread(ls->fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_perror("pid %d: can't read pages at %#lx", s->pid, (unsigned long)addr);
			return NULL;
		}
		buf = (char *)buf + n;
		off += n;
		len -= n;
	}
	return at;
}

static void local_free(struct lazy_src *s)
{
	struct local_src *ls = (struct local_src *)s;
	if (ls->fd >= 0)
		close(ls->fd);
	if (ls->map)
		munmap((void *)ls->map, ls->size);
	free(ls->run);
	free(ls);
}

struct lazy_src *lazy_src_local(int dirfd, pid_t pid)
{
	char name[IMG_NAME_MAX];
	PagemapHead *h;
	PagemapEntry **pe = NULL;
	int n = 0;
	struct stat st;
	struct local_src *ls = calloc(1, sizeof(*ls));

	if (!ls)
		return NULL;
	ls->s = (struct lazy_src){ local_get, local_free, pid, 1 };
	ls->fd = -1;
	if (img_load_headed(dirfd, IMG_PAGEMAP, pid, (ProtobufCMessage **)&h, (void ***)&pe, &n) < 0)
		goto fail;
	img_name(name, sizeof(name), IMG_PAGES, h->pages_id);
	img_free(h);
	ls->run = calloc(n + 1, sizeof(*ls->run));
	ls->fd = img_open_regular(dirfd, name);
	if (!ls->run || ls->fd < 0 || fstat(ls->fd, &st) < 0) {
		pr_perror("pid %d: can't open %s", pid, name);
		goto fail;
	}
	ls->size = st.st_size;
	void *m = ls->size ? mmap(NULL, ls->size, PROT_READ, MAP_SHARED, ls->fd, 0) : MAP_FAILED;
	ls->map = m == MAP_FAILED ? NULL : m;
	uint64_t off = 0;
	for (int i = 0; i < n; i++) {
		bool present = pagemap_run_saved(pe[i]);
		uint64_t len = pagemap_run_pages(pe[i]) * PAGE_SZ;
		ls->run[ls->nr++] = (struct local_run){ pe[i]->vaddr, pe[i]->vaddr + len, present ? (int64_t)off : -1 };
		if (present)
			off += len;
		if (i && ls->run[i].start < ls->run[i - 1].end) {
			pr_err("image pagemap-%d.img: page runs overlap or are not sorted", pid);
			goto fail;
		}
	}
	for (int i = 0; i < n; i++)
		img_free(pe[i]);
	free(pe);
	return &ls->s;
fail:
	for (int i = 0; i < n; i++)
		img_free(pe[i]);
	free(pe);
	local_free(&ls->s);
	return NULL;
}
