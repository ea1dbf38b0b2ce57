/* `stasis lazy-pages`: the daemon that fills a lazily restored tree's
 * memory (CRIU's command, socket and protocol; util/lazy_proto.h). */
#ifndef STASIS_LAZY_H
#define STASIS_LAZY_H

#include "util/opts.h"

/* Serves one restore until every page of its tree is in place: 0, or 1
 * (reported). */
int stasis_lazy_pages(const struct opts *o);

#endif
