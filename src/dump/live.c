/* Live snapshot: see live.h.
 *
 * While the tree is frozen, a userfaultfd is made in each process (it
 * must be made there: a userfaultfd serves the memory of its maker),
 * stasis takes it and closes the process's fd, so the protection lives
 * only as long as stasis holds it: if stasis fails or dies, the kernel
 * lets every waiting thread go and drops the protection. Its private
 * anonymous mappings are registered for write-protection (synchronous
 * faults, no WP_ASYNC) and every page the dump saves there is protected.
 * Other memory (private copies of file pages, memory the program
 * registered with a userfaultfd of its own or with stasis's tracker,
 * hugetlb) is copied before the tree is let go, as a plain dump does;
 * shared memory is dump/shmem.c's, also while frozen.
 *
 * Each page has a known place in pages-ID.img (the order of the runs),
 * so the copy can go in any order: stasis copies the pages chunk by
 * chunk, and a thread of the tree writing a page not yet saved faults; a
 * second thread of stasis saves that page at once and lets the writer
 * go. One lock per process orders the two: a page is read while it is
 * still protected, then unprotected, never the other way round.
 *
 * No userfaultfd events are asked for (fork, unmap, remove, remap): a
 * child made by fork gets no protection (its pages are its own copies),
 * and the pages file is checked instead of trusted: after each read,
 * the pages read must still be present (or swapped) and still carry
 * stasis's protection (pagemap bit 57). A page unmapped, discarded or
 * moved away before it was saved loses one or the other, and so does
 * whatever another thread maps in its place; then the snapshot fails
 * (the program runs on), never saves something else. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "dump/live.h"
#include "image/vma.h"
#include "infect/arch.h"
#include "infect/inject.h"
#include "proc/proc.h"
#include "util/compat.h"
#include "util/log.h"
#include "util/ranges.h"
#include "util/grow.h"

#define LIVE_CHUNK (256ul << 10)	/* copied under the lock at once */
#define LIVE_NOW_BUF (1ul << 20)	/* for what is copied while frozen */

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_UFFD_WP (1ull << 57)

/* A piece of protected memory and where its bytes go in the pages file. */
struct live_seg {
	uint64_t start, end, off;
};

struct live_job {
	pid_t pid;
	int uffd, pm, mem;		/* ours: userfaultfd, pagemap, mem of the process */
	struct img pages;
	struct live_seg *seg;
	size_t nr, cap;
	uint64_t *done;			/* saved pages, by place in the pages file */
	pthread_mutex_t lock;
	bool failed;
	uint64_t on_fault, copied;	/* pages saved for a writer, by the copy */
	char *buf;			/* the copy's */
};

bool live_kernel_has(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API };
	bool ok = fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0 && (api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* ---- while frozen ---- */

/* 1: none for this process (said why). */
static int make_uffd(struct dump_ctx *dc, int *ours)
{
	long fd, r;
	if (inj_call(&dc->inj, &fd, INJ(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)) < 0)
		return -1;
	if (fd < 0) {
		errno = -fd;
		pr_warn("pid %d: no userfaultfd for a live snapshot (%m%s): its memory is copied while it is frozen",
			dc->pid, fd == -EPERM ? "; vm.unprivileged_userfaultfd is 0" : "");
		return 1;
	}
	*ours = proc_take_fd(dc->pid, fd);
	if (inj_call(&dc->inj, &r, INJ(SYS_close, fd)) < 0) {
		if (*ours >= 0)
			close(*ours);
		return -1;
	}
	if (*ours < 0) {
		pr_perror("pid %d: can't take the userfaultfd it made", dc->pid);
		return -1;
	}
	struct uffdio_api api = { .api = UFFD_API };
	if (ioctl(*ours, UFFDIO_API, &api) < 0 || !(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		pr_warn("pid %d: this kernel has no userfaultfd write-protection (5.7+): its memory is copied "
			"while it is frozen", dc->pid);
		close(*ours);
		return 1;
	}
	return 0;
}

static int open_proc(pid_t pid, const char *what)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("pid %d: can't open %s", pid, path);
	return fd;
}

static int put_at(struct live_job *j, const char *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(j->pages.fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_perror("pid %d: can't write the pages image", j->pid);
			return -1;
		}
		buf += n;
		len -= n;
		off += n;
	}
	return 0;
}

