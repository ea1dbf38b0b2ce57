#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "infect/arch.h"
#include "infect/infect.h"
#include "util/compat.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/tick.h"

#ifndef PTRACE_GETSIGMASK
#define PTRACE_GETSIGMASK 0x420a
#define PTRACE_SETSIGMASK 0x420b
#endif
int infect_set_vdso(struct victim *v, uint64_t vdso_start)
{
	long off = arch_vdso_syscall_offset();
	uint8_t insn[ARCH_SYSCALL_LEN];

	if (off < 0) {
		pr_err("no syscall instruction found in the vdso");
		return -1;
	}
	v->syscall_ip = vdso_start + off;
	if (infect_read(v, v->syscall_ip, insn, sizeof(insn)) < 0)
		return -1;
	if (!arch_is_syscall(insn)) {
		pr_err("pid %d: vdso at %#lx differs from ours (no syscall instruction at +%#lx)",
		       v->pid, (unsigned long)vdso_start, off);
		return -1;
	}
	return 0;
}

/* The next ptrace stop: 0; -1 on error (reported); -2 if the task
 * exited instead (not reported: the caller knows what that means). */
static int wait_any(pid_t pid, int *status)
{
	for (;;) {
		if (waitpid(pid, status, __WALL) == pid)
			break;
		if (errno != EINTR) {
			pr_perror("pid %d: waitpid failed", pid);
			return -1;
		}
	}
	return WIFSTOPPED(*status) ? 0 : -2;
}

static void report_exit(pid_t pid, int status)
{
	pr_err("pid %d: exited while stopped by stasis (status %#x)", pid, status);
}

static int wait_stop(pid_t pid, int *status)
{
	int ret = wait_any(pid, status);
	if (ret == -2)
		report_exit(pid, *status);
	return ret < 0 ? -1 : 0;
}

/* Reads the task's memory, quietly: for what may well be absent. */
static bool peek(struct victim *v, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	return process_vm_readv(v->pid, &local, 1, &remote, 1, 0) == (ssize_t)len;
}

#define RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL_ 2

/* A thread stopped inside an rseq critical section goes on at the
 * section's abort handler: that is where the kernel sends it when it
 * next returns to user space, and where it would go in a restored copy.
 * Its registers are fixed so at once, while the section is still
 * written in its struct rseq: the first syscall run inside it returns to
 * user space outside the section, and the kernel then forgets the
 * section (clears rseq_cs). A section that asks not to be restarted on
 * signals keeps its place, and its rseq_cs is kept for the image. */
static void rseq_fixup(struct victim *v)
{
	struct rseq_config rc;
	uint64_t cs_addr;
	struct {
		uint32_t version, flags;
		uint64_t start_ip, post_commit_offset, abort_ip;
	} cs;

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, v->pid, sizeof(rc), &rc) < 0 || !rc.rseq_abi_pointer)
		return;	/* no rseq registered */
	/* struct rseq: u32 cpu_id_start, u32 cpu_id, u64 rseq_cs, ... */
	if (!peek(v, rc.rseq_abi_pointer + 8, &cs_addr, sizeof(cs_addr)) || !cs_addr ||
	    !peek(v, cs_addr, &cs, sizeof(cs)))
		return;
	if (v->regs.rip - cs.start_ip >= cs.post_commit_offset)
		return;
	if (cs.flags & RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL_) {
		v->rseq_cs = cs_addr;
		return;
	}
	pr_info("pid %d: in an rseq critical section, goes on at its abort handler %#llx",
		v->pid, (unsigned long long)cs.abort_ip);
	v->regs.rip = cs.abort_ip;
}

static int read_state(struct victim *v)
{
	if (ptrace(PTRACE_GETREGS, v->pid, NULL, &v->regs) < 0) {
		pr_perror("pid %d: can't read registers", v->pid);
		return -1;
	}
	rseq_fixup(v);
	if (ptrace(PTRACE_GETSIGMASK, v->pid, sizeof(v->sigmask), &v->sigmask) < 0) {
		pr_perror("pid %d: can't read blocked signal mask", v->pid);
		return -1;
	}
	return 0;
}

/* A signal met while we wait for a stop of ours (the task at a signal
 * delivery stop): the first one is kept, to be put back when we let go. */
