/* Task state other than memory and files: registers, signals, credentials,
 * limits, timers, rseq, ... -> core-TID.img. Values only the task can tell
 * are asked for by syscalls injected into it (inject.h). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "dump/dump.h"
#include "image/img.h"
#include "image/regs_x86.h"
#include "image/task_state.h"
#include "task/posix_timers.h"
#include "task/seccomp.h"
#include "util/compat.h"
#include "util/log.h"

#ifndef PTRACE_PEEKSIGINFO
#define PTRACE_PEEKSIGINFO 0x4209
#endif
#define PEEKSIGINFO_SHARED 1

/* Every injected call is a round trip through the scheduler, so only the
 * handlers /proc says are set (caught or ignored) are asked for, and
 * SIGCHLD, whose flags matter even at SIG_DFL (SA_NOCLDWAIT); the others
 * are SIG_DFL. */
static int dump_sigactions(struct dump_ctx *dc, TaskCoreEntry *tc)
{
	uint64_t set = dc->status.sig_cgt | dc->status.sig_ign | (1ull << (SIGCHLD - 1));

	tc->sigactions = calloc(SIGACT_NR, sizeof(SaEntry *));
	if (!tc->sigactions)
		return -1;
	for (int sig = 1; sig <= 64; sig++) {
		struct kernel_sigaction ks = { 0 };
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if ((set & (1ull << (sig - 1))) &&
		    inj_must_out(&dc->inj, "signal handlers", INJ(SYS_rt_sigaction, sig, 0, 0, 8), 2, &ks,
				 sizeof(ks)) < 0)
			return -1;
		SaEntry *sa = calloc(1, sizeof(*sa));
		if (!sa)
			return -1;
		sa_entry__init(sa);
		sa->sigaction = ks.handler;
		sa->flags = ks.flags;
		sa->restorer = ks.restorer;
		sa->mask = ks.mask;
		tc->sigactions[tc->n_sigactions++] = sa;
	}
	return 0;
}

static ItimerEntry *itimer_new(const struct itimerval *it)
{
	ItimerEntry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	itimer_entry__init(e);
	e->isec = it->it_interval.tv_sec;
	e->iusec = it->it_interval.tv_usec;
	e->vsec = it->it_value.tv_sec;
	e->vusec = it->it_value.tv_usec;
	return e;
}

static int dump_itimers(struct dump_ctx *dc, TaskCoreEntry *tc)
{
	ItimerEntry **slots[3];
	TaskTimersEntry *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	task_timers_entry__init(t);
	tc->timers = t;
	slots[ITIMER_REAL] = &t->real;
	slots[ITIMER_VIRTUAL] = &t->virt;
	slots[ITIMER_PROF] = &t->prof;
	for (int which = 0; which < 3; which++) {
		struct itimerval it;
		if (inj_must_out(&dc->inj, "interval timers", INJ(SYS_getitimer, which), 1, &it, sizeof(it)) < 0)
			return -1;
		if (!(*slots[which] = itimer_new(&it)))
			return -1;
	}
	return ptimers_dump(&dc->inj, dc->pid, dc->ns_tid, t);
}

/* Limits come from /proc/PID/limits, which anyone may read: prlimit()
 * from outside needs CAP_SYS_RESOURCE over tasks of other users, and
 * asking the task itself costs an injected call per limit. */
static int dump_rlimits(struct dump_ctx *dc, TaskCoreEntry *tc)
{
	struct rlimit lims[RLIM_NLIMITS];
	TaskRlimitsEntry *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return -1;
	task_rlimits_entry__init(rl);
	if (!(rl->rlimits = calloc(RLIM_NLIMITS, sizeof(RlimitEntry *))))
		return -1;
	tc->rlimits = rl;
	if (proc_parse_limits(dc->pid, lims, RLIM_NLIMITS) < 0)
		return -1;
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit lim = lims[r];
		RlimitEntry *e = calloc(1, sizeof(*e));
		if (!e)
			return -1;
		rlimit_entry__init(e);
		e->cur = lim.rlim_cur;
		e->max = lim.rlim_max;
		rl->rlimits[rl->n_rlimits++] = e;
	}
	return 0;
}

