/* STASIS_TEST_DIE_AT=NAME[:N] and STASIS_TEST_SLOW_AT=NAME:MS: see
 * fault.h. The count is shared by the threads of a process (two copy or
 * rebuild at once), and a forked process counts on from where its parent
 * was. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/fault.h"
#include "util/log.h"

static pthread_once_t parsed = PTHREAD_ONCE_INIT;
static char point[64];
static long want;		/* 0: no point named */
static atomic_long passes;
static char slow_point[64];
static long slow_ms;		/* 0: no point named */

/* VAR=NAME[:ARG]: NAME into name (len bytes); ARG, "" without one, or
 * NULL if VAR names no point. */
static const char *parse_var(const char *var, char *name, size_t len)
{
	const char *e = getenv(var);
	const char *colon = e ? strchr(e, ':') : NULL;
	size_t n = e ? (colon ? (size_t)(colon - e) : strlen(e)) : 0;

	if (!n || n >= len)
		return NULL;
	memcpy(name, e, n);
	return colon ? colon + 1 : "";
}

static void parse(void)
{
	const char *n = parse_var("STASIS_TEST_DIE_AT", point, sizeof(point));
	if (n)
		want = *n ? atol(n) : 1;
}

static void parse_slow(void)
{
	const char *ms = parse_var("STASIS_TEST_SLOW_AT", slow_point, sizeof(slow_point));
	if (ms)
		slow_ms = atol(ms);
}

static void slow_down(const char *name)
{
	static pthread_once_t slow_parsed = PTHREAD_ONCE_INIT;

	pthread_once(&slow_parsed, parse_slow);
	if (slow_ms <= 0 || strcmp(slow_point, name))
		return;
	pr_info("test hook: %ld ms at %s (STASIS_TEST_SLOW_AT)", slow_ms, name);
	struct timespec ts = { slow_ms / 1000, (slow_ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void fault_point(const char *name)
{
	slow_down(name);
	pthread_once(&parsed, parse);
	if (want <= 0 || strcmp(point, name) || atomic_fetch_add(&passes, 1) + 1 != want)
		return;
	pr_info("test hook: killed at %s #%ld (STASIS_TEST_DIE_AT)", name, want);
	kill(getpid(), SIGKILL);
}
