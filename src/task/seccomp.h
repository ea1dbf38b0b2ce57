/* Seccomp: each thread's mode (strict or filter) and filter chain, both
 * directions, in CRIU's format (thread_core.seccomp_mode/seccomp_filter in
 * core-TID.img, the filters in seccomp.img).
 *
 * A seccomp'd task would be killed (or see errors) by the syscalls stasis
 * injects, so seccomp is looked at right after the tree is seized and
 * before anything is injected: the threads of a process that uses it are
 * traced with PTRACE_O_SUSPEND_SECCOMP (needs CAP_SYS_ADMIN), which a
 * detach (or a dying stasis) lifts again. What can't be handled is refused
 * there, while the tree is still untouched. */
#ifndef STASIS_TASK_SECCOMP_H
#define STASIS_TASK_SECCOMP_H

#include "core.pb-c.h"

struct dump_ctx;
struct dump_tree;
struct rst_ctx;
struct rst_tree;

/* Dump, between the seize and the first injection: reads every thread's
 * mode and no_new_privs, suspends seccomp for our injected calls, copies
 * the filter chains and numbers them for seccomp.img. 0, or -1 (reported,
 * nothing injected). */
int seccomp_dump_collect(struct dump_tree *tr);
/* The thread's mode, first filter and no_new_privs into its core entry
 * (after its creds are filled). */
void seccomp_dump_thread(const struct dump_ctx *dc, int idx, ThreadCoreEntry *th);
/* seccomp.img, if any thread has a filter. */
int seccomp_dump_write(struct dump_tree *tr);
void seccomp_dump_free(struct dump_ctx *dc);

/* Restore: loads seccomp.img (if there) and checks every thread's chain
 * against it before anything is forked. */
int seccomp_restore_load(struct rst_tree *tr);
void seccomp_restore_unload(struct rst_tree *tr);
/* A thread's no_new_privs, then its mode and filters, injected into it;
 * the first call for a process suspends seccomp on all its threads, so
 * that the calls injected after (credentials, cleanup) are not filtered. */
int seccomp_restore_thread(struct rst_ctx *rc, int idx);

#endif
