/* `stasis restore`: the order of the steps of a restore, top to bottom.
 *
 * The tree is forked with clone3(set_tid) so every process has its old pid
 * and parent (tree.c); each runs ordinary stasis code first (session, cwd,
 * fds, the files its mappings need) and waits. Then, as their tracer, we
 * replace each one's address space and state with injected syscalls,
 * clone its threads, and set registers last. All resume together at the
 * end. Any failure kills every process created: nothing is left behind. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sched.h>

#include "image/img.h"
#include "image/checksum.h"
#include "image/lazy.h"
#include "image/magic.h"
#include "image/pagemap.h"
#include "image/stats.h"
#include "image/vma.h"
#include "inventory.pb-c.h"
#include "restore/restore.h"
#include "restore/rst.h"
#include "task/guards.h"
#include "task/timens.h"
#include "task/posix_timers.h"
#include "task/seccomp.h"
#include "util/compat.h"
#include "image/task_state.h"
#include "ns/ns.h"
#include "proc/proc.h"
#include "restore/join_ns.h"
#include "util/action.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/pidfile.h"


/* ---- loading and checking the images ---- */

/* How the dump locked the network, so that the restore unlocks the same
 * way (as CRIU: --network-lock is the dump's choice; images without it
 * are from a CRIU that only had iptables). Here, a host-mode nft table
 * (iptables locks are per connection, lifted with the connections); the
 * lock of a network namespace the restore makes came back with its
 * firewall, and restore/tree.c's net_ready points the unlock at it. */
static int load_netlock(struct rst_tree *tr, const InventoryEntry *inv)
{
	struct netlock *nl = &tr->netlock;
	const char *id = inv->dump_criu_run_id;

	nl->method = inv->has_network_lock_method ? inv->network_lock_method : NETLOCK_IPTABLES;
	if (nl->method > NETLOCK_SKIP) {
		pr_err("inventory.img: network_lock_method %u is not one CRIU knows", nl->method);
		return -1;
	}
	if (!id)
		return 0;	/* an older CRIU's: its table, if any, is named by a pid */
	/* it goes into nft commands: a run id (a uuid), nothing else */
	if (!*id || strlen(id) >= sizeof(nl->run_id) || strspn(id, "0123456789abcdefABCDEF-") != strlen(id)) {
		pr_err("inventory.img: dump_criu_run_id '%.40s' is not a run id", id);
		return -1;
	}
	strcpy(nl->run_id, id);
	/* the table of a non-root client's dump is not one root lifts for it */
	nl->locked = nl->method == NETLOCK_NFTABLES && !tr->o->unprivileged;
	nl->unprivileged = tr->o->unprivileged;
	nl->gone_ok = true;
	return 0;
}

static int load_inventory(struct rst_tree *tr)
{
	InventoryEntry *inv;
	struct img img;
	if (img_open(tr->dirfd, &img, IMG_INVENTORY, 0) < 0) {
		if (errno == ENOENT)
			pr_err("%s holds no complete dump (no inventory.img)", tr->o->images_dir);
		return -1;
	}
	int ret = img_read_one(&img, &inventory_entry__descriptor, (ProtobufCMessage **)&inv);
	img_close(&img);
	if (ret < 0)
		return -1;
	if (inv->img_version != IMG_VERSION) {
		pr_err("inventory.img: image version %u is not supported (want %u)", inv->img_version,
		       IMG_VERSION);
		img_free(inv);
		return -1;
	}
	tr->root_cg_set = inv->has_root_cg_set ? inv->root_cg_set : 0;
	tr->inventory = inv;
	return load_netlock(tr, inv);
}

/* The namespaces the tree has of its own (ns/ns.h): made only for root. */
static int load_namespaces(struct rst_tree *tr)
{
	TaskKobjIdsEntry *ids;
	if (img_load_one(tr->dirfd, IMG_IDS, tr->t[0].pid, (ProtobufCMessage **)&ids) < 0)
		return -1;
	int ret = ns_restore_load(tr->dirfd, tr->inventory, tr->t[0].pid, ids, tr->o, &tr->ns);
	tr->files.mnt_root = ns_mnt_root;
	tr->files.mnt_ctx = &tr->ns;
	img_free(ids);
	for (int i = 0; i < tr->nr; i++)
		tr->t[i].in_userns = tr->ns.flags & CLONE_NEWUSER;
	/* the mount namespaces nested in the tree's, after the root's */
	for (int i = 1; i < tr->nr && ret == 0; i++)
		if (!tr->t[i].zombie)
			ret = ns_restore_load_mnt(tr->dirfd, tr->t[i].pid, tr->t[i].mnt_ns_id, tr->t[0].mnt_ns_id,
						  tr->o, &tr->ns);
	if (ret == 0 && tr->ns.flags && tr->o->unprivileged) {
		pr_err("the tree has a %s namespace of its own: only root may restore it",
		       ns_what(tr->ns.flags & -tr->ns.flags));
		return -1;
	}
	return ret;
}

/* pagemap-PID.img: its head (which pages-ID.img) and then the entries. */
static int load_pagemap(struct rst_ctx *rc, uint32_t *pages_id)
{
	PagemapHead *h;
	if (img_load_headed(rc->dirfd, IMG_PAGEMAP, rc->pid, (ProtobufCMessage **)&h, (void ***)&rc->pagemap,
			    &rc->nr_pagemap) < 0)
		return -1;
	*pages_id = h->pages_id;
	img_free(h);
	rst_note_pagemap_order(rc);
	return 0;
}

#define MAX_PID 4194304
#define MAX_FD (1u << 30)	/* fs.nr_open can't go much higher (INT_MAX) */

