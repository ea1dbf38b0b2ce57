/* The owner of an open file description's SIGIO/SIGURG (F_SETOWN,
 * F_SETOWN_EX, F_SETSIG; fown_entry, which every kind's entry carries):
 * read from a copy of the fd at dump, set again on restore by the
 * process itself (injected), once every process of the tree exists, and
 * before its credentials are restored: the kernel records the uid and
 * euid of whoever sets the owner, and checks them when it signals.
 * O_ASYNC, a status flag open() ignores, is set here too, by the fd's
 * own number. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "anonfd.pb-c.h"
#include "files/fown.h"
#include "infect/inject.h"
#include "util/log.h"

#ifndef F_GETOWNER_UIDS
#define F_GETOWNER_UIDS 17
#endif

/* The entry's fown and status flags, by type; a FIFO's are those of its
 * path's entry, reg (as CRIU keeps them). NULL if it has none. */
static FownEntry *fown_of(const FileEntry *fe, const FileEntry *reg, uint32_t *flags)
{
#define FOWN(e) do { if (!(e)) return NULL; *flags = (e)->flags; return (e)->fown; } while (0)
	switch (fe->type) {
	case FD_TYPES__REG: FOWN(fe->reg);
	case FD_TYPES__PIPE: FOWN(fe->pipe);
	case FD_TYPES__FIFO: FOWN(reg ? reg->reg : NULL);
	case FD_TYPES__UNIXSK: FOWN(fe->usk);
	case FD_TYPES__TTY: FOWN(fe->tty);
	case FD_TYPES__MEMFD: FOWN(fe->memfd);
	case FD_TYPES__EVENTFD: FOWN(fe->efd);
	case FD_TYPES__EVENTPOLL: FOWN(fe->epfd);
	case FD_TYPES__SIGNALFD: FOWN(fe->sgfd);
	case FD_TYPES__TIMERFD: FOWN(fe->tfd);
	case FD_TYPES__INOTIFY: FOWN(fe->ify);
	case FD_TYPES__FANOTIFY: FOWN(fe->ffy);
	case FD_TYPES__INETSK: FOWN(fe->isk);
	case FD_TYPES__PACKETSK: FOWN(fe->psk);
	case FD_TYPES__NETLINKSK: FOWN(fe->nlsk);
	default: return NULL;
	}
#undef FOWN
}

/* The pid namespace level the task's pids are recorded at (its own). */
static int ns_level(pid_t pid)
{
	struct proc_status st;
	return proc_parse_status(pid, &st) == 0 && st.nr_nspid > 0 ? st.nr_nspid - 1 : 0;
}

static const FileEntry *dump_entry(const struct file_table *t, uint32_t id)
{
	for (int i = 0; i < t->nr; i++)
		if (t->e[i]->id == id)
			return t->e[i];
	return NULL;
}

int fown_dump(const struct file_table *t, const struct fd_facts *f, FileEntry *fe)
{
	const FileEntry *reg = fe->fifo && fe->fifo->has_regf_id ? dump_entry(t, fe->fifo->regf_id) : NULL;
	uint32_t flags;
	FownEntry *fown = fown_of(fe, reg, &flags);
	struct f_owner_ex owner;
	uid_t uids[2];

	if (!fown || (f->fi.flags & O_PATH))
		return 0;	/* fcntl refuses an O_PATH fd: it has no owner */
	int fd = f->sk >= 0 ? f->sk : files_take(f);
	if (fd < 0)
		return -1;
	int sig = fcntl(fd, F_GETSIG);
	int ret = sig < 0 ? -1 : fcntl(fd, F_GETOWN_EX, &owner);
	if (ret == 0 && owner.pid)
		ret = fcntl(fd, F_GETOWNER_UIDS, uids);
	if (fd != f->sk)
		close(fd);
	if (ret < 0) {
		pr_perror("pid %d: fd %d (%s): can't read its owner (F_GETOWN_EX)", f->pid, f->fd, f->path);
		return -1;
	}
	fown->signum = sig;
	if (!owner.pid)
		return 0;
	/* owner.pid is as stasis sees it: as the task's namespace sees it */
	int lvl = ns_level(f->pid);
	pid_t pid = lvl ? proc_ns_pid(owner.pid, lvl) : owner.pid;
	if (!pid) {
		pr_err("pid %d: fd %d (%s) signals %s %d, which its pid namespace can't see; "
		       "clear it (F_SETOWN 0) before the dump", f->pid, f->fd, f->path,
		       owner.type == F_OWNER_PGRP ? "process group" : "process", owner.pid);
		return -1;
	}
	fown->uid = uids[0];
	fown->euid = uids[1];
	fown->pid_type = owner.type;
	fown->pid = pid;
	pr_debug("pid %d: fd %d: owner %d (type %d, uid %u/%u), signal %d", f->pid, f->fd, pid, owner.type,
		 uids[0], uids[1], sig);
	return 0;
}

