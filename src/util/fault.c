/* STASIS_TEST_DIE_AT=NAME[:N]: see fault.h. The count is shared by the
 * threads of a process (two copy or rebuild at once), and a forked
 * process counts on from where its parent was. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fault.h"
#include "util/log.h"

static pthread_once_t parsed = PTHREAD_ONCE_INIT;
static char point[64];
static long want;		/* 0: no point named */
static atomic_long passes;

static void parse(void)
{
	const char *e = getenv("STASIS_TEST_DIE_AT");
	const char *colon = e ? strchr(e, ':') : NULL;
	size_t n = e ? (colon ? (size_t)(colon - e) : strlen(e)) : 0;

	if (!n || n >= sizeof(point))
		return;
	memcpy(point, e, n);
	want = colon ? atol(colon + 1) : 1;
}

void fault_point(const char *name)
{
	pthread_once(&parsed, parse);
	if (want <= 0 || strcmp(point, name) || atomic_fetch_add(&passes, 1) + 1 != want)
		return;
	pr_info("test hook: killed at %s #%ld (STASIS_TEST_DIE_AT)", name, want);
	kill(getpid(), SIGKILL);
}
