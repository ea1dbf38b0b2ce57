/* Which pages changed since the last dump.
 *
 * This kernel has no soft-dirty bits; it has userfaultfd write-protection
 * in async mode: a write to a protected page is let through at once and
 * only clears the page's protection, which PAGEMAP_SCAN reports as
 * PAGE_IS_WRITTEN. So a dump that will be a parent (pre-dump, or dump
 * --track-mem) leaves a userfaultfd in the task (the tracker: the
 * protection lives as long as it is open), registers the task's private
 * anonymous memory with it and protects every page it saved. The next
 * dump, given the parent's directory, saves only the pages written since
 * (or not in the parent), and marks the others "in parent" (PE_PARENT).
 *
 * The tracker is the task's fd (close-on-exec, at 512 or above, listed
 * in TRACK_LIST): stasis ignores it when it dumps the task's fds. Memory
 * that can't be registered (file mappings, shared memory) is always
 * saved whole. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "dump/track.h"
#include "image/img.h"
#include "image/pagemap.h"
#include "image/magic.h"
#include "image/vma.h"
#include "proc/proc.h"
#include "pagemap.pb-c.h"
#include "util/compat.h"
#include "util/fsop.h"
#include "util/log.h"

#define TRACK_FD_MIN 512

/* ---- the parent's pages ---- */

static int cover_add(struct parent_cover *c, uint64_t start, uint64_t end)
{
	if (c->nr && c->r[c->nr - 1][1] == start) {
		c->r[c->nr - 1][1] = end;
		return 0;
	}
	uint64_t (*n)[2] = realloc(c->r, (c->nr + 1) * sizeof(*n));
	if (!n)
		return -1;
	c->r = n;
	c->r[c->nr][0] = start;
	c->r[c->nr][1] = end;
	c->nr++;
	return 0;
}

/* Every page the parent's pagemap names, saved there or further up. */
static int cover_load(struct dump_ctx *dc, int parentfd, struct parent_cover *c)
{
	char name[64];
	PagemapEntry **e;
	ProtobufCMessage *head;
	int n, ret = 0;

	snprintf(name, sizeof(name), "pagemap-%d.img", dc->ns_pid);
	if (faccessat(parentfd, name, F_OK, 0) < 0)
		return 0;	/* not in the parent: a new process */
	if (img_load_headed(parentfd, name, PAGEMAP_MAGIC, &pagemap_head__descriptor, &head,
			    &pagemap_entry__descriptor, (void ***)&e, &n) < 0)
		return -1;
	img_free(head);
	for (int i = 0; i < n && !ret; i++) {
		const PagemapEntry *pe = e[i];
		uint64_t pages = pagemap_run_pages(pe);
		if (pages > (1ull << 36) || pe->vaddr & (PAGE_SZ - 1)) {
			pr_err("parent image %s: bad page run at %#lx", name, (unsigned long)pe->vaddr);
			ret = -1;
		} else if (cover_add(c, pe->vaddr, pe->vaddr + pages * PAGE_SZ) < 0) {
			ret = -1;
		}
	}
	for (int i = 0; i < n; i++)
		img_free(e[i]);
	free(e);
	return ret;
}

