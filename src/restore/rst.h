/* Restore of a process tree: what is loaded from the images and shared by
 * the steps of restore.c (order), tree.c (forking), mem.c and task.c. */
#ifndef STASIS_RST_H
#define STASIS_RST_H

#include <sys/resource.h>

#include "util/opts.h"
#include "files/files.h"
#include "image/ck_bg.h"
#include "net/netlock.h"
#include "infect/inject.h"
#include "ns/ns.h"
#include "task/cgroup.h"
#include "task/seccomp.h"
#include "inventory.pb-c.h"
#include "core.pb-c.h"
#include "mm.pb-c.h"
#include "timens.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"
#include "seccomp.pb-c.h"

/* How long restore waits for a pid still held by a dying process. */
#define PID_FREE_WAIT_MS 5000

/* Scratch area mapped in the new task for syscall arguments (inject.h):
 * room for the batch code, the largest seccomp filter (32 KiB) and a
 * preadv of IOV_BATCH pieces (16 KiB), each freed after its call. */
#define RST_SCRATCH_SIZE (64u << 10)

/* Shared anonymous memory objects of the tree (shmem.c). */
struct rst_shmem {
	struct rst_shmem_obj *o;
	int nr;
};

/* One process of the tree. */
struct rst_ctx {
	const struct opts *o;
	int dirfd;
	pid_t pid;		/* its pid, as the images and the task see it */
	pid_t real_pid;		/* the same task in our pid namespace */
	int parent;		/* index in the tree, -1 for the root */
	int rebuilder;		/* the thread that traces it (restore.c), -1: none yet */
	bool zombie;
	bool thp_off_lazy;	/* huge pages off while a lazy restore writes
				 * its memory (mem.c), until rst_mm_fields */
	bool threadless;	/* CRIU lists a zombie with no thread: its pid stands for one */
	PstreeEntry *pe;
	CoreEntry **core;	/* per thread, the main one first */
	MmEntry *mm;
	size_t nr_guards;
	uint32_t time_ns_id;	/* of ids-PID.img, 0: none (task/timens.h) */	/* guard regions: mm->vmas[mm->n_vmas...] (task/guards.h) */
	uint32_t mnt_ns_id;	/* of ids-PID.img, 0: none (ns/ns.h) */
	FsEntry *fs;
	FdinfoEntry **fdinfo;
	int nr_fdinfo;
	int *fdi_file;		/* pool_plan.c: the files.img index of each fdinfo
				 * (-1: missing), looked up once for all (a lookup
				 * misses the cache ~17 times: 100,000 fds, 0.1 s) */
	PagemapEntry **pagemap;
	int nr_pagemap;
	struct rst_files *files;	/* files.img, shared by the tree */
	const struct rst_shmem *shmem;	/* the tree's shared memory objects */
	char pages_name[32];

	/* Service fds of the new task, numbered from service_base: what the
	 * injected syscalls use, closed before it runs. */
	int service_base;
	int log_fd;		/* first of two: log file, stderr */
	int pages_fd, exe_fd, sync_fd;
	/* its own /proc/self/oom_score_adj and loginuid, opened for writing
	 * before it drops root (task/own_proc.h); in the child, first where
	 * they were opened (-1: none) */
	int oom_fd, loginuid_fd;
	int oom_open, loginuid_open;
	int pages_img;		/* pages image opened by stasis (inherited), or -1 */
	int *vma_fd;		/* per VMA index, -1 if not file-backed */
	int service_end;	/* one past the last service fd */
	int pool_top;		/* pool_plan.c: the slots of its ancestors' and its
				 * own are below it, its descendants' from it up */
	bool *premapped;	/* premap.c: per VMA, made by the process itself
				 * (shared by the tree), or NULL */
	int vmas_ordered;	/* mem.c: its mappings listed by address, apart:
				 * 0 not known yet, 1 yes, -1 no */
	bool pagemap_ordered;	/* its pagemap's runs by address, apart
				 * (rst_note_pagemap_order, at its load) */

	/* Its fd table (files_id), maybe shared with its parent (CLONE_FILES):
	 * then the first process of the table (fdt_root, else its own index)
	 * opens and installs the fds of all, each member's service fds at its
	 * own numbers, and the last of them rebuilt closes what is left from
	 * fdt_base (the lowest service fd of the table) up (fdt_left, kept
	 * by the fdt_root: members not rebuilt yet). */
	uint32_t files_id;
	bool shares_fdt;
	int fdt_root;
	int fdt_base;
	int fdt_left;

