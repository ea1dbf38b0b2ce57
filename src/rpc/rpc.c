/* Serving CRIU's RPC requests: each criu_req becomes the same opts the
 * command line makes, and runs the same dump, restore or check. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/check.h"
#include "cli/opts.h"
#include "dump/dump.h"
#include "restore/restore.h"
#include "rpc/rpc.h"
#include "util/log.h"

#define RPC_DEFAULT_LOG "criu.log"	/* CRIU's name, which its clients look for */
/* The CRIU release whose behaviour stasis matches (VERSION replies). */
#define CRIU_COMPAT_MAJOR 4
#define CRIU_COMPAT_MINOR 2

/* Options that change what a dump or restore means, which stasis does not
 * do: a request with one of them is refused by name, not half obeyed. */
static const char *unsupported_option(const CriuOpts *r)
{
	if (r->ps) return "ps (page server)";
	if (r->has_lazy_pages && r->lazy_pages) return "lazy_pages";
	if (r->has_auto_dedup && r->auto_dedup) return "auto_dedup";
	if (r->root) return "root";
	if (r->n_exec_cmd) return "exec_cmd";
	if (r->n_join_ns) return "join_ns";
	if (r->has_empty_ns && r->empty_ns) return "empty_ns";
	if (r->n_veths) return "veths";
	if (r->freeze_cgroup) return "freeze_cgroup";
	if (r->has_tls && r->tls) return "tls";
	if (r->config_file) return "config_file";
	if (r->has_leave_stopped && r->leave_stopped) return "leave_stopped";
	return NULL;
}

static int peer_fd_path(char *buf, size_t len, pid_t peer, int fd)
{
	return snprintf(buf, len, "/proc/%d/fd/%d", peer, fd) < (int)len ? 0 : -1;
}

/* The directories and the log file the request names, as paths (checked
 * for access later, by job_setup). */
static int job_paths(struct rpc_job *j, const struct rpc_conn *c, const CriuOpts *r, bool need_images)
{
	const char *log_name = r->log_file ? r->log_file : RPC_DEFAULT_LOG;

	/* refused, not cut short: a truncated path names another directory */
	if ((r->images_dir && strlen(r->images_dir) >= PATH_MAX) || strlen(log_name) > NAME_MAX) {
		pr_err("rpc: the request's images_dir or log_file is longer than a path can be");
		return -1;
	}
	if (r->images_dir_fd >= 0)
		peer_fd_path(j->images_dir, sizeof(j->images_dir), c->peer_pid, r->images_dir_fd);
	else if (r->images_dir)
		snprintf(j->images_dir, sizeof(j->images_dir), "%s", r->images_dir);
	else if (need_images) {
		pr_err("rpc: the request names no images directory (images_dir_fd or images_dir)");
		return -1;
	}
	if (r->has_work_dir_fd)
		peer_fd_path(j->work_dir, sizeof(j->work_dir), c->peer_pid, r->work_dir_fd);
	else
		snprintf(j->work_dir, sizeof(j->work_dir), "%s", j->images_dir);
	j->o.images_dir = j->images_dir[0] ? j->images_dir : NULL;
	j->o.work_dir = j->work_dir[0] ? j->work_dir : NULL;
	if (strchr(log_name, '/')) {
		pr_err("rpc: log_file %s must be a plain name (it goes in the work directory)", log_name);
		return -1;
	}
	j->log_level = r->log_level < 0 ? 0 : r->log_level > 4 ? 4 : r->log_level;
	if (!(r->has_log_to_stderr && r->log_to_stderr) && j->work_dir[0])
		snprintf(j->log_path, sizeof(j->log_path), "%s/%s", j->work_dir, log_name);
	return 0;
}

static int job_inherit_fds(struct rpc_job *j, const struct rpc_conn *c, const CriuOpts *r)
{
	if (!r->n_inherit_fd)
		return 0;
	if (!c->swrk) {
		pr_err("rpc: inherit_fd works only with swrk (the service can't reach the client's fds)");
		return -1;
	}
	j->o.inherit = calloc(r->n_inherit_fd, sizeof(*j->o.inherit));
	if (!j->o.inherit)
		return -1;
	for (size_t i = 0; i < r->n_inherit_fd; i++) {
		const InheritFd *in = r->inherit_fd[i];
		j->o.inherit[j->o.nr_inherit++] = (struct inherit_fd){ in->fd, in->key };
	}
	return 0;
}

