#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include "image/vma.h"
#include "ns/ns.h"
#include "task/sysv_shm.h"
#include "util/log.h"
#include "proc/ns_ids.h"

static bool same_ipc_ns(pid_t pid)
{
	return ns_same(pid, 0, "ipc") == 1;
}

static uint64_t page_up(uint64_t n)
{
	return (n + PAGE_SZ - 1) & ~(PAGE_SZ - 1);
}

struct shm_stat {
	int shmid;
	struct shmid_ds *ds;
	int err;
};

static int stat_here(void *arg)
{
	struct shm_stat *s = arg;
	if (shmctl(s->shmid, IPC_STAT, s->ds) == 0)
		return 0;
	s->err = errno;
	return -1;
}

/* IPC_STAT in pid's IPC namespace: ours, or the tree's own (saved whole
 * by ns/ipc.c, and looked at from inside). */
static int shm_stat(pid_t pid, uint64_t shmid, struct shmid_ds *ds)
{
	struct shm_stat s = { (int)shmid, ds, 0 };
	if (shmid > INT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	int ret = same_ipc_ns(pid) ? stat_here(&s) : ns_in_thread(pid, CLONE_NEWIPC, stat_here, &s);
	errno = s.err ? s.err : errno;
	return ret;
}

int sysv_shm_dump_vma(pid_t pid, uint64_t start, uint64_t end, uint64_t shmid, uint64_t pgoff, VmaEntry *e)
{
	struct shmid_ds ds;

	if (shm_stat(pid, shmid, &ds) < 0) {
		pr_perror("pid %d: can't look at System V shared memory %lu at %#lx", pid, (unsigned long)shmid,
			  (unsigned long)start);
		return -1;
	}
	if (ds.shm_perm.mode & SHM_DEST) {
		pr_err("pid %d: System V shared memory %lu at %#lx was removed (IPC_RMID) and goes away with the "
		       "last process attached; it can't be restored", pid, (unsigned long)shmid, (unsigned long)start);
		return -1;
	}
	if (pgoff || end - start != page_up(ds.shm_segsz)) {
		pr_err("pid %d: only part of System V shared memory %lu (%zu bytes) is mapped at %#lx-%#lx; "
		       "stasis restores whole attachments only", pid, (unsigned long)shmid, (size_t)ds.shm_segsz,
		       (unsigned long)start, (unsigned long)end);
		return -1;
	}
	/* CRIU's way of writing it */
	e->status = VMA_AREA_REGULAR | VMA_ANON_SHARED | VMA_AREA_SYSVIPC;
	e->flags = MAP_SHARED | MAP_ANONYMOUS;
	e->shmid = shmid;
	e->pgoff = 0;
	return 0;
}

int sysv_shm_check(pid_t pid, const VmaEntry *e)
{
	struct shmid_ds ds;

	if (e->shmid > INT32_MAX || shmctl((int)e->shmid, IPC_STAT, &ds) < 0) {
		pr_err("pid %d: System V shared memory %lu (attached at %#lx) is not here (%s): the tree comes back "
		       "only where the segment still is, on the host and in the IPC namespace of the dump",
		       pid, (unsigned long)e->shmid, (unsigned long)e->start,
		       errno == EINVAL || errno == EIDRM ? "no such segment" : strerror(errno));
		return -1;
	}
	if (e->end - e->start != page_up(ds.shm_segsz)) {
		pr_err("pid %d: System V shared memory %lu is %zu bytes now, not the %lu attached at %#lx: another "
		       "segment took its id", pid, (unsigned long)e->shmid, (size_t)ds.shm_segsz,
		       (unsigned long)(e->end - e->start), (unsigned long)e->start);
		return -1;
	}
	return 0;
}

int sysv_shm_attach_flags(const VmaEntry *e)
{
	return (e->prot & PROT_WRITE ? 0 : SHM_RDONLY) | (e->prot & PROT_EXEC ? SHM_EXEC : 0);
}
