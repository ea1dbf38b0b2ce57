/* Regular files by path, for the kinds whose entries point to one (a
 * FIFO's path, a terminal's). */
#ifndef STASIS_FILES_REG_H
#define STASIS_FILES_REG_H

#include "files/kind.h"

/* The entry of path opened with flags at pos: one per path, flags and
 * pos; its id. 0 or -1 (reported). */
int reg_file_add(struct file_table *t, const char *path, uint32_t flags, uint64_t pos, uint32_t *id);
/* A deleted file (path ends in " (deleted)"; a regular file, directory
 * or FIFO) used by path, saved as a ghost (ghost.h); src is a /proc link
 * that opens it, use says how it is used (in messages). Its entry's id. */
int reg_ghost_add(struct file_table *t, const struct opts *o, const char *path, const char *src,
		  uint32_t flags, const char *use, uint32_t *id);

#endif
