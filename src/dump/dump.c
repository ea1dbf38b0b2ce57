/* `stasis dump`: the order of the steps of a dump, top to bottom.
 *
 * The task is seized and stays stopped until every image is written; any
 * failure puts its registers and mask back and lets it run, as if nothing
 * happened. inventory.img is written last, through a rename, so that a dump
 * cut short at any moment leaves a directory restore refuses. */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "dump/dump.h"
#include "dump/lazy_serve.h"
#include "util/kcmp_order.h"
#include "files/sock_diag.h"
#include "task/timens.h"
#include "image/img.h"
#include "image/magic.h"
#include "image/vma.h"
#include "infect/arch.h"
#include "ns/ns.h"
#include "inventory.pb-c.h"
#include "pstree.pb-c.h"
#include "dump/track.h"
#include "dump/ps_send.h"
#include "dump/live.h"
#include "task/seccomp.h"
#include "util/action.h"
#include "util/fault.h"
#include "util/fsop.h"
#include "util/log.h"
#include "util/progress.h"
#include "proc/ns_ids.h"

#define CODE_SCAN (64u << 10)

/* A syscall instruction in the task's own code (its executable file
 * mappings), for a task that unmapped its vdso; 0 if none. Any two bytes
 * that read as one will do: the task never runs on past it. */
static uint64_t find_syscall_insn(struct dump_ctx *dc)
{
	uint8_t *buf = malloc(CODE_SCAN + ARCH_SYSCALL_LEN);
	uint64_t found = 0;

	for (int i = 0; buf && !found && i < dc->vmas.nr; i++) {
		const struct proc_vma *v = &dc->vmas.v[i];
		if (!(v->prot & PROT_EXEC) || !(v->prot & PROT_READ) || v->special != VMA_NORMAL)
			continue;
		for (uint64_t at = v->start; !found && at < v->end; at += CODE_SCAN) {
			size_t len = v->end - at < CODE_SCAN ? v->end - at : CODE_SCAN;
			struct iovec local = { buf, len }, remote = { (void *)at, len };
			if (process_vm_readv(dc->pid, &local, 1, &remote, 1, 0) != (ssize_t)len)
				break;
			for (size_t k = 0; k + ARCH_SYSCALL_LEN <= len; k++)
				if (arch_is_syscall(buf + k)) {
					found = at + k;
					break;
				}
		}
	}
	free(buf);
	return found;
}

/* Calls are careful, from the task's vdso (or, without one, its code). */
static int start_injection(struct dump_ctx *dc)
{
	for (int i = 0; i < dc->vmas.nr; i++)
		if (dc->vmas.v[i].special == VMA_VDSO)
			return inj_start_careful(&dc->inj, dc->vmas.v[i].start);
	uint64_t ip = find_syscall_insn(dc);
	if (!ip) {
		pr_err("pid %d has no vdso and no syscall instruction in its code; stasis needs one to "
		       "run syscalls in the task", dc->pid);
		return -1;
	}
	pr_warn("pid %d has no vdso: syscalls run from its code at %#lx, with no trampoline (a dump "
		"killed during one may harm the task)", dc->pid, (unsigned long)ip);
	return inj_start_careful_at(&dc->inj, ip);
}

/* What needs syscalls run inside the task; leaves no trace in it, and
 * parks every thread where a dying stasis would let it go on unharmed. */
static int collect_by_injection(struct dump_ctx *dc)
{
	if (start_injection(dc) < 0)
		return -1;
	if (dump_task_core(dc) < 0 || dump_task_mm_prepare(dc) < 0)
		return -1;
	if (track_prepare(dc) < 0)
		return -1;
	return inj_undo(&dc->inj);
}

static int dump_fs(struct dump_ctx *dc)
{
	char link[64], path[PATH_MAX];
	FsEntry fs = FS_ENTRY__INIT;
	const char *which[2] = { "cwd", "root" };
	uint32_t *ids[2] = { &fs.cwd_id, &fs.root_id };

	for (int i = 0; i < 2; i++) {
		snprintf(link, sizeof(link), "/proc/%d/%s", dc->pid, which[i]);
		ssize_t n = readlink(link, path, sizeof(path) - 1);
		if (n < 0) {
			pr_perror("pid %d: can't read its %s", dc->pid, which[i]);
			return -1;
		}
		path[n] = 0;
		struct path_facts p = { dc->pid, path, link, O_RDONLY | O_DIRECTORY, false };
		if (files_dump_path(dc->files, dc->o, &p, ids[i]) < 0)
			return -1;
	}
	fs.has_umask = 1;
	fs.umask = dc->status.umask;
	return img_store_one(dc->dirfd, IMG_FS, dc->ns_pid, &fs.base);
}

