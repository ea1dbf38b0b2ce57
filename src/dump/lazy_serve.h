/* dump --lazy-pages: the tree's lazy memory (image/lazy.h) is not written
 * to pages-ID.img; pagemap-PID.img names it PE_LAZY without PE_PRESENT,
 * and once the images are complete the dump serves it from the frozen
 * tree to the destination's `lazy-pages --page-server` (PS_IOV_GET of
 * CRIU's page-server protocol, pagexfer/ps_proto.h) on --address/--port,
 * as `criu dump --lazy-pages` does. */
#ifndef STASIS_DUMP_LAZY_SERVE_H
#define STASIS_DUMP_LAZY_SERVE_H

#include "dump/dump.h"
#include "dump/pages.h"

/* Whether this dump leaves lazy memory on the source (dump --lazy-pages). */
bool lazy_dump(const struct opts *o);

/* Serves the lazy pages of tr until a lazy-pages daemon has taken what it
 * wanted and closed its session (PS_IOV_CLOSE): 0. A connection that
 * breaks the protocol before any page went is dropped and the next one
 * waited for; one that breaks after pages went fails the transfer: -1
 * (said), and the caller resumes the tree (its copy on the destination
 * can't get the rest of its memory). */
int lazy_dump_serve(struct dump_tree *tr);

#endif
