/* Task state of the new task other than memory: set by injected syscalls
 * after its memory is in place, registers last. Calls that need no order
 * among them go in batches (inject.h). */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/securebits.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sched.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "image/regs_x86.h"
#include "image/task_state.h"
#include "restore/rst.h"
#include "task/own_proc.h"
#include "task/seccomp.h"
#include "util/compat.h"
#include "util/log.h"

/* Every signal's handler as the image says; SIG_DFL for all when it lists
 * none, what the program had at exec: the new task was forked from us and
 * must not keep our handlers (util/tick.c's) or what our parent ignored. */
static int rst_sigactions(struct rst_ctx *rc, struct inj_batch *b, const TaskCoreEntry *tc)
{
	size_t i = 0;
	if (tc->n_sigactions != SIGACT_NR && tc->n_sigactions != 0) {
		pr_err("image core-%d.img has %zu signal handlers, expected %d", rc->pid,
		       tc->n_sigactions, SIGACT_NR);
		return -1;
	}
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		struct kernel_sigaction ks = { (uint64_t)SIG_DFL }, now;
		if (tc->n_sigactions) {
			const SaEntry *sa = tc->sigactions[i++];
			ks = (struct kernel_sigaction){ sa->sigaction, sa->flags, sa->restorer, sa->mask };
		}
		/* The new task has our handlers (forked from us): skip equal ones. */
		if (syscall(SYS_rt_sigaction, sig, NULL, &now, 8) == 0 && !memcmp(&now, &ks, sizeof(ks)))
			continue;
		if (inj_batch_add_in(&rc->inj, b, "signal handler", INJ(SYS_rt_sigaction, sig, 0, 0, 8), 1, &ks,
				     sizeof(ks)) < 0)
			return -1;
	}
	return 0;
}

static void itimer_to(struct itimerval *it, const ItimerEntry *e)
{
	it->it_interval.tv_sec = e->isec;
	it->it_interval.tv_usec = e->iusec;
	it->it_value.tv_sec = e->vsec;
	it->it_value.tv_usec = e->vusec;
}

static int rst_itimers(struct rst_ctx *rc, struct inj_batch *b, const TaskTimersEntry *t)
{
	const ItimerEntry *e[3] = { t->real, t->virt, t->prof };
	for (int which = 0; which < 3; which++) {
		struct itimerval it;
		if (!e[which])
			continue;
		itimer_to(&it, e[which]);
		if (!it.it_value.tv_sec && !it.it_value.tv_usec)
			continue;
		if (it.it_value.tv_usec >= 1000000 || it.it_interval.tv_usec >= 1000000) {
			pr_err("image core-%d.img: bad interval timer", rc->pid);
			return -1;
		}
		if (inj_batch_add_in(&rc->inj, b, "interval timer", INJ(SYS_setitimer, which, 0, 0), 1, &it,
				     sizeof(it)) < 0)
			return -1;
	}
	return 0;
}

static int rst_rlimits(struct rst_ctx *rc, struct inj_batch *b, const TaskRlimitsEntry *rl)
{
	for (size_t r = 0; r < rl->n_rlimits && r < RLIM_NLIMITS; r++) {
		struct rlimit lim = { rl->rlimits[r]->cur, rl->rlimits[r]->max }, now;
		/* The new task has our limits (forked from us): skip equal ones.
		 * Not a non-root client's, which took the client's (unpriv.c). */
		if (!rc->o->unprivileged && getrlimit(r, &now) == 0 && now.rlim_cur == lim.rlim_cur &&
		    now.rlim_max == lim.rlim_max)
			continue;
		if (inj_batch_add_in(&rc->inj, b, "resource limit", INJ(SYS_prlimit64, 0, r, 0, 0), 2, &lim,
				     sizeof(lim)) < 0)
			return -1;
	}
	return 0;
}

static int rst_sas(struct rst_ctx *rc, struct inj_batch *b, const ThreadSasEntry *sas)
{
	stack_t ss = { .ss_sp = (void *)sas->ss_sp, .ss_size = sas->ss_size,
		       .ss_flags = sas->ss_flags & ~SS_ONSTACK };
	if (ss.ss_flags & SS_DISABLE)
		return 0;
	return inj_batch_add_in(&rc->inj, b, "signal stack", INJ(SYS_sigaltstack, 0, 0), 0, &ss, sizeof(ss));
}

