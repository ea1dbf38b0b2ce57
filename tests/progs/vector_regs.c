/*
 * vector_regs: the full register file of a thread interrupted in user mode
 * must survive.
 *
 * One asm block loads distinct patterns into ymm0-15 (AVX) or zmm0-31 and
 * k1-k7 (AVX-512F/BW), rbx and r12-r15, pushes three values onto the x87
 * stack (fldpi, fld1 and an arbitrary 80-bit value), switches the x87 control
 * word and MXCSR away from their defaults, writes "READY" with a raw syscall
 * and then spins on go_flag without touching any of those registers.  The
 * dump happens while we spin.  After SIGUSR1 the same asm block stores
 * everything back and C code compares.  Nothing between load and store is
 * compiled code, so the compiler cannot spill or reuse the registers.
 *
 * test vector_regs: plain restore chain leave_running
 */
#include "common.h"

#include <stddef.h>
#include <stdint.h>

/* Fixed layout so the asm can use literal offsets. */
struct regs {
	uint8_t vec[32][64];   /* 0:    zmm0-31 (only the low 32 bytes for ymm) */
	uint64_t k[8];	       /* 2048: k0-k7 (k0 unused) */
	uint8_t x87[3][16];    /* 2112: 80-bit values, st(2), st(1), st(0) */
	uint16_t fcw;	       /* 2160 */
	uint16_t pad0;
	uint32_t mxcsr;	       /* 2164 */
	uint64_t gpr[5];       /* 2168: rbx, r12, r13, r14, r15 */
	uint16_t def_fcw;      /* 2208: restored before returning to C */
	uint16_t pad1;
	uint32_t def_mxcsr;    /* 2212 */
	volatile sig_atomic_t *flag; /* 2216: &go_flag, polled while spinning */
} __attribute__((aligned(64)));

_Static_assert(offsetof(struct regs, k) == 2048, "layout");
_Static_assert(offsetof(struct regs, x87) == 2112, "layout");
_Static_assert(offsetof(struct regs, fcw) == 2160, "layout");
_Static_assert(offsetof(struct regs, mxcsr) == 2164, "layout");
_Static_assert(offsetof(struct regs, gpr) == 2168, "layout");
_Static_assert(offsetof(struct regs, def_fcw) == 2208, "layout");
_Static_assert(offsetof(struct regs, def_mxcsr) == 2212, "layout");
_Static_assert(offsetof(struct regs, flag) == 2216, "layout");

/* Non-default control state: x87 round-toward-zero + 53-bit precision;
 * SSE round-toward-zero + flush-to-zero + denormals-are-zero. */
#define TEST_FCW 0x0E7F
#define TEST_MXCSR 0xFFC0

static struct regs in, out;
static const char ready_msg[] = "READY\n";

/* The x87 value loaded from memory (third on the stack): an arbitrary
 * 80-bit extended number with all mantissa bytes distinct. */
static const uint8_t x87_custom[10] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0xf8, 0xff, 0x3f };

/* Each block: load -> announce READY -> spin on *flag -> store -> reset. */
#define LOAD_GPRS                          \
	"mov 2168(%%r8), %%rbx\n\t"        \
	"mov 2176(%%r8), %%r12\n\t"        \
	"mov 2184(%%r8), %%r13\n\t"        \
	"mov 2192(%%r8), %%r14\n\t"        \
	"mov 2200(%%r8), %%r15\n\t"
#define STORE_GPRS                         \
	"mov %%rbx, 2168(%%r9)\n\t"        \
	"mov %%r12, 2176(%%r9)\n\t"        \
	"mov %%r13, 2184(%%r9)\n\t"        \
	"mov %%r14, 2192(%%r9)\n\t"        \
	"mov %%r15, 2200(%%r9)\n\t"
/* fldpi and fld1 run under the default control word, so their results do
 * not depend on the test rounding mode; then the test modes are set. */
#define LOAD_X87_MXCSR                     \
	"fldpi\n\t"                        \
	"fld1\n\t"                         \
	"fldt (%%r10)\n\t"                 \
	"fldcw 2160(%%r8)\n\t"             \
	"ldmxcsr 2164(%%r8)\n\t"
#define STORE_X87_MXCSR                    \
	"fnstcw 2160(%%r9)\n\t"            \
	"stmxcsr 2164(%%r9)\n\t"           \
	"fstpt 2144(%%r9)\n\t"             \
	"fstpt 2128(%%r9)\n\t"             \
	"fstpt 2112(%%r9)\n\t"             \
	"fldcw 2208(%%r8)\n\t"             \
	"ldmxcsr 2212(%%r8)\n\t"
/* write(1, ready_msg, 6): rsi already holds ready_msg.  The kernel
 * preserves every register except rax, rcx and r11 across a syscall. */
#define SAY_READY                          \
	"mov $1, %%eax\n\t"                \
	"mov $1, %%edi\n\t"                \
	"mov $6, %%edx\n\t"                \
	"syscall\n\t"
/* Poll go_flag (address stored in the struct) until the handler sets it. */
#define SPIN                               \
	"mov 2216(%%r8), %%rsi\n\t"        \
	"1:\n\t"                           \
	"pause\n\t"                        \
	"cmpl $0, (%%rsi)\n\t"             \
	"je 1b\n\t"

#define LY(n) "vmovdqu " #n "*64(%%r8), %%ymm" #n "\n\t"
#define SY(n) "vmovdqu %%ymm" #n ", " #n "*64(%%r9)\n\t"
#define LZ(n) "vmovdqu64 " #n "*64(%%r8), %%zmm" #n "\n\t"
#define SZ(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%%r9)\n\t"
#define LK(n) "kmovq 2048+" #n "*8(%%r8), %%k" #n "\n\t"
#define SK(n) "kmovq %%k" #n ", 2048+" #n "*8(%%r9)\n\t"

