/* The injection context of one process: the one way dump and restore
 * (and the fd kinds, locks and seccomp on their behalf) run syscalls in a
 * task. It owns the task's threads (victims, infect.h), the thread calls
 * go to, the scratch memory in the task where arguments and results live
 * (with a small allocator for them), the calls, one at a time or in a
 * batch, careful mode, and the undo that leaves the task as found.
 * dump_ctx and rst_ctx each hold one. */
#ifndef STASIS_INFECT_INJECT_H
#define STASIS_INFECT_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "infect/infect.h"

/* One call: its number and up to six arguments (the rest are 0). */
struct inj_call {
	long nr;
	long a[6];
};
#define INJ(nr, ...) ((struct inj_call){ (nr), { __VA_ARGS__ } })

/* Scratch a dump borrows from the main thread's stack: room for results. */
#define INJ_STACK_SCRATCH 256

struct inj {
	pid_t pid;			/* the process, as messages name it */
	const char *doing;		/* what its calls are for: "get", "restore" */
	struct victim *th;		/* its threads, the main one first */
	int nr_th;
	struct victim *cur;		/* the thread calls go to */

	/* Scratch memory in the task, [scr_at, scr_at + scr_size): the
	 * batch code at its start (restore), then from scr_base on call
	 * arguments, handed out from the bottom (up to scr_used). */
	uint64_t scr_at;		/* 0: none */
	size_t scr_size, scr_base, scr_used;
	uint64_t batch_code;		/* 0: no batch code, calls one by one */
	bool scr_mapped;		/* restore: our own mapping, unmapped at the end */
	uint8_t scr_saved[INJ_STACK_SCRATCH];	/* dump: the stack bytes it covers */
	size_t scr_saved_len;
};

/* An empty context for process pid; doing names what a failed call was
 * for in its error ("can't get signal handlers"). */
void inj_init(struct inj *ij, pid_t pid, const char *doing);
/* Frees the threads (let go or killed before). */
void inj_free(struct inj *ij);

/* ---- threads ---- */

/* Seizes thread tid and adds it (the main thread first); interrupted:
 * seized and interrupted already (infect_seize_interrupted). -1 with
 * errno of the seize (ESRCH: gone, not reported). */
int inj_seize_thread(struct inj *ij, pid_t tid, bool interrupted);
/* Room for nr threads, to be seized or cloned into (restore). */
int inj_alloc_threads(struct inj *ij, int nr);
/* Calls go to thread idx from now on. */
void inj_use(struct inj *ij, int idx);
/* Restore: the thread the main thread's last injected clone made (traced
 * with PTRACE_O_TRACECLONE) becomes thread idx. */
int inj_adopt_clone(struct inj *ij, int idx);

/* ---- modes ---- */

/* Dump: careful calls (infect.h), for a task whose vdso starts at
 * vdso_start, results into scratch borrowed from the main thread's stack. */
int inj_start_careful(struct inj *ij, uint64_t vdso_start);
/* The same for a task without a vdso: from a syscall instruction of its
 * code at syscall_ip. */
int inj_start_careful_at(struct inj *ij, uint64_t syscall_ip);
/* Restore: plain calls from the vdso the task has of ours (it is our
 * fork), every signal of the main thread blocked. */
int inj_start_plain(struct inj *ij);
/* Restore: the vdso was moved by delta; calls follow it. */
void inj_vdso_moved(struct inj *ij, int64_t delta);

/* ---- scratch ---- */

/* Restore: maps the scratch at `at` (size bytes, page aligned) with the
 * batch code at its start. */
int inj_scratch_map(struct inj *ij, uint64_t at, size_t size);
/* Restore: unmaps it, the last trace of stasis in the task. */
int inj_scratch_unmap(struct inj *ij);

/* Room for len bytes of call argument in the scratch, its address in
 * *addr; with buf, those bytes copied there. Freed by inj_args_release
 * with a mark taken before. */
int inj_arg(struct inj *ij, const void *buf, size_t len, uint64_t *addr);
size_t inj_args_mark(const struct inj *ij);
void inj_args_release(struct inj *ij, size_t mark);
/* Writes into room inj_arg gave (for an argument that points into itself). */
int inj_write(struct inj *ij, uint64_t addr, const void *buf, size_t len);
/* Reads what a call left in the task's memory. */
int inj_read(struct inj *ij, uint64_t addr, void *buf, size_t len);

/* ---- calls ---- */

/* The raw result (a negative errno on failure) in *ret; -1 only when
 * ptrace failed (reported). */
int inj_call(struct inj *ij, long *ret, struct inj_call c);
/* A call that must succeed: a failure is reported as "can't DOING what".
 * ret may be NULL. */
int inj_must(struct inj *ij, const char *what, long *ret, struct inj_call c);
/* A call that must succeed, with len bytes of in copied into the scratch
 * as its argument number arg (0-based). */
int inj_must_in(struct inj *ij, const char *what, struct inj_call c, int arg, const void *in, size_t len);
/* The same with n such arguments. */
struct inj_in {
	int arg;
	const void *buf;
	size_t len;
};
int inj_must_ins(struct inj *ij, const char *what, struct inj_call c, const struct inj_in *in, int n);
/* A call that must succeed and writes len bytes at its argument number
 * arg (0-based), which point into the scratch: those bytes into out. */
int inj_must_out(struct inj *ij, const char *what, struct inj_call c, int arg, void *out, size_t len);

/* Calls that need no order among them, each of which must succeed: run
 * in one ptrace round trip where the scratch has the batch code
 * (restore), else one by one. A failed call does not stop the others of
 * its batch; the first failure is reported. */
#define INJ_BATCH_MAX 64
struct inj_batch {
	int n;
	struct inj_call call[INJ_BATCH_MAX];
	const char *what[INJ_BATCH_MAX];
};
/* Adds a call; a full batch is run first. Arguments given with inj_arg
 * must stay until the batch has run. */
int inj_batch_add(struct inj *ij, struct inj_batch *b, const char *what, struct inj_call c);
/* Adds a call whose argument number arg is len bytes of in, copied into
 * the scratch (freed with the caller's mark, after the run). */
int inj_batch_add_in(struct inj *ij, struct inj_batch *b, const char *what, struct inj_call c, int arg,
		     const void *in, size_t len);
/* Runs what was added (nothing: 0) and empties the batch. */
int inj_batch_run(struct inj *ij, struct inj_batch *b);

/* ---- the end ---- */

/* Restore: every thread let go with the registers and mask set now, the
 * main thread last. */
int inj_let_go(struct inj *ij);

/* Dump: the borrowed stack bytes back, every thread parked with its own
 * registers and mask, and the trampoline wiped from the vdso. Goes on
 * past a failure (reported) with what it can: a thread it could not
 * park keeps the trampoline, which it may still need. */
int inj_undo(struct inj *ij);

#endif