/* Signals that were pending go back into the queues with their siginfo. */
static int rst_pending(struct rst_ctx *rc, const SignalQueueEntry *q, bool shared, pid_t tid)
{
	for (size_t i = 0; q && i < q->n_signals; i++) {
		siginfo_t si;
		if (q->signals[i]->siginfo.len != sizeof(si)) {
			pr_err("image core-%d.img: pending signal %zu has a bad siginfo", rc->pid, i);
			return -1;
		}
		memcpy(&si, q->signals[i]->siginfo.data, sizeof(si));
		if (si.si_signo <= 0 || si.si_signo > 64) {
			pr_err("image core-%d.img: pending signal number %d", rc->pid, si.si_signo);
			return -1;
		}
		/* the siginfo is the last argument of either */
		struct inj_call c = shared ? INJ(SYS_rt_sigqueueinfo, rc->pid, si.si_signo)
					   : INJ(SYS_rt_tgsigqueueinfo, rc->pid, tid, si.si_signo);
		if (inj_must_in(&rc->inj, "pending signal", c, shared ? 2 : 3, &si, sizeof(si)) < 0)
			return -1;
	}
	return 0;
}

static int rst_comm(struct rst_ctx *rc, struct inj_batch *b, const char *comm)
{
	char name[16] = { 0 };
	if (!comm)
		return 0;
	strncpy(name, comm, sizeof(name) - 1);
	return inj_batch_add_in(&rc->inj, b, "process name", INJ(SYS_prctl, PR_SET_NAME, 0), 1, name,
				sizeof(name));
}

static int rst_rseq(struct rst_ctx *rc, struct inj_batch *b, const RseqEntry *r)
{
	if (!r || !r->rseq_abi_pointer)
		return 0;
	return inj_batch_add(&rc->inj, b, "rseq registration",
			     INJ(SYS_rseq, r->rseq_abi_pointer, r->rseq_abi_size, 0, r->signature));
}

/* A thread dumped inside an rseq critical section that is not restarted
 * on signals finds its section in its struct rseq again: written after
 * the last syscall run in it, whose return to user space outside the
 * section clears it. */
static int rst_rseq_cs(struct rst_ctx *rc, const RseqEntry *r)
{
	if (!r || !r->rseq_abi_pointer || !r->has_rseq_cs_pointer || !r->rseq_cs_pointer)
		return 0;
	/* struct rseq: u32 cpu_id_start, u32 cpu_id, u64 rseq_cs, ... */
	return inj_write(&rc->inj, r->rseq_abi_pointer + 8, &r->rseq_cs_pointer, sizeof(r->rseq_cs_pointer));
}

static uint64_t caps64(const uint32_t *c, size_t n)
{
	return n >= 2 ? (c[0] | ((uint64_t)c[1] << 32)) : n == 1 ? c[0] : 0;
}

/* The highest capability this kernel knows (cap_last_cap). */
static int last_cap(void)
{
	static int last = -1;
	if (last < 0) {
		FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
		if (!f || fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
			last = 40;	/* CAP_CHECKPOINT_RESTORE, 5.9+ */
		if (f)
			fclose(f);
	}
	return last;
}

/* The ambient set, raised one capability at a time once the permitted
 * and inheritable sets hold them (the kernel wants a capability in both). */
static int rst_ambient(struct rst_ctx *rc, uint64_t amb)
{
	for (int cap = 0; cap <= last_cap(); cap++)
		if ((amb & (1ull << cap)) &&
		    inj_must(&rc->inj, "ambient capability", NULL,
			     INJ(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)) < 0)
			return -1;
	return 0;
}

/* Credentials last among the task's state: dropping root first would stop
 * the calls after it. Root with every capability, the common case, is
 * what the new task already has. */
static int rst_creds(struct rst_ctx *rc, const CredsEntry *c)
{
	if (!c)
		return 0;
	if (c->n_groups > 65536) {
		pr_err("image core-%d.img: %zu supplementary groups", rc->pid, c->n_groups);
		return -1;
	}
	if (!rc->in_userns &&
	    inj_must_in(&rc->inj, "supplementary groups", INJ(SYS_setgroups, c->n_groups, 0), 1, c->groups,
			c->n_groups * sizeof(uint32_t)) < 0)
		return -1;
	/* With SECBIT_NO_SETUID_FIXUP the kernel keeps our capabilities
	 * across the change of ids, so the bounding set, securebits and the
	 * task's own capabilities can still be set after it. */
	if (inj_must(&rc->inj, "securebits", NULL, INJ(SYS_prctl, PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP)) < 0 ||
	    inj_must(&rc->inj, "group ids", NULL, INJ(SYS_setresgid, c->gid, c->egid, c->sgid)) < 0 ||
	    inj_must(&rc->inj, "fs group id", NULL, INJ(SYS_setfsgid, c->fsgid)) < 0 ||
	    inj_must(&rc->inj, "user ids", NULL, INJ(SYS_setresuid, c->uid, c->euid, c->suid)) < 0 ||
	    inj_must(&rc->inj, "fs user id", NULL, INJ(SYS_setfsuid, c->fsuid)) < 0)
		return -1;
	uint64_t bnd = caps64(c->cap_bnd, c->n_cap_bnd);
	for (int cap = 0; cap <= last_cap(); cap++)
		if (!(bnd & (1ull << cap)) &&
		    inj_must(&rc->inj, "capability bound", NULL, INJ(SYS_prctl, PR_CAPBSET_DROP, cap)) < 0)
			return -1;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		data[i].effective = i < (int)c->n_cap_eff ? c->cap_eff[i] : 0;
		data[i].permitted = i < (int)c->n_cap_prm ? c->cap_prm[i] : 0;
		data[i].inheritable = i < (int)c->n_cap_inh ? c->cap_inh[i] : 0;
	}
	if (inj_must(&rc->inj, "securebits", NULL, INJ(SYS_prctl, PR_SET_SECUREBITS, c->secbits)) < 0)
		return -1;
	if (inj_must_ins(&rc->inj, "capabilities", INJ(SYS_capset),
			 (struct inj_in[]){ { 0, &hdr, sizeof(hdr) }, { 1, data, sizeof(data) } }, 2) < 0)
		return -1;
	return rst_ambient(rc, caps64(c->cap_amb, c->n_cap_amb));
}

