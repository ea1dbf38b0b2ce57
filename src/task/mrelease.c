/* process_mrelease beside a dying process (mrelease.h). The call only
 * works between the kill and the moment the process detaches its memory
 * to free it itself; the dying process gets there within microseconds
 * of waking, so the thread is already calling it when the kill is sent:
 * before the kill it fails with EINVAL (the process is not dying), after
 * it reaps. It gives up soon after the kill if the memory can't be
 * reaped (EINVAL still: another process shares it). */
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "task/mrelease.h"

#define TRIES_AFTER_KILL 2000	/* a few ms of EINVAL after the kill: not reapable */
#define TRIES_BEFORE_KILL 20000000	/* bounded, in case the caller never kills */

static void *run(void *arg)
{
	struct mrelease *m = arg;
	long after = 0;
	m->result = EINVAL;
	atomic_store(&m->state, 1);
	for (long i = 0; i < TRIES_BEFORE_KILL && after < TRIES_AFTER_KILL; i++) {
		bool killed = atomic_load(&m->state) == 2;
		if (syscall(SYS_process_mrelease, m->pidfd, 0) == 0) {
			m->result = 0;
			break;
		}
		if (errno != EINVAL) {
			m->result = errno;	/* gone already (ESRCH), or no such call */
			break;
		}
		after += killed;
	}
	return NULL;
}

bool mrelease_arm(struct mrelease *m, pid_t pid)
{
	*m = (struct mrelease){ .pidfd = syscall(SYS_pidfd_open, pid, 0) };
	if (m->pidfd < 0)
		return false;
	if (pthread_create(&m->th, NULL, run, m)) {
		close(m->pidfd);
		return false;
	}
	while (!atomic_load(&m->state))
		sched_yield();	/* the thread is calling before the kill is sent */
	return true;
}

void mrelease_killed(struct mrelease *m)
{
	atomic_store(&m->state, 2);
}

int mrelease_finish(struct mrelease *m)
{
	pthread_join(m->th, NULL);
	close(m->pidfd);
	return m->result;
}
