/* Running code inside a stopped task through ptrace, one thread (a
 * victim) at a time: what the injection context (inject.h), through which
 * dump and restore reach a task, is built on.
 *
 * A syscall is injected by pointing the task's ip at a `syscall`
 * instruction inside its vdso and single-stepping over it. Nothing is ever
 * written into the task's own code; a batch of calls (restore) runs code
 * of ours from a mapping of ours, which goes at the end.
 *
 * Careful calls (dump) must leave the task unharmed if stasis is killed at
 * any moment: they run from a trampoline in the unused padding of the
 * task's vdso whose way back restores everything (x86.c), and are stepped
 * with PTRACE_SYSCALL (a tracer that dies mid single-step leaves the trap
 * flag set, and the task dies of the SIGTRAP). */
#ifndef STASIS_INFECT_H
#define STASIS_INFECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>
#include <signal.h>

struct victim {
	pid_t pid;
	struct user_regs_struct regs;	/* as found when seized (rseq: see rseq_fixup) */
	uint64_t rseq_cs;		/* rseq_cs of a section it stays in, or 0 */
	uint64_t sigmask;		/* blocked mask as found */
	bool sigmask_changed;
	uint64_t syscall_ip;		/* a `syscall` instruction in its vdso */
	int stop_status;		/* wait status of the seizing stop */
	siginfo_t pending;		/* signal caught in delivery while seizing */
	bool has_pending;
	int group_stop_sig;		/* it was stopped by this signal, or 0 */
	pid_t last_clone;		/* tid of what an injected clone made */
	bool attached;
	int memfd;			/* /proc/PID/mem for writes, 0 if not open */
	/* Careful mode (dump): if stasis dies at any moment, the task runs
	 * on unharmed. Between calls a thread waits at the syscall-exit stop
	 * of its last one, inside the trampoline (tramp, in_tramp), whose way
	 * back holds its registers; infect_park moves it back out. Without
	 * room for a trampoline each call ends with a park instead. */
	bool careful;
	unsigned long options;		/* PTRACE_O_* set by infect_set_options */
	uint64_t tramp;			/* trampoline in its vdso, 0: none */
	bool in_tramp;			/* between calls in it, signals blocked */
	bool moved;			/* registers not its own (plain careful call) */
	/* The way back holds one thread's registers: one thread of a process
	 * at a time is in the trampoline; the main thread's victim knows which. */
	struct victim *leader;
	struct victim *tramp_user;	/* leader only */
	bool tramp_written;		/* leader only: to wipe at the end */
};

/* PTRACE_SEIZE + PTRACE_INTERRUPT and wait for the stop. On failure the
 * task is left untouched (detached). A task that is gone, or exits while
 * being seized, fails with errno ESRCH and is not reported: the caller
 * knows whether that matters. */
int infect_seize(struct victim *v, pid_t pid);
/* The same for a task already seized (PTRACE_O_TRACESYSGOOD) and
 * interrupted by us, whose stop may not have come yet (a frozen cgroup's
 * task, task/freezer.c): waits for it. */
int infect_seize_interrupted(struct victim *v, pid_t pid);
/* How long infect_seize waits for a task to stop (0: CRIU's default, 10 s);
 * a task that won't, or that sits in vfork() (never will), fails the seize. */
void infect_set_stop_timeout(unsigned seconds);
/* Sets the task's ptrace options to `options` (the whole set: add to
 * v->options to keep what is there). -1 with errno, not reported: the
 * caller knows what the option was for. */
int infect_set_options(struct victim *v, unsigned long options);
/* A process in group stop (SIGSTOP & co.) can't run injected syscalls:
 * wake it with SIGCONT into plain interrupt stops (the caller stops it
 * again when it lets go). */
int infect_unstop(struct victim *th, int nr, pid_t pid);

/* A thread born of an injected clone, auto-attached (PTRACE_O_TRACECLONE). */
int infect_attach_new_thread(struct victim *v, pid_t tid);

/* Locate the syscall instruction in a vdso that starts at vdso_start. */
int infect_set_vdso(struct victim *v, uint64_t vdso_start);
/* Careful mode for the nr threads of one process (th[0] the main one),
 * whose vdso starts at vdso_start. */
int infect_careful(struct victim *th, int nr, uint64_t vdso_start);
/* Careful mode without a vdso (the task unmapped it): from a syscall
 * instruction of its own code at syscall_ip, with no trampoline (a
 * dumper killed during a call harms the task). */
int infect_careful_at(struct victim *th, int nr, uint64_t syscall_ip);
/* Every thread parked, and the trampoline wiped from the vdso. */
int infect_careful_end(struct victim *th, int nr);
/* Block every signal while we inject, so none is delivered in between. */
int infect_block_signals(struct victim *v);

/* Runs syscall nr with args inside the task. Returns the raw result (a
 * negative errno on failure) in *ret; the function itself returns -1 only
 * when ptrace failed (already reported). */
int infect_syscall(struct victim *v, long *ret, long nr, const long args[6]);
/* Not careful: runs the code at code (code_len bytes, arch_batch_code's,
 * copied into the task) over the n calls of the table at table, until
 * its breakpoint at the end. The results are in the table. -1 only when
 * ptrace failed or the task stopped elsewhere (reported). */
int infect_run_batch(struct victim *v, uint64_t code, size_t code_len, uint64_t table, long n);

/* Memory of the stopped task. Writes go through /proc/PID/mem, which
 * ignores page protections as a debugger's writes do. */
int infect_read(struct victim *v, uint64_t addr, void *buf, size_t len);
int infect_write(struct victim *v, uint64_t addr, const void *buf, size_t len);

/* Registers and mask back as found, and the task moved from the trap of
 * our last injected syscall into a plain interrupt stop: if stasis dies
 * from here on, the kernel lets the task go on exactly as it was. A no-op
 * for a thread already there. */
int infect_park(struct victim *v);
/* Closes what infect opened for the task (detach does it too). */
void infect_release(struct victim *v);
/* Registers and mask back as found, then detach and let it run. */
int infect_cure(struct victim *v);
/* Detach with whatever registers are set now. */
int infect_detach(struct victim *v);
/* Restore: the registers and blocked mask the thread goes on with when
 * let go (infect_detach), its own from now on. */
int infect_set_own_state(struct victim *v, const struct user_regs_struct *regs, uint64_t mask);

/* The whole xsave area in standard (non-compacted) format (x86.c). */
int infect_get_xsave(pid_t tid, uint8_t *buf, size_t *len);
int infect_set_xsave(pid_t tid, const uint8_t *buf, size_t len);

/* The fault points of a careful call (util/fault.h), where the tests
 * kill a dump inside the windows they check: way-back-written (a thread's
 * stay in the trampoline starts), set-regs, mask-blocked (first call of a
 * stay), resumed and resumed-exit (on the way to the entry and exit
 * stops), syscall-entry, syscall-exit; of leaving the trampoline:
 * park-mask (mask back, registers not yet), park-regs; inject.c adds
 * scratch-taken. */

#endif