static void keep_signal(struct victim *v, int sig)
{
	if (sig == SIGCONT && v->group_stop_sig)
		;	/* the SIGCONT we sent to wake a stopped task: drop it */
	else if (!v->has_pending && ptrace(PTRACE_GETSIGINFO, v->pid, NULL, &v->pending) == 0)
		v->has_pending = true;
	else
		pr_warn("pid %d: signal %d arrived while stopped and is dropped", v->pid, sig);
}

/* How long a seize waits for the interrupt stop (CRIU's --timeout). */
static unsigned stop_timeout_ms = 10 * 1000;

void infect_set_stop_timeout(unsigned seconds)
{
	stop_timeout_ms = (seconds ? seconds : 10) * 1000;
}

static long elapsed_us(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000L + (t.tv_nsec - t0->tv_nsec) / 1000;
}

/* What /proc says a task that won't stop is doing: its state letter and
 * the kernel function it sleeps in ("?" if unknown). */
static char blocked_state(pid_t pid, char *where, size_t len)
{
	char path[64], buf[512];
	char state = '?';
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (f) {
		char *p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		if (p && p[1] == ' ')
			state = p[2];
		fclose(f);
	}
	snprintf(where, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
	if ((f = fopen(path, "re"))) {
		if (fgets(buf, sizeof(buf), f) && buf[0] && strcmp(buf, "0"))
			snprintf(where, len, "%.*s", (int)len - 1, buf);
		fclose(f);
	}
	return state;
}

/* A vfork() parent sleeps in kernel_clone, killable but deaf to a ptrace
 * interrupt, until its child execs or exits. That is a moment in a shell
 * or Python starting a program (we seize parents first, so the child runs
 * on to its exec); a child that never gets there (stopped, or waiting for
 * something) keeps the parent there for good: given VFORK_GRACE_US, then
 * refused. Anything else that sleeps uninterruptibly gets the deadline.
 * 0: wait on; -1: given up (reported). */
#define VFORK_GRACE_US (2 * 1000 * 1000L)

/* The state of a vfork() parent's child (its newest), or 0: one that
 * waits for the CPU ('R') or is inside its exec ('D') is on its way. */
static char vfork_child_state(pid_t pid)
{
	char path[64], buf[4096], where[8];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	char *last = NULL, *tok, *save = NULL;
	if (fgets(buf, sizeof(buf), f))
		for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
			last = tok;
	fclose(f);
	return last ? blocked_state(atoi(last), where, sizeof(where)) : 0;
}

static int refuse_unstoppable(pid_t pid, long waited_us)
{
	char where[64];
	char state = blocked_state(pid, where, sizeof(where));
	bool vfork = state == 'D' && !strcmp(where, "kernel_clone");
	long limit = stop_timeout_ms * 1000L;

	/* a busy machine may keep a child from its exec for seconds: it is
	 * given the whole timeout while it runs or execs */
	if (vfork && waited_us < limit && strchr("RD", vfork_child_state(pid) ?: 'x'))
		return 0;
	if (vfork && waited_us >= (VFORK_GRACE_US < limit ? VFORK_GRACE_US : limit)) {
		pr_err("pid %d is inside vfork(), waiting for its child to exec or exit, and its child did not "
		       "in %ld ms; a tree can't be dumped then (dump again once the child has run exec)", pid,
		       waited_us / 1000);
		return -1;
	}
	if (waited_us < limit)
		return 0;
	pr_err("pid %d did not stop within %u s (state %c, in %s); given up on it "
	       "(--timeout sets the wait)", pid, stop_timeout_ms / 1000, state, where);
	return -1;
}

/* waitpid for a task just interrupted, bounded: a task asleep in the
 * kernel where an interrupt can't reach it would otherwise hang the dump.
 * We sleep in waitpid until the stop comes, woken every WAIT_TICK_US
 * (util/tick.h) to see whether to give up. (It polled before, first by
 * yielding: a core kept busy, which on a loaded machine was taken from
 * the task that had to run to stop.) Without a tick, it polls with
 * sleeps growing to 5 ms. Same returns as wait_any. */
#define WAIT_TICK_US (5 * 1000L)

static int wait_any_bounded(pid_t pid, int *status)
{
	struct timespec t0, nap = { 0, 20 * 1000 };
	struct tick tick;
	bool ticking = tick_start(&tick, WAIT_TICK_US) == 0;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int round = 0;; round++) {
		pid_t r = waitpid(pid, status, __WALL | (ticking ? 0 : WNOHANG));
		if (r == pid) {
			ret = WIFSTOPPED(*status) ? 0 : -2;
			break;
		}
		if (r < 0 && errno != EINTR) {
			pr_perror("pid %d: waitpid failed", pid);
			ret = -1;
			break;
		}
		if ((ticking || round % 16 == 0) && refuse_unstoppable(pid, elapsed_us(&t0)) < 0) {
			errno = ETIMEDOUT;
			ret = -1;
			break;
		}
		if (ticking)
			continue;
		nanosleep(&nap, NULL);
		if (nap.tv_nsec < 5 * 1000 * 1000)
			nap.tv_nsec *= 2;
	}
	if (ticking)
		tick_stop(&tick);
	return ret;
}

