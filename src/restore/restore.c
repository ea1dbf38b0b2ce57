/* `stasis restore`: the order of the steps of a restore, top to bottom.
 *
 * The new task is forked with clone3(set_tid) so it has its old pid. As a
 * child it runs ordinary stasis code first (session, cwd, fds, the files
 * its mappings need) and stops for us. Then, as its tracer, we replace its
 * address space and state with injected syscalls and set its registers
 * last. Any failure kills it: a failed restore leaves nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sched.h>

#include "image/img.h"
#include "image/magic.h"
#include "image/vma.h"
#include "inventory.pb-c.h"
#include "restore/restore.h"
#include "restore/rst.h"
#include "util/compat.h"
#include "util/log.h"

#define PID_FREE_WAIT_MS 5000

int rst_inject(struct rst_ctx *rc, const char *what, long *ret, long nr, long a1, long a2,
	       long a3, long a4, long a5, long a6)
{
	if (infect_syscall(&rc->v, ret, nr, a1, a2, a3, a4, a5, a6) < 0)
		return -1;
	if (*ret < 0 && *ret > -4096) {
		errno = -*ret;
		pr_perror("pid %d: can't restore %s", rc->pid, what);
		return -1;
	}
	return 0;
}

int rst_scratch_write(struct rst_ctx *rc, size_t off, const void *buf, size_t len)
{
	if (off + len > RST_SCRATCH_SIZE) {
		pr_err("pid %d: %zu bytes of syscall arguments don't fit the scratch area", rc->pid, len);
		return -1;
	}
	return len ? infect_write(&rc->v, rc->scratch + off, buf, len) : 0;
}

/* ---- loading and checking the images ---- */

static int load_inventory(struct rst_ctx *rc)
{
	InventoryEntry *inv;
	struct img img;
	if (img_open(rc->dirfd, &img, "inventory.img", INVENTORY_MAGIC, true) < 0) {
		if (errno == ENOENT)
			pr_err("%s holds no complete dump (no inventory.img)", rc->o->images_dir);
		return -1;
	}
	int ret = img_read_one(&img, &inventory_entry__descriptor, (ProtobufCMessage **)&inv);
	img_close(&img);
	if (ret < 0)
		return -1;
	if (inv->img_version != IMG_VERSION) {
		pr_err("inventory.img: image version %u is not supported (want %u)", inv->img_version,
		       IMG_VERSION);
		ret = -1;
	}
	img_free(inv);
	return ret;
}

static int load_pstree(struct rst_ctx *rc)
{
	struct img img;
	ProtobufCMessage *extra;
	if (img_open(rc->dirfd, &img, "pstree.img", PSTREE_MAGIC, false) < 0)
		return -1;
	int ret = img_read_one(&img, &pstree_entry__descriptor, (ProtobufCMessage **)&rc->pe);
	if (!ret && img_read(&img, &pstree_entry__descriptor, &extra) != 0) {
		pr_err("pstree.img holds several processes; restoring process trees is not supported yet");
		ret = -1;
	}
	img_close(&img);
	if (ret < 0)
		return -1;
	if (rc->pe->pid < 1 || rc->pe->pid > 4194304) {
		pr_err("pstree.img: bad pid %u", rc->pe->pid);
		return -1;
	}
	if (rc->pe->n_threads != 1 || rc->pe->threads[0] != rc->pe->pid) {
		pr_err("pid %u has %zu threads; multi-threaded processes are not supported yet",
		       rc->pe->pid, rc->pe->n_threads);
		return -1;
	}
	rc->pid = rc->pe->pid;
	return 0;
}

static int load_all_entries(struct rst_ctx *rc, const char *name, uint32_t magic,
			    const ProtobufCMessageDescriptor *desc, void ***out, int *nr, bool has_head)
{
	struct img img;
	ProtobufCMessage *m;
	int cap = 0, ret;

	if (img_open(rc->dirfd, &img, name, magic, false) < 0)
		return -1;
	if (has_head) {	/* pagemap: its head first */
		PagemapHead *h;
		if (img_read_one(&img, &pagemap_head__descriptor, (ProtobufCMessage **)&h) < 0) {
			img_close(&img);
			return -1;
		}
		img_free(h);
	}
	while ((ret = img_read(&img, desc, &m)) == 1) {
		if (*nr == cap) {
			cap = cap ? cap * 2 : 64;
			void **n = realloc(*out, cap * sizeof(void *));
			if (!n) {
				img_free(m);
				ret = -1;
				break;
			}
			*out = n;
		}
		(*out)[(*nr)++] = m;
	}
	img_close(&img);
	return ret;
}

