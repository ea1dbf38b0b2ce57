#ifndef STASIS_JOIN_NS_H
#define STASIS_JOIN_NS_H

#include "util/opts.h"

/* Enters --join-ns's network namespace (nothing without one). */
int join_ns_enter(const struct opts *o);

#endif
