/* The userfaultfd tracker, which track.c picks on kernels that have it.
 *
 * Kernels since 6.7 have userfaultfd write-protection in async mode: a
 * write to a protected page is let through at once and
 * only clears the page's protection, which PAGEMAP_SCAN reports as
 * PAGE_IS_WRITTEN. So a dump that will be a parent (pre-dump, or dump
 * --track-mem) leaves a userfaultfd in the task (the tracker: the
 * protection lives as long as it is open), registers the task's private
 * anonymous memory with it and protects every page the dump holds. The
 * next dump, given the parent's directory, saves only the pages written
 * since (or not in the parent), and marks the others "in parent"
 * (PE_PARENT). Memory that can't be registered (file mappings, shared
 * memory, memory the program registered with its own userfaultfd) is
 * always saved whole.
 *
 * The tracker is known by its inode, never by where it sits: the kernel
 * makes a new anonymous inode for every userfaultfd. Stasis notes every
 * tracker it makes in TRACK_REGISTRY, so that any later dump, with a
 * parent or not, tells the task's tracker from a copy fork gave it (which
 * it closes) and from a userfaultfd of the program (left alone). The task
 * keeps one tracker, on one fd: the highest free one below its soft limit
 * of open files, close-on-exec. Each tracked dump arms it again where it
 * is, drawing a random number that it notes and records in its TRACK_LIST
 * with the inode; a dump whose parent recorded another inode or another
 * number is not over the last arming, and saves everything. When the note
 * is lost (the tracker is known only from the parent's record) the
 * tracker is replaced by a new one on the same fd (dup3): a new inode
 * makes every record of the old one stale, whatever any other stasis
 * noted. Its notes are track_registry.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "dump/track_backend.h"
#include "dump/track_registry.h"
#include "proc/proc.h"
#include "util/compat.h"
#include "util/log.h"

#include "util/log.h"

/* The tracker goes on the highest free fd below the task's soft limit of
 * open files, and below this: the kernel sizes a task's fd table to its
 * highest fd, and a limit of a million would cost it 8 MiB. */
#define TRACK_FD_CEIL 1024

/* ---- finding the tracker in the task ---- */

static int fd_inode(pid_t pid, int fd, uint64_t *ino)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	if (stat(path, &st) < 0)
		return -1;
	*ino = st.st_ino;
	return 0;
}

/* The tracker the parent dump recorded for this process: its inode and
 * the number its arming dump drew; 0 0 if none ("PID FD INODE ARMED"
 * lines; older dumps wrote "PID FD": none). */
static void parent_tracker(int parentfd, pid_t ns_pid, struct parent_cover *c)
{
	int fd = openat(parentfd, TRACK_LIST, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	char line[128];
	unsigned long ino, armed;
	int pid, tfd;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%d %d %lu %lu", &pid, &tfd, &ino, &armed) == 4 && pid == ns_pid) {
			c->tracker_ino = ino;
			c->tracker_armed = armed;
		}
	fclose(f);
}

enum tracker_kind { NOT_OURS, OWN, COPY };

/* A userfaultfd of the task is ours if stasis noted it (for this
 * process: its tracker; for another: a copy that fork gave this one), or
 * if the parent dump recorded it as this process's tracker (its note is
 * lost: the tracker is then replaced, see track_protect). Anything else
 * is the program's. */
static enum tracker_kind classify(const struct dump_ctx *dc, uint64_t ino, uint64_t *armed)
{
	pid_t owner = registry_lookup(ino, armed);
	if (owner > 0 && owner == dc->pid)
		return OWN;
	if (owner >= 0)
		return COPY;
	*armed = 0;	/* not noted: no arming can be vouched for */
	return dc->cover && dc->cover->tracker_ino == ino ? OWN : NOT_OURS;
}

/* A copy is useless to the task (its memory is not registered with it)
 * and would pin a tracker of another process: it goes. */
