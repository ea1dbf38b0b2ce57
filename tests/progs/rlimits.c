/*
 * rlimits: per-process attributes that are not memory or files.
 *
 *   - resource limits: NOFILE soft lowered, CORE, STACK soft, NPROC,
 *     MSGQUEUE changed; every RLIMIT_* must equal its value before READY
 *   - umask 027
 *   - working directory (a subdirectory created here)
 *   - comm (PR_SET_NAME)
 *   - personality with ADDR_NO_RANDOMIZE added
 *   - ITIMER_REAL armed with a long interval: still armed, same interval,
 *     remaining time plausible
 *   - PR_SET_PDEATHSIG (SIGWINCH: harmless if it fires when a restorer
 *     parent exits), PR_SET_DUMPABLE 0
 *
 * test rlimits: plain restore chain leave_running
 */
#include "common.h"

#include <limits.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#define COMM "stasis-rlim"
#define TIMER_SECS 1000

static struct rlimit before[RLIM_NLIMITS];
static char cwd_before[PATH_MAX];
static int pers_before;
static struct itimerval timer_before;
static struct timespec time_before;

static void set_limit(int res, rlim_t soft, rlim_t hard)
{
	struct rlimit rl = { .rlim_cur = soft, .rlim_max = hard };

	if (setrlimit(res, &rl))
		die("setrlimit");
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_sec(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void setup(void)
{
	struct rlimit nofile;
	struct itimerval it = { .it_interval = { TIMER_SECS, 0 }, .it_value = { TIMER_SECS, 0 } };

	getrlimit(RLIMIT_NOFILE, &nofile);
	set_limit(RLIMIT_NOFILE, 200, nofile.rlim_max);
	set_limit(RLIMIT_CORE, 1 << 20, 4 << 20);
	set_limit(RLIMIT_STACK, 4 << 20, RLIM_INFINITY);
	set_limit(RLIMIT_NPROC, 1234, 5678);
	set_limit(RLIMIT_MSGQUEUE, 100000, 200000);
	for (int r = 0; r < RLIM_NLIMITS; r++)
		getrlimit(r, &before[r]);

	umask(027);

	if (mkdir("cwd-test", 0755) && errno != EEXIST)
		die("mkdir");
	if (chdir("cwd-test"))
		die("chdir");
	if (!getcwd(cwd_before, sizeof(cwd_before)))
		die("getcwd");

	if (prctl(PR_SET_NAME, COMM))
		die("PR_SET_NAME");
	pers_before = personality(0xffffffff);
	if (personality((unsigned long)pers_before | ADDR_NO_RANDOMIZE) < 0)
		die("personality");
	pers_before = personality(0xffffffff);

	if (setitimer(ITIMER_REAL, &it, NULL))
		die("setitimer");

	if (prctl(PR_SET_PDEATHSIG, SIGWINCH))
		die("PR_SET_PDEATHSIG");
	if (prctl(PR_SET_DUMPABLE, 0))
		die("PR_SET_DUMPABLE");

	/* Sample the timer last, so elapsed time is measured from here. */
	getitimer(ITIMER_REAL, &timer_before);
	clock_gettime(CLOCK_MONOTONIC, &time_before);
}

static void check_rlimits(void)
{
	static const char *rname[RLIM_NLIMITS] = {
		"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
		"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
	};

	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit rl;

		getrlimit(r, &rl);
		CHECK(rl.rlim_cur == before[r].rlim_cur && rl.rlim_max == before[r].rlim_max,
		      "RLIMIT_%s is %llu/%llu, expected %llu/%llu", rname[r],
		      (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
		      (unsigned long long)before[r].rlim_cur, (unsigned long long)before[r].rlim_max);
	}
	CHECK(before[RLIMIT_NOFILE].rlim_cur == 200 && before[RLIMIT_NPROC].rlim_max == 5678,
	      "setup: limits not as set");
}

static void check_timer(void)
{
	struct itimerval it;
	double elapsed, left, left_before = tv_sec(timer_before.it_value);

	getitimer(ITIMER_REAL, &it);
	elapsed = now_mono() - ((double)time_before.tv_sec + (double)time_before.tv_nsec / 1e9);
	left = tv_sec(it.it_value);
	CHECK(it.it_interval.tv_sec == TIMER_SECS && it.it_interval.tv_usec == 0,
	      "ITIMER_REAL interval is %ld.%06lds, expected %ds", (long)it.it_interval.tv_sec,
	      (long)it.it_interval.tv_usec, TIMER_SECS);
	CHECK(left > 0, "ITIMER_REAL is disarmed");
	/* It may not have gained time, and may have lost at most the wall time
	 * that passed (a restored timer may also have been stopped meanwhile). */
	CHECK(left <= left_before + 0.01 && left >= left_before - elapsed - 1.0,
	      "ITIMER_REAL has %.3fs left; before READY it had %.3fs and %.3fs passed since", left,
	      left_before, elapsed);
}

static void check_all(void)
{
	char cwd[PATH_MAX], comm[32] = "";
	mode_t mask = umask(0);
	int sig = -1;

	umask(mask);
	check_rlimits();
	CHECK(mask == 027, "umask is %03o, expected 027", (unsigned)mask);
	CHECK(getcwd(cwd, sizeof(cwd)) && strcmp(cwd, cwd_before) == 0, "cwd is '%s', expected '%s'",
	      cwd, cwd_before);
	prctl(PR_GET_NAME, comm);
	CHECK(strcmp(comm, COMM) == 0, "comm is '%s', expected '%s'", comm, COMM);
	CHECK(personality(0xffffffff) == pers_before, "personality %#x, expected %#x",
	      personality(0xffffffff), pers_before);
	CHECK(pers_before & ADDR_NO_RANDOMIZE, "setup: ADDR_NO_RANDOMIZE not set");
	check_timer();
	prctl(PR_GET_PDEATHSIG, &sig);
	CHECK(sig == SIGWINCH, "pdeathsig is %d, expected %d (SIGWINCH)", sig, SIGWINCH);
	CHECK(prctl(PR_GET_DUMPABLE) == 0, "dumpable is %d, expected 0", prctl(PR_GET_DUMPABLE));
}

int main(void)
{
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