static int peek_signals(pid_t tid, bool shared, SignalQueueEntry **out)
{
	SignalQueueEntry *q = calloc(1, sizeof(*q));
	if (!q)
		return -1;
	signal_queue_entry__init(q);	/* before any field is set */
	*out = q;
	for (uint64_t off = 0;; off++) {
		struct { uint64_t off; uint32_t flags; int32_t nr; } args = { off, shared ? PEEKSIGINFO_SHARED : 0, 1 };
		siginfo_t si;
		long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, &si);
		if (n < 0) {
			pr_perror("pid %d: can't read pending signals", tid);
			return -1;
		}
		if (n == 0)
			return 0;
		SiginfoEntry **ns = realloc(q->signals, (q->n_signals + 1) * sizeof(*ns));
		SiginfoEntry *e = calloc(1, sizeof(*e));
		uint8_t *data = malloc(sizeof(si));
		if (!ns || !e || !data) {
			free(e);
			free(data);
			return -1;
		}
		q->signals = ns;
		siginfo_entry__init(e);
		memcpy(data, &si, sizeof(si));
		e->siginfo.data = data;
		e->siginfo.len = sizeof(si);
		q->signals[q->n_signals++] = e;
	}
}

/* The SIGCONT stasis sent to wake a stopped task is not the task's. */
static void drop_our_sigcont(SignalQueueEntry *q)
{
	size_t n = 0;
	for (size_t i = 0; i < q->n_signals; i++) {
		siginfo_t si;
		memcpy(&si, q->signals[i]->siginfo.data, sizeof(si));
		if (si.si_signo == SIGCONT && si.si_pid == getpid())
			continue;
		q->signals[n++] = q->signals[i];
	}
	q->n_signals = n;
}

/* A signal caught in delivery while seizing goes back in the queue. */
static int queue_caught_signal(struct dump_ctx *dc, SignalQueueEntry *q)
{
	if (!dc->inj.cur->has_pending)
		return 0;
	SiginfoEntry **ns = realloc(q->signals, (q->n_signals + 1) * sizeof(*ns));
	SiginfoEntry *e = calloc(1, sizeof(*e));
	uint8_t *data = malloc(sizeof(siginfo_t));
	if (!ns || !e || !data)
		return -1;
	q->signals = ns;
	siginfo_entry__init(e);
	memcpy(data, &dc->inj.cur->pending, sizeof(siginfo_t));
	e->siginfo.data = data;
	e->siginfo.len = sizeof(siginfo_t);
	q->signals[q->n_signals++] = e;
	return 0;
}

static uint32_t *caps_array(uint64_t caps)
{
	uint32_t *a = malloc(2 * sizeof(uint32_t));
	if (a) {
		a[0] = caps;
		a[1] = caps >> 32;
	}
	return a;
}

static int dump_creds(struct dump_ctx *dc, ThreadCoreEntry *th)
{
	const struct proc_status *s = &dc->status;
	long secbits;
	CredsEntry *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	creds_entry__init(c);
	th->creds = c;
	if (inj_must(&dc->inj, "securebits", &secbits, INJ(SYS_prctl, PR_GET_SECUREBITS)) < 0)
		return -1;
	/* as the task sees them (CRIU's too): /proc shows ours */
	const struct userns_maps *m = dc->userns;
	c->uid = userns_id_in(m, USERNS_UID, s->uid[0]);
	c->euid = userns_id_in(m, USERNS_UID, s->uid[1]);
	c->suid = userns_id_in(m, USERNS_UID, s->uid[2]);
	c->fsuid = userns_id_in(m, USERNS_UID, s->uid[3]);
	c->gid = userns_id_in(m, USERNS_GID, s->gid[0]);
	c->egid = userns_id_in(m, USERNS_GID, s->gid[1]);
	c->sgid = userns_id_in(m, USERNS_GID, s->gid[2]);
	c->fsgid = userns_id_in(m, USERNS_GID, s->gid[3]);
	c->secbits = secbits;
	c->n_cap_inh = c->n_cap_prm = c->n_cap_eff = c->n_cap_bnd = c->n_cap_amb = 2;
	c->cap_inh = caps_array(s->cap_inh);
	c->cap_prm = caps_array(s->cap_prm);
	c->cap_eff = caps_array(s->cap_eff);
	c->cap_bnd = caps_array(s->cap_bnd);
	c->cap_amb = caps_array(s->cap_amb);
	c->has_no_new_privs = 1;
	c->no_new_privs = s->no_new_privs;
	c->n_groups = s->ngroups;
	c->groups = malloc((s->ngroups + 1) * sizeof(uint32_t));
	if (!c->cap_inh || !c->cap_prm || !c->cap_eff || !c->cap_bnd || !c->cap_amb || !c->groups)
		return -1;
	for (int i = 0; i < s->ngroups; i++)
		c->groups[i] = userns_id_in(m, USERNS_GID, s->groups[i]);
	return 0;
}