static int close_copy(struct dump_ctx *dc, int fd)
{
	long r;
	if (inj_call(&dc->inj, &r, INJ(SYS_close, fd)) < 0)
		return -1;
	if (r < 0) {
		errno = -r;
		pr_perror("pid %d: can't close fd %d, a copy of a memory tracker of stasis", dc->pid, fd);
		return -1;
	}
	pr_info("pid %d: closed fd %d, a copy of a memory tracker of stasis (made by a fork)", dc->pid, fd);
	return 0;
}

/* Which mappings are registered with our tracker, not with a
 * userfaultfd of the program ("uw" in smaps says only "some"): only
 * there does PAGE_IS_WRITTEN tell what the task wrote since our dump.
 * Registering a range again with the context it has is a no-op; with
 * another context the kernel says EBUSY. */
static void mark_own_vmas(struct dump_ctx *dc)
{
	for (int i = 0; i < dc->vmas.nr; i++) {
		struct proc_vma *v = &dc->vmas.v[i];
		if (!v->uffd_wp)
			continue;
		struct uffdio_register r = { .range = { v->start, v->end - v->start },
					     .mode = UFFDIO_REGISTER_MODE_WP };
		v->uffd_wp = dc->uffd >= 0 && ioctl(dc->uffd, UFFDIO_REGISTER, &r) == 0;
		if (!v->uffd_wp)
			pr_debug("pid %d: %#lx-%#lx is registered with a userfaultfd of its own: saved whole",
				 dc->pid, (unsigned long)v->start, (unsigned long)v->end);
	}
}

/* The parent holds the pages the task did not write since only if it is
 * the last dump that armed the tracker the task has now: same inode, and
 * the number the note says the last arming drew. */
static void judge_parent(struct dump_ctx *dc)
{
	if (!dc->cover || (dc->track_task_fd >= 0 && dc->track_ino == dc->cover->tracker_ino &&
			   dc->track_armed && dc->track_armed == dc->cover->tracker_armed))
		return;
	const char *why = "the parent dump is not the last one that tracked its memory";
	if (dc->track_task_fd < 0)
		why = "no memory tracker from the parent dump";
	else if (!dc->track_armed)
		why = "no note of its memory tracker in " TRACK_REGISTRY ", so no telling when it was armed";
	track_drop_parent(dc, why);
}

int track_note_fd_link(struct dump_ctx *dc, int fd, const char *link)
{
	if (strcmp(link, UFFD_LINK))
		return 0;
	int *n = realloc(dc->uffd_fds, (dc->nr_uffd_fds + 1) * sizeof(*n));
	if (!n) {
		pr_err("pid %d: out of memory noting its userfaultfds", dc->pid);
		return -1;
	}
	dc->uffd_fds = n;
	dc->uffd_fds[dc->nr_uffd_fds++] = fd;
	return 0;
}

/* The task's userfaultfds: the census's (read_mappings), else each fd's
 * link read now. */
static int list_uffds(struct dump_ctx *dc, int **fds, int *nr)
{
	if (dc->fds_seen) {
		*nr = dc->nr_uffd_fds;
		*fds = malloc((*nr ? *nr : 1) * sizeof(int));
		if (!*fds) {
			pr_err("pid %d: out of memory", dc->pid);
			return -1;
		}
		memcpy(*fds, dc->uffd_fds, *nr * sizeof(int));
		return 0;
	}
	if (proc_list_fds(dc->pid, fds, nr) < 0)
		return -1;
	int n = 0;
	for (int i = 0; i < *nr; i++)
		if (is_uffd(dc->pid, (*fds)[i]))
			(*fds)[n++] = (*fds)[i];
	*nr = n;
	return 0;
}