static int job_check_inherit_fds(const struct rpc_job *j)
{
	for (int i = 0; i < j->o.nr_inherit; i++)
		if (fcntl(j->o.inherit[i].fd, F_GETFD) < 0) {
			pr_err("rpc: inherit_fd %s: fd %d is not open in stasis swrk", j->o.inherit[i].res,
			       j->o.inherit[i].fd);
			return -1;
		}
	return 0;
}

static int job_ext_unix(struct rpc_job *j, const CriuOpts *r)
{
	j->o.ext_unix_sk = r->has_ext_unix_sk && r->ext_unix_sk;
	if (!r->n_unix_sk_ino)
		return 0;
	j->o.ext_unix_sk_ino = calloc(r->n_unix_sk_ino, sizeof(*j->o.ext_unix_sk_ino));
	if (!j->o.ext_unix_sk_ino)
		return -1;
	for (size_t i = 0; i < r->n_unix_sk_ino; i++)
		j->o.ext_unix_sk_ino[j->o.nr_ext_unix_sk_ino++] = r->unix_sk_ino[i]->inode;
	return 0;
}

/* A non-root client gets no more than it could do itself: it must be
 * able to write where the log and images go, to ptrace what it dumps,
 * and a restore it asks for runs with its ids (see restore/unpriv.c). */
static int job_check_client(struct rpc_job *j, const struct rpc_conn *c, CriuReqType type)
{
	if (c->peer_uid == 0)
		return 0;
	if (j->o.work_dir && rpc_may_write_dir(c, j->o.work_dir) < 0)
		return -1;
	if (type == CRIU_REQ_TYPE__DUMP) {
		if (j->o.images_dir && rpc_may_write_dir(c, j->o.images_dir) < 0)
			return -1;
		return rpc_may_dump(c, j->o.pid);
	}
	j->o.unprivileged = true;
	j->o.client_pid = c->peer_pid;
	j->o.client_uid = c->peer_uid;
	j->o.client_gid = c->peer_gid;
	j->client_groups_n = rpc_peer_groups(c->peer_pid, j->client_groups, RPC_MAX_GROUPS);
	if (j->client_groups_n < 0) {
		pr_err("rpc: can't read the groups of client pid %d", c->peer_pid);
		return -1;
	}
	j->o.client_groups = j->client_groups;
	j->o.nr_client_groups = j->client_groups_n;
	return 0;
}

int rpc_job_paths(struct rpc_job *j, const struct rpc_conn *c, const CriuReq *req, bool need_images)
{
	static CriuOpts empty = CRIU_OPTS__INIT;
	const CriuOpts *r = req->opts ? req->opts : &empty;

	memset(j, 0, sizeof(*j));
	j->status_fd = -1;
	j->o.pid = r->has_pid ? r->pid : c->peer_pid;
	return job_paths(j, c, r, need_images);
}

int rpc_job_opts(struct rpc_job *j, const struct rpc_conn *c, const CriuReq *req)
{
	static CriuOpts empty = CRIU_OPTS__INIT;
	const CriuOpts *r = req->opts ? req->opts : &empty;
	const char *bad;

	if ((bad = unsupported_option(r))) {
		pr_err("rpc: option %s is not supported by stasis", bad);
		return -1;
	}
	if (r->has_rst_sibling && r->rst_sibling && !c->swrk) {
		pr_err("rpc: rst_sibling works only with swrk");
		return -1;
	}
	j->o.log_level = j->log_level;
	j->o.leave_running = r->has_leave_running && r->leave_running;
	j->o.shell_job = r->has_shell_job && r->shell_job;
	j->o.file_locks = r->has_file_locks && r->file_locks;
	j->o.ghost_limit = r->ghost_limit;	/* CRIU's default, 1 MiB, if unset */
	j->o.pre_dump = req->type == CRIU_REQ_TYPE__PRE_DUMP;
	j->o.track_mem = r->has_track_mem && r->track_mem;
	j->o.prev_images_dir = r->parent_img;	/* relative to the images dir, as CRIU */
	if (r->parent_img && c->peer_uid != 0) {
		pr_err("rpc: parent_img (incremental dumps) is for root clients only");
		return -1;
	}
	j->o.detach = true;
	j->o.restored_pid = &j->restored_pid;
	j->o.external = (const char **)r->external;
	j->o.nr_external = r->n_external;
	if (r->notify_scripts) {
		j->o.notify = rpc_notify;
		j->o.notify_ctx = (void *)c;
	}
	return job_inherit_fds(j, c, r) < 0 || job_ext_unix(j, r) < 0 ? -1 : 0;
}