	struct inj inj;		/* its threads (the main one first), the calls run in it */
	struct parent_level *parent_pages;	/* parent.c: the parent dumps' pages */
	struct seccomp_plan *seccomp;	/* what its threads get back (task/seccomp.c) */
	bool client_nnp;	/* unpriv.c: it must end with no_new_privs */
	bool in_userns;		/* in the tree's user namespace: its creds are set whole,
				 * its groups before it joined it (ns/user.h) */
	bool born_inside;	/* made in it (its pid namespace is the tree's) */
	int session_by;		/* tree.c: the leader of its session, a sibling, which
				 * forks it there (CLONE_PARENT); -1: not so made */
	uint64_t pages_read;	/* mem.c: bytes of its pages images read (stats) */
};

/* A stand-in for a process group leader that had exited: it takes the
 * group's number so the members can join, then is killed and reaped by
 * its parent before the tree runs. One for a session whose leader exited
 * makes the session again (setsid) and forks the creator's children of
 * that session into it, with CLONE_PARENT: they are the creator's. */
struct rst_helper {
	pid_t pid;		/* the group's number, in the tree's namespace */
	int creator;		/* task that forks it; -1: stasis (or its init) */
	pid_t real_pid;
	bool dead_pid;		/* holds a dead process's pid for its /proc entry
				 * (no group of its own), not a group */
	bool session;		/* leads session pid (and group pid) */
};

struct rst_tree {
	const struct opts *o;
	int dirfd;
	TimensEntry *timens;		/* clocks of the time namespace to make (task/timens.h), or NULL */
	struct rst_ctx *t;
	int nr;
	struct rst_files files;
	struct rst_shmem shmem;
	int sync[2];		/* tasks report ready (with their creds) here */
	struct ck_bg ck;	/* the pages images' checksums, checked meanwhile */
	bool new_pidns;
	pid_t first;		/* our child: the root, or the namespace's init */
	int init_ctl[2];	/* tells the init the restore is done */
	bool has_init;
	bool ns_scripts_run;	/* setup-namespaces & co. ran already (restore/tree.c's net_ready) */
	int pool_base;		/* see tree.c: one fd per file in the pool (pool_plan.c) */
	int *pool_opener;	/* the process opening file i into the pool, -1
				 * for its own process's file (pool_plan.c) */
	int files_kept;		/* the most fds a process keeps above the pool
				 * while it opens its files (pool_plan.c) */
	bool *pool_idle;	/* file i is no fd table's (in flight, a peer
				 * alone): the root opens it, its users' after_install
				 * may want its slot (pool_drop.c) */
	struct rst_helper *helpers;
	int nr_helpers;
	int nr_parent_fds;	/* parent dumps' pages images opened (parent.c) */
	SeccompEntry *seccomp;	/* seccomp.img (task/seccomp.c), or NULL */
	/* restore for a non-root client (unpriv.c): the credentials every
	 * process takes, and the client's limits */
	const CredsEntry *creds;
	struct rlimit client_lim[RLIM_NLIMITS];
	bool client_nnp;	/* the client has no_new_privs: so must they */
	uint64_t forking_us;	/* making every process (stats) */
	long long client_oom_adj;	/* its oom_score_adj and loginuid */
	long long client_loginuid;	/* (-1: the kernel has none) */
	InventoryEntry *inventory;
	struct ns_restore ns;	/* the tree's own namespaces (ns/ns.h) */
	uint32_t root_cg_set;	/* inventory.img: the dumper's own cgroup set */
	struct cg_rst cg;	/* cgroup.img (task/cgroup.h) */
	void *premap_table;	/* premap.c: the processes' premapped flags */
	size_t premap_len;
	struct netlock netlock;	/* the dump's lock, lifted right before the tree resumes */
	struct rst_lazy *lazy;	/* lazy.c: --lazy-pages, or NULL */
};

/* restore/restore.c: loads and checks every image of the dump in
 * tr->dirfd (the limits of an unprivileged client too) and plans each
 * task's service fds, touching no process: what fuzz/fuzz_image.c drives.
 * 0 or -1 (reported); unload frees what load made, even after a failure. */
