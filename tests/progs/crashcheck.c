/*
 * crashcheck: a process that notices if a killed dumper left it harmed.
 *
 * Two threads spin in hand-written asm that holds known values in rax-r14,
 * in ymm0-14 (xmm0-14 without AVX) and the direction flag, checks every one
 * of them on each turn, and every million turns asks the kernel for its
 * blocked mask (each spinner blocks its own set). One thread sleeps in
 * 100 ms nanosleeps (restarted through the restart block when interrupted:
 * it must never see EINTR nor wake early); one blocks in read() on a pipe
 * (restarted as ERESTARTSYS: it must get the one byte written at the end,
 * never EINTR). The main thread waits for SIGUSR1 in sigsuspend, with its
 * own mask, and keeps a buffer whose contents it checks at the end.
 *
 * A dump killed at any moment, as the tests do, must leave all of that
 * intact: SIGUSR1 then stops everyone and PASS is printed.
 */
#include "common.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

/* Layout used by the asm below. */
struct spin {
	uint64_t gpr[14];	/* 0: rax rbx rcx rdx rsi rdi rbp r8 r9 r10 r11 r12 r13 r14 */
	uint64_t mask;		/* 112: the blocked mask it must keep */
	uint64_t seen;		/* 120: the one the kernel last told */
	uint64_t count;		/* 128: turns so far */
	uint64_t stop;		/* 136: set by main: leave */
	uint64_t result;	/* 144: 0 ok, 1 gpr, 2 vector, 3 direction flag, 4 mask */
	uint64_t pad[1];
	uint8_t vec[15][32];	/* 160: ymm0-14 (xmm: low 16 bytes) */
} __attribute__((aligned(32)));

_Static_assert(__builtin_offsetof(struct spin, mask) == 112, "layout");
_Static_assert(__builtin_offsetof(struct spin, result) == 144, "layout");
_Static_assert(__builtin_offsetof(struct spin, vec) == 160, "layout");

#define CMP_GPRS                                                                           \
	"cmp 0(%r15), %rax\n\tjne 10f\n\t" "cmp 8(%r15), %rbx\n\tjne 10f\n\t"              \
	"cmp 16(%r15), %rcx\n\tjne 10f\n\t" "cmp 24(%r15), %rdx\n\tjne 10f\n\t"            \
	"cmp 32(%r15), %rsi\n\tjne 10f\n\t" "cmp 40(%r15), %rdi\n\tjne 10f\n\t"            \
	"cmp 48(%r15), %rbp\n\tjne 10f\n\t" "cmp 56(%r15), %r8\n\tjne 10f\n\t"             \
	"cmp 64(%r15), %r9\n\tjne 10f\n\t" "cmp 72(%r15), %r10\n\tjne 10f\n\t"             \
	"cmp 80(%r15), %r11\n\tjne 10f\n\t" "cmp 88(%r15), %r12\n\tjne 10f\n\t"            \
	"cmp 96(%r15), %r13\n\tjne 10f\n\t" "cmp 104(%r15), %r14\n\tjne 10f\n\t"
#define LOAD_GPRS                                                                          \
	"mov 0(%r15), %rax\n\t" "mov 8(%r15), %rbx\n\t" "mov 16(%r15), %rcx\n\t"           \
	"mov 24(%r15), %rdx\n\t" "mov 32(%r15), %rsi\n\t" "mov 40(%r15), %rdi\n\t"         \
	"mov 48(%r15), %rbp\n\t" "mov 56(%r15), %r8\n\t" "mov 64(%r15), %r9\n\t"           \
	"mov 72(%r15), %r10\n\t" "mov 80(%r15), %r11\n\t" "mov 88(%r15), %r12\n\t"         \
	"mov 96(%r15), %r13\n\t" "mov 104(%r15), %r14\n\t"
#define X15(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14)
#define OFF(n) "160+" #n "*32(%r15)"
#define LY(n) "vmovdqa " OFF(n) ", %ymm" #n "\n\t"
#define CY(n) "vpxor " OFF(n) ", %ymm" #n ", %ymm15\n\tvptest %ymm15, %ymm15\n\tjnz 11f\n\t"
#define LX(n) "movdqa " OFF(n) ", %xmm" #n "\n\t"
#define CX(n) "movdqa %xmm" #n ", %xmm15\n\tpxor " OFF(n) ", %xmm15\n\tptest %xmm15, %xmm15\n\tjnz 11f\n\t"

/* spin_NAME(struct spin *s): a function of its own, so that no compiled
 * code runs between loading the registers and checking them. */
#define SPIN_FN(name, LOADV, CMPV, LEAVE)                                                  \
	__asm__(".text\n\t.p2align 4\n" #name ":\n\t"                                      \
		"push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t" \
		"mov %rdi, %r15\n"                                                         \
		"1:\n\t" X15(LOADV) LOAD_GPRS "std\n"                                      \
		"2:\n\t" CMP_GPRS X15(CMPV)                                                \
		"pushfq\n\ttestq $0x400, (%rsp)\n\tlea 8(%rsp), %rsp\n\tjz 12f\n\t"        \
		"incq 128(%r15)\n\t"                                                       \
		"cmpq $0, 136(%r15)\n\tjne 20f\n\t"                                        \
		"testl $0xfffff, 128(%r15)\n\tjnz 2b\n\t"                                  \
		/* rt_sigprocmask(SIG_BLOCK, NULL, &s->seen, 8) */                         \
		"mov $14, %eax\n\tmov $0, %edi\n\tmov $0, %esi\n\tlea 120(%r15), %rdx\n\t"  \
		"mov $8, %r10d\n\tsyscall\n\t"                                             \
		"mov 120(%r15), %rax\n\tcmp 112(%r15), %rax\n\tjne 13f\n\tjmp 1b\n"        \
		"10:\n\tmovq $1, 144(%r15)\n\tjmp 20f\n"                                   \
		"11:\n\tmovq $2, 144(%r15)\n\tjmp 20f\n"                                   \
		"12:\n\tmovq $3, 144(%r15)\n\tjmp 20f\n"                                   \
		"13:\n\tmovq $4, 144(%r15)\n"                                              \
		"20:\n\tcld\n\t" LEAVE                                                     \
		"pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\tret\n")

