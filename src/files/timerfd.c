/* timerfd: clock, period, time left, settime flags and the expiries not
 * read yet, all from fdinfo. On restore the timer is armed with the time
 * that was left at dump (the time the tree spent dumped does not count,
 * as with CRIU); an absolute timer gets that time added to the clock's
 * now. Unread expiries are put back with TFD_IOC_SET_TICKS (needs
 * CONFIG_CHECKPOINT_RESTORE). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "files/anonfd.h"
#include "infect/inject.h"
#include "proc/ns_ids.h"
#include "proc/proc.h"
#include "util/log.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static bool timerfd_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "[timerfd]");
}

static int parse_timerfd(const char *buf, TimerfdEntry *e)
{
	const char *clk = anon_fdinfo_value(buf, "clockid");
	const char *ticks = anon_fdinfo_value(buf, "ticks");
	const char *sflags = anon_fdinfo_value(buf, "settime flags");
	const char *val = anon_fdinfo_value(buf, "it_value");
	const char *intv = anon_fdinfo_value(buf, "it_interval");
	unsigned long long vs, vn, is, in;

	if (!clk || !ticks || !sflags || !val || !intv ||
	    sscanf(val, "(%llu, %llu)", &vs, &vn) != 2 || sscanf(intv, "(%llu, %llu)", &is, &in) != 2)
		return -1;
	e->clockid = atoi(clk);
	e->ticks = strtoull(ticks, NULL, 10);
	e->settime_flags = strtoul(sflags, NULL, 8);
	e->vsec = vs;
	e->vnsec = vn;
	e->isec = is;
	e->insec = in;
	return 0;
}

static int timerfd_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
			FileEntry *fe)
{
	char buf[1024];

	if (anon_fdinfo_read(f->pid, f->fd, buf, sizeof(buf)) < 0)
		return -1;
	TimerfdEntry *e = calloc(1, sizeof(*e));
	if (!e)
		return files_oom(f);
	timerfd_entry__init(e);
	fe->tfd = e;
	if (!(e->fown = anon_fown_new()))
		return files_oom(f);
	e->id = fe->id;
	e->flags = f->fi.flags & ~O_CLOEXEC;
	if (parse_timerfd(buf, e) < 0) {
		pr_err("pid %d: fd %d (timerfd): can't parse its fdinfo", f->pid, f->fd);
		return -1;
	}
	/* A periodic timer whose expiry was not read shows no time left (the
	 * kernel moves it on when it is read); saved as due one period from
	 * now, so a restorer that re-arms with the time left (CRIU) keeps it
	 * ticking rather than disarmed. */
	if (!e->vsec && !e->vnsec && (e->isec || e->insec)) {
		e->vsec = e->isec;
		e->vnsec = e->insec;
	}
	pr_debug("pid %d: fd %d: timerfd clock %u left %llu.%09llu period %llu.%09llu ticks %llu "
		 "settime flags %#x", f->pid, f->fd, e->clockid, (unsigned long long)e->vsec,
		 (unsigned long long)e->vnsec, (unsigned long long)e->isec,
		 (unsigned long long)e->insec, (unsigned long long)e->ticks, e->settime_flags);
	return 0;
}

/* ---- restore ----
 *
 * The timer is made disarmed with its file (in the pool, early) and armed
 * as late as the restore can reach it. Once its first holder is rebuilt
 * and its service fds closed (after_service_close), its ptracer takes the
 * timerfd (pidfd_getfd) and stasis arms it on that fd once the whole tree
 * is rebuilt and the pre-resume scripts ran, just before the tree is let
 * go (before_resume): nothing of the restore counts against it. Where
 * stasis can't take it, or an absolute timer's clock is another in the
 * process's time namespace than in stasis's, it is armed there and then,
 * with calls injected into the process (CRIU's restorer arms it at that
 * stage). A timerfd only in flight (in a unix socket's queue, held by no
 * process) can be reached only by the process filling the queue, in its
 * after_install: it is armed there. */

