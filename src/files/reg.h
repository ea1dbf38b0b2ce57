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

#endif
