/* Memory: the mappings (mm-PID.img) and the contents of the pages that
 * matter (pagemap-PID.img + pages-ID.img). Shared anonymous memory is
 * not in them: it is saved once for the tree (dump/shmem.c).
 *
 * Only pages that are present or swapped are saved, never the zero page,
 * and in private file mappings only the pages the task wrote (anonymous
 * copies); the rest comes back from the file. Present pages are found with
 * PAGEMAP_SCAN (6.7+) or, on older kernels, by reading /proc/PID/pagemap.
 * The data moves with process_vm_readv into a buffer that stays in the
 * cache and one pwrite() per buffer, in two threads for large dumps. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dump/dump.h"
#include "task/guards.h"
#include "dump/pages.h"
#include "dump/ps_send.h"
#include "dump/track.h"
#include "dump/live.h"
#include "pagemap.pb-c.h"
#include "image/img.h"
#include "image/lazy.h"
#include "dump/lazy_serve.h"
#include "image/pagemap.h"
#include "image/dedup.h"
#include "image/stats.h"
#include "image/vma.h"
#include "proc/proc.h"
#include "task/sysv_shm.h"
#include "util/compat.h"
#include "util/fault.h"
#include "util/bgqueue.h"
#include "util/log.h"
#include "util/progress.h"

/* Small enough to stay in the core's cache between the read from the
 * task and the write into the pages image: the second copy then reads
 * the cache, not memory (measured: 1 GiB on tmpfs 0.35 s, 8 MiB buffers
 * 0.37 s; below 256 KiB the syscalls start to count). */
#define COPY_BUF (512ul << 10)
#define SCAN_VEC 512

/* ---- finding the pages to save ---- */

static int scan_supported = -1;	/* PAGEMAP_SCAN: unknown, no, yes */

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE    (1ull << 61)
#define PM_PFN     ((1ull << 55) - 1)
#define PM_SWAP_TYPE(e) ((e) & 0x1f)
/* The swap "type" of a pte marker: userfaultfd-wp leaves these on pages
 * that were never there or were dropped (MADV_DONTNEED); pagemap, and
 * PAGEMAP_SCAN, report them as swapped. */
#define SWP_PTE_MARKER 31

/* Pages PAGEMAP_SCAN says are swapped (not present): only the real swap
 * entries, not the markers of a tracked (write-protected) range. Error:
 * -2 out of memory, -1 pagemap read (errno). */
static int add_swapped(int pm, struct page_runs *pr, uint64_t start, uint64_t end, bool readable)
{
	for (uint64_t addr = start; addr < end; addr += PAGE_SZ) {
		uint64_t e;
		if (pread(pm, &e, 8, addr / PAGE_SZ * 8) != 8)
			return -1;
		if (!(e & PM_SWAPPED) || PM_SWAP_TYPE(e & PM_PFN) == SWP_PTE_MARKER)
			continue;
		if (page_runs_add(pr, addr, addr + PAGE_SZ, readable) < 0)
			return -2;
	}
	return 0;
}

/* par: where unwritten pages the parent dump holds go, for a mapping the
 * userfaultfd tracker follows (track_scan_splits): one walk sorts them,
 * where track_split would walk the mapping again. NULL: all to pr. */
static int scan_vma_ioctl(struct dump_ctx *dc, int pm, const struct proc_vma *v, bool anon_only,
			  struct page_runs *pr, struct page_runs *par)
{
	struct page_region vec[SCAN_VEC];
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.start = v->start,
		.end = v->end,
		.vec = (uint64_t)vec,
		.vec_len = SCAN_VEC,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.category_inverted = PAGE_IS_PFNZERO | (anon_only ? PAGE_IS_FILE : 0),
		.category_mask = PAGE_IS_PFNZERO | (anon_only ? PAGE_IS_FILE : 0),
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | (par ? PAGE_IS_WRITTEN : 0),
	};
	bool readable = v->prot & PROT_READ;

	while (a.start < a.end) {
		long n = ioctl(pm, PAGEMAP_SCAN, &a);
		if (n < 0)
			return -1;
		for (long i = 0; i < n; i++) {
			struct page_runs *to = par && !(vec[i].categories & PAGE_IS_WRITTEN) &&
					       track_in_parent(dc, vec[i].start, vec[i].end) ? par : pr;
			int r = vec[i].categories & PAGE_IS_PRESENT ?
				page_runs_add(to, vec[i].start, vec[i].end, readable) :
				add_swapped(pm, pr, vec[i].start, vec[i].end, readable);
			if (r < 0)
				return r == -1 ? -2 : -1;
		}
		if (a.walk_end <= a.start && n == 0)
			break;
		a.start = a.walk_end;
	}
	return 0;
}