void rpc_job_release(struct rpc_job *j)
{
	free(j->o.inherit);
	free(j->o.ext_unix_sk_ino);
	j->o.inherit = NULL;
	j->o.ext_unix_sk_ino = NULL;
	if (j->status_fd >= 0)
		close(j->status_fd);
	j->status_fd = -1;
}

/* criu_opts -> opts: the request alone first (rpc_job_paths), then what
 * it names on this machine. Logging is set up early so that every later
 * error lands in the client's log file too. */
static int job_setup(struct rpc_job *j, struct rpc_conn *c, const CriuReq *req, bool need_images)
{
	const CriuOpts *r = req->opts;

	log_init(NULL, LOG_WARN);	/* until the client's log file is known */
	if (rpc_job_paths(j, c, req, need_images) < 0)
		return -1;
	if (j->images_dir[0] && access(j->images_dir, R_OK | X_OK) < 0) {
		pr_perror("rpc: can't use the images directory %s", j->images_dir);
		return -1;
	}
	if (job_check_client(j, c, req->type) < 0 || log_init(j->log_path[0] ? j->log_path : NULL, j->log_level) < 0)
		return -1;
	if (rpc_job_opts(j, c, req) < 0)
		return -1;
	if (r && r->has_status_fd) {
		char path[64];
		peer_fd_path(path, sizeof(path), c->peer_pid, r->status_fd);
		j->status_fd = open(path, O_WRONLY | O_CLOEXEC);
		if (j->status_fd < 0) {
			pr_perror("rpc: can't open the client's status_fd %d", r->status_fd);
			return -1;
		}
	}
	struct stat st;
	if (fstat(c->sk, &st) == 0)
		j->o.service_sk_ino = st.st_ino;
	return job_check_inherit_fds(j);
}

static void job_free(struct rpc_job *j)
{
	rpc_job_release(j);
	log_close();
}

static int reply_failure(struct rpc_conn *c, CriuReqType type, int err)
{
	const char *msg = log_first_error();
	if (!err)
		err = log_first_errno();
	return rpc_send_error(c->sk, type, err, *msg ? msg : "failed (see the log)");
}

static int serve_dump(struct rpc_conn *c, const CriuReq *req)
{
	struct rpc_job j;
	CriuResp resp = CRIU_RESP__INIT;
	CriuDumpResp dr = CRIU_DUMP_RESP__INIT;
	bool self = !(req->opts && req->opts->has_pid);

	if (job_setup(&j, c, req, true) < 0) {
		job_free(&j);
		return reply_failure(c, req->type, EBADRQC);
	}
	if (kill(j.o.pid, 0) < 0 && errno == ESRCH) {
		pr_err("rpc: no process with pid %d to dump", j.o.pid);
		job_free(&j);
		return reply_failure(c, req->type, ESRCH);
	}
	int ret = stasis_dump(&j.o);
	if (ret < 0) {
		job_free(&j);
		return reply_failure(c, req->type, 0);
	}
	/* A client that dumped itself, and was not left running, is gone: its
	 * restored copy gets the reply (restored = true) from restore. */
	if (self && !j.o.leave_running && !j.o.pre_dump) {
		job_free(&j);
		return 0;
	}
	resp.type = req->type;
	resp.success = true;
	dr.has_restored = true;
	dr.restored = false;
	resp.dump = &dr;
	job_free(&j);
	return rpc_send(c->sk, &resp);
}

static int serve_restore(struct rpc_conn *c, const CriuReq *req)
{
	struct rpc_job j;
	CriuResp resp = CRIU_RESP__INIT;
	CriuRestoreResp rr = CRIU_RESTORE_RESP__INIT;

	if (job_setup(&j, c, req, true) < 0) {
		job_free(&j);
		return reply_failure(c, req->type, EBADRQC);
	}
	j.o.restore_sibling = req->opts && req->opts->has_rst_sibling && req->opts->rst_sibling;
	if (stasis_restore(&j.o) != 0) {
		job_free(&j);
		return reply_failure(c, req->type, 0);
	}
	if (j.status_fd >= 0 && write(j.status_fd, "", 1) != 1)
		pr_warn("rpc: can't write to the client's status_fd: %m");
	resp.type = req->type;
	resp.success = true;
	rr.pid = j.restored_pid;
	resp.restore = &rr;
	job_free(&j);
	return rpc_send(c->sk, &resp);
}