static int check_core(struct rst_ctx *rc)
{
	CoreEntry *c = rc->core;
	if (c->mtype != CORE_ENTRY__MARCH__X86_64 || !c->thread_info || !c->tc || !c->thread_core) {
		pr_err("image core-%d.img is not a complete x86_64 task", rc->pid);
		return -1;
	}
	if (c->tc->task_state != 1) {
		pr_err("image core-%d.img: task state %u (only live tasks are supported yet)", rc->pid,
		       c->tc->task_state);
		return -1;
	}
	return 0;
}

static int load_images(struct rst_ctx *rc)
{
	char name[64];
	TaskKobjIdsEntry *ids;

	if (load_inventory(rc) < 0 || load_pstree(rc) < 0)
		return -1;
	snprintf(name, sizeof(name), "core-%d.img", rc->pid);
	if (img_load_one(rc->dirfd, name, CORE_MAGIC, &core_entry__descriptor, (ProtobufCMessage **)&rc->core) < 0 ||
	    check_core(rc) < 0)
		return -1;
	snprintf(name, sizeof(name), "mm-%d.img", rc->pid);
	if (img_load_one(rc->dirfd, name, MM_MAGIC, &mm_entry__descriptor, (ProtobufCMessage **)&rc->mm) < 0)
		return -1;
	snprintf(name, sizeof(name), "fs-%d.img", rc->pid);
	if (img_load_one(rc->dirfd, name, FS_MAGIC, &fs_entry__descriptor, (ProtobufCMessage **)&rc->fs) < 0)
		return -1;
	snprintf(name, sizeof(name), "ids-%d.img", rc->pid);
	if (img_load_one(rc->dirfd, name, IDS_MAGIC, &task_kobj_ids_entry__descriptor, (ProtobufCMessage **)&ids) < 0)
		return -1;
	snprintf(name, sizeof(name), "fdinfo-%u.img", ids->files_id);
	img_free(ids);
	if (load_all_entries(rc, name, FDINFO_MAGIC, &fdinfo_entry__descriptor, (void ***)&rc->fdinfo,
			     &rc->nr_fdinfo, false) < 0)
		return -1;
	snprintf(name, sizeof(name), "pagemap-%d.img", rc->pid);
	if (load_all_entries(rc, name, PAGEMAP_MAGIC, &pagemap_entry__descriptor, (void ***)&rc->pagemap,
			     &rc->nr_pagemap, true) < 0)
		return -1;
	if (files_load(&rc->files, rc->dirfd) < 0)
		return -1;
	rc->vma_fd = calloc(rc->mm->n_vmas + 1, sizeof(int));
	return rc->vma_fd ? 0 : -1;
}

/* ---- the pid ---- */

static bool pid_taken(pid_t pid, char *state)
{
	char buf[512];
	*state = 0;
	if (proc_read_file(pid, "stat", buf, sizeof(buf)) <= 0)
		return false;
	char *p = strrchr(buf, ')');
	if (p && p[1])
		*state = p[2];
	return true;
}

/* A just-killed original may linger as a zombie until its parent reaps it
 * (pid 1 of a container can be slow): wait a little for that, but a live
 * process holding the pid is an immediate error. */
static int wait_pid_free(pid_t pid)
{
	char state;
	for (int ms = 0; pid_taken(pid, &state); ms += 10) {
		if (state != 'Z' && state != 'X') {
			pr_err("pid %d is busy: a running process holds it, so it can't be restored", pid);
			return -1;
		}
		if (ms >= PID_FREE_WAIT_MS) {
			pr_err("pid %d is busy: held by a zombie its parent does not reap", pid);
			return -1;
		}
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return 0;
}

static long clone3_set_tid(pid_t pid)
{
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)&pid;
	args.set_tid_size = 1;
	return syscall(SYS_clone3, &args, sizeof(args));
}

/* A pid number stays allocated while it is still some live process's
 * group or session id (children of the dumped task often are); those
 * children may be about to exit, so retry for a while. */
