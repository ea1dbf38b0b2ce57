#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "util/progress.h"

#define DRAW_EVERY_MS 200	/* five times a second at most */
#define SHOW_AFTER_MS 500	/* a short operation shows nothing, */
#define SHOW_MIN_BYTES (64ull << 20)	/* nor a small one: a line for less */
#define SHOW_MIN_TASKS 16		/* would only flash by (or under load, stay) */
#define LOCK_WAIT_MS  100	/* the line's lock is held for one write(2) */
#define DRAWER_STACK  (256 << 10)	/* with room for the static TLS (73 KiB) */

/* Shared with the processes a restore forks (they count and may print
 * errors); the lock says who writes on the terminal's line. */
struct progress_page {
	_Atomic uint64_t done, total;
	_Atomic unsigned tasks_done;
	atomic_flag lock;
	_Atomic bool shown;	/* a progress line is on the screen */
};

static bool allowed;
/* NULL: off. The page itself stays mapped once made: a thread that read
 * the pointer just before progress_end still finds it there. */
static struct progress_page *_Atomic P;
static struct progress_page *page;
static const char *what;
static unsigned tasks;
static uint64_t started_ms, show_after_ms;

static pthread_t drawer;
static bool drawing;
static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static bool stopping;

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void progress_allow(bool yes)
{
	allowed = yes;
}

void progress_bytes(uint64_t n)
{
	struct progress_page *p = atomic_load_explicit(&P, memory_order_relaxed);
	if (p)
		atomic_fetch_add_explicit(&p->done, n, memory_order_relaxed);
}

void progress_grow(int64_t n)
{
	struct progress_page *p = atomic_load_explicit(&P, memory_order_relaxed);
	if (p)
		atomic_fetch_add_explicit(&p->total, (uint64_t)n, memory_order_relaxed);
}

void progress_task_done(void)
{
	struct progress_page *p = atomic_load_explicit(&P, memory_order_relaxed);
	if (p)
		atomic_fetch_add_explicit(&p->tasks_done, 1, memory_order_relaxed);
}

/* A process killed while it held the lock (it only does between two
 * writes) must not hang the others: after a while it is taken anyway. */
static bool lock_line(bool wait)
{
	uint64_t until = wait ? now_ms() + LOCK_WAIT_MS : 0;
	while (atomic_flag_test_and_set_explicit(&page->lock, memory_order_acquire)) {
		if (!wait)
			return false;
		if (now_ms() > until)
			return true;	/* taken anyway */
		sched_yield();
	}
	return true;
}

static void unlock_line(void)
{
	atomic_flag_clear_explicit(&page->lock, memory_order_release);
}

static void put(const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(2, s, len);
		if (n <= 0)
			return;	/* a display is not worth an error */
		s += n;
		len -= n;
	}
}

static void clear_line(void)
{
	if (atomic_load_explicit(&page->shown, memory_order_relaxed)) {
		put("\r\033[K", 4);
		atomic_store_explicit(&page->shown, false, memory_order_relaxed);
	}
}

bool progress_pause(void)
{
	if (!P)
		return false;
	lock_line(true);
	clear_line();
	return true;
}

void progress_resume(bool paused)
{
	if (paused)
		unlock_line();
}

static int fmt_left(char *buf, size_t size, uint64_t secs)
{
	if (secs >= 3600)
		return snprintf(buf, size, "%lu:%02lu:%02lu", (unsigned long)(secs / 3600),
				(unsigned long)(secs / 60 % 60), (unsigned long)(secs % 60));
	return snprintf(buf, size, "%lu:%02lu", (unsigned long)(secs / 60), (unsigned long)(secs % 60));
}

/* The rate is that of the last second or so: the draws' samples. */
#define SAMPLES 5
struct samples {
	uint64_t ms[SAMPLES], done[SAMPLES];
	unsigned n;
};

/* Bytes a second since the oldest sample kept (at first, since the
 * start), then the newest kept in place of the oldest. */
