/* Shared anonymous memory of the dumped tree (MAP_SHARED|MAP_ANONYMOUS,
 * /dev/zero mapped shared): one object per shmem inode, however many
 * processes and mappings share it, saved once. */
#ifndef STASIS_DUMP_SHMEM_H
#define STASIS_DUMP_SHMEM_H

#include <stdint.h>
#include <sys/types.h>

struct shmem_obj {
	uint64_t shmid;		/* the object's inode, the mappings' VmaEntry.shmid */
	uint64_t size;		/* bytes the mappings reach (pgoff + length) */
	pid_t pid;		/* a process that maps it, and where: to open it */
	uint64_t start, end;
};

struct dump_shmem {
	struct shmem_obj *o;
	int nr, cap;
	ino_t *as_file;		/* objects also open as files: saved as memfds */
	int nr_as_file;
};

struct dump_ctx;

struct proc_vmas;

/* Notes the objects a process has open as files, by an fd or a private
 * mapping of one (opened through /proc/PID/map_files): every mapping of
 * those is saved as a mapping of a memfd, as CRIU saves them, so that
 * all of them are one object again after restore. Before any process's
 * mappings are classified. scan_maps: its private mappings; note_fd: one
 * fd, link what /proc/PID/fd/N says of it (name in dirfd). */
int shmem_dump_scan_maps(struct dump_shmem *s, pid_t pid, const struct proc_vmas *vmas);
int shmem_dump_note_fd(struct dump_shmem *s, int dirfd, const char *name, const char *link);
bool shmem_dump_is_file(const struct dump_shmem *s, ino_t ino);
/* Notes the shared anonymous mappings of a process whose mm is
 * classified (dump_task_mm_prepare). */
int shmem_dump_collect(struct dump_shmem *s, const struct dump_ctx *dc);
/* pagemap-shmem-SHMID.img and its pages-N.img for every object, while
 * the tree is still stopped; pages ids from first_pages_id up. */
int shmem_dump_write(const struct dump_shmem *s, int dirfd, uint32_t first_pages_id, uint64_t *pages);
/* The same through save, given the i-th object open at fd (size bytes of
 * it readable, what names it in messages), which sets *saved to the
 * bytes it kept; *pages gets the pages saved. (dump/ps_send.c sends them
 * to a page server.) */
typedef int shmem_save_fn(void *arg, int i, uint64_t shmid, int fd, uint64_t size, const char *what,
			  uint64_t *saved);
int shmem_dump_each(const struct dump_shmem *s, shmem_save_fn *save, void *arg, uint64_t *pages);
void shmem_dump_free(struct dump_shmem *s);

#endif
