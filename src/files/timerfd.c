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
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "files/anonfd.h"
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

/* Arms the timer with the time that was left at dump. */
static int timerfd_arm(int fd, const TimerfdEntry *e)
{
	struct itimerspec its = {
		.it_value = { e->vsec, e->vnsec },
		.it_interval = { e->isec, e->insec },
	};
	int flags = e->settime_flags;

	/* A periodic timer whose expiry was not read yet shows no time left:
	 * the kernel moves it on only when it is read. It ticks again one
	 * period from now (the expiries it missed meanwhile are not known). */
	if (!e->vsec && !e->vnsec && (e->isec || e->insec))
		its.it_value = its.it_interval;
	/* an absolute timer is armed at now + the time left (a disarmed one,
	 * no time left, stays disarmed) */
	if ((flags & TFD_TIMER_ABSTIME) && (its.it_value.tv_sec || its.it_value.tv_nsec)) {
		struct timespec now;
		if (clock_gettime(e->clockid, &now) < 0)
			return -1;
		its.it_value.tv_sec += now.tv_sec;
		its.it_value.tv_nsec += now.tv_nsec;
		if (its.it_value.tv_nsec >= 1000000000L) {
			its.it_value.tv_sec++;
			its.it_value.tv_nsec -= 1000000000L;
		}
	}
	return timerfd_settime(fd, flags, &its, NULL);
}

static int timerfd_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const TimerfdEntry *e = fe->tfd;
	if (!e) {
		pr_err("image files.img: timerfd entry %u is empty", fe->id);
		return -1;
	}
	int fd = timerfd_create(e->clockid, 0);
	if (fd < 0) {
		pr_perror("can't make timerfd %u on clock %u", fe->id, e->clockid);
		return -1;
	}
	if (timerfd_arm(fd, e) < 0) {
		pr_perror("can't arm timerfd %u (clock %u, %llu.%09llu s left, period %llu.%09llu s)",
			  fe->id, e->clockid, (unsigned long long)e->vsec, (unsigned long long)e->vnsec,
			  (unsigned long long)e->isec, (unsigned long long)e->insec);
		goto err;
	}
	uint64_t ticks = e->ticks;
	if (ticks && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0) {
		pr_perror("can't give timerfd %u back its %llu unread expiries (TFD_IOC_SET_TICKS "
			  "needs a kernel with CONFIG_CHECKPOINT_RESTORE)", fe->id,
			  (unsigned long long)ticks);
		goto err;
	}
	if (anon_set_status_flags(fd, e->flags) < 0) {
		pr_perror("can't set the flags of timerfd %u", fe->id);
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

const struct fd_kind fd_kind_timerfd = {
	.name = "timerfd", .type = FD_TYPES__TIMERFD,
	/* armed by its process from the time left, in its own clocks (an
	 * absolute timer is now + left, both read there) */
	.owns = timerfd_owns, .dump = timerfd_dump, .open = timerfd_open, .own_open = kind_own_open_any,
};