static int read_mem(struct live_job *j, char *buf, uint64_t a, size_t len)
{
	ssize_t n = pread(j->mem, buf, len, a);
	if (n != (ssize_t)len) {
		if (n >= 0)
			pr_err("pid %d exited or exec'd before the live snapshot saved its memory (at %#lx); the "
			       "snapshot is not complete: dump again, or without --live-snapshot", j->pid, (unsigned long)a);
		else
			pr_perror("pid %d: can't read its memory at %#lx", j->pid, (unsigned long)a);
		return -1;
	}
	return 0;
}

/* Memory that can't be protected: saved now, as a plain dump does. */
static int copy_now(struct live_job *j, uint64_t s, uint64_t e, uint64_t off)
{
	while (s < e) {
		size_t len = e - s < LIVE_NOW_BUF ? e - s : LIVE_NOW_BUF;
		if (read_mem(j, j->buf, s, len) < 0 || put_at(j, j->buf, len, off) < 0)
			return -1;
		s += len;
		off += len;
	}
	return 0;
}

static int add_seg(struct live_job *j, uint64_t s, uint64_t e, uint64_t off)
{
	struct live_seg *last = j->nr ? &j->seg[j->nr - 1] : NULL;
	if (last && last->end == s && last->off + (last->end - last->start) == off) {
		last->end = e;
		return 0;
	}
	if (grow_array(j->seg, j->cap, j->nr + 1, 64) < 0) {
		pr_err("out of memory listing the pages of a live snapshot");
		return -1;
	}
	j->seg[j->nr++] = (struct live_seg){ s, e, off };
	return 0;
}

/* Private anonymous memory in small pages, registered with our
 * userfaultfd (not already with another: the program's, or stasis's
 * tracker). state: 0 not tried, 1 yes, -1 no. */
static bool protectable(struct dump_ctx *dc, struct live_job *j, int k, signed char *state)
{
	const VmaEntry *e = dc->mm.vmas[k];
	const struct proc_vma *v = &dc->vmas.v[k];
	if (state[k])
		return state[k] > 0;
	state[k] = -1;
	if (!(e->status & VMA_ANON_PRIVATE) || (e->flags & MAP_HUGETLB) || (e->status & VMA_AREA_AIORING))
		return false;
	struct uffdio_register r = { .range = { v->start, v->end - v->start }, .mode = UFFDIO_REGISTER_MODE_WP };
	if (ioctl(j->uffd, UFFDIO_REGISTER, &r) < 0) {
		pr_debug("pid %d: %#lx-%#lx can't be protected (%m): copied while frozen", dc->pid,
			 (unsigned long)v->start, (unsigned long)v->end);
		return false;
	}
	state[k] = 1;
	return true;
}

/* Each run, cut at the mappings: protected, or copied now. */
static int sort_runs(struct dump_ctx *dc, struct live_job *j, const struct page_runs *pr)
{
	signed char *state = calloc(dc->vmas.nr ? dc->vmas.nr : 1, 1);
	uint64_t off = 0;
	int k = 0, ret = 0;

	if (!state)
		return -1;
	for (size_t i = 0; i < pr->nr && !ret; i++) {
		uint64_t s = pr->r[i].start, end = pr->r[i].end;
		while (s < end && !ret) {
			while (k < dc->vmas.nr && dc->vmas.v[k].end <= s)
				k++;
			bool in = k < dc->vmas.nr && dc->vmas.v[k].start <= s;
			uint64_t e = in && dc->vmas.v[k].end < end ? dc->vmas.v[k].end : end;
			if (in && pr->r[i].readable && protectable(dc, j, k, state))
				ret = add_seg(j, s, e, off);
			else
				ret = copy_now(j, s, e, off);
			off += e - s;
			s = e;
		}
	}
	free(state);
	return ret;
}

