/* Between track.c (the interface dump.c and mem.c use, and the
 * userfaultfd tracker) and softdirty.c (the soft-dirty tracker): the
 * pieces both kinds of tracking share. Not for anyone else. */
#ifndef STASIS_DUMP_TRACK_BACKEND_H
#define STASIS_DUMP_TRACK_BACKEND_H

#include "dump/track.h"
#include "mm.pb-c.h"

/* Does the parent dump hold every page of [start, end)? */
bool track_parent_covers(const struct parent_cover *c, uint64_t start, uint64_t end);
/* Private anonymous writable memory: what either tracker follows. */
bool track_vma_trackable(const struct proc_vma *v, const VmaEntry *e);
/* The parent's pages are not to be trusted: warns why, and forgets them
 * (every page is saved). */
void track_drop_parent(struct dump_ctx *dc, const char *why);
/* A random number for an arming, never 0 (0: none). */
int track_draw_armed(uint64_t *armed);

/* softdirty.c */
bool sd_kernel_has(void);
int sd_adopt(struct dump_ctx *dc, int parentfd);
int sd_split(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *in_parent);
int sd_protect(struct dump_ctx *dc);
/* Its TRACK_LIST line for the process; 0 if it was not armed. */
int sd_list_line(const struct dump_ctx *dc, char *buf, size_t len);

#endif