static int link_parent(struct rst_tree *tr, int i)
{
	struct rst_ctx *rc = &tr->t[i];
	rc->parent = -1;
	if (i == 0)
		return 0;
	for (int j = 0; j < i; j++)
		if (tr->t[j].pid == (pid_t)rc->pe->ppid) {
			if (tr->t[j].zombie) {
				pr_err("pstree.img: pid %d has a zombie parent %d", rc->pid, tr->t[j].pid);
				return -1;
			}
			rc->parent = j;
			return 0;
		}
	pr_err("pstree.img: parent %u of pid %d is not earlier in the tree", rc->pe->ppid, rc->pid);
	return -1;
}

/* CRIU's pstree.img gives a zombie (which has no thread left) one thread
 * whose id is 0 or whatever its memory held: its pid stands for it, and
 * load_cores checks that it is a zombie. */
static int threadless_zombie(struct rst_ctx *rc)
{
	if (rc->pe->n_threads == 0) {
		uint32_t *t = malloc(sizeof(*t));	/* freed with the entry */
		if (!t) {
			pr_err("out of memory loading pstree.img");
			return -1;
		}
		rc->pe->threads = t;
		rc->pe->n_threads = 1;
	}
	rc->pe->threads[0] = rc->pe->pid;
	rc->threadless = true;
	return 0;
}

static int load_pstree(struct rst_tree *tr)
{
	PstreeEntry **pe = NULL;
	int nr = 0;
	if (img_load_all(tr->dirfd, IMG_PSTREE, 0, (void ***)&pe, &nr) < 0)
		return -1;
	if (!nr) {
		pr_err("pstree.img is empty");
		return -1;
	}
	tr->t = calloc(nr, sizeof(*tr->t));
	if (!tr->t) {
		for (int i = 0; i < nr; i++)
			img_free(pe[i]);
		free(pe);
		return -1;
	}
	/* the entries are the tree's from here, freed by unload even if bad */
	tr->nr = nr;
	for (int i = 0; i < nr; i++) {
		tr->t[i].pe = pe[i];
		tr->t[i].pages_img = -1;
	}
	free(pe);
	for (int i = 0; i < nr; i++) {
		struct rst_ctx *rc = &tr->t[i];
		rc->o = tr->o;
		rc->dirfd = tr->dirfd;
		rc->files = &tr->files;
		rc->pid = rc->pe->pid;
		inj_init(&rc->inj, rc->pid, "restore");
		if ((rc->pe->n_threads == 0 || (rc->pe->n_threads == 1 && rc->pe->threads[0] != rc->pe->pid)) &&
		    threadless_zombie(rc) < 0)
			return -1;
		if (rc->pid < 1 || rc->pid > MAX_PID || rc->pe->n_threads < 1 || rc->pe->n_threads > 65536 ||
		    rc->pe->threads[0] != rc->pe->pid) {
			pr_err("pstree.img: entry %d (pid %u) is malformed", i, rc->pe->pid);
			return -1;
		}
		for (int j = 0; j < i; j++)
			if (tr->t[j].pid == rc->pid) {
				pr_err("pstree.img: pid %d appears twice", rc->pid);
				return -1;
			}
	}
	return 0;
}

static int check_core(struct rst_ctx *rc, const CoreEntry *c, bool main)
{
	if (c->mtype != CORE_ENTRY__MARCH__X86_64 || (main && !c->tc)) {
		pr_err("image core-%d.img is not a complete x86_64 task", rc->pid);
		return -1;
	}
	if (main && c->tc->task_state == TASK_DEAD) {
		rc->zombie = true;
		return 0;
	}
	if (!c->thread_info || !c->thread_core || !c->thread_info->gpregs) {
		pr_err("image core-%d.img lacks registers", rc->pid);
		return -1;
	}
	if (main && c->tc->task_state != TASK_ALIVE && c->tc->task_state != TASK_STOPPED) {
		pr_err("image core-%d.img: task state %u is not supported", rc->pid, c->tc->task_state);
		return -1;
	}
	return main ? ptimers_check(rc->pid, c->tc->timers) : 0;
}

static int load_cores(struct rst_ctx *rc)
{
	rc->core = calloc(rc->pe->n_threads, sizeof(CoreEntry *));
	if (!rc->core) {
		pr_err("pid %d: out of memory loading its cores", rc->pid);
		return -1;
	}
	for (size_t i = 0; i < rc->pe->n_threads; i++) {
		if (img_load_one(rc->dirfd, IMG_CORE, rc->pe->threads[i], (ProtobufCMessage **)&rc->core[i]) < 0 ||
		    check_core(rc, rc->core[i], i == 0) < 0)
			return -1;
		if (rc->threadless && !rc->zombie) {
			pr_err("pstree.img: pid %d has no thread, and is not a zombie", rc->pid);
			return -1;
		}
		if (rc->zombie)
			return 0;
	}
	return inj_alloc_threads(&rc->inj, rc->pe->n_threads);
}