static bool covered(const struct parent_cover *c, uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = c->nr;
	while (lo < hi) {	/* the last range starting at or before start */
		size_t mid = (lo + hi) / 2;
		if (c->r[mid][0] <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && c->r[lo - 1][1] >= end;
}

/* ---- the tracker ---- */

static bool is_uffd(pid_t pid, int fd)
{
	char link[64], target[64];
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strcmp(target, "anon_inode:[userfaultfd]");
}

/* Our own handle on the task's tracker. */
static int grab_tracker(struct dump_ctx *dc)
{
	dc->uffd = proc_take_fd(dc->pid, dc->track_task_fd);
	return dc->uffd < 0 ? -1 : 0;
}

static int read_tracker_fd(int parentfd, pid_t ns_pid)
{
	int fd = openat(parentfd, TRACK_LIST, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	int pid, tfd, found = -1;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (fscanf(f, "%d %d", &pid, &tfd) == 2)
		if (pid == ns_pid && tfd >= 0)
			found = tfd;
	fclose(f);
	return found;
}

/* The features of a userfaultfd, from its fdinfo ("API:\tapi:features:ioctls"). */
static bool uffd_features(pid_t pid, int fd, unsigned long *features)
{
	char path[64], line[128];
	bool found = false;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	FILE *f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f))
		found = sscanf(line, "API:\t%*x:%lx:", features) == 1;
	if (f)
		fclose(f);
	return found;
}

/* A tracker an earlier stasis left (dumped without its parent now): it is
 * ours, not the program's, if it sits where we put trackers and tracks
 * writes the way we do, which a program's own userfaultfd hardly does. */
static int find_own_tracker(struct dump_ctx *dc)
{
	int *fds = NULL, nr = 0;
	unsigned long features;
	if (proc_list_fds(dc->pid, &fds, &nr) < 0)
		return -1;
	for (int i = 0; i < nr; i++)
		if (fds[i] >= TRACK_FD_MIN && is_uffd(dc->pid, fds[i]) &&
		    uffd_features(dc->pid, fds[i], &features) && (features & UFFD_FEATURE_WP_ASYNC)) {
			dc->track_task_fd = fds[i];
			pr_info("pid %d: fd %d is stasis's memory tracker from an earlier dump", dc->pid, fds[i]);
			break;
		}
	free(fds);
	return 0;
}

int track_find(struct dump_ctx *dc)
{
	if (dc->track_task_fd >= 0)
		return 0;
	return find_own_tracker(dc);
}

int track_adopt(struct dump_ctx *dc, int parentfd)
{
	struct parent_cover *c = calloc(1, sizeof(*c));
	if (!c || cover_load(dc, parentfd, c) < 0) {
		if (c)
			free(c->r);
		free(c);
		return -1;
	}
	int listed = read_tracker_fd(parentfd, dc->ns_pid);
	if (find_own_tracker(dc) < 0) {
		free(c->r);
		free(c);
		return -1;
	}
	/* Every tracked dump moves the tracker to a new fd (track_protect):
	 * the parent is the last one only if it left it where it is now. */
	if (dc->track_task_fd < 0 || dc->track_task_fd != listed) {
		pr_warn("pid %d: %s: every page is saved", dc->pid,
			dc->track_task_fd < 0 ? "no memory tracker from the parent dump" :
			"the parent dump is not the last one that tracked its memory");
		free(c->r);
		free(c);
	} else {
		dc->cover = c;
	}
	if (dc->track_task_fd >= 0 && grab_tracker(dc) < 0) {
		pr_perror("pid %d: can't take its memory tracker (fd %d)", dc->pid, dc->track_task_fd);
		return -1;
	}
	return 0;
}

/* userfaultfd() in the task: the tracker must be the task's, or the
 * protection would end with stasis. */
static int make_tracker(struct dump_ctx *dc)
{
	long fd, hi, r;
	if (dump_inject(dc, &fd, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0) < 0)
		return -1;
	if (fd == -EPERM && dump_inject(dc, &fd, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY,
					0, 0, 0) < 0)
		return -1;
	if (fd < 0) {
		errno = -fd;
		pr_perror("pid %d: can't make a userfaultfd to track its memory", dc->pid);
		return -1;
	}
	/* out of the way of the task's own fds */
	if (dump_inject(dc, &hi, SYS_fcntl, fd, F_DUPFD_CLOEXEC, TRACK_FD_MIN, 0) < 0)
		return -1;
	if (hi >= 0 && dump_inject(dc, &r, SYS_close, fd, 0, 0, 0) < 0)
		return -1;
	dc->track_task_fd = hi >= 0 ? hi : fd;
	dc->track_new = true;
	if (grab_tracker(dc) < 0) {
		pr_perror("pid %d: can't take the memory tracker it made", dc->pid);
		return -1;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	if (ioctl(dc->uffd, UFFDIO_API, &api) < 0) {
		pr_perror("pid %d: this kernel can't track memory writes (userfaultfd WP_ASYNC, 6.7+)", dc->pid);
		return -1;
	}
	return 0;
}

static bool trackable(const struct proc_vma *v, const VmaEntry *e)
{
	return !v->uffd_wp && !v->shared && !v->has_file && (v->prot & PROT_WRITE) &&
	       (e->status & VMA_ANON_PRIVATE) && !(e->status & (VMA_AREA_VDSO | VMA_AREA_VVAR));
}

int track_start(struct dump_ctx *dc)
{
	if (dc->track_task_fd < 0 && make_tracker(dc) < 0)
		return -1;
	if (dc->uffd < 0 && grab_tracker(dc) < 0) {
		pr_perror("pid %d: can't take its memory tracker (fd %d)", dc->pid, dc->track_task_fd);
		return -1;
	}
	for (size_t i = 0; i < dc->mm.n_vmas; i++) {
		const struct proc_vma *v = &dc->vmas.v[i];
		if (!trackable(v, dc->mm.vmas[i]))
			continue;
		struct uffdio_register r = { .range = { v->start, v->end - v->start },
					     .mode = UFFDIO_REGISTER_MODE_WP };
		if (ioctl(dc->uffd, UFFDIO_REGISTER, &r) < 0)
			pr_debug("pid %d: %#lx-%#lx can't be tracked (%m): saved whole each time", dc->pid,
				 (unsigned long)v->start, (unsigned long)v->end);
		else
			dc->vmas.v[i].uffd_wp = true;
	}
	return 0;
}

/* ---- using it ---- */

/* Which pages of [start, end) were written since they were protected. */
static int split_run(struct dump_ctx *dc, int pm, const struct page_run *run, struct page_runs *pr,
		     struct page_runs *in_parent)
{
	struct page_region vec[256];
	struct pm_scan_arg a = {
		.size = sizeof(a), .start = run->start, .end = run->end,
		.vec = (uint64_t)vec, .vec_len = 256,
		.return_mask = PAGE_IS_WRITTEN,
	};
	uint64_t at = run->start;
	while (a.start < a.end) {
		long n = ioctl(pm, PAGEMAP_SCAN, &a);
		if (n < 0)
			return -1;
		for (long i = 0; i < n; i++) {
			uint64_t s = vec[i].start > at ? vec[i].start : at, e = vec[i].end;
			bool unwritten = !(vec[i].categories & PAGE_IS_WRITTEN);
			struct page_runs *to = unwritten && covered(dc->cover, s, e) ? in_parent : pr;
			if (s < e && page_runs_add(to, s, e, run->readable) < 0)
				return -1;
			at = e;
		}
		if (a.walk_end <= a.start && n == 0)
			break;
		a.start = a.walk_end;
	}
	/* what the scan did not list (it lists every page here): as written */
	return at < run->end ? page_runs_add(pr, at, run->end, run->readable) : 0;
}

static bool in_tracked_vma(const struct dump_ctx *dc, uint64_t start, uint64_t end)
{
	for (int i = 0; i < dc->vmas.nr; i++)
		if (dc->vmas.v[i].uffd_wp && start >= dc->vmas.v[i].start && end <= dc->vmas.v[i].end)
			return true;
	return false;
}

int track_split(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *in_parent)
{
	struct page_runs out = { 0 };
	char path[64];

	if (!dc->cover || dc->uffd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", dc->pid);
	int pm = open(path, O_RDONLY | O_CLOEXEC);
	if (pm < 0) {
		pr_perror("pid %d: can't open %s", dc->pid, path);
		return -1;
	}
	int ret = 0;
	for (size_t i = 0; i < pr->nr && !ret; i++) {
		const struct page_run *r = &pr->r[i];
		if (in_tracked_vma(dc, r->start, r->end))
			ret = split_run(dc, pm, r, &out, in_parent);
		else
			ret = page_runs_add(&out, r->start, r->end, r->readable);
	}
	close(pm);
	if (ret < 0) {
		pr_perror("pid %d: can't tell which pages changed since the parent dump", dc->pid);
		free(out.r);
		return -1;
	}
	pr_info("pid %d: %lu KiB in the parent dump, %lu KiB changed or new", dc->pid,
		(unsigned long)(in_parent->bytes >> 10), (unsigned long)(out.bytes >> 10));
	free(pr->r);
	*pr = out;
	return 0;
}

/* A new fd number for the tracker at each tracked dump, recorded in the
 * dump's TRACK_LIST: a later dump can tell whether its parent is the
 * last dump that protected the memory (else pages written between them
 * would be taken from a parent that has them old). Numbers only grow. */
static int move_tracker(struct dump_ctx *dc)
{
	long fd, r;
	if (dump_inject(dc, &fd, SYS_fcntl, dc->track_task_fd, F_DUPFD_CLOEXEC, dc->track_task_fd + 1, 0) < 0)
		return -1;
	if (fd < 0) {
		errno = -fd;
		pr_perror("pid %d: can't move its memory tracker", dc->pid);
		return -1;
	}
	if (dump_inject(dc, &r, SYS_close, dc->track_task_fd, 0, 0, 0) < 0)
		return -1;
	dc->track_task_fd = fd;
	return 0;
}

/* Runs may span several mappings: protect each part inside a tracked one. */
int track_protect(struct dump_ctx *dc, const struct page_runs *pr)
{
	if (dc->uffd < 0)
		return 0;
	for (size_t i = 0; i < pr->nr; i++)
		for (int k = 0; k < dc->vmas.nr; k++) {
			const struct proc_vma *v = &dc->vmas.v[k];
			uint64_t s = pr->r[i].start > v->start ? pr->r[i].start : v->start;
			uint64_t e = pr->r[i].end < v->end ? pr->r[i].end : v->end;
			if (!v->uffd_wp || s >= e)
				continue;
			struct uffdio_writeprotect wp = { .range = { s, e - s }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
			if (ioctl(dc->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
				pr_perror("pid %d: can't protect %#lx-%#lx to track it", dc->pid,
					  (unsigned long)s, (unsigned long)e);
				return -1;
			}
		}
	return move_tracker(dc);
}

void track_undo(struct dump_ctx *dc)
{
	long r;
	if (dc->track_new && dc->track_task_fd >= 0 && dc->seized)
		dump_inject(dc, &r, SYS_close, dc->track_task_fd, 0, 0, 0);
	dc->track_new = false;
}

void track_free(struct dump_ctx *dc)
{
	if (dc->uffd >= 0)
		close(dc->uffd);
	dc->uffd = -1;
	if (dc->cover)
		free(dc->cover->r);
	free(dc->cover);
	dc->cover = NULL;
}

int track_write_list(struct dump_tree *tr)
{
	char buf[64];
	bool any = false;
	for (int i = 0; i < tr->nr; i++)
		any |= tr->t[i].track_task_fd >= 0;
	if (!any)
		return 0;
	int fd = fs_create(tr->dirfd, TRACK_LIST, O_WRONLY, 0600);
	if (fd < 0) {
		pr_perror("can't write %s", TRACK_LIST);
		return -1;
	}
	for (int i = 0; i < tr->nr; i++) {
		if (tr->t[i].track_task_fd < 0)
			continue;
		int n = snprintf(buf, sizeof(buf), "%d %d\n", tr->t[i].ns_pid, tr->t[i].track_task_fd);
		if (write(fd, buf, n) != n) {
			pr_perror("can't write %s", TRACK_LIST);
			close(fd);
			return -1;
		}
	}
	return close(fd);
}
