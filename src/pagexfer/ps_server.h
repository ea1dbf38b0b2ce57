/* `stasis page-server`: receives the pages of a dump sent with
 * --page-server (stasis's or CRIU's, in CRIU's protocol, ps_proto.h) and
 * writes them as pagemap and pages images into the images directory. */
#ifndef STASIS_PS_SERVER_H
#define STASIS_PS_SERVER_H

#include "util/opts.h"

/* Serves until one dump has sent everything and closed its session (0),
 * or a fatal error (-1, said). A session that breaks the protocol, goes
 * silent for --timeout seconds (default 60) or is cut short is dropped
 * with its images, and the server waits for the next connection. */
int stasis_page_server(const struct opts *o);

/* For the RPC's PAGE_SERVER request, the two halves of it: the socket
 * listening on o->address, o->port (*port: the port it got), then the
 * sessions on it into dirfd until one ends well (both close nothing of
 * the caller's; -1 said). */
int ps_server_listen(const struct opts *o, unsigned *port);
int ps_server_serve(int lsk, int dirfd, const struct opts *o);

#endif
