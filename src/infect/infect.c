#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infect/infect.h"
#include "util/log.h"

#ifndef PTRACE_GETSIGMASK
#define PTRACE_GETSIGMASK 0x420a
#define PTRACE_SETSIGMASK 0x420b
#endif
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

long infect_vdso_syscall_offset(void)
{
	/* Threads may race here: each computes the same value. */
	static volatile long cached = -2;
	long offset = -1;

	if (cached != -2)
		return cached;
	const uint8_t *vdso = (const uint8_t *)getauxval(AT_SYSINFO_EHDR);
	/* The x86_64 vdso is two pages; its clock fallbacks hold `syscall`. */
	for (long i = 0; vdso && i + 1 < 8192; i++)
		if (vdso[i] == 0x0f && vdso[i + 1] == 0x05) {
			offset = i;
			break;
		}
	cached = offset;
	return offset;
}

int infect_set_vdso(struct victim *v, uint64_t vdso_start)
{
	long off = infect_vdso_syscall_offset();
	uint8_t insn[2];

	if (off < 0) {
		pr_err("no syscall instruction found in the vdso");
		return -1;
	}
	v->syscall_ip = vdso_start + off;
	if (infect_read(v, v->syscall_ip, insn, 2) < 0)
		return -1;
	if (insn[0] != 0x0f || insn[1] != 0x05) {
		pr_err("pid %d: vdso at %#lx differs from ours (no syscall instruction at +%#lx)",
		       v->pid, (unsigned long)vdso_start, off);
		return -1;
	}
	return 0;
}

static int wait_stop(pid_t pid, int *status)
{
	for (;;) {
		if (waitpid(pid, status, __WALL) == pid)
			break;
		if (errno != EINTR) {
			pr_perror("pid %d: waitpid failed", pid);
			return -1;
		}
	}
	if (!WIFSTOPPED(*status)) {
		pr_err("pid %d: exited while stopped by stasis (status %#x)", pid, *status);
		return -1;
	}
	return 0;
}

static int read_state(struct victim *v)
{
	if (ptrace(PTRACE_GETREGS, v->pid, NULL, &v->regs) < 0) {
		pr_perror("pid %d: can't read registers", v->pid);
		return -1;
	}
	if (ptrace(PTRACE_GETSIGMASK, v->pid, sizeof(v->sigmask), &v->sigmask) < 0) {
		pr_perror("pid %d: can't read blocked signal mask", v->pid);
		return -1;
	}
	return 0;
}

/* Waits for the PTRACE_EVENT_STOP an interrupt brings. A signal met on the
 * way is kept (the first one) to be put back when we let go. */
static int wait_event_stop(struct victim *v)
{
	int status;
	for (;;) {
		if (wait_stop(v->pid, &status) < 0)
			return -1;
		if (status >> 16 == PTRACE_EVENT_STOP)
			break;
		int sig = WSTOPSIG(status);
		if (sig == SIGCONT && v->group_stop_sig)
			;	/* the SIGCONT we sent to wake a stopped task: drop it */
		else if (!v->has_pending && ptrace(PTRACE_GETSIGINFO, v->pid, NULL, &v->pending) == 0)
			v->has_pending = true;
		else
			pr_warn("pid %d: signal %d arrived while stopped and is dropped", v->pid, sig);
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
	if (ptrace(PTRACE_SEIZE, pid, NULL, 0) < 0) {
		if (errno == ESRCH)	/* gone: the caller knows whether that matters */
			pr_debug("pid %d: no such process", pid);
		else
			pr_perror("pid %d: can't seize with ptrace", pid);
		return -1;
	}
	v->attached = true;
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0) {
		pr_perror("pid %d: can't interrupt", pid);
		goto detach;
	}
	if (wait_event_stop(v) < 0)
		goto detach;
	/* An interrupt stop reports SIGTRAP; a task in group stop reports
	 * the signal that stopped it, and goes back to it when we let go. */
	if (WSTOPSIG(v->stop_status) != SIGTRAP)
		v->group_stop_sig = WSTOPSIG(v->stop_status);
	if (read_state(v) < 0)
		goto detach;
	return 0;
detach:
	ptrace(PTRACE_DETACH, pid, NULL, 0);
	if (v->has_pending)
		syscall(SYS_tgkill, pid, pid, v->pending.si_signo);
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
		if (wait_event_stop(&th[i]) < 0 || read_state(&th[i]) < 0)
			return -1;
	}
	return 0;
}

int infect_park(struct victim *v)
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
	if (ptrace(PTRACE_INTERRUPT, v->pid, NULL, NULL) < 0 ||
	    ptrace(PTRACE_CONT, v->pid, NULL, 0) < 0) {
		pr_perror("pid %d: can't move to a quiet stop", v->pid);
		return -1;
	}
	return wait_event_stop(v);
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

int infect_syscall(struct victim *v, long *ret, long nr, long a1, long a2, long a3,
		   long a4, long a5, long a6)
{
	struct user_regs_struct r = v->regs;
	int status;

	if (v->careful && infect_block_signals(v) < 0)
		return -1;
	r.rax = nr;
	r.orig_rax = -1;	/* not in a syscall: no restart on our way out */
	r.rdi = a1;
	r.rsi = a2;
	r.rdx = a3;
	r.r10 = a4;
	r.r8 = a5;
	r.r9 = a6;
	r.rip = v->syscall_ip;
	if (ptrace(PTRACE_SETREGS, v->pid, NULL, &r) < 0) {
		pr_perror("pid %d: can't set registers for syscall %ld", v->pid, nr);
		return -1;
	}
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
	if (ptrace(PTRACE_GETREGS, v->pid, NULL, &r) < 0) {
		pr_perror("pid %d: can't read result of syscall %ld", v->pid, nr);
		return -1;
	}
	*ret = r.rax;
	/* Careful: back to the task's own registers and mask in a quiet stop
	 * at once, so that stasis killed between two calls leaves it whole. */
	return v->careful ? infect_park(v) : 0;
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

int infect_cure(struct victim *v)
{
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

int infect_get_xsave(pid_t tid, uint8_t *buf, size_t *len)
{
	struct iovec iov = { buf, *len };
	if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) < 0) {
		pr_perror("pid %d: can't read xsave state", tid);
		return -1;
	}
	*len = iov.iov_len;
	return 0;
}

int infect_set_xsave(pid_t tid, const uint8_t *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	if (ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov) < 0) {
		pr_perror("pid %d: can't set xsave state", tid);
		return -1;
	}
	return 0;
}
