/*
 * threads: 8 threads, each in the middle of a computation held in
 * registers, must come back with their registers, tids, names, signal
 * masks, pending signals, TLS and memory.
 *
 * Each worker thread i:
 *   - names itself "thr-i" (PR_SET_NAME), blocks its own set of signals
 *     (SIGUSR1, SIGRTMIN+i, and SIGUSR2/SIGHUP/SIGWINCH/SIGPIPE by the bits
 *     of i); with the argument "pending", it also sends itself SIGRTMIN+i
 *     with tgkill, which stays pending on this thread only (sigpending()
 *     of the others must not show it);
 *   - fills a __thread array and variable, a 256 KiB malloc()ed buffer and a
 *     16 KiB array on its own stack with patterns made of i;
 *   - records gettid(), pthread_self() and the address of its TLS;
 *   - then runs an asm loop that never leaves registers: rbx counts
 *     iterations k, r12 += r15, r13 -= r15, r14 = r12 ^ r13,
 *     ymm0 += ymm1 (per 64-bit lane), ymm3 = ymm0 ^ ymm2, ymm4-7 constant,
 *     and stores k to memory each round.  (xmm with SSE2 if there is no
 *     AVX2.)  It spins until SIGUSR1 sets go_flag.  The dump and restore
 *     happen in the middle of that loop.
 * Afterwards the registers are stored and must satisfy the closed forms
 * (r12 = seed + k * r15 ...), and the memory copy of k must equal rbx.
 *
 * The main thread waits until all 8 loops run before READY.  After
 * SIGUSR1 it checks /proc/self/task (the same 9 tids, each named as
 * before) while the workers check themselves, then releases and joins
 * them.
 *
 * test tree.threads: tree.plain tree.restore tree.chain3 tree.leave_running
 * test tree.threads_pending (pending): tree.plain tree.restore
 */
#include "common.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#define NTHREADS 8
#define HEAP_BYTES (256 * 1024)
#define STACK_WORDS (16 * 1024 / 8)

/* Fixed layout: the asm uses literal offsets. */
struct regs {
	uint8_t vin[8][32];	/* 0: ymm0-7 initial (ymm3 is computed) */
	uint8_t vout[8][32];	/* 256: ymm0-7 at the end */
	uint64_t gin[4];	/* 512: r12, r13, r15 seeds */
	uint64_t gout[5];	/* 544: rbx (k), r12, r13, r14, r15 */
	volatile sig_atomic_t *flag; /* 584 */
	volatile uint64_t progress;  /* 592: k, stored each round */
} __attribute__((aligned(64)));

_Static_assert(offsetof(struct regs, vout) == 256, "layout");
_Static_assert(offsetof(struct regs, gin) == 512, "layout");
_Static_assert(offsetof(struct regs, gout) == 544, "layout");
_Static_assert(offsetof(struct regs, flag) == 584, "layout");
_Static_assert(offsetof(struct regs, progress) == 592, "layout");

struct worker {
	struct regs r;
	int idx;
	pthread_t th;
	pid_t tid;
	pthread_t self;
	void *tls_addr;
	sigset_t mask;
	char name[16];
	int si_code;		/* of a tgkill()ed signal on this kernel */
	volatile int set_up;
};

static struct worker w[NTHREADS];
static int use_avx2;
static int with_pending;	/* argv[1] == "pending" */
static pid_t main_tid;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t done_barrier;

static __thread uint64_t tls_value;
static __thread uint64_t tls_array[64];

/* fail() from several threads: one at a time. */
#define TFAIL(...)                                \
	do {                                      \
		pthread_mutex_lock(&out_lock);    \
		fail(__VA_ARGS__);                \
		pthread_mutex_unlock(&out_lock);  \
	} while (0)
#define TCHECK(cond, ...)                 \
	do {                              \
		if (!(cond))              \
			TFAIL(__VA_ARGS__); \
	} while (0)