static int load_task(struct rst_ctx *rc)
{
	char name[IMG_NAME_MAX];
	TaskKobjIdsEntry *ids;
	uint32_t files_id, pages_id = 0;

	if (load_cores(rc) < 0)
		return -1;
	if (rc->zombie)
		return 0;
	if (img_load_one(rc->dirfd, IMG_MM, rc->pid, (ProtobufCMessage **)&rc->mm) < 0 ||
	    guards_split(rc->pid, rc->mm, &rc->nr_guards) < 0)
		return -1;
	if (img_load_one(rc->dirfd, IMG_FS, rc->pid, (ProtobufCMessage **)&rc->fs) < 0)
		return -1;
	if (img_load_one(rc->dirfd, IMG_IDS, rc->pid, (ProtobufCMessage **)&ids) < 0)
		return -1;
	files_id = ids->files_id;
	rc->files_id = files_id;
	rc->time_ns_id = ids->has_time_ns_id ? ids->time_ns_id : 0;
	rc->mnt_ns_id = ids->has_mnt_ns_id ? ids->mnt_ns_id : 0;
	img_free(ids);
	if (img_load_all(rc->dirfd, IMG_FDINFO, files_id, (void ***)&rc->fdinfo, &rc->nr_fdinfo) < 0)
		return -1;
	/* service fds are planned above the highest fd: it must leave room */
	for (int i = 0; i < rc->nr_fdinfo; i++)
		if (rc->fdinfo[i]->fd >= MAX_FD) {
			img_name(name, sizeof(name), IMG_FDINFO, files_id);
			pr_err("image %s: fd %u is beyond any fd table", name, rc->fdinfo[i]->fd);
			return -1;
		}
	if (load_pagemap(rc, &pages_id) < 0)
		return -1;
	img_name(rc->pages_name, sizeof(rc->pages_name), IMG_PAGES, pages_id);
	rc->vma_fd = calloc(rc->mm->n_vmas + 1, sizeof(int));
	return rc->vma_fd ? 0 : -1;
}

/* seccomp.img, and every live process's plan checked against it */
static int load_seccomp(struct rst_tree *tr)
{
	if (seccomp_restore_load(tr->dirfd, &tr->seccomp) < 0)
		return -1;
	for (int i = 0; i < tr->nr; i++) {
		struct rst_ctx *rc = &tr->t[i];
		if (!rc->zombie && seccomp_restore_plan(tr->seccomp, rc->pid, rc->core, rc->pe->threads,
							rc->inj.nr_th, &rc->seccomp) < 0)
			return -1;
	}
	return 0;
}

static int load_images(struct rst_tree *tr)
{
	if (load_inventory(tr) < 0 || load_pstree(tr) < 0)
		return -1;
	for (int i = 0; i < tr->nr; i++)
		if (load_task(&tr->t[i]) < 0 || link_parent(tr, i) < 0)
			return -1;
	if (tr->t[0].zombie) {
		pr_err("the root of the tree (pid %d) is a zombie", tr->t[0].pid);
		return -1;
	}
	if (load_namespaces(tr) < 0 || files_load(&tr->files, tr->dirfd) < 0)
		return -1;
	for (int i = 0; i < tr->nr; i++)
		if (files_note_task(&tr->files, tr->t[i].pid, tr->t[i].fdinfo, tr->t[i].nr_fdinfo) < 0)
			return -1;
	return load_seccomp(tr) < 0 || rst_shmem_load(tr) < 0 ||
	       cg_rst_load(&tr->cg, tr->o, tr->dirfd, tr->root_cg_set) < 0 ? -1 : 0;
}

/* ---- pids ---- */

/* A just-killed original may linger as a zombie until its parent reaps it
 * (pid 1 of a container can be slow): wait a little for that, but a live
 * process holding the pid is an immediate error. */