/* Waits for the PTRACE_EVENT_STOP an interrupt brings. A signal met on the
 * way is kept (the first one) to be put back when we let go. A task that
 * exits while being seized is gone, as if PTRACE_SEIZE had found none
 * (errno ESRCH, not reported: the caller knows whether that matters). */
static int wait_event_stop(struct victim *v, bool seizing)
{
	int status, ret;
	for (;;) {
		ret = seizing ? wait_any_bounded(v->pid, &status) : wait_any(v->pid, &status);
		if (ret == -2 && seizing) {
			pr_debug("pid %d: exited while being seized", v->pid);
			errno = ESRCH;
			return -1;
		}
		if (ret == -2)
			report_exit(v->pid, status);
		if (ret < 0)
			return -1;
		if (status >> 16 == PTRACE_EVENT_STOP)
			break;
		keep_signal(v, WSTOPSIG(status));
		if (ptrace(PTRACE_CONT, v->pid, NULL, 0) < 0) {
			pr_perror("pid %d: can't continue to the interrupt stop", v->pid);
			return -1;
		}
	}
	v->stop_status = status;
	return 0;
}

int infect_seize(struct victim *v, pid_t pid)
{
	memset(v, 0, sizeof(*v));
	v->pid = pid;
	/* TRACESYSGOOD: a tracer that dies while the task heads for a syscall
	 * stop makes the kernel send it the stop's code as a signal; SIGTRAP
	 * would kill it, SIGTRAP|0x80 is no signal and is dropped. */
	if (ptrace(PTRACE_SEIZE, pid, NULL, PTRACE_O_TRACESYSGOOD) < 0) {
		if (errno == ESRCH)	/* gone: the caller knows whether that matters */
			pr_debug("pid %d: no such process", pid);
		else
			pr_perror("pid %d: can't seize with ptrace", pid);
		return -1;
	}
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0) {
		int err = errno;
		if (err != ESRCH)
			pr_perror("pid %d: can't interrupt", pid);
		ptrace(PTRACE_DETACH, pid, NULL, 0);
		errno = err;
		return -1;
	}
	return infect_seize_interrupted(v, pid);
}

int infect_seize_interrupted(struct victim *v, pid_t pid)
{
	memset(v, 0, sizeof(*v));
	v->pid = pid;
	v->attached = true;
	v->options = PTRACE_O_TRACESYSGOOD;	/* kept by infect_set_options callers */
	if (wait_event_stop(v, true) < 0)
		goto detach;
	/* An interrupt stop reports SIGTRAP; a task in group stop reports
	 * the signal that stopped it, and goes back to it when we let go. */
	if (WSTOPSIG(v->stop_status) != SIGTRAP)
		v->group_stop_sig = WSTOPSIG(v->stop_status);
	if (read_state(v) < 0)
		goto detach;
	return 0;
detach:;
	int err = errno;
	ptrace(PTRACE_DETACH, pid, NULL, 0);
	if (v->has_pending)
		syscall(SYS_tgkill, pid, pid, v->pending.si_signo);
	errno = err;
	return -1;
}

int infect_set_options(struct victim *v, unsigned long options)
{
	if (ptrace(PTRACE_SETOPTIONS, v->pid, NULL, options) < 0)
		return -1;
	v->options = options;
	return 0;
}

