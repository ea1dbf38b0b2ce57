/* `stasis dump`: the order of the steps of a dump, top to bottom.
 *
 * The task is seized and stays stopped until every image is written; any
 * failure puts its registers and mask back and lets it run, as if nothing
 * happened. inventory.img is written last, through a rename, so that a dump
 * cut short at any moment leaves a directory restore refuses. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dump/dump.h"
#include "image/img.h"
#include "image/magic.h"
#include "inventory.pb-c.h"
#include "pstree.pb-c.h"
#include "util/log.h"

/* Ids of the task's kernel objects; one task shares nothing, so fixed. */
enum { ID_VM = 1, ID_FILES = 1, ID_FS = 1, ID_SIGHAND = 1 };

int dump_inject(struct dump_ctx *dc, long *ret, long nr, long a1, long a2, long a3, long a4)
{
	return infect_syscall(&dc->v, ret, nr, a1, a2, a3, a4, 0, 0);
}

static int check_single_threaded(pid_t pid)
{
	pid_t *tids;
	int nr;
	if (proc_list_threads(pid, &tids, &nr) < 0)
		return -1;
	free(tids);
	if (nr != 1) {
		pr_err("pid %d has %d threads; multi-threaded processes are not supported yet", pid, nr);
		return -1;
	}
	return 0;
}

static int find_vdso(struct dump_ctx *dc)
{
	for (int i = 0; i < dc->vmas.nr; i++)
		if (dc->vmas.v[i].special == VMA_VDSO)
			return infect_set_vdso(&dc->v, dc->vmas.v[i].start);
	pr_err("pid %d has no vdso; stasis needs it to run syscalls in the task", dc->pid);
	return -1;
}

static int scratch_map(struct dump_ctx *dc)
{
	long addr;
	if (dump_inject(dc, &addr, SYS_mmap, 0, SCRATCH_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS) < 0)
		return -1;
	if (addr < 0 && addr > -4096) {
		errno = -addr;
		pr_perror("pid %d: can't map a scratch page in the task", dc->pid);
		return -1;
	}
	dc->scratch = addr;
	return 0;
}

static int scratch_unmap(struct dump_ctx *dc)
{
	long ret;
	if (!dc->scratch)
		return 0;
	if (dump_inject(dc, &ret, SYS_munmap, dc->scratch, SCRATCH_SIZE, 0, 0) < 0 || ret) {
		pr_err("pid %d: can't unmap the scratch page", dc->pid);
		return -1;
	}
	dc->scratch = 0;
	return 0;
}

/* What needs syscalls run inside the task; leaves no trace in it. */
static int collect_by_injection(struct dump_ctx *dc)
{
	if (find_vdso(dc) < 0 || infect_block_signals(&dc->v) < 0 || scratch_map(dc) < 0)
		return -1;
	if (dump_task_core(dc) < 0 || dump_task_mm_prepare(dc) < 0)
		return -1;
	if (scratch_unmap(dc) < 0)
		return -1;
	return infect_park(&dc->v);
}

static int dump_fs(struct dump_ctx *dc)
{
	char name[64], link[64], path[PATH_MAX];
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
		if (reg_file_add(&dc->files, path, O_RDONLY | O_DIRECTORY, 0, ids[i]) < 0)
			return -1;
	}
	fs.has_umask = 1;
	fs.umask = dc->status.umask;
	snprintf(name, sizeof(name), "fs-%d.img", dc->pid);
	return img_store_one(dc->dirfd, name, FS_MAGIC, &fs.base);
}

static void fill_ids(TaskKobjIdsEntry *ids)
{
	ids->vm_id = ID_VM;
	ids->files_id = ID_FILES;
	ids->fs_id = ID_FS;
	ids->sighand_id = ID_SIGHAND;
}

static int dump_ids_and_tree(struct dump_ctx *dc)
{
	char name[64];
	TaskKobjIdsEntry ids = TASK_KOBJ_IDS_ENTRY__INIT;
	PstreeEntry pe = PSTREE_ENTRY__INIT;
	uint32_t tid = dc->pid;

	fill_ids(&ids);
	snprintf(name, sizeof(name), "ids-%d.img", dc->pid);
	if (img_store_one(dc->dirfd, name, IDS_MAGIC, &ids.base) < 0)
		return -1;
	pe.pid = dc->pid;
	pe.ppid = dc->stat.ppid;
	pe.pgid = dc->stat.pgid;
	pe.sid = dc->stat.sid;
	pe.n_threads = 1;
	pe.threads = &tid;
	return img_store_one(dc->dirfd, "pstree.img", PSTREE_MAGIC, &pe.base);
}

