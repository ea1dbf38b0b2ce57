/* POSIX timers: see posix_timers.h. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#include "infect/inject.h"
#include "proc/proc.h"
#include "task/posix_timers.h"
#include "util/log.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif

/* Without PR_TIMER_CREATE_RESTORE_IDS an id costs two calls to reach:
 * past this one, a restore would take minutes. */
#define SEQ_ID_MAX 65536

/* The kernel's struct sigevent, with the thread id where glibc has a union. */
struct ksigevent {
	uint64_t value;
	int32_t signo;
	int32_t notify;
	int32_t tid;
	int32_t pad[11];
};

/* ---- dump ---- */

static int ns_tid_of(struct inj *ij, const pid_t *ns_tid, pid_t tid)
{
	for (int i = 0; i < ij->nr_th; i++)
		if (ij->th[i].pid == tid)
			return ns_tid[i];
	return 0;
}

static PosixTimerEntry *timer_entry(struct inj *ij, const pid_t *ns_tid, const struct proc_timer *p)
{
	struct itimerspec its;
	long overrun;

	if (inj_must_out(ij, "POSIX timer", INJ(SYS_timer_gettime, p->id, 0), 1, &its, sizeof(its)) < 0 ||
	    inj_must(ij, "POSIX timer overrun", &overrun, INJ(SYS_timer_getoverrun, p->id)) < 0)
		return NULL;
	PosixTimerEntry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	posix_timer_entry__init(e);
	e->it_id = p->id;
	e->clock_id = p->clock;
	e->si_signo = p->signo;
	e->it_sigev_notify = p->notify;
	e->sival_ptr = p->sival;
	e->overrun = overrun;
	e->isec = its.it_interval.tv_sec;
	e->insec = its.it_interval.tv_nsec;
	e->vsec = its.it_value.tv_sec;
	e->vnsec = its.it_value.tv_nsec;
	if (p->notify & SIGEV_THREAD_ID) {
		e->has_notify_thread_id = 1;
		e->notify_thread_id = ns_tid_of(ij, ns_tid, p->tid);
		if (!e->notify_thread_id) {
			pr_err("pid %d: POSIX timer %d signals thread %d, not one of the process's", ij->pid,
			       p->id, p->tid);
			return NULL;
		}
	}
	return e;
}

int ptimers_dump(struct inj *ij, pid_t pid, const pid_t *ns_tid, TaskTimersEntry *t)
{
	struct proc_timer *pt;
	int nr, ret = -1;

	if (proc_parse_timers(pid, &pt, &nr) < 0) {
		pr_perror("pid %d: can't read /proc/%d/timers", pid, pid);
		return -1;
	}
	if (nr && !(t->posix = calloc(nr, sizeof(*t->posix))))
		goto out;
	for (int i = 0; i < nr; i++) {
		if (!(t->posix[i] = timer_entry(ij, ns_tid, &pt[i])))
			goto out;
		t->n_posix++;
	}
	ret = 0;
out:
	free(pt);
	return ret;
}

/* ---- restore ---- */

static bool ts_valid(uint64_t sec, uint64_t nsec)
{
	return sec <= (uint64_t)INT64_MAX && nsec < 1000000000;
}

static int by_id(const void *a, const void *b)
{
	uint32_t x = (*(PosixTimerEntry *const *)a)->it_id, y = (*(PosixTimerEntry *const *)b)->it_id;
	return x < y ? -1 : x > y;
}

int ptimers_check(pid_t pid, const TaskTimersEntry *t)
{
	if (!t)
		return 0;
	for (size_t i = 0; i < t->n_posix; i++) {
		const PosixTimerEntry *e = t->posix[i];
		int how = e->it_sigev_notify & ~SIGEV_THREAD_ID;
		bool bad = e->it_id > INT32_MAX || !ts_valid(e->isec, e->insec) || !ts_valid(e->vsec, e->vnsec) ||
			   (how != SIGEV_SIGNAL && how != SIGEV_NONE && how != SIGEV_THREAD) ||
			   ((e->it_sigev_notify & SIGEV_THREAD_ID) && !e->has_notify_thread_id) ||
			   (how != SIGEV_NONE && (e->si_signo < 1 || e->si_signo > 64));
		for (size_t j = 0; j < i && !bad; j++)
			bad = t->posix[j]->it_id == e->it_id;
		if (bad) {
			pr_err("image core-%d.img: POSIX timer %zu (id %u) is not valid", pid, i, e->it_id);
			return -1;
		}
	}
	/* sorted by id once: the order of creation */
	if (t->n_posix > 1)
		qsort(t->posix, t->n_posix, sizeof(*t->posix), by_id);
	return 0;
}

/* timer_create with *id as given (with restore ids on) or as the kernel
 * hands it out: the id made in *id. */
