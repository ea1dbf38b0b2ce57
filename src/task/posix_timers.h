/* POSIX timers (timer_create) of a process, both directions, in CRIU's
 * format (task_timers_entry.posix in the main thread's core-PID.img).
 *
 * Dump: what each was created with comes from /proc/PID/timers, its time
 * left, interval and overrun from the process itself (timer_gettime,
 * timer_getoverrun, injected).
 *
 * Restore: each comes back with its old id, which programs hold as their
 * timer_t. Kernels with PR_TIMER_CREATE_RESTORE_IDS (6.18 has it) create a
 * timer with the id asked for; older ones hand out ids in order from 0
 * in a new process, so timers are created in the order of their ids and
 * the ids in between are taken and given back. Created after the threads
 * (a timer may signal one thread), armed last, just before the process is
 * let go (CRIU does the same); all by the process itself, so the kernel
 * weighs its own rights (an alarm clock needs CAP_WAKE_ALARM). */
#ifndef STASIS_TASK_POSIX_TIMERS_H
#define STASIS_TASK_POSIX_TIMERS_H

#include <sys/types.h>

#include "core.pb-c.h"

struct inj;

/* The timers of process pid (as our /proc sees it) into t->posix; its
 * threads are ij's, ns_tid their ids as the process sees them. */
int ptimers_dump(struct inj *ij, pid_t pid, const pid_t *ns_tid, TaskTimersEntry *t);

/* Checks the image's timers (any image may be a client's word). */
int ptimers_check(pid_t pid, const TaskTimersEntry *t);
/* Creates them, through the main thread, once every thread is there. */
int ptimers_create(struct inj *ij, const TaskTimersEntry *t);
/* Arms them: the last calls before the process runs. */
int ptimers_arm(struct inj *ij, const TaskTimersEntry *t);

#endif
