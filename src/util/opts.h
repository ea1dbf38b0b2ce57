/* What a dump or restore is asked to do: the interface of stasis_dump and
 * stasis_restore, filled by the command line (cli/main.c) or an RPC
 * request (rpc/rpc.c), and read by the modules below them. */
#ifndef STASIS_OPTS_H
#define STASIS_OPTS_H

#include <stdbool.h>
#include <sys/types.h>

/* CRIU's --manage-cgroups modes (what restore does with a cgroup that
 * exists or not): ignore (nothing), none (all must exist; no property
 * written), props (all must exist; their properties written), soft
 * (missing ones made with their properties; existing ones left as they
 * are), full (properties written to existing ones too), strict (all must
 * be missing). DEFAULT is soft, CRIU's default with or without the option. */
enum cg_mode { CG_MODE_DEFAULT, CG_MODE_IGNORE, CG_MODE_NONE, CG_MODE_PROPS, CG_MODE_SOFT,
	       CG_MODE_FULL, CG_MODE_STRICT };

struct opts {
	const char *images_dir;	/* -D */
	const char *work_dir;	/* -W */
	/* The same two as open directories (RPC: the client's own fds), used
	 * instead of the paths when >= 0; the paths then only name them. */
	int images_dirfd;
	int work_dirfd;
	const char *log_file;	/* -o */
	int log_level;		/* -v */
	unsigned timeout;	/* --timeout: seconds a seize waits for a stop, 0: 10 */
	bool display_stats;	/* --display-stats: print stats-dump/-restore on stdout */
	pid_t pid;		/* -t */
	bool leave_running;
	bool live_snapshot;	/* --live-snapshot: frozen only to protect memory (dump/live.c) */
	bool shell_job;
	bool detach;		/* restore -d */
	const char *pidfile;
	bool new_pidns;		/* restore into a fresh pid namespace */
	/* --inherit-fd fd[N]:RESOURCE: our fd N stands for RESOURCE */
	struct inherit_fd { int fd; const char *res; } *inherit;
	int nr_inherit;
	/* --external RES (repeatable): resources the tree uses from outside,
	 * e.g. file[MNT_ID:INODE]; kept as given */
	const char **external;
	int nr_external;
	/* --ext-unix-sk[=INO]: unix sockets with a peer outside the tree are
	 * allowed (all of them, or the listed socket inodes) */
	bool ext_unix_sk;
	unsigned long *ext_unix_sk_ino;
	int nr_ext_unix_sk_ino;
	bool file_locks;	/* --file-locks: dump and restore file locks */
	bool pre_dump;		/* pre-dump: memory only, the tree runs on */
	bool track_mem;		/* --track-mem: leave a tracker for the next dump */
	const char *prev_images_dir;	/* --prev-images-dir: the parent dump */

	const char *address;	/* service --address SOCK */
	int socket_mode;	/* service --socket-mode MODE (octal), -1: 0600 */
	/* service --allow-users USER[,USER...] (repeatable): the non-root
	 * users it serves; none: root only */
	const char **allow_users;
	int nr_allow_users;
	/* --action-script PATH (repeatable): run at each stage */
	const char **action_scripts;
	int nr_action_scripts;

	/* Set by the RPC service, not the command line. */
	pid_t *restored_pid;	/* restore: where to put the root's pid */
	unsigned long service_sk_ino;	/* the service's end of the client's socket */
	/* Each stage is also told to the RPC client, which may veto it (-1). */
	int (*notify)(void *ctx, const char *stage, pid_t pid);
	void *notify_ctx;
	bool restore_sibling;	/* swrk: the restored root is the client's child */
	/* Dump: called on the seized tree (every thread of every process,
	 * stopped) before anything of it is read; -1 refuses the dump. The
	 * RPC service checks there that the client may dump what was seized. */
	int (*check_seized)(void *ctx, const pid_t *tids, int nr);
	void *check_ctx;
	/* A non-root client: dump and restore must not give more than it has. */
	bool unprivileged;
	pid_t client_pid;
	int client_pidfd;	/* the same process, pinned: what is read of it by
				 * pid holds only while it is still alive; -1 */
	uid_t client_uid;
	gid_t client_gid;
	gid_t *client_groups;
	int nr_client_groups;
	unsigned long long ghost_limit;	/* --ghost-limit: largest deleted file saved */
	/* --force-irmap: a watched inode without a path from its handle is
	 * looked for in the directories below (files/irmap.c); else it is
	 * saved without one. --irmap-scan-path: directories scanned first. */
	bool force_irmap;
	const char **irmap_scan_paths;
	int nr_irmap_scan_paths;
	/* --no-ghost-fiemap: a deleted file's data found by SEEK_DATA and
	 * SEEK_HOLE rather than by its extents (FS_IOC_FIEMAP, the default) */
	bool no_ghost_fiemap;
	/* --link-remap: a deleted file that still has another name is saved
	 * as a new hard link next to it (CRIU's linked remap), not a copy */
	bool link_remap;