#define X16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define X16_HI(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) \
		  M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)
#define K7(M) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

#define COMMON_CLOBBERS                                                     \
	"rcx", "r11", "rbx", "r12", "r13", "r14", "r15", "memory", "cc",    \
	"st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)", \
	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",      \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* The syscall needs rax/rdi/rdx (written) and rsi (the message); after it
 * rsi is reused as the flag address, so they are all in/out operands. */
__attribute__((target("avx"), noinline)) static void run_avx(void)
{
	register struct regs *rin asm("r8") = &in;
	register struct regs *rout asm("r9") = &out;
	register const uint8_t *rx87 asm("r10") = x87_custom;
	register const char *rsi asm("rsi") = ready_msg;
	long rax = 0, rdi = 0, rdx = 0;

	asm volatile(X16(LY) LOAD_GPRS LOAD_X87_MXCSR
		     SAY_READY
		     SPIN X16(SY) STORE_GPRS STORE_X87_MXCSR "vzeroupper\n\t"
		     : "+a"(rax), "+D"(rdi), "+d"(rdx), "+S"(rsi)
		     : "r"(rin), "r"(rout), "r"(rx87)
		     : COMMON_CLOBBERS);
}

__attribute__((target("avx512f,avx512bw"), noinline)) static void run_avx512(void)
{
	register struct regs *rin asm("r8") = &in;
	register struct regs *rout asm("r9") = &out;
	register const uint8_t *rx87 asm("r10") = x87_custom;
	register const char *rsi asm("rsi") = ready_msg;
	long rax = 0, rdi = 0, rdx = 0;

	asm volatile(X16(LZ) X16_HI(LZ) K7(LK) LOAD_GPRS LOAD_X87_MXCSR
		     SAY_READY
		     SPIN X16(SZ) X16_HI(SZ) K7(SK) STORE_GPRS STORE_X87_MXCSR "vzeroupper\n\t"
		     : "+a"(rax), "+D"(rdi), "+d"(rdx), "+S"(rsi)
		     : "r"(rin), "r"(rout), "r"(rx87)
		     : COMMON_CLOBBERS,
		       "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
		       "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31",
		       "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

static void prepare(void)
{
	uint16_t fcw;
	uint32_t mxcsr;

	for (int r = 0; r < 32; r++)
		for (int b = 0; b < 64; b++)
			in.vec[r][b] = (uint8_t)(r * 64 + b * 7 + 0x35);
	for (int k = 1; k < 8; k++)
		in.k[k] = 0x0123456789abcdefULL * (uint64_t)k ^ 0xf0f0f0f00f0f0f0fULL;
	for (int g = 0; g < 5; g++)
		in.gpr[g] = 0x1122334455667788ULL + 0x0101010101010101ULL * (uint64_t)g;
	asm volatile("fnstcw %0\n\tstmxcsr %1" : "=m"(fcw), "=m"(mxcsr));
	in.def_fcw = fcw;
	in.def_mxcsr = mxcsr;
	in.fcw = TEST_FCW;
	in.mxcsr = TEST_MXCSR;
	in.flag = &go_flag;
}

/* What fldpi/fld1 produce under the default control word. */
static void x87_expected(uint8_t pi[10], uint8_t one[10])
{
	asm volatile("fldpi\n\tfstpt %0\n\tfld1\n\tfstpt %1" : "=m"(*(uint8_t(*)[10])pi), "=m"(*(uint8_t(*)[10])one));
}

static void check(int nvec, int vec_bytes, int have_k)
{
	uint8_t pi[10], one[10];

	for (int r = 0; r < nvec; r++)
		for (int b = 0; b < vec_bytes; b++)
			if (out.vec[r][b] != in.vec[r][b]) {
				fail("%s%d byte %d: %#x, expected %#x", vec_bytes == 64 ? "zmm" : "ymm",
				     r, b, out.vec[r][b], in.vec[r][b]);
				break;
			}
	for (int k = 1; have_k && k < 8; k++)
		CHECK(out.k[k] == in.k[k], "k%d = %#llx, expected %#llx", k,
		      (unsigned long long)out.k[k], (unsigned long long)in.k[k]);
	for (int g = 0; g < 5; g++)
		CHECK(out.gpr[g] == in.gpr[g], "%s = %#llx, expected %#llx",
		      (const char *[]){ "rbx", "r12", "r13", "r14", "r15" }[g],
		      (unsigned long long)out.gpr[g], (unsigned long long)in.gpr[g]);
	CHECK(out.fcw == TEST_FCW, "x87 control word %#x, expected %#x", out.fcw, TEST_FCW);
	CHECK(out.mxcsr == TEST_MXCSR, "MXCSR %#x, expected %#x", out.mxcsr, TEST_MXCSR);
	x87_expected(pi, one);
	CHECK(memcmp(out.x87[0], pi, 10) == 0, "x87 st(2) (fldpi) changed");
	CHECK(memcmp(out.x87[1], one, 10) == 0, "x87 st(1) (fld1) changed");
	CHECK(memcmp(out.x87[2], x87_custom, 10) == 0, "x87 st(0) (custom 80-bit value) changed");
}

int main(void)
{
	proto_init();
	prepare();
	__builtin_cpu_init();
	/* VECTOR_REGS_NO_AVX512=1 exercises the ymm-only path on AVX-512 CPUs. */
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    !getenv("VECTOR_REGS_NO_AVX512")) {
		run_avx512();
		check(32, 64, 1);
	} else if (__builtin_cpu_supports("avx")) {
		run_avx();
		check(16, 32, 0);
	} else {
		/* Nothing to test on this CPU; still follow the protocol. */
		proto_ready();
		proto_wait();
	}
	return proto_finish();
}