static pid_t clone_with_pid(pid_t pid)
{
	for (int ms = 0;; ms += 10) {
		long ret = clone3_set_tid(pid);
		if (ret >= 0)
			return ret;
		if (errno != EEXIST) {
			pr_perror("can't create a process with pid %d", pid);
			return -1;
		}
		if (ms >= PID_FREE_WAIT_MS) {
			pr_err("pid %d is busy: it is still the process group or session id of "
			       "other processes", pid);
			return -1;
		}
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
}

/* ---- child side ---- */

static int max_image_fd(const struct rst_ctx *rc)
{
	int max = 2;
	for (int i = 0; i < rc->nr_fdinfo; i++)
		if ((int)rc->fdinfo[i]->fd > max)
			max = rc->fdinfo[i]->fd;
	return max;
}

static int install_fds(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_fdinfo; i++) {
		const FdinfoEntry *fdi = rc->fdinfo[i];
		int fd = -1;
		if (fdi->fd >= (uint32_t)rc->service_base) {
			pr_err("image fdinfo: fd %u out of range", fdi->fd);
			return -1;
		}
		/* An earlier fd of the same file: share its description. */
		for (int j = 0; j < i && fd < 0; j++)
			if (rc->fdinfo[j]->id == fdi->id)
				fd = dup(rc->fdinfo[j]->fd);
		if (fd < 0) {
			const FileEntry *fe = files_find(&rc->files, fdi->id);
			const struct fd_kind *kind = fe ? fd_kind_of(fe->type) : NULL;
			if (!kind) {
				pr_err("image fdinfo: fd %u refers to %s file %u", fdi->fd,
				       fe ? "an unsupported" : "a missing", fdi->id);
				return -1;
			}
			fd = kind->open(&rc->files, fe, fdi->flags);
		}
		if (fd < 0)
			return -1;
		if (fd != (int)fdi->fd) {
			if (dup2(fd, fdi->fd) < 0) {
				pr_perror("can't install fd %u", fdi->fd);
				return -1;
			}
			close(fd);
		}
		if (fcntl(fdi->fd, F_SETFD, fdi->flags & FD_CLOEXEC) < 0)
			return -1;
	}
	return 0;
}

/* Closes every fd below the service range that the image doesn't have. */
static void close_foreign_fds(const struct rst_ctx *rc)
{
	for (int fd = 0; fd < rc->service_base; fd++) {
		bool keep = false;
		for (int i = 0; i < rc->nr_fdinfo && !keep; i++)
			keep = rc->fdinfo[i]->fd == (uint32_t)fd;
		if (!keep)
			close(fd);
	}
}

static int open_service(const char *what, int fd, int at)
{
	if (fd < 0)
		return -1;
	if (dup2(fd, at) < 0) {
		pr_perror("can't place the %s fd", what);
		return -1;
	}
	close(fd);
	return at;
}

static void plan_service_fds(struct rst_ctx *rc)
{
	int next = rc->service_base;
	rc->log_fd = next;
	next += 2;
	rc->tty_fd = next++;
	rc->pages_fd = next++;
	rc->exe_fd = next++;
	rst_mem_plan_fds(rc, &next);
}

static int child_service_fds(struct rst_ctx *rc)
{
	int next = rc->log_fd;
	/* Our own logging must survive the fds being replaced. */
	if (log_move_fds(&next) < 0)
		return -1;
	if (rc->o->shell_job) {
		int t = isatty(0) ? 0 : isatty(1) ? 1 : isatty(2) ? 2 : -1;
		rc->files.shell_tty_fd = t >= 0 ? open_service("terminal", dup(t), rc->tty_fd) : -1;
	}
	int pfd = openat(rc->dirfd, "pages-1.img", O_RDONLY | O_CLOEXEC);
	if (pfd < 0)
		pr_perror("can't open pages-1.img");
	if (open_service("pages image", pfd, rc->pages_fd) < 0)
		return -1;
	const FileEntry *exe = files_find(&rc->files, rc->mm->exe_file_id);
	if (!exe || !exe->reg) {
		pr_err("image mm-%d.img: its executable (file %u) is not in files.img", rc->pid,
		       rc->mm->exe_file_id);
		return -1;
	}
	if (open_service("executable", reg_file_open(exe->reg, O_RDONLY), rc->exe_fd) < 0)
		return -1;
	return rst_mem_open_fds(rc);
}

static int child_session(struct rst_ctx *rc)
{
	if (rc->o->shell_job)
		return 0;	/* stays in the session and group of the shell */
	if (rc->pe->sid == (uint32_t)rc->pid && setsid() < 0) {
		pr_perror("pid %d: can't become a session leader", rc->pid);
		return -1;
	}
	if (rc->pe->pgid == (uint32_t)rc->pid && rc->pe->sid != (uint32_t)rc->pid && setpgid(0, 0) < 0) {
		pr_perror("pid %d: can't lead its process group", rc->pid);
		return -1;
	}
	return 0;
}

static int child_fs(struct rst_ctx *rc)
{
	const FileEntry *cwd = files_find(&rc->files, rc->fs->cwd_id);
	const FileEntry *root = files_find(&rc->files, rc->fs->root_id);
	if (!cwd || !cwd->reg || !root || !root->reg) {
		pr_err("image fs-%d.img refers to missing files", rc->pid);
		return -1;
	}
	if (strcmp(root->reg->name, "/") && chroot(root->reg->name) < 0) {
		pr_perror("pid %d: can't change root to %s", rc->pid, root->reg->name);
		return -1;
	}
	if (chdir(cwd->reg->name) < 0) {
		pr_perror("pid %d: can't change directory to %s", rc->pid, cwd->reg->name);
		return -1;
	}
	umask(rc->fs->has_umask ? rc->fs->umask : 022);
	return 0;
}