#define LOOP_GPRS                          \
	"xor %%ebx, %%ebx\n\t"             \
	"mov 512(%%r8), %%r12\n\t"         \
	"mov 520(%%r8), %%r13\n\t"         \
	"mov 528(%%r8), %%r15\n\t"         \
	"mov %%r12, %%r14\n\t"             \
	"xor %%r13, %%r14\n\t"             \
	"mov 584(%%r8), %%rsi\n\t"
#define STEP_GPRS                          \
	"inc %%rbx\n\t"                    \
	"add %%r15, %%r12\n\t"             \
	"sub %%r15, %%r13\n\t"             \
	"mov %%r12, %%r14\n\t"             \
	"xor %%r13, %%r14\n\t"
#define SPIN_TAIL                          \
	"mov %%rbx, 592(%%r8)\n\t"         \
	"pause\n\t"                        \
	"cmpl $0, (%%rsi)\n\t"             \
	"je 1b\n\t"
#define STORE_GPRS                         \
	"mov %%rbx, 544(%%r8)\n\t"         \
	"mov %%r12, 552(%%r8)\n\t"         \
	"mov %%r13, 560(%%r8)\n\t"         \
	"mov %%r14, 568(%%r8)\n\t"         \
	"mov %%r15, 576(%%r8)\n\t"

#define LY(n) "vmovdqu " #n "*32(%%r8), %%ymm" #n "\n\t"
#define SY(n) "vmovdqu %%ymm" #n ", 256+" #n "*32(%%r8)\n\t"
#define LX(n) "movdqu " #n "*32(%%r8), %%xmm" #n "\n\t"
#define SX(n) "movdqu %%xmm" #n ", 256+" #n "*32(%%r8)\n\t"
#define X8(M) M(0) M(1) M(2) M(4) M(5) M(6) M(7)
#define X8ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

#define CLOBBERS "rsi", "rbx", "r12", "r13", "r14", "r15", "memory", "cc", \
	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7"

__attribute__((target("avx2"), noinline)) static void spin_avx2(struct regs *r)
{
	register struct regs *r8 asm("r8") = r;

	asm volatile(X8(LY) "vpxor %%ymm2, %%ymm0, %%ymm3\n\t" LOOP_GPRS
		     "1:\n\t" STEP_GPRS
		     "vpaddq %%ymm1, %%ymm0, %%ymm0\n\t"
		     "vpxor %%ymm2, %%ymm0, %%ymm3\n\t"
		     SPIN_TAIL X8ALL(SY) STORE_GPRS "vzeroupper\n\t"
		     : "+r"(r8)
		     :
		     : CLOBBERS);
}

__attribute__((noinline)) static void spin_sse2(struct regs *r)
{
	register struct regs *r8 asm("r8") = r;

	asm volatile(X8(LX) "movdqa %%xmm0, %%xmm3\n\tpxor %%xmm2, %%xmm3\n\t" LOOP_GPRS
		     "1:\n\t" STEP_GPRS
		     "paddq %%xmm1, %%xmm0\n\t"
		     "movdqa %%xmm0, %%xmm3\n\t"
		     "pxor %%xmm2, %%xmm3\n\t"
		     SPIN_TAIL X8ALL(SX) STORE_GPRS
		     : "+r"(r8)
		     :
		     : CLOBBERS);
}

static uint64_t heap_word(int idx, size_t i)
{
	return 0x5a5a000000000000ULL ^ ((uint64_t)idx << 40) ^ (i * 0x100000001b3ULL);
}

static void prepare_regs(struct worker *t)
{
	int i = t->idx;

	for (int v = 0; v < 8; v++)
		for (int b = 0; b < 32; b++)
			t->r.vin[v][b] = (uint8_t)(v * 37 + b * 11 + i * 101 + 1);
	t->r.gin[0] = 0x1000000000000000ULL * (uint64_t)(i + 1) + 12345;
	t->r.gin[1] = 0xfedcba9876543210ULL ^ (uint64_t)i;
	t->r.gin[2] = 0x10001ULL * (uint64_t)(i + 3);
	t->r.flag = &go_flag;
}

