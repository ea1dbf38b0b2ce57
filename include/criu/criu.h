/*
 * libstasis: a C client of Stasis with the API of CRIU's libcriu.
 *
 * A program written for libcriu builds unchanged against this header and
 * links with -lstasis (pkg-config --cflags --libs libstasis). Every call
 * sends one of CRIU's RPC requests (see proto/rpc.proto) to a Stasis
 * server, reached one of three ways:
 *
 *   CRIU_COMM_BIN (default)  the library starts `BINARY swrk FD` for each
 *                            request, BINARY being "stasis" looked up in
 *                            PATH unless criu_set_service_binary() says
 *                            otherwise;
 *   CRIU_COMM_SK             a `stasis service --address SOCK` daemon,
 *                            chosen with criu_set_service_address();
 *   CRIU_COMM_FD             an already connected socket, given with
 *                            criu_set_service_fd() (used for one request,
 *                            then closed, as libcriu does).
 *
 * Options are kept either in one global set (criu_init_opts(), criu_set_*)
 * or in sets of the caller's own (criu_local_init_opts(), criu_local_*).
 *
 * Return values of the requests (criu_check, criu_dump, criu_restore, ...):
 *   >= 0           success (criu_dump: 1 in the restored copy of a
 *                  self-dump; criu_restore*: the restored root's pid)
 *   -EBADE         the server tried and failed; errno holds its cr_errno
 *                  (0 when it gave none) and its log says why
 *   -ECONNREFUSED  the server could not be reached or started (errno why)
 *   -ECOMM         the request or its answer could not be sent/received
 *   -EINVAL        the server does not know this kind of request
 *   -EBADMSG       the server answered something unexpected
 *   other          the value a notify callback vetoed a stage with
 */
#ifndef STASIS_CRIU_H
#define STASIS_CRIU_H

#include <stdbool.h>
#include <stddef.h>
/* libcriu's header reaches these through protobuf-c's; programs written
 * for it may rely on them (PATH_MAX, uint32_t, ...). */
#include <assert.h>
#include <limits.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Log levels for criu_set_log_level(). */
#define CRIU_LOG_UNSET (-1)
#define CRIU_LOG_MSG   (0)	/* always written */
#define CRIU_LOG_ERROR (1)
#define CRIU_LOG_WARN  (2)
#define CRIU_LOG_INFO  (3)
#define CRIU_LOG_DEBUG (4)

enum criu_service_comm { CRIU_COMM_SK, CRIU_COMM_FD, CRIU_COMM_BIN };

enum criu_cg_mode {
	CRIU_CG_MODE_IGNORE,
	CRIU_CG_MODE_NONE,
	CRIU_CG_MODE_PROPS,
	CRIU_CG_MODE_SOFT,
	CRIU_CG_MODE_FULL,
	CRIU_CG_MODE_STRICT,
	CRIU_CG_MODE_DEFAULT,
};

enum criu_network_lock_method {
	CRIU_NETWORK_LOCK_IPTABLES = 1,
	CRIU_NETWORK_LOCK_NFTABLES = 2,
	CRIU_NETWORK_LOCK_SKIP = 3,
};

enum criu_pre_dump_mode { CRIU_PRE_DUMP_SPLICE = 1, CRIU_PRE_DUMP_READ = 2 };

/* What a notify callback is handed: the server's criu_notify message
 * (the same struct as in protobuf-c's rpc.pb-c.h; read it with
 * criu_notify_pid()). */
typedef struct CriuNotify CriuNotify;
typedef CriuNotify *criu_notify_arg_t;

/* Opaque option sets for the criu_local_* calls. */
typedef struct criu_opts criu_opts;

/* Opaque, for criu_dump_iters() callbacks. */
typedef void *criu_predump_info;

/* criu_feature_check(): set what to ask about; on return each is true
 * if the server has it. */
struct criu_feature_check {
	bool mem_track;
	bool lazy_pages;
	bool pidfd_store;
};

/* ---- the global option set ---- */

/* Must come first: (re)sets every option to its default. 0 or -1. */
int criu_init_opts(void);
void criu_free_opts(void);

int criu_set_service_address(const char *path);
void criu_set_service_fd(int fd);
int criu_set_service_binary(const char *path);
/* Not in current libcriu (older versions had it): picks the mode, keeping
 * the address/fd/binary set for it before. */
void criu_set_service_comm(enum criu_service_comm comm);

