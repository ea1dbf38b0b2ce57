/* Filling a new process's fresh private memory from its pages image
 * (premap.c), as fast as the machine allows.
 *
 * Restore is bound by making fresh pages: the kernel clears each page it
 * hands out, then the read copies the image's bytes over it. Two things
 * cut that down:
 * - Anonymous memory is filled with userfaultfd's UFFDIO_COPY, which
 *   allocates each page and copies into it without clearing it first,
 *   from a window of the pages image mapped (its page cache, no copy).
 *   Not where the kernel would have used huge pages for the plain read
 *   (THP "always"): those stay as they were, read in after a populate.
 * - Large fills are split in two halves by bytes, one per core: a
 *   second thread of the new process fills one half while it fills the
 *   other (the thread is gone before the process forks or is rebuilt).
 * Everything else (file mappings, no userfaultfd) is populated, then
 * read in with pread. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "image/vma.h"
#include "restore/fill.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/grow.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define FILL_CHUNK (4ul << 20)		/* one source window or pread at a time */
#define FILL_STACK (256ul << 10)	/* the second filler's */
#define FILL_PARALLEL_MIN (8ul << 20)	/* a thread costs ~0.1 ms, 8 MiB ~4 ms to fill */
#define FILL_UFFD_MIN (64ul << 10)	/* below, a plain read costs less than (un)registering */

int fill_add(struct fill_list *fl, const struct fill_job *j)
{
	if (grow_array(fl->j, fl->cap, fl->nr + 1, 16) < 0)
		return -1;
	fl->j[fl->nr++] = *j;
	fl->bytes += j->len;
	return 0;
}

void fill_free(struct fill_list *fl)
{
	free(fl->j);
	memset(fl, 0, sizeof(*fl));
}

static bool says_always(const char *path)
{
	char buf[128] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	return strstr(buf, "[always]") != NULL;
}

/* Whether the kernel would back a plain fault in a mapping with huge or
 * large pages without being asked (THP "always", for the PMD size or any
 * of the mTHP sizes), which UFFDIO_COPY never makes. */
bool fill_thp_always(void)
{
	static int always = -1;
	if (always < 0) {
		glob_t g;
		always = says_always("/sys/kernel/mm/transparent_hugepage/enabled");
		if (!always && glob("/sys/kernel/mm/transparent_hugepage/hugepages-*/enabled", 0, NULL, &g) == 0) {
			for (size_t i = 0; i < g.gl_pathc && !always; i++)
				always = says_always(g.gl_pathv[i]);
			globfree(&g);
		}
	}
	return always;
}

/* ---- one worker ---- */

/* A source image mapped whole, on first use. */
struct window {
	const char *p;			/* MAP_FAILED if it can't be */
	uint64_t len;
	bool tried;
};

struct filler {
	const struct fill_src *src;	/* the pages images */
	int nsrc;
	int uffd;			/* -1: none */
	pid_t pid;
	const struct fill_job *j;	/* its share: jobs j[0..nr-1], */
	size_t nr;
	uint64_t first_skip;		/* bytes of j[0] that are the other's */
	uint64_t last_len;		/* bytes of j[nr-1] that are its own (from its start) */
	int ret;
	struct window *win;		/* per source */
};

static int read_in(struct filler *f, const struct fill_src *s, uint64_t dst, uint64_t len, uint64_t off)
{
	/* in bulk first: cheaper than a fault per page inside the read */
	madvise((void *)dst, len, MADV_POPULATE_WRITE);
	while (len) {
		ssize_t n = pread(s->fd, (void *)dst, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			pr_perror("pid %d: can't read %s at %lu", f->pid, s->name, (unsigned long)off);
			return -1;
		}
		dst += n;
		len -= n;
		off += n;
	}
	return 0;
}

static int uffd_copy(struct filler *f, uint64_t dst, const char *src, uint64_t len)
{
	while (len) {
		struct uffdio_copy c = { .dst = dst, .src = (uint64_t)src, .len = len };
		if (ioctl(f->uffd, UFFDIO_COPY, &c) == 0)
			return 0;
		if (c.copy > 0) {	/* partly done: go on from there */
			dst += c.copy;
			src += c.copy;
			len -= c.copy;
			continue;
		}
		if (errno == EAGAIN || errno == EINTR)
			continue;
		pr_perror("pid %d: can't fill memory at %#lx", f->pid, (unsigned long)dst);
		return -1;
	}
	return 0;
}

