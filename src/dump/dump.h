/* Dump of one process: the state collected while it is stopped. */
#ifndef STASIS_DUMP_H
#define STASIS_DUMP_H

#include "cli/opts.h"
#include "infect/infect.h"
#include "proc/proc.h"
#include "files/files.h"
#include "mm.pb-c.h"

/* Size of the scratch area injected into the task for syscall results. */
#define SCRATCH_SIZE 4096

struct dump_ctx {
	const struct opts *o;
	int dirfd;
	pid_t pid;
	struct victim v;
	bool seized;
	uint64_t scratch;		/* address of the injected scratch page */
	struct proc_stat stat;
	struct proc_status status;
	struct proc_vmas vmas;
	struct file_table files;
	MmEntry mm;			/* filled by dump_task_mm_prepare */
};

int stasis_dump(const struct opts *o);

/* dump/task.c: registers, signals, creds, limits... -> core-PID.img */
int dump_task_core(struct dump_ctx *dc);
/* dump/mem.c: mappings -> mm-PID.img, pages -> pagemap-PID.img + pages-1.img */
int dump_task_mm_prepare(struct dump_ctx *dc);
int dump_task_mm(struct dump_ctx *dc);
/* Runs a syscall in the dumped task; *ret gets the result. */
int dump_inject(struct dump_ctx *dc, long *ret, long nr, long a1, long a2, long a3, long a4);

#endif