/* The pfn the kernel's zero page has, read from our own pagemap. */
static uint64_t zero_pfn(void)
{
	static uint64_t pfn = ~0ull;
	if (pfn != ~0ull)
		return pfn;
	volatile char *p = mmap(NULL, PAGE_SZ, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return pfn;
	(void)p[0];
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e = 0;
	if (fd >= 0 && pread(fd, &e, 8, (uint64_t)p / PAGE_SZ * 8) == 8 && (e & PM_PRESENT))
		pfn = e & PM_PFN;
	if (fd >= 0)
		close(fd);
	munmap((void *)p, PAGE_SZ);
	return pfn;
}

static int scan_vma_pagemap(int pm, const struct proc_vma *v, bool anon_only, struct page_runs *pr)
{
	uint64_t buf[4096], zpfn = zero_pfn();
	bool readable = v->prot & PROT_READ;

	/* nothing in memory or swap (smaps says, read frozen): no 8 bytes
	 * of pagemap per page to read (a reservation of 8 TiB is 16 GB) */
	if (v->sizes_known && !v->rss_kb && !v->swap_kb)
		return 0;

	for (uint64_t addr = v->start; addr < v->end;) {
		size_t pages = (v->end - addr) / PAGE_SZ;
		if (pages > 4096)
			pages = 4096;
		ssize_t n = pread(pm, buf, pages * 8, addr / PAGE_SZ * 8);
		if (n != (ssize_t)(pages * 8))
			return -1;
		for (size_t i = 0; i < pages; i++, addr += PAGE_SZ) {
			uint64_t e = buf[i];
			if (!(e & (PM_PRESENT | PM_SWAPPED)))
				continue;
			if (!(e & PM_PRESENT) && PM_SWAP_TYPE(e & PM_PFN) == SWP_PTE_MARKER)
				continue;
			if (anon_only && (e & PM_FILE))
				continue;
			if ((e & PM_PRESENT) && (e & PM_PFN) && (e & PM_PFN) == zpfn)
				continue;
			if (page_runs_add(pr, addr, addr + PAGE_SZ, readable) < 0)
				return -2;
		}
	}
	return 0;
}

static int scan_vma(struct dump_ctx *dc, int pm, const struct proc_vma *v, bool anon_only,
		    struct page_runs *pr, struct page_runs *par)
{
	int ret;
	/* what a kernel before 6.7 does, for the tests on newer ones */
	if (scan_supported == -1 && getenv("STASIS_NO_PAGEMAP_SCAN")) {
		pr_info("PAGEMAP_SCAN turned off, reading pagemap instead");
		scan_supported = 0;
	}
	if (scan_supported != 0) {
		ret = scan_vma_ioctl(dc, pm, v, anon_only, pr, track_scan_splits(dc, v) ? par : NULL);
		if (ret == 0) {
			scan_supported = 1;
			return 0;
		}
		if (ret == -1 && scan_supported == -1 && (errno == ENOTTY || errno == EINVAL)) {
			pr_info("PAGEMAP_SCAN not available, reading pagemap instead");
			scan_supported = 0;
		} else {
			if (ret == -1)
				pr_perror("pid %d: can't scan pages of %#lx-%#lx", dc->pid,
					  (unsigned long)v->start, (unsigned long)v->end);
			return -1;
		}
	}
	ret = scan_vma_pagemap(pm, v, anon_only, pr);
	if (ret == -1)
		pr_perror("pid %d: can't read pagemap of %#lx-%#lx", dc->pid,
			  (unsigned long)v->start, (unsigned long)v->end);
	return ret < 0 ? -1 : 0;
}

/* ---- copying them ----
 *
 * The runs are split in two halves by bytes and copied by two threads at
 * once, each into its own part of the pages file (pwrite at known
 * offsets): reading the task's memory and filling the page cache then
 * proceed on both cores. */

struct copy_job {
	pid_t pid;
	int out;			/* pages-ID.img */
	uint64_t off;			/* where this job's bytes go in it */
	const struct page_run *r;
	size_t nr;
	uint64_t first_start;		/* the first run may start midway */
	uint64_t last_end;		/* the last run may end midway */
	struct ck_state ck;		/* the hash of its bytes, as they go */
	int ret;
	int write_errno;		/* the file's write failed: said once, by copy_pages */
	bool running;			/* the tree runs (a pre-dump's copy): see read_lenient */
	uint64_t zeroed;		/* pages it could not read then, saved as zeros */
};

/* The bytes are hashed here, in the job's thread, while the buffer just
 * filled is in the cache: the list of checksums never reads the pages
 * back in frozen time (image/checksum.h). */
static int put(struct copy_job *j, const char *buf, size_t len)
{
	uint64_t start = j->off;
	ck_update(&j->ck, buf, len);
	while (len) {
		ssize_t n = pwrite(j->out, buf, len, j->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			j->write_errno = n < 0 ? errno : ENOSPC;
			return -1;
		}
		buf += n;
		len -= n;
		j->off += n;
	}
	progress_bytes(j->off - start);
	fault_point("pages-written");
	return 0;
}

/* Pages the task may not read itself (PROT_NONE, write-only) come
 * through /proc/PID/mem, which reads as a debugger does. */
/* A pre-dump's copy runs beside the tree, which may unmap memory or
 * exit meanwhile: what can't be read then is saved as zeros. Those pages
 * are no longer what they were when the tracking restarted at the
 * freeze, so no next dump takes them from this one: they are gone, or
 * mapped anew (a new mapping reads as all written to both trackers), or
 * their process is (another with its pid has no tracker this dump
 * armed). */
static void read_lenient(struct copy_job *j, const struct iovec *remote, int niov, char *buf)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", j->pid);
	int memfd = open(path, O_RDONLY | O_CLOEXEC);	/* -1: it exited, all zeros */
	for (int i = 0; i < niov; buf += remote[i++].iov_len)
		j->zeroed += pages_read_or_zero(memfd, (uint64_t)remote[i].iov_base, remote[i].iov_len, buf);
	if (memfd >= 0)
		close(memfd);
}

static int copy_unreadable(struct copy_job *j, uint64_t start, uint64_t end, char *buf)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", j->pid);
	int memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (memfd < 0 && !j->running) {
		pr_perror("pid %d: can't open %s", j->pid, path);
		return -1;
	}
	for (uint64_t a = start; a < end;) {
		size_t len = end - a < COPY_BUF ? end - a : COPY_BUF;
		if (memfd < 0 || pread(memfd, buf, len, a) != (ssize_t)len) {
			struct iovec rest = { (void *)a, len };
			if (!j->running) {
				pr_perror("pid %d: can't read memory at %#lx", j->pid, (unsigned long)a);
				if (memfd >= 0)
					close(memfd);
				return -1;
			}
			read_lenient(j, &rest, 1, buf);
		}
		if (put(j, buf, len) < 0) {
			if (memfd >= 0)
				close(memfd);
			return -1;
		}
		a += len;
	}
	if (memfd >= 0)
		close(memfd);
	return 0;
}

