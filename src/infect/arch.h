/* What infect.c and inject.c need from the architecture (x86.c): the
 * syscall instruction and the registers of a call, the code of a batch of
 * calls, and for careful calls the trampoline with its way back and where
 * it goes in the vdso. */
#ifndef STASIS_INFECT_ARCH_H
#define STASIS_INFECT_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

/* ---- one call ---- */

/* Length of the syscall instruction: the ip after it is the ip at it
 * plus this. */
#define ARCH_SYSCALL_LEN 2
/* Is there a syscall instruction at insn (ARCH_SYSCALL_LEN bytes)? */
bool arch_is_syscall(const uint8_t *insn);
/* Offset of a syscall instruction inside our own vdso (the task's is the
 * same kernel's), -1 if there is none. */
long arch_vdso_syscall_offset(void);

/* r set up for syscall nr with args from the instruction at ip; not in a
 * syscall, so nothing is restarted on the way out. */
void arch_set_call(struct user_regs_struct *r, uint64_t ip, long nr, const long args[6]);
long arch_call_nr(const struct user_regs_struct *r);
/* The result of the call r stopped after: a negative errno on failure. */
long arch_call_result(const struct user_regs_struct *r);
uint64_t arch_ip(const struct user_regs_struct *r);

/* Where a dump's scratch of len bytes goes on the stack of a thread with
 * registers r: below what the ABI lets the thread use, so nothing of its
 * lives there (x86_64: below the red zone). */
uint64_t arch_stack_scratch(const struct user_regs_struct *r, size_t len);

/* ---- a batch of calls ---- */

/* One call of a batch, as the batch code reads it from the task's memory
 * and writes its result back. */
struct arch_batch_call {
	int64_t nr;
	int64_t args[6];
	int64_t ret;
};
/* The code that runs a table of calls in order and then traps
 * (breakpoint): copied into the task, never run here. */
const uint8_t *arch_batch_code(size_t *len);
/* r set up to run the n calls of the table at table with the code at code. */
void arch_set_batch(struct user_regs_struct *r, uint64_t code, uint64_t table, long n);

/* ---- careful calls ---- */

/* The task's own state, as the way back puts it back. */
struct way_home {
	const struct user_regs_struct *regs;	/* as found when seized */
	uint64_t sigmask;			/* blocked mask as found */
	uint64_t ip;				/* where it goes on: restart and rseq applied */
	uint64_t ax;				/* rax there (a restarted syscall's number) */
};

/* Size of the trampoline with its way back, code and data. */
size_t tramp_size(void);
/* Length of the code part: a trampoline left by a killed dump has the
 * same code, and stale data after it. */
size_t tramp_code_size(void);
/* The trampoline for one thread, into buf (tramp_size() bytes). */
void tramp_fill(uint8_t *buf, const struct way_home *h);
/* The trampoline starts with its syscall instruction: the next
 * instruction, ARCH_SYSCALL_LEN bytes on, is the way back. */

/* Offset in the vdso where the trampoline fits into the zero padding
 * after the image, or -1 if it does not. */
long tramp_vdso_offset(void);

/* Where the task goes on from its stopped state when the kernel lets it go
 * with no handler to run: a syscall it was stopped in is restarted. */
void resume_point(const struct user_regs_struct *r, uint64_t *ip, uint64_t *ax);

#endif
