/*
 * timens: a process in a time namespace of its own comes back in one
 * whose clocks go on from where they were: CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME never jump back, nor forward by more than the time the
 * test took, and the namespace's offsets are still about the ones set.
 *
 * The program makes the namespace itself: unshare(CLONE_NEWTIME) (for
 * its children to come), offsets of +1000 days (monotonic) and +2000 days
 * (boottime), then joins it (setns) and execs itself. Its child (forked
 * after) shares it.
 *
 * With an argument, for the refusal tests (tests/cases/timens.sh), it
 * then makes a nested one the dump must refuse: "kids" unshares again
 * (the children to come would be in another one), "child" forks a child
 * that joins another one.
 *
 * An absolute CLOCK_MONOTONIC timerfd due TFD_DUE_S seconds on stays
 * due then: armed again with the clock read inside the namespace (read
 * outside, 1000 days behind, it would be due long ago).
 *
 * test timens: plain restore chain leave_running --needs kernel:time_namespaces
 */
#include "common.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define DAY (24 * 3600ll)
#define MONO_OFF (1000 * DAY)
#define BOOT_OFF (2000 * DAY)
#define SLACK 300	/* seconds a test may take */

static long long now_s(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t.tv_sec;
}

/* unshare(CLONE_NEWTIME) with offsets; the caller's exec enters it. */
static void make_ns(long long mono, long long boot)
{
	if (unshare(CLONE_NEWTIME))
		die("unshare(CLONE_NEWTIME)");
	int fd = open("/proc/self/timens_offsets", O_WRONLY);
	if (fd < 0 || dprintf(fd, "%d %lld 0\n%d %lld 0\n", CLOCK_MONOTONIC, mono, CLOCK_BOOTTIME, boot) < 0)
		die("timens_offsets");
	close(fd);
}

/* Into the namespace made for our children: the exec that follows
 * enters it on 6.18, but not on Debian 12's 6.1, where an exec stays in
 * the time namespace it ran in. */
static void enter_ns(void)
{
	int fd = open("/proc/self/ns/time_for_children", O_RDONLY);
	if (fd < 0 || setns(fd, CLONE_NEWTIME))
		die("setns(time_for_children)");
	close(fd);
}

static void offsets(long long *mono, long long *boot)
{
	char name[32];
	long long s, ns;
	FILE *f = fopen("/proc/self/timens_offsets", "r");
	*mono = *boot = -1;
	while (f && fscanf(f, "%31s %lld %lld", name, &s, &ns) == 3) {
		if (!strcmp(name, "monotonic"))
			*mono = s;
		else if (!strcmp(name, "boottime"))
			*boot = s;
	}
	if (f)
		fclose(f);
}

static long long mono0, boot0;
static int tfd;
#define TFD_DUE_S 120

static void timer_setup(void)
{
	struct itimerspec due = { { 0, 0 }, { 0, 0 } };
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	clock_gettime(CLOCK_MONOTONIC, &due.it_value);
	due.it_value.tv_sec += TFD_DUE_S;
	if (tfd < 0 || timerfd_settime(tfd, TFD_TIMER_ABSTIME, &due, NULL))
		die("timerfd");
}

static void timer_check(void)
{
	struct itimerspec cur;
	unsigned long long v;
	timerfd_gettime(tfd, &cur);
	CHECK(cur.it_value.tv_sec > 0 && cur.it_value.tv_sec < TFD_DUE_S && read(tfd, &v, sizeof(v)) < 0,
	      "absolute monotonic timerfd due %d s on has %lld s left", TFD_DUE_S, (long long)cur.it_value.tv_sec);
}
static int kids_ns;	/* timens_offsets shows the children's namespace then */

static void check(void)
{
	long long mono, boot, m = now_s(CLOCK_MONOTONIC), b = now_s(CLOCK_BOOTTIME);
	offsets(&mono, &boot);
	if (kids_ns)
		mono = MONO_OFF, boot = BOOT_OFF;
	CHECK(mono > MONO_OFF - SLACK && mono <= MONO_OFF, "monotonic offset %lld s, not about %lld", mono, MONO_OFF);
	CHECK(boot > BOOT_OFF - SLACK && boot <= BOOT_OFF, "boottime offset %lld s, not about %lld", boot, BOOT_OFF);
	CHECK(m >= mono0 && m < mono0 + SLACK, "CLOCK_MONOTONIC went from %lld to %lld s", mono0, m);
	CHECK(b >= boot0 && b < boot0 + SLACK, "CLOCK_BOOTTIME went from %lld to %lld s", boot0, b);
	timer_check();
}

int main(int argc, char **argv)
{
	const char *nested = argc > 1 ? argv[1] : "";
	pid_t child, inner = 0;

	if (argc < 3) {		/* outside still: make it, and exec into it */
		make_ns(MONO_OFF, BOOT_OFF);
		enter_ns();
		execl("/proc/self/exe", argv[0], argc > 1 ? argv[1] : "-", "inside", (char *)NULL);
		die("execl");
	}
	if (!strcmp(argv[2], "sleep")) {	/* the inner child of "child" */
		for (;;)
			pause();
	}
	proto_init();
	mono0 = now_s(CLOCK_MONOTONIC);
	boot0 = now_s(CLOCK_BOOTTIME);
	timer_setup();
	child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	if (!strcmp(nested, "kids")) {
		make_ns(5 * DAY, 5 * DAY);
		kids_ns = 1;
	} else if (!strcmp(nested, "child")) {
		inner = fork();
		if (inner == 0) {
			make_ns(7 * DAY, 7 * DAY);
			enter_ns();
			execl("/proc/self/exe", argv[0], "-", "sleep", (char *)NULL);
			_exit(1);
		}
	}
	check();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check();
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (inner) {
		kill(inner, SIGKILL);
		waitpid(inner, NULL, 0);
	}
	return proto_finish();
}