/* ---- restore ---- */

static const FownEntry *rst_fown(const struct rst_files *rf, const FileEntry *fe, uint32_t *flags)
{
	const FileEntry *reg = fe->fifo && fe->fifo->has_regf_id ? files_find(rf, fe->fifo->regf_id) : NULL;
	return fown_of(fe, reg, flags);
}

/* O_ASYNC, by the process on its fd: the kernel sends SIGIO with the
 * number of the fd that set it (si_fd), which must be this one. */
static int set_async(struct inj *ij, int fd)
{
	long fl;
	if (inj_must(ij, "status flags (F_GETFL)", &fl, INJ(SYS_fcntl, fd, F_GETFL, 0)) < 0)
		return -1;
	if (fl & O_ASYNC)
		return 0;	/* set through another fd on the same file */
	return inj_must(ij, "O_ASYNC (F_SETFL)", NULL, INJ(SYS_fcntl, fd, F_SETFL, fl | O_ASYNC));
}

/* F_SETOWN_EX as uid/euid: the process takes them for the call, then
 * its own back (and its dumpable flag, which a change of euid resets;
 * its parent-death signal, reset too, is restored later). */
static int set_owner(struct inj *ij, int fd, const FownEntry *fown)
{
	struct f_owner_ex owner = { .type = fown->pid_type, .pid = fown->pid };
	long ruid, euid, dumpable;
	char what[64];

	snprintf(what, sizeof(what), "owner of fd %d (pid %u, uid %u/%u)", fd, fown->pid, fown->uid, fown->euid);
	if (inj_must(ij, "user id", &ruid, INJ(SYS_getuid, 0)) < 0 ||
	    inj_must(ij, "effective user id", &euid, INJ(SYS_geteuid, 0)) < 0 ||
	    inj_must(ij, "dumpable flag", &dumpable, INJ(SYS_prctl, PR_GET_DUMPABLE, 0)) < 0)
		return -1;
	bool as_other = (uid_t)ruid != fown->uid || (uid_t)euid != fown->euid;
	if (as_other && inj_must(ij, what, NULL, INJ(SYS_setresuid, fown->uid, fown->euid, -1)) < 0)
		return -1;
	int ret = inj_must_in(ij, what, INJ(SYS_fcntl, fd, F_SETOWN_EX, 0), 2, &owner, sizeof(owner));
	if (as_other && (inj_must(ij, "user ids", NULL, INJ(SYS_setresuid, ruid, euid, -1)) < 0 ||
			 inj_must(ij, "dumpable flag", NULL, INJ(SYS_prctl, PR_SET_DUMPABLE, dumpable)) < 0))
		return -1;
	return ret;
}

static int fown_restore_task(struct rst_files *rf, struct inj *ij)
{
	for (int i = 0; i < rf->task_nr_fdi; i++) {
		const FdinfoEntry *fdi = rf->task_fdi[i];
		const FileEntry *fe = files_find(rf, fdi->id);
		uint32_t flags = 0;
		const FownEntry *fown = fe ? rst_fown(rf, fe, &flags) : NULL;
		if (!fown || (flags & O_PATH))
			continue;
		if (fown->signum && inj_must(ij, "signal of an fd's owner (F_SETSIG)", NULL,
					     INJ(SYS_fcntl, fdi->fd, F_SETSIG, fown->signum)) < 0)
			return -1;
		if (fown->pid && set_owner(ij, fdi->fd, fown) < 0)
			return -1;
		if ((flags & O_ASYNC) && set_async(ij, fdi->fd) < 0)
			return -1;
	}
	return 0;
}

const struct fd_kind fd_kind_fown = {
	.name = "file owner", .before_creds = fown_restore_task,
};
