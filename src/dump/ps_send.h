/* dump --page-server: a process's pages go to a page server (CRIU's
 * protocol, pagexfer/ps_client.h) instead of pagemap-PID.img and
 * pages-ID.img of the images directory; the other images stay local. */
#ifndef STASIS_DUMP_PS_SEND_H
#define STASIS_DUMP_PS_SEND_H

#include "dump/dump.h"
#include "dump/pages.h"
#include "image/checksum.h"

/* What this dump sent for a process, kept next to the local images as
 * "START END" pairs of u64 (every run the server's pagemap names): the
 * next dump, whose parent this is, needs to know what the parent holds,
 * and the pagemap itself is on the server. */
#define PS_SENT_NAME "stasis-ps-sent-%d"

/* Connects as the options say (--address/--port, or --ps-socket). */
int ps_dump_connect(struct dump_tree *tr);
/* A process's pages, found in *pr: the server's answer decides whether
 * the parent's pages are used; then the pagemap runs and the pages go
 * out, and the pages' checksum is listed in ck. A pre-dump sends them
 * once the tree runs again (ps_dump_task_later), as its local copy. */
int ps_dump_task(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *par);
int ps_dump_task_later(struct dump_ctx *dc);
void ps_dump_task_drop(struct dump_ctx *dc);
/* The tree's shared memory objects (dump/shmem.h), each whole, as the
 * server's pagemap-shmem-SHMID.img and its pages (CRIU's page server
 * takes them so too); before ps_dump_finish. */
int ps_dump_shmem(struct dump_tree *tr);
/* The end of the transfer: 0 once the server has written everything. */
int ps_dump_finish(struct dump_tree *tr);
/* After a failure: the connection is dropped, the server told nothing. */
void ps_dump_abort(struct dump_tree *tr);

#endif
