#ifndef STASIS_RESTORE_H
#define STASIS_RESTORE_H
#include "util/opts.h"
/* Restores the dump in o->images_dir. Returns the exit status for main:
 * with -d 0 or 1; in the foreground, the restored process's own status. */
int stasis_restore(const struct opts *o);
#endif