static int dump_sas(struct dump_ctx *dc, ThreadCoreEntry *th)
{
	stack_t ss;
	if (inj_must_out(&dc->inj, "signal stack", INJ(SYS_sigaltstack, 0, 0), 1, &ss, sizeof(ss)) < 0)
		return -1;
	th->sas = calloc(1, sizeof(*th->sas));
	if (!th->sas)
		return -1;
	thread_sas_entry__init(th->sas);
	th->sas->ss_sp = (uint64_t)ss.ss_sp;
	th->sas->ss_size = ss.ss_size;
	th->sas->ss_flags = ss.ss_flags;
	return 0;
}

static int dump_rseq(struct dump_ctx *dc, ThreadCoreEntry *th)
{
	struct rseq_config rc;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, dc->inj.cur->pid, sizeof(rc), &rc) < 0) {
		pr_perror("pid %d: can't read rseq registration", dc->pid);
		return -1;
	}
	if (!rc.rseq_abi_pointer)
		return 0;
	th->rseq_entry = calloc(1, sizeof(*th->rseq_entry));
	if (!th->rseq_entry)
		return -1;
	rseq_entry__init(th->rseq_entry);
	th->rseq_entry->rseq_abi_pointer = rc.rseq_abi_pointer;
	th->rseq_entry->rseq_abi_size = rc.rseq_abi_size;
	th->rseq_entry->signature = rc.signature;
	if (dc->inj.cur->rseq_cs) {	/* stays in its section: see rseq_fixup */
		th->rseq_entry->has_rseq_cs_pointer = true;
		th->rseq_entry->rseq_cs_pointer = dc->inj.cur->rseq_cs;
	}
	return 0;
}

/* Policy (with SCHED_RESET_ON_FORK), its priority, and the nice value,
 * which only the normal policies use: asked from outside, as anyone may. */
static int dump_sched(struct dump_ctx *dc, ThreadCoreEntry *th)
{
	pid_t tid = dc->inj.cur->pid;
	struct sched_param sp;
	int policy = sched_getscheduler(tid);
	if (policy < 0 || sched_getparam(tid, &sp) < 0) {
		pr_perror("pid %d: can't read the scheduling policy of thread %d", dc->pid, tid);
		return -1;
	}
	th->has_sched_policy = th->has_sched_prio = 1;
	th->sched_policy = policy;
	th->sched_prio = sp.sched_priority;
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, tid);
	if (errno == 0) {
		th->has_sched_nice = 1;
		th->sched_nice = nice;
	}
	return 0;
}

static int dump_thread_misc(struct dump_ctx *dc, ThreadCoreEntry *th)
{
	int pdeath;
	uint64_t head, len;

	if (inj_must_out(&dc->inj, "parent death signal", INJ(SYS_prctl, PR_GET_PDEATHSIG, 0), 1, &pdeath,
			 sizeof(pdeath)) < 0)
		return -1;
	th->has_pdeath_sig = 1;
	th->pdeath_sig = pdeath;
	if (syscall(SYS_get_robust_list, dc->inj.cur->pid, &head, &len) < 0) {
		pr_perror("pid %d: can't read robust futex list", dc->pid);
		return -1;
	}
	th->futex_rla = head;
	th->futex_rla_len = len;
	if (dump_sched(dc, th) < 0)
		return -1;
	th->has_blk_sigset = 1;
	th->blk_sigset = dc->inj.cur->sigmask;
	if (peek_signals(dc->inj.cur->pid, false, &th->signals_p) < 0)
		return -1;
	return queue_caught_signal(dc, th->signals_p);
}

static int read_proc_u32(pid_t pid, const char *name, int base, long *out)
{
	char buf[64];
	if (proc_read_file(pid, name, buf, sizeof(buf)) <= 0) {
		pr_perror("pid %d: can't read /proc/%d/%s", pid, pid, name);
		return -1;
	}
	*out = strtol(buf, NULL, base);
	return 0;
}

