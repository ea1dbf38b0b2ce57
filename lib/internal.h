/* libstasis internals shared by its files: the option set, and the
 * transport that carries one request to a server and its answer back. */
#ifndef LIBSTASIS_INTERNAL_H
#define LIBSTASIS_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>

#include "criu/criu.h"
#include "rpc.pb-c.h"

/* "stasis" is looked up in PATH, like libcriu's "criu". */
#define LIB_DEFAULT_BINARY "stasis"
/* Where libcriu looks for a service when given no address. */
#define LIB_DEFAULT_ADDRESS "./criu_service.socket"

struct criu_opts {
	CriuOpts *rpc;		/* what goes in every request */
	int (*notify)(char *action, criu_notify_arg_t na);
	enum criu_service_comm comm;
	/* one per mode, so that switching modes loses nothing */
	char *address;		/* CRIU_COMM_SK */
	int fd;			/* CRIU_COMM_FD */
	char *binary;		/* CRIU_COMM_BIN */
	pid_t swrk_pid;		/* the swrk started for this request, 0 if none */
};

#pragma GCC visibility push(hidden)

/* The errno a request leaves behind (libcriu's convention: the server's
 * cr_errno, or why the transport failed). */
extern int lib_errno;
extern int lib_orphan_pts_fd;
extern criu_opts *lib_global_opts;

/* transport.c */
/* A connection for one request; self_dump detaches a swrk so that it is
 * not part of the tree it dumps. fd >= 0, or -ECONNREFUSED. */
int lib_connect(criu_opts *o, bool self_dump);
/* Sends req on sk and returns the final answer in *resp, serving the
 * notifications before it. 0, or a negative code (see criu.h). */
int lib_exchange(int sk, criu_opts *o, CriuReq *req, CriuResp **resp);
/* lib_connect + lib_exchange + close. */
int lib_call(criu_opts *o, CriuReq *req, CriuResp **resp);
/* Reaps the swrk of the last request, if any. */
void lib_swrk_wait(criu_opts *o);

#pragma GCC visibility pop

#endif