static uint64_t rate_now(struct samples *sm, uint64_t now, uint64_t done)
{
	unsigned oldest = sm->n < SAMPLES ? 0 : sm->n % SAMPLES;
	uint64_t t0 = sm->n ? sm->ms[oldest] : started_ms, d0 = sm->n ? sm->done[oldest] : 0;
	sm->ms[sm->n % SAMPLES] = now;
	sm->done[sm->n % SAMPLES] = done;
	sm->n++;
	return now > t0 && done > d0 ? (done - d0) * 1000 / (now - t0) : 0;
}

/* Integers only, no stdio stream, no allocation: the restore forks its
 * processes while this runs, and they must not inherit a lock held. */
static void draw(uint64_t now, struct samples *sm)
{
	uint64_t done = atomic_load_explicit(&page->done, memory_order_relaxed);
	uint64_t total = atomic_load_explicit(&page->total, memory_order_relaxed);
	unsigned td = atomic_load_explicit(&page->tasks_done, memory_order_relaxed);
	char line[160], left[32] = "?";

	uint64_t rate = rate_now(sm, now, done);
	if (now - started_ms < show_after_ms || (td >= tasks && done >= total) ||
	    (total < SHOW_MIN_BYTES && tasks < SHOW_MIN_TASKS))
		return;
	if (done > total)
		total = done;	/* the guess was short */
	if (rate)
		fmt_left(left, sizeof(left), (total - done + rate - 1) / rate);
	snprintf(line, sizeof(line), "\r%s: %u/%u processes, %lu/%lu MiB, %lu MiB/s, %s left\033[K", what,
		 td > tasks ? tasks : td, tasks, (unsigned long)(done >> 20), (unsigned long)(total >> 20),
		 (unsigned long)(rate >> 20), left);
	if (!lock_line(false))
		return;	/* someone prints: next time */
	put(line, strlen(line));
	atomic_store_explicit(&page->shown, true, memory_order_relaxed);
	unlock_line();
}

static void *drawer_run(void *arg)
{
	struct samples sm = { .n = 0 };
	(void)arg;
	pthread_mutex_lock(&wake_mu);
	while (!stopping) {
		draw(now_ms(), &sm);	/* nothing before show_after_ms */
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += DRAW_EVERY_MS * 1000000l;
		if (t.tv_nsec >= 1000000000l) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000l;
		}
		pthread_cond_timedwait(&wake, &wake_mu, &t);
	}
	pthread_mutex_unlock(&wake_mu);
	return NULL;
}

void progress_begin(const char *w, unsigned nr_tasks, uint64_t bytes)
{
	if (!allowed || P)
		return;
	if (!page) {
		void *p = mmap(NULL, sizeof(*page), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return;	/* no display, nothing else lost */
		page = p;
	}
	memset(page, 0, sizeof(*page));
	atomic_flag_clear(&page->lock);
	page->total = bytes;
	what = w;
	tasks = nr_tasks;
	started_ms = now_ms();
	/* a test hook: the tests' dumps are too quick to be shown otherwise */
	const char *after = getenv("STASIS_TEST_PROGRESS_AFTER_MS");
	show_after_ms = after ? strtoull(after, NULL, 10) : SHOW_AFTER_MS;
	P = page;
}

void progress_show(void)
{
	pthread_condattr_t ca;
	if (!P || drawing)
		return;
	stopping = false;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wake, &ca);
	pthread_condattr_destroy(&ca);
	/* a small stack: a restore's processes inherit our address space,
	 * and less of it is in the way of their own mappings (premap.c) */
	pthread_attr_t at;
	drawing = pthread_attr_init(&at) == 0;
	if (drawing) {
		pthread_attr_setstacksize(&at, DRAWER_STACK);
		drawing = pthread_create(&drawer, &at, drawer_run, NULL) == 0;
		pthread_attr_destroy(&at);
	}
	if (!drawing)	/* too small after all: the default one */
		drawing = pthread_create(&drawer, NULL, drawer_run, NULL) == 0;
	if (!drawing)
		pthread_cond_destroy(&wake);
}

void progress_end(void)
{
	if (!P)
		return;
	if (drawing) {
		pthread_mutex_lock(&wake_mu);
		stopping = true;
		pthread_cond_signal(&wake);
		pthread_mutex_unlock(&wake_mu);
		pthread_join(drawer, NULL);
		pthread_cond_destroy(&wake);
		drawing = false;
	}
	lock_line(true);
	clear_line();
	unlock_line();
	P = NULL;
}
