#ifndef STASIS_CHECK_H
#define STASIS_CHECK_H
#include <stdbool.h>
#include <stdio.h>
/* Probes (and prints to out, unless NULL) the kernel features stasis
 * relies on; -1 if a required one is missing. */
int stasis_check(FILE *out);
/* `check --feature NAME`, by CRIU's names: 0 supported, 1 not, -1 no such
 * feature (reported); "list" prints the names. */
int stasis_check_feature(const char *name, FILE *out);
/* Can restore --lazy-pages work here (userfaultfd with the events of
 * fork, mremap, munmap and madvise)? */
bool check_lazy_pages(void);
#endif
