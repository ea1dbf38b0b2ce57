/* Seccomp: each thread's mode (strict or filter) and filter chain, both
 * directions, in CRIU's format (thread_core.seccomp_mode/seccomp_filter in
 * core-TID.img, the filters in seccomp.img).
 *
 * A seccomp'd task would be killed (or see errors) by the syscalls stasis
 * injects, so seccomp is looked at right after the tree is seized and
 * before anything is injected: the threads of a process that uses it are
 * traced with PTRACE_O_SUSPEND_SECCOMP (needs CAP_SYS_ADMIN), which a
 * detach (or a dying stasis) lifts again. What can't be handled is refused
 * there, while the tree is still untouched.
 *
 * It knows a process by its injection context (pid, threads, the calls
 * run in it) and, at restore, by its core entries: dump and restore hold
 * what it keeps of each process by pointer. */
#ifndef STASIS_TASK_SECCOMP_H
#define STASIS_TASK_SECCOMP_H

#include <stdint.h>

#include "proc/proc.h"
#include "core.pb-c.h"
#include "seccomp.pb-c.h"

struct inj;

/* ---- dump ---- */

/* One process's modes, no_new_privs and filter chains. */
struct seccomp_task;

/* The tree's chains, in seccomp.img order: the processes as collected.
 * It owns every seccomp_task collected into it. Zeroed: empty. */
struct seccomp_chains {
	struct seccomp_task *first, *last;
	uint32_t nr_filters;		/* numbered so far */
};

/* One live process, between the seize and the first injection, every
 * thread stopped (main_st: its main thread's status, read then): reads
 * each thread's mode and no_new_privs, suspends seccomp for our injected
 * calls, copies the filter chains and numbers them for seccomp.img.
 * *out is the process's, even after a failure. 0, or -1 (reported,
 * nothing injected). */
int seccomp_dump_collect(struct seccomp_chains *all, struct inj *ij, const struct proc_status *main_st,
			 struct seccomp_task **out);
/* The thread's mode, first filter and no_new_privs into its core entry
 * (after its creds are filled); sc NULL: nothing was collected. */
void seccomp_dump_thread(const struct seccomp_task *sc, int idx, ThreadCoreEntry *th);
/* seccomp.img, if any thread has a filter. */
int seccomp_dump_write(const struct seccomp_chains *all, int dirfd);
void seccomp_dump_free(struct seccomp_chains *all);

/* ---- restore ---- */

/* What one process's threads get back, checked against seccomp.img. */
struct seccomp_plan;

/* seccomp.img of the dump in dirfd, *img NULL if there is none; unload
 * frees it, even after a failed load. */
int seccomp_restore_load(int dirfd, SeccompEntry **img);
void seccomp_restore_unload(SeccompEntry *img);
/* Each thread's mode, chain and no_new_privs from its core (tids: as the
 * images name them), checked before anything is forked. *out is the
 * process's, even after a failure; seccomp_plan_free frees it. */
int seccomp_restore_plan(const SeccompEntry *img, pid_t pid, CoreEntry *const *core, const uint32_t *tids,
			 int nr_th, struct seccomp_plan **out);
void seccomp_plan_free(struct seccomp_plan *p);
/* A thread's no_new_privs, then its mode and filters, injected into it;
 * the first call for a process suspends seccomp on all its threads, so
 * that the calls injected after (credentials, cleanup) are not filtered. */
int seccomp_restore_thread(const struct seccomp_plan *p, struct inj *ij, int idx);

#endif