static bool creds_are_ours(const CredsEntry *c)
{
	if (!c)
		return true;
	if (c->uid != getuid() || c->euid != geteuid() || c->suid != getuid() || c->fsuid != geteuid() ||
	    c->gid != getgid() || c->egid != getegid() || c->sgid != getgid() || c->fsgid != getegid())
		return false;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	gid_t groups[256];
	int ng = getgroups(256, groups);
	if (ng < 0 || (size_t)ng != c->n_groups)
		return false;
	for (int i = 0; i < ng; i++)
		if (groups[i] != c->groups[i])
			return false;
	uint64_t eff = data[0].effective | ((uint64_t)data[1].effective << 32);
	uint64_t prm = data[0].permitted | ((uint64_t)data[1].permitted << 32);
	return eff == caps64(c->cap_eff, c->n_cap_eff) && prm == caps64(c->cap_prm, c->n_cap_prm) &&
	       c->secbits == (uint32_t)prctl(PR_GET_SECUREBITS) &&
	       caps64(c->cap_inh, c->n_cap_inh) == 0 && caps64(c->cap_amb, c->n_cap_amb) == 0;
}

/* What the whole process shares, set through its main thread: one batch,
 * then the pending signals, which a handler still SIG_IGN would drop. */
static int process_batch(struct rst_ctx *rc, struct inj_batch *b, const TaskCoreEntry *tc)
{
	if (rst_sigactions(rc, b, tc) < 0)
		return -1;
	if (tc->timers && rst_itimers(rc, b, tc->timers) < 0)
		return -1;
	if (tc->rlimits && rst_rlimits(rc, b, tc->rlimits) < 0)
		return -1;
	if (inj_batch_add(&rc->inj, b, "personality", INJ(SYS_personality, tc->personality)) < 0)
		return -1;
	if (tc->has_child_subreaper && tc->child_subreaper &&
	    inj_batch_add(&rc->inj, b, "child subreaper", INJ(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1)) < 0)
		return -1;
	for (int bit = 0; tc->has_membarrier_registration_mask && bit < 32; bit++)
		if ((tc->membarrier_registration_mask & (1u << bit)) &&
		    inj_batch_add(&rc->inj, b, "membarrier registration", INJ(SYS_membarrier, 1u << bit, 0, 0)) < 0)
			return -1;
	/* the process name now, so threads cloned next inherit it */
	if (rst_comm(rc, b, tc->comm) < 0)
		return -1;
	return inj_batch_run(&rc->inj, b);
}

int rst_process_state(struct rst_ctx *rc)
{
	const TaskCoreEntry *tc = rc->core[0]->tc;
	struct inj_batch b = { 0 };
	size_t mark = inj_args_mark(&rc->inj);

	inj_use(&rc->inj, 0);
	int ret = process_batch(rc, &b, tc);
	inj_args_release(&rc->inj, mark);
	if (ret < 0 || own_proc_restore(&rc->inj, rc->real_pid, tc, rc->oom_fd, rc->loginuid_fd, rc->born_inside) < 0)
		return -1;
	return rst_pending(rc, tc->signals_s, true, rc->pid);
}