	/* cgroups (task/cgroup.c), as CRIU: --manage-cgroups[=MODE] (the
	 * mode; CG_MODE_DEFAULT, soft, also without the option),
	 * --cgroup-root [CONTROLLER:]/PATH (repeatable; no controller: every
	 * one), --cgroup-props STRING, --cgroup-props-file FILE (the
	 * properties saved, task/cgroup_props.c), --cgroup-dump-controller
	 * NAME (repeatable: only these are saved), --cgroup-yard DIR (the
	 * hierarchies are mounted there by the caller, not by stasis) */
	enum cg_mode cg_mode;
	struct cg_root { const char *ctl; const char *path; } *cg_roots;
	int nr_cg_roots;
	const char *cgroup_props;
	const char *cgroup_props_file;
	const char **cgroup_dump_ctls;
	int nr_cgroup_dump_ctls;
	const char *cgroup_yard;
	/* --network-lock: enum netlock_method (net/netlock.h); 0 is CRIU's
	 * default, iptables. A restore takes the dump's, from the inventory. */
	int network_lock;
	/* --join-ns net:PATH|PID (restore, command line): the network
	 * namespace the tree is restored into */
	const char *join_net;
	/* --veth-pair IN=OUT[@BRIDGE] (repeatable; RPC veths, --external
	 * veth[IN]:OUT[@BRIDGE] too): the outer end of the restored
	 * namespace's veth IN, made in ours and put in BRIDGE; kept as given */
	const char **veth_pairs;
	int nr_veth_pairs;
	/* --empty-ns net (RPC empty_ns CLONE_NEWNET): the tree's network
	 * namespace is neither saved nor filled but made empty, for the
	 * setup-namespaces script to fill */
	bool empty_net;
	/* --tcp-established: connected TCP sockets are saved and made again
	 * through TCP repair (files/tcp*.c); --tcp-close: restored closed
	 * (dump: saved without their connection); --skip-in-flight: a
	 * listener's connections not yet accepted are left out */
	bool tcp_established;
	bool tcp_close;
	bool skip_in_flight;
	/* A mount namespace of the tree's own (ns/mnt*.c): --root DIR
	 * (restore: the tree's new root), --skip-mnt MOUNTPOINT (dump: the
	 * mount and those below it are left out), --enable-fs NAME[,NAME]
	 * (dump: mounts of these kinds, "all": of any kind, are made anew by
	 * name at restore); external mounts are --external mnt[A]:B. */
	const char *root;
	const char **skip_mnt;
	int nr_skip_mnt;
	const char **enable_fs;
	int nr_enable_fs;
	/* --freeze-cgroup PATH: the tree frozen with this cgroup's freezer
	 * while it is seized (task/freezer.h) */
	const char *freeze_cgroup;
	/* RPC orphan_pts_master (container runtimes): dump takes a pty slave
	 * whose master is outside the tree (a container's console); restore
	 * makes it a new pair and hands the master to the client through
	 * notify_fd, stage "orphan-pts-master" (files/tty_restore.c) */
	bool orphan_pts_master;
	int (*notify_fd)(void *ctx, const char *stage, int fd);
	/* --lazy-pages (restore): private anonymous memory is filled on
	 * first touch by a lazy-pages daemon (restore/lazy.c, lazy/) */
	bool lazy_pages;

	/* Page server (pagexfer/): dump --page-server sends the pages to
	 * the server at address:port (address is --address, as in CRIU),
	 * or over the connected socket ps_socket (--ps-socket, -1: none);
	 * `stasis page-server` serves on address:port. status_fd
	 * (--status-fd, -1: none) gets a byte once the server, or the
	 * lazy-pages daemon, listens. */
	bool page_server;
	unsigned port;
	int ps_socket;
	int status_fd;
	/* --skip-checksums: restore images whose checksums (image/checksum.h)
	 * do not match, or whose list is damaged, without checking them */
	bool skip_checksums;
	/* --file-validation filesize: a regular file reopened by restore is
	 * checked by its size only, and dump saves no build-ids (buildid, the
	 * default as in CRIU: both, files/buildid.h) */
	bool validate_size_only;
	/* --auto-dedup (image/dedup.h): a dump, or the page server, punches
	 * the pages it saves out of the parent dump's pages file */
	bool auto_dedup;
	/* --tls (pagexfer/ps_tls.h): the page server's connection over TLS,
	 * with these files (NULL: CRIU's defaults under /etc/pki), and the
	 * peer's name not checked with tls_no_cn_verify */
	bool tls, tls_no_cn_verify;
	const char *tls_cacert, *tls_cacrl, *tls_cert, *tls_key;
};

#endif