static int flush_batch(struct copy_job *j, struct iovec *remote, int *niov, char *buf, size_t *fill)
{
	struct iovec local = { buf, *fill };
	if (!*niov)
		return 0;
	ssize_t n = process_vm_readv(j->pid, &local, 1, remote, *niov, 0);
	if (n != (ssize_t)*fill && j->running && (n >= 0 || errno == EFAULT || errno == ESRCH)) {
		read_lenient(j, remote, *niov, buf);
		n = *fill;
	}
	if (n != (ssize_t)*fill) {
		pr_perror("pid %d: can't read memory at %#lx (got %zd of %zu bytes)", j->pid,
			  (unsigned long)remote[0].iov_base, n, *fill);
		return -1;
	}
	*niov = 0;
	*fill = 0;
	return put(j, buf, n);
}

static int copy_job_run(struct copy_job *j, char *buf)
{
	struct iovec remote[IOV_MAX];
	int niov = 0;
	size_t fill = 0;

	for (size_t i = 0; i < j->nr; i++) {
		uint64_t start = i == 0 ? j->first_start : j->r[i].start;
		uint64_t end = i == j->nr - 1 ? j->last_end : j->r[i].end;
		if (!j->r[i].readable) {
			if (flush_batch(j, remote, &niov, buf, &fill) < 0 ||
			    copy_unreadable(j, start, end, buf) < 0)
				return -1;
			continue;
		}
		for (uint64_t a = start; a < end;) {
			size_t len = end - a;
			if (len > COPY_BUF - fill)
				len = COPY_BUF - fill;
			remote[niov++] = (struct iovec){ (void *)a, len };
			fill += len;
			a += len;
			if ((fill == COPY_BUF || niov == IOV_MAX) && flush_batch(j, remote, &niov, buf, &fill) < 0)
				return -1;
		}
	}
	return flush_batch(j, remote, &niov, buf, &fill);
}

struct copy_arg {
	struct copy_job *job;
	char **buf;
};