static int wait_pid_free(pid_t pid)
{
	char state;
	for (int ms = 0; (state = proc_state(pid)); ms += 10) {
		if (state != 'Z' && state != 'X') {
			log_set_errno(EEXIST);
			pr_err("pid %d is busy: a running process holds it, so it can't be restored", pid);
			return -1;
		}
		if (ms >= PID_FREE_WAIT_MS) {
			log_set_errno(EEXIST);
			pr_err("pid %d is busy: held by a zombie its parent does not reap", pid);
			return -1;
		}
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return 0;
}

/* The checker of the pages images (ck_bg.h) holds a pid number the tree
 * must take back: one of its pids, groups, sessions or dead processes'
 * /proc entries. Rare (the kernel hands out numbers in turn): it is then
 * waited for first. */
static bool checker_in_the_way(const struct rst_tree *tr)
{
	const pid_t *dead;
	if (tr->new_pidns || !tr->ck.pid)
		return false;
	int n = files_dead_pids(&tr->files, &dead);
	for (int i = 0; i < tr->nr; i++) {
		const PstreeEntry *pe = tr->t[i].pe;
		if (ck_bg_holds(&tr->ck, pe->pid) || ck_bg_holds(&tr->ck, pe->pgid) || ck_bg_holds(&tr->ck, pe->sid))
			return true;
		for (size_t t = 0; t < pe->n_threads; t++)
			if (ck_bg_holds(&tr->ck, pe->threads[t]))
				return true;
	}
	for (int i = 0; i < n; i++)
		if (ck_bg_holds(&tr->ck, dead[i]))
			return true;
	return false;
}

static int check_pids_free(struct rst_tree *tr)
{
	if (tr->new_pidns)
		return 0;
	for (int i = 0; i < tr->nr; i++)
		for (size_t t = 0; t < tr->t[i].pe->n_threads; t++)
			if (wait_pid_free(tr->t[i].pe->threads[t]) < 0)
				return -1;
	return 0;
}

/* The parent dumps whose pages the processes fill themselves (parent.c),
 * opened before the pool is planned: they count in what it needs. */
static int open_parent_chains(struct rst_tree *tr)
{
	for (int i = 0; i < tr->nr; i++) {
		int n = rst_parent_open(&tr->t[i]);
		if (n < 0)
			return -1;
		tr->nr_parent_fds += n;
	}
	return 0;
}

/* The pool sits above every task's service fds and every fd stasis has;
 * it holds the files the tree shares (pool_plan.c), the others are
 * opened by their processes below their service fds. */
static int plan_pool(struct rst_tree *tr)
{
	int *fds, nr, base = 0;
	struct rlimit rl;

	for (int i = 0; i < tr->nr; i++)
		if (!tr->t[i].zombie && tr->t[i].service_end > base)
			base = tr->t[i].service_end;
	if (proc_list_fds(getpid(), &fds, &nr) < 0)
		return -1;
	if (nr && fds[nr - 1] >= base)
		base = fds[nr - 1] + 1;
	free(fds);
	if (rst_pool_plan(tr) < 0)
		return -1;
	tr->pool_base = tr->files.pool_base = base;
	tr->files.keep_base = base + tr->files.nr_pool;
	/* Limits come back with each task's image; until then, room for all
	 * (the pool, then the pages images, the shared memory objects and
	 * what the kinds keep: files made together, pool_plan.c). A non-root
	 * client's processes have no more than the client's. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	rlim_t room = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : RLIM_INFINITY;
	if (tr->o->unprivileged && tr->client_lim[RLIMIT_NOFILE].rlim_max < room)
		room = tr->client_lim[RLIMIT_NOFILE].rlim_max;
	/* 8: tree.c's own_proc_open (2), the sync and init sockets (4),
	 * our time namespace (1), lazy.c (1) */
	int need = tr->files.keep_base + tr->nr + tr->nr_parent_fds + tr->shmem.nr + tr->ns.mnt.nr_ns + 8 +
		   tr->files_kept;
	tr->ns.mnt.fd_floor = tr->files.keep_base;
	if ((rlim_t)need > room) {
		pr_err("the tree needs fds up to %d, above the open files limit %lu", need,
		       (unsigned long)room);
		return -1;
	}
	return 0;
}

/* Each process's pages image, opened here and kept above the pool: the
 * processes inherit it and move their own into place (tree.c). The
 * images are stasis's to read; a non-root client's processes are the
 * client from their start (unpriv.c) and may not be able to. */
static int open_pages_images(struct rst_tree *tr)
{
	for (int i = 0; i < tr->nr; i++) {
		struct rst_ctx *rc = &tr->t[i];
		if (rc->zombie)
			continue;
		int fd = img_open_regular(tr->dirfd, rc->pages_name);
		if (fd < 0) {
			pr_perror("can't open %s", rc->pages_name);
			return -1;
		}
		rc->pages_img = files_keep_fd(&tr->files, fd, rc->pages_name);
		if (rc->pages_img < 0 || rst_parent_keep(rc, &tr->files) < 0)
			return -1;
	}
	return 0;
}

static int max_image_fd(const struct rst_ctx *rc)
{
	int max = 2;
	for (int i = 0; i < rc->nr_fdinfo; i++)
		if ((int)rc->fdinfo[i]->fd > max)
			max = rc->fdinfo[i]->fd;
	return max;
}

/* Processes sharing an fd table: each with its parent (CLONE_FILES), the
 * only way such a table is made. One shared otherwise (the process that
 * made it exited, or gave it by CLONE_PARENT) can't be made again. */
static int plan_fd_tables(struct rst_tree *tr)
{
	for (int i = 0; i < tr->nr; i++) {
		struct rst_ctx *rc = &tr->t[i];
		int p = rc->parent;
		rc->fdt_root = i;
		rc->shares_fdt = !rc->zombie && p >= 0 && p < i && !tr->t[p].zombie &&
				 tr->t[p].files_id == rc->files_id;
		if (rc->shares_fdt) {
			rc->fdt_root = tr->t[p].fdt_root;
			tr->t[rc->fdt_root].fdt_left++;
			continue;
		}
		tr->t[i].fdt_left++;
		for (int j = 0; j < i && !rc->zombie; j++)
			if (!tr->t[j].zombie && tr->t[j].files_id == rc->files_id) {
				pr_err("pid %d shares the fd table of pid %d, which is not its parent; stasis "
				       "can restore an fd table shared only along CLONE_FILES from parent to "
				       "child", rc->pid, tr->t[j].pid);
				return -1;
			}
	}
	return 0;
}

/* A member of a shared fd table has its service fds above those of the
 * members before it (fdt_base: the table's first). */
static void plan_service_fds(struct rst_tree *tr, struct rst_ctx *rc)
{
	rc->service_base = max_image_fd(rc) + 1;
	if (rc->service_base < 10)
		rc->service_base = 10;
	for (int j = 0; rc->shares_fdt && j < tr->nr; j++)
		if (&tr->t[j] != rc && tr->t[j].fdt_root == rc->fdt_root && tr->t[j].service_end > rc->service_base)
			rc->service_base = tr->t[j].service_end;
	rc->fdt_base = rc->shares_fdt ? tr->t[rc->fdt_root].service_base : rc->service_base;
	int next = rc->service_base;
	rc->log_fd = next;
	next += 2;
	rc->sync_fd = next++;
	rc->pages_fd = next++;
	rc->exe_fd = next++;
	rc->oom_fd = next++;
	rc->loginuid_fd = next++;
	rst_mem_plan_fds(rc, &next);
	rc->service_end = next;
}

int rst_load_images(struct rst_tree *tr)
{
	if (load_images(tr) < 0 || (tr->o->unprivileged && rst_check_unprivileged(tr) < 0))
		return -1;
	if (plan_fd_tables(tr) < 0 || timens_restore_load(tr->dirfd, tr->t[0].time_ns_id, &tr->timens) < 0)
		return -1;
	for (int i = 0; i < tr->nr; i++)
		if (!tr->t[i].zombie)
			plan_service_fds(tr, &tr->t[i]);
	pr_info("loaded the images of %d processes, root pid %d, %d files", tr->nr, tr->t[0].pid, tr->files.nr);
	return 0;
}

/* ---- rebuilding each process ---- */

static int unregister_own_rseq(struct rst_ctx *rc)
{
	struct rseq_config cfg;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, rc->real_pid, sizeof(cfg), &cfg) < 0) {
		pr_perror("pid %d: can't read rseq registration", rc->pid);
		return -1;
	}
	if (!cfg.rseq_abi_pointer)
		return 0;
	struct inj_call c = INJ(SYS_rseq, cfg.rseq_abi_pointer, cfg.rseq_abi_size, RSEQ_FLAG_UNREGISTER, cfg.signature);
	return inj_must(&rc->inj, "rseq unregistration", NULL, c);
}

