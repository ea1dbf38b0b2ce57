/* Image files: a magic header, then (u32 length, protobuf message) entries
 * (raw kinds: bytes alone). Every length read from disk is bounded before
 * it is trusted. Each is named by its kind and id (image/kinds.h). */
#ifndef STASIS_IMG_H
#define STASIS_IMG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "image/checksum.h"
#include "image/kinds.h"

/* Largest protobuf entry we accept from an image (a core or mm entry with
 * thousands of VMAs stays far below this). */
#define IMG_MAX_ENTRY (64u << 20)

struct img {
	int fd;
	char name[256];
	/* write side: buffered so small entries don't cost a syscall each */
	uint8_t *buf;
	size_t len;
	unsigned entries;	/* written or read so far, for the log */
	/* write side, an image listed for its checksum (img_note_written):
	 * the list and its entry; the checksum is made as it is written,
	 * which spares reading it again when the list is written */
	struct ck_list *ck_list;
	int ck_entry;
	struct ck_state ck;
};

/* The images directory: a dup of given when it is an fd (RPC), else path,
 * which must exist. Files in it are made and read through util/fsop. */
int img_dir_open(const char *path, int given);
/* A new image of kind (id: see enum img_kind), its header written. */
int img_create(int dirfd, struct img *img, enum img_kind kind, uint32_t id);
int img_write(struct img *img, const ProtobufCMessage *msg);
int img_write_raw(struct img *img, const void *data, size_t len);
int img_finish(struct img *img);	/* flush + close; reports errors */
void img_abort(struct img *img);

/* A regular file of the images directory, opened read-only; -1 (errno:
 * ELOOP symlink, EINVAL not a regular file) otherwise. Not reported.
 * Never a symlink out of it, a FIFO that would hang us, or a device
 * whose open does something (images may come from a non-root client). */
int img_open_regular(int dirfd, const char *name);
/* An image of kind, past its header. An optional kind's missing file is
 * -1 with errno ENOENT, not reported; any other failure is reported. */
int img_open(int dirfd, struct img *img, enum img_kind kind, uint32_t id);
/* 1: *out holds an entry; 0: clean end of file; -1: error (reported). */
int img_read(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);
/* Reads exactly one entry; a missing entry is an error. */
int img_read_one(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);
void img_close(struct img *img);
/* Whether len more bytes are left in an image opened with img_open (a
 * length read from the image is checked before it is allocated). */
bool img_has(struct img *img, uint64_t len);
/* Raw bytes that follow an entry (pipe data); a short file is an error. */
int img_read_raw(struct img *img, void *buf, size_t len);
/* Every (remaining) entry into a growing array; 0 or -1 (reported, and
 * then nothing is left allocated: *out NULL, *nr 0). */
int img_read_all(struct img *img, const ProtobufCMessageDescriptor *desc, void ***out, int *nr);

/* Whole images, their entries of the kind's types. An image whose first
 * entry is a head (pagemap): head, then all the rest; all or nothing. */
int img_load_headed(int dirfd, enum img_kind kind, uint32_t id, ProtobufCMessage **head, void ***out, int *nr);
/* Open, read all, close; a missing optional image is an empty one. */
int img_load_all(int dirfd, enum img_kind kind, uint32_t id, void ***out, int *nr);
/* Open, read one entry, close. */
int img_load_one(int dirfd, enum img_kind kind, uint32_t id, ProtobufCMessage **out);
int img_store_one(int dirfd, enum img_kind kind, uint32_t id, const ProtobufCMessage *msg);
/* img_store_one under a temporary name, renamed into place: the image
 * appears whole and after every image written before it (the inventory,
 * which commits a dump). synced: the filesystem is synced before the
 * rename, so that this holds on disk too; otherwise the caller syncs
 * later (img_sync). */
int img_commit_one(int dirfd, enum img_kind kind, uint32_t id, const ProtobufCMessage *msg, bool synced);
/* syncfs of the images directory's filesystem; a failure is warned of. */
void img_sync(int dirfd);
/* An image of any kind read from fd, not a file of an images directory
 * (crit's input): its magic tells *kind. name is for messages. */
int img_open_fd(struct img *img, int fd, const char *name, enum img_kind *kind);
/* An image of kind written to fd (crit's output); img_finish closes fd. */
int img_create_fd(struct img *img, int fd, const char *name, enum img_kind kind);
/* Unlinks it; -1 with errno when that fails (ENOENT: there was none). */
int img_remove(int dirfd, enum img_kind kind, uint32_t id);

/* Every image created in an images directory from now on is added to
 * l (image/checksum.h), until called again with NULL: what a dump
 * lists the checksums of. */
struct ck_list;
void img_note_written(struct ck_list *l);

#define img_free(msg) protobuf_c_message_free_unpacked((ProtobufCMessage *)(msg), NULL)

#endif
