/* What infect.c needs from the architecture for careful calls (x86.c):
 * the trampoline with its way back, and where it goes in the vdso. */
#ifndef STASIS_INFECT_ARCH_H
#define STASIS_INFECT_ARCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

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
/* Offset, in the vdso, of the syscall instruction that starts the
 * trampoline: the next instruction is the way back. */
#define TRAMP_SYSCALL_LEN 2

/* Offset in the vdso where the trampoline fits into the zero padding
 * after the image, or -1 if it does not. */
long tramp_vdso_offset(void);

/* Where the task goes on from its stopped state when the kernel lets it go
 * with no handler to run: a syscall it was stopped in is restarted. */
void resume_point(const struct user_regs_struct *r, uint64_t *ip, uint64_t *ax);

#endif
