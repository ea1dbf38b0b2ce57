/* The open file descriptions a dump has seen, by inode, to tell whether a
 * new fd shares one: kcmp(KCMP_FILE) says equal or orders the two, so the
 * descriptions of one inode are kept in that order and found by
 * bisection (a scan of each inode's fds made 2,000 opens of one file
 * 2,000,000 kcmp calls). */
#ifndef STASIS_FILES_DESC_INDEX_H
#define STASIS_FILES_DESC_INDEX_H

#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/idmap.h"

struct desc_index {
	struct idmap by_ino;	/* a hash of dev and ino -> index in g */
	struct desc_group {
		dev_t dev;
		ino_t ino;
		struct desc_rep { pid_t pid; int fd; uint32_t id; } *r;	/* in kcmp order */
		int nr, cap;
	} *g;
	int nr, cap;
};

/* The id of the seen description fd of pid is (its file dev:ino), or 0. */
uint32_t desc_find(const struct desc_index *x, pid_t pid, int fd, dev_t dev, ino_t ino);
/* Records fd of pid as description id, unless one seen is it; -1: out of memory. */
int desc_add(struct desc_index *x, pid_t pid, int fd, dev_t dev, ino_t ino, uint32_t id);
void desc_free(struct desc_index *x);

#endif
