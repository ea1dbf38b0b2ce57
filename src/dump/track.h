/* Memory changes between dumps (pre-dump, then a dump whose parent it
 * is), tracked with userfaultfd write-protection in async mode. */
#ifndef STASIS_DUMP_TRACK_H
#define STASIS_DUMP_TRACK_H

#include "dump/dump.h"
#include "dump/pages.h"

/* The file, next to the images, that lists each tracked process and the
 * fd of its tracker: "PID FD" lines. Not an image: crit has no schema. */
#define TRACK_LIST "stasis-track"

/* Parent dump's pages of one process, as address ranges. */
struct parent_cover {
	uint64_t (*r)[2];
	size_t nr;
};

/* With a parent: finds the tracker left in the task and what the parent
 * holds (before the task is touched). */
int track_adopt(struct dump_ctx *dc, int parentfd);
/* Without a parent: a tracker an earlier stasis left in the task, so
 * that its fds are dumped without it. */
int track_find(struct dump_ctx *dc);
/* Injected: makes a tracker in the task if it has none (--track-mem) and
 * registers its private anonymous memory. */
int track_start(struct dump_ctx *dc);
/* Moves the runs the parent holds and the task did not write since into
 * *in_parent; the rest stay in *pr. */
int track_split(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *in_parent);
/* After the pages are saved: protect them again, so the next dump sees
 * only what is written from now on. */
int track_protect(struct dump_ctx *dc, const struct page_runs *pr);
/* A failed dump takes back a tracker it made; then frees our side. */
void track_undo(struct dump_ctx *dc);
void track_free(struct dump_ctx *dc);
/* TRACK_LIST of the dump. */
int track_write_list(struct dump_tree *tr);

#endif