int infect_unstop(struct victim *th, int nr, pid_t pid)
{
	kill(pid, SIGCONT);
	for (int i = 0; i < nr; i++) {
		if (ptrace(PTRACE_INTERRUPT, th[i].pid, NULL, NULL) < 0 ||
		    ptrace(PTRACE_CONT, th[i].pid, NULL, 0) < 0) {
			pr_perror("pid %d: can't wake stopped thread %d", pid, th[i].pid);
			return -1;
		}
		if (wait_event_stop(&th[i], false) < 0 || read_state(&th[i]) < 0)
			return -1;
	}
	return 0;
}

/* From any ptrace stop into a plain interrupt stop, where a tracer's death
 * lets the task go on as its registers say. */
static int to_interrupt_stop(struct victim *v)
{
	if (ptrace(PTRACE_INTERRUPT, v->pid, NULL, NULL) < 0 ||
	    ptrace(PTRACE_CONT, v->pid, NULL, 0) < 0) {
		pr_perror("pid %d: can't move to a quiet stop", v->pid);
		return -1;
	}
	return wait_event_stop(v, false);
}

/* Registers and mask back, then into an interrupt stop. */
static int park_thread(struct victim *v)
{
	if (ptrace(PTRACE_SETREGS, v->pid, NULL, &v->regs) < 0) {
		pr_perror("pid %d: can't restore registers", v->pid);
		return -1;
	}
	if (v->sigmask_changed &&
	    ptrace(PTRACE_SETSIGMASK, v->pid, sizeof(v->sigmask), &v->sigmask) < 0) {
		pr_perror("pid %d: can't restore blocked mask", v->pid);
		return -1;
	}
	v->sigmask_changed = false;
	v->moved = false;
	return to_interrupt_stop(v);
}

int infect_attach_new_thread(struct victim *v, pid_t tid)
{
	int status;
	memset(v, 0, sizeof(*v));
	v->pid = tid;
	v->attached = true;
	if (wait_stop(tid, &status) < 0)
		return -1;
	v->stop_status = status;
	return read_state(v);
}

int infect_block_signals(struct victim *v)
{
	uint64_t all = ~0ull;
	if (ptrace(PTRACE_SETSIGMASK, v->pid, sizeof(all), &all) < 0) {
		pr_perror("pid %d: can't block signals", v->pid);
		return -1;
	}
	v->sigmask_changed = true;
	return 0;
}

/* A plain call, from the vdso's syscall instruction by a single step. A
 * careful one blocks every signal first and parks the task after. */
static int step_call(struct victim *v, long *ret, struct user_regs_struct *r)
{
	long nr = arch_call_nr(r);
	int status;

	if (v->careful && infect_block_signals(v) < 0)
		return -1;
	if (ptrace(PTRACE_SETREGS, v->pid, NULL, r) < 0) {
		pr_perror("pid %d: can't set registers for syscall %ld", v->pid, nr);
		return -1;
	}
	v->moved = true;
	if (v->careful)
		fault_point("set-regs");
	if (ptrace(PTRACE_SINGLESTEP, v->pid, NULL, 0) < 0) {
		pr_perror("pid %d: can't step over syscall %ld", v->pid, nr);
		return -1;
	}
	if (wait_stop(v->pid, &status) < 0)
		return -1;
	/* A clone we injected stops once more inside the syscall; a job
	 * control notification (a SIGCONT queued) traps before the step. */
	while (status >> 16 == PTRACE_EVENT_CLONE || status >> 16 == PTRACE_EVENT_STOP) {
		unsigned long child;
		if (status >> 16 == PTRACE_EVENT_CLONE) {
			if (ptrace(PTRACE_GETEVENTMSG, v->pid, NULL, &child) < 0)
				return -1;
			v->last_clone = child;
		}
		if (ptrace(PTRACE_SINGLESTEP, v->pid, NULL, 0) < 0 || wait_stop(v->pid, &status) < 0) {
			pr_perror("pid %d: can't step through injected syscall %ld", v->pid, nr);
			return -1;
		}
	}
	if (WSTOPSIG(status) != SIGTRAP) {
		pr_err("pid %d: unexpected stop (signal %d) in injected syscall %ld", v->pid,
		       WSTOPSIG(status), nr);
		return -1;
	}
	if (ptrace(PTRACE_GETREGS, v->pid, NULL, r) < 0) {
		pr_perror("pid %d: can't read result of syscall %ld", v->pid, nr);
		return -1;
	}
	*ret = arch_call_result(r);
	/* Careful: back to the task's own registers and mask in a quiet stop
	 * at once, so that stasis killed between two calls leaves it whole. */
	return v->careful ? park_thread(v) : 0;
}

