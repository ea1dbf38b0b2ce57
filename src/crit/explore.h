#ifndef STASIS_CRIT_EXPLORE_H
#define STASIS_CRIT_EXPLORE_H
#include <stdio.h>
/* `crit x DIR WHAT`: the dump in DIR as crit's explorer WHAT prints it
 * (ps: the process tree, fds: open files, mems: mappings, rss: resident
 * pages by mapping) to out; -1 (reported) if it can't be read. */
int crit_explore(const char *dir, const char *what, FILE *out);
#endif
