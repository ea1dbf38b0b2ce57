/* Stages of dump and restore that the user can hook: --action-script
 * programs and, over RPC, criu_notify messages the client answers. */
#ifndef STASIS_ACTION_H
#define STASIS_ACTION_H

#include <sys/types.h>
#include "util/opts.h"

/* CRIU's stage names, given in CRTOOLS_SCRIPT_ACTION. */
#define ACT_PRE_DUMP		"pre-dump"
#define ACT_POST_DUMP		"post-dump"
#define ACT_PRE_RESTORE		"pre-restore"
#define ACT_POST_RESTORE	"post-restore"
#define ACT_NET_LOCK		"network-lock"
#define ACT_NET_UNLOCK		"network-unlock"
#define ACT_SETUP_NS		"setup-namespaces"
#define ACT_POST_SETUP_NS	"post-setup-namespaces"
#define ACT_PRE_RESUME		"pre-resume"
#define ACT_POST_RESUME		"post-resume"
#define ACT_STATUS_READY	"status-ready"

/* Tells the RPC client (if it asked) and runs every script for stage;
 * root_pid (the tree's root as we see it, 0 if none yet) goes in
 * CRTOOLS_INIT_PID. Returns -1 (reported) if any of them failed or the
 * client vetoed. */
int action_run(const struct opts *o, const char *stage, pid_t root_pid);

/* CRIU's "status-ready", once a server listens (the page server, the
 * lazy-pages daemon, a dump serving its lazy pages): the stage is told
 * as above, then one zero byte goes to o->status_fd (--status-fd, RPC
 * status_fd), which is closed: call it once. -1 (reported) on failure. */
int action_status_ready(const struct opts *o);

#endif
