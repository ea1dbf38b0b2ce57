/* CRIU's RPC protocol: `stasis service` (a daemon on a unix socket) and
 * `stasis swrk FD` (one client on an inherited socket), both serving
 * criu_req messages with rpc.c. */
#ifndef STASIS_RPC_H
#define STASIS_RPC_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/opts.h"
#include "rpc.pb-c.h"

/* Largest request accepted: far above any real one (a few KiB), small
 * enough that a hostile client can't make us allocate much. */
#define RPC_MAX_MSG (1u << 20)

#define RPC_MAX_GROUPS 256	/* of a non-root client (rpc_perm.c) */

/* Non-root users the service serves (--allow-users); root always. */
struct rpc_allowed {
	uid_t *uids;
	int nr;
};

/* One client connection: its socket and who is on the other end, as
 * the kernel recorded it at connect (rpc_peer.c). */
struct rpc_conn {
	int sk;
	pid_t peer_pid;
	uid_t peer_uid;
	gid_t peer_gid;
	gid_t groups[RPC_MAX_GROUPS];
	int ngroups;
	int pidfd;		/* the client process, pinned */
	bool swrk;		/* swrk allows inherit_fd and rst_sibling */
	const struct rpc_allowed *allowed;
};

/* rpc_msg.c: framing. recv returns 1 with a request, 0 when the client
 * has gone, -1 on a malformed one (reported; the caller answers it). */
int rpc_recv(int sk, CriuReq **req);
int rpc_send(int sk, const CriuResp *resp);
/* The same with fd passed along (SCM_RIGHTS); fd -1: none. */
int rpc_send_with_fd(int sk, const CriuResp *resp, int fd);
/* Sends an error reply naming the request type; msg may be NULL. */
int rpc_send_error(int sk, CriuReqType type, int err, const char *msg);

/* What one request needs besides opts: its directories (fds taken from
 * the client, or paths it named), their names for messages, the log. */
struct rpc_job {
	struct opts o;
	int images_fd_no, work_fd_no;	/* the client's fd numbers, or -1 */
	char images_dir[PATH_MAX];
	char work_dir[PATH_MAX];
	char log_name[NAME_MAX + 1];	/* in the work directory; "" for stderr */
	int log_level;
	pid_t restored_pid;
	int status_fd;
	int err;		/* cr_errno of a refusal, when it is not in the log */
	char **ext_mnt;		/* ext_mnt pairs as mnt[KEY]:VAL (o.external holds them too) */
	int nr_ext_mnt;
	int ps_fd_no;		/* the client's ps.fd (taken into o.ps_socket), or -1 */
	char *tls_abs[4];	/* relative tls_* paths made absolute (job_tls_paths) */
};

/* rpc.c: the part of a request that looks at nothing but the request (no
 * file, fd or process): its paths, then its options and their checks.
 * Each returns 0 or -1 (reported); release frees what they made. Serving
 * a request runs them with the checks of what it names in between;
 * fuzz/fuzz_rpc.c runs them alone. */
int rpc_job_paths(struct rpc_job *j, const struct rpc_conn *c, const CriuReq *req, bool need_images);
int rpc_job_opts(struct rpc_job *j, const struct rpc_conn *c, const CriuReq *req);
void rpc_job_release(struct rpc_job *j);

/* rpc.c: how the options of an RPC config_file that exists are applied
 * to a request's opts (0, or -1 reported): the command line's parser,
 * which main gives (src/cli is above src/rpc). */
typedef int (*rpc_config_reader)(const char *path, struct opts *o);
void rpc_set_config_reader(rpc_config_reader fn);

/* rpc.c: serves requests on conn until the client closes or a request
 * without keep_open is answered. Returns 0, or -1 if the connection broke. */
int rpc_serve(struct rpc_conn *conn);
/* The stage callback dump and restore call (notify_scripts): sends a
 * criu_notify and waits for the client's answer; -1 if it vetoed. */
int rpc_notify(void *conn, const char *stage, pid_t pid);
/* The same carrying fd (orphan-pts-master: a pty master for the client). */
int rpc_notify_fd(void *conn, const char *stage, int fd);

/* rpc_peer.c: who the client is (0, or -1 reported), whether it is still
 * there, whether the service serves it, and the fds it names by number,
 * taken from it (never reopened), checked for what we do with them. */
int rpc_conn_init(struct rpc_conn *c, int sk, bool swrk);
bool rpc_peer_alive(const struct rpc_conn *c);
bool rpc_uid_allowed(const struct rpc_conn *c);
bool rpc_lends_root(const struct rpc_conn *c);
int rpc_take_dir(const struct rpc_conn *c, int n, const char *what);
int rpc_take_writable(const struct rpc_conn *c, int n, const char *what);
/* A connected stream socket (ps.fd: the page server's connection). */
int rpc_take_stream_socket(const struct rpc_conn *c, int n, const char *what);

/* rpc_perm.c: what a non-root client may ask (errors reported). */
int rpc_may_dump(const struct rpc_conn *c, pid_t pid);
/* opts.check_seized for a non-root client's dump (ctx: the conn). */
int rpc_may_dump_seized(void *ctx, const pid_t *tids, int nr);
int rpc_may_write_dir(const struct rpc_conn *c, int dirfd, const char *name);

/* service.c: the commands. */
int stasis_swrk(const char *fd_arg);
/* lsk: a listening socket made by another (systemd's socket activation),
 * served as it is and left in place at the end; -1 to make address. */
int stasis_service(const char *address, int lsk, bool daemonize, const char *pidfile, mode_t mode,
		   const struct rpc_allowed *allowed);

#endif
