/* Regular files by path, for the kinds whose entries point to one (a
 * FIFO's path, a terminal's). */
#ifndef STASIS_FILES_REG_H
#define STASIS_FILES_REG_H

#include <sys/types.h>

#include "files/kind.h"

/* The entry of path opened with flags at pos, with the file's mode (0:
 * not recorded): one per path, flags, pos and mode; its id. 0 or -1
 * (reported). */
int reg_file_add(struct file_table *t, const char *path, uint32_t flags, uint64_t pos, mode_t mode,
		 uint32_t *id);
/* The same, of a file of mount mnt_id (an fd's; -1: unknown), recorded
 * in a tree whose mount namespaces are saved (file_table's mnt_ids). */
int reg_file_add_at(struct file_table *t, const char *path, uint32_t flags, uint64_t pos, mode_t mode,
		    int mnt_id, uint32_t *id);
/* Restore: r's path opened with flags in its mount's namespace
 * (rst_files's mnt_root), else in ours. The fd, or -1 with errno. */
int reg_open_name(const struct rst_files *rf, const RegFileEntry *r, int flags);
/* r's path as a path of ours: itself, or through our fd on its mount's
 * namespace's root (/proc/self/fd/N/...) when that is not ours, for
 * what makes files by path (ghosts); in buf. */
const char *reg_ns_path(const struct rst_files *rf, const RegFileEntry *r, char *buf, size_t len);
/* A deleted file (path ends in " (deleted)"; a regular file, directory
 * or FIFO) used by path, saved as a ghost (ghost.h); src is a /proc link
 * that opens it, use says how it is used (in messages). Its entry's id. */
int reg_ghost_add(struct file_table *t, const struct opts *o, const char *path, const char *src,
		  uint32_t flags, const char *use, uint32_t *id);

/* A new reg_file_entry (fown empty, O_CLOEXEC left out of flags); NULL
 * if out of memory. */
RegFileEntry *reg_entry_new(uint32_t id, const char *path, uint32_t flags, uint64_t pos);

/* Linked remaps (remap_link.c). Dump: the deleted file at src (a /proc
 * link of pid), still named elsewhere, once at of's path (as pid sees it,
 * inside its root), is kept by a new hard link next to it for of. */
int link_remap_save(struct file_table *t, pid_t pid, const char *src, const RegFileEntry *of,
		    const char *what);
/* Restore: if r is kept by a link remap, its name is put back at r's
 * path (or next to it), into made: 0, to be unlinked once opened; 1: made
 * is the link itself (r's directory is gone), to be left; -1 (reported);
 * -2 if r is not linked. */
int link_remap_place(const struct rst_files *rf, const RegFileEntry *r, char *made, size_t len);

#endif
