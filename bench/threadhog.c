/* threadhog: multi-threaded target for bench.sh.
 *
 *   threadhog [-t THREADS] [-k KiB]
 *
 * Starts THREADS threads (default 100) besides the main thread. Each thread
 * records its tid, maps KiB (default 256) of private anonymous memory and
 * fills every page with non-zero data made of the page index and the thread's
 * number, then blocks in pthread_cond_wait(). Once every thread is set up the
 * main thread writes "READY\n" to stdout and sleeps in a pause() loop.
 *
 * On SIGUSR1 (handled by the main thread only; the others block it) the main
 * thread wakes every thread; each checks that gettid() is the tid it had
 * before READY and that its memory is intact, and reports back. The main
 * thread then appends "VERIFY OK N\n" (N = threads that answered) or
 * "VERIFY BAD ...\n" to stdout, and the threads go back to waiting, so the
 * check can be repeated.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hog.h"

static volatile sig_atomic_t verify_requested;

static int nthreads = 100;
static size_t mem_len, psz;
static pid_t *tids;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;	/* main -> threads */
static pthread_cond_t back = PTHREAD_COND_INITIALIZER;	/* threads -> main */
static int nready;		/* threads set up */
static unsigned generation;	/* bumped by main for each check */
static int nchecked, nbad;	/* answers for the current generation */
static int first_bad = -1;

static void on_usr1(int sig)
{
	(void)sig;
	verify_requested = 1;
}

static unsigned char page_byte(int idx, size_t i)
{
	return (unsigned char)((i * 131u + (size_t)idx * 29u) % 255u + 1u); /* never 0 */
}

static uint64_t page_tag(int idx, size_t i)
{
	return (uint64_t)i ^ ((uint64_t)idx << 40) ^ 0x5448524400000000ull; /* "THRD" */
}

static int check(int idx, const unsigned char *mem)
{
	size_t npages = mem_len / psz;

	if ((pid_t)syscall(SYS_gettid) != tids[idx]) {
		say("VERIFY BAD thread %d: gettid() = %ld, expected %d\n", idx, syscall(SYS_gettid),
		    tids[idx]);
		return 1;
	}
	for (size_t i = 0; i < npages; i++) {
		const unsigned char *p = mem + i * psz;
		unsigned char b = page_byte(idx, i);
		uint64_t tag;

		memcpy(&tag, p, sizeof(tag));
		for (size_t j = sizeof(tag); tag == page_tag(idx, i) && j < psz; j++)
			if (p[j] != b)
				tag = ~tag;
		if (tag != page_tag(idx, i)) {
			say("VERIFY BAD thread %d (tid %d) page %zu\n", idx, tids[idx], i);
			return 1;
		}
	}
	return 0;
}

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	size_t npages = mem_len / psz;
	unsigned char *mem;
	unsigned seen;

	mem = mmap(NULL, mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		say("threadhog: thread %d: mmap: %s\n", idx, strerror(errno));
		_exit(1);
	}
	for (size_t i = 0; i < npages; i++) {
		unsigned char *p = mem + i * psz;
		uint64_t tag = page_tag(idx, i);

		memset(p, page_byte(idx, i), psz);
		memcpy(p, &tag, sizeof(tag));
	}

	pthread_mutex_lock(&lock);
	tids[idx] = (pid_t)syscall(SYS_gettid);
	nready++;
	seen = generation;
	pthread_cond_broadcast(&back);
	for (;;) {
		int bad;

		while (generation == seen)
			pthread_cond_wait(&go, &lock);
		seen = generation;
		pthread_mutex_unlock(&lock);
		bad = check(idx, mem);
		pthread_mutex_lock(&lock);
		nchecked++;
		if (bad) {
			nbad++;
			if (first_bad < 0)
				first_bad = idx;
		}
		pthread_cond_broadcast(&back);
	}
	return NULL;
}

static void verify_all(void)
{
	struct timespec deadline;
	int done, bad, fb, rc = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 30;
	pthread_mutex_lock(&lock);
	generation++;
	nchecked = nbad = 0;
	first_bad = -1;
	pthread_cond_broadcast(&go);
	while (nchecked < nthreads && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&back, &lock, &deadline);
	done = nchecked;
	bad = nbad;
	fb = first_bad;
	pthread_mutex_unlock(&lock);

	if (done < nthreads)
		say("VERIFY BAD only %d of %d threads answered within 30 s\n", done, nthreads);
	else if (bad)
		say("VERIFY BAD %d of %d threads (first: thread %d)\n", bad, nthreads, fb);
	else
		say("VERIFY OK %d\n", nthreads);
}

int main(int argc, char **argv)
{
	long kib = 256;
	struct sigaction sa;
	sigset_t usr1, old;
	pthread_attr_t attr;
	int opt;

	/* Only stdio: fds leaked by whoever started the bench are not ours to dump. */
	syscall(SYS_close_range, 3, ~0u, 0);

	while ((opt = getopt(argc, argv, "t:k:")) != -1) {
		char *end;
		long v;

		errno = 0;
		v = strtol(optarg, &end, 10);
		if (errno || *end || v < 1 || v > 1000000 || (opt != 't' && opt != 'k')) {
			fprintf(stderr, "usage: threadhog [-t THREADS] [-k KiB]\n");
			return 2;
		}
		if (opt == 't')
			nthreads = (int)v;
		else
			kib = v;
	}

	psz = (size_t)sysconf(_SC_PAGESIZE);
	mem_len = ((size_t)kib << 10) / psz * psz;
	if (mem_len == 0)
		mem_len = psz;
	tids = calloc((size_t)nthreads, sizeof(*tids));
	if (!tids) {
		perror("threadhog: calloc");
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL) < 0) {
		perror("threadhog: sigaction");
		return 1;
	}

	/* threads inherit the mask: only the main thread takes SIGUSR1 */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 << 10);
	for (int i = 0; i < nthreads; i++) {
		pthread_t th;
		int e = pthread_create(&th, &attr, worker, (void *)(intptr_t)i);

		if (e) {
			fprintf(stderr, "threadhog: pthread_create %d: %s\n", i, strerror(e));
			return 1;
		}
		pthread_detach(th);
	}
	pthread_attr_destroy(&attr);

	pthread_mutex_lock(&lock);
	while (nready < nthreads)
		pthread_cond_wait(&back, &lock);
	pthread_mutex_unlock(&lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	say("READY %d\n", nthreads);

	for (;;) {
		pause();
		if (verify_requested) {
			verify_requested = 0;
			verify_all();
		}
	}
}
