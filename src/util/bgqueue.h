/* One worker thread that runs jobs in the order they are given while the
 * caller goes on; the caller collects them, in the same order, from its
 * own thread. Used where a job is CPU work (copying pages) and what the
 * caller does meanwhile mostly waits (ptrace round trips): on two cores
 * the two overlap. */
#ifndef STASIS_UTIL_BGQUEUE_H
#define STASIS_UTIL_BGQUEUE_H

#include <pthread.h>
#include <stdbool.h>

struct bg_job {
	struct bg_job *next;
	int (*run)(struct bg_job *);	/* in the worker; its result in ret */
	int ret;
	bool cancelled;			/* never run: the queue was cancelled first */
};

struct bg_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool started, quit;
	struct bg_job *todo, **todo_tail;
	int busy;			/* jobs given and not yet run */
	struct bg_job *done, **done_tail;
};

void bg_init(struct bg_queue *q);
/* Queues j; the worker is started with the first job. -1 (reported) if it
 * can't be: j is then not queued, and the caller runs it itself. */
int bg_submit(struct bg_queue *q, struct bg_job *j);
/* Waits until every job given has run. */
void bg_wait_idle(struct bg_queue *q);
/* The first job that ran (or was cancelled) and was not yet collected,
 * or NULL: call after bg_wait_idle or bg_cancel. */
struct bg_job *bg_collect(struct bg_queue *q);
/* Jobs not yet started are not run (marked cancelled), the running one
 * is waited for, and the worker ends. Then collect them all. */
void bg_cancel(struct bg_queue *q);
/* The worker ends (after bg_wait_idle or bg_cancel). */
void bg_fini(struct bg_queue *q);

#endif