static void *copy_job_thread(void *arg)
{
	struct copy_arg *a = arg;
	if (!*a->buf) {
		*a->buf = mmap(NULL, COPY_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (*a->buf == MAP_FAILED) {
			*a->buf = NULL;
			pr_perror("can't allocate a copy buffer");
			a->job->ret = -1;
			return NULL;
		}
	}
	a->job->ret = copy_job_run(a->job, *a->buf);
	return NULL;
}

void dump_free_copy_bufs(struct copy_bufs *b)
{
	for (int i = 0; i < 2; i++)
		if (b->b[i])
			munmap(b->b[i], COPY_BUF);
}

/* Splits the runs at the byte half-way mark, inside a run if need be:
 * run i holds the mark; a gets runs 0..i up to it, b the rest. Only called
 * with plenty of bytes, so the mark is past the first run's start. */
static void split_jobs(const struct page_runs *pr, struct copy_job *a, struct copy_job *b)
{
	uint64_t half = pr->bytes / 2 / PAGE_SZ * PAGE_SZ, seen = 0;
	size_t i = 0;
	while (seen + (pr->r[i].end - pr->r[i].start) <= half) {
		seen += pr->r[i].end - pr->r[i].start;
		i++;
	}
	uint64_t split = pr->r[i].start + (half - seen);

	a->r = pr->r;
	a->first_start = pr->r[0].start;
	if (split == pr->r[i].start) {
		a->nr = i;
		a->last_end = pr->r[i - 1].end;
	} else {
		a->nr = i + 1;
		a->last_end = split;
	}
	b->r = pr->r + i;
	b->nr = pr->nr - i;
	b->first_start = split;
	b->last_end = pr->r[pr->nr - 1].end;
	b->off = half;
}

#define PARALLEL_MIN (8ul << 20)	/* a thread costs ~0.1 ms; 8 MiB copy ~3 ms */

/* The hashes of what copy_pages wrote: one part per job. */
struct copy_hashes {
	int n;
	uint64_t off[2], hash[2];
};

/* Both jobs write one file: a full disk fails both, said once. */
static int copy_result(const struct copy_job *a, const struct copy_job *b)
{
	int werr = a->write_errno ? a->write_errno : b ? b->write_errno : 0;
	uint64_t zeroed = a->zeroed + (b ? b->zeroed : 0);
	if (werr) {
		errno = werr;
		pr_perror("pid %d: can't write the pages image", a->pid);
	}
	if (zeroed)
		pr_info("pid %d: %lu pages unmapped or discarded during the copy, saved as zeros", a->pid,
			(unsigned long)zeroed);
	return a->ret < 0 || (b && b->ret < 0) ? -1 : 0;
}

static int copy_pages(struct dump_ctx *dc, const struct page_runs *pr, int out, struct copy_hashes *h, bool running)
{
	struct copy_job a = { .pid = dc->pid, .out = out, .running = running }, b = a;
	struct copy_arg aa = { &a, &dc->bufs->b[0] }, ba = { &b, &dc->bufs->b[1] };
	pthread_t th;

	ck_init(&a.ck);
	ck_init(&b.ck);
	h->n = 1;
	h->off[0] = 0;
	if (!pr->nr) {
		h->hash[0] = ck_digest(&a.ck);
		return 0;
	}
	if (pr->bytes < PARALLEL_MIN) {
		a.r = pr->r;
		a.nr = pr->nr;
		a.first_start = pr->r[0].start;
		a.last_end = pr->r[pr->nr - 1].end;
		copy_job_thread(&aa);
		h->hash[0] = ck_digest(&a.ck);
		h->n = a.ck.total == pr->bytes ? 1 : 0;
		return copy_result(&a, NULL);
	}
	split_jobs(pr, &a, &b);
	h->off[1] = b.off;
	if (pthread_create(&th, NULL, copy_job_thread, &ba) != 0) {
		pr_err("can't start a copy thread");
		return -1;
	}
	copy_job_thread(&aa);
	pthread_join(th, NULL);
	h->hash[0] = ck_digest(&a.ck);
	h->hash[1] = ck_digest(&b.ck);
	/* each job hashed exactly its part, or the list hashes the file */
	h->n = a.ck.total == h->off[1] && a.ck.total + b.ck.total == pr->bytes ? 2 : 0;
	return copy_result(&a, &b);
}

/* The pages file's line of the list, from the hashes of the copy. */
static int list_pages(struct dump_ctx *dc, const char *name, const struct page_runs *pr,
		      const struct copy_hashes *h)
{
	if (!dc->ck || !h->n)
		return 0;	/* hashed when the list is written */
	if (h->n == 1)
		return ck_list_add_known(dc->ck, name, h->hash[0], pr->bytes);
	return ck_list_add_parts(dc->ck, name, pr->bytes, h->n, h->off, h->hash);
}

/* ---- the mappings ---- */

static bool is_shared_anon(const struct proc_vma *v)
{
	return v->shared && (!strncmp(v->path, "/dev/zero", 9) || !strncmp(v->path, "[anon_shmem", 11));
}

static bool is_anon(const struct proc_vma *v)
{
	return !v->path[0] || !strncmp(v->path, "[anon:", 6) || !strncmp(v->path, "[stack:", 7);
}

/* MAP_HUGETLB|MAP_ANONYMOUS memory: a file of the kernel's own hugetlbfs
 * mount, named so. */
static bool is_anon_hugetlb(const struct proc_vma *v)
{
	return (v->mapflags & MAP_HUGETLB) && !strncmp(v->path, "/anon_hugepage", 14);
}

/* MAP_HUGE_* of a page size: its log2 above MAP_HUGE_SHIFT. */
static int huge_size_flag(unsigned long kb)
{
	int shift = 10;
	while (kb > 1 && shift < 10 + 63) {
		kb >>= 1;
		shift++;
	}
	return (shift & MAP_HUGE_MASK) << MAP_HUGE_SHIFT;
}

/* The file behind a mapping must still be at its path, or we could not
 * map it again; 1 if it was deleted (then its bytes are saved). */
static int check_mapped_file(struct dump_ctx *dc, const struct proc_vma *v)
{
	struct stat st;
	char at[PATH_MAX + 32];
	if (strstr(v->path, " (deleted)"))
		return 1;	/* saved whole, as a ghost file */
	/* io_uring's rings, a perf event's buffer, a bpf map: no file to map
	 * again (their fds are refused by name too, but the mappings come
	 * first and would say the file moved) */
	if (!strncmp(v->path, "anon_inode:", 11)) {
		pr_err("pid %d: %" PRIx64 "-%" PRIx64 " is a mapping of %s, which stasis can't dump; unmap it and "
		       "close its fd before the dump (or leave that process out of the tree)",
		       dc->pid, v->start, v->end, v->path);
		return -1;
	}
	if (stat(proc_tree_path(dc->pid, v->path, at, sizeof(at)), &st) < 0 || st.st_ino != v->ino || st.st_dev != v->dev) {
		pr_err("pid %d: mapped file %s was replaced or moved since it was mapped", dc->pid, v->path);
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		pr_err("pid %d: mapping of %s (not a regular file) is not supported", dc->pid, v->path);
		return -1;
	}
	return 0;
}

/* How the file of a mapping was opened, so restore opens it so again and
 * a later mprotect works as before: the mode of its map_files link says
 * (r for read, w for write). Without the link, a guess from the mapping. */
static uint32_t map_open_flags(const struct proc_vma *v, const char *link)
{
	struct stat st;
	if (lstat(link, &st) < 0)
		return (v->shared && (v->prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;
	switch (st.st_mode & 0600) {
	case 0600:
		return O_RDWR;
	case 0200:
		return O_WRONLY;
	default:
		return O_RDONLY;
	}
}

/* A socket's mapping (a packet socket's rings): the socket's file id,
 * as CRIU records it; no pages (they are the socket's). */
static int socket_vma(struct dump_ctx *dc, const struct proc_vma *v, VmaEntry *e)
{
	char src[96];
	snprintf(src, sizeof(src), "/proc/%d/map_files/%lx-%lx", dc->pid, (unsigned long)v->start,
		 (unsigned long)v->end);
	struct path_facts p = { dc->pid, v->path, src, O_RDWR, true };
	uint32_t id;
	if (files_dump_path(dc->files, dc->o, &p, &id) < 0)
		return -1;
	e->status = VMA_AREA_REGULAR | VMA_AREA_SOCKET;
	e->shmid = id;
	e->pgoff = v->pgoff;
	return 0;
}

static int vma_classify(struct dump_ctx *dc, const struct proc_vma *v, VmaEntry *e)
{
	e->start = v->start;
	e->end = v->end;
	e->prot = v->prot;
	e->fd = -1;
	e->flags = (v->shared ? MAP_SHARED : MAP_PRIVATE) | (v->growsdown ? MAP_GROWSDOWN : 0) | v->mapflags;
	/* droppable is a mapping type of its own, in place of private */
	if (v->mapflags & MAP_DROPPABLE)
		e->flags &= ~MAP_PRIVATE;
	e->has_madv = v->madv != 0;
	e->madv = v->madv;

	switch (v->special) {
	case VMA_VSYSCALL:
		e->status = VMA_AREA_VSYSCALL;
		e->flags |= MAP_ANONYMOUS;
		return 0;
	case VMA_VDSO:
		e->status = VMA_AREA_REGULAR | VMA_AREA_VDSO | VMA_ANON_PRIVATE;
		e->flags |= MAP_ANONYMOUS;
		return 0;
	case VMA_VVAR:
		e->status = VMA_AREA_REGULAR | VMA_AREA_VVAR;
		e->flags |= MAP_ANONYMOUS;
		return 0;
	case VMA_HEAP:
		e->status = VMA_AREA_REGULAR | VMA_AREA_HEAP | VMA_ANON_PRIVATE;
		e->flags |= MAP_ANONYMOUS;
		return 0;
	case VMA_STACK:
		e->status = VMA_AREA_REGULAR | VMA_AREA_STACK | VMA_ANON_PRIVATE;
		e->flags |= MAP_ANONYMOUS;
		return 0;
	case VMA_OTHER:
		if (is_anon(v))
			break;
		if (!strncmp(v->path, "[anon_shmem", 11))
			break;
		pr_err("pid %d: mapping %#lx-%#lx %s is not supported", dc->pid,
		       (unsigned long)v->start, (unsigned long)v->end, v->path);
		return -1;
	default:
		break;
	}
	if (is_anon_hugetlb(v)) {
		/* the kernel's hugetlbfs object behind MAP_HUGETLB: anonymous
		 * memory in huge pages, as CRIU saves it */
		e->flags |= MAP_ANONYMOUS | huge_size_flag(v->page_kb);
		e->status = VMA_AREA_REGULAR | (v->shared ? VMA_ANON_SHARED : VMA_ANON_PRIVATE);
		if (v->shared) {
			e->shmid = v->ino;
			e->pgoff = v->pgoff;
		}
		return 0;
	}
	if (!strncmp(v->path, "/[aio]", 6)) {
		e->status = VMA_AREA_AIORING;	/* an io_setup() ring: mm.c's aios */
		return 0;
	}
	/* shared anonymous memory: the object (its inode) and where in it
	 * the mapping starts; its pages are saved once (dump/shmem.c). One
	 * also open as a file is a memfd's, below. */
	if ((is_shared_anon(v) && !shmem_dump_is_file(dc->shmem, v->ino)) || (is_anon(v) && v->shared)) {
		e->status = VMA_AREA_REGULAR | VMA_ANON_SHARED;
		e->flags |= MAP_ANONYMOUS;
		e->shmid = v->ino;
		e->pgoff = v->pgoff;
		return 0;
	}
	if (is_anon(v)) {
		e->status = VMA_AREA_REGULAR | VMA_ANON_PRIVATE;
		e->flags |= MAP_ANONYMOUS;
		return 0;
	}
	if (!strncmp(v->path, "/SYSV", 5))
		return sysv_shm_dump_vma(dc->pid, v->start, v->end, v->ino, v->pgoff, e);
	if (!strncmp(v->path, "socket:[", 8))
		return socket_vma(dc, v, e);
	if (check_mapped_file(dc, v) < 0)
		return -1;
	char src[96];
	snprintf(src, sizeof(src), "/proc/%d/map_files/%lx-%lx", dc->pid, (unsigned long)v->start,
		 (unsigned long)v->end);
	uint32_t id, oflags = map_open_flags(v, src);
	struct path_facts p = { dc->pid, v->path, src, oflags, true };
	if (files_dump_path(dc->files, dc->o, &p, &id) < 0)
		return -1;
	bool memfd = files_type(dc->files, id) == FD_TYPES__MEMFD;
	e->status = VMA_AREA_REGULAR | (v->shared ? VMA_FILE_SHARED : VMA_FILE_PRIVATE) |
		    (memfd ? VMA_AREA_MEMFD : 0);
	if (v->mapflags & MAP_HUGETLB)	/* a hugetlbfs file (a MFD_HUGETLB memfd): its page size, as CRIU */
		e->flags |= huge_size_flag(v->page_kb);
	e->shmid = id;
	e->pgoff = v->pgoff;
	e->has_fdflags = 1;
	e->fdflags = oflags;
	return 0;
}

/* The saved auxv without its AT_NULL terminator (restore's PR_SET_MM_MAP
 * ends it anyway): on this kernel that is 22 pairs, what CRIU's restore
 * accepts at most, where the terminator would make one too many. */
static int read_auxv(struct dump_ctx *dc, MmEntry *mm)
{
	char buf[128 * sizeof(uint64_t)];
	ssize_t n = proc_read_file(dc->pid, "auxv", buf, sizeof(buf));
	if (n <= 0) {
		pr_perror("pid %d: can't read auxv", dc->pid);
		return -1;
	}
	uint64_t *auxv = malloc(n);
	if (!auxv)
		return -1;
	memcpy(auxv, buf, n);
	size_t words = n / 8;
	for (size_t i = 0; i + 1 < words; i += 2)
		if (auxv[i] == 0) {	/* AT_NULL */
			words = i;
			break;
		}
	mm->n_mm_saved_auxv = words;
	mm->mm_saved_auxv = auxv;
	return 0;
}

static int fill_mm_fields(struct dump_ctx *dc, MmEntry *mm)
{
	const struct proc_stat *s = &dc->stat;
	char exe[PATH_MAX];
	long dumpable;
	char link[64];

	mm->mm_start_code = s->start_code;
	mm->mm_end_code = s->end_code;
	mm->mm_start_data = s->start_data;
	mm->mm_end_data = s->end_data;
	mm->mm_start_stack = s->start_stack;
	mm->mm_start_brk = s->start_brk;
	mm->mm_arg_start = s->arg_start;
	mm->mm_arg_end = s->arg_end;
	mm->mm_env_start = s->env_start;
	mm->mm_env_end = s->env_end;
	if (inj_call(&dc->inj, &dumpable, INJ(SYS_brk)) < 0)
		return -1;
	mm->mm_brk = dumpable;	/* brk(0) answers the current break */
	if (inj_call(&dc->inj, &dumpable, INJ(SYS_prctl, PR_GET_DUMPABLE)) < 0)
		return -1;
	mm->has_dumpable = 1;
	mm->dumpable = dumpable;
	long thp_off;
	if (inj_call(&dc->inj, &thp_off, INJ(SYS_prctl, PR_GET_THP_DISABLE, 0, 0, 0, 0)) < 0)
		return -1;
	mm->has_thp_disabled = 1;
	mm->thp_disabled = thp_off != 0;
	snprintf(link, sizeof(link), "/proc/%d/exe", dc->pid);
	ssize_t n = readlink(link, exe, sizeof(exe) - 1);
	if (n < 0) {
		pr_perror("pid %d: can't read its executable link", dc->pid);
		return -1;
	}
	exe[n] = 0;
	struct path_facts p = { dc->pid, exe, link, O_RDONLY, false };
	if (files_dump_path(dc->files, dc->o, &p, &mm->exe_file_id) < 0)
		return -1;
	return read_auxv(dc, mm);
}

/* The kernel's struct aio_ring, at the start of the ring's mapping. */
struct aio_ring_head {
	uint32_t id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};
#define AIO_RING_MAGIC 0xa10a10a1
#define AIO_EVENT_SIZE 32	/* struct io_event */

/* An io_setup() ring (MmEntry.aios, as CRIU): its address (the context
 * id), length, and the nr_events of the io_setup() that makes a ring of
 * that length again (the kernel doubles the request and adds 2, then
 * rounds up to pages: this undoes it). */
static int add_aio_ring(struct dump_ctx *dc, MmEntry *mm, const VmaEntry *e)
{
	struct aio_ring_head h;
	struct iovec local = { &h, sizeof(h) }, remote = { (void *)e->start, sizeof(h) };
	if (process_vm_readv(dc->pid, &local, 1, &remote, 1, 0) != sizeof(h) || h.magic != AIO_RING_MAGIC ||
	    h.header_length != sizeof(h)) {
		pr_err("pid %d: aio ring at %#lx is not one stasis knows", dc->pid, (unsigned long)e->start);
		return -1;
	}
	uint64_t len = e->end - e->start, max_events = (len - sizeof(h)) / AIO_EVENT_SIZE;
	AioRingEntry *a = calloc(1, sizeof(*a));
	AioRingEntry **n = realloc(mm->aios, (mm->n_aios + 1) * sizeof(*n));
	if (!a || !n) {
		free(a);
		return -1;
	}
	mm->aios = n;
	aio_ring_entry__init(a);
	a->id = e->start;
	a->ring_len = len;
	a->nr_req = max_events > 2 ? (max_events - 2) / 2 : 1;
	mm->aios[mm->n_aios++] = a;
	return 0;
}

/* Collects what needs the task's help (brk, dumpable) and classifies the
 * mappings; called while injection is still possible. */
int dump_task_mm_prepare(struct dump_ctx *dc)
{
	MmEntry *mm = &dc->mm;
	mm_entry__init(mm);
	if (fill_mm_fields(dc, mm) < 0)
		return -1;
	mm->vmas = calloc(dc->vmas.nr, sizeof(VmaEntry *));
	if (!mm->vmas)
		return -1;
	for (int i = 0; i < dc->vmas.nr; i++) {
		VmaEntry *e = calloc(1, sizeof(*e));
		if (!e)
			return -1;
		vma_entry__init(e);
		mm->vmas[mm->n_vmas++] = e;
		if (vma_classify(dc, &dc->vmas.v[i], e) < 0)
			return -1;
		pr_debug("pid %d: vma %lx-%lx prot %lx flags %#x status %#x pgoff %#lx %s", dc->pid,
			 (unsigned long)e->start, (unsigned long)e->end, (unsigned long)e->prot, e->flags,
			 e->status, (unsigned long)e->pgoff, dc->vmas.v[i].path);
		if ((e->status & VMA_AREA_AIORING) && add_aio_ring(dc, mm, e) < 0)
			return -1;
	}
	return 0;
}

static int write_entry(struct img *img, const struct page_run *r, uint32_t flags)
{
	return pagemap_write_run(img, r->start, (r->end - r->start) / PAGE_SZ, flags);
}

/* A saved run, split where it crosses from memory a lazy restore may
 * leave for later into memory it may not: the first marked PE_LAZY, as
 * CRIU marks them (image/lazy.h), so either tool's lazy restore knows. */
static int write_own_run(struct img *img, const MmEntry *mm, const struct page_run *r, bool lazy_only)
{
	uint64_t at = r->start;
	while (at < r->end) {
		const VmaEntry *e = vma_holding(mm, at, at + PAGE_SZ);
		uint64_t end = e && e->end < r->end ? e->end : r->end;
		bool lazy = e && vma_can_be_lazy(e);
		/* dump --lazy-pages: those bytes stay in the process */
		uint32_t flags = lazy && lazy_only ? PE_LAZY : PE_PRESENT | (lazy ? PE_LAZY : 0);
		if (pagemap_write_run(img, at, (end - at) / PAGE_SZ, flags) < 0)
			return -1;
		at = end;
	}
	return 0;
}

/* dump --lazy-pages: the parts of pr in memory that can be lazy go to
 * dc->lazy (served later from the process), the rest to now (written). */
static int split_lazy(struct dump_ctx *dc, const struct page_runs *pr, struct page_runs *now)
{
	for (size_t i = 0; i < pr->nr; i++) {
		uint64_t at = pr->r[i].start;
		while (at < pr->r[i].end) {
			const VmaEntry *e = vma_holding(&dc->mm, at, at + PAGE_SZ);
			uint64_t end = e && e->end < pr->r[i].end ? e->end : pr->r[i].end;
			bool lazy = e && vma_can_be_lazy(e);
			/* lazy runs merge across mappings: one request may span them */
			if (page_runs_add(lazy ? dc->lazy : now, at, end, lazy || pr->r[i].readable) < 0)
				return -1;
			at = end;
		}
	}
	return 0;
}

/* The saved runs (PE_PRESENT: their bytes follow in pages-ID.img in this
 * order) and the ones the parent dump holds (PE_PARENT), by address. */
static int write_pagemap(struct dump_ctx *dc, const struct page_runs *pr, const struct page_runs *par)
{
	struct img img;
	PagemapHead head = PAGEMAP_HEAD__INIT;
	size_t i = 0, k = 0;

	if (img_create(dc->dirfd, &img, IMG_PAGEMAP, dc->ns_pid) < 0)
		return -1;
	head.pages_id = dc->id;
	if (img_write(&img, &head.base) < 0)
		goto err;
	while (i < pr->nr || k < par->nr) {
		bool own = k == par->nr || (i < pr->nr && pr->r[i].start < par->r[k].start);
		if (own ? write_own_run(&img, &dc->mm, &pr->r[i++], dc->lazy != NULL) < 0 :
			  write_entry(&img, &par->r[k++], PE_PARENT) < 0)
			goto err;
	}
	return img_finish(&img);
err:
	img_abort(&img);
	return -1;
}

/* --auto-dedup: what this dump saved leaves its parent's pages file. */
static int dedup_parent(struct dump_ctx *dc, const struct page_runs *pr)
{
	struct dedup d;
	int ret = dedup_open(&d, dc->parentfd, IMG_PAGEMAP, dc->ns_pid);
	for (size_t i = 0; !ret && i < pr->nr; i++)
		ret = dedup_run(&d, pr->r[i].start, pr->r[i].end);
	return dedup_close(&d) < 0 ? -1 : ret;
}

static int find_pages(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *par)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", dc->pid);
	int pm = open(path, O_RDONLY | O_CLOEXEC);
	if (pm < 0) {
		pr_perror("pid %d: can't open %s", dc->pid, path);
		return -1;
	}
	for (size_t i = 0; i < dc->mm.n_vmas; i++) {
		const VmaEntry *e = dc->mm.vmas[i];
		/* the kernel may drop a droppable mapping's pages at any
		 * time: they are not saved, as in CRIU */
		if (!vma_has_pages(e->status) || (e->flags & MAP_DROPPABLE))
			continue;
		/* the kernel writes the ring through its own mapping: the
		 * task's page tables may not have its pages */
		if (e->status & VMA_AREA_AIORING) {
			if (page_runs_add(pr, e->start, e->end, true) < 0) {
				close(pm);
				return -1;
			}
			continue;
		}
		if (scan_vma(dc, pm, &dc->vmas.v[i], e->status & VMA_FILE_PRIVATE, pr, par) < 0) {
			close(pm);
			return -1;
		}
	}
	close(pm);
	return 0;
}

/* mm-PID.img, with [vvar] and [vvar_vclock] as one vvar mapping, as CRIU
 * writes it (its restore looks for one vvar right before the vdso, and
 * falls back to a vdso proxy otherwise); ours accepts either. */
static int write_mm(struct dump_ctx *dc)
{
	MmEntry mm = dc->mm;
	VmaEntry **v = calloc(mm.n_vmas + dc->nr_guards + 1, sizeof(*v)), merged[4];
	int nm = 0;

	if (!v)
		return -1;
	mm.n_vmas = 0;
	for (size_t i = 0; i < dc->mm.n_vmas; i++) {
		VmaEntry *e = dc->mm.vmas[i], *prev = mm.n_vmas ? v[mm.n_vmas - 1] : NULL;
		if (prev && (prev->status & VMA_AREA_VVAR) && (e->status & VMA_AREA_VVAR) &&
		    prev->end == e->start && prev->prot == e->prot && nm < 4) {
			merged[nm] = *prev;
			merged[nm].end = e->end;
			v[mm.n_vmas - 1] = &merged[nm++];
			continue;
		}
		v[mm.n_vmas++] = e;
	}
	for (size_t i = 0; i < dc->nr_guards; i++)	/* last, as CRIU has them */
		v[mm.n_vmas++] = dc->guards[i];
	mm.vmas = v;
	int ret = img_store_one(dc->dirfd, IMG_MM, dc->ns_pid, &mm.base);
	free(v);
	return ret;
}

/* A pre-dump copies its pages once the tree runs again (CRIU's
 * --pre-dump-mode read): the tracking restarts at the freeze, so a page
 * the tree writes after it is saved again by the next dump whatever this
 * copy read, and a page it does not write reads as it was at the freeze.
 * The tree stays frozen for the scan only. Through a page server
 * ps_send.c does the same on its own connection. */
static bool copies_later(const struct dump_ctx *dc)
{
	return dc->o->pre_dump && !dc->o->live_snapshot && dc->ps_sk < 0;
}

struct later_pages {
	struct page_runs runs;
	struct img pages;
};

static int keep_for_later(struct dump_ctx *dc, struct page_runs *pr, struct img *pages)
{
	if (!(dc->later = calloc(1, sizeof(*dc->later)))) {
		pr_err("out of memory");
		img_abort(pages);
		return -1;
	}
	dc->later->runs = *pr;
	dc->later->pages = *pages;
	*pr = (struct page_runs){ 0 };
	return 0;
}

void dump_task_pages_drop(struct dump_ctx *dc)
{
	if (!dc->later)
		return;
	img_abort(&dc->later->pages);
	free(dc->later->runs.r);
	free(dc->later);
	dc->later = NULL;
}

int dump_task_pages_later(struct dump_ctx *dc)
{
	struct later_pages *l = dc->later;
	struct copy_hashes h;
	if (!l)
		return 0;
	uint64_t t1 = stats_now_us();
	if (copy_pages(dc, &l->runs, l->pages.fd, &h, true) < 0 || list_pages(dc, l->pages.name, &l->runs, &h) < 0) {
		dump_task_pages_drop(dc);
		return -1;
	}
	dc->stats->memwrite_us += stats_now_us() - t1;
	int ret = img_finish(&l->pages);
	if (!ret && dc->o->auto_dedup)
		ret = dedup_parent(dc, &l->runs);
	pr_info("pid %d: %zu page runs, %lu MiB of memory saved while it ran", dc->pid, l->runs.nr,
		(unsigned long)(l->runs.bytes >> 20));
	free(l->runs.r);
	free(l);
	dc->later = NULL;
	return ret;
}

/* ---- small processes' pages, copied behind ----
 *
 * A tree of many small processes spends as long on each one's injected
 * calls (round trips through the scheduler: mostly waiting) as on its
 * copy (CPU): a small process's copy goes to the tree's worker
 * (util/bgqueue.h), which copies it while the next process is asked (not
 * the last process's: no next one, and a busy machine may keep a woken
 * worker waiting for a core for milliseconds), and
 * the pages image is finished and listed in the tree's list of checksums
 * by dump_pages_behind_finish, called by the dump (dump.c) before
 * anything is committed. Only a plain
 * dump's: a dump that protects, dedups, serves or sends its pages
 * afterwards does so in order. The task stays frozen until the copy is
 * collected, and no injected call goes to a process whose copy is behind
 * (the next ones' are other processes). */
struct behind_job {
	struct bg_job j;
	struct dump_ctx *dc;
	struct page_runs pr;
	struct img pages;
	struct copy_hashes h;
	uint64_t us;
};

static bool copies_behind(const struct dump_ctx *dc, const struct page_runs *pr)
{
	const struct opts *o = dc->o;
	return dc->bg && !dc->last && pr->bytes && pr->bytes < PARALLEL_MIN && !o->pre_dump && !o->track_mem &&
	       !o->auto_dedup && !o->live_snapshot && !dc->lazy;
}

static int run_behind(struct bg_job *j)
{
	struct behind_job *b = (struct behind_job *)j;
	uint64_t t0 = stats_now_us();
	int ret = copy_pages(b->dc, &b->pr, b->pages.fd, &b->h, false);
	b->us = stats_now_us() - t0;
	return ret;
}

static int copy_behind(struct dump_ctx *dc, struct page_runs *pr, struct img *pages)
{
	struct behind_job *b = calloc(1, sizeof(*b));
	if (!b) {
		pr_err("out of memory");
		img_abort(pages);
		return -1;
	}
	b->j.run = run_behind;
	b->dc = dc;
	b->pr = *pr;
	b->pages = *pages;
	*pr = (struct page_runs){ 0 };
	if (bg_submit(dc->bg, &b->j) == 0)
		return 0;
	b->j.ret = run_behind(&b->j);	/* no worker: here, then */
	return dump_pages_behind_finish(&b->j);
}

int dump_pages_behind_finish(struct bg_job *j)
{
	struct behind_job *b = (struct behind_job *)j;
	struct dump_ctx *dc = b->dc;
	int ret = j->ret;
	if (!ret && !(ret = list_pages(dc, b->pages.name, &b->pr, &b->h))) {
		dc->stats->memwrite_us += b->us;
		dc->stats->pages_written += b->pr.bytes / PAGE_SZ;
		ret = img_finish(&b->pages);
		pr_info("pid %d: %zu page runs, %lu MiB of memory saved", dc->pid, b->pr.nr,
			(unsigned long)(b->pr.bytes >> 20));
	} else {
		img_abort(&b->pages);
	}
	free(b->pr.r);
	free(b);
	return ret;
}

int dump_task_mm(struct dump_ctx *dc)
{
	struct page_runs pr = { 0 }, par = { 0 };
	struct img pages;
	int ret = -1;
	uint64_t t0 = stats_now_us(), t1;

	if (lazy_dump(dc->o) && !(dc->lazy = calloc(1, sizeof(*dc->lazy))))
		return -1;
	/* a pre-dump is memory only */
	if ((!dc->o->pre_dump && guards_dump(dc->pid, &dc->vmas, &dc->guards, &dc->nr_guards) < 0) ||
	    write_mm(dc) < 0)
		return -1;
	if (find_pages(dc, &pr, &par) < 0)
		goto out;
	dc->stats->pages_scanned += (pr.bytes + par.bytes) / PAGE_SZ;
	/* the progress line's guess for this process (dump.c) gives way to
	 * the bytes copied here, once they are known */
	int64_t guess = (int64_t)(dc->status.anon_kb << 10);
	if (dc->ps_sk >= 0) {	/* --page-server: the pages go there */
		progress_grow(-guess);
		ret = ps_dump_task(dc, &pr, &par);
		goto out;
	}
	if (track_split(dc, &pr, &par) < 0 || write_pagemap(dc, &pr, &par) < 0)
		goto out;
	if (dc->lazy) {	/* dump --lazy-pages: only the rest is written */
		struct page_runs now = { 0 };
		if (split_lazy(dc, &pr, &now) < 0) {
			free(now.r);
			goto out;
		}
		free(pr.r);
		pr = now;
	}
	if (img_create(dc->dirfd, &pages, IMG_PAGES, dc->id) < 0)
		goto out;
	if (copies_later(dc)) {
		progress_grow(-guess);
		dc->stats->pages_written += pr.bytes / PAGE_SZ;
		dc->stats->pages_skipped_parent += par.bytes / PAGE_SZ;
		ret = keep_for_later(dc, &pr, &pages);
		if (!ret)
			ret = track_protect(dc, &dc->later->runs, &par);
		goto out;
	}
	if (copies_behind(dc, &pr)) {
		progress_grow((int64_t)pr.bytes - guess);
		dc->stats->pages_skipped_parent += par.bytes / PAGE_SZ;
		ret = copy_behind(dc, &pr, &pages);
		goto out;
	}
	if (dc->bg)	/* both copy buffers, both cores: the queue waits */
		bg_wait_idle(dc->bg);
	t1 = stats_now_us();
	/* live: the pages are copied once the tree runs again (live.c) */
	int live = dc->o->live_snapshot ? live_arm(dc, &pr, &pages) : 1;
	progress_grow((live > 0 ? (int64_t)pr.bytes : 0) - guess);
	struct copy_hashes h;
	if (live < 0 || (live > 0 && (copy_pages(dc, &pr, pages.fd, &h, false) < 0 ||
				      list_pages(dc, pages.name, &pr, &h) < 0))) {
		img_abort(&pages);
		goto out;
	}
	dc->stats->memwrite_us += stats_now_us() - t1;
	dc->stats->pages_written += pr.bytes / PAGE_SZ;
	dc->stats->pages_skipped_parent += par.bytes / PAGE_SZ;
	ret = live == 0 ? 0 : img_finish(&pages);
	if (!ret && dc->o->auto_dedup)	/* not with --live-snapshot (main.c) */
		ret = dedup_parent(dc, &pr);
	if (!ret)
		ret = track_protect(dc, &pr, &par);
	pr_info("pid %d: %zu page runs, %lu MiB of memory saved", dc->pid, pr.nr,
		(unsigned long)(pr.bytes >> 20));
out:
	dc->stats->memdump_us += stats_now_us() - t0;
	free(pr.r);
	free(par.r);
	return ret;
}