/* The commit point of a dump. */
static int write_inventory(struct dump_ctx *dc)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	TaskKobjIdsEntry ids = TASK_KOBJ_IDS_ENTRY__INIT;

	fill_ids(&ids);
	inv.img_version = IMG_VERSION;
	inv.has_fdinfo_per_id = 1;
	inv.fdinfo_per_id = true;
	inv.root_ids = &ids;
	inv.has_lsmtype = 1;
	inv.lsmtype = 0;	/* no LSM */
	if (img_store_one(dc->dirfd, "inventory.img.tmp", INVENTORY_MAGIC, &inv.base) < 0)
		return -1;
	if (syncfs(dc->dirfd) < 0)
		pr_warn("can't sync the images directory: %m");
	if (renameat(dc->dirfd, "inventory.img.tmp", dc->dirfd, "inventory.img") < 0) {
		pr_perror("can't commit inventory.img");
		return -1;
	}
	return 0;
}

static int write_images(struct dump_ctx *dc)
{
	if (dump_task_mm(dc) < 0)
		return -1;
	if (files_dump_fds(&dc->files, dc->o, dc->pid, dc->dirfd, ID_FILES) < 0)
		return -1;
	if (dump_fs(dc) < 0 || files_write(&dc->files, dc->dirfd) < 0)
		return -1;
	return dump_ids_and_tree(dc);
}

static void kill_dumped(struct dump_ctx *dc)
{
	int status;
	kill(dc->pid, SIGKILL);
	/* Reap the trace link so the real parent sees the death at once. */
	while (waitpid(dc->pid, &status, __WALL) < 0 && errno == EINTR)
		;
}

/* Leaves the task as found: scratch page gone, registers and mask back. */
static void resume_on_error(struct dump_ctx *dc)
{
	if (!dc->seized)
		return;
	if (dc->scratch)
		scratch_unmap(dc);
	if (infect_cure(&dc->v) == 0)
		pr_info("pid %d resumed unharmed after the failed dump", dc->pid);
}

int stasis_dump(const struct opts *o)
{
	struct dump_ctx dc = { .o = o, .pid = o->pid, .dirfd = -1 };
	int ret = -1;

	if (o->pid <= 0) {
		pr_err("dump needs the pid of the tree's root: -t PID");
		return -1;
	}
	dc.dirfd = img_dir_open(o->images_dir, true);
	if (dc.dirfd < 0)
		return -1;
	/* From here until the new inventory lands, the directory is not a dump. */
	if (unlinkat(dc.dirfd, "inventory.img", 0) < 0 && errno != ENOENT) {
		pr_perror("can't remove the old inventory.img of %s", o->images_dir);
		goto out;
	}
	if (kill(o->pid, 0) < 0 && errno == ESRCH) {
		pr_err("pid %d: no such process", o->pid);
		goto out;
	}
	if (check_single_threaded(o->pid) < 0 || infect_seize(&dc.v, o->pid) < 0)
		goto out;
	dc.seized = true;
	if (check_single_threaded(o->pid) < 0 || proc_parse_stat(o->pid, &dc.stat) < 0 ||
	    proc_parse_status(o->pid, &dc.status) < 0 || proc_parse_smaps(o->pid, &dc.vmas) < 0)
		goto out;
	if (collect_by_injection(&dc) < 0 || write_images(&dc) < 0 || write_inventory(&dc) < 0)
		goto out;
	ret = 0;
	if (o->leave_running) {
		ret = infect_cure(&dc.v);
	} else {
		kill_dumped(&dc);
	}
	dc.seized = false;
	pr_info("Dumping finished successfully");
out:
	if (ret < 0)
		resume_on_error(&dc);
	proc_vmas_free(&dc.vmas);
	files_free(&dc.files);
	close(dc.dirfd);
	return ret;
}