/* The first service fd to close: all from there up, or, in a shared fd
 * table whose other members are not rebuilt yet, only its own. */
static void service_range(struct rst_tree *tr, struct rst_ctx *rc, unsigned *from, unsigned *to)
{
	*from = rc->service_base;
	*to = ~0u;
	if (!rc->shares_fdt && __atomic_load_n(&rc->fdt_left, __ATOMIC_ACQUIRE) <= 1)
		return;
	if (__atomic_sub_fetch(&tr->t[rc->fdt_root].fdt_left, 1, __ATOMIC_ACQ_REL) == 0)
		*from = rc->fdt_base;	/* the last: the pool and the others' too */
	else
		*to = rc->service_end - 1;
}

/* For the debug log: how many of the pool's fds the process still holds
 * once it is made (pool_drop.c: none, unless children share its table). */
static void note_pool_left(const struct rst_tree *tr, const struct rst_ctx *rc)
{
	int *fds, nr, left = 0;
	if (!log_wants(LOG_DEBUG) || rc->shares_fdt || proc_list_fds(rc->real_pid, &fds, &nr) < 0)
		return;
	for (int i = 0; i < nr; i++)
		left += fds[i] >= tr->pool_base && fds[i] < tr->files.keep_base;
	free(fds);
	pr_debug("pid %d: %d pool fds left in its table when rebuilt", rc->pid, left);
}

static int drop_service(struct rst_tree *tr, struct rst_ctx *rc)
{
	unsigned from, to;
	note_pool_left(tr, rc);
	/* service fds and the scratch area go; nothing of stasis is left;
	 * POSIX locks after the last close (files_after_service_close) */
	inj_use(&rc->inj, 0);
	service_range(tr, rc, &from, &to);
	if (inj_must(&rc->inj, "close of service fds", NULL, INJ(SYS_close_range, from, to)) < 0 ||
	    files_after_service_close(rc->files, &rc->inj, rc->fdinfo, rc->nr_fdinfo) < 0 ||
	    inj_scratch_unmap(&rc->inj) < 0)
		return -1;
	return 0;
}

uint32_t rst_cg_set(const struct rst_ctx *rc, int idx)
{
	const CoreEntry *c = rc->core[idx];
	if (c->thread_core && c->thread_core->has_cg_set)
		return c->thread_core->cg_set;
	return c->tc && c->tc->has_cg_set ? c->tc->cg_set : 0;
}

/* Threads in cgroups of their own (v1, or v2 threaded ones); the others
 * are in the process's, as cloned. */
static int move_threads(struct rst_tree *tr, struct rst_ctx *rc)
{
	uint32_t own = rst_cg_set(rc, 0);
	for (int i = 1; i < rc->inj.nr_th; i++) {
		uint32_t set = rst_cg_set(rc, i);
		if (set && set != own && cg_rst_move(&tr->cg, rc->inj.th[i].pid, set, true) < 0)
			return -1;
	}
	return 0;
}

/* Every process into its cgroups once all exist, before any of them has
 * its memory or threads; then the cgroups' properties. */
static int move_tasks(struct rst_tree *tr)
{
	cg_rst_ns_close(&tr->cg);	/* the root made its namespace with them */
	for (int i = 0; i < tr->nr; i++)
		if (!tr->t[i].zombie && cg_rst_move(&tr->cg, tr->t[i].real_pid, rst_cg_set(&tr->t[i], 0), false) < 0)
			return -1;
	return cg_rst_props(&tr->cg);
}

/* Its memory: the first part of its rebuild. */
static int rebuild_memory(struct rst_tree *tr, struct rst_ctx *rc)
{
	inj_use(&rc->inj, 0);
	if (infect_seize(&rc->inj.th[0], rc->real_pid) < 0) {
		if (errno == ESRCH)
			pr_err("pid %d: the new process is gone before it could be rebuilt", rc->pid);
		return -1;
	}
	/* A restore that dies before letting the tree go must not leave it
	 * half made: the kernel kills what we trace when we die (its threads,
	 * cloned later, inherit the option), and the processes not rebuilt
	 * yet die with their parent (their parent-death signal). */
	if (infect_set_options(&rc->inj.th[0], rc->inj.th[0].options | PTRACE_O_EXITKILL) < 0)
		return -1;
	if (inj_start_plain(&rc->inj) < 0)
		return -1;
	if (rst_helpers_reap(tr, rc) < 0)
		return -1;
	pr_debug("pid %d: seized as %d, rebuilding", rc->pid, rc->real_pid);
	if (unregister_own_rseq(rc) < 0 || rst_mem_rebuild(rc) < 0 || rst_lazy_task(tr, rc) < 0)
		return -1;
	progress_task_done();
	return 0;
}