static int protect_segs(struct live_job *j)
{
	for (size_t i = 0; i < j->nr; i++) {
		struct uffdio_writeprotect wp = {
			.range = { j->seg[i].start, j->seg[i].end - j->seg[i].start },
			.mode = UFFDIO_WRITEPROTECT_MODE_WP,
		};
		if (ioctl(j->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
			pr_perror("pid %d: can't write-protect %#lx-%#lx for a live snapshot", j->pid,
				  (unsigned long)j->seg[i].start, (unsigned long)j->seg[i].end);
			return -1;
		}
	}
	return 0;
}

static void job_free(struct live_job *j)
{
	if (j->uffd >= 0)
		close(j->uffd);	/* the protection goes, waiters go on */
	if (j->pm >= 0)
		close(j->pm);
	if (j->mem >= 0)
		close(j->mem);
	if (j->pages.fd >= 0)
		img_abort(&j->pages);
	pthread_mutex_destroy(&j->lock);
	free(j->seg);
	free(j->done);
	free(j->buf);
	free(j);
}

/* ---- before the freeze ---- */

struct pre_proc {
	pid_t pid;
	uint64_t start;		/* start time: the same process at the freeze */
	int uffd;		/* -1 once live_arm took it */
};

struct live_pre {
	struct pre_proc *p;
	int nr;
	int stop[2];
	pthread_t th;
	bool running;
	/* live_arm takes a process's userfaultfd at the freeze, while this
	 * thread may still serve the others (a syscall stasis runs in them
	 * may write to protected memory): from then on it is live.c's */
	pthread_mutex_t lock;
};

struct live_pre *live_pre_new(void)
{
	struct live_pre *lp = calloc(1, sizeof(*lp));
	if (lp) {
		lp->stop[0] = lp->stop[1] = -1;
		pthread_mutex_init(&lp->lock, NULL);
	}
	return lp;
}

/* Where the vdso of pid is, from /proc/PID/maps (smaps would walk every
 * page); 0 if none. */
static uint64_t vdso_of(pid_t pid)
{
	char path[64], line[512];
	unsigned long s = 0, e;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " [vdso]") && sscanf(line, "%lx-%lx", &s, &e) == 2)
			break;
		else
			s = 0;
	fclose(f);
	return s;
}

int live_pre_take(struct live_pre *lp, struct dump_ctx *dc)
{
	uint64_t vdso = vdso_of(dc->pid), start;
	int uffd = -1, r;
	if (!vdso || proc_start_time(dc->pid, &start) < 0)
		return 1;	/* protected at the freeze instead */
	if (inj_start_careful(&dc->inj, vdso) < 0)
		return -1;
	r = make_uffd(dc, &uffd);
	if (inj_undo(&dc->inj) < 0 || r < 0) {
		if (uffd >= 0 && r == 0)
			close(uffd);
		return -1;
	}
	if (r > 0)
		return 1;
	struct pre_proc *n = realloc(lp->p, (lp->nr + 1) * sizeof(*n));
	if (!n) {
		close(uffd);
		return -1;
	}
	lp->p = n;
	lp->p[lp->nr++] = (struct pre_proc){ dc->pid, start, uffd };
	return 0;
}

/* Private anonymous mappings, as /proc/PID/maps shows them: no path, or
 * a name in brackets the kernel gives anonymous memory. */
static bool maps_anon_private(const char *line, unsigned long *s, unsigned long *e)
{
	char perms[8], path[256] = "";
	if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", s, e, perms, path) < 3 || perms[3] != 'p')
		return false;
	return !path[0] || !strcmp(path, "[heap]") || !strcmp(path, "[stack]") || !strncmp(path, "[anon:", 6);
}

static void pre_protect_one(struct pre_proc *pp)
{
	char path[64], line[512];
	unsigned long s, e;
	snprintf(path, sizeof(path), "/proc/%d/maps", pp->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!maps_anon_private(line, &s, &e))
			continue;
		struct uffdio_register r = { .range = { s, e - s }, .mode = UFFDIO_REGISTER_MODE_WP };
		struct uffdio_writeprotect wp = { .range = { s, e - s }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		/* a mapping changed meanwhile is protected at the freeze */
		if (ioctl(pp->uffd, UFFDIO_REGISTER, &r) == 0)
			ioctl(pp->uffd, UFFDIO_WRITEPROTECT, &wp);
	}
	fclose(f);
}

/* Before the freeze, and at the freeze until live_arm takes the
 * process's userfaultfd, a write is only let through: what it wrote is
 * saved as it is at the freeze (a syscall stasis runs there writes only
 * its scratch area, which it puts back), where its page is protected
 * again. The set of userfaultfds shrinks as live_arm takes them: looked
 * at again every few ms. */