extern const struct fd_kind fd_kind_timerfd;

/* A timerfd stasis took to arm just before the tree resumes. */
struct timerfd_kept {
	int ours;		/* 0: none (never fd 0: stasis's stdin) */
	pid_t pid;		/* its first holder and fd there, for messages */
	int fd;
};

struct timerfd_rst {
	struct timerfd_kept *kept;	/* by index in files.img */
};

/* Whether arming e reads the clock: an absolute timer with time left. */
static bool timerfd_wants_now(const TimerfdEntry *e)
{
	return (e->settime_flags & TFD_TIMER_ABSTIME) && (e->vsec || e->vnsec || e->isec || e->insec);
}

/* The setting the timer gets from e: the time left at dump, from now
 * (now: the clock's time where it is armed, if timerfd_wants_now). A
 * periodic timer whose expiry was not read shows no time left (the
 * kernel moves it on only when it is read): it ticks again one period
 * from now (the expiries it missed are not known). */
static struct itimerspec timerfd_setting(const TimerfdEntry *e, const struct timespec *now)
{
	struct itimerspec its = {
		.it_value = { e->vsec, e->vnsec },
		.it_interval = { e->isec, e->insec },
	};

	if (!e->vsec && !e->vnsec && (e->isec || e->insec))
		its.it_value = its.it_interval;
	/* an absolute timer is armed at now + the time left (a disarmed one,
	 * no time left, stays disarmed) */
	if (timerfd_wants_now(e)) {
		its.it_value.tv_sec += now->tv_sec;
		its.it_value.tv_nsec += now->tv_nsec;
		if (its.it_value.tv_nsec >= 1000000000L) {
			its.it_value.tv_sec++;
			its.it_value.tv_nsec -= 1000000000L;
		}
	}
	return its;
}

/* For messages: "timerfd ID WHERE (clock C, L s left, period P s)". */
static void timerfd_name(char *buf, size_t len, const TimerfdEntry *e, uint32_t id, const char *where)
{
	snprintf(buf, len, "timerfd %u %s (clock %u, %llu.%09llu s left, period %llu.%09llu s)", id,
		 where, e->clockid, (unsigned long long)e->vsec, (unsigned long long)e->vnsec,
		 (unsigned long long)e->isec, (unsigned long long)e->insec);
}

#define TICKS_HINT "(TFD_IOC_SET_TICKS needs a kernel with CONFIG_CHECKPOINT_RESTORE)"

/* Armed on fd, ours, with the clock read here (stasis's, or the process
 * filling the queue of a timerfd in flight); where says whose it is. */
static int timerfd_arm_here(int fd, const TimerfdEntry *e, uint32_t id, const char *where)
{
	struct timespec now = { 0, 0 };
	char name[200];
	uint64_t ticks = e->ticks;

	timerfd_name(name, sizeof(name), e, id, where);
	if (timerfd_wants_now(e) && clock_gettime(e->clockid, &now) < 0) {
		pr_perror("can't read the clock of %s", name);
		return -1;
	}
	struct itimerspec its = timerfd_setting(e, &now);
	if (timerfd_settime(fd, e->settime_flags, &its, NULL) < 0) {
		pr_perror("can't arm %s", name);
		return -1;
	}
	/* after the settime, which resets them */
	if (ticks && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0) {
		pr_perror("can't give %s back its %llu unread expiries " TICKS_HINT, name,
			  (unsigned long long)ticks);
		return -1;
	}
	pr_debug("%s set, %llu unread expiries", name, (unsigned long long)ticks);
	return 0;
}

/* Armed in the rebuilt process through ij: its clock read there (its
 * time namespace), then the settime, then the expiries. */
