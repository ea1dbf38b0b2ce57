/* System V shared memory a process has attached (shmat): a mapping of the
 * segment, which lives in the kernel's IPC namespace apart from any
 * process. A dump records the attachment as CRIU does (VMA_AREA_SYSVIPC,
 * shmid the segment's id); the segment itself stays in the kernel (a dump
 * never removes it), and restore attaches the same segment again, so the
 * tree comes back where the segment still is: this host, this IPC
 * namespace. PostgreSQL's postmaster and its children hold one. */
#ifndef STASIS_TASK_SYSV_SHM_H
#define STASIS_TASK_SYSV_SHM_H

#include <stdint.h>
#include <sys/types.h>

#include "mm.pb-c.h"

/* Dump: fills e for the mapping start-end of pid whose /proc/PID/maps
 * inode is shmid (the segment's id) and file offset pgoff. -1 (reported)
 * if it can't come back: another IPC namespace than ours, a segment
 * removed already (IPC_RMID: it goes with its last process), or a mapping
 * of part of it. */
int sysv_shm_dump_vma(pid_t pid, uint64_t start, uint64_t end, uint64_t shmid, uint64_t pgoff, VmaEntry *e);

/* Restore, before any process is made: the segment of e is here, as big as
 * the mapping. -1 (reported) otherwise. */
int sysv_shm_check(pid_t pid, const VmaEntry *e);

/* shmat's flags for e's protection (the rest is set by mprotect after). */
int sysv_shm_attach_flags(const VmaEntry *e);

#endif