/* Every process has its own fs, mm and handlers (no CLONE_FS & co.
 * between processes yet), so those ids are its index; its fd table may be
 * shared (files_id). */
static void fill_ids(TaskKobjIdsEntry *ids, uint32_t id, uint32_t files_id)
{
	ids->vm_id = id;
	ids->files_id = files_id;
	ids->fs_id = id;
	ids->sighand_id = id;
}

/* The namespaces' ids into ids (as CRIU: fds on namespaces name them so);
 * kinds the tree takes with it (taken, CLONE_NEW* flags) get the
 * dumper's own instead: the inventory's root_ids. */
static void set_ns_ids(TaskKobjIdsEntry *ids, const uint32_t ns[FILES_NR_NS], const uint32_t own[FILES_NR_NS],
		       unsigned long taken)
{
	static const unsigned long cflag[FILES_NR_NS] = {
		CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
		CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWCGROUP, 0x80 /* CLONE_NEWTIME */,
	};
	protobuf_c_boolean *has[FILES_NR_NS] = {
		&ids->has_pid_ns_id, &ids->has_net_ns_id, &ids->has_ipc_ns_id, &ids->has_uts_ns_id,
		&ids->has_mnt_ns_id, &ids->has_user_ns_id, &ids->has_cgroup_ns_id, &ids->has_time_ns_id,
	};
	uint32_t *id[FILES_NR_NS] = {
		&ids->pid_ns_id, &ids->net_ns_id, &ids->ipc_ns_id, &ids->uts_ns_id,
		&ids->mnt_ns_id, &ids->user_ns_id, &ids->cgroup_ns_id, &ids->time_ns_id,
	};
	for (int k = 0; k < FILES_NR_NS; k++) {
		*id[k] = (taken & cflag[k]) ? own[k] : ns[k];
		*has[k] = *id[k] != 0;
	}
}

static int fill_ns_ids(struct file_table *t, pid_t pid, TaskKobjIdsEntry *ids)
{
	uint32_t ns[FILES_NR_NS];
	if (files_task_ns_ids(t, pid, ns) < 0)
		return -1;
	set_ns_ids(ids, ns, ns, 0);
	return 0;
}

static int dump_ids(struct dump_ctx *dc)
{
	TaskKobjIdsEntry ids = TASK_KOBJ_IDS_ENTRY__INIT;
	fill_ids(&ids, dc->id, dc->files_id);
	if (fill_ns_ids(dc->files, dc->pid, &ids) < 0)
		return -1;
	return img_store_one(dc->dirfd, IMG_IDS, dc->ns_pid, &ids.base);
}