/* The rest, once its memory is in place (or, lazily, with the daemon). */
static int rebuild_rest(struct rst_tree *tr, struct rst_ctx *rc)
{
	if (rst_mm_fields(rc) < 0 || files_before_creds(rc->files, &rc->inj, rc->fdinfo, rc->nr_fdinfo) < 0)
		return -1;
	pr_debug("pid %d: memory rebuilt: %zu mappings, %llu KiB of pages read", rc->pid,
		 rc->mm ? rc->mm->n_vmas : 0, (unsigned long long)(rc->pages_read >> 10));
	/* process state first: new threads inherit its name and limits */
	if (rst_process_state(rc) < 0 || rst_threads_create(rc) < 0 || move_threads(tr, rc) < 0 ||
	    ptimers_create(&rc->inj, rc->core[0]->tc->timers) < 0)
		return -1;
	pr_debug("pid %d: process state set, %d thread%s", rc->pid, rc->inj.nr_th, rc->inj.nr_th == 1 ? "" : "s");
	for (int i = 0; i < rc->inj.nr_th; i++)
		if (rst_thread_state(rc, i) < 0)
			return -1;
	if (ptimers_arm(&rc->inj, rc->core[0]->tc->timers) < 0 || drop_service(tr, rc) < 0 ||
	    rst_client_dumpable(rc) < 0 || rst_mem_drop_vdso(rc) < 0)
		return -1;
	for (int i = 0; i < rc->inj.nr_th; i++)
		if (rst_thread_regs(rc, i) < 0)
			return -1;
	pr_debug("pid %d: rebuilt (%d fds), registers set", rc->pid, rc->nr_fdinfo);
	fault_point("task-rebuilt");
	return 0;
}

/* Every process runs from here; a stopped one goes back to its stop. */
static int resume_task(struct rst_ctx *rc)
{
	const TaskCoreEntry *tc = rc->core[0]->tc;
	int stop = 0;
	if (tc->task_state == TASK_STOPPED)
		stop = tc->has_stop_signo && tc->stop_signo ? (int)tc->stop_signo : SIGSTOP;
	/* queued before we let go, so a stopped task never runs */
	if (stop)
		kill(rc->real_pid, stop);
	return inj_let_go(&rc->inj);
}

static int wait_restored(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			pr_perror("can't wait for restored pid %d", pid);
			return 1;
		}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static void unload_task(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_fdinfo; i++)
		img_free(rc->fdinfo[i]);
	for (int i = 0; i < rc->nr_pagemap; i++)
		img_free(rc->pagemap[i]);
	for (size_t i = 0; rc->core && rc->pe && i < rc->pe->n_threads; i++)
		if (rc->core[i])
			img_free(rc->core[i]);
	free(rc->core);
	seccomp_plan_free(rc->seccomp);
	inj_free(&rc->inj);
	free(rc->fdinfo);
	free(rc->fdi_file);
	free(rc->pagemap);
	free(rc->vma_fd);
	if (rc->pages_img >= 0)
		close(rc->pages_img);
	rst_parent_free(rc);
	if (rc->pe) img_free(rc->pe);
	if (rc->mm) {
		guards_put_back(rc->mm, rc->nr_guards);
		img_free(rc->mm);
	}
	if (rc->fs) img_free(rc->fs);
}

void rst_unload_images(struct rst_tree *tr)
{
	rst_premap_free(tr);
	for (int i = 0; i < tr->nr; i++)
		unload_task(&tr->t[i]);
	free(tr->t);
	seccomp_restore_unload(tr->seccomp);
	tr->seccomp = NULL;
	rst_shmem_unload(tr);
	cg_rst_free(&tr->cg);
	files_unload(&tr->files);
	ns_restore_free(&tr->ns);
	if (tr->inventory)
		img_free(tr->inventory);
	tr->inventory = NULL;
	if (tr->timens)
		img_free(tr->timens);
	tr->timens = NULL;
}

/* The processes are rebuilt by up to REBUILDERS threads, each taking
 * the next process none has taken and staying its ptracer (ptrace
 * belongs to the thread that attached). Most of a rebuild is waiting
 * for the process to run an injected syscall: more threads than cores
 * keep the cores busy (1000 processes on two loaded cores, three runs
 * each: two threads rebuilt them in 1.9-2.9 s, four in 1.7-1.9). All
 * wait at a barrier, so that the tree resumes only when all of it is
 * ready, or, if any part failed, not at all (killed by the tracer thread
 * before it lets go, so no half-built task ever runs). */
#define REBUILDERS 4

struct rebuilders {
	struct rst_tree *tr;
	int n;			/* threads */
	atomic_int next;	/* the next process to take */
	atomic_int failed;
	pthread_barrier_t bar;
	pthread_mutex_t gate;	/* held until n is known */
};

struct rebuilder {
	struct rebuilders *all;
	int id;
};

static int restore_stages_before_resume(struct rst_tree *tr)
{
	pid_t root = tr->t[0].real_pid;
	fault_point("tree-rebuilt");
	/* No network-unlock stage: as CRIU, that is for a network namespace
	 * the restore made, and stasis restores into the one it runs in.
	 * The dump's lock goes after post-restore, before pre-resume (CRIU's
	 * order); one that is not there (the dump left the tree running, or
	 * the images were made elsewhere) is fine. */
	if (action_run(tr->o, ACT_POST_RESTORE, root) < 0)
		return -1;
	/* a network namespace of the tree's own: as CRIU, its script first */
	if ((tr->ns.flags & CLONE_NEWNET) && action_run(tr->o, ACT_NET_UNLOCK, root) < 0)
		return -1;
	if (tr->ns.joined_own_net)	/* stasis is in it (join_ns.c) */
		netlock_joined_netns(&tr->netlock);
	netlock_unlock(&tr->netlock);
	/* then the connections leave repair mode, their probes let through */
	for (int i = 0; i < tr->nr; i++) {
		struct rst_ctx *rc = &tr->t[i];
		if (!rc->zombie && files_after_unlock(&tr->files, rc->fdinfo, rc->nr_fdinfo, rc->real_pid) < 0)
			return -1;
	}
	if (action_run(tr->o, ACT_PRE_RESUME, root) < 0)
		return -1;
	/* timers start last: the restore's time does not count against them */
	return files_before_resume(&tr->files);
}