#define MEMBARRIER_GET_REGISTRATIONS (1 << 9)

/* The process's membarrier() registrations, as a mask of the commands
 * that made them. Kernels before 6.3 can't tell: then a private barrier
 * of each kind is tried (it succeeds only when registered, and costs the
 * process nothing but a barrier); the global registration stays unknown. */
static int dump_membarrier(struct dump_ctx *dc, TaskCoreEntry *tc)
{
	long ret;
	if (inj_call(&dc->inj, &ret, INJ(SYS_membarrier, MEMBARRIER_GET_REGISTRATIONS, 0, 0)) < 0)
		return -1;
	if (ret < 0) {
		static const int private_cmds[] = { 1 << 3, 1 << 5, 1 << 7 };
		ret = 0;
		for (int i = 0; i < 3; i++) {
			long r;
			if (inj_call(&dc->inj, &r, INJ(SYS_membarrier, private_cmds[i], 0, 0)) < 0)
				return -1;
			if (r == 0)
				ret |= private_cmds[i] << 1;	/* REGISTER_x is x << 1 */
		}
	}
	if (ret) {
		tc->has_membarrier_registration_mask = 1;
		tc->membarrier_registration_mask = ret;
	}
	return 0;
}

static int dump_task_misc(struct dump_ctx *dc, TaskCoreEntry *tc)
{
	char comm[32];
	long v;

	tc->task_state = TASK_ALIVE;
	if (read_proc_u32(dc->pid, "personality", 16, &v) < 0)
		return -1;
	tc->personality = v;
	if (read_proc_u32(dc->pid, "oom_score_adj", 10, &v) < 0)
		return -1;
	tc->has_oom_score_adj = 1;
	tc->oom_score_adj = v;
	if (read_proc_u32(dc->pid, "loginuid", 10, &v) == 0) {
		tc->has_loginuid = 1;
		/* as the task names it (CRIU's too); unset stays unset */
		tc->loginuid = (uint32_t)v == (uint32_t)-1 ? (uint32_t)v : userns_id_in(dc->userns, USERNS_UID, v);
	}
	if (proc_read_file(dc->pid, "comm", comm, sizeof(comm)) < 0)
		return -1;
	comm[strcspn(comm, "\n")] = 0;
	tc->comm = strdup(comm);
	tc->blk_sigset = dc->inj.cur->sigmask;
	int subreaper = 0;
	if (inj_must_out(&dc->inj, "child subreaper flag", INJ(SYS_prctl, PR_GET_CHILD_SUBREAPER, 0), 1,
			 &subreaper, sizeof(subreaper)) < 0)
		return -1;
	tc->has_child_subreaper = 1;
	tc->child_subreaper = subreaper;
	if (dump_membarrier(dc, tc) < 0)
		return -1;
	if (peek_signals(dc->pid, true, &tc->signals_s) < 0)
		return -1;
	if (dc->stopped)
		drop_our_sigcont(tc->signals_s);
	return tc->comm ? 0 : -1;
}

/* The registers as they should be on restore: a syscall the task was
 * interrupted in is set up to run again (CRIU does the same), since a
 * restored task has no kernel restart state. */
static void regs_for_image(struct user_regs_struct *r)
{
	if ((long)r->orig_rax < 0)
		return;
	switch ((long)(int)r->rax) {
	case -ERESTARTNOHAND_:
	case -ERESTARTSYS_:
	case -ERESTARTNOINTR_:
		r->rax = r->orig_rax;
		r->rip -= 2;
		break;
	case -ERESTART_RESTARTBLOCK_:
		r->rax = -EINTR;
		break;
	}
}

static int dump_thread_info(struct dump_ctx *dc, CoreEntry *core)
{
	uint8_t xsave[XSAVE_BUF_MAX];
	size_t xlen = sizeof(xsave);
	struct user_regs_struct regs = dc->inj.cur->regs;
	uint64_t tid_addr = 0;

	if (infect_get_xsave(dc->inj.cur->pid, xsave, &xlen) < 0)
		return -1;
	if (inj_must_out(&dc->inj, "clear_child_tid address", INJ(SYS_prctl, PR_GET_TID_ADDRESS, 0), 1,
			 &tid_addr, sizeof(tid_addr)) < 0)
		return -1;
	regs_for_image(&regs);
	core->thread_info = calloc(1, sizeof(*core->thread_info));
	if (!core->thread_info || regs_to_image(core->thread_info, &regs, xsave, xlen) < 0)
		return -1;
	core->thread_info->clear_tid_addr = tid_addr;
	return 0;
}

