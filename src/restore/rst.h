/* Restore of one process: what is loaded from the images and shared by the
 * steps of restore.c, mem.c and task.c. */
#ifndef STASIS_RST_H
#define STASIS_RST_H

#include "cli/opts.h"
#include "files/files.h"
#include "infect/infect.h"
#include "core.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

/* Scratch area mapped in the new task for syscall arguments. */
#define RST_SCRATCH_SIZE (64u << 10)

struct rst_ctx {
	const struct opts *o;
	int dirfd;
	pid_t pid;
	PstreeEntry *pe;
	CoreEntry *core;
	MmEntry *mm;
	FsEntry *fs;
	FdinfoEntry **fdinfo;
	int nr_fdinfo;
	PagemapEntry **pagemap;
	int nr_pagemap;
	struct rst_files files;

	/* Service fds of the new task, numbered from service_base: what the
	 * injected syscalls use, closed before it runs. */
	int service_base;
	int log_fd;		/* first of two: log file, stderr */
	int tty_fd;
	int pages_fd, exe_fd;
	int *vma_fd;		/* per VMA index, -1 if not file-backed */

	struct victim v;
	uint64_t scratch;
};

/* restore/mem.c */
/* Service fd numbers are planned before the fork so that both sides know
 * them; the child then opens the files into them. */
void rst_mem_plan_fds(struct rst_ctx *rc, int *next_fd);
int rst_mem_open_fds(struct rst_ctx *rc);			/* child side */
int rst_mem_rebuild(struct rst_ctx *rc);			/* ptracer side */
int rst_mm_fields(struct rst_ctx *rc);
/* restore/task.c */
int rst_task_state(struct rst_ctx *rc);
int rst_task_regs(struct rst_ctx *rc);

/* Injected syscall that must succeed; what names it in the error. */
int rst_inject(struct rst_ctx *rc, const char *what, long *ret, long nr, long a1, long a2,
	       long a3, long a4, long a5, long a6);
int rst_scratch_write(struct rst_ctx *rc, size_t off, const void *buf, size_t len);

#endif
