/* Shared anonymous memory: each object the images name (the shmid of the
 * VMA_ANON_SHARED mappings) is made once, by stasis before it forks the
 * tree: a shared anonymous mapping of the object's size (the farthest any
 * mapping of it reaches, pgoff + length, as CRIU counts it), filled with
 * the saved pages, opened through /proc/self/map_files (which opens the
 * object itself, the shmem file) and unmapped. The fd is kept above the
 * pool, so every process of the tree inherits it, and each maps it
 * MAP_SHARED at its mappings' addresses and offsets (restore/mem.c): one
 * object again, shared by all, and still anonymous ("/dev/zero (deleted)"
 * in /proc/PID/maps, as before the dump, for the next dump to find).
 * Memory of MAP_HUGETLB mappings is made so too, in huge pages. */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image/shmem_pages.h"
#include "image/vma.h"
#include "restore/rst.h"
#include "task/sysv_shm.h"
#include "util/log.h"

#define SHMEM_MAX_SIZE (1ul << 47)

struct rst_shmem_obj {
	uint64_t shmid;
	uint64_t size;
	int huge;		/* MAP_HUGETLB and its page size, for huge pages */
	int fd;			/* kept, once made; -1 before */
};

static struct rst_shmem_obj *find(const struct rst_shmem *s, uint64_t shmid)
{
	for (int i = 0; i < s->nr; i++)
		if (s->o[i].shmid == shmid)
			return &s->o[i];
	return NULL;
}

static struct rst_shmem_obj *add(struct rst_shmem *s, uint64_t shmid)
{
	struct rst_shmem_obj *n = realloc(s->o, (s->nr + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory listing shared memory");
		return NULL;
	}
	s->o = n;
	n = &s->o[s->nr++];
	*n = (struct rst_shmem_obj){ .shmid = shmid, .fd = -1 };
	return n;
}

static int check_mapping(const struct rst_ctx *rc, const VmaEntry *e)
{
	if (e->end <= e->start || e->end - e->start > SHMEM_MAX_SIZE || e->pgoff > SHMEM_MAX_SIZE ||
	    (e->pgoff & (PAGE_SZ - 1))) {
		pr_err("image mm-%d.img: bad shared memory mapping %#lx-%#lx at offset %#lx", rc->pid,
		       (unsigned long)e->start, (unsigned long)e->end, (unsigned long)e->pgoff);
		return -1;
	}
	return 0;
}

static int collect_task(struct rst_shmem *s, const struct rst_ctx *rc, const struct ns_restore *ns)
{
	for (size_t i = 0; i < rc->mm->n_vmas; i++) {
		const VmaEntry *e = rc->mm->vmas[i];
		if (!(e->status & VMA_ANON_SHARED))
			continue;
		/* attached again as it is: a segment of the tree's own IPC
		 * namespace, made at restore, or one still here */
		if (e->status & VMA_AREA_SYSVIPC) {
			if ((ns->flags & CLONE_NEWIPC) ? ns_ipc_check_shm(&ns->ipc, rc->pid, e) < 0
						      : sysv_shm_check(rc->pid, e) < 0)
				return -1;
			continue;
		}
		if (check_mapping(rc, e) < 0)
			return -1;
		struct rst_shmem_obj *o = find(s, e->shmid);
		if (!o && !(o = add(s, e->shmid)))
			return -1;
		if (o->size < e->pgoff + (e->end - e->start))
			o->size = e->pgoff + (e->end - e->start);
		o->huge |= e->flags & (MAP_HUGETLB | ((unsigned)MAP_HUGE_MASK << MAP_HUGE_SHIFT));
	}
	return 0;
}

int rst_shmem_load(struct rst_tree *tr)
{
	for (int i = 0; i < tr->nr; i++) {
		tr->t[i].shmem = &tr->shmem;
		if (!tr->t[i].zombie && collect_task(&tr->shmem, &tr->t[i], &tr->ns) < 0)
			return -1;
	}
	return 0;
}

void rst_shmem_unload(struct rst_tree *tr)
{
	for (int i = 0; i < tr->shmem.nr; i++)
		if (tr->shmem.o[i].fd >= 0)
			close(tr->shmem.o[i].fd);
	free(tr->shmem.o);
	tr->shmem.o = NULL;
	tr->shmem.nr = 0;
}

/* The object, filled, as an fd of ours (-1: reported). */
static int make_one(int dirfd, const struct rst_shmem_obj *o)
{
	char path[96];
	uint8_t *mem = mmap(NULL, o->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | o->huge, -1, 0);
	if (mem == MAP_FAILED) {
		pr_perror("can't make shared memory %lu (%lu bytes)", (unsigned long)o->shmid,
			  (unsigned long)o->size);
		return -1;
	}
	int fd = -1;
	if (shmem_pages_read(dirfd, o->shmid, mem, o->size) == 0) {
		snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)mem,
			 (unsigned long)mem + o->size);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			pr_perror("can't open shared memory %lu through %s", (unsigned long)o->shmid, path);
	}
	munmap(mem, o->size);
	return fd;
}

int rst_shmem_make(struct rst_tree *tr)
{
	char what[64];
	for (int i = 0; i < tr->shmem.nr; i++) {
		struct rst_shmem_obj *o = &tr->shmem.o[i];
		snprintf(what, sizeof(what), "shared memory %lu", (unsigned long)o->shmid);
		o->fd = files_keep_fd(&tr->files, make_one(tr->dirfd, o), what);
		if (o->fd < 0)
			return -1;
		pr_info("%s: %lu KiB made", what, (unsigned long)(o->size >> 10));
	}
	return 0;
}

int rst_shmem_fd(const struct rst_shmem *s, uint64_t shmid)
{
	const struct rst_shmem_obj *o = find(s, shmid);
	return o ? o->fd : -1;
}
