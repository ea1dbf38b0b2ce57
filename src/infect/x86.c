/* x86_64 side of injection: the registers of a call, the syscall
 * instruction in the vdso, the code of a batch, xsave state, and for
 * careful calls the trampoline and its way back.
 *
 * A careful call (dump) does not use the vdso's own `syscall` instruction:
 * that instruction is followed by vdso code, so a task the kernel lets go
 * there (stasis killed) would run on with our registers at a wrong ip.
 * Instead the task is pointed at a few bytes of our code, written into the
 * zero padding at the end of its vdso image (the image is padded to whole
 * pages; nothing maps, reads or runs those bytes):
 *
 *	syscall			the injected call
 *	way back:		its own flags, blocked mask and registers back,
 *				then a jump to where it was
 *
 * While stasis lives the way back never runs: ptrace stops the task right
 * after the syscall and stasis moves it back itself. If stasis dies at any
 * moment after pointing the task here, the task finishes the one injected
 * syscall and the way back leaves it exactly as it was found. It needs
 * nothing but its own stack pointer, which we never move: the flags go
 * through a slot below the red zone (dead memory by the ABI), so a signal
 * delivered on the way, blocked or not, finds a sane stack. The FPU and
 * vector state are never touched (the kernel keeps them across syscalls),
 * nor is the sigaltstack or the restart block, which rt_sigreturn would
 * reset. */
#include <elf.h>
#include <stdbool.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "infect/arch.h"
#include "infect/infect.h"
#include "util/log.h"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* ---- one call ---- */

bool arch_is_syscall(const uint8_t *insn)
{
	return insn[0] == 0x0f && insn[1] == 0x05;
}

long arch_vdso_syscall_offset(void)
{
	/* Threads may race here: each computes the same value. */
	static volatile long cached = -2;
	long offset = -1;

	if (cached != -2)
		return cached;
	const uint8_t *vdso = (const uint8_t *)getauxval(AT_SYSINFO_EHDR);
	/* The x86_64 vdso is two pages; its clock fallbacks hold `syscall`. */
	for (long i = 0; vdso && i + 1 < 8192; i++)
		if (arch_is_syscall(vdso + i)) {
			offset = i;
			break;
		}
	cached = offset;
	return offset;
}

void arch_set_call(struct user_regs_struct *r, uint64_t ip, long nr, const long args[6])
{
	r->rip = ip;
	r->rax = nr;
	r->orig_rax = -1;	/* not in a syscall: no restart on our way out */
	r->rdi = args[0];
	r->rsi = args[1];
	r->rdx = args[2];
	r->r10 = args[3];
	r->r8 = args[4];
	r->r9 = args[5];
}

long arch_call_nr(const struct user_regs_struct *r)
{
	return r->rax;
}

long arch_call_result(const struct user_regs_struct *r)
{
	return r->rax;
}

uint64_t arch_ip(const struct user_regs_struct *r)
{
	return r->rip;
}

