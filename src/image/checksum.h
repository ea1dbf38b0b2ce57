/* Checksums of image files: XXH3 (xxHash's 64-bit XXH3, libxxhash) of
 * each file's bytes, listed in a file of stasis's own next to the images,
 * which CRIU and crit never open:
 *
 *   stasis-checksums     written by a dump or pre-dump: every image it
 *                        wrote, and the pages it sent to a page server
 *   stasis-checksums-ps  written by `stasis page-server`: the images it
 *                        wrote from what it received
 *
 * One line per file, either
 *
 *   xxh3 HASH SIZE NAME
 *        the XXH3 (64-bit, seed 0) of the whole file (HASH 16 hex digits,
 *        SIZE in bytes)
 *   xxh3parts SIZE NAME OFF1:HASH1 OFF2:HASH2 ...
 *        a file hashed in parts: HASHi is the XXH3 of the bytes
 *        [OFFi, OFFi+1), the last part ending at SIZE; OFF1 is 0 and the
 *        offsets (decimal bytes) never decrease; at most CK_MAX_PARTS.
 *        The dump's copy threads hash the halves of a pages file as they
 *        write them (dump/mem.c), and a large file hashed at the end is
 *        hashed in halves on two threads; restore checks the parts on
 *        two threads too.
 *
 * Lists written before XXH3 have the same lines named xxh64 and
 * xxh64parts, with XXH64 (seed 0) hashes: they still check. XXH3 hashes
 * a GiB in a quarter of XXH64's time here (0.024 against 0.106 s of
 * CPU), which a dump pays while the tree is frozen, and a page server
 * and restore again. NAME "pages:pagemap-PID.img" is the pages file that
 * pagemap's head names (its id is the page server's choice, unknown to
 * the dump that sent the pages). Restore checks every listed file of the
 * images directory and of its parents, and refuses a damaged one by name:
 * the pages files beside the restore, before anything made from them
 * runs (image/ck_bg.h), the others before anything is created. */
#ifndef STASIS_CHECKSUM_H
#define STASIS_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CK_LIST "stasis-checksums"
#define CK_LIST_PS "stasis-checksums-ps"

#define XXH_STATIC_LINKING_ONLY	/* the states' sizes, to hold them in place */
#include <xxhash.h>

enum ck_algo { CK_XXH3, CK_XXH64 };

struct ck_state {
	enum ck_algo algo;
	uint64_t total;
	XXH64_state_t x64;
	/* XXH3's state must sit on 64 bytes (its vector loads), which the
	 * structs holding a ck_state don't promise (malloc'd, assigned): it
	 * lives at raw's first aligned byte, off, and is moved there again
	 * when the ck_state was moved. */
	size_t off;
	unsigned char raw[sizeof(XXH3_state_t) + 64];
};

/* XXH3, the hash every list written now uses. */
void ck_init(struct ck_state *s);
void ck_init_algo(struct ck_state *s, enum ck_algo algo);
void ck_update(struct ck_state *s, const void *data, size_t len);
uint64_t ck_digest(const struct ck_state *s);

/* The hash (by algo) and size of a file of dirfd; -1 (said) if it can't
 * be read. */
int ck_file(int dirfd, const char *name, enum ck_algo algo, uint64_t *hash, uint64_t *size);

#define CK_MAX_PARTS 16

/* A list being made: names of files (hashed when written out) and
 * entries whose hash is already known, whole (nparts 0) or in parts. */
struct ck_list {
	struct ck_entry {
		char *name;
		bool known;
		bool gone;	/* removed after it was listed: not written out */
		uint64_t hash, size;
		int nparts;
		uint64_t off[CK_MAX_PARTS], part[CK_MAX_PARTS];
	} *e;
	int nr, cap;
	int *slots, nr_slots;	/* index by name: 1 + i of e, 0 free (a dump
				 * of a thousand connections lists 2000 files) */
};
int ck_list_add(struct ck_list *l, const char *name);
/* ck_list_add's entry, not hashed yet: its number (for ck_list_set_known)
 * or -1 (said). */
int ck_list_note(struct ck_list *l, const char *name);
/* Entry i (of ck_list_note) has this hash and size: the bytes were
 * hashed as they were written. */
void ck_list_set_known(struct ck_list *l, int i, uint64_t hash, uint64_t size);
/* The file name, if listed, was removed: it leaves the list (until it is
 * listed again). */
void ck_list_forget(struct ck_list *l, const char *name);
int ck_list_add_known(struct ck_list *l, const char *name, uint64_t hash, uint64_t size);
/* A file of size bytes whose part i, [off[i], off[i+1]) (the last up to
 * size), has the XXH3 hash[i]; off[0] is 0. */
int ck_list_add_parts(struct ck_list *l, const char *name, uint64_t size, int nparts, const uint64_t *off,
		      const uint64_t *hash);
/* Hashes what needs it and writes the list as file listname of dirfd
 * (a temporary file renamed into place). */
int ck_list_write(struct ck_list *l, int dirfd, const char *listname);
void ck_list_free(struct ck_list *l);

/* The file name of dirfd changed on purpose (--auto-dedup punched it):
 * its lines in the lists of dirfd get its new hash. */
int ck_lists_update(int dirfd, const char *name);

/* Which listed files a check reads: a lazy restore leaves the pages
 * files to the lazy-pages daemon, which checks them before it serves. */
enum ck_which { CK_ALL, CK_NOT_PAGES, CK_ONLY_PAGES };

/* Checks the lists of dirfd (named dirname in messages) and of the
 * parent dumps it links to; 0 if every listed file of that kind is whole
 * (or there is no list: images from CRIU), -1 naming the first damaged
 * file. */
int ck_verify_chain(int dirfd, const char *dirname, enum ck_which which);

#endif
