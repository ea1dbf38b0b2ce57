/* Between track.c (the interface dump.c and mem.c use) and the two
 * trackers it hands over to: track_uffd.c (userfaultfd) and softdirty.c
 * (soft-dirty bits), which use the pieces of track_common.c and never
 * track.c. Not for anyone else. */
#ifndef STASIS_DUMP_TRACK_BACKEND_H
#define STASIS_DUMP_TRACK_BACKEND_H

#include "dump/track.h"
#include "mm.pb-c.h"

/* ---- track_common.c ---- */

/* Does the parent dump hold every page of [start, end)? */
bool track_parent_covers(const struct parent_cover *c, uint64_t start, uint64_t end);
/* Private anonymous writable memory: what either tracker follows. */
bool track_vma_trackable(const struct proc_vma *v, const VmaEntry *e);
/* The parent's pages are not to be trusted: warns why, and forgets them
 * (every page is saved). */
void track_drop_parent(struct dump_ctx *dc, const char *why);
/* A random number for an arming, never 0 (0: none). */
int track_draw_armed(uint64_t *armed);
/* Our pid namespace's inode: the pids in notes written from another
 * namespace mean nothing here. */
unsigned long track_pidns_ino(void);

/* ---- track_uffd.c ---- */

/* With a parent (dc->cover loaded): the tracker it recorded. */
void uffd_adopt(struct dump_ctx *dc, int parentfd);
int uffd_prepare(struct dump_ctx *dc);
int uffd_split(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *in_parent);
int uffd_protect(struct dump_ctx *dc, const struct page_runs *saved, const struct page_runs *in_parent);
/* A no-op where the dump armed no tracker. */
void uffd_undo(struct dump_ctx *dc);
/* Its notes and our copy of the tracker; a no-op where there is none. */
void uffd_release(struct dump_ctx *dc);
/* Its TRACK_LIST line for the process; 0 if it has no tracker. */
int uffd_list_line(const struct dump_ctx *dc, char *buf, size_t len);

/* ---- softdirty.c ---- */

bool sd_kernel_has(void);
int sd_adopt(struct dump_ctx *dc, int parentfd);
int sd_split(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *in_parent);
int sd_protect(struct dump_ctx *dc);
/* Its TRACK_LIST line for the process; 0 if it was not armed. */
int sd_list_line(const struct dump_ctx *dc, char *buf, size_t len);

#endif
