/* Live snapshot (dump --live-snapshot): the tree is frozen only to save
 * what is not memory and to write-protect its private anonymous memory
 * with a userfaultfd of stasis (synchronous faults); it then runs while
 * the pages are copied, and a page it writes before it is saved is saved
 * first, the writing thread waiting for that page only. The image is the
 * memory as it was at the freeze. See live.c. */
#ifndef STASIS_DUMP_LIVE_H
#define STASIS_DUMP_LIVE_H

#include "dump/dump.h"
#include "dump/pages.h"
#include "image/img.h"

/* Frozen, in place of copying the runs pr into pages (already created,
 * its fd at offset 0): pages of memory that can't be protected (not
 * private anonymous, or registered elsewhere) are copied now, the rest
 * protected and left for live_copy_all. 1: this process can't be
 * snapshot live (no userfaultfd for it, said why): the caller copies
 * everything as usual, pages untouched. 0: dc->live holds the job and
 * pages (the caller must not finish it). -1: failed (reported), nothing
 * left protected. */
int live_arm(struct dump_ctx *dc, const struct page_runs *pr, struct img *pages);

/* After the tree was let go: copies every protected page of every
 * process, saving first those the tree writes, then finishes the pages
 * images. 0: every pages image holds the memory as at the freeze. -1:
 * not (reported); the images are not a dump. Either way nothing is left
 * protected and no thread of the tree waits on stasis. */
int live_copy_all(struct dump_tree *tr);

/* Write-protecting costs about as much as the walk of the page tables
 * (tens of ms per GiB of small pages), so it is done before the freeze:
 * the tree is seized a first time only to make its userfaultfds (the
 * caller seizes and releases, live_pre_take in between, for each
 * process), then live_pre_protect registers and protects its memory while
 * it runs, a write then only costing the writer a round trip to stasis,
 * which lets it through. At the freeze (after live_pre_stop), live_arm
 * protects only what was written or mapped since. */
struct live_pre;
struct live_pre *live_pre_new(void);
/* The process is seized: a userfaultfd made in it, taken by stasis. */
int live_pre_take(struct live_pre *lp, struct dump_ctx *dc);
/* The tree runs again: registers and protects its private anonymous
 * memory, and lets writers through until live_pre_stop. */
void live_pre_protect(struct live_pre *lp);
/* The tree is frozen again: no more writers to let through. */
void live_pre_stop(struct live_pre *lp);
/* At the freeze, before anything is injected into dc: stasis writes the
 * scratch area of its calls on the main thread's stack through ptrace,
 * and such a write can't wait for a userfaultfd (it fails): that page is
 * unprotected, and protected again by live_arm once given back. */
void live_pre_scratch(struct dump_ctx *dc);
/* Frees what live_arm did not take (their protection goes). */
void live_pre_free(struct live_pre *lp);

/* Userfaultfd write-protection with synchronous faults on private
 * anonymous memory (5.7+), for `stasis check`; a task may still be
 * refused one (vm.unprivileged_userfaultfd, then stop-the-world). */
bool live_kernel_has(void);

/* Drops a job without copying (a dump that failed): its protection goes,
 * waiting threads go on. A no-op without a job. */
void live_drop(struct dump_ctx *dc);

#endif