/* Lowering a nice value (a higher priority) or a real-time policy takes
 * CAP_SYS_NICE or room in RLIMIT_NICE / RLIMIT_RTPRIO: for a non-root
 * client the thread asks itself, so the kernel weighs the client's
 * rights, not ours. Not fatal, as for CRIU. -errno. */
static long set_nice(struct rst_ctx *rc, pid_t tid, int nice)
{
	long ret = 0;
	if (!rc->o->unprivileged)
		return setpriority(PRIO_PROCESS, tid, nice) < 0 ? -errno : 0;
	if (inj_call(&rc->inj, &ret, INJ(SYS_setpriority, PRIO_PROCESS, 0, nice)) < 0)
		return -EIO;
	return ret;
}

static long set_policy(struct rst_ctx *rc, pid_t tid, int policy, const struct sched_param *sp)
{
	long ret = 0;
	uint64_t at;
	if (!rc->o->unprivileged)
		return sched_setscheduler(tid, policy, sp) < 0 ? -errno : 0;
	size_t mark = inj_args_mark(&rc->inj);
	if (inj_arg(&rc->inj, sp, sizeof(*sp), &at) < 0 ||
	    inj_call(&rc->inj, &ret, INJ(SYS_sched_setscheduler, 0, policy, at)) < 0)
		ret = -EIO;
	inj_args_release(&rc->inj, mark);
	return ret;
}

/* Nice value, then policy (with SCHED_RESET_ON_FORK) and priority: after
 * the threads are made, which a reset-on-fork policy would not reach. */
static void rst_sched(struct rst_ctx *rc, const ThreadCoreEntry *th)
{
	pid_t tid = rc->inj.cur->pid;
	long ret;
	if (th->has_sched_nice && (ret = set_nice(rc, tid, th->sched_nice)) < 0)
		pr_warn("pid %d: can't restore nice value %d: %s", rc->pid, th->sched_nice, strerror(-ret));
	if (!th->has_sched_policy)
		return;
	struct sched_param sp = { .sched_priority = th->has_sched_prio ? th->sched_prio : 0 }, now;
	if (sched_getscheduler(tid) == (int)th->sched_policy && sched_getparam(tid, &now) == 0 &&
	    now.sched_priority == sp.sched_priority)
		return;	/* ours, inherited */
	if ((ret = set_policy(rc, tid, th->sched_policy, &sp)) < 0)
		pr_warn("pid %d: can't restore scheduling policy %u priority %d of thread %d: %s", rc->pid,
			th->sched_policy, sp.sched_priority, tid, strerror(-ret));
}

/* A thread's own state that needs no order: one batch. */
static int thread_batch(struct rst_ctx *rc, struct inj_batch *b, int idx)
{
	const CoreEntry *core = rc->core[idx];
	const ThreadCoreEntry *th = core->thread_core;

	if (th->sas && rst_sas(rc, b, th->sas) < 0)
		return -1;
	if (inj_batch_add(&rc->inj, b, "robust futex list",
			  INJ(SYS_set_robust_list, th->futex_rla, th->futex_rla_len)) < 0)
		return -1;
	if (core->thread_info->clear_tid_addr &&
	    inj_batch_add(&rc->inj, b, "clear_child_tid",
			  INJ(SYS_set_tid_address, core->thread_info->clear_tid_addr)) < 0)
		return -1;
	if (rst_rseq(rc, b, th->rseq_entry) < 0)
		return -1;
	const char *name = th->comm ? th->comm : NULL;
	if (name && strcmp(name, rc->core[0]->tc->comm ? rc->core[0]->tc->comm : "") && rst_comm(rc, b, name) < 0)
		return -1;
	return inj_batch_run(&rc->inj, b);
}

/* What each thread has of its own; credentials last, since dropping root
 * would stop the calls after it. */