static void restore_child(struct rst_ctx *rc, pid_t parent)
{
	/* If stasis dies before the task is complete, so does the task. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if (child_session(rc) < 0 || child_service_fds(rc) < 0 || child_fs(rc) < 0 ||
	    install_fds(rc) < 0)
		_exit(1);
	close_foreign_fds(rc);
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0) {
		pr_perror("pid %d: can't let stasis trace it", rc->pid);
		_exit(1);
	}
	raise(SIGSTOP);
	_exit(1);	/* not reached: stasis rebuilds us from here */
}

/* ---- tracer side ---- */

static int unregister_own_rseq(struct rst_ctx *rc)
{
	struct rseq_config cfg;
	long ret;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, rc->pid, sizeof(cfg), &cfg) < 0) {
		pr_perror("pid %d: can't read rseq registration", rc->pid);
		return -1;
	}
	if (!cfg.rseq_abi_pointer)
		return 0;
	return rst_inject(rc, "rseq unregistration", &ret, SYS_rseq, cfg.rseq_abi_pointer,
			  cfg.rseq_abi_size, RSEQ_FLAG_UNREGISTER, cfg.signature, 0, 0);
}

static int finish_task(struct rst_ctx *rc)
{
	long ret;
	/* service fds and the scratch area go; nothing of stasis is left */
	if (rst_inject(rc, "close of service fds", &ret, SYS_close_range, rc->service_base, ~0u, 0, 0, 0, 0) < 0 ||
	    rst_inject(rc, "scratch unmap", &ret, SYS_munmap, rc->scratch, RST_SCRATCH_SIZE, 0, 0, 0, 0) < 0)
		return -1;
	return rst_task_regs(rc);
}

static int rebuild_task(struct rst_ctx *rc)
{
	if (infect_attach_stopped(&rc->v, rc->pid) < 0)
		return -1;
	if (infect_set_vdso(&rc->v, getauxval(AT_SYSINFO_EHDR)) < 0 || infect_block_signals(&rc->v) < 0)
		return -1;
	if (unregister_own_rseq(rc) < 0 || rst_mem_rebuild(rc) < 0 || rst_mm_fields(rc) < 0)
		return -1;
	if (rst_task_state(rc) < 0 || finish_task(rc) < 0)
		return -1;
	if (ptrace(PTRACE_DETACH, rc->pid, NULL, 0) < 0) {
		pr_perror("pid %d: can't let it run", rc->pid);
		return -1;
	}
	return 0;
}

static int write_pidfile(const char *path, pid_t pid)
{
	FILE *f = fopen(path, "we");
	if (!f || fprintf(f, "%d", pid) < 0 || fclose(f) != 0) {
		pr_perror("can't write pidfile %s", path);
		return -1;
	}
	return 0;
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

static void kill_created(pid_t pid)
{
	int status;
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR)
		;
}

static void unload(struct rst_ctx *rc)
{
	files_unload(&rc->files);
	for (int i = 0; i < rc->nr_fdinfo; i++)
		img_free(rc->fdinfo[i]);
	for (int i = 0; i < rc->nr_pagemap; i++)
		img_free(rc->pagemap[i]);
	free(rc->fdinfo);
	free(rc->pagemap);
	free(rc->vma_fd);
	if (rc->pe) img_free(rc->pe);
	if (rc->core) img_free(rc->core);
	if (rc->mm) img_free(rc->mm);
	if (rc->fs) img_free(rc->fs);
}

int stasis_restore(const struct opts *o)
{
	struct rst_ctx rc = { .o = o };
	pid_t pid = -1;
	int ret = 1;

	rc.files.o = o;
	rc.files.shell_tty_fd = -1;
	rc.dirfd = img_dir_open(o->images_dir, false);
	if (rc.dirfd < 0)
		return 1;
	if (load_images(&rc) < 0 || wait_pid_free(rc.pid) < 0)
		goto out;
	rc.service_base = max_image_fd(&rc) + 1;
	if (rc.service_base < 10)
		rc.service_base = 10;
	plan_service_fds(&rc);
	pid_t parent = getpid();
	pid = clone_with_pid(rc.pid);
	if (pid == 0)
		restore_child(&rc, parent);
	if (pid < 0)
		goto out;
	if (pid != rc.pid) {
		pr_err("pid %d: the kernel gave pid %d instead", rc.pid, pid);
		goto out;
	}
	if (rebuild_task(&rc) < 0)
		goto out;
	pr_info("Restore finished successfully: pid %d runs", pid);
	if (o->pidfile && write_pidfile(o->pidfile, pid) < 0)
		goto out;
	ret = o->detach ? 0 : wait_restored(pid);
	pid = -1;	/* it is the user's now */
out:
	if (pid > 0)
		kill_created(pid);
	unload(&rc);
	close(rc.dirfd);
	return ret;
}
