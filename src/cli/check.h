#ifndef STASIS_CHECK_H
#define STASIS_CHECK_H
#include <stdbool.h>
#include <stdio.h>
/* Probes (and prints to out, unless NULL) the kernel features stasis
 * relies on; -1 if a required one is missing. */
int stasis_check(FILE *out);
/* Can pre-dump track memory writes (userfaultfd WP_ASYNC or soft-dirty
 * bits)? */
bool stasis_has_mem_track(void);
#endif