static void *pre_thread(void *arg)
{
	struct live_pre *lp = arg;
	struct pollfd *p = calloc(lp->nr + 1, sizeof(*p));
	int *who = calloc(lp->nr + 1, sizeof(*who));
	struct uffd_msg msg[16];
	if (!p || !who) {
		free(p);
		free(who);
		return NULL;	/* writers wait till the copy: slower, not wrong */
	}
	for (;;) {
		int n = 0;
		pthread_mutex_lock(&lp->lock);
		for (int i = 0; i < lp->nr; i++)
			if (lp->p[i].uffd >= 0) {
				who[n] = i;
				p[n++] = (struct pollfd){ .fd = lp->p[i].uffd, .events = POLLIN };
			}
		pthread_mutex_unlock(&lp->lock);
		p[n] = (struct pollfd){ .fd = lp->stop[0], .events = POLLIN };
		if (poll(p, n + 1, 5) < 0 && errno != EINTR)
			break;
		if (p[n].revents)
			break;
		for (int k = 0; k < n; k++) {
			if (!p[k].revents)
				continue;
			pthread_mutex_lock(&lp->lock);
			int fd = lp->p[who[k]].uffd;	/* -1: live_arm's now */
			ssize_t got;
			while (fd >= 0 && (got = read(fd, msg, sizeof(msg))) > 0)
				for (size_t m = 0; m < got / sizeof(msg[0]); m++)
					if (msg[m].event == UFFD_EVENT_PAGEFAULT) {
						uint64_t a = msg[m].arg.pagefault.address & ~(PAGE_SZ - 1);
						struct uffdio_writeprotect wp = { .range = { a, PAGE_SZ }, .mode = 0 };
						ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
					}
			pthread_mutex_unlock(&lp->lock);
		}
	}
	free(p);
	free(who);
	return NULL;
}

void live_pre_protect(struct live_pre *lp)
{
	uint64_t t0 = stats_now_us();
	if (!lp->nr || pipe2(lp->stop, O_CLOEXEC) < 0)
		return;
	if (pthread_create(&lp->th, NULL, pre_thread, lp) != 0) {
		close(lp->stop[0]);
		close(lp->stop[1]);
		lp->stop[0] = lp->stop[1] = -1;
		return;
	}
	lp->running = true;
	for (int i = 0; i < lp->nr; i++)
		pre_protect_one(&lp->p[i]);
	pr_info("live snapshot: memory of %d processes protected before the freeze (%lu us)", lp->nr,
		(unsigned long)(stats_now_us() - t0));
}

void live_pre_stop(struct live_pre *lp)
{
	if (!lp || !lp->running)
		return;
	if (write(lp->stop[1], "", 1) != 1)
		pr_perror("can't stop the fault thread");
	pthread_join(lp->th, NULL);
	lp->running = false;
	/* not taken by live_arm (a process gone meanwhile, or a dump that
	 * stopped short): their protection goes before anyone waits on it */
	for (int i = 0; i < lp->nr; i++)
		if (lp->p[i].uffd >= 0) {
			close(lp->p[i].uffd);
			lp->p[i].uffd = -1;
		}
}

void live_pre_free(struct live_pre *lp)
{
	if (!lp)
		return;
	live_pre_stop(lp);
	for (int i = 0; i < lp->nr; i++)
		if (lp->p[i].uffd >= 0)
			close(lp->p[i].uffd);
	for (int k = 0; k < 2; k++)
		if (lp->stop[k] >= 0)
			close(lp->stop[k]);
	free(lp->p);
	pthread_mutex_destroy(&lp->lock);
	free(lp);
}

void live_pre_scratch(struct dump_ctx *dc)
{
	struct live_pre *lp = dc->live_pre;
	if (!lp || dc->zombie || !dc->inj.nr_th)
		return;
	uint64_t at = arch_stack_scratch(&dc->inj.th[0].regs, INJ_STACK_SCRATCH);
	uint64_t s = at & ~(PAGE_SZ - 1), e = (at + INJ_STACK_SCRATCH + PAGE_SZ - 1) & ~(PAGE_SZ - 1);
	struct uffdio_writeprotect wp = { .range = { s, e - s }, .mode = 0 };
	pthread_mutex_lock(&lp->lock);
	for (int i = 0; i < lp->nr; i++)
		if (lp->p[i].pid == dc->pid && lp->p[i].uffd >= 0)
			ioctl(lp->p[i].uffd, UFFDIO_WRITEPROTECT, &wp);	/* not protected: as well */
	pthread_mutex_unlock(&lp->lock);
}

