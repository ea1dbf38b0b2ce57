#include "util/bgqueue.h"

#include <string.h>

#include "util/log.h"

void bg_init(struct bg_queue *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->todo_tail = &q->todo;
	q->done_tail = &q->done;
}

static void finished(struct bg_queue *q, struct bg_job *j)
{
	j->next = NULL;
	*q->done_tail = j;
	q->done_tail = &j->next;
	q->busy--;
	pthread_cond_broadcast(&q->cv);
}

static void *worker(void *arg)
{
	struct bg_queue *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->todo && !q->quit)
			pthread_cond_wait(&q->cv, &q->mu);
		if (!q->todo)
			break;
		struct bg_job *j = q->todo;
		q->todo = j->next;
		if (!q->todo)
			q->todo_tail = &q->todo;
		pthread_mutex_unlock(&q->mu);
		j->ret = j->run(j);
		pthread_mutex_lock(&q->mu);
		finished(q, j);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int bg_submit(struct bg_queue *q, struct bg_job *j)
{
	if (!q->started) {
		if (pthread_create(&q->th, NULL, worker, q) != 0) {
			pr_err("can't start a background copy thread");
			return -1;
		}
		q->started = true;
	}
	pthread_mutex_lock(&q->mu);
	j->next = NULL;
	j->cancelled = false;
	*q->todo_tail = j;
	q->todo_tail = &j->next;
	q->busy++;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void bg_wait_idle(struct bg_queue *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->busy)
		pthread_cond_wait(&q->cv, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

struct bg_job *bg_collect(struct bg_queue *q)
{
	pthread_mutex_lock(&q->mu);
	struct bg_job *j = q->done;
	if (j) {
		q->done = j->next;
		if (!q->done)
			q->done_tail = &q->done;
	}
	pthread_mutex_unlock(&q->mu);
	return j;
}

void bg_cancel(struct bg_queue *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->todo) {
		struct bg_job *j = q->todo;
		q->todo = j->next;
		j->cancelled = true;
		j->ret = -1;
		finished(q, j);
	}
	q->todo_tail = &q->todo;
	pthread_mutex_unlock(&q->mu);
	bg_wait_idle(q);
}

void bg_fini(struct bg_queue *q)
{
	if (!q->started)
		return;
	pthread_mutex_lock(&q->mu);
	q->quit = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->th, NULL);
	q->started = false;
}
