/*
 * rseq_tls: thread-local storage and glibc's rseq registration must survive.
 *
 * TLS: initialised (.tdata) and zeroed (.tbss) __thread variables keep their
 * values and addresses, the thread pointer (fs base) is unchanged, and errno
 * (itself TLS) still works.
 *
 * rseq: glibc registers a struct rseq at thread_pointer + __rseq_offset.
 * After restore the kernel must still have exactly that registration:
 *   - rseq(area, len, 0, RSEQ_SIG) fails with EBUSY, which the kernel only
 *     answers for an identical, existing registration (0 would mean it was
 *     not registered, EINVAL that it was registered differently);
 *   - the kernel keeps the area's cpu_id up to date: pinned to each allowed
 *     CPU in turn, cpu_id, cpu_id_start and sched_getcpu() (which reads the
 *     area) all follow the getcpu syscall.
 *
 * test rseq_tls: plain restore chain leave_running
 */
#include "common.h"

#include <sched.h>
#include <stdint.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <asm/prctl.h>

__thread int tls_init = 42;
__thread char tls_buf[8192];
static __thread long tls_counter;

static void *tp_before, *tls_addr_before;
static unsigned long fs_before;
static struct rseq *rs;
static unsigned int reg_len;
static uint64_t rseq_cs_before;
static uint32_t rseq_flags_before;

static unsigned long get_fs(void)
{
	unsigned long fs = 0;

	syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
	return fs;
}

static int getcpu_syscall(void)
{
	unsigned cpu = ~0u;

	syscall(SYS_getcpu, &cpu, NULL, NULL);
	return (int)cpu;
}

static long rseq_register(unsigned int len)
{
	return syscall(SYS_rseq, rs, len, 0, RSEQ_SIG);
}

static void setup_tls(void)
{
	tls_init = 4242;
	for (size_t i = 0; i < sizeof(tls_buf); i++)
		tls_buf[i] = (char)(i * 13 + 1);
	tls_counter = 99;
	tp_before = __builtin_thread_pointer();
	tls_addr_before = &tls_init;
	fs_before = get_fs();
}

/* Find the length glibc registered with: the one that gives EBUSY. */
static void setup_rseq(void)
{
	unsigned int lens[] = { __rseq_size, 32 };

	if (__rseq_size == 0) {
		sayf("FAIL: setup: glibc did not register rseq (__rseq_size == 0)\n");
		exit(2);
	}
	rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]) && !reg_len; i++) {
		long r = rseq_register(lens[i]);

		if (r < 0 && errno == EBUSY)
			reg_len = lens[i];
		else if (r == 0) {
			sayf("FAIL: setup: rseq was not registered by glibc\n");
			exit(2);
		}
	}
	if (!reg_len) {
		sayf("FAIL: setup: cannot find glibc's rseq registration length\n");
		exit(2);
	}
	rseq_cs_before = rs->rseq_cs;
	rseq_flags_before = rs->flags;
}

static void check_tls(void)
{
	int bad = -1;

	CHECK(__builtin_thread_pointer() == tp_before, "thread pointer %p, expected %p",
	      __builtin_thread_pointer(), tp_before);
	CHECK(get_fs() == fs_before, "fs base %#lx, expected %#lx", get_fs(), fs_before);
	CHECK((void *)&tls_init == tls_addr_before, "&tls_init moved");
	CHECK(tls_init == 4242, "tls_init = %d, expected 4242", tls_init);
	CHECK(tls_counter == 99, "tls_counter = %ld, expected 99", tls_counter);
	for (size_t i = 0; i < sizeof(tls_buf) && bad < 0; i++)
		if (tls_buf[i] != (char)(i * 13 + 1))
			bad = (int)i;
	CHECK(bad < 0, "tls_buf differs at %d", bad);
	errno = 0;
	CHECK(close(-1) < 0 && errno == EBADF, "errno not set correctly (TLS broken?)");
}

/* Pin to `cpu`; the kernel must then report it through the rseq area. */
static void check_on_cpu(int cpu)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one)) {
		fail("sched_setaffinity(%d): %s", cpu, strerror(errno));
		return;
	}
	sched_yield();
	CHECK(getcpu_syscall() == cpu, "getcpu says %d while pinned to %d", getcpu_syscall(), cpu);
	CHECK((int)rs->cpu_id == cpu, "rseq cpu_id is %d while running on cpu %d (registration lost?)",
	      (int)rs->cpu_id, cpu);
	CHECK((int)rs->cpu_id_start == cpu, "rseq cpu_id_start is %u while running on cpu %d",
	      rs->cpu_id_start, cpu);
	CHECK(sched_getcpu() == cpu, "sched_getcpu() says %d while running on cpu %d", sched_getcpu(), cpu);
}

static void check_rseq(void)
{
	cpu_set_t orig;
	int tried = 0;
	long r = rseq_register(reg_len);

	if (r == 0)
		fail("rseq area at %p was not registered with the kernel (re-registration succeeded)", (void *)rs);
	else
		CHECK(errno == EBUSY, "rseq registration differs from glibc's (%s, expected EBUSY)",
		      strerror(errno));
	CHECK(rs->rseq_cs == rseq_cs_before, "rseq_cs changed");
	CHECK(rs->flags == rseq_flags_before, "rseq flags changed");

	if (sched_getaffinity(0, sizeof(orig), &orig)) {
		fail("sched_getaffinity: %s", strerror(errno));
		return;
	}
	/* Visit up to four allowed CPUs; with one CPU this still checks it. */
	for (int cpu = 0; cpu < CPU_SETSIZE && tried < 4; cpu++)
		if (CPU_ISSET(cpu, &orig)) {
			check_on_cpu(cpu);
			tried++;
		}
	sched_setaffinity(0, sizeof(orig), &orig);
}

int main(void)
{
	proto_init();
	setup_tls();
	setup_rseq();
	check_tls();
	check_rseq();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check_tls();
	check_rseq();
	return proto_finish();
}
