#ifndef STASIS_CHECK_H
#define STASIS_CHECK_H
#include <stdbool.h>
#include <stdio.h>
/* Probes (and prints to out, unless NULL) the kernel features stasis
 * relies on; -1 if a required one is missing. */
int stasis_check(FILE *out);
#endif
