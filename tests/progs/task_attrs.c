/*
 * task_attrs: what a process sets on itself through /proc and the
 * scheduler, and its ambient capabilities.
 *
 *   - oom_score_adj raised to 345 (/proc/self/oom_score_adj);
 *   - loginuid 1500 where it was unset (/proc/self/loginuid; anyone may
 *     set an unset one);
 *   - nice 7 and SCHED_BATCH on the main thread, SCHED_IDLE on a second;
 *   - as root (no argument "user"): a third thread SCHED_RR priority 5
 *     with SCHED_RESET_ON_FORK, and ambient capabilities: CAP_DAC_OVERRIDE
 *     dropped from the permitted set, the inheritable set made the
 *     permitted one, CAP_NET_RAW and CAP_CHOWN raised into the ambient set.
 * Each is read back by the process itself.
 *
 * test task_attrs: plain restore chain leave_running
 */
#include "common.h"

#include <fcntl.h>
#include <stdbool.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#define OOM_ADJ 345
#define LOGINUID 1500
#define NICE 7
#define RR_PRIO 5

static bool as_root;
static volatile pid_t idle_tid, rr_tid;

static long read_own(const char *name)
{
	char path[64], buf[32] = "";
	snprintf(path, sizeof(path), "/proc/self/%s", name);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static void write_own(const char *name, long v)
{
	char path[64], buf[32];
	snprintf(path, sizeof(path), "/proc/self/%s", name);
	int fd = open(path, O_WRONLY), len = snprintf(buf, sizeof(buf), "%ld", v);
	if (fd < 0 || write(fd, buf, len) != len)
		die(name);
	close(fd);
}

static void *idle_thread(void *arg)
{
	struct sched_param sp = { 0 };
	(void)arg;
	if (sched_setscheduler(0, SCHED_IDLE, &sp))
		die("SCHED_IDLE");
	idle_tid = syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static void *rr_thread(void *arg)
{
	struct sched_param sp = { .sched_priority = RR_PRIO };
	(void)arg;
	if (sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &sp))
		die("SCHED_RR");
	rr_tid = syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static void set_caps(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &hdr, d))
		die("capget");
	d[0].effective &= ~(1u << CAP_DAC_OVERRIDE);
	d[0].permitted &= ~(1u << CAP_DAC_OVERRIDE);
	d[0].inheritable = d[0].permitted;
	d[1].inheritable = d[1].permitted;
	if (syscall(SYS_capset, &hdr, d))
		die("capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0))
		die("PR_CAP_AMBIENT_RAISE");
}

static void setup(void)
{
	pthread_t th;
	struct sched_param sp = { 0 };

	write_own("oom_score_adj", OOM_ADJ);
	if (read_own("loginuid") == 4294967295L)
		write_own("loginuid", LOGINUID);
	if (setpriority(PRIO_PROCESS, 0, NICE) || sched_setscheduler(0, SCHED_BATCH, &sp))
		die("nice, SCHED_BATCH");
	if (pthread_create(&th, NULL, idle_thread, NULL))
		die("pthread_create");
	if (as_root && pthread_create(&th, NULL, rr_thread, NULL))
		die("pthread_create");
	while (!idle_tid || (as_root && !rr_tid))
		usleep(1000);
	if (as_root)
		set_caps();
}

static void check_caps(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	syscall(SYS_capget, &hdr, d);
	CHECK(!(d[0].permitted & (1u << CAP_DAC_OVERRIDE)), "CAP_DAC_OVERRIDE is permitted again");
	CHECK(d[0].inheritable == d[0].permitted, "inheritable set %#x, expected %#x", d[0].inheritable,
	      d[0].permitted);
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
		int want = cap == CAP_NET_RAW || cap == CAP_CHOWN;
		int is = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
		CHECK(is == want, "ambient capability %d is %d, expected %d", cap, is, want);
	}
}

static void check_all(void)
{
	struct sched_param sp;
	long v;

	CHECK((v = read_own("oom_score_adj")) == OOM_ADJ, "oom_score_adj %ld, expected %d", v, OOM_ADJ);
	CHECK((v = read_own("loginuid")) == LOGINUID, "loginuid %ld, expected %d", v, LOGINUID);
	errno = 0;
	CHECK((v = getpriority(PRIO_PROCESS, 0)) == NICE, "nice %ld, expected %d", v, NICE);
	CHECK((v = sched_getscheduler(0)) == SCHED_BATCH, "policy %ld, expected SCHED_BATCH", v);
	CHECK((v = sched_getscheduler(idle_tid)) == SCHED_IDLE, "thread %d: policy %ld, expected SCHED_IDLE",
	      idle_tid, v);
	if (!as_root)
		return;
	v = sched_getscheduler(rr_tid);
	CHECK(v == (SCHED_RR | SCHED_RESET_ON_FORK), "thread %d: policy %#lx, expected SCHED_RR with "
	      "SCHED_RESET_ON_FORK", rr_tid, v);
	CHECK(sched_getparam(rr_tid, &sp) == 0 && sp.sched_priority == RR_PRIO,
	      "thread %d: priority %d, expected %d", rr_tid, sp.sched_priority, RR_PRIO);
	check_caps();
}

int main(int argc, char **argv)
{
	as_root = !(argc > 1 && !strcmp(argv[1], "user"));
	proto_init();
	setup();
	check_all();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check_all();
	return proto_finish();
}