static void check_regs(struct worker *t)
{
	const struct regs *r = &t->r;
	uint64_t k = r->gout[0];
	int i = t->idx, vbytes = use_avx2 ? 32 : 16;
	uint64_t in0[4], inc[4], key[4], out0[4], out3[4];

	TCHECK(k > 0, "thread %d: the register loop never ran (rbx = 0)", i);
	TCHECK(r->progress == k, "thread %d: iteration count in memory %llu, in rbx %llu", i,
	       (unsigned long long)r->progress, (unsigned long long)k);
	TCHECK(r->gout[4] == r->gin[2], "thread %d: r15 = %#llx, expected %#llx", i,
	       (unsigned long long)r->gout[4], (unsigned long long)r->gin[2]);
	TCHECK(r->gout[1] == r->gin[0] + k * r->gin[2], "thread %d: r12 = %#llx after %llu rounds, expected %#llx",
	       i, (unsigned long long)r->gout[1], (unsigned long long)k,
	       (unsigned long long)(r->gin[0] + k * r->gin[2]));
	TCHECK(r->gout[2] == r->gin[1] - k * r->gin[2], "thread %d: r13 = %#llx after %llu rounds, expected %#llx",
	       i, (unsigned long long)r->gout[2], (unsigned long long)k,
	       (unsigned long long)(r->gin[1] - k * r->gin[2]));
	TCHECK(r->gout[3] == (r->gout[1] ^ r->gout[2]), "thread %d: r14 = %#llx, expected r12 ^ r13 = %#llx", i,
	       (unsigned long long)r->gout[3], (unsigned long long)(r->gout[1] ^ r->gout[2]));
	memcpy(in0, r->vin[0], 32);
	memcpy(inc, r->vin[1], 32);
	memcpy(key, r->vin[2], 32);
	memcpy(out0, r->vout[0], 32);
	memcpy(out3, r->vout[3], 32);
	for (int l = 0; l < vbytes / 8; l++) {
		TCHECK(out0[l] == in0[l] + k * inc[l], "thread %d: vector register 0 lane %d = %#llx after %llu rounds, expected %#llx",
		       i, l, (unsigned long long)out0[l], (unsigned long long)k,
		       (unsigned long long)(in0[l] + k * inc[l]));
		TCHECK(out3[l] == (out0[l] ^ key[l]), "thread %d: vector register 3 lane %d = %#llx, expected reg0 ^ reg2 = %#llx",
		       i, l, (unsigned long long)out3[l], (unsigned long long)(out0[l] ^ key[l]));
	}
	for (int v = 1; v < 8; v++) {
		if (v == 3)
			continue;
		TCHECK(memcmp(r->vout[v], r->vin[v], vbytes) == 0, "thread %d: vector register %d changed", i, v);
	}
}

