/* Freeing a killed process's memory from here too (process_mrelease,
 * 5.15+). A process killed by SIGKILL frees its memory itself on its way
 * out, on one CPU, and whoever waits for its death waits for that: about
 * 65 ms a GiB here. A second CPU freeing the same memory at the same time
 * shortens the wait. */
#ifndef STASIS_TASK_MRELEASE_H
#define STASIS_TASK_MRELEASE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

struct mrelease {
	pthread_t th;
	int pidfd;
	atomic_int state;	/* 0 not started, 1 waiting for the kill, 2 killed */
	int result;		/* 0: reaped; else the errno that stopped it */
};

/* Before pid is killed: a thread that takes its memory once the kill
 * lands (the process must not reach its own exit first, or there is
 * nothing left to take). false if it could not start: then nothing to do. */
bool mrelease_arm(struct mrelease *m, pid_t pid);
/* Right after the SIGKILL is sent (only after mrelease_arm said true, as
 * mrelease_finish). */
void mrelease_killed(struct mrelease *m);
/* After the process is reaped: the thread is done. 0 if it freed the
 * memory (with the process), else the errno why not (EINVAL: the memory
 * could not be reaped in time; ESRCH: the process freed it alone). */
int mrelease_finish(struct mrelease *m);

#endif