static int timerfd_arm_in(struct inj *ij, int fd, const TimerfdEntry *e, uint32_t id)
{
	struct timespec now = { 0, 0 };
	char name[200], what[320], where[32];
	uint64_t ticks = e->ticks;

	snprintf(where, sizeof(where), "on fd %d", fd);
	timerfd_name(name, sizeof(name), e, id, where);
	snprintf(what, sizeof(what), "the clock of %s", name);
	if (timerfd_wants_now(e) &&
	    inj_must_out(ij, what, INJ(SYS_clock_gettime, e->clockid, 0), 1, &now, sizeof(now)) < 0)
		return -1;
	struct itimerspec its = timerfd_setting(e, &now);
	snprintf(what, sizeof(what), "the time of %s", name);
	if (inj_must_in(ij, what, INJ(SYS_timerfd_settime, fd, e->settime_flags, 0, 0), 2, &its,
			sizeof(its)) < 0)
		return -1;
	snprintf(what, sizeof(what), "the %llu unread expiries of %s " TICKS_HINT,
		 (unsigned long long)ticks, name);
	if (ticks && inj_must_in(ij, what, INJ(SYS_ioctl, fd, TFD_IOC_SET_TICKS, 0), 2, &ticks,
				 sizeof(ticks)) < 0)
		return -1;
	pr_debug("pid %d: %s set, %llu unread expiries", ij->pid, name, (unsigned long long)ticks);
	return 0;
}