static void check_state(struct worker *t, const uint64_t *heap, const uint64_t *stackarr)
{
	int i = t->idx;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	char name[17] = "";
	sigset_t cur, pend;

	TCHECK(tid == t->tid, "thread %d: gettid() = %d, expected %d", i, tid, t->tid);
	TCHECK(pthread_equal(pthread_self(), t->self), "thread %d: pthread_self() changed", i);
	prctl(PR_GET_NAME, name);
	TCHECK(strcmp(name, t->name) == 0, "thread %d: name '%s', expected '%s'", i, name, t->name);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (int s = 1; s <= 64; s++)
		if (s != 32 && s != 33 && sigismember(&cur, s) != sigismember(&t->mask, s))
			TFAIL("thread %d: signal %d is %sblocked, expected %sblocked", i, s,
			      sigismember(&cur, s) ? "" : "not ", sigismember(&t->mask, s) ? "" : "not ");
	sigpending(&pend);
	for (int j = 0; j < NTHREADS; j++)
		if (sigismember(&pend, SIGRTMIN + j) != (with_pending && j == i))
			TFAIL("thread %d: SIGRTMIN+%d is %spending, expected %s", i, j,
			      sigismember(&pend, SIGRTMIN + j) ? "" : "not ",
			      with_pending && j == i ? "pending (sent to this thread only)" : "not pending (another thread's)");
	TCHECK((void *)&tls_value == t->tls_addr, "thread %d: TLS variable at %p, was at %p", i,
	       (void *)&tls_value, t->tls_addr);
	TCHECK(tls_value == 0xc0ffee0000ULL + (uint64_t)i, "thread %d: TLS value %#llx, expected %#llx", i,
	       (unsigned long long)tls_value, 0xc0ffee0000ULL + (unsigned long long)i);
	for (int j = 0; j < 64; j++)
		if (tls_array[j] != heap_word(i + 100, (size_t)j)) {
			TFAIL("thread %d: TLS array word %d changed", i, j);
			break;
		}
	for (size_t j = 0; j < HEAP_BYTES / 8; j++)
		if (heap[j] != heap_word(i, j)) {
			TFAIL("thread %d: heap word %zu = %#llx, expected %#llx", i, j,
			      (unsigned long long)heap[j], (unsigned long long)heap_word(i, j));
			break;
		}
	for (size_t j = 0; j < STACK_WORDS; j++)
		if (stackarr[j] != heap_word(i + 200, j)) {
			TFAIL("thread %d: stack word %zu changed", i, j);
			break;
		}
}

static void *worker_main(void *arg)
{
	struct worker *t = arg;
	int i = t->idx;
	uint64_t *heap, stackarr[STACK_WORDS];
	sigset_t m;
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	snprintf(t->name, sizeof(t->name), "thr-%d", i);
	prctl(PR_SET_NAME, t->name);
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	for (int j = 0; j < NTHREADS; j++)
		sigaddset(&m, SIGRTMIN + j); /* the others' stay blocked too: no stray deaths */
	if (i & 1)
		sigaddset(&m, SIGUSR2);
	if (i & 2)
		sigaddset(&m, SIGHUP);
	if (i & 4)
		sigaddset(&m, SIGWINCH);
	if (i == 0)
		sigaddset(&m, SIGPIPE);
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	pthread_sigmask(SIG_BLOCK, NULL, &t->mask);
	t->tid = (pid_t)syscall(SYS_gettid);
	t->self = pthread_self();
	if (with_pending) {
		/* what tgkill's siginfo looks like on this kernel: send one and
		 * take it at once; then the one that stays pending */
		sigset_t one;
		struct timespec zero = { 0, 0 };
		sigemptyset(&one);
		sigaddset(&one, SIGRTMIN + i);
		syscall(SYS_tgkill, getpid(), t->tid, SIGRTMIN + i);
		if (sigtimedwait(&one, &si, &zero) != SIGRTMIN + i) {
			TFAIL("setup: thread %d: SIGRTMIN+%d sent by tgkill did not arrive", i, i);
			t->set_up = -1;
			return NULL;
		}
		t->si_code = si.si_code;
		syscall(SYS_tgkill, getpid(), t->tid, SIGRTMIN + i);
	}
	tls_value = 0xc0ffee0000ULL + (uint64_t)i;
	t->tls_addr = (void *)&tls_value;
	for (int j = 0; j < 64; j++)
		tls_array[j] = heap_word(i + 100, (size_t)j);
	heap = malloc(HEAP_BYTES);
	if (!heap) {
		TFAIL("setup: thread %d: malloc failed", i);
		t->set_up = -1;
		return NULL;
	}
	for (size_t j = 0; j < HEAP_BYTES / 8; j++)
		heap[j] = heap_word(i, j);
	for (size_t j = 0; j < STACK_WORDS; j++)
		stackarr[j] = heap_word(i + 200, j);
	check_state(t, heap, stackarr);
	prepare_regs(t);
	t->set_up = 1;

	if (use_avx2)
		spin_avx2(&t->r);
	else
		spin_sse2(&t->r);

	check_regs(t);
	check_state(t, heap, stackarr);
	/* consume this thread's pending SIGRTMIN+i */
	if (with_pending) {
		sigset_t one;
		struct timespec zero = { 0, 0 };
		sigemptyset(&one);
		sigaddset(&one, SIGRTMIN + i);
		int got = sigtimedwait(&one, &si, &zero);
		TCHECK(got == SIGRTMIN + i, "thread %d: pending SIGRTMIN+%d could not be taken (%s)", i, i,
		       got < 0 ? strerror(errno) : "another signal");
		TCHECK(got != SIGRTMIN + i || (si.si_code == t->si_code && si.si_pid == getpid()),
		       "thread %d: pending SIGRTMIN+%d has si_code %d, si_pid %d, expected %d and %d", i, i,
		       si.si_code, si.si_pid, t->si_code, getpid());
	}
	free(heap);
	pthread_barrier_wait(&done_barrier); /* main checks /proc/self/task meanwhile */
	return (void *)(long)(i + 1);
}