static int thread_comm(struct dump_ctx *dc, char **out)
{
	char name[64], comm[32];
	snprintf(name, sizeof(name), "task/%d/comm", dc->inj.cur->pid);
	if (proc_read_file(dc->pid, name, comm, sizeof(comm)) < 0) {
		pr_perror("pid %d: can't read the name of thread %d", dc->pid, dc->inj.cur->pid);
		return -1;
	}
	comm[strcspn(comm, "\n")] = 0;
	*out = strdup(comm);
	return *out ? 0 : -1;
}

/* core-TID.img of one thread; the main thread's also holds what the whole
 * process shares (tc: handlers, limits, timers, shared signals). */
static int dump_thread_core(struct dump_ctx *dc, int idx)
{
	CoreEntry core = CORE_ENTRY__INIT;
	TaskCoreEntry *tc = NULL;
	ThreadCoreEntry *th = calloc(1, sizeof(*th));
	int ret = -1;

	inj_use(&dc->inj, idx);
	if (!th)
		goto out;
	thread_core_entry__init(th);
	core.mtype = CORE_ENTRY__MARCH__X86_64;
	core.thread_core = th;
	if (idx == 0) {
		if (!(tc = calloc(1, sizeof(*tc))))
			goto out;
		task_core_entry__init(tc);
		core.tc = tc;
		if (dump_task_misc(dc, tc) < 0 || dump_sigactions(dc, tc) < 0 ||
		    dump_itimers(dc, tc) < 0 || dump_rlimits(dc, tc) < 0)
			goto out;
		if (dc->stopped) {
			tc->task_state = TASK_STOPPED;
			tc->has_stop_signo = 1;
			tc->stop_signo = dc->stop_sig;
		}
	}
	if (dump_thread_info(dc, &core) < 0 || dump_creds(dc, th) < 0 || dump_sas(dc, th) < 0 ||
	    dump_rseq(dc, th) < 0 || dump_thread_misc(dc, th) < 0 || thread_comm(dc, &th->comm) < 0)
		goto out;
	/* a pre-dump is memory only: no cgroups walked for it */
	th->has_cg_set = !dc->o->pre_dump;
	if (th->has_cg_set && cg_dump_thread(dc->cg, dc->pid, dc->inj.th[idx].pid, dc->parent < 0, &th->cg_set) < 0)
		goto out;
	seccomp_dump_thread(dc->seccomp, idx, th);	/* after the creds: it sets their no_new_privs */
	ret = img_store_one(dc->dirfd, IMG_CORE, dc->ns_tid[idx], &core.base);
out:
	if (ret < 0 && errno == ENOMEM)
		pr_err("pid %d: out of memory collecting task state", dc->pid);
	/* Built by hand: a process exits right after a dump, so the small
	 * allocations of one core entry are left to it. */
	if (core.thread_info)
		regs_free_thread_info(core.thread_info);
	return ret;
}

int dump_task_core(struct dump_ctx *dc)
{
	for (int i = 0; i < dc->inj.nr_th; i++)
		if (dump_thread_core(dc, i) < 0)
			return -1;
	inj_use(&dc->inj, 0);
	return 0;
}

/* A zombie is only its exit status, in core-PID.img. */
int dump_zombie_core(struct dump_ctx *dc)
{
	CoreEntry core = CORE_ENTRY__INIT;
	TaskCoreEntry tc = TASK_CORE_ENTRY__INIT;
	char comm[32] = "";

	if (proc_read_file(dc->pid, "comm", comm, sizeof(comm)) < 0)
		comm[0] = 0;	/* reaped meanwhile: the name matters little */
	comm[strcspn(comm, "\n")] = 0;
	core.mtype = CORE_ENTRY__MARCH__X86_64;
	core.tc = &tc;
	tc.task_state = TASK_DEAD;
	tc.exit_code = dc->exit_code;
	tc.comm = comm;
	return img_store_one(dc->dirfd, IMG_CORE, dc->ns_pid, &core.base);
}