int rst_load_images(struct rst_tree *tr);
void rst_unload_images(struct rst_tree *tr);

/* restore/tree.c */
int rst_tree_fork(struct rst_tree *tr);		/* creates every task, returns when all are ready */
void rst_tree_kill(struct rst_tree *tr);	/* kills what was created */
void rst_task_reap_traced(struct rst_ctx *rc);	/* by the thread that traces it */
int rst_tree_done(struct rst_tree *tr);	/* the init of --new-pidns may outlive us */
/* As the init of a pid namespace: reaps until no process of it is left
 * (an init that exits kills them all), then the root's exit status (128 +
 * signal if killed). */
int rst_reap_namespace(pid_t root);
int rst_helpers_plan(struct rst_tree *tr);
int rst_helpers_kill(struct rst_tree *tr);	/* after all are ready: they die as zombies */
int rst_helpers_reap(struct rst_tree *tr, struct rst_ctx *rc);	/* in their creator */

/* restore/mem.c */
/* Service fd numbers are planned before the fork so that both sides know
 * them; the child then opens the files into them. */
void rst_mem_plan_fds(struct rst_ctx *rc, int *next_fd);
int rst_mem_open_fds(struct rst_ctx *rc);			/* child side */
int rst_mem_open_file(struct rst_ctx *rc, const VmaEntry *e);	/* the file of a mapping */
int rst_mem_rebuild(struct rst_ctx *rc);			/* ptracer side */
int rst_mm_fields(struct rst_ctx *rc);
/* A task that had unmapped its vdso loses the one it has of ours: the
 * last call injected (it runs from that vdso, and nothing runs there after). */
int rst_mem_drop_vdso(struct rst_ctx *rc);
/* restore/shmem.c: shared anonymous memory. load: every object the
 * tree's mappings name, with its size (in rst_load_images, touching no
 * process); make: each made and filled by stasis, its fd kept for the
 * tree to inherit (before the fork); fd: that fd (-1: no such object). */
int rst_shmem_load(struct rst_tree *tr);
void rst_shmem_unload(struct rst_tree *tr);
int rst_shmem_make(struct rst_tree *tr);
int rst_shmem_fd(const struct rst_shmem *s, uint64_t shmid);
/* restore/premap.c: private anonymous memory made by each process before
 * it forks, so that its children share what they had in common with it
 * (copy-on-write). plan: the table they fill, shared (before the fork);
 * premap: in the new process, before it forks its children; premapped:
 * is this VMA in place already (the rebuild leaves it as it is). */
int rst_premap_plan(struct rst_tree *tr);
void rst_premap_free(struct rst_tree *tr);
int rst_premap(struct rst_tree *tr, struct rst_ctx *rc);
bool rst_premapped(const struct rst_ctx *rc, size_t vma);
/* The protection premap makes a mapping with (read-write to take its
 * pages, or the image's: rst_vma_made_as_is). */
int rst_premap_prot(const struct rst_ctx *rc, const VmaEntry *e);
/* restore/mem.c: does the process's pagemap hold a run in [start, end)?
 * (By bisection where rst_note_pagemap_order found its runs in order.) */
bool rst_has_pages_in(const struct rst_ctx *rc, uint64_t start, uint64_t end);
void rst_note_pagemap_order(struct rst_ctx *rc);
/* restore/mem.c: a private anonymous mapping without write access and
 * without pages: made with its own protection, never writable. */
bool rst_vma_made_as_is(const struct rst_ctx *rc, const VmaEntry *e);
/* The index of the mapping of mm holding addr, by bisection over mappings
 * listed by address; -1 if none. */
int rst_vma_at(const MmEntry *mm, uint64_t addr);
/* restore/mem.c: whether the image lists its mappings by address, none
 * overlapping (as a kernel does) */
bool rst_vmas_ordered(struct rst_ctx *rc);
/* restore/aio.c: the io_setup() rings, once the memory is in place */
int rst_aio_rings(struct rst_ctx *rc);
/* restore/task.c */
int rst_process_state(struct rst_ctx *rc);	/* process-wide, main thread */
int rst_threads_create(struct rst_ctx *rc);
int rst_thread_state(struct rst_ctx *rc, int idx);
int rst_thread_regs(struct rst_ctx *rc, int idx);
/* The cgroup set of thread idx (core.img), 0: none. */
uint32_t rst_cg_set(const struct rst_ctx *rc, int idx);

