/*
 * rseq_cs: a thread dumped inside an rseq critical section goes on at the
 * section's abort handler, as the kernel would send it there.
 *
 * The program spins in a critical section of its own (a long countdown
 * between the store of the section's descriptor into rseq_cs and the
 * section's end) almost all the time, so the dump finds it inside one. At
 * the end of each section it reads rseq_cs back: a section that ran to its
 * end must still find its descriptor there. A restored copy that went on
 * inside the section while the kernel had forgotten it (rseq_cs cleared by
 * the dumper's syscalls) finishes it normally and reads 0: a section the
 * kernel would have aborted on preemption, migration or a signal ran
 * unprotected.
 *
 * test rseq_cs: plain restore chain leave_running
 */
#include "common.h"

#include <stdint.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

static struct rseq *rs;

static void *thread_pointer(void)
{
	void *tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}

/* glibc's registration, or ours when glibc made none. */
static void setup_rseq(void)
{
	static __thread struct rseq own __attribute__((aligned(32)));

	if (__rseq_size > 0) {
		rs = (struct rseq *)((char *)thread_pointer() + __rseq_offset);
		return;
	}
	rs = &own;
	if (syscall(SYS_rseq, rs, sizeof(*rs), 0, RSEQ_SIG))
		die("rseq registration");
}

/* One section: 1 if it ran to its end and found its descriptor still in
 * rseq_cs, -1 if it ran to its end and found rseq_cs cleared, 0 if the
 * kernel aborted it. */
static __attribute__((noinline)) int run_section(void)
{
	uint64_t seen = 0;

	/* clang-format off */
	__asm__ __volatile__ goto(
		".pushsection __rseq_cs, \"aw\"\n\t"
		".balign 32\n\t"
		"3:\n\t"
		".long 0, 0\n\t"		/* version, flags */
		".quad 1f, (2f - 1f), 4f\n\t"	/* start_ip, post_commit_offset, abort_ip */
		".popsection\n\t"
		"leaq 3b(%%rip), %%rax\n\t"
		"1:\n\t"
		"movq %%rax, %[cs]\n\t"
		"movq $2000000, %%rcx\n\t"
		"5:\n\t"
		"decq %%rcx\n\t"
		"jnz 5b\n\t"
		"movq %[cs], %%rax\n\t"
		"movq %%rax, %[seen]\n\t"
		"2:\n\t"
		".pushsection __rseq_failure, \"ax\"\n\t"
		".byte 0x0f, 0xb9, 0x3d\n\t"	/* nopl <sig>(%%rip): the signature before abort_ip */
		".long 0x53053053\n\t"
		"4:\n\t"
		"jmp %l[aborted]\n\t"
		".popsection\n\t"
		:
		: [cs] "m"(rs->rseq_cs), [seen] "m"(seen)
		: "memory", "cc", "rax", "rcx"
		: aborted);
	/* clang-format on */
	return seen ? 1 : -1;
aborted:
	return 0;
}

int main(void)
{
	long done = 0, unprotected = 0;

	proto_init();
	setup_rseq();
	/* one whole section before READY: the section itself works here */
	for (int i = 0; i < 1000 && !done; i++)
		if (run_section() > 0)
			done++;
	if (!done) {
		sayf("FAIL: setup: no critical section ran to its end in 1000 tries\n");
		return 2;
	}
	proto_ready();
	while (!go_flag) {
		int r = run_section();
		if (r < 0)
			unprotected++;
		if (r > 0)
			done++;
	}
	CHECK(!unprotected, "%ld critical section(s) ran to their end after the kernel forgot them (rseq_cs 0)",
	      unprotected);
	return proto_finish();
}
