/* A wake-up for a blocking wait that must give up some time: a timer of
 * the calling thread's own (SIGEV_THREAD_ID) whose signal has a handler
 * without SA_RESTART, so a syscall the thread blocks in (waitpid) fails
 * with EINTR every period. The thread sleeps until what it waits for
 * comes, instead of polling. Only the calling thread is interrupted, and
 * only between tick_start and tick_stop: a tick that fired before
 * tick_stop is taken as tick_stop returns, never later by another call.
 *
 * The handler stays installed: a process forked from stasis (restore)
 * inherits it, and restore sets every signal handler the image does not
 * share with stasis (restore/task.c, rst_sigactions). */
#ifndef STASIS_TICK_H
#define STASIS_TICK_H

#include <signal.h>
#include <stdbool.h>
#include <time.h>

struct tick {
	timer_t timer;
	sigset_t old;		/* the thread's mask before */
};

/* Ticks every us microseconds from now. -1 if the timer can't be had
 * (not reported: the caller falls back to polling). */
int tick_start(struct tick *t, long us);
void tick_stop(struct tick *t);

#endif