/* The vdso is not writable: /proc/PID/mem writes into it all the same (into
 * a private copy of the page, as a debugger's breakpoints do), unless the
 * kernel forbids such forced writes; PTRACE_POKEDATA always may. */
static int write_text(struct victim *v, uint64_t addr, const uint8_t *buf, size_t len)
{
	char path[64];
	if (v->memfd <= 0) {
		snprintf(path, sizeof(path), "/proc/%d/mem", v->pid);
		v->memfd = open(path, O_WRONLY | O_CLOEXEC);
		if (v->memfd < 0)
			v->memfd = 0;
	}
	if (v->memfd > 0 && pwrite(v->memfd, buf, len, addr) == (ssize_t)len)
		return 0;
	for (size_t i = 0; i < len; i += sizeof(long)) {
		long word;
		memcpy(&word, buf + i, sizeof(word));	/* len is a multiple of 8 */
		if (ptrace(PTRACE_POKEDATA, v->pid, addr + i, word) < 0) {
			pr_perror("pid %d: can't write the trampoline at %#lx", v->pid, (unsigned long)addr);
			return -1;
		}
	}
	return 0;
}

#define TRAMP_MAX 512

/* A thread's stay in the trampoline starts: the thread that was in it
 * leaves first, then the way back gets this one's state. */
static int tramp_prepare(struct victim *v)
{
	struct victim *l = v->leader;
	struct way_home h = { .regs = &v->regs, .sigmask = v->sigmask };
	uint8_t buf[TRAMP_MAX];

	if (l->tramp_user && l->tramp_user != v && infect_park(l->tramp_user) < 0)
		return -1;
	resume_point(&v->regs, &h.ip, &h.ax);
	tramp_fill(buf, &h);
	/* through the main thread's /proc/PID/mem: one open per process */
	if (write_text(l, v->tramp, buf, tramp_size()) < 0)
		return -1;
	l->tramp_written = true;
	l->tramp_user = v;
	fault_point("way-back-written");
	return 0;
}

/* Runs the task on to its next syscall stop. Group stop notifications on
 * the way are passed over; a signal that can't be blocked (SIGSTOP) is
 * kept for when we let go, as while seizing. */
static int to_syscall_stop(struct victim *v, const char *point)
{
	int status;
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, v->pid, NULL, 0) < 0) {
			pr_perror("pid %d: can't run the injected syscall", v->pid);
			return -1;
		}
		fault_point(point);
		if (wait_stop(v->pid, &status) < 0)
			return -1;
		if (WSTOPSIG(status) == (SIGTRAP | 0x80))
			return 0;
		if (status >> 16 == 0)
			keep_signal(v, WSTOPSIG(status));
	}
}

/* A careful call from the trampoline: from the moment its registers point
 * there, a tracer's death costs the task nothing (x86.c). Between calls
 * the thread stays at the syscall-exit stop, inside the trampoline, with
 * every signal blocked (they stay queued). */
static int tramp_call(struct victim *v, long *ret, struct user_regs_struct *r)
{
	long nr = arch_call_nr(r);
	bool entering = !v->in_tramp;

	if (entering && tramp_prepare(v) < 0)
		return -1;
	if (ptrace(PTRACE_SETREGS, v->pid, NULL, r) < 0) {
		pr_perror("pid %d: can't set registers for syscall %ld", v->pid, nr);
		return -1;
	}
	v->in_tramp = true;
	fault_point("set-regs");
	/* only now: the way back puts the mask back too */
	if (entering) {
		if (infect_block_signals(v) < 0)
			return -1;
		fault_point("mask-blocked");
	}
	if (to_syscall_stop(v, "resumed") < 0)
		return -1;
	fault_point("syscall-entry");
	if (to_syscall_stop(v, "resumed-exit") < 0)
		return -1;
	if (ptrace(PTRACE_GETREGS, v->pid, NULL, r) < 0) {
		pr_perror("pid %d: can't read result of syscall %ld", v->pid, nr);
		return -1;
	}
	if (arch_ip(r) != v->tramp + ARCH_SYSCALL_LEN) {
		pr_err("pid %d: injected syscall %ld stopped at %#lx, not in the trampoline", v->pid, nr,
		       (unsigned long)arch_ip(r));
		return -1;
	}
	*ret = arch_call_result(r);
	fault_point("syscall-exit");
	return 0;
}