static int timer_create_in(struct inj *ij, const PosixTimerEntry *e, int *id)
{
	struct ksigevent sev = { .value = e->sival_ptr, .signo = e->si_signo, .notify = e->it_sigev_notify,
				 .tid = e->has_notify_thread_id ? e->notify_thread_id : 0 };
	size_t mark = inj_args_mark(ij);
	uint64_t sev_at, id_at;
	int ret = -1;

	if (inj_arg(ij, &sev, sizeof(sev), &sev_at) < 0 || inj_arg(ij, id, sizeof(*id), &id_at) < 0 ||
	    inj_must(ij, "POSIX timer", NULL, INJ(SYS_timer_create, e->clock_id, sev_at, id_at)) < 0 ||
	    inj_read(ij, id_at, id, sizeof(*id)) < 0)
		goto out;
	ret = 0;
out:
	inj_args_release(ij, mark);
	return ret;
}

/* Old kernels: ids in order from 0; the ones no timer had are taken and
 * given back. */
static int create_in_order(struct inj *ij, const TaskTimersEntry *t)
{
	int next = 0;
	for (size_t i = 0; i < t->n_posix; i++) {
		const PosixTimerEntry *e = t->posix[i];
		if (e->it_id >= SEQ_ID_MAX) {
			pr_err("pid %d: POSIX timer id %u is too high to be made again without "
			       "PR_TIMER_CREATE_RESTORE_IDS (Linux 6.18 has it)", ij->pid, e->it_id);
			return -1;
		}
		for (;;) {
			int id = 0;
			if (timer_create_in(ij, e, &id) < 0)
				return -1;
			if (id != next++) {
				pr_err("pid %d: the kernel gave POSIX timer id %d, not %d: ids are not handed out "
				       "in order", ij->pid, id, next - 1);
				return -1;
			}
			if ((uint32_t)id == e->it_id)
				break;
			if (inj_must(ij, "POSIX timer (a stand-in)", NULL, INJ(SYS_timer_delete, id)) < 0)
				return -1;
		}
	}
	return 0;
}

static int create_by_id(struct inj *ij, const TaskTimersEntry *t)
{
	for (size_t i = 0; i < t->n_posix; i++) {
		int id = t->posix[i]->it_id;
		if (timer_create_in(ij, t->posix[i], &id) < 0)
			return -1;
		if ((uint32_t)id != t->posix[i]->it_id) {
			pr_err("pid %d: POSIX timer made with id %d, not %u", ij->pid, id, t->posix[i]->it_id);
			return -1;
		}
	}
	return 0;
}

int ptimers_create(struct inj *ij, const TaskTimersEntry *t)
{
	long on;

	if (!t || !t->n_posix)
		return 0;
	inj_use(ij, 0);
	if (inj_call(ij, &on, INJ(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0,
				  0)) < 0)
		return -1;
	/* what a kernel before it does, for the tests on newer ones */
	if (on == 0 && getenv("STASIS_NO_TIMER_RESTORE_IDS")) {
		pr_info("pid %d: PR_TIMER_CREATE_RESTORE_IDS turned off", ij->pid);
		if (inj_must(ij, "PR_TIMER_CREATE_RESTORE_IDS off", NULL,
			     INJ(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0)) < 0)
			return -1;
		on = -EINVAL;
	}
	if (on == -EINVAL) {	/* a kernel before 6.18, or the above */
		pr_info("pid %d: timers made in order, to reach their ids", ij->pid);
		return create_in_order(ij, t);
	}
	if (on < 0) {
		pr_err("pid %d: can't turn PR_TIMER_CREATE_RESTORE_IDS on: %s", ij->pid, strerror(-on));
		return -1;
	}
	int ret = create_by_id(ij, t);
	if (inj_must(ij, "PR_TIMER_CREATE_RESTORE_IDS off", NULL,
		     INJ(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0)) < 0)
		return -1;
	return ret;
}

int ptimers_arm(struct inj *ij, const TaskTimersEntry *t)
{
	struct inj_batch b = { 0 };
	size_t mark = inj_args_mark(ij);
	int ret = 0;

	if (!t)
		return 0;
	inj_use(ij, 0);
	for (size_t i = 0; i < t->n_posix && ret == 0; i++) {
		const PosixTimerEntry *e = t->posix[i];
		struct itimerspec its = { { e->isec, e->insec }, { e->vsec, e->vnsec } };
		/* an armed timer about to fire may read 0 left: one interval */
		if (!e->vsec && !e->vnsec)
			its.it_value = its.it_interval;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			continue;	/* disarmed */
		ret = inj_batch_add_in(ij, &b, "POSIX timer time", INJ(SYS_timer_settime, e->it_id, 0, 0, 0), 2,
				       &its, sizeof(its));
	}
	if (ret == 0)
		ret = inj_batch_run(ij, &b);
	inj_args_release(ij, mark);
	return ret;
}
