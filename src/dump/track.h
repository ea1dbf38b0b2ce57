/* Memory changes between dumps (pre-dump, then a dump whose parent it
 * is), tracked with userfaultfd write-protection in async mode or with
 * soft-dirty bits, whichever the kernel has: dump.c and mem.c see one
 * interface. */
#ifndef STASIS_DUMP_TRACK_H
#define STASIS_DUMP_TRACK_H

#include "dump/dump.h"
#include "dump/pages.h"
#include "util/ranges.h"

/* The file, next to the images, that lists each tracked process and its
 * tracker: "PID FD INODE ARMED" lines (PID as the tree sees it, ARMED the
 * number the tracker's last arming drew). Not an image: crit has no
 * schema. */
#define TRACK_LIST "stasis-track"

/* Where stasis notes each tracker it made: one file per tracker, named by
 * its inode, holding "PIDNS PID FD ARMED" (the inode of the pid namespace
 * the dumper ran in, the pid there, the fd, the number its last arming
 * drew). Notes of trackers that are gone are pruned by later dumps. */
#define TRACK_RUN_DIR "/run/stasis"
#define TRACK_REGISTRY TRACK_RUN_DIR "/trackers"

/* Parent dump's pages of one process, as address ranges, and the
 * tracker it recorded for the process: inode and arming (0: none). */
struct parent_cover {
	struct addr_ranges pages;
	uint64_t tracker_ino, tracker_armed;
};

/* One fd of dc's task and its link, seen by the census of its fds
 * (read_mappings): its userfaultfds are noted for track_prepare. 0, or
 * -1 (said) if out of memory. */
int track_note_fd_link(struct dump_ctx *dc, int fd, const char *link);

/* How this kernel lets stasis see what a task wrote: userfaultfd
 * write-protection in async mode (6.7+; track_uffd.c), soft-dirty bits
 * (CONFIG_MEM_SOFT_DIRTY; softdirty.c), or neither. Probed once. */
enum track_method { TRACK_NONE, TRACK_UFFD_WP, TRACK_SOFT_DIRTY };
enum track_method track_method(void);
/* For people: "soft-dirty bits", ...; NULL for TRACK_NONE. */
const char *track_method_name(enum track_method m);
/* The two probes, for `stasis check`. */
bool track_has_uffd_wp_async(void);
bool track_has_soft_dirty(void);

/* With a parent (parentfd >= 0): what the parent holds and which
 * tracker it left (before the task is touched). */
int track_adopt(struct dump_ctx *dc, int parentfd);
/* Injected, every dump: finds the task's tracker by its inode, closes
 * copies of trackers that fork gave it, and drops the parent's pages if
 * the parent is not the dump that armed the tracker. */
int track_prepare(struct dump_ctx *dc);
/* With a parent, a mapping the userfaultfd tracker follows: the scan for
 * present pages sorts them itself, by PAGE_IS_WRITTEN and
 * track_in_parent (one walk of the page tables instead of two). */
bool track_scan_splits(const struct dump_ctx *dc, const struct proc_vma *v);
/* Does the parent dump hold every page of [start, end)? */
bool track_in_parent(const struct dump_ctx *dc, uint64_t start, uint64_t end);
/* Moves the runs the parent holds and the task did not write since into
 * *in_parent; the rest stay in *pr. */
int track_split(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *in_parent);
/* After the pages are saved, if this dump tracks (pre-dump, --track-mem):
 * arms the tracker (the task's, or a new one on its fd) and protects the
 * pages, so the next dump sees only what is written from now on. */
int track_protect(struct dump_ctx *dc, const struct page_runs *saved, const struct page_runs *in_parent);
/* A failed dump takes back a tracker it armed; then frees our side. */
void track_undo(struct dump_ctx *dc);
void track_free(struct dump_ctx *dc);
/* TRACK_LIST of the dump. */
int track_write_list(struct dump_tree *tr);

#endif