/* Out of the trampoline, into an interrupt stop with its own state. The
 * mask goes back first: until the registers follow, a tracer's death
 * still sends the task through the way back, which sets the same mask. */
static int tramp_leave(struct victim *v)
{
	if (ptrace(PTRACE_SETSIGMASK, v->pid, sizeof(v->sigmask), &v->sigmask) < 0) {
		pr_perror("pid %d: can't restore blocked mask", v->pid);
		return -1;
	}
	v->sigmask_changed = false;
	fault_point("park-mask");
	if (ptrace(PTRACE_SETREGS, v->pid, NULL, &v->regs) < 0) {
		pr_perror("pid %d: can't restore registers", v->pid);
		return -1;
	}
	v->in_tramp = false;
	if (v->leader->tramp_user == v)
		v->leader->tramp_user = NULL;
	/* At its syscall-exit stop with its own registers: let go now, the
	 * kernel restarts an interrupted syscall of its as usual. */
	fault_point("park-regs");
	return to_interrupt_stop(v);
}

int infect_park(struct victim *v)
{
	if (v->in_tramp)
		return tramp_leave(v);
	return v->moved ? park_thread(v) : 0;
}

int infect_syscall(struct victim *v, long *ret, long nr, const long args[6])
{
	struct user_regs_struct r = v->regs;
	bool tramp = v->careful && v->tramp;

	arch_set_call(&r, tramp ? v->tramp : v->syscall_ip, nr, args);
	return tramp ? tramp_call(v, ret, &r) : step_call(v, ret, &r);
}

int infect_run_batch(struct victim *v, uint64_t code, size_t code_len, uint64_t table, long n)
{
	struct user_regs_struct r = v->regs;
	int status;

	arch_set_batch(&r, code, table, n);
	if (ptrace(PTRACE_SETREGS, v->pid, NULL, &r) < 0) {
		pr_perror("pid %d: can't set registers for a batch of %ld syscalls", v->pid, n);
		return -1;
	}
	v->moved = true;
	for (;;) {
		if (ptrace(PTRACE_CONT, v->pid, NULL, 0) < 0) {
			pr_perror("pid %d: can't run a batch of %ld syscalls", v->pid, n);
			return -1;
		}
		if (wait_stop(v->pid, &status) < 0)
			return -1;
		if (status >> 16 == 0 && WSTOPSIG(status) == SIGTRAP)
			break;
		/* a job control notification passes; a signal is kept, as while seizing */
		if (status >> 16 == 0)
			keep_signal(v, WSTOPSIG(status));
	}
	if (ptrace(PTRACE_GETREGS, v->pid, NULL, &r) < 0) {
		pr_perror("pid %d: can't read the end of a batch of syscalls", v->pid);
		return -1;
	}
	if (arch_ip(&r) != code + code_len) {
		pr_err("pid %d: a batch of syscalls stopped at %#lx, not at its end", v->pid,
		       (unsigned long)arch_ip(&r));
		return -1;
	}
	return 0;
}

/* Where the trampoline goes in this task's vdso: at the same offset as in
 * ours (same kernel), over zeros, or over the trampoline a killed dump
 * left there. 0 if there is no room. */
static uint64_t tramp_place(struct victim *v, uint64_t vdso_start)
{
	long off = tramp_vdso_offset();
	size_t n = tramp_size();
	uint8_t buf[TRAMP_MAX], ours[TRAMP_MAX];
	bool zero = true;

	if (off < 0 || n > TRAMP_MAX || !peek(v, vdso_start + off, buf, n)) {
		pr_warn("pid %d: no room for a trampoline in the vdso: a dump killed during an injected "
			"syscall may harm the task", v->pid);
		return 0;
	}
	struct way_home h = { .regs = &v->regs };
	tramp_fill(ours, &h);
	for (size_t i = 0; i < n; i++)
		zero = zero && !buf[i];
	if (!zero && memcmp(buf, ours, tramp_code_size())) {
		pr_warn("pid %d: the vdso's padding is not empty: no trampoline, a dump killed during an "
			"injected syscall may harm the task", v->pid);
		return 0;
	}
	return vdso_start + off;
}