SPIN_FN(spin_avx, LY, CY, "vzeroupper\n\t");
SPIN_FN(spin_sse, LX, CX, "");
void spin_avx(struct spin *s);
void spin_sse(struct spin *s);

static struct spin spins[2];
static int pipefd[2];
static volatile int stop_all;
static uint8_t buffer[1 << 16];

static void *spinner(void *arg)
{
	struct spin *s = arg;
	sigset_t m;

	sigemptyset(&m);
	for (int sig = 1; sig < 64; sig++)
		if ((s->mask >> (sig - 1)) & 1)
			sigaddset(&m, sig);
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	if (__builtin_cpu_supports("avx"))
		spin_avx(s);
	else
		spin_sse(s);
	return NULL;
}

static void block_usr1(void)
{
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void *sleeper(void *arg)
{
	(void)arg;
	block_usr1();
	while (!stop_all) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		double t0 = now();
		/* the raw call: glibc's nanosleep would hide nothing, but be sure */
		long r = syscall(SYS_nanosleep, &ts, NULL);
		double took = now() - t0;
		CHECK(r == 0, "nanosleep returned %ld (errno %d): interrupted", r, errno);
		CHECK(took >= 0.099, "nanosleep of 100 ms woke after %.3f s", took);
	}
	return NULL;
}

static void *reader(void *arg)
{
	char c = 0;
	(void)arg;
	block_usr1();
	long n = syscall(SYS_read, pipefd[0], &c, 1);
	CHECK(n == 1 && c == 'x', "read on the pipe returned %ld (errno %d, byte %d)", n, errno, c);
	return NULL;
}

static void fill_spin(struct spin *s, uint64_t seed, uint64_t mask)
{
	for (int i = 0; i < 14; i++)
		s->gpr[i] = seed * 0x9E3779B97F4A7C15ull + i * 0x0101010101010101ull;
	for (int i = 0; i < 15; i++)
		for (int b = 0; b < 32; b++)
			s->vec[i][b] = (uint8_t)(seed * 31 + i * 7 + b * 13 + 1);
	s->mask = mask;
}

int main(void)
{
	pthread_t sp[2], sl, rd;
	/* blocked masks: the spinners' own, and the main thread's */
	const uint64_t masks[2] = { 1ull << (SIGUSR2 - 1) | 1ull << (SIGWINCH - 1) | 1ull << (SIGUSR1 - 1),
				    1ull << (SIGHUP - 1) | 1ull << (SIGRTMIN + 3 - 1) | 1ull << (SIGUSR1 - 1) };
	sigset_t main_mask;

	proto_init();
	for (size_t i = 0; i < sizeof(buffer); i++)
		buffer[i] = (uint8_t)(i * 131 + 7);
	sigemptyset(&main_mask);
	sigaddset(&main_mask, SIGPIPE);
	sigaddset(&main_mask, SIGRTMIN + 5);
	sigprocmask(SIG_BLOCK, &main_mask, NULL);
	if (pipe(pipefd) < 0)
		die("pipe");
	for (int i = 0; i < 2; i++) {
		fill_spin(&spins[i], i + 1, masks[i]);
		if (pthread_create(&sp[i], NULL, spinner, &spins[i]))
			die("pthread_create");
	}
	if (pthread_create(&sl, NULL, sleeper, NULL) || pthread_create(&rd, NULL, reader, NULL))
		die("pthread_create");
	for (int i = 0; i < 2; i++)
		while (__atomic_load_n(&spins[i].count, __ATOMIC_RELAXED) < 2000000)
			usleep(1000);
	proto_ready();
	proto_wait();

	for (int i = 0; i < 2; i++) {
		/* two cores shared with others: give it a few seconds to get one */
		uint64_t before = __atomic_load_n(&spins[i].count, __ATOMIC_RELAXED);
		for (int t = 0; t < 5000 && __atomic_load_n(&spins[i].count, __ATOMIC_RELAXED) == before; t++)
			usleep(1000);
		CHECK(spins[i].count != before, "spinner %d is not spinning", i);
		__atomic_store_n(&spins[i].stop, 1, __ATOMIC_RELAXED);
		pthread_join(sp[i], NULL);
		CHECK(spins[i].result == 0, "spinner %d: %s changed", i,
		      (const char *[]){ "", "a general register", "a vector register",
					"the direction flag", "the blocked mask" }[spins[i].result % 5]);
	}
	stop_all = 1;
	if (write(pipefd[1], "x", 1) != 1)
		fail("write to the pipe: %s", strerror(errno));
	pthread_join(sl, NULL);
	pthread_join(rd, NULL);
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	CHECK(sigismember(&cur, SIGPIPE) && sigismember(&cur, SIGRTMIN + 5) && !sigismember(&cur, SIGUSR2),
	      "the main thread's blocked mask changed");
	for (size_t i = 0; i < sizeof(buffer); i++)
		if (buffer[i] != (uint8_t)(i * 131 + 7)) {
			fail("buffer byte %zu changed", i);
			break;
		}
	return proto_finish();
}
