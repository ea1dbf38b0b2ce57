/* Serving CRIU's RPC requests: each criu_req becomes the same opts the
 * command line makes, and runs the same dump, restore or check. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/opts.h"
#include "dump/dump.h"
#include "dump/check.h"
#include "dump/track.h"
#include "restore/restore.h"
#include "rpc/rpc.h"
#include "pagexfer/ps_images.h"
#include "pagexfer/ps_server.h"
#include "util/fsop.h"
#include "util/io.h"
#include "util/log.h"

#define RPC_DEFAULT_LOG "criu.log"	/* CRIU's name, which its clients look for */
/* The CRIU release whose behaviour stasis matches (VERSION replies). */
#define CRIU_COMPAT_MAJOR 4
#define CRIU_COMPAT_MINOR 2

/* A pre-dump: PRE_DUMP, a step of an iterative dump (keep_open), or
 * SINGLE_PRE_DUMP, what libcriu's criu_pre_dump sends (crun's checkpoint
 * --pre-dump), one pre-dump answered in kind. */
static bool req_pre_dump(CriuReqType type)
{
	return type == CRIU_REQ_TYPE__PRE_DUMP || type == CRIU_REQ_TYPE__SINGLE_PRE_DUMP;
}

static bool req_dumps(CriuReqType type) { return type == CRIU_REQ_TYPE__DUMP || req_pre_dump(type); }

/* Options that change what a dump or restore means, which stasis does not
 * do: a request with one of them is refused by name, not half obeyed. */
static const char *unsupported_option(const CriuOpts *r)
{
	if (r->n_exec_cmd) return "exec_cmd";
	if (r->has_empty_ns && (r->empty_ns & ~CLONE_NEWNET)) return "empty_ns (but CLONE_NEWNET)";
	if (r->has_leave_stopped && r->leave_stopped) return "leave_stopped";
	return NULL;
}

/* The directories and the log file the request names: fd numbers and
 * names only (the client's fds are taken later, by job_open_dirs). */
static int job_paths(struct rpc_job *j, const CriuOpts *r, bool need_images)
{
	const char *log_name = r->log_file ? r->log_file : RPC_DEFAULT_LOG;

	/* refused, not cut short: a truncated path names another directory */
	if ((r->images_dir && strlen(r->images_dir) >= PATH_MAX) || strlen(log_name) > NAME_MAX) {
		pr_err("rpc: the request's images_dir or log_file is longer than a path can be");
		return -1;
	}
	if (strchr(log_name, '/') || !strcmp(log_name, ".") || !strcmp(log_name, "..")) {
		pr_err("rpc: log_file %s must be a plain name (it goes in the work directory)", log_name);
		return -1;
	}
	j->images_fd_no = r->images_dir_fd >= 0 ? r->images_dir_fd : -1;
	j->work_fd_no = r->has_work_dir_fd ? r->work_dir_fd : -1;
	if (j->images_fd_no >= 0)
		snprintf(j->images_dir, sizeof(j->images_dir), "images_dir_fd %d", j->images_fd_no);
	else if (r->images_dir)
		snprintf(j->images_dir, sizeof(j->images_dir), "%s", r->images_dir);
	else if (need_images) {
		pr_err("rpc: the request names no images directory (images_dir_fd or images_dir)");
		return -1;
	}
	j->o.images_dir = j->images_dir[0] ? j->images_dir : NULL;
	j->log_level = r->log_level < 0 ? 0 : r->log_level > 4 ? 4 : r->log_level;
	if (!(r->has_log_to_stderr && r->log_to_stderr) && (j->work_fd_no >= 0 || j->images_dir[0]))
		snprintf(j->log_name, sizeof(j->log_name), "%s", log_name);
	return 0;
}

/* A mount namespace's options (ns/mnt.h): root, skip_mnt, enable_fs, and
 * ext_mnt pairs joined to external as CRIU's mnt[KEY]:VAL. root makes
 * mounts as root from what the request says: a root client's only. */
