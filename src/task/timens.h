/* Time namespaces (CLONE_NEWTIME), both directions, in CRIU's format:
 * timens-ID.img holds the tree's CLOCK_MONOTONIC and CLOCK_BOOTTIME at
 * the dump, as the tree read them.
 *
 * Dump: the whole tree must be in one time namespace, the root's, and no
 * process may have made another one for its children to come
 * (unshare(CLONE_NEWTIME) sets time_for_children only): such a tree is
 * refused, as CRIU refuses it. When the root's time namespace is not the
 * dumper's, its clocks go in timens-ID.img (ID the root's time_ns_id) and
 * timens-0.img (what CRIU's restore of stasis's images reads, since their
 * inventory names the root's namespaces). A tree in the dumper's has no
 * image: CRIU's restore, which would make a new namespace from CRIU's
 * timens-0.img, then leaves it in its own, as stasis does.
 *
 * Restore: with timens-ID.img for the root's time_ns_id (the root had a
 * time namespace of its own, CRIU's images too), the tree is made in a
 * new time namespace whose offsets carry its clocks on from where they
 * were. A tree that shared the dumper's lives in the restorer's, as
 * before the dump (CRIU makes a new one from timens-0.img there too). A
 * non-root client's restore stays in its own, as CRIU's unprivileged
 * one does. */
#ifndef STASIS_TASK_TIMENS_H
#define STASIS_TASK_TIMENS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "timens.pb-c.h"

/* Does this kernel have time namespaces, and their offsets? */
bool timens_supported(void);

/* Refuses process pid unless it and its children to come are in the time
 * namespace of the root. 0 or -1 (reported, one line). */
int timens_dump_check(pid_t pid, pid_t root);
/* timens-ID.img (root_ns_id) and timens-0.img for a root whose time
 * namespace is not ours. */
int timens_dump(int dirfd, pid_t root, uint32_t root_ns_id);

/* The clocks for the tree's time namespace, if the images ask for one
 * (root_ns_id: the root's time_ns_id): *out NULL when they don't. Read
 * and checked with the other images, before anything is made. */
int timens_restore_load(int dirfd, uint32_t root_ns_id, TimensEntry **out);
/* Before the tree's first process is forked: into a new time namespace
 * for the children to come, with the clocks e (NULL: nothing to do).
 * Returns an fd on our own to go back to, -2 when nothing was done, -1
 * on error (reported). */
int timens_restore_enter(const TimensEntry *e, bool unprivileged);
/* After the fork: back to our own (fd from timens_restore_enter). */
int timens_restore_leave(int own);

#endif