void criu_set_pid(int pid);
void criu_set_images_dir_fd(int fd);	/* needed by dump and restore */
int criu_set_parent_images(const char *path);
void criu_set_work_dir_fd(int fd);
void criu_set_leave_running(bool leave_running);
void criu_set_ext_unix_sk(bool ext_unix_sk);
int criu_add_unix_sk(unsigned int inode);
void criu_set_tcp_established(bool tcp_established);
void criu_set_tcp_skip_in_flight(bool tcp_skip_in_flight);
void criu_set_tcp_close(bool tcp_close);
void criu_set_weak_sysctls(bool val);
void criu_set_evasive_devices(bool evasive_devices);
void criu_set_shell_job(bool shell_job);
void criu_set_skip_file_rwx_check(bool skip_file_rwx_check);
void criu_set_unprivileged(bool unprivileged);
void criu_set_orphan_pts_master(bool orphan_pts_master);
void criu_set_file_locks(bool file_locks);
void criu_set_track_mem(bool track_mem);
void criu_set_auto_dedup(bool auto_dedup);
void criu_set_force_irmap(bool force_irmap);
void criu_set_link_remap(bool link_remap);
void criu_set_log_level(int log_level);
int criu_set_log_file(const char *log_file);
void criu_set_cpu_cap(unsigned int cap);
int criu_set_root(const char *root);
void criu_set_manage_cgroups(bool manage);
void criu_set_manage_cgroups_mode(enum criu_cg_mode mode);
int criu_set_freeze_cgroup(const char *name);
int criu_set_lsm_profile(const char *name);
int criu_set_lsm_mount_context(const char *name);
void criu_set_timeout(unsigned int timeout);
void criu_set_auto_ext_mnt(bool val);
void criu_set_ext_sharing(bool val);
void criu_set_ext_masters(bool val);
int criu_set_exec_cmd(int argc, char *argv[]);
int criu_add_ext_mount(const char *key, const char *val);
int criu_add_veth_pair(const char *in, const char *out);
int criu_add_cg_root(const char *ctrl, const char *path);
int criu_add_enable_fs(const char *fs);
int criu_add_skip_mnt(const char *mnt);
void criu_set_ghost_limit(unsigned int limit);
int criu_add_irmap_path(const char *path);
int criu_add_inherit_fd(int fd, const char *key);	/* swrk mode only */
int criu_add_external(const char *key);
int criu_set_page_server_address_port(const char *address, int port);
int criu_set_pre_dump_mode(enum criu_pre_dump_mode mode);
void criu_set_pidfd_store_sk(int sk);
int criu_set_network_lock(enum criu_network_lock_method method);
int criu_join_ns_add(const char *ns, const char *ns_file, const char *extra_opt);
void criu_set_mntns_compat_mode(bool val);
int criu_set_config_file(const char *path);
void criu_set_empty_ns(int namespaces);

/* The callback is told each stage (pre-dump, network-lock, post-dump,
 * pre-restore, post-restore, ...); returning non-zero vetoes it: the
 * request fails and returns that value (use a negative one), once the
 * server has undone its work (a vetoed dump leaves the tree running);
 * the callback still hears the stages of that undoing (network-unlock).
 * Setting a callback asks the server for notifications. */
void criu_set_notify_cb(int (*cb)(char *action, criu_notify_arg_t na));
/* The pid the notification is about, 0 if it names none. */
int criu_notify_pid(criu_notify_arg_t na);
/* An fd the server passed with a notification, or -1. */
int criu_get_orphan_pts_master_fd(void);

int criu_check(void);
int criu_dump(void);
int criu_pre_dump(void);
int criu_restore(void);
/* Restore with the restored tree made a child of the caller. */
int criu_restore_child(void);
int criu_dump_iters(int (*more)(criu_predump_info pi));

/* The server's version as major * 10000 + minor * 100 + sublevel. */
int criu_get_version(void);
/* 1 if the server's version is at least minimum, 0 if not, < 0 on error. */
int criu_check_version(int minimum);

int criu_feature_check(struct criu_feature_check *features, size_t size);

/* ---- option sets of the caller's own ---- */

int criu_local_init_opts(criu_opts **opts);
void criu_local_free_opts(criu_opts *opts);

int criu_local_set_service_address(criu_opts *opts, const char *path);
void criu_local_set_service_fd(criu_opts *opts, int fd);
int criu_local_set_service_binary(criu_opts *opts, const char *path);
void criu_local_set_service_comm(criu_opts *opts, enum criu_service_comm comm);

