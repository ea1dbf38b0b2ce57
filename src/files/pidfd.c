/* pidfd: an fd naming a process (pidfd_open, clone's CLONE_PIDFD). Its
 * fdinfo tells the process's pid ("Pid:", -1 once it is dead and reaped)
 * and its pid in each pid namespace ("NSpid:", the tree's own last). As
 * CRIU does (PidfdEntry), the entry keeps that innermost pid, or -1 for a
 * dead process, and the pidfd's inode, the same for every pidfd of one
 * process. The process must be one of the tree (it is there after the
 * restore); a pidfd of one thread (PIDFD_THREAD) is refused, as by CRIU.
 *
 * Restore. A live process's pidfd can be opened only once the whole tree
 * exists, so the pool holds a stand-in (an eventfd) at its number, and
 * once the process is rebuilt and its service fds closed
 * (after_service_close) a pidfd_open() injected into it replaces the
 * stand-in. A dead process's pidfds are made in the pool: a short-lived
 * child is forked, one pidfd opened on it for each entry of that dead
 * process (so they share an inode, as they did), then it is killed and
 * reaped. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files/anonfd.h"
#include "infect/inject.h"
#include "proc/proc.h"
#include "util/log.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

#define FDINFO_SIZE 4096

extern const struct fd_kind fd_kind_pidfd;

static bool pidfd_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "[pidfd]");
}

/* Is pid the root of the dumped tree or one of its descendants? */
static bool in_tree(pid_t pid, pid_t root)
{
	struct proc_stat st;

	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		if (pid == root)
			return true;
		if (proc_parse_stat(pid, &st) < 0)
			return false;
		pid = st.ppid;
	}
	return pid == root;
}

/* Pid:, the last number of NSpid: and ino: of a pidfd's fdinfo text. */
static int parse_fdinfo(const char *buf, int *pid, int *nspid, unsigned long long *ino)
{
	const char *p = anon_fdinfo_value(buf, "Pid"), *n = anon_fdinfo_value(buf, "NSpid");
	const char *i = anon_fdinfo_value(buf, "ino");

	if (!p || !n || !i)
		return -1;
	*pid = atoi(p);
	*ino = strtoull(i, NULL, 10);
	const char *end = strchr(n, '\n'), *last = n;
	for (const char *c = n; *c && c != end; c++)
		if (*c == '\t' || *c == ' ')
			last = c + 1;
	*nspid = atoi(last);
	return 0;
}

static int pidfd_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
		      FileEntry *fe)
{
	char buf[FDINFO_SIZE];
	unsigned long long ino;
	int pid, nspid;
	PidfdEntry *e = calloc(1, sizeof(*e));

	if (!e)
		return files_oom(f);
	pidfd_entry__init(e);
	fe->pidfd = e;
	if (!(e->fown = anon_fown_new()))
		return files_oom(f);
	if (anon_fdinfo_read(f->pid, f->fd, buf, sizeof(buf)) < 0)
		return -1;
	if (parse_fdinfo(buf, &pid, &nspid, &ino) < 0) {
		pr_err("pid %d: fd %d (pidfd): its fdinfo has no Pid, NSpid or ino line (a kernel "
		       "before 5.x?)", f->pid, f->fd);
		return -1;
	}
	if (f->fi.flags & PIDFD_THREAD) {
		pr_err("pid %d: fd %d is a pidfd of one thread (PIDFD_THREAD), which stasis (like "
		       "CRIU) can't dump; close it before the dump", f->pid, f->fd);
		return -1;
	}
	if (pid != -1 && !in_tree(pid, o->pid ? o->pid : f->pid)) {
		pr_err("pid %d: fd %d is a pidfd of pid %d, which is not in the dumped tree; stasis "
		       "can't dump it (dump the tree holding both, or close the pidfd)", f->pid,
		       f->fd, pid);
		return -1;
	}
	e->id = fe->id;
	e->ino = ino;
	e->nspid = pid == -1 ? -1 : nspid;
	e->flags = f->fi.flags & ~(O_ACCMODE | O_CLOEXEC);
	pr_debug("pid %d: fd %d: pidfd of pid %d (%d in its namespace), inode %llu, flags %#o",
		 f->pid, f->fd, pid, e->nspid, ino, e->flags);
	return 0;
}

/* ---- restore ---- */

/* The pidfds made for dead processes, by entry, until the pool takes them. */
struct pidfd_rst {
	int *made;		/* by index in files.img; 0: none (never fd 0: kept high) */
};