int uffd_prepare(struct dump_ctx *dc)
{
	int *fds = NULL, nr = 0, ret = 0;
	if (list_uffds(dc, &fds, &nr) < 0)
		return -1;
	for (int i = 0; i < nr && !ret; i++) {
		uint64_t ino;
		if (fd_inode(dc->pid, fds[i], &ino) < 0)
			continue;
		uint64_t armed = 0;
		enum tracker_kind k = classify(dc, ino, &armed);
		if (k == OWN && dc->track_task_fd < 0) {
			dc->track_task_fd = fds[i];
			dc->track_ino = ino;
			dc->track_armed = armed;
			pr_info("pid %d: fd %d is its memory tracker (inode %lu)", dc->pid, fds[i], (unsigned long)ino);
		} else if (k != NOT_OURS) {
			ret = close_copy(dc, fds[i]);
		}
	}
	free(fds);
	if (!ret && dc->track_task_fd >= 0) {
		dc->uffd = proc_take_fd(dc->pid, dc->track_task_fd);
		if (dc->uffd < 0) {
			pr_perror("pid %d: can't take its memory tracker (fd %d)", dc->pid, dc->track_task_fd);
			ret = -1;
		}
	}
	if (!ret) {
		mark_own_vmas(dc);
		judge_parent(dc);
	}
	return ret;
}

/* With a parent: the tracker it recorded for the process, by which
 * uffd_prepare knows it. */
void uffd_adopt(struct dump_ctx *dc, int parentfd)
{
	parent_tracker(parentfd, dc->ns_pid, dc->cover);
}

/* ---- arming a new tracker ---- */

/* The old tracker lets go of our memory (its protection goes with it),
 * so that the new one can register it, whoever else holds the old one. */
static void release_old(struct dump_ctx *dc)
{
	for (int i = 0; i < dc->vmas.nr; i++) {
		struct proc_vma *v = &dc->vmas.v[i];
		struct uffdio_range r = { v->start, v->end - v->start };
		if (v->uffd_wp && ioctl(dc->uffd, UFFDIO_UNREGISTER, &r) < 0)
			pr_debug("pid %d: can't unregister %#lx-%#lx from its old tracker: %m", dc->pid,
				 (unsigned long)v->start, (unsigned long)v->end);
		v->uffd_wp = false;
	}
}

/* userfaultfd() in the task: the tracker must be the task's, or the
 * protection would end with stasis. *tmp: its fd there; *ours: our copy. */
static int make_uffd(struct dump_ctx *dc, int *tmp, int *ours)
{
	long fd, r;
	if (inj_call(&dc->inj, &fd, INJ(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)) < 0)
		return -1;
	if (fd == -EPERM &&
	    inj_call(&dc->inj, &fd, INJ(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)) < 0)
		return -1;
	if (fd < 0) {
		errno = -fd;
		pr_perror("pid %d: can't make a userfaultfd to track its memory", dc->pid);
		return -1;
	}
	*tmp = fd;
	*ours = proc_take_fd(dc->pid, fd);
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	if (*ours < 0)
		pr_perror("pid %d: can't take the memory tracker it made", dc->pid);
	else if (ioctl(*ours, UFFDIO_API, &api) < 0)
		pr_perror("pid %d: this kernel can't track memory writes (userfaultfd WP_ASYNC, 6.7+)", dc->pid);
	else
		return 0;
	if (*ours >= 0)
		close(*ours);
	inj_call(&dc->inj, &r, INJ(SYS_close, fd));
	return -1;
}

/* Where the tracker lives: where it was, while the task's soft limit of
 * open files allows it; else the highest free fd below that limit (and
 * TRACK_FD_CEIL), so the program's next open() never meets it, and never
 * 0-2, which a program that closed them expects open() to refill. */
static int fd_top(struct dump_ctx *dc, rlim_t *top, rlim_t *soft)
{
	struct rlimit lim[RLIMIT_NOFILE + 1];
	if (proc_parse_limits(dc->pid, lim, RLIMIT_NOFILE + 1) < 0)
		return -1;
	*soft = lim[RLIMIT_NOFILE].rlim_cur;
	*top = *soft < TRACK_FD_CEIL ? *soft : TRACK_FD_CEIL;
	return 0;
}