static int dump_pstree(struct dump_tree *tr)
{
	struct img img;
	if (img_create(tr->dirfd, &img, IMG_PSTREE, 0) < 0)
		return -1;
	for (int i = 0; i < tr->nr; i++) {
		struct dump_ctx *dc = &tr->t[i];
		PstreeEntry pe = PSTREE_ENTRY__INIT;
		uint32_t *threads = calloc(dc->inj.nr_th ? dc->inj.nr_th : 1, sizeof(uint32_t));
		if (!threads) {
			pr_err("out of memory writing pstree.img");
			img_abort(&img);
			return -1;
		}
		pe.pid = dc->ns_pid;
		pe.ppid = dc->ns_ppid;
		pe.pgid = dc->ns_pgid;
		pe.sid = dc->ns_sid;
		pe.threads = threads;
		pe.n_threads = dc->zombie ? 1 : dc->inj.nr_th;
		threads[0] = dc->ns_pid;
		for (int t = 1; t < dc->inj.nr_th; t++)
			threads[t] = dc->ns_tid[t];
		int ret = img_write(&img, &pe.base);
		free(threads);
		if (ret < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

/* The commit point of a dump. */
static int write_inventory(struct dump_tree *tr)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	TaskKobjIdsEntry ids = TASK_KOBJ_IDS_ENTRY__INIT;

	/* root_ids are the dumper's own objects (CRIU compares every task's
	 * with them: equal files ids would mean a shared fd table); ours
	 * are never a task's, whose ids start at 1. */
	uint32_t ns[FILES_NR_NS], own[FILES_NR_NS];

	fill_ids(&ids, 0, 0);
	/* The root's namespaces, but the dumper's for the kinds the tree
	 * takes with it (ns/ns.h): a restore, stasis's or CRIU's, makes new
	 * ones of those, and restores into the namespaces it runs in the
	 * others. */
	if (files_task_ns_ids(&tr->files, tr->t[0].pid, ns) < 0 || files_own_ns_ids(&tr->files, own) < 0)
		return -1;
	set_ns_ids(&ids, ns, own, tr->ns_taken);
	inv.img_version = IMG_VERSION;
	inv.has_fdinfo_per_id = 1;
	inv.fdinfo_per_id = true;
	inv.has_ns_per_id = 1;	/* utsns-ID.img & co. are named by namespace id */
	inv.ns_per_id = true;
	inv.root_ids = &ids;
	inv.has_root_cg_set = 1;
	inv.root_cg_set = cg_dump_own_set(&tr->cg);
	inv.has_lsmtype = 1;
	inv.lsmtype = 0;	/* no LSM */
	/* the restore unlocks as this dump locked */
	inv.has_network_lock_method = 1;
	inv.network_lock_method = tr->netlock.method;
	inv.dump_criu_run_id = tr->netlock.run_id;
	if (img_commit_one(tr->dirfd, IMG_INVENTORY, 0, &inv.base, !tr->sync_late) < 0)
		return -1;
	fault_point("inventory-renamed");
	return 0;
}

/* The namespaces of the tree's own (ns/ns.h), checked and saved before
 * anything else: a nested one stops the dump at once. */
static int dump_namespaces(struct dump_tree *tr)
{
	TaskKobjIdsEntry ids = TASK_KOBJ_IDS_ENTRY__INIT;
	pid_t *pids = calloc(tr->nr > 0 ? (size_t)tr->nr : 1, sizeof(*pids));
	int n = 0, ret = -1;

	if (!pids) {
		pr_err("out of memory");
		return -1;
	}
	uint32_t *mnt_ids = calloc(tr->nr > 0 ? (size_t)tr->nr : 1, sizeof(*mnt_ids));
	if (!mnt_ids) {
		free(pids);
		pr_err("out of memory");
		return -1;
	}
	/* each process's mount namespace by its id (ids-PID.img's mnt_ns_id) */
	for (int i = 0; i < tr->nr; i++) {
		uint32_t ns[FILES_NR_NS];
		if (tr->t[i].zombie)
			continue;
		if (files_task_ns_ids(&tr->files, tr->t[i].pid, ns) < 0)
			goto out;
		mnt_ids[n] = ns[FILES_NS_MNT];
		pids[n++] = tr->t[i].pid;
	}
	if (fill_ns_ids(&tr->files, tr->t[0].pid, &ids) == 0)
		ret = ns_dump(tr->dirfd, tr->t[0].pid, pids, mnt_ids, n, &ids, tr->o, &tr->ns_taken, &tr->userns);
	tr->files.mnt_ids = tr->ns_taken & CLONE_NEWNS;
	for (int i = 0; i < tr->nr; i++)
		tr->t[i].userns = &tr->userns;
out:
	free(pids);
	free(mnt_ids);
	return ret;
}

static int dump_one(struct dump_ctx *dc)
{
	fault_point("task-dump");
	if (dc->zombie)
		return dump_zombie_core(dc);
	if (collect_by_injection(dc) < 0)	/* its mappings: read_mappings */
		return -1;
	if (dump_task_mm(dc) < 0)
		return -1;
	if (dc->o->pre_dump)
		return 0;	/* memory only */
	if (files_dump_fds(dc->files, dc->o, dc->pid, dc->ns_pid, dc->dirfd, dc->files_id,
			   dc->files_id != dc->id, dc->track_task_fd) < 0)
		return -1;
	return dump_fs(dc) < 0 ? -1 : dump_ids(dc);
}

/* Every process's mappings, before any is classified: which objects of
 * shared memory are also open as files decides how all their mappings
 * are saved (dump/shmem.c). And first, whether its time namespace is the
 * root's: nested ones are refused before anything is injected. */
struct census_arg {
	struct dump_tree *tr;
	struct dump_ctx *dc;
};

/* One fd's link, from the census of the task's fds (files_census): its
 * shared memory open as a file, its userfaultfds. */
static int census_link(void *arg, int dirfd, const char *name, int fd, const char *link)
{
	struct census_arg *a = arg;
	return shmem_dump_note_fd(&a->tr->shmem, dirfd, name, link) < 0 ||
	       track_note_fd_link(a->dc, fd, link) < 0 ? -1 : 0;
}

/* And one walk of each process's fds: the census (files_census), which
 * the later looks at its fds use instead of reading each link again. */
static int read_mappings(struct dump_tree *tr)
{
	for (int i = 0; i < tr->nr; i++) {
		struct dump_ctx *dc = &tr->t[i];
		struct census_arg a = { tr, dc };
		if (dc->zombie)
			continue;
		if (timens_dump_check(dc->pid, tr->t[0].pid) < 0 || proc_parse_smaps(dc->pid, &dc->vmas) < 0 ||
		    shmem_dump_scan_maps(&tr->shmem, dc->pid, &dc->vmas) < 0 ||
		    files_census(&tr->files, dc->pid, census_link, &a) < 0)
			return -1;
		dc->fds_seen = true;
	}
	return 0;
}

/* After a failure: what injection changed in a seized task goes back as
 * far as it can (inj_undo), before tree_release lets the task go. */
static void undo_injection(struct dump_ctx *dc)
{
	if (dc->seized)
		inj_undo(&dc->inj);
}

/* --prev-images-dir DIR (relative to the images directory, as in CRIU):
 * linked as "parent", where restore looks for the pages this dump leaves
 * to its parent. */
static int open_parent(struct dump_tree *tr)
{
	const char *prev = tr->o->prev_images_dir;
	if (!prev)
		return 0;
	fs_unlink(tr->dirfd, "parent");	/* the link of an earlier dump */
	if (fs_symlink(prev, tr->dirfd, "parent") < 0) {
		pr_perror("can't link the parent dump %s as %s/parent", prev, tr->o->images_dir);
		return -1;
	}
	tr->parentfd = openat(tr->dirfd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tr->parentfd < 0) {
		pr_perror("can't open the parent dump %s (--prev-images-dir is relative to %s)", prev,
			  tr->o->images_dir);
		return -1;
	}
	return 0;
}

/* What was seized is what the caller's check sees: every thread of
 * every process, stopped, so none of them can exec or change ids
 * between the check and the dump. */
static int check_seized(struct dump_tree *tr)
{
	const struct opts *o = tr->o;
	if (!o->check_seized)
		return 0;
	int n = 0;
	for (int i = 0; i < tr->nr; i++)
		n += tr->t[i].zombie ? 0 : tr->t[i].inj.nr_th;
	pid_t *tids = malloc((n ? n : 1) * sizeof(*tids));
	if (!tids) {
		pr_err("out of memory");
		return -1;
	}
	n = 0;
	for (int i = 0; i < tr->nr; i++)
		for (int t = 0; !tr->t[i].zombie && t < tr->t[i].inj.nr_th; t++)
			tids[n++] = tr->t[i].inj.th[t].pid;
	int ret = o->check_seized(o->check_ctx, tids, n);
	free(tids);
	return ret;
}

/* The clocks of the root's time namespace (task/timens.c). */
static int dump_timens(struct dump_tree *tr)
{
	uint32_t ns[FILES_NR_NS];
	if (files_task_ns_ids(&tr->files, tr->t[0].pid, ns) < 0)
		return -1;
	return timens_dump(tr->dirfd, tr->t[0].pid, ns[FILES_NR_NS - 1]);
}

/* The checksums of every image this dump wrote (image/checksum.h),
 * after the inventory: a dump cut short before has no list (the old one
 * is removed first) and restores unchecked, never wrongly refused. */
static int write_checksums(struct dump_tree *tr)
{
	uint64_t t0 = stats_now_us();
	int ret = ck_list_write(&tr->ck, tr->dirfd, CK_LIST);
	pr_info("checksums of %d images written in %lu us", tr->ck.nr, (unsigned long)(stats_now_us() - t0));
	return ret;
}

/* The images of a dump committed unsynced (sync_late), to the disk. */
static void sync_images(const struct dump_tree *tr)
{
	uint64_t t0 = stats_now_us();
	img_sync(tr->dirfd);
	pr_info("images synced to disk in %lu us, the tree running", (unsigned long)(stats_now_us() - t0));
}

/* The inventory, which commits the dump, then the checksums of all. */
static int commit_images(struct dump_tree *tr)
{
	if (write_inventory(tr) < 0)
		return -1;
	if (write_checksums(tr) < 0) {
		img_remove(tr->dirfd, IMG_INVENTORY, 0);
		return -1;
	}
	return 0;
}

/* Does a process of the tree have pages to copy once it runs (mem.c)? */
static bool copies_later(const struct dump_tree *tr)
{
	for (int i = 0; i < tr->nr; i++)
		if (tr->t[i].later || tr->t[i].ps_later)
			return true;
	return false;
}

/* A pre-dump whose pages are copied while the tree runs: the copies,
 * then the tracking list (a next dump trusts this one as its parent only
 * with it) and the checksums. -1 (reported): no pre-dump to build on. */
static int finish_later(struct dump_tree *tr)
{
	int ret = 0;
	for (int i = 0; i < tr->nr; i++)
		if (ret < 0) {
			dump_task_pages_drop(&tr->t[i]);
			ps_dump_task_drop(&tr->t[i]);
		} else if (dump_task_pages_later(&tr->t[i]) < 0 || ps_dump_task_later(&tr->t[i]) < 0) {
			ret = -1;
		}
	if (ret < 0 || ps_dump_finish(tr) < 0 || track_write_list(tr) < 0 || write_checksums(tr) < 0) {
		pr_err("the pre-dump's pages could not all be saved: it is no parent for a next dump");
		return -1;
	}
	return 0;
}

/* A pre-dump leaves memory only, and no inventory: it is a parent for
 * the next dump, not something to restore. Shared memory is not in it:
 * every dump saves it whole (dump/shmem.c), to the page server if there
 * is one. Its pages ids follow the processes' (1 to nr), as CRIU counts
 * them. */
static int write_tree_images(struct dump_tree *tr)
{
	bool remote = tr->o->page_server, shmem = !tr->o->pre_dump, later = copies_later(tr);
	/* every page is on the page server before anything commits */
	if ((remote && shmem && ps_dump_shmem(tr) < 0) || (!later && ps_dump_finish(tr) < 0) ||
	    (!later && track_write_list(tr) < 0) || dump_pstree(tr) < 0)
		return -1;
	if (!shmem)	/* with pages still to copy, by finish_later */
		return later ? 0 : write_checksums(tr);
	if ((!remote && shmem_dump_write(&tr->shmem, tr->dirfd, tr->nr + 1, &tr->stats.shpages_written) < 0) ||
	    dump_timens(tr) < 0 ||
	    files_write(&tr->files, tr->dirfd) < 0 || seccomp_dump_write(&tr->seccomp, tr->dirfd) < 0 ||
	    cg_dump_write(&tr->cg, tr->dirfd) < 0)
		return -1;
	tr->stats.shpages_written += tr->files.memfd_pages;
	/* live: the commit waits for the pages (stasis_dump) */
	return tr->o->live_snapshot ? 0 : commit_images(tr);
}

struct table_reps {
	const struct dump_tree *tr;
	int *i;		/* indexes in tr->t */
};

static void table_at(const void *arg, int i, pid_t *pid, unsigned long *idx)
{
	const struct table_reps *r = arg;
	*pid = r->tr->t[r->i[i]].pid;
	*idx = 0;
}

/* The first process before i (in tree order) sharing i's fd table, or -1:
 * the scan, when kcmp can't order. */
static int table_sharer_scan(const struct dump_tree *tr, int i)
{
	for (int j = 0; j < i; j++)
		if (!tr->t[j].zombie && tr->t[j].files_id == tr->t[j].id &&
		    syscall(SYS_kcmp, tr->t[i].pid, tr->t[j].pid, KCMP_FILES, 0, 0) == 0)
			return j;
	return -1;
}

/* Processes sharing one fd table (CLONE_FILES) share its files_id: the
 * first one's id, whose fdinfo image is the table's. */
static void find_shared_fd_tables(struct dump_tree *tr)
{
	/* the tables' first processes, in kcmp's order: it orders two tables
	 * as well as it says equal, so 1,000 processes take 10,000 calls,
	 * not 500,000 (NULL: a kcmp could not order, scans from then on) */
	int *reps = malloc((tr->nr + 1) * sizeof(int)), n = 0;
	struct table_reps arg = { tr, reps };
	for (int i = 0; i < tr->nr; i++) {
		struct dump_ctx *dc = &tr->t[i];
		bool same = false;
		dc->files_id = dc->id;
		if (dc->zombie)
			continue;
		int at = reps ? kcmp_bisect(KCMP_FILES, dc->pid, 0, table_at, &arg, n, &same) : -1, j = -1;
		if (at < 0) {
			free(reps);
			reps = NULL;
			j = table_sharer_scan(tr, i);
		} else if (same) {
			j = reps[at];
		} else {
			memmove(&reps[at + 1], &reps[at], (n - at) * sizeof(int));
			reps[at] = i;
			n++;
		}
		if (j >= 0) {
			dc->files_id = tr->t[j].id;
			pr_info("pid %d shares the fd table of pid %d", dc->ns_pid, tr->t[j].ns_pid);
		}
	}
	free(reps);
}

static int collect_seccomp(struct dump_tree *tr)
{
	for (int i = 0; i < tr->nr; i++) {
		struct dump_ctx *dc = &tr->t[i];
		if (!dc->zombie && seccomp_dump_collect(&tr->seccomp, &dc->inj, &dc->status, &dc->seccomp) < 0)
			return -1;
	}
	return 0;
}

/* The dump is whole without them: a failure is only a warning. */
static void write_stats(const struct dump_tree *tr)
{
	const struct dump_stats *s = &tr->stats;
	if (stats_write_dump(tr->dirfd, s) < 0)
		pr_warn("the dump is complete, but without its stats-dump");
	if (tr->o->display_stats)
		stats_print_dump(stdout, s);
	pr_info("frozen %lu us (seizing %lu us), memory %lu us (copying %lu us); pages: %lu scanned, "
		"%lu left to the parent, %lu written, %lu shared written",
		(unsigned long)s->frozen_us, (unsigned long)s->freezing_us, (unsigned long)s->memdump_us,
		(unsigned long)s->memwrite_us, (unsigned long)s->pages_scanned,
		(unsigned long)s->pages_skipped_parent, (unsigned long)s->pages_written,
		(unsigned long)s->shpages_written);
}

static bool own_netns(pid_t pid)
{
	return ns_same(pid, 0, "net") == 0;
}

/* As CRIU: the network-lock and -unlock stages are for a tree with a
 * network namespace of its own, the thing a script there would lock;
 * the script runs before the lock and after the unlock. A pre-dump
 * locks nothing: the tree runs on. */
static int net_lock(struct dump_tree *tr)
{
	if (tr->o->pre_dump)
		return 0;
	if (tr->own_netns && action_run(tr->o, ACT_NET_LOCK, tr->o->pid) < 0)
		return -1;
	tr->netlock.netns_pid = tr->own_netns ? tr->o->pid : 0;
	return netlock_lock(&tr->netlock);
}

/* The tree resumes: its traffic flows again. */
static int net_unlock(struct dump_tree *tr)
{
	int ret = 0;
	if (tr->o->pre_dump)
		return 0;
	if (tr->own_netns && action_run(tr->o, ACT_NET_UNLOCK, tr->o->pid) < 0)
		ret = -1;
	if (netlock_unlock(&tr->netlock) < 0)
		ret = -1;
	return ret;
}

/* The kinds' look at the whole tree before its fds are dumped (its TCP
 * connections are put in repair mode all at once, so that none sends to
 * another already saved). */
static int prepare_files(struct dump_tree *tr)
{
	pid_t *pids = calloc(tr->nr ? tr->nr : 1, sizeof(*pids));
	int n = 0;

	if (!pids) {
		pr_err("out of memory");
		return -1;
	}
	for (int i = 0; i < tr->nr; i++)
		if (!tr->t[i].zombie)
			pids[n++] = tr->t[i].pid;
	int ret = files_dump_prepare(&tr->files, tr->o, pids, n);
	free(pids);
	return ret;
}

/* A live snapshot's first, short freeze: a userfaultfd made in each
 * process (live.h), then the tree runs while its memory is protected.
 * NULL if it could not be done: then all is protected at the freeze.
 * *frozen: how long this freeze lasted. */
static struct live_pre *live_pre_arm(const struct opts *o, uint64_t *frozen)
{
	struct dump_tree pre = { .o = o, .dirfd = -1, .parentfd = -1 };
	struct live_pre *lp = live_pre_new();
	uint64_t t0 = stats_now_us();
	int ret = -1;

	if (!lp)
		return NULL;
	if (tree_seize(&pre, o->pid) == 0 && collect_seccomp(&pre) == 0) {
		ret = 0;
		for (int i = 0; i < pre.nr && !ret; i++)
			if (!pre.t[i].zombie && live_pre_take(lp, &pre.t[i]) < 0)
				ret = -1;
	}
	for (int i = 0; ret < 0 && i < pre.nr; i++)
		undo_injection(&pre.t[i]);
	tree_release(&pre, false);
	*frozen = stats_now_us() - t0;
	for (int i = 0; i < pre.nr; i++) {
		inj_free(&pre.t[i].inj);
		free(pre.t[i].ns_tid);
	}
	free(pre.t);
	seccomp_dump_free(&pre.seccomp);
	if (ret < 0) {
		live_pre_free(lp);
		pr_warn("the live snapshot protects the memory at the freeze (a longer one)");
		return NULL;
	}
	live_pre_protect(lp);
	return lp;
}

/* A live snapshot, the tree running again: its pages, then the commit
 * and post-dump, as a plain dump has them before the tree resumes. On
 * failure the directory is no dump; the tree runs on unharmed. */
static int live_finish(struct dump_tree *tr)
{
	uint64_t t0 = stats_now_us();
	int ret = live_copy_all(tr);
	tr->stats.memdump_us += stats_now_us() - t0;
	if (ret < 0 || commit_images(tr) < 0) {
		pr_err("the live snapshot of pid %d failed; the tree runs on, unharmed; %s is not a dump",
		       tr->o->pid, tr->o->images_dir);
		return -1;
	}
	if (action_run(tr->o, ACT_POST_DUMP, tr->o->pid) < 0) {
		img_remove(tr->dirfd, IMG_INVENTORY, 0);
		return -1;
	}
	return 0;
}

/* The progress line (util/progress.h), counted from here: until a
 * process's pages are found (mem.c), its anonymous memory as the kernel
 * counts it stands for what it will save. */
static void progress_start(const struct dump_tree *tr)
{
	uint64_t bytes = 0;
	unsigned n = 0;
	for (int i = 0; i < tr->nr; i++)
		if (!tr->t[i].zombie) {
			bytes += tr->t[i].status.anon_kb << 10;
			n++;
		}
	progress_begin(tr->o->pre_dump ? "pre-dump" : "dump", n, bytes);
	progress_show();
}

/* The copies left to the worker (mem.c), all done: each pages image
 * finished, or, cancelled (the dump failed), dropped. */
static int collect_behind(struct dump_tree *tr, bool cancel)
{
	struct bg_job *j;
	int ret = 0;
	if (!tr->bg.todo_tail)	/* failed before the seize: never made */
		return 0;
	if (cancel)
		bg_cancel(&tr->bg);
	else
		bg_wait_idle(&tr->bg);
	while ((j = bg_collect(&tr->bg)))
		if (dump_pages_behind_finish(j) < 0)
			ret = -1;
	bg_fini(&tr->bg);
	return ret;
}

int stasis_dump(const struct opts *o)
{
	struct dump_tree tr = { .o = o, .dirfd = -1, .parentfd = -1, .ps_sk = -1, .freezer = { .statefd = -1, .dirfd = -1 },
				.netlock = { .method = o->network_lock, .unprivileged = o->unprivileged } };
	int ret = -1;
	bool released = false, running = o->leave_running || o->pre_dump;

	if (o->pid <= 0) {
		pr_err("dump needs the pid of the tree's root: -t PID");
		return -1;
	}
	if (proc_check_ours() < 0)
		return -1;
	infect_set_stop_timeout(o->timeout);
	if (netlock_new_run_id(tr.netlock.run_id) < 0)
		return -1;
	tr.files.netlock = &tr.netlock;
	pr_info("run id = %s", tr.netlock.run_id);	/* names the network lock's table */
	/* A killed tree's images are on disk before it dies (its only copy
	 * then); a tree left running need not wait for the disk, frozen, for
	 * a sync of the whole filesystem: the dump syncs once it runs, and
	 * has not succeeded before. (A live snapshot commits running.) */
	tr.sync_late = o->leave_running && !o->pre_dump && !o->live_snapshot && !lazy_dump(o);
	tr.dirfd = img_dir_open(o->images_dir, o->images_dirfd);
	if (tr.dirfd < 0)
		return -1;
	/* From here until the new inventory lands, the directory is not a dump. */
	if (img_remove(tr.dirfd, IMG_INVENTORY, 0) < 0 && errno != ENOENT) {
		pr_perror("can't remove the old inventory.img of %s", o->images_dir);
		goto out;
	}
	if (fs_unlink(tr.dirfd, CK_LIST) < 0 && errno != ENOENT) {
		pr_perror("can't remove the old %s of %s", CK_LIST, o->images_dir);
		goto out;
	}
	img_note_written(&tr.ck);	/* every image made from here on */
	/* A failing pre-dump script stops the dump before the tree is touched.
	 * Seccomp is looked at before anything is injected into any task:
	 * suspended for our calls, or the dump refused right there. */
	if (files_dump_begin(&tr.files) < 0 || cg_dump_begin(&tr.cg, o) < 0 || open_parent(&tr) < 0 ||
	    (!lazy_dump(o) && ps_dump_connect(&tr) < 0) || action_run(o, ACT_PRE_DUMP, o->pid) < 0)
		goto out;
	uint64_t pre_frozen = 0;
	if (o->live_snapshot)
		tr.live_pre = live_pre_arm(o, &pre_frozen);
	uint64_t t_seize = stats_now_us();
	if (o->freeze_cgroup && freezer_seize(&tr.freezer, o->freeze_cgroup, o->timeout) < 0)
		goto out;
	if (tree_seize(&tr, o->pid) < 0 || collect_seccomp(&tr) < 0)
		goto out;
	ns_ids_keep();	/* seized, the tree can't change namespace: each read once */
	bg_init(&tr.bg);
	for (int i = 0; i < tr.nr; i++) {
		tr.t[i].bg = &tr.bg;
		tr.t[i].last = i == tr.nr - 1;
		tr.t[i].live_pre = tr.live_pre;
		live_pre_scratch(&tr.t[i]);
	}
	uint64_t t_frozen = stats_now_us();
	tr.stats.freezing_us = t_frozen - t_seize;
	if (check_seized(&tr) < 0)
		goto out;
	fault_point("seized");
	tr.own_netns = own_netns(o->pid);
	/* the tree's sockets are those sock_diag lists in its namespace */
	if (sock_diag_set_netns(tr.own_netns ? o->pid : 0) < 0 || net_lock(&tr) < 0)
		goto unlock;
	find_shared_fd_tables(&tr);
	if (read_mappings(&tr) < 0 || (!o->pre_dump && dump_namespaces(&tr) < 0) || prepare_files(&tr) < 0)
		goto unlock;
	progress_start(&tr);
	for (int i = 0; i < tr.nr; i++) {
		if ((!tr.t[i].zombie && track_adopt(&tr.t[i], tr.parentfd) < 0) ||
		    dump_one(&tr.t[i]) < 0 || shmem_dump_collect(&tr.shmem, &tr.t[i]) < 0)
			goto unlock;
		if (!tr.t[i].zombie)
			progress_task_done();
	}
	if (collect_behind(&tr, false) < 0)
		goto unlock;
	/* after the fds: a link remap may have been made in a tmpfs */
	if (mnt_dump_tmpfs(tr.dirfd) < 0)
		goto unlock;
	progress_end();
	live_pre_stop(tr.live_pre);	/* each live process's is live.c's now */
	if (write_tree_images(&tr) < 0)
		goto unlock;
	/* post-dump may still say no: then the tree resumes as if the dump
	 * had failed (the images stay, but are not a dump it vouched for).
	 * A live snapshot runs it once its pages are saved (live_finish). */
	if (!o->live_snapshot && action_run(o, ACT_POST_DUMP, o->pid) < 0) {
		img_remove(tr.dirfd, IMG_INVENTORY, 0);
		goto unlock;
	}
	/* dump --lazy-pages: the images are complete; the tree stays frozen
	 * until the destination has its lazy memory. If that fails, the
	 * tree resumes here, and the images are no dump. */
	if (lazy_dump(o) && lazy_dump_serve(&tr) < 0) {
		img_remove(tr.dirfd, IMG_INVENTORY, 0);
		goto unlock;
	}
	/* A tree left running is unlocked before it resumes (as CRIU); a
	 * killed one keeps the lock for its restore to lift. */
	ret = running && net_unlock(&tr) < 0 ? -1 : 0;
	bool later = copies_later(&tr);
	released = true;
	ns_ids_drop();
	tree_release(&tr, !running);
	tr.stats.frozen_us = stats_now_us() - t_frozen + pre_frozen;	/* both freezes count */
	if (tr.sync_late)
		sync_images(&tr);
	if ((o->live_snapshot && live_finish(&tr) < 0) || (later && finish_later(&tr) < 0)) {
		ret = -1;
		goto out;
	}
	pr_info("%s finished successfully (%d processes)", o->pre_dump ? "Pre-dump" : "Dumping", tr.nr);
	write_stats(&tr);
	goto out;
unlock:
	/* the tree stays frozen through network-unlock, then resumes below */
	if (tr.nr)
		net_unlock(&tr);
out:
	ns_ids_drop();
	mnt_dump_tmpfs_drop();
	collect_behind(&tr, true);	/* before the tree is let go */
	progress_end();
	ps_dump_abort(&tr);
	img_note_written(NULL);
	ck_list_free(&tr.ck);
	if (ret < 0 && !released) {
		for (int i = 0; i < tr.nr; i++) {
			live_drop(&tr.t[i]);
			track_undo(&tr.t[i]);
			undo_injection(&tr.t[i]);
		}
		/* before the tree runs: its TCP connections leave repair mode */
		files_dump_failed(&tr.files);
		tree_release(&tr, false);
		if (tr.nr)	/* else nothing was seized: no tree to resume */
			pr_info("the tree of pid %d resumed unharmed after the failed dump", o->pid);
	}
	freezer_release(&tr.freezer);	/* the cgroup's threads outside the tree go on */
	for (int i = 0; i < tr.nr; i++) {
		live_drop(&tr.t[i]);
		dump_task_pages_drop(&tr.t[i]);
		ps_dump_task_drop(&tr.t[i]);
		track_free(&tr.t[i]);
		proc_vmas_free(&tr.t[i].vmas);
		for (size_t g = 0; g < tr.t[i].nr_guards; g++)
			free(tr.t[i].guards[g]);
		free(tr.t[i].guards);
		inj_free(&tr.t[i].inj);
		free(tr.t[i].ns_tid);
		if (tr.t[i].lazy)
			free(tr.t[i].lazy->r);
		free(tr.t[i].lazy);
	}
	free(tr.t);
	live_pre_free(tr.live_pre);
	sock_diag_set_netns(0);
	seccomp_dump_free(&tr.seccomp);
	cg_dump_free(&tr.cg);
	netlock_free(&tr.netlock);
	dump_free_copy_bufs(&tr.bufs);
	shmem_dump_free(&tr.shmem);
	files_free(&tr.files);
	if (tr.parentfd >= 0)
		close(tr.parentfd);
	close(tr.dirfd);
	return ret;
}