static int pidfd_load(struct rst_files *rf, int dirfd)
{
	struct pidfd_rst *st = files_rst_state(rf, &fd_kind_pidfd);
	(void)dirfd;
	st->made = calloc(rf->nr ? rf->nr : 1, sizeof(*st->made));
	if (!st->made) {
		pr_err("out of memory for the pidfds of %d files", rf->nr);
		return -1;
	}
	return 0;
}

static void pidfd_unload(struct rst_files *rf)
{
	struct pidfd_rst *st = files_rst_state(rf, &fd_kind_pidfd);
	for (int i = 0; st && st->made && i < rf->nr; i++)
		if (st->made[i] > 0)
			close(st->made[i]);
	if (st)
		free(st->made);
}

static bool is_dead_of(const FileEntry *fe, uint32_t ino)
{
	return fe->type == FD_TYPES__PIDFD && fe->pidfd && fe->pidfd->nspid == -1 &&
	       fe->pidfd->ino == ino;
}

static void kill_helper(pid_t child)
{
	kill(child, SIGKILL);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Every entry's pidfd of the dead process of inode ino: a child is forked,
 * a pidfd opened on it for each, and it is killed and reaped. */
static int make_dead(struct rst_files *rf, struct pidfd_rst *st, uint32_t ino)
{
	pid_t child = fork();
	if (child < 0) {
		pr_perror("%s: can't fork a process for the pidfds of a dead process", rf->who);
		return -1;
	}
	if (child == 0) {
		for (;;)
			pause();
	}
	for (int i = 0; i < rf->nr; i++) {
		if (!is_dead_of(rf->e[i], ino))
			continue;
		int fd = syscall(SYS_pidfd_open, child, rf->e[i]->pidfd->flags & O_NONBLOCK);
		if (fd < 0)
			pr_perror("%s: can't open a pidfd", rf->who);
		else
			fd = files_keep_fd(rf, fd, "a pidfd of a dead process");
		if (fd < 0) {
			kill_helper(child);
			return -1;
		}
		st->made[i] = fd;
	}
	kill_helper(child);
	return 0;
}

static int pidfd_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const PidfdEntry *e = fe->pidfd;
	struct pidfd_rst *st = files_rst_state(rf, &fd_kind_pidfd);
	int idx = files_index(rf, fe->id), fd;

	(void)fdflags;
	if (!e) {
		pr_err("image files.img: pidfd entry %u is empty", fe->id);
		return -1;
	}
	if (e->nspid != -1) {
		/* a stand-in until the tree exists (pidfd_after_service_close) */
		fd = eventfd(0, 0);
		if (fd < 0)
			pr_perror("%s: can't make a stand-in for the pidfd of pid %d", rf->who, e->nspid);
		return fd;
	}
	if (!st->made[idx] && make_dead(rf, st, e->ino) < 0)
		return -1;
	fd = st->made[idx];
	st->made[idx] = 0;
	if (fd <= 0)
		pr_err("%s: pidfd %u of a dead process was made already", rf->who, fe->id);
	return fd > 0 ? fd : -1;
}

/* In the rebuilt process: each stand-in becomes a pidfd of its process. */
static int pidfd_after_service_close(struct rst_files *rf, struct inj *ij)
{
	for (int i = 0; i < rf->task_nr_fdi; i++) {
		const FdinfoEntry *fdi = rf->task_fdi[i];
		const FileEntry *fe = files_find(rf, fdi->id);
		long tmp;
		if (!fe || fe->type != FD_TYPES__PIDFD || !fe->pidfd || fe->pidfd->nspid == -1)
			continue;
		const PidfdEntry *e = fe->pidfd;
		if (inj_must(ij, "pidfd_open", &tmp, INJ(SYS_pidfd_open, e->nspid, e->flags & O_NONBLOCK)) < 0)
			return -1;
		int cloexec = (fdi->flags & FD_CLOEXEC) ? O_CLOEXEC : 0;
		if (inj_must(ij, "dup3 of a pidfd", NULL, INJ(SYS_dup3, tmp, fdi->fd, cloexec)) < 0 ||
		    inj_must(ij, "close", NULL, INJ(SYS_close, tmp)) < 0)
			return -1;
		pr_debug("pid %d: fd %u is a pidfd of pid %d again", ij->pid, fdi->fd, e->nspid);
	}
	return 0;
}

const struct fd_kind fd_kind_pidfd = {
	.name = "pidfd", .type = FD_TYPES__PIDFD, .rst_state = sizeof(struct pidfd_rst),
	.owns = pidfd_owns, .dump = pidfd_dump, .open = pidfd_open,
	.after_service_close = pidfd_after_service_close,
	.load_images = pidfd_load, .unload_images = pidfd_unload,
};