static int pick_slot(struct dump_ctx *dc, int tmp, int *slot)
{
	int *fds = NULL, nr = 0;
	rlim_t top, soft;
	if (fd_top(dc, &top, &soft) < 0)
		return -1;
	if (dc->track_task_fd >= 0 && (rlim_t)dc->track_task_fd < top) {
		*slot = dc->track_task_fd;
		return 0;
	}
	if (proc_list_fds(dc->pid, &fds, &nr) < 0)
		return -1;
	for (long f = (long)top - 1, j = nr - 1; f >= 3; f--) {
		while (j >= 0 && fds[j] > f)
			j--;
		if (j < 0 || fds[j] != f || f == tmp) {
			*slot = f;
			free(fds);
			return 0;
		}
	}
	free(fds);
	pr_err("pid %d: no free fd for the memory tracker: fds 3 to %ld are all open (its soft limit of open files is %lu)",
	       dc->pid, (long)top - 1, (unsigned long)soft);
	return -1;
}

/* The new tracker onto its slot (over the old one, which goes with it),
 * close-on-exec so that an exec drops it. */
static int place(struct dump_ctx *dc, int tmp, int slot)
{
	long r = slot;
	if (tmp != slot && inj_call(&dc->inj, &r, INJ(SYS_dup3, tmp, slot, O_CLOEXEC)) < 0)
		return -1;
	if (r != slot) {
		errno = -r;
		pr_perror("pid %d: can't put its memory tracker on fd %d", dc->pid, slot);
		return -1;
	}
	if (tmp != slot && inj_call(&dc->inj, &r, INJ(SYS_close, tmp)) < 0)
		return -1;
	if (dc->track_task_fd >= 0 && dc->track_task_fd != slot &&
	    inj_call(&dc->inj, &r, INJ(SYS_close, dc->track_task_fd)) < 0)
		return -1;
	return 0;
}

/* Memory the program registered with a userfaultfd of its own stays its
 * own (EBUSY): saved whole each time. */
static void register_vmas(struct dump_ctx *dc)
{
	for (size_t i = 0; i < dc->mm.n_vmas; i++) {
		struct proc_vma *v = &dc->vmas.v[i];
		if (!track_vma_trackable(v, dc->mm.vmas[i]))
			continue;
		struct uffdio_register r = { .range = { v->start, v->end - v->start },
					     .mode = UFFDIO_REGISTER_MODE_WP };
		if (ioctl(dc->uffd, UFFDIO_REGISTER, &r) < 0)
			pr_debug("pid %d: %#lx-%#lx can't be tracked (%m): saved whole each time", dc->pid,
				 (unsigned long)v->start, (unsigned long)v->end);
		else
			v->uffd_wp = true;
	}
}

/* A new tracker in the old one's place (a new inode: every record of the
 * old one is stale from now on). The old one keeps our memory
 * until the new one has its fd and its note (a dump failing before that
 * leaves the task as it was); our copy of the old one goes last, so that
 * the kernel lets it go while the task is still stopped. */