/* Each image mapped whole once per filler: a window mapped and unmapped
 * per job cost two mmap_lock round trips and a TLB shootdown of the other
 * filler each, which made 50,000 one-page mappings take a second. */
static const struct window *map_image(struct filler *f, int src)
{
	struct window *w = &f->win[src];
	struct stat st;
	if (!w->tried && fstat(f->src[src].fd, &st) == 0 && st.st_size > 0) {
		w->len = (uint64_t)st.st_size;
		w->p = mmap(NULL, w->len, PROT_READ, MAP_SHARED, f->src[src].fd, 0);
	}
	w->tried = true;
	return w;
}

/* The image's bytes through its page cache, no copy on our side; if the
 * image can't be mapped, through a buffer. */
static int copy_in(struct filler *f, int src, uint64_t dst, uint64_t len, uint64_t off, char **buf)
{
	const struct window *w = map_image(f, src);
	const struct fill_src *s = &f->src[src];
	if (w->p != MAP_FAILED && off + len <= w->len) {
		/* in bulk: cheaper than a fault per page inside the copy */
		madvise((void *)(w->p + off), len, MADV_POPULATE_READ);
		return uffd_copy(f, dst, w->p + off, len);
	}
	if (!*buf) {
		*buf = mmap(NULL, FILL_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (*buf == MAP_FAILED) {
			*buf = NULL;
			pr_perror("pid %d: can't allocate a fill buffer", f->pid);
			return -1;
		}
	}
	for (uint64_t done = 0; done < len;) {
		ssize_t n = pread(s->fd, *buf, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			pr_perror("pid %d: can't read %s at %lu", f->pid, s->name, (unsigned long)(off + done));
			return -1;
		}
		if (uffd_copy(f, dst + done, *buf, n) < 0)
			return -1;
		done += n;
	}
	return 0;
}

static int fill_one(struct filler *f, const struct fill_job *j, uint64_t from, uint64_t to, char **buf)
{
	for (uint64_t a = from; a < to;) {
		uint64_t len = to - a < FILL_CHUNK ? to - a : FILL_CHUNK;
		int r = j->no_clear && f->uffd >= 0 ? copy_in(f, j->src, j->dst + a, len, j->off + a, buf) :
						       read_in(f, &f->src[j->src], j->dst + a, len, j->off + a);
		if (r < 0)
			return -1;
		progress_bytes(len);
		a += len;
	}
	return 0;
}

static void *filler_run(void *arg)
{
	struct filler *f = arg;
	struct window win[f->nsrc];
	char *buf = NULL;
	f->ret = 0;
	for (int s = 0; s < f->nsrc; s++)
		win[s] = (struct window){ MAP_FAILED, 0, false };
	f->win = win;
	for (size_t i = 0; i < f->nr && !f->ret; i++) {
		uint64_t from = i == 0 ? f->first_skip : 0;
		uint64_t to = i == f->nr - 1 ? f->last_len : f->j[i].len;
		f->ret = fill_one(f, &f->j[i], from, to, &buf);
	}
	if (buf)
		munmap(buf, FILL_CHUNK);
	for (int s = 0; s < f->nsrc; s++)
		if (win[s].p != MAP_FAILED)
			munmap((void *)win[s].p, win[s].len);
	return NULL;
}

/* ---- userfaultfd ---- */

/* Without the right to one (an unprivileged user where userfaultfd is
 * root's), -1: the memory is read in the plain way. User-mode only:
 * the kernel's own accesses to a range not filled yet fail at once
 * instead of waiting for a handler there is not. */
static int uffd_open(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct uffdio_api api = { .api = UFFD_API };
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whole mappings are registered (a part would split the mapping in
 * two), each once: the jobs of one mapping come one after the other. */
static bool first_of_mapping(const struct fill_list *fl, size_t i)
{
	return i == 0 || fl->j[i].vstart != fl->j[i - 1].vstart || fl->j[i].vend != fl->j[i - 1].vend;
}

/* The bytes to fill in the mapping whose first job is i: registering
 * and unregistering it changes its vma twice (mmap_lock, a split and a
 * merge), which a one-page mapping's clearing costs far less than
 * (100,000 of them: a third of the restore). */
static uint64_t mapping_bytes(const struct fill_list *fl, size_t i)
{
	uint64_t bytes = fl->j[i].len;
	for (size_t k = i + 1; k < fl->nr && !first_of_mapping(fl, k); k++)
		bytes += fl->j[k].len;
	return bytes;
}

static int uffd_mapping(int uffd, const struct fill_job *j, bool on)
{
	struct uffdio_register r = { .range = { j->vstart, j->vend - j->vstart },
				     .mode = UFFDIO_REGISTER_MODE_MISSING };
	return ioctl(uffd, on ? UFFDIO_REGISTER : UFFDIO_UNREGISTER, on ? (void *)&r : (void *)&r.range);
}

/* Registers the mappings of the jobs that want it; those of a mapping
 * that can't be go the plain way. Nothing registered: no userfaultfd at
 * all (-1). */
static int uffd_setup(struct fill_list *fl)
{
	bool want = false, any = false, ok = false;
	for (size_t i = 0; i < fl->nr; i++)
		want |= fl->j[i].no_clear;
	if (!want)
		return -1;
	int uffd = uffd_open();
	for (size_t i = 0; i < fl->nr; i++) {
		if (first_of_mapping(fl, i))
			ok = fl->j[i].no_clear && uffd >= 0 && mapping_bytes(fl, i) >= FILL_UFFD_MIN &&
			     uffd_mapping(uffd, &fl->j[i], true) == 0;
		fl->j[i].no_clear = ok;
		any |= ok;
	}
	if (uffd >= 0 && !any) {
		close(uffd);
		uffd = -1;
	}
	return uffd;
}

static int uffd_done(int uffd, const struct fill_list *fl, pid_t pid)
{
	int ret = 0;
	if (uffd < 0)
		return 0;
	for (size_t i = 0; i < fl->nr; i++)
		if (first_of_mapping(fl, i) && fl->j[i].no_clear && uffd_mapping(uffd, &fl->j[i], false) < 0) {
			pr_perror("pid %d: can't unregister memory at %#lx from userfaultfd", pid,
				  (unsigned long)fl->j[i].vstart);
			ret = -1;
		}
	close(uffd);
	return ret;
}

/* ---- the fill ---- */

/* The halves: a takes the jobs up to the byte half-way mark (cut inside
 * a job if need be, at a page), b the rest. */
static void split(const struct fill_list *fl, struct filler *a, struct filler *b)
{
	uint64_t half = fl->bytes / 2 / PAGE_SZ * PAGE_SZ, seen = 0;
	size_t i = 0;
	while (i < fl->nr - 1 && seen + fl->j[i].len <= half)
		seen += fl->j[i++].len;
	uint64_t cut = half - seen;	/* within j[i] */
	if (cut > fl->j[i].len)
		cut = fl->j[i].len;
	a->j = fl->j;
	a->first_skip = 0;
	if (cut == 0) {
		a->nr = i;
		a->last_len = i ? fl->j[i - 1].len : 0;
	} else {
		a->nr = i + 1;
		a->last_len = cut;
	}
	b->j = fl->j + i;
	b->nr = fl->nr - i;
	b->first_skip = cut;
	b->last_len = fl->j[fl->nr - 1].len;
}

int fill_run(struct fill_list *fl, const struct fill_src *src, int nsrc, pid_t pid)
{
	if (!fl->nr)
		return 0;
	int uffd = uffd_setup(fl);
	struct filler a = { src, nsrc, uffd, pid, fl->j, fl->nr, 0, fl->j[fl->nr - 1].len, 0, NULL }, b = a;
	pthread_t th;
	bool two = false;

	void *stack = MAP_FAILED;

	if (fl->bytes >= FILL_PARALLEL_MIN) {
		split(fl, &a, &b);
		/* a stack of our own, unmapped after: none is left behind (the
		 * children forked next place their memory where they want) */
		pthread_attr_t at;
		stack = b.nr ? mmap(NULL, FILL_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) :
			       MAP_FAILED;
		two = stack != MAP_FAILED && pthread_attr_init(&at) == 0;
		if (two) {
			two = pthread_attr_setstack(&at, stack, FILL_STACK) == 0 &&
			      pthread_create(&th, &at, filler_run, &b) == 0;
			pthread_attr_destroy(&at);
		}
		if (!two) {	/* one thread does all */
			a = (struct filler){ src, nsrc, uffd, pid, fl->j, fl->nr, 0, fl->j[fl->nr - 1].len, 0, NULL };
			b.ret = 0;
		}
	}
	filler_run(&a);
	if (two)
		pthread_join(th, NULL);
	if (stack != MAP_FAILED)
		munmap(stack, FILL_STACK);
	int ret = a.ret < 0 || (two && b.ret < 0) ? -1 : 0;
	if (uffd_done(uffd, fl, pid) < 0)
		ret = -1;
	return ret;
}