/* restore/lazy.c: --lazy-pages. start: connects to the lazy-pages
 * daemon (before the fork); run: is this pagemap run left to the daemon
 * (mem.c does not read it); task: the process's userfaultfd made,
 * its lazy mappings registered and handed to the daemon, right after its
 * memory is rebuilt; finish: the tree runs (the daemon is told; a guard
 * kills the tree if the daemon dies before every page is in); free: our
 * side. All no-ops without --lazy-pages. */
int rst_lazy_start(struct rst_tree *tr);
bool rst_lazy_run(const struct rst_ctx *rc, const PagemapEntry *pe);
int rst_lazy_task(struct rst_tree *tr, struct rst_ctx *rc);
int rst_lazy_finish(struct rst_tree *tr);
void rst_lazy_free(struct rst_tree *tr);

/* restore/parent.c: pages left in the parent dump (PE_PARENT).
 * open: in stasis, before the pool is planned, the chain of parent dumps
 * the process's pagemap needs (not for a non-root client's restore: the
 * parent link could lead anywhere): the number of pages images it opened,
 * or -1 (said); keep: those moved above the pool, for the new processes
 * to inherit. walk: fn for each piece of [addr, addr + len), where its
 * bytes are (depth 1 is the parent), -1 (said) if some page is in no
 * parent. fd: the pages image of the parent dump at depth, or -1.
 * pages: the rebuild writes [addr, addr + len) into the task. */
typedef int (*parent_piece_fn)(void *arg, int depth, int fd, uint64_t off, uint64_t addr, uint64_t len);
int rst_parent_open(struct rst_ctx *rc);
int rst_parent_keep(struct rst_ctx *rc, const struct rst_files *rf);
int rst_parent_walk(const struct rst_ctx *rc, uint64_t addr, uint64_t len, parent_piece_fn fn, void *arg);
int rst_parent_fd(const struct rst_ctx *rc, int depth);
int rst_parent_pages(struct rst_ctx *rc, uint64_t addr, uint64_t len);
void rst_parent_free(struct rst_ctx *rc);

/* restore/unpriv.c: a restore for a non-root RPC client. The images are
 * checked against the client (at load); each new process becomes the
 * client first thing, keeping CAP_CHECKPOINT_RESTORE permitted only if
 * lend (it forks with set_tid or is rebuilt); it is raised around the
 * set_tid clones (rst_client_lend in the process, rst_client_lend_inject
 * for threads and PR_SET_MM_MAP) and dropped for good by
 * rst_client_final, which checks each thread's credentials against its
 * image. All are no-ops for a root restore. */
int rst_check_unprivileged(struct rst_tree *tr);
int rst_client_become(const struct rst_tree *tr, bool lend);
int rst_client_lend(const struct opts *o, bool on);	/* o NULL: stasis's own, no-op */
int rst_client_lend_inject(struct rst_ctx *rc, int idx, bool on);
int rst_client_final(struct rst_ctx *rc, int idx);
int rst_client_dumpable(struct rst_ctx *rc);	/* after the service fds are closed */

/* --inherit-fd: the fd of ours that stands for file fe, or -1 (tree.c). */
int rst_inherited_fd(const struct opts *o, const struct rst_files *rf, const FileEntry *fe);
/* Which files go to the pool, which each process opens (pool_plan.c):
 * tr->files' slot and nr_pool. 0 or -1 (reported). */
int rst_pool_plan(struct rst_tree *tr);
/* In process idx of the tree (pool_drop.c): closes the pool's slots that
 * none of what is left of its subtree needs at stage st: at its start,
 * those of files none of its subtree uses; once its children with tables
 * of their own are forked, those of theirs alone; once its own fds are
 * installed, all but what children forked later into its table (and
 * theirs) still want. 0 or -1 (reported). */
bool rst_in_subtree(const struct rst_tree *tr, int a, int j);	/* j is a or under it */
/* The files.img index of fd i of rc (its fdi_file once planned). */
static inline int rst_fd_file(const struct rst_ctx *rc, int i)
{
	return rc->fdi_file ? rc->fdi_file[i] : files_index(rc->files, rc->fdinfo[i]->id);
}
enum pool_stage { POOL_START, POOL_FORKED, POOL_INSTALLED };
int rst_pool_drop(const struct rst_tree *tr, int idx, enum pool_stage st);

#endif
