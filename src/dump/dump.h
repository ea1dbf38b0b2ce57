/* Dump of a process tree: the state collected while every task is stopped. */
#ifndef STASIS_DUMP_H
#define STASIS_DUMP_H

#include "util/opts.h"
#include "dump/shmem.h"
#include "image/stats.h"
#include "image/checksum.h"
#include "infect/inject.h"
#include "proc/proc.h"
#include "files/files.h"
#include "task/cgroup.h"
#include "net/netlock.h"
#include "task/freezer.h"
#include "task/seccomp.h"
#include "ns/user.h"
#include "util/bgqueue.h"
#include "mm.pb-c.h"

/* Copy buffers, made once per dump: fresh ones for every process cost a
 * page fault and a page clearing per 4 KiB. */
struct copy_bufs {
	char *b[2];
};

struct live_job;
struct live_pre;
struct page_runs;

/* One process of the tree, with its threads. */
struct dump_ctx {
	const struct opts *o;
	int dirfd;
	struct file_table *files;	/* shared by the whole tree */
	struct copy_bufs *bufs;		/* likewise */
	struct bg_queue *bg;		/* likewise: small processes' copies (mem.c) */
	bool last;			/* the tree's last process dumped: its copy has
					 * nothing to overlap with, so it is not left
					 * to the worker (a handoff for nothing) */
	struct dump_stats *stats;	/* likewise */
	const struct dump_shmem *shmem;	/* likewise: shared memory open as files */
	uint32_t id;			/* 1-based: pages-ID.img, fdinfo-ID.img */
	uint32_t files_id;		/* its fd table's: the id of the first process
					 * of the tree sharing it (CLONE_FILES) */

	pid_t pid;			/* in our pid namespace */
	pid_t ns_pid;			/* as the tree sees itself: image names */
	pid_t ns_ppid, ns_pgid, ns_sid;
	int parent;			/* index in the tree, -1 for the root */

	struct inj inj;			/* its threads, the main one first, and the calls run in it */
	pid_t *ns_tid;			/* as inj.th */
	bool seized;			/* inj.th[] are ours to resume */

	bool zombie;
	int exit_code;			/* of a zombie: wait status */
	bool stopped;			/* in group stop (SIGSTOP & co.) */
	int stop_sig;

	/* Memory tracking (track_uffd.c): the tracker's fd in the task (-1: none),
	 * its inode and the number its last arming drew (0: unknown), the
	 * inode of one it replaced, ours, whether this dump made it, and
	 * what the parent dump holds. */
	int track_task_fd;
	uint64_t track_ino, track_armed, track_old_ino;
	/* its userfaultfds, as the census of its fds saw them (read_mappings;
	 * fds_seen false: not taken) */
	int *uffd_fds, nr_uffd_fds;
	bool fds_seen;
	int uffd;
	bool track_new;
	struct parent_cover *cover;
	/* Soft-dirty tracking (softdirty.c), where the kernel has no
	 * userfaultfd tracker: the process's start time, and the number
	 * this dump's clear of its bits drew (0: not cleared). */
	uint64_t sd_start, sd_armed;
	/* --live-snapshot (live.c): the pages still to copy once the tree
	 * runs again; NULL if none. */
	struct live_job *live;
	struct live_pre *live_pre;	/* the tree's, if it was protected before the freeze */
	struct cg_dump *cg;		/* the tree's cgroup sets (task/cgroup.h) */
	struct freezer *freezer;	/* --freeze-cgroup: threads seized frozen */
	struct seccomp_task *seccomp;	/* every thread's mode and filters, in dump_tree.seccomp */
	const struct userns_maps *userns;	/* the tree's user namespace: ids as seen inside */
	struct proc_stat stat;
	struct proc_status status;
	struct proc_vmas vmas;
	MmEntry mm;			/* filled by dump_task_mm_prepare */
	VmaEntry **guards;		/* guard regions, after mm's mappings in mm-PID.img */
	int ps_sk;			/* --page-server: the tree's connection, else -1 */
	int parentfd;			/* the tree's parent dump, -1: none */
	struct ck_list *ck;		/* the tree's list of checksums */
	size_t nr_guards;
	/* dump --lazy-pages (lazy_serve.h): the runs left in the frozen
	 * process for the destination to ask for; NULL: none */
	struct page_runs *lazy;
	/* a pre-dump's pages, copied once the tree runs (mem.c), or sent
	 * then to the page server (ps_send.c); NULL: none */
	struct later_pages *later;
	struct ps_later *ps_later;
};

struct dump_tree {
	const struct opts *o;
	int dirfd;
	struct dump_ctx *t;
	int nr, cap;
	int ns_level;			/* pid namespace level the tree's pids are read at */
	struct file_table files;
	struct copy_bufs bufs;
	struct bg_queue bg;		/* copies behind (mem.c) */
	struct dump_shmem shmem;	/* shared anonymous memory (shmem.c) */
	struct seccomp_chains seccomp;	/* every process's, for seccomp.img */
	struct cg_dump cg;		/* cgroup sets and directories, for cgroup.img */
	int parentfd;			/* --prev-images-dir, or -1 */
	bool sync_late;			/* a tree left running: the images reach the disk
					 * after it resumes, not while it is frozen */
	bool own_netns;			/* the root's network namespace is not ours */
	unsigned long ns_taken;		/* CLONE_NEW* kinds the tree takes (ns/ns.h) */
	struct userns_maps userns;	/* its user namespace's maps, if it takes one */
	struct netlock netlock;		/* from the freeze until the tree is let go */
	struct freezer freezer;		/* --freeze-cgroup (task/freezer.h) */
	struct dump_stats stats;	/* for stats-dump */
	int ps_sk;			/* --page-server (dump/ps_send.h), else -1 */
	struct ck_list ck;		/* what this dump wrote (image/checksum.h) */
	struct live_pre *live_pre;	/* --live-snapshot: protected before the freeze */
};

int stasis_dump(const struct opts *o);

/* dump/tree.c: seize the tree, all threads, rescanning until stable */
int tree_seize(struct dump_tree *tr, pid_t root);
/* Lets every task go (as found) or kills every one. */
void tree_release(struct dump_tree *tr, bool kill_tasks);

/* dump/task.c: registers, signals, creds, limits... -> core-TID.img */
int dump_task_core(struct dump_ctx *dc);
int dump_zombie_core(struct dump_ctx *dc);
/* dump/mem.c: mappings -> mm-PID.img, pages -> pagemap-PID.img + pages-ID.img */
int dump_task_mm_prepare(struct dump_ctx *dc);
int dump_task_mm(struct dump_ctx *dc);
/* A pre-dump's pages, kept by dump_task_mm while the tree was frozen:
 * copied now that it runs, the pages image finished and listed (-1,
 * reported: the pre-dump is not whole), or dropped. */
int dump_task_pages_later(struct dump_ctx *dc);
void dump_task_pages_drop(struct dump_ctx *dc);
void dump_free_copy_bufs(struct copy_bufs *b);
/* A small process's copy that dump_task_mm left to the tree's worker
 * (tr->bg), once run or cancelled: its pages image finished and listed,
 * or dropped. -1 (reported by the copy or here) if it is not whole. */
int dump_pages_behind_finish(struct bg_job *j);

#endif