int infect_careful(struct victim *th, int nr, uint64_t vdso_start)
{
	uint64_t tramp = tramp_place(&th[0], vdso_start);
	for (int i = 0; i < nr; i++) {
		if (infect_set_vdso(&th[i], vdso_start) < 0)
			return -1;
		th[i].careful = true;
		th[i].tramp = tramp;
		th[i].leader = &th[0];
	}
	return 0;
}

int infect_careful_at(struct victim *th, int nr, uint64_t syscall_ip)
{
	for (int i = 0; i < nr; i++) {
		th[i].syscall_ip = syscall_ip;
		th[i].careful = true;
		th[i].tramp = 0;
		th[i].leader = &th[0];
	}
	return 0;
}

int infect_careful_end(struct victim *th, int nr)
{
	static const uint8_t zeros[TRAMP_MAX];
	int ret = 0;

	for (int i = 0; i < nr; i++)
		if (infect_park(&th[i]) < 0)
			ret = -1;
	/* no thread is in it any more: the padding goes back to zeros */
	if (!ret && th[0].tramp_written) {
		if (write_text(&th[0], th[0].tramp, zeros, tramp_size()) < 0)
			return -1;
		th[0].tramp_written = false;
	}
	return ret;
}

int infect_read(struct victim *v, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t n = process_vm_readv(v->pid, &local, 1, &remote, 1, 0);
	if (n != (ssize_t)len) {
		pr_perror("pid %d: can't read %zu bytes at %#lx", v->pid, len, (unsigned long)addr);
		return -1;
	}
	return 0;
}

int infect_write(struct victim *v, uint64_t addr, const void *buf, size_t len)
{
	char path[64];
	/* opened once per task: a path walk per write adds up */
	if (v->memfd <= 0) {
		snprintf(path, sizeof(path), "/proc/%d/mem", v->pid);
		v->memfd = open(path, O_WRONLY | O_CLOEXEC);
		if (v->memfd < 0) {
			pr_perror("pid %d: can't open %s", v->pid, path);
			v->memfd = 0;
			return -1;
		}
	}
	ssize_t n = pwrite(v->memfd, buf, len, addr);
	if (n != (ssize_t)len) {
		pr_perror("pid %d: can't write %zu bytes at %#lx", v->pid, len, (unsigned long)addr);
		return -1;
	}
	return 0;
}

void infect_release(struct victim *v)
{
	if (v->memfd > 0)
		close(v->memfd);
	v->memfd = 0;
}

int infect_detach(struct victim *v)
{
	if (v->sigmask_changed &&
	    ptrace(PTRACE_SETSIGMASK, v->pid, sizeof(v->sigmask), &v->sigmask) < 0) {
		pr_perror("pid %d: can't restore blocked mask", v->pid);
		return -1;
	}
	v->sigmask_changed = false;
	v->attached = false;
	infect_release(v);
	if (ptrace(PTRACE_DETACH, v->pid, NULL, 0) < 0) {
		pr_perror("pid %d: can't detach", v->pid);
		return -1;
	}
	return 0;
}

int infect_set_own_state(struct victim *v, const struct user_regs_struct *regs, uint64_t mask)
{
	if (ptrace(PTRACE_SETREGS, v->pid, NULL, regs) < 0) {
		pr_perror("thread %d: can't set its registers", v->pid);
		return -1;
	}
	if (ptrace(PTRACE_SETSIGMASK, v->pid, sizeof(mask), &mask) < 0) {
		pr_perror("thread %d: can't set its blocked signals", v->pid);
		return -1;
	}
	v->sigmask_changed = false;
	v->moved = false;
	return 0;
}

int infect_cure(struct victim *v)
{
	if (v->in_tramp && tramp_leave(v) < 0)
		return -1;
	if (ptrace(PTRACE_SETREGS, v->pid, NULL, &v->regs) < 0) {
		pr_perror("pid %d: can't restore registers", v->pid);
		return -1;
	}
	if (infect_detach(v) < 0)
		return -1;
	/* Put back the signal we caught in delivery while seizing (its
	 * siginfo becomes a plain kill's, as a kernel signal can't be forged). */
	if (v->has_pending)
		syscall(SYS_tgkill, v->pid, v->pid, v->pending.si_signo);
	return 0;
}
