/* Unread bytes of pipes and FIFOs: one format (pipes-data.img,
 * fifo-data.img), saved once per pipe, and the code for both (pipe.c). */
#ifndef STASIS_FILES_PIPE_H
#define STASIS_FILES_PIPE_H

#include <stdint.h>

#include "files/kind.h"
#include "image/kinds.h"
#include "util/idmap.h"

struct pipe_data {
	uint32_t pipe_id;
	uint32_t size;		/* capacity */
	uint32_t len;
	uint8_t *buf;
};

struct pipe_data_set {
	struct pipe_data *d;
	int nr;
	struct idmap by_id;	/* pipe_id -> index in d */
};

/* save: copies them (tee: the task keeps them) once per pipe_id;
 * put_back: capacity and bytes into a new pipe's write end. */
int pipe_data_save(struct pipe_data_set *s, const struct fd_facts *f, const char *what);
int pipe_data_write(const struct pipe_data_set *s, int dirfd, enum img_kind kind);
int pipe_data_load(struct pipe_data_set *s, int dirfd, enum img_kind kind);
const struct pipe_data *pipe_data_find(const struct pipe_data_set *s, uint32_t pipe_id);
int pipe_data_put_back(int fd, const struct pipe_data *d, const char *what);
void pipe_data_free(struct pipe_data_set *s);

#endif
