/* What a process sets on itself through its own /proc files:
 * oom_score_adj and loginuid (task_core_entry in core-PID.img), written
 * by the process (an injected write to its /proc/self/NAME, which it
 * opened before it dropped root, restore/tree.c), so the kernel weighs
 * its rights, not stasis's: lowering oom_score_adj below
 * what it inherited takes CAP_SYS_RESOURCE, changing a set loginuid
 * CAP_AUDIT_CONTROL, and the kernel lets only the process itself write
 * its loginuid. For a non-root client the images' values are checked
 * first (restore/unpriv.c). */
#ifndef STASIS_TASK_OWN_PROC_H
#define STASIS_TASK_OWN_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.pb-c.h"

struct inj;

#define LOGINUID_UNSET 4294967295u

/* A value of /proc/PID/NAME (decimal), 0 or -1 (errno: ENOENT where the
 * kernel has no such file, as loginuid without CONFIG_AUDITSYSCALL). */
int own_proc_read(pid_t pid, const char *name, long long *v);

/* /proc/self/NAME opened for writing, as an fd at or above min (none
 * from the kernel: -1, not reported): by the process, while it still may. */
int own_proc_open(const char *name, int min);

/* The process real_pid (ij's, main thread) takes tc's values where they
 * differ from what it has: a loginuid that can't be set fails the
 * restore (the audit trail depends on it), an oom_score_adj only warns
 * (as CRIU). tc's loginuid is as the tree's user namespace names it
 * (ns/user.h); the kernel reads what is written as the opener of
 * loginuid_fd names it: opened_inside says the process opened it in
 * that namespace. */
int own_proc_restore(struct inj *ij, pid_t real_pid, const TaskCoreEntry *tc, int oom_fd, int loginuid_fd,
		     bool opened_inside);

#endif