/* The userfaultfd made before the freeze in this same process, if any. */
static int pre_taken(struct dump_ctx *dc)
{
	struct live_pre *lp = dc->live_pre;
	uint64_t start;
	if (!lp || proc_start_time(dc->pid, &start) < 0)
		return -1;
	int fd = -1;
	pthread_mutex_lock(&lp->lock);
	for (int i = 0; i < lp->nr && fd < 0; i++)
		if (lp->p[i].pid == dc->pid && lp->p[i].start == start && lp->p[i].uffd >= 0) {
			fd = lp->p[i].uffd;
			lp->p[i].uffd = -1;
		}
	pthread_mutex_unlock(&lp->lock);
	return fd;
}

/* Protected before the freeze: only the pages written or mapped since
 * (PAGE_IS_WRITTEN: not protected) are protected now. Without
 * PAGEMAP_SCAN, every page again. */
static int protect_written(struct live_job *j)
{
	struct page_region vec[256];
	for (size_t i = 0; i < j->nr; i++) {
		struct pm_scan_arg a = {
			.size = sizeof(a), .start = j->seg[i].start, .end = j->seg[i].end,
			.vec = (uint64_t)vec, .vec_len = 256,
			.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
		};
		while (a.start < a.end) {
			long n = ioctl(j->pm, PAGEMAP_SCAN, &a);
			if (n < 0)
				return errno == ENOTTY || errno == EINVAL ? protect_segs(j) : -1;
			for (long k = 0; k < n; k++) {
				struct uffdio_writeprotect wp = {
					.range = { vec[k].start, vec[k].end - vec[k].start },
					.mode = UFFDIO_WRITEPROTECT_MODE_WP,
				};
				if (ioctl(j->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
					pr_perror("pid %d: can't write-protect %#lx-%#lx for a live snapshot", j->pid,
						  (unsigned long)vec[k].start, (unsigned long)vec[k].end);
					return -1;
				}
			}
			if (a.walk_end <= a.start && n == 0)
				break;
			a.start = a.walk_end;
		}
	}
	return 0;
}

int live_arm(struct dump_ctx *dc, const struct page_runs *pr, struct img *pages)
{
	struct live_job *j = calloc(1, sizeof(*j));
	uint64_t t0 = stats_now_us();
	int r;

	if (!j) {
		pr_err("out of memory");
		return -1;
	}
	j->pid = dc->pid;
	j->uffd = j->pm = j->mem = -1;
	j->pages.fd = -1;
	pthread_mutex_init(&j->lock, NULL);
	j->uffd = pre_taken(dc);
	bool pre = j->uffd >= 0;
	r = pre ? 0 : make_uffd(dc, &j->uffd);
	if (r != 0) {
		j->uffd = -1;
		job_free(j);
		return r;
	}
	size_t words = (pr->bytes / PAGE_SZ + 63) / 64;
	j->done = calloc(words ? words : 1, sizeof(uint64_t));
	j->buf = malloc(LIVE_NOW_BUF);
	j->pm = open_proc(dc->pid, "pagemap");
	j->mem = open_proc(dc->pid, "mem");
	j->pages = *pages;
	if (!j->done || !j->buf || j->pm < 0 || j->mem < 0 || sort_runs(dc, j, pr) < 0 ||
	    (pre ? protect_written(j) : protect_segs(j)) < 0) {
		j->pages.fd = -1;	/* still the caller's */
		job_free(j);
		return -1;
	}
	pages->fd = -1;
	pages->buf = NULL;
	dc->live = j;
	uint64_t prot = 0;
	for (size_t i = 0; i < j->nr; i++)
		prot += j->seg[i].end - j->seg[i].start;
	pr_info("pid %d: %lu MiB protected for a live snapshot%s, %lu MiB copied while frozen (%lu us)", dc->pid,
		(unsigned long)(prot >> 20), pre ? " (most of it before the freeze)" : "",
		(unsigned long)((pr->bytes - prot) >> 20),
		(unsigned long)(stats_now_us() - t0));
	return 0;
}

void live_drop(struct dump_ctx *dc)
{
	if (dc->live)
		job_free(dc->live);
	dc->live = NULL;
}

/* ---- while the tree runs ---- */

static bool is_done(const struct live_job *j, uint64_t idx)
{
	return j->done[idx / 64] & (1ull << (idx % 64));
}

static void set_done(struct live_job *j, uint64_t idx)
{
	j->done[idx / 64] |= 1ull << (idx % 64);
}

static void unprotect(struct live_job *j, uint64_t s, uint64_t e)
{
	struct uffdio_writeprotect wp = { .range = { s, e - s }, .mode = 0 };
	if (ioctl(j->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		pr_debug("pid %d: can't unprotect %#lx-%#lx: %m (unmapped meanwhile?)", j->pid,
			 (unsigned long)s, (unsigned long)e);
}

/* The pages of [s, e) not yet saved, just read, must still be the ones
 * protected at the freeze: present or swapped, and protected. */
static int check_still_ours(struct live_job *j, uint64_t s, uint64_t e, uint64_t off)
{
	uint64_t pm[LIVE_CHUNK / PAGE_SZ];
	size_t n = (e - s) / PAGE_SZ;
	if (pread(j->pm, pm, n * 8, s / PAGE_SZ * 8) != (ssize_t)(n * 8)) {
		pr_err("pid %d: can't read its pagemap at %#lx: it exited or exec'd during the live snapshot", j->pid,
		       (unsigned long)s);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (is_done(j, off / PAGE_SZ + i))
			continue;
		if (!(pm[i] & (PM_PRESENT | PM_SWAPPED)) || !(pm[i] & PM_UFFD_WP)) {
			pr_err("pid %d: the page at %#lx was unmapped, discarded or moved before the live snapshot saved "
			       "it; the snapshot is not complete (the program runs on): dump again, or without "
			       "--live-snapshot", j->pid, (unsigned long)(s + i * PAGE_SZ));
			return -1;
		}
	}
	return 0;
}

/* Saves the pages of [s, e) (inside one segment, placed at off) not yet
 * saved, then lets writers of them go. Under j->lock. */
static int save_range(struct live_job *j, char *buf, uint64_t s, uint64_t e, uint64_t off, uint64_t *count)
{
	size_t n = (e - s) / PAGE_SZ;
	int ret = 0;
	if (read_mem(j, buf, s, e - s) < 0 || check_still_ours(j, s, e, off) < 0) {
		ret = -1;
	} else {
		for (size_t i = 0; i < n && !ret;) {
			size_t k = i;
			while (k < n && !is_done(j, off / PAGE_SZ + k))
				k++;
			if (k > i)
				ret = put_at(j, buf + i * PAGE_SZ, (k - i) * PAGE_SZ, off + i * PAGE_SZ);
			*count += k - i;
			for (; i < k; i++)
				set_done(j, off / PAGE_SZ + i);
			while (i < n && is_done(j, off / PAGE_SZ + i))
				i++;
		}
	}
	unprotect(j, s, e);
	return ret;
}

static const struct live_seg *find_seg(const struct live_job *j, uint64_t a)
{
	ptrdiff_t i = runs_index(j->seg, j->nr, a);
	return i < 0 ? NULL : &j->seg[i];
}

/* A thread of the process wrote a protected page: its old bytes first. */
static void on_fault(struct live_job *j, uint64_t addr, char *page)
{
	uint64_t a = addr & ~(PAGE_SZ - 1);
	pthread_mutex_lock(&j->lock);
	const struct live_seg *sg = find_seg(j, a);
	if (sg && !is_done(j, (sg->off + a - sg->start) / PAGE_SZ)) {
		uint64_t cnt = 0;
		if (save_range(j, page, a, a + PAGE_SZ, sg->off + a - sg->start, &cnt) < 0)
			j->failed = true;
		j->on_fault += cnt;
	} else {
		unprotect(j, a, a + PAGE_SZ);
	}
	pthread_mutex_unlock(&j->lock);
}

struct fault_loop {
	struct live_job **jobs;
	int nr;
	int stop;	/* read end of a pipe: readable when it is time to stop */
};

static void drain(struct live_job *j, char *page)
{
	struct uffd_msg msg[16];
	for (;;) {
		ssize_t n = read(j->uffd, msg, sizeof(msg));
		if (n <= 0)
			return;
		for (size_t i = 0; i < n / sizeof(msg[0]); i++)
			if (msg[i].event == UFFD_EVENT_PAGEFAULT)
				on_fault(j, msg[i].arg.pagefault.address, page);
	}
}

static void *fault_thread(void *arg)
{
	struct fault_loop *fl = arg;
	struct pollfd *p = calloc(fl->nr + 1, sizeof(*p));
	char *page = malloc(PAGE_SZ);
	if (!p || !page) {
		pr_err("out of memory for the fault thread of a live snapshot");
		for (int i = 0; i < fl->nr; i++)
			fl->jobs[i]->failed = true;
		free(p);
		free(page);
		return NULL;
	}
	for (int i = 0; i < fl->nr; i++)
		p[i] = (struct pollfd){ .fd = fl->jobs[i]->uffd, .events = POLLIN };
	p[fl->nr] = (struct pollfd){ .fd = fl->stop, .events = POLLIN };
	for (;;) {
		if (poll(p, fl->nr + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("live snapshot: poll");
			for (int i = 0; i < fl->nr; i++)
				fl->jobs[i]->failed = true;
			break;
		}
		for (int i = 0; i < fl->nr; i++)
			if (p[i].revents)
				drain(fl->jobs[i], page);
		if (p[fl->nr].revents)
			break;
	}
	free(p);
	free(page);
	return NULL;
}

static int copy_job(struct live_job *j)
{
	for (size_t i = 0; i < j->nr && !j->failed; i++) {
		const struct live_seg *sg = &j->seg[i];
		for (uint64_t a = sg->start; a < sg->end && !j->failed; a += LIVE_CHUNK) {
			uint64_t e = sg->end - a < LIVE_CHUNK ? sg->end : a + LIVE_CHUNK;
			pthread_mutex_lock(&j->lock);
			if (save_range(j, j->buf, a, e, sg->off + a - sg->start, &j->copied) < 0)
				j->failed = true;
			pthread_mutex_unlock(&j->lock);
		}
	}
	return j->failed ? -1 : 0;
}

int live_copy_all(struct dump_tree *tr)
{
	struct live_job **jobs = calloc(tr->nr ? tr->nr : 1, sizeof(*jobs));
	struct fault_loop fl = { jobs, 0, -1 };
	int stop[2] = { -1, -1 }, ret = -1;
	pthread_t th;
	bool started = false;

	if (!jobs) {
		pr_err("out of memory");
		goto out;
	}
	for (int i = 0; i < tr->nr; i++)
		if (tr->t[i].live)
			jobs[fl.nr++] = tr->t[i].live;
	if (!fl.nr) {
		ret = 0;
		goto out;
	}
	if (pipe2(stop, O_CLOEXEC) < 0) {
		pr_perror("can't make a pipe");
		goto out;
	}
	fl.stop = stop[0];
	if (pthread_create(&th, NULL, fault_thread, &fl) != 0) {
		pr_err("can't start the fault thread of a live snapshot");
		goto out;
	}
	started = true;
	ret = 0;
	for (int i = 0; i < fl.nr; i++)
		if (copy_job(jobs[i]) < 0)
			ret = -1;
out:
	if (started) {
		if (write(stop[1], "", 1) != 1)
			pr_perror("can't stop the fault thread");
		pthread_join(th, NULL);
	}
	for (int i = 0; i < tr->nr; i++) {
		struct live_job *j = tr->t[i].live;
		if (!j)
			continue;
		if (j->failed)
			ret = -1;
		close(j->uffd);	/* nothing protected is left; registration goes */
		j->uffd = -1;
		pr_info("pid %d: live snapshot: %lu pages copied, %lu saved first for a writer", j->pid,
			(unsigned long)j->copied, (unsigned long)j->on_fault);
		if (ret == 0 && img_finish(&j->pages) < 0)
			ret = -1;
		live_drop(&tr->t[i]);
	}
	for (int k = 0; k < 2; k++)
		if (stop[k] >= 0)
			close(stop[k]);
	free(jobs);
	return ret;
}