static int serve_check(struct rpc_conn *c, const CriuReq *req)
{
	CriuResp resp = CRIU_RESP__INIT;
	resp.type = req->type;
	resp.success = stasis_check(NULL) == 0;
	if (!resp.success)
		resp.cr_errmsg = "a kernel feature stasis needs is missing (run stasis check)";
	return rpc_send(c->sk, &resp);
}

static int serve_version(struct rpc_conn *c, const CriuReq *req)
{
	CriuResp resp = CRIU_RESP__INIT;
	CriuVersion v = CRIU_VERSION__INIT;
	/* Clients compare the numbers with CRIU's (libcriu's
	 * criu_check_version): they are those of the CRIU release whose
	 * behaviour stasis matches; name and gitid say what it really is. */
	v.major_number = CRIU_COMPAT_MAJOR;
	v.minor_number = CRIU_COMPAT_MINOR;
	v.has_sublevel = true;
	v.sublevel = 0;
	v.name = "stasis";
	v.gitid = "stasis-" STASIS_VERSION;
	resp.type = req->type;
	resp.success = true;
	resp.version = &v;
	return rpc_send(c->sk, &resp);
}

/* Only the features stasis has are reported as there. */
static int serve_features(struct rpc_conn *c, const CriuReq *req)
{
	CriuResp resp = CRIU_RESP__INIT;
	CriuFeatures f = CRIU_FEATURES__INIT;
	const CriuFeatures *asked = req->features;

	f.has_mem_track = asked && asked->has_mem_track;
	f.mem_track = f.has_mem_track && stasis_has_mem_track();
	f.has_lazy_pages = asked && asked->has_lazy_pages;
	f.has_pidfd_store = asked && asked->has_pidfd_store;
	resp.type = req->type;
	resp.success = true;
	resp.features = &f;
	return rpc_send(c->sk, &resp);
}

static int serve_one(struct rpc_conn *c, const CriuReq *req)
{
	switch (req->type) {
	case CRIU_REQ_TYPE__DUMP:
	case CRIU_REQ_TYPE__PRE_DUMP:
		return serve_dump(c, req);
	case CRIU_REQ_TYPE__RESTORE:
		return serve_restore(c, req);
	case CRIU_REQ_TYPE__CHECK:
		return serve_check(c, req);
	case CRIU_REQ_TYPE__VERSION:
		return serve_version(c, req);
	case CRIU_REQ_TYPE__FEATURE_CHECK:
		return serve_features(c, req);
	default: {
		char msg[96];
		snprintf(msg, sizeof(msg), "request type %d is not supported by stasis", req->type);
		pr_err("rpc: %s", msg);
		return rpc_send_error(c->sk, req->type, EBADRQC, msg);
	}
	}
}

int rpc_serve(struct rpc_conn *c)
{
	for (;;) {
		CriuReq *req;
		int r = rpc_recv(c->sk, &req);
		if (r == 0)
			return 0;
		if (r < 0) {
			/* answered, then the connection is closed: a client
			 * that sends garbage gets nothing more */
			rpc_send_error(c->sk, CRIU_REQ_TYPE__EMPTY, EBADMSG, log_first_error());
			return -1;
		}
		bool keep = req->has_keep_open && req->keep_open;
		int ret = serve_one(c, req);
		criu_req__free_unpacked(req, NULL);
		if (ret < 0)
			return -1;
		if (!keep)
			return 0;
	}
}

int rpc_notify(void *ctx, const char *stage, pid_t pid)
{
	struct rpc_conn *c = ctx;
	CriuResp resp = CRIU_RESP__INIT;
	CriuNotify n = CRIU_NOTIFY__INIT;
	CriuReq *ack;

	resp.type = CRIU_REQ_TYPE__NOTIFY;
	resp.success = true;
	n.script = (char *)stage;
	n.has_pid = pid > 0;
	n.pid = pid;
	resp.notify = &n;
	if (rpc_send(c->sk, &resp) < 0)
		return -1;
	if (rpc_recv(c->sk, &ack) != 1) {
		pr_err("rpc: the client did not answer the %s notification", stage);
		return -1;
	}
	bool ok = ack->type == CRIU_REQ_TYPE__NOTIFY && ack->has_notify_success && ack->notify_success;
	criu_req__free_unpacked(ack, NULL);
	if (!ok)
		pr_err("rpc: the client vetoed the %s stage", stage);
	return ok ? 0 : -1;
}
