/* CRIU's RPC protocol: `stasis service` (a daemon on a unix socket) and
 * `stasis swrk FD` (one client on an inherited socket), both serving
 * criu_req messages with rpc.c. */
#ifndef STASIS_RPC_H
#define STASIS_RPC_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cli/opts.h"
#include "rpc.pb-c.h"

/* Largest request accepted: far above any real one (a few KiB), small
 * enough that a hostile client can't make us allocate much. */
#define RPC_MAX_MSG (1u << 20)

#define RPC_MAX_GROUPS 256	/* of a non-root client (rpc_perm.c) */

/* One client connection: its socket and who is on the other end. */
struct rpc_conn {
	int sk;
	pid_t peer_pid;
	uid_t peer_uid;
	gid_t peer_gid;
	bool swrk;		/* swrk allows inherit_fd and rst_sibling */
};

/* rpc_msg.c: framing. recv returns 1 with a request, 0 when the client
 * has gone, -1 on a malformed one (reported; the caller answers it). */
int rpc_recv(int sk, CriuReq **req);
int rpc_send(int sk, const CriuResp *resp);
/* Sends an error reply naming the request type; msg may be NULL. */
int rpc_send_error(int sk, CriuReqType type, int err, const char *msg);

/* What one request needs besides opts: paths built from the client's fds. */
struct rpc_job {
	struct opts o;
	char images_dir[64 + PATH_MAX];
	char work_dir[64 + PATH_MAX];
	char log_path[2 * PATH_MAX];
	int log_level;
	pid_t restored_pid;
	int status_fd;
	gid_t client_groups[RPC_MAX_GROUPS];
	int client_groups_n;
};

/* rpc.c: the part of a request that looks at nothing but the request (no
 * file, fd or process): its paths, then its options and their checks.
 * Each returns 0 or -1 (reported); release frees what they made. Serving
 * a request runs them with the checks of what it names in between;
 * fuzz/fuzz_rpc.c runs them alone. */
int rpc_job_paths(struct rpc_job *j, const struct rpc_conn *c, const CriuReq *req, bool need_images);
int rpc_job_opts(struct rpc_job *j, const struct rpc_conn *c, const CriuReq *req);
void rpc_job_release(struct rpc_job *j);

/* rpc.c: serves requests on conn until the client closes or a request
 * without keep_open is answered. Returns 0, or -1 if the connection broke. */
int rpc_serve(struct rpc_conn *conn);
/* The stage callback dump and restore call (notify_scripts): sends a
 * criu_notify and waits for the client's answer; -1 if it vetoed. */
int rpc_notify(void *conn, const char *stage, pid_t pid);

/* rpc_perm.c: what a non-root client may ask (errors reported). */
int rpc_may_dump(const struct rpc_conn *c, pid_t pid);
int rpc_may_write_dir(const struct rpc_conn *c, const char *dir);
int rpc_peer_groups(pid_t pid, gid_t *g, int max);

/* service.c: the commands. */
int stasis_swrk(const char *fd_arg);
int stasis_service(const char *address, bool daemonize, const char *pidfile, mode_t mode);

#endif
