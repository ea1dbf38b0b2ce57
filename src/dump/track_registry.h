/* Stasis's notes of the userfaultfd trackers it made, one file per
 * tracker in TRACK_REGISTRY (see track.h): for track_uffd.c only. */
#ifndef STASIS_DUMP_TRACK_REGISTRY_H
#define STASIS_DUMP_TRACK_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dump/track.h"

/* What /proc/PID/fd/N says of a userfaultfd. */
#define UFFD_LINK "anon_inode:[userfaultfd]"
/* Is fd of pid a userfaultfd? */
bool is_uffd(pid_t pid, int fd);
/* Who the tracker with this inode was made for: its pid; 0 if it was
 * made from another pid namespace; -1 if stasis did not make it.
 * *armed: what its last arming dump drew. */
pid_t registry_lookup(uint64_t ino, uint64_t *armed);
/* Notes (or notes again) dc's tracker on its fd, with the number its
 * arming drew; whole or not at all. */
int registry_add(const struct dump_ctx *dc, uint64_t ino, int fd, uint64_t armed);
void registry_del(uint64_t ino);
/* Drops the notes of trackers that are gone. */
void registry_prune(void);

#endif
