/*
 * posix_timers: POSIX timers (timer_create) and their ids.
 *
 *   - six timers made, the 2nd and 4th deleted: ids with gaps, which the
 *     program holds as its timer_t and must name the same timers after;
 *   - id 0: CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN with sival 0x1234,
 *     every 20 ms: after restore its signals keep coming, with that sival
 *     and that timer id in si_timerid;
 *   - id 2: CLOCK_BOOTTIME, SIGEV_THREAD_ID to a second thread, SIGRTMIN+1,
 *     every 30 ms: the signals go to that thread only;
 *   - id 4: CLOCK_REALTIME, SIGEV_NONE, 1000 s left, interval 500 s;
 *   - id 5: CLOCK_PROCESS_CPUTIME_ID, disarmed;
 *   - ITIMER_VIRTUAL and ITIMER_PROF armed with long intervals.
 * Each timer's clock, interval and time left are checked through its id
 * (timer_gettime); a wrong id fails with EINVAL.
 *
 * test posix_timers: plain restore chain leave_running timer_ids_fallback
 */
#include "common.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

static timer_t tid[6];
static volatile sig_atomic_t hits_main, hits_thread, bad_value, bad_thread;
static volatile pid_t thread_tid;

static void on_main(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	if (si->si_value.sival_ptr != (void *)0x1234 || si->si_timerid != 0 || si->si_code != SI_TIMER)
		bad_value = 1;
	hits_main++;
}

static void on_thread(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	if (syscall(SYS_gettid) != thread_tid)
		bad_thread = 1;
	if (si->si_value.sival_int != 77 || si->si_timerid != 2)
		bad_value = 1;
	hits_thread++;
}

static void *thread_main(void *arg)
{
	sigset_t s;
	(void)arg;
	thread_tid = syscall(SYS_gettid);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGRTMIN);
	pthread_sigmask(SIG_BLOCK, &s, NULL);	/* only its own timer's signal */
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 1);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	for (;;)
		pause();
	return NULL;
}

static void make_timer(int i, clockid_t clock, int notify, int sig, union sigval v)
{
	struct sigevent se = { 0 };
	se.sigev_notify = notify;
	se.sigev_signo = sig;
	se.sigev_value = v;
	if (notify == SIGEV_THREAD_ID)
		se._sigev_un._tid = thread_tid;
	if (timer_create(clock, &se, &tid[i]))
		die("timer_create");
	if ((intptr_t)tid[i] != i)
		die("timer ids not from 0 in order");
}

static void arm(int i, long v_ms, long i_ms)
{
	struct itimerspec its = { { i_ms / 1000, i_ms % 1000 * 1000000 }, { v_ms / 1000, v_ms % 1000 * 1000000 } };
	if (timer_settime(tid[i], 0, &its, NULL))
		die("timer_settime");
}

static void setup(void)
{
	struct sigaction sa = { 0 };
	pthread_t th;
	sigset_t s;

	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sa.sa_sigaction = on_main;
	sigaction(SIGRTMIN, &sa, NULL);
	sa.sa_sigaction = on_thread;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	/* the main thread leaves SIGRTMIN+1 to the thread */
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 1);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	if (pthread_create(&th, NULL, thread_main, NULL))
		die("pthread_create");
	while (!thread_tid)
		usleep(1000);

	make_timer(0, CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, (union sigval){ .sival_ptr = (void *)0x1234 });
	make_timer(1, CLOCK_MONOTONIC, SIGEV_NONE, 0, (union sigval){ 0 });
	make_timer(2, CLOCK_BOOTTIME, SIGEV_THREAD_ID, SIGRTMIN + 1, (union sigval){ .sival_int = 77 });
	make_timer(3, CLOCK_MONOTONIC, SIGEV_NONE, 0, (union sigval){ 0 });
	make_timer(4, CLOCK_REALTIME, SIGEV_NONE, 0, (union sigval){ 0 });
	make_timer(5, CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGRTMIN, (union sigval){ 0 });
	if (timer_delete(tid[1]) || timer_delete(tid[3]))
		die("timer_delete");
	arm(0, 20, 20);
	arm(2, 30, 30);
	arm(4, 1000000, 500000);

	struct itimerval it = { { 3000, 0 }, { 2000, 0 } };
	if (setitimer(ITIMER_VIRTUAL, &it, NULL) || setitimer(ITIMER_PROF, &it, NULL))
		die("setitimer");
}

static void check_timer(int i, long i_ms, double max_left)
{
	struct itimerspec its;
	if (timer_gettime(tid[i], &its)) {
		fail("timer %d: timer_gettime: %s", i, strerror(errno));
		return;
	}
	double left = its.it_value.tv_sec + its.it_value.tv_nsec / 1e9;
	long iv = its.it_interval.tv_sec * 1000 + its.it_interval.tv_nsec / 1000000;
	CHECK(iv == i_ms, "timer %d: interval %ld ms, expected %ld", i, iv, i_ms);
	CHECK(max_left ? left > 0 && left <= max_left : left == 0, "timer %d: %.3f s left, expected %s %.3f", i,
	      left, max_left ? "at most" : "", max_left);
}

static void wait_hits(void)
{
	int m = hits_main, t = hits_thread;
	for (int n = 0; n < 200 && (hits_main < m + 3 || hits_thread < t + 3); n++)
		usleep(10000);
	CHECK(hits_main >= m + 3, "timer 0: %d signals in 2 s, expected some every 20 ms", hits_main - m);
	CHECK(hits_thread >= t + 3, "timer 2: %d signals in 2 s, expected some every 30 ms", hits_thread - t);
}

static void check_all(void)
{
	struct itimerspec its;
	struct itimerval it;

	wait_hits();
	CHECK(!bad_value, "a timer's signal came with the wrong value or timer id");
	CHECK(!bad_thread, "timer 2's signal came to another thread than its own");
	check_timer(0, 20, 0.021);
	check_timer(2, 30, 0.031);
	check_timer(4, 500000, 1000);
	check_timer(5, 0, 0);
	CHECK(timer_gettime(tid[1], &its) < 0 && errno == EINVAL, "timer 1 (deleted) exists");
	CHECK(timer_gettime(tid[3], &its) < 0 && errno == EINVAL, "timer 3 (deleted) exists");
	CHECK(timer_gettime((timer_t)6, &its) < 0 && errno == EINVAL, "a timer 6 exists");
	for (int w = ITIMER_VIRTUAL; w <= ITIMER_PROF; w++) {
		getitimer(w, &it);
		CHECK(it.it_interval.tv_sec == 3000 && it.it_value.tv_sec > 1990 && it.it_value.tv_sec <= 2000,
		      "itimer %d: %ld s left, interval %ld s; expected 2000 and 3000", w,
		      (long)it.it_value.tv_sec, (long)it.it_interval.tv_sec);
	}
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