static int job_mounts(struct rpc_job *j, const struct rpc_conn *c, const CriuOpts *r)
{
	if (r->root && c->peer_uid != 0) {
		pr_err("rpc: root (a mount namespace's new root) is for root clients only");
		return -1;
	}
	j->o.root = r->root;
	j->o.skip_mnt = (const char **)r->skip_mnt;
	j->o.nr_skip_mnt = r->n_skip_mnt;
	j->o.enable_fs = (const char **)r->enable_fs;
	j->o.nr_enable_fs = r->n_enable_fs;
	size_t n = r->n_external + r->n_ext_mnt;
	j->o.external = calloc(n ? n : 1, sizeof(char *));
	j->ext_mnt = calloc(r->n_ext_mnt ? r->n_ext_mnt : 1, sizeof(char *));
	if (!j->o.external || !j->ext_mnt) {
		pr_err("rpc: out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->n_external; i++)
		j->o.external[j->o.nr_external++] = r->external[i];
	for (size_t i = 0; i < r->n_ext_mnt; i++) {
		const ExtMountMap *m = r->ext_mnt[i];
		if (asprintf(&j->ext_mnt[j->nr_ext_mnt], "mnt[%s]:%s", m->key, m->val) < 0) {
			pr_err("rpc: out of memory");
			return -1;
		}
		j->o.external[j->o.nr_external++] = j->ext_mnt[j->nr_ext_mnt++];
	}
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

/* The network options (net/netns.h): veths as --veth-pair's IN=OUT,
 * empty_ns CLONE_NEWNET, join_ns net (root only: it enters a namespace
 * by a path root opens). */
static int job_net(struct rpc_job *j, const struct rpc_conn *c, const CriuOpts *r)
{
	j->o.empty_net = r->has_empty_ns && (r->empty_ns & CLONE_NEWNET);
	for (size_t i = 0; i < r->n_join_ns; i++) {
		if (strcmp(r->join_ns[i]->ns, "net")) {
			pr_err("rpc: join_ns %.16s: stasis joins only a network namespace", r->join_ns[i]->ns);
			return -1;
		}
		if (c->peer_uid != 0) {
			pr_err("rpc: join_ns net is for root clients only");
			return -1;
		}
		j->o.join_net = r->join_ns[i]->ns_file;
	}
	if (!r->n_veths)
		return 0;
	j->o.veth_pairs = calloc(r->n_veths, sizeof(*j->o.veth_pairs));
	if (!j->o.veth_pairs)
		return -1;
	for (size_t i = 0; i < r->n_veths; i++) {
		char *p;
		if (asprintf(&p, "%s=%s", r->veths[i]->if_in, r->veths[i]->if_out) < 0)
			return -1;
		j->o.veth_pairs[j->o.nr_veth_pairs++] = p;
	}
	return 0;
}

/* A non-root client gets no more than it could do itself: it must be
 * able to write where the images go and to ptrace what it dumps (checked
 * again on what is seized), and a restore it asks for runs with its ids
 * (see restore/unpriv.c). Its files are all made by the broker. */
static int job_check_client(struct rpc_job *j, const struct rpc_conn *c, CriuReqType type)
{
	if (!rpc_lends_root(c))
		return 0;
	if (req_dumps(type)) {
		if (rpc_may_write_dir(c, j->o.images_dirfd, j->images_dir) < 0)
			return -1;
		j->o.check_seized = rpc_may_dump_seized;
		j->o.check_ctx = (void *)c;
		j->o.unprivileged = true;
		return rpc_may_dump(c, j->o.pid);
	}
	j->o.unprivileged = true;
	j->o.client_pid = c->peer_pid;
	j->o.client_pidfd = c->pidfd;
	j->o.client_uid = c->peer_uid;
	j->o.client_gid = c->peer_gid;
	j->o.client_groups = (gid_t *)c->groups;
	j->o.nr_client_groups = c->ngroups;
	return 0;
}

/* CRIU's cgroup fields: manage_cgroups is soft (or ignore), and an
 * explicit manage_cgroups_mode wins. What stasis opens for them (the yard,
 * the props file) a non-root client's broker opens (util/fsop.h). */
static int job_cgroups(struct rpc_job *j, const CriuOpts *r)
{
	static const enum cg_mode modes[] = {
		[CRIU_CG_MODE__IGNORE] = CG_MODE_IGNORE, [CRIU_CG_MODE__CG_NONE] = CG_MODE_NONE,
		[CRIU_CG_MODE__PROPS] = CG_MODE_PROPS, [CRIU_CG_MODE__SOFT] = CG_MODE_SOFT,
		[CRIU_CG_MODE__FULL] = CG_MODE_FULL, [CRIU_CG_MODE__STRICT] = CG_MODE_STRICT,
		[CRIU_CG_MODE__DEFAULT] = CG_MODE_DEFAULT };

	if (r->has_manage_cgroups)
		j->o.cg_mode = r->manage_cgroups ? CG_MODE_SOFT : CG_MODE_IGNORE;
	if (r->has_manage_cgroups_mode) {
		if ((unsigned)r->manage_cgroups_mode >= sizeof(modes) / sizeof(modes[0])) {
			pr_err("rpc: manage_cgroups_mode %d is not one of CRIU's", r->manage_cgroups_mode);
			return -1;
		}
		j->o.cg_mode = modes[r->manage_cgroups_mode];
	}
	if (r->n_cg_root) {
		j->o.cg_roots = calloc(r->n_cg_root, sizeof(*j->o.cg_roots));
		if (!j->o.cg_roots)
			return -1;
		for (size_t i = 0; i < r->n_cg_root; i++) {
			if (!r->cg_root[i]->path || r->cg_root[i]->path[0] != '/') {
				pr_err("rpc: cg_root %s is not an absolute path", r->cg_root[i]->path);
				return -1;
			}
			j->o.cg_roots[i] = (struct cg_root){ r->cg_root[i]->ctrl, r->cg_root[i]->path };
		}
		j->o.nr_cg_roots = r->n_cg_root;
	}
	j->o.cgroup_props = r->cgroup_props;
	j->o.cgroup_props_file = r->cgroup_props_file;
	j->o.cgroup_dump_ctls = (const char **)r->cgroup_dump_controller;
	j->o.nr_cgroup_dump_ctls = r->n_cgroup_dump_controller;
	j->o.cgroup_yard = r->cgroup_yard;
	return 0;
}

/* What container runtimes (runc, crun, podman) send. The freezer's files
 * are opened by a non-root client's broker (task/freezer.h). */
static int job_containers(struct rpc_job *j, const struct rpc_conn *c, const CriuOpts *r)
{
	if (r->freeze_cgroup && r->freeze_cgroup[0] != '/') {
		pr_err("rpc: freeze_cgroup %s is not an absolute path", r->freeze_cgroup);
		return -1;
	}
	j->o.freeze_cgroup = r->freeze_cgroup;
	j->o.orphan_pts_master = r->has_orphan_pts_master && r->orphan_pts_master;
	if (r->notify_scripts)
		j->o.notify_fd = rpc_notify_fd;
	/* read as root, its errors quoted back: a root client's file only */
	if (r->config_file && c->peer_uid != 0) {
		pr_err("rpc: config_file is for root clients only");
		return -1;
	}
	return 0;
}

static rpc_config_reader config_reader;

void rpc_set_config_reader(rpc_config_reader fn)
{
	config_reader = fn;
}

/* CRIU's config_file (runc sends /etc/criu/runc.conf): its options
 * override the request's; a file that does not exist is no error. */
static int job_config(struct rpc_job *j, const CriuOpts *r)
{
	if (!r || !r->config_file)
		return 0;
	if (access(r->config_file, F_OK) < 0 && errno == ENOENT) {
		pr_info("rpc: config_file %s does not exist: nothing to apply", r->config_file);
		return 0;
	}
	if (!config_reader) {
		pr_err("rpc: config_file %s: no configuration reader here", r->config_file);
		return -1;
	}
	pr_info("rpc: applying the options of config_file %s", r->config_file);
	return config_reader(r->config_file, &j->o);
}

int rpc_job_paths(struct rpc_job *j, const struct rpc_conn *c, const CriuReq *req, bool need_images)
{
	static CriuOpts empty = CRIU_OPTS__INIT;
	const CriuOpts *r = req->opts ? req->opts : &empty;

	memset(j, 0, sizeof(*j));
	j->status_fd = -1;
	j->o.images_dirfd = j->o.work_dirfd = -1;
	j->o.ps_socket = j->o.status_fd = -1;
	j->ps_fd_no = -1;
	j->o.pid = r->has_pid ? r->pid : c->peer_pid;
	return job_paths(j, r, need_images);
}

/* ps: the pages go to the page server at address:port (dump/ps_send.h),
 * or over ps.fd, a socket of the client's already connected to it, taken
 * by job_setup (CRIU's ps_socket: address and port are not needed, the
 * dump ends with FORCE_CLOSE). A PAGE_SERVER request listens on address
 * and port (serve_page_server). pre_dump_mode needs nothing: stasis
 * copies pages one way. */
static int job_page_server(struct rpc_job *j, const CriuReq *req, const CriuOpts *r)
{
	if (!r->ps)
		return 0;
	if (r->ps->has_fd) {
		if (!req_dumps(req->type)) {
			pr_err("rpc: ps.fd is for dump and pre-dump requests");
			return -1;
		}
		j->ps_fd_no = r->ps->fd;
		j->o.page_server = true;
		j->o.address = r->ps->address;	/* the name TLS checks, if given */
		return 0;
	}
	if (req->type == CRIU_REQ_TYPE__PAGE_SERVER)
		return 0;
	if (j->o.lazy_pages && req->type == CRIU_REQ_TYPE__DUMP) {	/* job_lazy_pages */
		j->o.port = r->ps->port;
		return 0;
	}
	if (!r->ps->address || !r->ps->has_port || r->ps->port <= 0 || r->ps->port > 65535) {
		pr_err("rpc: ps needs the page server's address and port, or fd");
		return -1;
	}
	j->o.page_server = true;
	j->o.address = r->ps->address;
	j->o.port = r->ps->port;
	return 0;
}

/* lazy_pages, as CRIU: a restore's memory comes from a lazy-pages
 * daemon; a dump serves the tree's lazy memory on ps.port (every
 * address: CRIU ignores ps.address then) until the destination's daemon
 * has it (dump --lazy-pages), saying status-ready once it listens; a
 * PAGE_SERVER serves the lazy pages of the images (page-server
 * --lazy-pages); a pre-dump ignores it. Serving memory to whoever
 * connects is for root clients only, as PAGE_SERVER is. */
static int job_lazy_pages(struct rpc_job *j, const struct rpc_conn *c, const CriuReq *req, const CriuOpts *r)
{
	j->o.lazy_pages = r->has_lazy_pages && r->lazy_pages;
	if (!j->o.lazy_pages || req->type == CRIU_REQ_TYPE__RESTORE || req_pre_dump(req->type))
		return 0;
	if (req->type != CRIU_REQ_TYPE__DUMP && req->type != CRIU_REQ_TYPE__PAGE_SERVER) {
		pr_err("rpc: lazy_pages is for dump, page server and restore requests");
		return -1;
	}
	if (c->peer_uid != 0) {
		pr_err("rpc: a dump or page server serving lazy pages is for root clients only (it serves memory to any peer)");
		return -1;
	}
	if (req->type == CRIU_REQ_TYPE__DUMP && (!r->ps || !r->ps->has_port || r->ps->port <= 0 ||
						 r->ps->port > 65535 || r->ps->has_fd)) {
		pr_err("rpc: a dump with lazy_pages needs ps.port, the port to serve its pages on");
		return -1;
	}
	return 0;
}

/* tls: the page server's connection over TLS (pagexfer/ps_tls.h), as
 * the command line's --tls options. The files are read as the client
 * (ps_tls.c reads them through util/fsop); relative names are made
 * absolute by job_tls_paths once the work directory is known. */
static void job_tls(struct rpc_job *j, const CriuOpts *r)
{
	j->o.tls = r->has_tls && r->tls;
	j->o.tls_no_cn_verify = r->has_tls_no_cn_verify && r->tls_no_cn_verify;
	j->o.tls_cacert = r->tls_cacert;
	j->o.tls_cacrl = r->tls_cacrl;
	j->o.tls_cert = r->tls_cert;
	j->o.tls_key = r->tls_key;
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
	j->o.timeout = r->has_timeout ? r->timeout : 0;
	j->o.leave_running = r->has_leave_running && r->leave_running;
	j->o.shell_job = r->has_shell_job && r->shell_job;
	j->o.file_locks = r->has_file_locks && r->file_locks;
	j->o.link_remap = r->has_link_remap && r->link_remap;
	/* rpc.proto's methods are the inventory's plus one (IPTABLES = 1) */
	if (r->has_network_lock) {
		if (r->network_lock < CRIU_NETWORK_LOCK_METHOD__IPTABLES ||
		    r->network_lock > CRIU_NETWORK_LOCK_METHOD__SKIP) {
			pr_err("rpc: network_lock %d is not a method", r->network_lock);
			return -1;
		}
		j->o.network_lock = r->network_lock - CRIU_NETWORK_LOCK_METHOD__IPTABLES;
	}
	j->o.tcp_established = r->has_tcp_established && r->tcp_established;
	j->o.tcp_close = r->has_tcp_close && r->tcp_close;
	j->o.skip_in_flight = r->has_tcp_skip_in_flight && r->tcp_skip_in_flight;
	j->o.ghost_limit = r->ghost_limit;	/* CRIU's default, 1 MiB, if unset */
	if (job_lazy_pages(j, c, req, r) < 0)
		return -1;
	/* a scan of the filesystem by stasis would show a client paths it
	 * may not reach itself */
	if (((r->has_force_irmap && r->force_irmap) || r->n_irmap_scan_paths) && c->peer_uid != 0) {
		pr_err("rpc: force_irmap and irmap_scan_paths are for root clients only");
		return -1;
	}
	if (job_cgroups(j, r) < 0)
		return -1;
	j->o.force_irmap = r->has_force_irmap && r->force_irmap;
	j->o.irmap_scan_paths = (const char **)r->irmap_scan_paths;
	j->o.nr_irmap_scan_paths = r->n_irmap_scan_paths;
	j->o.pre_dump = req_pre_dump(req->type);
	if (job_page_server(j, req, r) < 0)
		return -1;
	job_tls(j, r);
	j->o.track_mem = r->has_track_mem && r->track_mem;
	j->o.prev_images_dir = r->parent_img;	/* relative to the images dir, as CRIU */
	j->o.auto_dedup = r->has_auto_dedup && r->auto_dedup;
	if (r->parent_img && c->peer_uid != 0) {
		pr_err("rpc: parent_img (incremental dumps) is for root clients only");
		return -1;
	}
	j->o.detach = true;
	j->o.restored_pid = &j->restored_pid;
	if (job_mounts(j, c, r) < 0 || job_containers(j, c, r) < 0)
		return -1;
	if (r->notify_scripts) {
		j->o.notify = rpc_notify;
		j->o.notify_ctx = (void *)c;
	}
	return job_inherit_fds(j, c, r) < 0 || job_ext_unix(j, r) < 0 || job_net(j, c, r) < 0 ? -1 : 0;
}

void rpc_job_release(struct rpc_job *j)
{
	for (int i = 0; i < j->nr_ext_mnt; i++)
		free(j->ext_mnt[i]);
	free(j->ext_mnt);
	free(j->o.external);
	j->ext_mnt = NULL;
	j->o.external = NULL;
	j->nr_ext_mnt = j->o.nr_external = 0;
	free(j->o.inherit);
	free(j->o.cg_roots);
	free(j->o.ext_unix_sk_ino);
	for (int i = 0; i < j->o.nr_veth_pairs; i++)
		free((char *)j->o.veth_pairs[i]);
	free(j->o.veth_pairs);
	j->o.veth_pairs = NULL;
	j->o.nr_veth_pairs = 0;
	j->o.inherit = NULL;
	j->o.ext_unix_sk_ino = NULL;
	if (j->status_fd >= 0)
		close(j->status_fd);
	j->status_fd = -1;
	if (j->o.images_dirfd >= 0)
		close(j->o.images_dirfd);
	if (j->o.work_dirfd >= 0)
		close(j->o.work_dirfd);
	j->o.images_dirfd = j->o.work_dirfd = -1;
	if (j->ps_fd_no >= 0 && j->o.ps_socket >= 0)
		close(j->o.ps_socket);
	j->o.ps_socket = -1;
	for (int i = 0; i < 4; i++) {
		free(j->tls_abs[i]);
		j->tls_abs[i] = NULL;
	}
}

/* The real name of a directory we hold, for messages. */
static void name_dir(char *buf, size_t len, int fd)
{
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(self, buf, len - 1);
	if (n > 0)
		buf[n] = 0;
}

/* One of the request's directories: the client's own fd, or the path
 * it names opened here (by the broker, for a non-root client). */
static int open_dir(const struct rpc_conn *c, int fd_no, const char *what, const char *path)
{
	if (fd_no >= 0)
		return rpc_take_dir(c, fd_no, what);
	int fd = fs_open_dir(path);
	if (fd < 0)
		pr_perror("rpc: can't open the %s %s", what, path);
	return fd;
}

static int job_open_dirs(struct rpc_job *j, const struct rpc_conn *c)
{
	if (j->o.images_dir) {
		j->o.images_dirfd = open_dir(c, j->images_fd_no, j->images_fd_no >= 0 ? "images_dir_fd" : "images_dir",
					     j->images_dir);
		if (j->o.images_dirfd < 0)
			return -1;
		name_dir(j->images_dir, sizeof(j->images_dir), j->o.images_dirfd);
	}
	if (j->work_fd_no >= 0) {
		j->o.work_dirfd = rpc_take_dir(c, j->work_fd_no, "work_dir_fd");
		if (j->o.work_dirfd < 0)
			return -1;
		name_dir(j->work_dir, sizeof(j->work_dir), j->o.work_dirfd);
		j->o.work_dir = j->work_dir;
	}
	return 0;
}

/* ps.fd, taken from the client: the open file it holds, never its
 * number in our own table. */
static int job_ps_socket(struct rpc_job *j, const struct rpc_conn *c)
{
	if (j->ps_fd_no < 0)
		return 0;
	j->o.ps_socket = rpc_take_stream_socket(c, j->ps_fd_no, "ps.fd");
	if (j->o.ps_socket < 0)
		return -1;
	pr_info("rpc: the pages go over the client's ps.fd %d", j->ps_fd_no);
	return 0;
}

/* CRIU reads the tls_* files from its work directory (it chdirs there:
 * work_dir, else the images directory); we hold that directory by fd
 * and know its name, so a relative name becomes that name's child. */
static int job_tls_paths(struct rpc_job *j)
{
	const char **names[4] = { &j->o.tls_cacert, &j->o.tls_cacrl, &j->o.tls_cert, &j->o.tls_key };
	const char *base = j->o.work_dir ? j->o.work_dir : j->o.images_dirfd >= 0 ? j->images_dir : NULL;

	for (int i = 0; i < 4 && base; i++) {
		if (!*names[i] || (*names[i])[0] == '/')
			continue;
		if (asprintf(&j->tls_abs[i], "%s/%s", base, *names[i]) < 0) {
			j->tls_abs[i] = NULL;
			pr_err("rpc: out of memory");
			return -1;
		}
		*names[i] = j->tls_abs[i];
	}
	return 0;
}

static int job_log(struct rpc_job *j)
{
	int dirfd = j->o.work_dirfd >= 0 ? j->o.work_dirfd : j->o.images_dirfd;
	if (!j->log_name[0] || dirfd < 0)
		return 0;
	return log_init_at(dirfd, j->log_name, j->log_level);
}

/* criu_opts -> opts: the request alone first (rpc_job_paths), then what
 * it names on this machine. For a non-root client the broker is started
 * before anything is opened, and opens all of it. Logging is set up
 * early so that every later error lands in the client's log file too. */
static int job_setup(struct rpc_job *j, struct rpc_conn *c, const CriuReq *req, bool need_images)
{
	const CriuOpts *r = req->opts;
	log_init(NULL, LOG_WARN);	/* until the client's log file is known */
	if (rpc_job_paths(j, c, req, need_images) < 0) {
		j->err = EBADRQC;
		return -1;
	}
	if (rpc_lends_root(c) && fs_broker_start(c->peer_uid, c->peer_gid, c->groups, c->ngroups) < 0)
		return -1;
	if (job_open_dirs(j, c) < 0 || job_log(j) < 0)
		return -1;
	if (job_check_client(j, c, req->type) < 0)
		return -1;
	if (rpc_job_opts(j, c, req) < 0 || job_config(j, r) < 0) {
		j->err = EBADRQC;
		return -1;
	}
	if (r && r->has_status_fd && (j->status_fd = rpc_take_writable(c, r->status_fd, "status_fd")) < 0)
		return -1;
	if (j->o.lazy_pages && req->type == CRIU_REQ_TYPE__DUMP) {
		/* the dump's, said at status-ready (action_status_ready
		 * closes it), kept by the worker if the dump fails before */
		j->o.status_fd = j->status_fd;
		j->status_fd = -1;
	}
	if (job_ps_socket(j, c) < 0 || job_tls_paths(j) < 0)
		return -1;
	struct stat st;
	if (fstat(c->sk, &st) == 0)
		j->o.service_sk_ino = st.st_ino;
	return job_check_inherit_fds(j);
}

static void job_free(struct rpc_job *j)
{
	rpc_job_release(j);
	fs_broker_stop();
	log_close();
}

/* The reply names the cause: the first error logged, and an errno
 * (pycriu and libcriu show cr_errno; 0 would read "Unknown"). */
static int reply_failure(struct rpc_conn *c, CriuReqType type, int err)
{
	const char *msg = log_first_error();
	if (log_first_errno())
		err = log_first_errno();
	if (!err)
		err = ECANCELED;
	return rpc_send_error(c->sk, type, err, *msg ? msg : "failed for a reason stasis did not record");
}

static int serve_dump(struct rpc_conn *c, const CriuReq *req)
{
	struct rpc_job j;
	CriuResp resp = CRIU_RESP__INIT;
	CriuDumpResp dr = CRIU_DUMP_RESP__INIT;
	bool self = !(req->opts && req->opts->has_pid);

	if (job_setup(&j, c, req, true) < 0) {
		job_free(&j);
		return reply_failure(c, req->type, j.err);
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
		return reply_failure(c, req->type, j.err);
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
	f.mem_track = f.has_mem_track && track_method() != TRACK_NONE;
	f.has_lazy_pages = asked && asked->has_lazy_pages;
	f.lazy_pages = f.has_lazy_pages && check_lazy_pages();
	f.has_pidfd_store = asked && asked->has_pidfd_store;
	resp.type = req->type;
	resp.success = true;
	resp.features = &f;
	return rpc_send(c->sk, &resp);
}

/* PAGE_SERVER: a page server (pagexfer/ps_server.h) for the request's
 * images directory on ps.address (default: every one) and ps.port (0 or
 * none: any free one), run apart from the service (it serves until one
 * dump has sent everything, or with lazy_pages until one lazy-pages
 * daemon has had the lazy pages of the images there); the reply names
 * its pid and port. Root clients only: it writes what any peer on the
 * network sends, or serves the images to it. */
static int serve_page_server(struct rpc_conn *c, const CriuReq *req)
{
	struct rpc_job j;
	CriuResp resp = CRIU_RESP__INIT;
	CriuPageServerInfo ps = CRIU_PAGE_SERVER_INFO__INIT;
	const CriuPageServerInfo *want = req->opts ? req->opts->ps : NULL;
	unsigned port = 0;
	pid_t server = -1;
	int p[2];

	if (c->peer_uid != 0)
		return rpc_send_error(c->sk, req->type, EPERM, "PAGE_SERVER is for root clients only");
	if (job_setup(&j, c, req, true) < 0) {
		job_free(&j);
		return reply_failure(c, req->type, j.err);
	}
	j.o.address = want ? want->address : NULL;
	j.o.port = want && want->has_port && want->port > 0 ? want->port : 0;
	struct ps_pages *lazy = NULL;
	if (j.o.lazy_pages && !(lazy = ps_images_open(j.o.images_dirfd, &j.o))) {
		job_free(&j);
		return reply_failure(c, req->type, 0);
	}
	int lsk = ps_server_listen(&j.o, &port);
	if (lsk < 0 || pipe2(p, O_CLOEXEC) < 0) {
		if (lsk >= 0)
			close(lsk);
		ps_images_close(lazy);
		job_free(&j);
		return reply_failure(c, req->type, 0);
	}
	pid_t child = fork();
	if (child == 0) {	/* a grandchild serves: nobody has to reap it */
		pid_t gc = fork();
		if (gc == 0) {
			close(p[0]);
			close(p[1]);
			close(c->sk);
			setsid();
			stdio_to_null();	/* a client reading our output to its end must not wait for it */
			if (lazy)
				_exit(ps_lazy_serve(lsk, -1, &j.o, lazy) < 0 ? 1 : 0);
			_exit(ps_server_serve(lsk, j.o.images_dirfd, &j.o) < 0 ? 1 : 0);
		}
		_exit(write(p[1], &gc, sizeof(gc)) == sizeof(gc) ? 0 : 1);
	}
	close(p[1]);
	close(lsk);
	ps_images_close(lazy);
	if (child > 0) {
		if (read(p[0], &server, sizeof(server)) != sizeof(server))
			server = -1;
		waitpid(child, NULL, 0);
	} else {
		pr_perror("rpc: can't start the page server");
	}
	close(p[0]);
	if (server <= 0) {
		job_free(&j);
		return reply_failure(c, req->type, 0);
	}
	pr_info("rpc: page server pid %d on port %u", server, port);
	ps.has_pid = ps.has_port = true;
	ps.pid = server;
	ps.port = port;
	resp.type = req->type;
	resp.success = true;
	resp.ps = &ps;
	job_free(&j);
	return rpc_send(c->sk, &resp);
}

static int serve_one(struct rpc_conn *c, const CriuReq *req)
{
	switch (req->type) {
	case CRIU_REQ_TYPE__DUMP:
	case CRIU_REQ_TYPE__PRE_DUMP:
	case CRIU_REQ_TYPE__SINGLE_PRE_DUMP:
		return serve_dump(c, req);
	case CRIU_REQ_TYPE__RESTORE:
		return serve_restore(c, req);
	case CRIU_REQ_TYPE__CHECK:
		return serve_check(c, req);
	case CRIU_REQ_TYPE__VERSION:
		return serve_version(c, req);
	case CRIU_REQ_TYPE__FEATURE_CHECK:
		return serve_features(c, req);
	case CRIU_REQ_TYPE__PAGE_SERVER:
		return serve_page_server(c, req);
	default: {
		char msg[96];
		snprintf(msg, sizeof(msg), "request type %d is not supported by stasis", req->type);
		pr_err("rpc: %s", msg);
		return rpc_send_error(c->sk, req->type, EBADRQC, msg);
	}
	}
}

/* Without --allow-users the service is root's alone: serving a user
 * lends it root's powers to pick pids and the exe link (README). */
static int refuse_user(struct rpc_conn *c, CriuReqType type)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "uid %u may not use this stasis service (it serves root%s)", c->peer_uid,
		 c->allowed && c->allowed->nr ? " and the users of --allow-users" : " only");
	pr_err("rpc: %s", msg);
	return rpc_send_error(c->sk, type, EPERM, msg);
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
		/* after a PRE_DUMP the connection stays for the next step,
		 * another PRE_DUMP or the DUMP, keep_open or not: CRIU's
		 * pre-dump loop, which iterating clients count on */
		bool keep = (req->has_keep_open && req->keep_open) || req->type == CRIU_REQ_TYPE__PRE_DUMP;
		if (!rpc_uid_allowed(c)) {
			int ret = refuse_user(c, req->type);
			criu_req__free_unpacked(req, NULL);
			return ret;
		}
		int ret = serve_one(c, req);
		criu_req__free_unpacked(req, NULL);
		if (ret < 0)
			return -1;
		if (!keep)
			return 0;
	}
}

static int notify(struct rpc_conn *c, const char *stage, pid_t pid, int fd)
{
	CriuResp resp = CRIU_RESP__INIT;
	CriuNotify n = CRIU_NOTIFY__INIT;
	CriuReq *ack;

	resp.type = CRIU_REQ_TYPE__NOTIFY;
	resp.success = true;
	n.script = (char *)stage;
	/* as CRIU: the pid goes with the two stages that have the tree's
	 * root in a new pid namespace (runc learns the restored pid from
	 * post-restore, and runs its hooks at setup-namespaces with it) */
	n.has_pid = pid > 0 && (!strcmp(stage, "setup-namespaces") || !strcmp(stage, "post-restore"));
	n.pid = pid;
	resp.notify = &n;
	if (rpc_send_with_fd(c->sk, &resp, fd) < 0)
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

int rpc_notify(void *ctx, const char *stage, pid_t pid)
{
	return notify(ctx, stage, pid, -1);
}

int rpc_notify_fd(void *ctx, const char *stage, int fd)
{
	return notify(ctx, stage, 0, fd);
}