static int timerfd_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const TimerfdEntry *e = fe->tfd;
	(void)fdflags;
	if (!e) {
		pr_err("image files.img: timerfd entry %u is empty", fe->id);
		return -1;
	}
	/* disarmed until its holder is rebuilt (timerfd_after_service_close) */
	int fd = timerfd_create(e->clockid, 0);
	if (fd < 0) {
		pr_perror("%s: can't make timerfd %u on clock %u", rf->who, fe->id, e->clockid);
		return -1;
	}
	if (anon_set_status_flags(fd, e->flags) < 0) {
		pr_perror("%s: can't set the flags of timerfd %u", rf->who, fe->id);
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether the timerfd at fd (ours) was armed already, or given expiries:
 * a new one has neither. */
static int timerfd_touched(int fd, uint32_t id)
{
	struct itimerspec cur;
	char buf[1024];

	if (timerfd_gettime(fd, &cur) < 0) {
		pr_perror("can't read the setting of timerfd %u", id);
		return -1;
	}
	if (cur.it_value.tv_sec || cur.it_value.tv_nsec)
		return 1;
	if (anon_fdinfo_read(getpid(), fd, buf, sizeof(buf)) < 0)
		return -1;
	const char *ticks = anon_fdinfo_value(buf, "ticks");
	return ticks && strtoull(ticks, NULL, 10) ? 1 : 0;
}

/* A timerfd no process holds is only in flight: armed now, by the
 * process filling the queue (no one can reach it later), once though
 * every process holding the socket passes here. One a process holds
 * waits for that process's ptracer. */
static int timerfd_after_install(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid)
{
	if (files_earlier_holder_has(rf, fe->id, 0, -1))
		return 0;
	int touched = timerfd_touched(fd, fe->id);
	if (touched)
		return touched < 0 ? -1 : 0;
	char where[64];
	snprintf(where, sizeof(where), "in flight in pid %d", pid);
	return timerfd_arm_here(fd, fe->tfd, fe->id, where);
}

/* Whether the clock of an absolute timer e reads the same in process pid
 * as here: one not in time namespaces (CLOCK_REALTIME), or the same
 * time namespace (a kernel without them has one). */
static bool timerfd_same_clock(const TimerfdEntry *e, pid_t pid)
{
	if (!timerfd_wants_now(e) || e->clockid == CLOCK_REALTIME || e->clockid == CLOCK_REALTIME_ALARM)
		return true;
	int same = ns_same(pid, 0, "time");
	return same < 0 ? errno == ENOENT : same;
}

/* Takes the timerfd at fd of the rebuilt process (ij) for before_resume;
 * false where it can't (armed in the process then). */
static bool timerfd_take(struct rst_files *rf, struct inj *ij, int fd, const FileEntry *fe)
{
	struct timerfd_rst *st = files_rst_state(rf, &fd_kind_timerfd);
	int idx = files_index(rf, fe->id);
	pid_t real = ij->th[0].pid;

	if (!st || !st->kept || idx < 0 || !timerfd_same_clock(fe->tfd, real))
		return false;
	int ours = proc_take_fd(real, fd);
	if (ours < 0)
		pr_debug("pid %d: can't take timerfd %u on fd %d (%s): armed in the process now", ij->pid,
			 fe->id, fd, strerror(errno));
	if (ours <= 0)
		return false;
	st->kept[idx] = (struct timerfd_kept){ ours, ij->pid, fd };
	return true;
}

/* Every timerfd of the rebuilt process that it is the first to hold (in
 * pstree order; at its first fd on it): taken for before_resume, or armed
 * now; once, though many fds of many processes share it. */
static int timerfd_after_service_close(struct rst_files *rf, struct inj *ij)
{
	for (int i = 0; i < rf->task_nr_fdi; i++) {
		const FdinfoEntry *fdi = rf->task_fdi[i];
		const FileEntry *fe = files_find(rf, fdi->id);
		bool seen = false;

		if (!fe || fe->type != FD_TYPES__TIMERFD || !fe->tfd ||
		    files_earlier_holder_has(rf, fe->id, ij->pid, -1))
			continue;
		for (int k = 0; k < i && !seen; k++)
			seen = rf->task_fdi[k]->id == fdi->id;
		if (!seen && !timerfd_take(rf, ij, fdi->fd, fe) && timerfd_arm_in(ij, fdi->fd, fe->tfd, fe->id) < 0)
			return -1;
	}
	return 0;
}

/* The taken timerfds armed, the tree about to be let go. */
static int timerfd_before_resume(struct rst_files *rf)
{
	struct timerfd_rst *st = files_rst_state(rf, &fd_kind_timerfd);

	for (int i = 0; st && st->kept && i < rf->nr; i++) {
		struct timerfd_kept *k = &st->kept[i];
		char where[64];
		if (k->ours <= 0)
			continue;
		snprintf(where, sizeof(where), "on fd %d of pid %d", k->fd, k->pid);
		int ret = timerfd_arm_here(k->ours, rf->e[i]->tfd, rf->e[i]->id, where);
		close(k->ours);
		k->ours = 0;
		if (ret < 0)
			return -1;
	}
	return 0;
}

static int timerfd_load(struct rst_files *rf, int dirfd)
{
	struct timerfd_rst *st = files_rst_state(rf, &fd_kind_timerfd);
	(void)dirfd;
	st->kept = calloc(rf->nr ? rf->nr : 1, sizeof(*st->kept));
	if (!st->kept) {
		pr_err("out of memory for the timerfds of %d files", rf->nr);
		return -1;
	}
	return 0;
}

/* What a failed restore took and did not arm. */
static void timerfd_unload(struct rst_files *rf)
{
	struct timerfd_rst *st = files_rst_state(rf, &fd_kind_timerfd);
	for (int i = 0; st && st->kept && i < rf->nr; i++)
		if (st->kept[i].ours > 0)
			close(st->kept[i].ours);
	if (st)
		free(st->kept);
}

const struct fd_kind fd_kind_timerfd = {
	.name = "timerfd", .type = FD_TYPES__TIMERFD, .rst_state = sizeof(struct timerfd_rst),
	.owns = timerfd_owns, .dump = timerfd_dump, .open = timerfd_open, .own_open = kind_own_open_any,
	.after_install = timerfd_after_install, .after_service_close = timerfd_after_service_close,
	.before_resume = timerfd_before_resume,
	.load_images = timerfd_load, .unload_images = timerfd_unload,
};
