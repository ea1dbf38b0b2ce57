/* Shared anonymous memory: each process's mm-PID.img names the object of
 * each such mapping by its inode (VmaEntry.shmid, with the mapping's
 * offset in it in pgoff), and the object's pages are saved once, in
 * pagemap-shmem-SHMID.img, not in any process's pagemap.
 *
 * The object is read through a /proc/PID/map_files link of any process
 * that maps it: the link opens the object itself (the shmem file), so
 * every page of it is there, whoever wrote it, even one that no living
 * process has in its page tables (a child wrote it and exited) or one
 * swapped out; nothing is injected and the process's memory is only read.
 *
 * The pages are written whole at every dump: a process's memory tracker
 * (userfaultfd or soft-dirty bits, dump/track.c) sees only that process's
 * own writes through its own page tables, not what another process wrote
 * into the same object, so a parent dump's copy could not be trusted. A
 * pre-dump therefore saves none of them. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump/dump.h"
#include "dump/shmem.h"
#include "image/shmem_pages.h"
#include "files/files.h"
#include "image/vma.h"
#include "proc/proc.h"
#include "util/fsop.h"
#include "util/log.h"
#include "util/grow.h"

static struct shmem_obj *find(struct dump_shmem *s, uint64_t shmid)
{
	for (int i = 0; i < s->nr; i++)
		if (s->o[i].shmid == shmid)
			return &s->o[i];
	return NULL;
}

static struct shmem_obj *add(struct dump_shmem *s, uint64_t shmid)
{
	if (grow_array(s->o, s->cap, s->nr + 1, 8) < 0) {
		pr_err("out of memory listing shared memory");
		return NULL;
	}
	struct shmem_obj *o = &s->o[s->nr++];
	*o = (struct shmem_obj){ .shmid = shmid };
	return o;
}

#define ANON_SHMEM_PATH "/dev/zero (deleted)"	/* how /proc names such an object */

static int note_file(struct dump_shmem *s, ino_t ino)
{
	if (shmem_dump_is_file(s, ino))
		return 0;
	ino_t *n = realloc(s->as_file, (s->nr_as_file + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory listing shared memory");
		return -1;
	}
	s->as_file = n;
	s->as_file[s->nr_as_file++] = ino;
	return 0;
}

bool shmem_dump_is_file(const struct dump_shmem *s, ino_t ino)
{
	for (int i = 0; i < s->nr_as_file; i++)
		if (s->as_file[i] == ino)
			return true;
	return false;
}

int shmem_dump_scan_maps(struct dump_shmem *s, pid_t pid, const struct proc_vmas *vmas)
{
	char link[384];
	struct stat st;

	for (int i = 0; i < vmas->nr; i++) {
		const struct proc_vma *v = &vmas->v[i];
		snprintf(link, sizeof(link), "/proc/%d/map_files/%lx-%lx", pid, (unsigned long)v->start,
			 (unsigned long)v->end);
		if (!v->shared && v->has_file && !strcmp(v->path, ANON_SHMEM_PATH) && !stat(link, &st) &&
		    files_is_anon_shmem(v->path, &st) && note_file(s, st.st_ino) < 0)
			return -1;
	}
	return 0;
}

int shmem_dump_note_fd(struct dump_shmem *s, int dirfd, const char *name, const char *link)
{
	struct stat st;
	if (!strcmp(link, ANON_SHMEM_PATH) && !fstatat(dirfd, name, &st, 0) && files_is_anon_shmem(link, &st))
		return note_file(s, st.st_ino);
	return 0;
}

int shmem_dump_collect(struct dump_shmem *s, const struct dump_ctx *dc)
{
	for (size_t i = 0; i < dc->mm.n_vmas; i++) {
		const VmaEntry *e = dc->mm.vmas[i];
		/* a System V segment stays in the kernel (task/sysv_shm.c) */
		if (!(e->status & VMA_ANON_SHARED) || (e->status & VMA_AREA_SYSVIPC))
			continue;
		struct shmem_obj *o = find(s, e->shmid);
		if (!o && !(o = add(s, e->shmid)))
			return -1;
		if (!o->pid) {
			o->pid = dc->pid;
			o->start = e->start;
			o->end = e->end;
		}
		if (o->size < e->pgoff + (e->end - e->start))
			o->size = e->pgoff + (e->end - e->start);
	}
	return 0;
}

/* Object o opened through a mapping of it, and how much of it can be
 * read: past the object's end nothing can (nor was mapped there: a
 * mapping reaching beyond it faults with SIGBUS). */
static int open_obj(const struct shmem_obj *o, char *what, size_t len, uint64_t *size)
{
	char src[96];
	struct stat st;

	snprintf(src, sizeof(src), "/proc/%d/map_files/%lx-%lx", o->pid, (unsigned long)o->start,
		 (unsigned long)o->end);
	snprintf(what, len, "shared memory %lu (pid %d at %#lx)", (unsigned long)o->shmid, o->pid,
		 (unsigned long)o->start);
	int fd = fs_open_task_file(src, true);
	if (fd < 0 || fstat(fd, &st) < 0) {
		pr_perror("%s: can't open it through %s", what, src);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*size = o->size < (uint64_t)st.st_size ? o->size : (uint64_t)st.st_size;
	return fd;
}

int shmem_dump_each(const struct dump_shmem *s, shmem_save_fn *save, void *arg, uint64_t *pages)
{
	for (int i = 0; i < s->nr; i++) {
		const struct shmem_obj *o = &s->o[i];
		char what[160];
		uint64_t size, saved = 0;
		int fd = open_obj(o, what, sizeof(what), &size);
		if (fd < 0)
			return -1;
		int ret = save(arg, i, o->shmid, fd, size, what, &saved);
		close(fd);
		if (ret < 0)
			return -1;
		pr_info("%s: %lu KiB of %lu saved", what, (unsigned long)(saved >> 10), (unsigned long)(o->size >> 10));
		*pages += saved / PAGE_SZ;
	}
	return 0;
}

struct to_files {
	int dirfd;
	uint32_t first_pages_id;
};

static int save_to_files(void *arg, int i, uint64_t shmid, int fd, uint64_t size, const char *what,
			 uint64_t *saved)
{
	const struct to_files *t = arg;
	return shmem_pages_write(t->dirfd, shmid, t->first_pages_id + i, fd, size, what, saved);
}

int shmem_dump_write(const struct dump_shmem *s, int dirfd, uint32_t first_pages_id, uint64_t *pages)
{
	struct to_files t = { dirfd, first_pages_id };
	return shmem_dump_each(s, save_to_files, &t, pages);
}

void shmem_dump_free(struct dump_shmem *s)
{
	free(s->o);
	s->o = NULL;
	s->nr = s->cap = 0;
	free(s->as_file);
	s->as_file = NULL;
	s->nr_as_file = 0;
}