/* The next process for thread id to rebuild (its tracer from then on);
 * NULL when all are taken, or the rebuild failed. */
static struct rst_ctx *take_next(struct rebuilders *all, int id)
{
	struct rst_tree *tr = all->tr;
	for (;;) {
		int i = atomic_fetch_add(&all->next, 1);
		if (i >= tr->nr || all->failed)
			return NULL;
		if (tr->t[i].zombie)
			continue;
		tr->t[i].rebuilder = id;
		return &tr->t[i];
	}
}

/* Its processes (and, for thread 0, those none took) let go, or killed
 * if the rebuild failed. */
static void let_go_or_kill(struct rebuilders *all, int id)
{
	struct rst_tree *tr = all->tr;
	for (int i = 0; i < tr->nr; i++) {
		struct rst_ctx *rc = &tr->t[i];
		if (rc->zombie || rc->real_pid <= 0 || (rc->rebuilder != id && (id || rc->rebuilder >= 0)))
			continue;
		if (all->failed) {
			kill(rc->real_pid, SIGKILL);
			rst_task_reap_traced(rc);
		} else if (resume_task(rc) < 0)
			all->failed = 1;
	}
}

static void *rebuild_share(void *arg)
{
	struct rebuilder *w = arg;
	struct rebuilders *all = w->all;
	struct rst_tree *tr = all->tr;
	struct rst_ctx *rc;

	pthread_mutex_lock(&all->gate);
	pthread_mutex_unlock(&all->gate);
	/* A lazy restore hands every userfaultfd to the daemon before any
	 * call that may fault on lazy memory (rseq reads its area): CRIU's
	 * daemon serves nothing until it has them all. */
	while (tr->lazy && (rc = take_next(all, w->id)))
		if (rebuild_memory(tr, rc) < 0)
			all->failed = 1;
	if (tr->lazy) {
		pthread_barrier_wait(&all->bar);
		for (int i = 0; i < tr->nr && !all->failed; i++)
			if (tr->t[i].rebuilder == w->id && rebuild_rest(tr, &tr->t[i]) < 0)
				all->failed = 1;
	} else {
		while ((rc = take_next(all, w->id)))
			if (rebuild_memory(tr, rc) < 0 || rebuild_rest(tr, rc) < 0)
				all->failed = 1;
	}
	pthread_barrier_wait(&all->bar);
	/* the line is gone before any script or the tree itself prints */
	if (w->id == 0)
		progress_end();
	/* The whole tree is rebuilt and still stopped: it runs only if the
	 * pages it was made from are whole (ck_bg.h); the last word before
	 * it runs is the user's (a failing script kills it instead). */
	if (w->id == 0 && !all->failed && (ck_bg_wait(&tr->ck) < 0 || restore_stages_before_resume(tr) < 0))
		all->failed = 1;
	pthread_barrier_wait(&all->bar);
	let_go_or_kill(all, w->id);
	return NULL;
}

/* As many threads as there are processes to rebuild, up to REBUILDERS:
 * those that could be started. */
static int rebuild_tree(struct rst_tree *tr)
{
	struct rebuilders all = { .tr = tr, .gate = PTHREAD_MUTEX_INITIALIZER };
	struct rebuilder w[REBUILDERS];
	pthread_t th[REBUILDERS];
	int want = 0;

	for (int i = 0; i < tr->nr; i++) {
		tr->t[i].rebuilder = -1;
		want += !tr->t[i].zombie;
	}
	want = want < 1 ? 1 : want > REBUILDERS ? REBUILDERS : want;
	pthread_mutex_lock(&all.gate);
	for (all.n = 1; all.n < want; all.n++) {
		w[all.n] = (struct rebuilder){ &all, all.n };
		if (pthread_create(&th[all.n], NULL, rebuild_share, &w[all.n]) != 0)
			break;
	}
	pthread_barrier_init(&all.bar, NULL, all.n);
	pthread_mutex_unlock(&all.gate);
	w[0] = (struct rebuilder){ &all, 0 };
	rebuild_share(&w[0]);
	for (int i = 1; i < all.n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&all.bar);
	return all.failed ? -1 : 0;
}

static int restore_tree(struct rst_tree *tr)
{
	uint64_t t0 = stats_now_us();
	if (rst_helpers_plan(tr) < 0 || rst_tree_fork(tr) < 0 || rst_helpers_kill(tr) < 0)
		return -1;
	tr->forking_us = stats_now_us() - t0;
	fault_point("tree-forked");
	if (move_tasks(tr) < 0)
		return -1;
	/* As CRIU: the namespace stages only when the restore made one (the
	 * pid namespace of --new-pidns), once every process exists. */
	if ((tr->new_pidns || (tr->ns.flags & CLONE_NEWNET)) && !tr->ns_scripts_run &&
	    (action_run(tr->o, ACT_SETUP_NS, tr->t[0].real_pid) < 0 ||
			      action_run(tr->o, ACT_POST_SETUP_NS, tr->t[0].real_pid) < 0))
		return -1;
	return rebuild_tree(tr);
}

/* The progress line (util/progress.h): every page the images have for
 * the processes, but those a lazy restore leaves to its daemon. */
