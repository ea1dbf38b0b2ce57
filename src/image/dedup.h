/* --auto-dedup, as CRIU: pages a new dump saves are punched out of its
 * parent's pages file (fallocate PUNCH_HOLE, the size kept), so a chain
 * of pre-dumps holds each page once. The parent's pagemap still names
 * them: only a restore through the new dump, which has them, is whole.
 * The parent's checksums (image/checksum.h) are brought up to date. */
#ifndef STASIS_DEDUP_H
#define STASIS_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "image/kinds.h"

struct dedup {
	int parentfd;		/* not ours */
	int pages_fd;		/* the parent's pages file, -1: nothing to punch */
	char pages_name[IMG_NAME_MAX];
	uint64_t (*r)[3];	/* start, end, offset in the pages file of each saved run */
	size_t nr;
	uint64_t punched;	/* bytes */
};

/* The parent's pagemap of kind and id, if parentfd has one. */
int dedup_open(struct dedup *d, int parentfd, enum img_kind kind, uint32_t id);
/* Punches the parent's bytes of pages [start, end). */
int dedup_run(struct dedup *d, uint64_t start, uint64_t end);
/* Closes; the parent's lists of checksums name its pages file's new hash. */
int dedup_close(struct dedup *d);

#endif
