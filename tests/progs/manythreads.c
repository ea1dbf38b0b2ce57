/*
 * manythreads: a process with 128 threads, all blocked (96 in
 * pthread_cond_wait() on one condition, 32 in nanosleep() loops), must
 * come back with every thread under its tid, and every thread must then
 * wake up, see its own state intact and finish a join.
 *
 * Before READY each thread records gettid() and a stack canary made of its
 * index.  After SIGUSR1 the main thread compares /proc/self/task with the
 * recorded tids (exactly 129 entries), sets `released` and broadcasts; each
 * thread checks its tid and canary and returns index+1; every join must
 * succeed within 10 s with that value.
 *
 * test tree.manythreads: tree.plain tree.restore
 */
#include "common.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

#define NTHREADS 128
#define NSLEEPERS 32		/* threads 0..31 sleep, the rest wait on the condition */

static pthread_t th[NTHREADS];
static pid_t tids[NTHREADS];
static pid_t main_tid;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int nready, released;
static volatile int released_flag;
static char errs[NTHREADS][160];

static void *worker(void *arg)
{
	int i = (int)(long)arg;
	volatile uint64_t canary[32];
	pid_t tid = (pid_t)syscall(SYS_gettid);

	for (int j = 0; j < 32; j++)
		canary[j] = 0xabcd000000000000ULL ^ ((uint64_t)i << 16) ^ (uint64_t)j;
	pthread_mutex_lock(&lock);
	tids[i] = tid;
	nready++;
	pthread_mutex_unlock(&lock);

	if (i < NSLEEPERS) {
		struct timespec ts = { 0, (10 + i) * 1000 * 1000 };
		while (!released_flag)
			nanosleep(&ts, NULL);
	} else {
		pthread_mutex_lock(&lock);
		while (!released)
			pthread_cond_wait(&cond, &lock);
		pthread_mutex_unlock(&lock);
	}

	if ((pid_t)syscall(SYS_gettid) != tid)
		snprintf(errs[i], sizeof(errs[i]), "thread %d: gettid() = %ld, expected %d", i,
			 syscall(SYS_gettid), tid);
	for (int j = 0; j < 32; j++)
		if (canary[j] != (0xabcd000000000000ULL ^ ((uint64_t)i << 16) ^ (uint64_t)j)) {
			snprintf(errs[i], sizeof(errs[i]), "thread %d: stack word %d changed", i, j);
			break;
		}
	return (void *)(long)(i + 1);
}

static int cmp_pid(const void *a, const void *b)
{
	return *(const pid_t *)a - *(const pid_t *)b;
}

static void check_tasks(void)
{
	static pid_t seen[NTHREADS + 64];
	pid_t want[NTHREADS + 1];
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0, missing = 0, extra = 0;

	if (!d) {
		fail("opendir /proc/self/task: %s", strerror(errno));
		return;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && n < (int)(sizeof(seen) / sizeof(seen[0])))
			seen[n++] = atoi(e->d_name);
	closedir(d);
	memcpy(want, tids, sizeof(tids));
	want[NTHREADS] = main_tid;
	qsort(seen, (size_t)n, sizeof(pid_t), cmp_pid);
	qsort(want, NTHREADS + 1, sizeof(pid_t), cmp_pid);
	for (int i = 0, j = 0; i < NTHREADS + 1 || j < n;) {
		if (j >= n || (i < NTHREADS + 1 && want[i] < seen[j])) {
			if (++missing <= 3)
				fail("tid %d missing from /proc/self/task", want[i]);
			i++;
		} else if (i >= NTHREADS + 1 || seen[j] < want[i]) {
			if (++extra <= 3)
				fail("unexpected tid %d in /proc/self/task", seen[j]);
			j++;
		} else {
			i++, j++;
		}
	}
	CHECK(!missing && !extra, "/proc/self/task: %d entries, %d of the %d recorded tids missing, %d unexpected",
	      n, missing, NTHREADS + 1, extra);
}

int main(void)
{
	struct timespec ms1 = { 0, 1000 * 1000 };
	pthread_attr_t attr;
	struct timespec dl;
	int n;

	proto_init();
	main_tid = (pid_t)syscall(SYS_gettid);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < NTHREADS; i++)
		if ((errno = pthread_create(&th[i], &attr, worker, (void *)(long)i)))
			die("pthread_create");
	for (int w = 0;; w++) {
		pthread_mutex_lock(&lock);
		n = nready;
		pthread_mutex_unlock(&lock);
		if (n == NTHREADS)
			break;
		if (w > 10000) {
			fail("setup: only %d of %d threads started within 10 s", n, NTHREADS);
			return proto_finish();
		}
		nanosleep(&ms1, NULL);
	}
	nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL); /* let them block */
	check_tasks();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();

	CHECK((pid_t)syscall(SYS_gettid) == main_tid, "main thread: gettid() = %ld, expected %d",
	      syscall(SYS_gettid), main_tid);
	check_tasks();
	pthread_mutex_lock(&lock);
	released = 1;
	released_flag = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10; /* for all the joins together */
	for (int i = 0; i < NTHREADS; i++) {
		void *ret = NULL;
		int e = pthread_timedjoin_np(th[i], &ret, &dl);

		if (e) {
			fail("thread %d (tid %d) not joined within 10 s: %s", i, tids[i], strerror(e));
			continue;
		}
		CHECK(ret == (void *)(long)(i + 1), "thread %d returned %p, expected %p", i, ret,
		      (void *)(long)(i + 1));
		if (errs[i][0])
			fail("%s", errs[i]);
	}
	return proto_finish();
}