void criu_local_set_pid(criu_opts *opts, int pid);
void criu_local_set_images_dir_fd(criu_opts *opts, int fd);
int criu_local_set_parent_images(criu_opts *opts, const char *path);
void criu_local_set_work_dir_fd(criu_opts *opts, int fd);
void criu_local_set_leave_running(criu_opts *opts, bool leave_running);
void criu_local_set_ext_unix_sk(criu_opts *opts, bool ext_unix_sk);
int criu_local_add_unix_sk(criu_opts *opts, unsigned int inode);
void criu_local_set_tcp_established(criu_opts *opts, bool tcp_established);
void criu_local_set_tcp_skip_in_flight(criu_opts *opts, bool tcp_skip_in_flight);
void criu_local_set_tcp_close(criu_opts *opts, bool tcp_close);
void criu_local_set_weak_sysctls(criu_opts *opts, bool val);
void criu_local_set_evasive_devices(criu_opts *opts, bool evasive_devices);
void criu_local_set_shell_job(criu_opts *opts, bool shell_job);
void criu_local_set_skip_file_rwx_check(criu_opts *opts, bool skip_file_rwx_check);
void criu_local_set_unprivileged(criu_opts *opts, bool unprivileged);
void criu_local_set_orphan_pts_master(criu_opts *opts, bool orphan_pts_master);
void criu_local_set_file_locks(criu_opts *opts, bool file_locks);
void criu_local_set_track_mem(criu_opts *opts, bool track_mem);
void criu_local_set_auto_dedup(criu_opts *opts, bool auto_dedup);
void criu_local_set_force_irmap(criu_opts *opts, bool force_irmap);
void criu_local_set_link_remap(criu_opts *opts, bool link_remap);
void criu_local_set_log_level(criu_opts *opts, int log_level);
int criu_local_set_log_file(criu_opts *opts, const char *log_file);
void criu_local_set_cpu_cap(criu_opts *opts, unsigned int cap);
int criu_local_set_root(criu_opts *opts, const char *root);
void criu_local_set_manage_cgroups(criu_opts *opts, bool manage);
void criu_local_set_manage_cgroups_mode(criu_opts *opts, enum criu_cg_mode mode);
int criu_local_set_freeze_cgroup(criu_opts *opts, const char *name);
int criu_local_set_lsm_profile(criu_opts *opts, const char *name);
int criu_local_set_lsm_mount_context(criu_opts *opts, const char *name);
void criu_local_set_timeout(criu_opts *opts, unsigned int timeout);
void criu_local_set_auto_ext_mnt(criu_opts *opts, bool val);
void criu_local_set_ext_sharing(criu_opts *opts, bool val);
void criu_local_set_ext_masters(criu_opts *opts, bool val);
int criu_local_set_exec_cmd(criu_opts *opts, int argc, char *argv[]);
int criu_local_add_ext_mount(criu_opts *opts, const char *key, const char *val);
int criu_local_add_veth_pair(criu_opts *opts, const char *in, const char *out);
int criu_local_add_cg_root(criu_opts *opts, const char *ctrl, const char *path);
int criu_local_add_enable_fs(criu_opts *opts, const char *fs);
int criu_local_add_skip_mnt(criu_opts *opts, const char *mnt);
void criu_local_set_ghost_limit(criu_opts *opts, unsigned int limit);
int criu_local_add_irmap_path(criu_opts *opts, const char *path);
int criu_local_add_cg_props(criu_opts *opts, const char *stream);
int criu_local_add_cg_props_file(criu_opts *opts, const char *path);
int criu_local_add_cg_dump_controller(criu_opts *opts, const char *name);
int criu_local_add_cg_yard(criu_opts *opts, const char *path);
int criu_local_add_inherit_fd(criu_opts *opts, int fd, const char *key);
int criu_local_add_external(criu_opts *opts, const char *key);
int criu_local_set_page_server_address_port(criu_opts *opts, const char *address, int port);
int criu_local_set_pre_dump_mode(criu_opts *opts, enum criu_pre_dump_mode mode);
void criu_local_set_pidfd_store_sk(criu_opts *opts, int sk);
int criu_local_set_network_lock(criu_opts *opts, enum criu_network_lock_method method);
int criu_local_join_ns_add(criu_opts *opts, const char *ns, const char *ns_file, const char *extra_opt);
void criu_local_set_mntns_compat_mode(criu_opts *opts, bool val);
int criu_local_set_config_file(criu_opts *opts, const char *path);
void criu_local_set_empty_ns(criu_opts *opts, int namespaces);

void criu_local_set_notify_cb(criu_opts *opts, int (*cb)(char *action, criu_notify_arg_t na));

int criu_local_check(criu_opts *opts);
int criu_local_dump(criu_opts *opts);
int criu_local_pre_dump(criu_opts *opts);
int criu_local_restore(criu_opts *opts);
int criu_local_restore_child(criu_opts *opts);
int criu_local_dump_iters(criu_opts *opts, int (*more)(criu_predump_info pi));
int criu_local_get_version(criu_opts *opts);
int criu_local_check_version(criu_opts *opts, int minimum);
int criu_local_feature_check(criu_opts *opts, struct criu_feature_check *features, size_t size);

#ifdef __cplusplus
}
#endif

#endif