static int replace(struct dump_ctx *dc)
{
	int tmp, ours, slot;
	uint64_t ino, armed;
	struct stat st;

	if (track_draw_armed(&armed) < 0 || make_uffd(dc, &tmp, &ours) < 0)
		return -1;
	if (fstat(ours, &st) < 0 || pick_slot(dc, tmp, &slot) < 0 || registry_add(dc, st.st_ino, slot, armed) < 0) {
		long r;
		close(ours);
		inj_call(&dc->inj, &r, INJ(SYS_close, tmp));
		return -1;
	}
	ino = st.st_ino;
	if (dc->uffd >= 0)
		release_old(dc);
	if (place(dc, tmp, slot) < 0) {
		long r;
		close(ours);
		inj_call(&dc->inj, &r, INJ(SYS_close, tmp));
		registry_del(ino);
		return -1;
	}
	if (dc->track_task_fd >= 0)
		dc->track_old_ino = dc->track_ino;	/* its note goes last: see track_free */
	if (dc->uffd >= 0)
		close(dc->uffd);
	dc->uffd = ours;
	dc->track_task_fd = slot;
	dc->track_ino = ino;
	dc->track_armed = armed;
	dc->track_new = true;
	register_vmas(dc);
	pr_info("pid %d: memory tracker on fd %d (inode %lu)", dc->pid, slot, (unsigned long)ino);
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
			struct page_runs *to = unwritten && track_parent_covers(dc->cover, s, e) ? in_parent : pr;
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

int uffd_split(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *in_parent)
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

/* Runs may span several mappings: protect each part inside a tracked one. */
static int protect_runs(struct dump_ctx *dc, const struct page_runs *pr)
{
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
	return 0;
}

/* The tracker the task has, noted by stasis, can be armed again where it
 * is: pages the parent holds and the task did not write are still
 * protected, and stay so. */
static bool can_rearm(struct dump_ctx *dc)
{
	rlim_t top, soft;
	return dc->track_task_fd >= 0 && dc->track_armed && fd_top(dc, &top, &soft) == 0 &&
	       (rlim_t)dc->track_task_fd < top;
}

/* Arms it again: mappings made since are registered, and a new number is
 * drawn and noted before any page is protected. A dump that fails after
 * that leaves a number no dump records: every parent is then stale (the
 * next dump saves everything), never wrongly the last. */
static int rearm(struct dump_ctx *dc)
{
	uint64_t armed;
	register_vmas(dc);
	if (track_draw_armed(&armed) < 0 || registry_add(dc, dc->track_ino, dc->track_task_fd, armed) < 0)
		return -1;
	dc->track_armed = armed;
	pr_info("pid %d: memory tracker on fd %d (inode %lu) armed again", dc->pid, dc->track_task_fd,
		(unsigned long)dc->track_ino);
	return 0;
}

/* A tracked dump arms the tracker and protects every page it saved; a new
 * tracker (none yet, or one that can't stay: its note is lost, or the
 * limit of open files went below its fd) also every page left to the
 * parents. The next dump then saves what is written from now on. */
int uffd_protect(struct dump_ctx *dc, const struct page_runs *saved, const struct page_runs *in_parent)
{
	if (can_rearm(dc))
		return rearm(dc) < 0 || protect_runs(dc, saved) < 0 ? -1 : 0;
	if (replace(dc) < 0)
		return -1;
	return protect_runs(dc, saved) < 0 || protect_runs(dc, in_parent) < 0 ? -1 : 0;
}

/* A failed dump takes back the tracker it armed: no dump records its
 * inode, so it could only cost the task an fd. The old one is gone; the
 * next dump saves everything. */
void uffd_undo(struct dump_ctx *dc)
{
	long r;
	if (dc->track_new && dc->track_task_fd >= 0 && dc->seized) {
		inj_call(&dc->inj, &r, INJ(SYS_close, dc->track_task_fd));
		registry_del(dc->track_ino);
		dc->track_task_fd = -1;
	}
	dc->track_new = false;
}

/* Notes go once every process of the tree is done: until then, one
 * processed later may hold a copy of a replaced tracker, known by its
 * note. */
void uffd_release(struct dump_ctx *dc)
{
	if (dc->track_old_ino)
		registry_del(dc->track_old_ino);
	if (dc->track_task_fd >= 0 || dc->track_old_ino)
		registry_prune();
	dc->track_old_ino = 0;
	if (dc->uffd >= 0)
		close(dc->uffd);
	dc->uffd = -1;
}

int uffd_list_line(const struct dump_ctx *dc, char *buf, size_t len)
{
	if (dc->track_task_fd < 0)
		return 0;
	return snprintf(buf, len, "%d %d %lu %lu\n", dc->ns_pid, dc->track_task_fd,
			(unsigned long)dc->track_ino, (unsigned long)dc->track_armed);
}