uint64_t arch_stack_scratch(const struct user_regs_struct *r, size_t len)
{
	/* a signal frame may overwrite this at any moment: nothing lives there */
	return (r->rsp - 128 - len) & ~63ull;
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

/* ---- a batch of calls ---- */

/* rbx walks the table (struct arch_batch_call: nr, six arguments, result),
 * r12 counts the calls left; the breakpoint at the end hands the task back
 * to us. Both registers are the task's to lose: a batch runs only where
 * its registers are set from the image afterwards (restore). */
__asm__(".section .rodata\n\t"
	".globl infect_batch\n\t"
	".hidden infect_batch\n"
	"infect_batch:\n"
	"1:\n\t"
	"mov 0(%rbx), %rax\n\t"
	"mov 8(%rbx), %rdi\n\t"
	"mov 16(%rbx), %rsi\n\t"
	"mov 24(%rbx), %rdx\n\t"
	"mov 32(%rbx), %r10\n\t"
	"mov 40(%rbx), %r8\n\t"
	"mov 48(%rbx), %r9\n\t"
	"syscall\n\t"
	"mov %rax, 56(%rbx)\n\t"
	"add $64, %rbx\n\t"
	"dec %r12\n\t"
	"jnz 1b\n\t"
	"int3\n\t"
	".globl infect_batch_end\n\t"
	".hidden infect_batch_end\n"
	"infect_batch_end:\n\t"
	".previous\n");

extern const uint8_t infect_batch[], infect_batch_end[];

_Static_assert(sizeof(struct arch_batch_call) == 64, "the batch code's offsets");

const uint8_t *arch_batch_code(size_t *len)
{
	*len = infect_batch_end - infect_batch;
	return infect_batch;
}

void arch_set_batch(struct user_regs_struct *r, uint64_t code, uint64_t table, long n)
{
	r->rip = code;
	r->orig_rax = -1;
	r->rbx = table;
	r->r12 = n;
}

/* ---- careful calls ---- */

/* The way back's data, right after its code (offsets used in the asm). */
struct wb_data {
	uint64_t flags, ip, mask;
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
};

#define WB(off) ".Lstasis_wb+" #off "(%rip)"
#define LOAD(reg, off) "mov " WB(off) ", %" #reg "\n\t"

/* Assembled into our .rodata, never run here: tramp_fill() copies it. */
__asm__(".section .rodata\n\t"
	".balign 64\n\t"
	".globl infect_tramp\n\t"
	".hidden infect_tramp\n"
	"infect_tramp:\n\t"
	"syscall\n\t"			/* the injected call */
	/* its flags, through a slot below the red zone */
	"lea -128(%rsp), %rsp\n\t"
	"pushq " WB(0) "\n\t"
	"popfq\n\t"
	"lea 128(%rsp), %rsp\n\t"	/* lea and mov leave the flags alone */
	/* its blocked mask: rt_sigprocmask(SIG_SETMASK, &mask, NULL, 8); a
	 * signal pending gets delivered on the way out, on its own stack */
	"mov $14, %eax\n\t"
	"mov $2, %edi\n\t"
	"lea " WB(16) ", %rsi\n\t"
	"mov $0, %edx\n\t"
	"mov $8, %r10d\n\t"
	"syscall\n\t"
	LOAD(rax, 24) LOAD(rbx, 32) LOAD(rcx, 40) LOAD(rdx, 48)
	LOAD(rsi, 56) LOAD(rdi, 64) LOAD(rbp, 72) LOAD(r8, 80)
	LOAD(r9, 88) LOAD(r10, 96) LOAD(r11, 104) LOAD(r12, 112)
	LOAD(r13, 120) LOAD(r14, 128) LOAD(r15, 136)
	"jmp *" WB(8) "\n\t"
	".balign 8\n\t"
	".globl infect_tramp_data\n\t"
	".hidden infect_tramp_data\n"
	"infect_tramp_data:\n"
	".Lstasis_wb:\n\t"
	".zero 144\n\t"
	".globl infect_tramp_end\n\t"
	".hidden infect_tramp_end\n"
	"infect_tramp_end:\n\t"
	".previous\n");

extern const uint8_t infect_tramp[], infect_tramp_data[], infect_tramp_end[];

_Static_assert(sizeof(struct wb_data) == 144, "the asm's .zero and offsets");
_Static_assert(__NR_rt_sigprocmask == 14, "the asm's syscall number");

size_t tramp_size(void)
{
	return infect_tramp_end - infect_tramp;
}

size_t tramp_code_size(void)
{
	return infect_tramp_data - infect_tramp;
}

void tramp_fill(uint8_t *buf, const struct way_home *h)
{
	const struct user_regs_struct *r = h->regs;
	struct wb_data d = {
		.flags = r->eflags, .ip = h->ip, .mask = h->sigmask,
		.rax = h->ax, .rbx = r->rbx, .rcx = r->rcx, .rdx = r->rdx,
		.rsi = r->rsi, .rdi = r->rdi, .rbp = r->rbp,
		.r8 = r->r8, .r9 = r->r9, .r10 = r->r10, .r11 = r->r11,
		.r12 = r->r12, .r13 = r->r13, .r14 = r->r14, .r15 = r->r15,
	};
	memcpy(buf, infect_tramp, tramp_size());
	memcpy(buf + tramp_code_size(), &d, sizeof(d));
}

/* End of the vdso image proper: its headers, tables and loaded bytes. */
static size_t vdso_image_end(const uint8_t *vdso)
{
	const Elf64_Ehdr *e = (const Elf64_Ehdr *)vdso;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(vdso + e->e_phoff);
	size_t end = e->e_phoff + (size_t)e->e_phnum * e->e_phentsize;
	size_t sh = e->e_shoff + (size_t)e->e_shnum * e->e_shentsize;

	if (sh > end)
		end = sh;
	for (int i = 0; i < e->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset + ph[i].p_filesz > end)
			end = ph[i].p_offset + ph[i].p_filesz;
	return end;
}

long tramp_vdso_offset(void)
{
	/* Threads may race here: each computes the same value. */
	static volatile long cached = -2;
	const uint8_t *vdso = (const uint8_t *)getauxval(AT_SYSINFO_EHDR);

	if (cached != -2)
		return cached;
	long off = -1;
	if (vdso && !memcmp(vdso, ELFMAG, SELFMAG)) {
		size_t end = vdso_image_end(vdso);
		size_t pages = (end + 4095) & ~(size_t)4095;
		size_t at = (pages - tramp_size()) & ~(size_t)63;
		bool zero = at >= end && at < pages;
		/* the padding must really be padding: zeros up to the page end */
		for (size_t i = at; zero && i < pages; i++)
			zero = vdso[i] == 0;
		if (zero)
			off = at;
	}
	cached = off;
	return off;
}

#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

/* What the kernel does to a task stopped on its way out of an interrupted
 * syscall, when it lets it go with no signal handler to run
 * (arch/x86/kernel/signal.c): back to the syscall instruction, to run it
 * again (or restart_syscall, for the calls that keep their progress in
 * the restart block). The way back must do the same: once the kernel has
 * returned to user space at our trampoline, nothing restarts the call. */
void resume_point(const struct user_regs_struct *r, uint64_t *ip, uint64_t *ax)
{
	*ip = r->rip;
	*ax = r->rax;
	if ((long)r->orig_rax == -1)
		return;		/* not in a syscall */
	switch ((long)r->rax) {
	case -ERESTARTNOHAND:
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
		*ax = r->orig_rax;
		*ip -= 2;
		break;
	case -ERESTART_RESTARTBLOCK:
		*ax = __NR_restart_syscall;
		*ip -= 2;
		break;
	}
}
