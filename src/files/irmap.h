/* irmap: an inode back to a path by scanning directories (irmap.c). */
#ifndef STASIS_IRMAP_H
#define STASIS_IRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "util/opts.h"

/* A path of inode ino on the device kdev (the kernel's encoding), found in
 * o's --irmap-scan-path directories, then CRIU's list; 0, or -1 if none. */
int irmap_lookup(const struct opts *o, uint32_t kdev, uint64_t ino, char *path, size_t len);

#endif