static void progress_start(const struct rst_tree *tr)
{
	uint64_t bytes = 0;
	unsigned n = 0;
	for (int i = 0; i < tr->nr; i++) {
		const struct rst_ctx *rc = &tr->t[i];
		if (rc->zombie)
			continue;
		n++;
		for (int k = 0; k < rc->nr_pagemap; k++)
			if (!(tr->o->lazy_pages && rc->mm && run_is_lazy(rc->mm, rc->pagemap[k])))
				bytes += pagemap_run_pages(rc->pagemap[k]) * PAGE_SZ;
	}
	progress_begin("restore", n, bytes);
}

int stasis_restore(const struct opts *o)
{
	struct rst_tree tr = { .o = o, .sync = { -1, -1 }, .new_pidns = o->new_pidns };
	int ret = 1;
	bool reaper = false;

	struct restore_stats stats = { 0 };
	uint64_t t_start = stats_now_us();

	if (proc_check_ours() < 0 || join_ns_enter(o) < 0)
		return 1;
	tr.files.o = o;
	tr.files.netlock = &tr.netlock;
	tr.dirfd = img_dir_open(o->images_dir, o->images_dirfd);
	if (tr.dirfd < 0)
		return 1;
	/* A damaged image is refused before anything is made from it; the
	 * pages files are checked meanwhile (image/ck_bg.h), and a damaged
	 * one is refused before anything made from them runs. A lazy
	 * restore leaves them to its daemon. */
	if (!o->skip_checksums && (ck_verify_chain(tr.dirfd, o->images_dir, CK_NOT_PAGES) < 0 ||
				   (!o->lazy_pages && ck_bg_start(&tr.ck, tr.dirfd, o->images_dir) < 0)))
		goto out;
	if (rst_load_images(&tr) < 0)
		goto out;
	tr.files.root_pid = tr.t[0].pid;
	if (action_run(o, ACT_PRE_RESTORE, 0) < 0)
		goto out;
	/* A tree dumped as its own pid namespace (root pid 1) needs a new one. */
	if (tr.t[0].pid == 1)
		tr.new_pidns = true;
	if ((checker_in_the_way(&tr) && ck_bg_wait(&tr.ck) < 0) || check_pids_free(&tr) < 0)
		goto out;
	/* The cgroup hierarchies are opened before the pool is planned: fds
	 * opened after would take the lowest free numbers, pool slots where
	 * there is no gap below it, and a slot found open counts as its file
	 * opened (a podman container got a cgroup root as its stdout). */
	if (cg_rst_prepare(&tr.cg) < 0 || cg_rst_ns_prepare(&tr.cg, rst_cg_set(&tr.t[0], 0)) < 0 ||
	    open_parent_chains(&tr) < 0 || plan_pool(&tr) < 0 || open_pages_images(&tr) < 0 || rst_shmem_make(&tr) < 0 ||
	    rst_lazy_start(&tr) < 0) {
		cg_rst_undo(&tr.cg);
		goto out;
	}
	progress_start(&tr);
	int built = restore_tree(&tr);
	progress_end();	/* if the rebuild did not get there */
	if (built < 0 || rst_tree_done(&tr) < 0) {
		rst_tree_kill(&tr);
		ns_restore_undo(&tr.ns);
		cg_rst_undo(&tr.cg);
		goto out;
	}
	pid_t root = tr.t[0].real_pid;
	/* a daemon never told the tree runs would not fill the rest */
	if (rst_lazy_finish(&tr) < 0) {
		rst_tree_kill(&tr);
		goto out;
	}
	rst_lazy_free(&tr);
	pr_info("Restore finished successfully: %d processes, root pid %d", tr.nr, root);
	tr.files.real_root_pid = root;
	files_restored(&tr.files);
	stats.restore_us = stats_now_us() - t_start;
	stats.forking_us = tr.forking_us;
	for (int i = 0; i < tr.nr; i++)
		stats.pages_restored += tr.t[i].pages_read / PAGE_SZ;
	if (stats_write_restore(tr.dirfd, &stats) < 0)
		pr_warn("the tree is restored, but stats-restore could not be written");
	if (o->display_stats)
		stats_print_restore(stdout, &stats);
	/* The tree runs: a failure here can't be undone, only reported. */
	if (action_run(o, ACT_POST_RESUME, root) < 0)
		pr_warn("the restored tree (root pid %d) runs, but a post-resume action failed", root);
	if (o->pidfile && write_pidfile(o->pidfile, root) < 0) {
		rst_tree_kill(&tr);
		goto out;
	}
	if (o->restored_pid)
		*o->restored_pid = root;
	close(tr.sync[0]);
	close(tr.sync[1]);
	tr.sync[0] = tr.sync[1] = -1;
	/* Stasis as pid 1 of the namespace it restored into (as criu-ns runs
	 * it): leaving would kill the tree, so it stays as its reaper. */
	reaper = getpid() == 1;
	ret = o->detach || reaper ? 0 : wait_restored(tr.first);
out:
	/* a failed restore still says whether a pages file was damaged (it
	 * may be why), once what it made is gone */
	if (tr.ck.pid || tr.ck.res)
		ck_bg_wait(&tr.ck);
	if (ret)
		netlock_say_kept(&tr.netlock);
	netlock_free(&tr.netlock);
	if (tr.sync[0] >= 0) {
		close(tr.sync[0]);
		close(tr.sync[1]);
	}
	free(tr.helpers);
	free(tr.pool_opener);
	free(tr.pool_idle);
	rst_lazy_free(&tr);
	rst_unload_images(&tr);
	close(tr.dirfd);
	if (reaper) {
		pr_info("pid 1 of the tree's namespace: reaping until every process of it is gone");
		ret = rst_reap_namespace(tr.first);
	}
	return ret;
}