int rst_thread_state(struct rst_ctx *rc, int idx)
{
	const CoreEntry *core = rc->core[idx];
	const ThreadCoreEntry *th = core->thread_core;
	struct inj_batch b = { 0 };
	size_t mark = inj_args_mark(&rc->inj);

	inj_use(&rc->inj, idx);
	int ret = thread_batch(rc, &b, idx);
	inj_args_release(&rc->inj, mark);
	if (ret < 0)
		return -1;
	rst_sched(rc, th);
	/* queued by the thread itself: the kernel lets only it forge siginfo */
	if (rst_pending(rc, th->signals_p, false, rc->pe->threads[idx]) < 0)
		return -1;
	/* The parent-death signal guarded the restore (main thread; a new
	 * thread starts without one); now it is the task's own. */
	int pdeath = th->has_pdeath_sig ? th->pdeath_sig : 0;
	if ((idx == 0 || pdeath) &&
	    inj_must(&rc->inj, "parent death signal", NULL, INJ(SYS_prctl, PR_SET_PDEATHSIG, pdeath)) < 0)
		return -1;
	/* Seccomp before the creds: a filter's install may need root or
	 * no_new_privs; our calls after it are not filtered (suspended). */
	if (seccomp_restore_thread(rc->seccomp, &rc->inj, idx) < 0)
		return -1;
	/* A non-root client's thread has its ids already: it drops what was
	 * lent and is checked (unpriv.c); the change resets nothing. */
	if (rc->o->unprivileged)
		return rst_client_final(rc, idx);
	/* in a user namespace, its ids are not ours even where the numbers are */
	if (!rc->in_userns && creds_are_ours(th->creds))
		return 0;
	if (rst_creds(rc, th->creds) < 0)
		return -1;
	/* A change of ids resets the parent-death signal and the dumpable
	 * flag (commit_creds): both again, as the task had them. */
	if (pdeath && inj_must(&rc->inj, "parent death signal", NULL, INJ(SYS_prctl, PR_SET_PDEATHSIG, pdeath)) < 0)
		return -1;
	if (idx == 0 && rc->mm->has_dumpable &&
	    inj_must(&rc->inj, "dumpable flag", NULL, INJ(SYS_prctl, PR_SET_DUMPABLE, rc->mm->dumpable)) < 0)
		return -1;
	return 0;
}

int rst_thread_regs(struct rst_ctx *rc, int idx)
{
	struct user_regs_struct regs;
	uint8_t xsave[XSAVE_BUF_MAX];
	size_t xlen = sizeof(xsave);
	const CoreEntry *core = rc->core[idx];
	const ThreadCoreEntry *th = core->thread_core;
	uint64_t mask = th->has_blk_sigset ? th->blk_sigset : rc->core[0]->tc->blk_sigset;
	pid_t tid = rc->inj.th[idx].pid;

	if (infect_get_xsave(tid, xsave, &xlen) < 0 ||
	    regs_from_image(core->thread_info, &regs, xsave, xlen) < 0)
		return -1;
	if (infect_set_xsave(tid, xsave, xlen) < 0)
		return -1;
	if (rst_rseq_cs(rc, th->rseq_entry) < 0)
		return -1;
	mask &= ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
	return infect_set_own_state(&rc->inj.th[idx], &regs, mask);
}

/* Threads are cloned by the main thread with their old tids; with
 * PTRACE_O_TRACECLONE each comes to life stopped and traced by us. */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
		set_tid_size, cgroup;
};

/* clone3's arguments and the one tid they point to, written as one. */
struct clone_thread_args {
	struct clone3_args a;
	pid_t tid;
};

static int create_thread(struct rst_ctx *rc, int idx)
{
	struct clone_thread_args c = {
		.a.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM,
		.a.set_tid_size = 1,
		.tid = rc->pe->threads[idx],
	};
	size_t mark = inj_args_mark(&rc->inj);
	uint64_t at;

	inj_use(&rc->inj, 0);
	/* set_tid points inside the block: its place is known before the write */
	if (inj_arg(&rc->inj, NULL, sizeof(c), &at) < 0)
		return -1;
	c.a.set_tid = at + offsetof(struct clone_thread_args, tid);
	int ret = inj_write(&rc->inj, at, &c, sizeof(c)) < 0 ||
		  inj_must(&rc->inj, "thread", NULL, INJ(SYS_clone3, at, sizeof(c.a))) < 0 ||
		  inj_adopt_clone(&rc->inj, idx) < 0 ? -1 : 0;
	inj_args_release(&rc->inj, mark);
	return ret;
}

int rst_threads_create(struct rst_ctx *rc)
{
	if (rc->inj.nr_th < 2)
		return 0;
	if (infect_set_options(&rc->inj.th[0], rc->inj.th[0].options | PTRACE_O_TRACECLONE) < 0) {
		pr_perror("pid %d: can't trace its thread creation", rc->pid);
		return -1;
	}
	/* set_tid is lent to a non-root client's main thread for these
	 * clones; each new thread starts with it raised and lowers it */
	if (rst_client_lend_inject(rc, 0, true) < 0)
		return -1;
	for (int i = 1; i < rc->inj.nr_th; i++)
		if (create_thread(rc, i) < 0 || rst_client_lend_inject(rc, i, false) < 0)
			return -1;
	return rst_client_lend_inject(rc, 0, false);
}
