/* Per-thread wake-up ticks: see tick.h. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "util/tick.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static pthread_once_t installed = PTHREAD_ONCE_INIT;
static bool handler_ok;

static int tick_sig(void)
{
	return SIGRTMIN + 4;	/* stasis uses no real-time signal of its own */
}

static void on_tick(int sig)
{
	(void)sig;	/* it only interrupts */
}

static void install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_tick;	/* no SA_RESTART: the wait returns EINTR */
	sigemptyset(&sa.sa_mask);
	handler_ok = sigaction(tick_sig(), &sa, NULL) == 0;
}

int tick_start(struct tick *t, long us)
{
	struct sigevent ev;
	sigset_t sig;
	int err = errno;

	pthread_once(&installed, install);
	if (!handler_ok)
		return -1;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = tick_sig();
	ev.sigev_notify_thread_id = gettid();
	if (timer_create(CLOCK_MONOTONIC, &ev, &t->timer) < 0) {
		errno = err;
		return -1;
	}
	struct itimerspec its = { .it_interval = { us / 1000000, (us % 1000000) * 1000 } };
	its.it_value = its.it_interval;
	sigemptyset(&sig);
	sigaddset(&sig, tick_sig());
	if (pthread_sigmask(SIG_UNBLOCK, &sig, &t->old) != 0 || timer_settime(t->timer, 0, &its, NULL) < 0) {
		timer_delete(t->timer);
		errno = err;
		return -1;
	}
	return 0;
}

void tick_stop(struct tick *t)
{
	int err = errno;
	/* a tick pending now is taken as this call returns, still unblocked */
	timer_delete(t->timer);
	pthread_sigmask(SIG_SETMASK, &t->old, NULL);
	errno = err;
}