static int task_exists(pid_t tid, char *comm, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(comm, (int)len, f))
		comm[0] = 0;
	comm[strcspn(comm, "\n")] = 0;
	fclose(f);
	return 1;
}

static int count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void check_tasks(void)
{
	char comm[32];
	int n = count_tasks();

	CHECK(n == NTHREADS + 1, "/proc/self/task has %d entries, expected %d", n, NTHREADS + 1);
	CHECK(task_exists(main_tid, comm, sizeof(comm)), "main thread %d missing from /proc/self/task", main_tid);
	for (int i = 0; i < NTHREADS; i++) {
		if (!task_exists(w[i].tid, comm, sizeof(comm))) {
			fail("thread %d (tid %d) missing from /proc/self/task", i, w[i].tid);
			continue;
		}
		CHECK(strcmp(comm, w[i].name) == 0, "/proc/self/task/%d/comm is '%s', expected '%s'", w[i].tid,
		      comm, w[i].name);
	}
}

int main(int argc, char **argv)
{
	struct timespec ms1 = { 0, 1000 * 1000 }, dl;
	int waited = 0;

	proto_init();
	with_pending = argc > 1 && strcmp(argv[1], "pending") == 0;
	__builtin_cpu_init();
	use_avx2 = __builtin_cpu_supports("avx2") && !getenv("THREADS_NO_AVX2");
	main_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_init(&done_barrier, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		w[i].idx = i;
		if ((errno = pthread_create(&w[i].th, NULL, worker_main, &w[i])))
			die("pthread_create");
	}
	/* all set up and every loop has gone round at least once */
	for (;;) {
		int n = 0;
		for (int i = 0; i < NTHREADS; i++) {
			if (w[i].set_up < 0)
				return proto_finish();
			n += w[i].set_up == 1 && w[i].r.progress > 0;
		}
		if (n == NTHREADS)
			break;
		if (++waited > 10000) {
			fail("setup: the threads did not start their loops within 10 s");
			return proto_finish();
		}
		nanosleep(&ms1, NULL);
	}
	CHECK(getpid() == main_tid, "main thread tid %d is not the pid %d", main_tid, getpid());
	check_tasks();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();

	CHECK((pid_t)syscall(SYS_gettid) == main_tid, "main thread: gettid() = %ld, expected %d",
	      syscall(SYS_gettid), main_tid);
	pthread_mutex_lock(&out_lock);
	check_tasks();
	pthread_mutex_unlock(&out_lock);
	pthread_barrier_wait(&done_barrier);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10; /* for all the joins together */
	for (int i = 0; i < NTHREADS; i++) {
		void *ret = NULL;
		int e = pthread_timedjoin_np(w[i].th, &ret, &dl);

		CHECK(e == 0, "thread %d (tid %d) could not be joined: %s", i, w[i].tid, strerror(e));
		CHECK(e || ret == (void *)(long)(i + 1), "thread %d returned %p, expected %p", i, ret,
		      (void *)(long)(i + 1));
	}
	return proto_finish();
}
