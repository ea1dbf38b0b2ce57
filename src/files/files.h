/* Open files of the dumped or restored tree: the table of open file
 * descriptions (files.img, shared by id) and, behind it, one module per
 * kind of file, each with its own state and images (files/kind.h). Dump
 * and restore reach the kinds only through the functions here. */
#ifndef STASIS_FILES_H
#define STASIS_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/opts.h"
#include "files/desc_index.h"
#include "net/netlock.h"
#include "files.pb-c.h"

/* Slots for the kinds' own state: at least the rows of files.c's table. */
#define FILES_MAX_KINDS 32

/* Dump: the entries of files.img, shared by the whole tree. */
struct file_table {
	FileEntry **e;
	int nr, cap;
	uint32_t next_id;
	struct fd_seen *seen;	/* the fds dumped so far (files.c) */
	int nr_seen, cap_seen;
	int *seen_by_fd;		/* their hash chains' heads (cap_seen * 2) */
	struct desc_index descs;	/* their open file descriptions */
	void *kind[FILES_MAX_KINDS];	/* each kind's own state */
	uint64_t memfd_pages;		/* memfd contents written, in pages (stats) */
	struct netlock *netlock;	/* the dump's: TCP connections are locked as dumped */
	struct files_census *census;	/* each task's (census.c) */
	int nr_census;
	int *lock_fds;			/* the fds of the task dumped last whose fdinfo
					 * shows locks (or is too long to tell) */
	int nr_lock_fds, cap_lock_fds;
	bool mnt_ids;			/* files name their mount (mnt_id): the tree's
					 * mount namespaces are saved, and as CRIU's
					 * restore opens each file in its mount's one */
};

/* Restore: files.img loaded, shared by the tree (each restored process
 * has its own copy from its fork on). */
struct rst_files {
	const struct opts *o;
	pid_t root_pid;		/* the tree's root, as the images number it */
	pid_t real_root_pid;	/* and as the kernel does, once restored */
	FileEntry **e;
	int nr;
	int *by_id;		/* indexes of e sorted by id (files_index) */
	char who[64];		/* whose file is being opened ("fd N of pid P",
				 * "mapping A of pid P"), for messages */
	int pool_base;		/* the pool: file i of files.img at pool_base +
				 * slot[i] (restore/tree.c), while the tree is made */
	int *slot;		/* -1: file i is opened by the one process using
				 * it, not in the pool (restore/pool_plan.c) */
	int nr_pool;		/* the slots taken */
	int keep_base;		/* fds from here up are clear of the pool and
				 * service fds: for the fds kinds keep open */
	/* during files_after_install: the fds of the process (its fdinfo) */
	FdinfoEntry *const *task_fdi;
	int task_nr_fdi;
	struct files_task *tasks;	/* files_note_task, in pstree.img order */
	int nr_tasks;
	void *kind[FILES_MAX_KINDS];	/* each kind's own state */
	struct netlock *netlock;	/* the dump's lock: the TCP connections in it */
	bool *unlocked;			/* files_after_unlock: file i's hook ran */
	/* A file of a mount of another mount namespace of the tree than the
	 * opening process's is opened from that namespace's root, as CRIU
	 * does: mnt_root gives its fd, or -1 (the process's own, unknown). */
	int (*mnt_root)(const void *ctx, int mnt_id);
	const void *mnt_ctx;
};

/* ---- dump ---- */

/* Before any other call: makes each kind's state. 0 or -1 (reported). */
int files_dump_begin(struct file_table *t);

/* Once the tree is seized, before files_dump_prepare: the census of
 * pid's fds, one walk of /proc/PID/fd (census.c). Its sockets are noted
 * for the dump; fn, if given, sees the link of every other fd (dirfd:
 * /proc/PID/fd, name: the fd's entry in it) and may stop the walk with
 * -1. 0 or -1 (reported). */
typedef int (*files_link_fn)(void *arg, int dirfd, const char *name, int fd, const char *link);
int files_census(struct file_table *t, pid_t pid, files_link_fn fn, void *arg);

/* Once the tree is seized, before files_dump_fds: what the kinds must
 * catch in every process at once (pids: the live processes). */
int files_dump_prepare(struct file_table *t, const struct opts *o, const pid_t *pids, int nr);

/* Every fd of the task but skip_fd (stasis's own memory tracker, or -1):
 * files.img entries + fdinfo-ID.img (not if shared: the fd table is that
 * of a process dumped before, CLONE_FILES); then what the kinds take from
 * the whole process (its file locks). ns_pid: its pid as the tree sees it. */
int files_dump_fds(struct file_table *t, const struct opts *o, pid_t pid, pid_t ns_pid, int dirfd,
		   uint32_t files_id, bool shared, int skip_fd);

/* Restore: the pids of dead processes whose /proc entries files of the
 * tree are (remap-fpath.img): each must be held by a process of that pid
 * while the files are opened. Their number; *pids is the files'. */
int files_dead_pids(const struct rst_files *rf, const pid_t **pids);

/* The namespaces of process pid, in the order of ids-PID.img's fields
 * (pid, net, ipc, uts, mnt, user, cgroup, time), numbered as CRIU does:
 * one id per namespace of the tree, unique across kinds; 0 for a kind
 * the kernel lacks. fds on namespaces name them by these ids (nsfile.c).
 * 0 or -1 (reported). */
#define FILES_NR_NS 8
#define FILES_NS_MNT 4	/* the mount namespace's place in them */
int files_task_ns_ids(struct file_table *t, pid_t pid, uint32_t ids[FILES_NR_NS]);
/* The same numbering for stasis's own namespaces (the inventory's root_ids
 * of a tree with namespaces of its own, see ns/ns.h). */
int files_own_ns_ids(struct file_table *t, uint32_t ids[FILES_NR_NS]);

/* A file a process uses by path, not through an fd: a mapping's file,
 * its executable, its working or root directory. */
struct path_facts {
	pid_t pid;
	const char *path;	/* as /proc shows it: " (deleted)" at the end if it is */
	const char *link;	/* a /proc link that opens it (map_files/A-B, exe, cwd) */
	uint32_t flags;		/* how restore opens it: O_RDONLY, O_RDWR, O_DIRECTORY */
	bool mapped;		/* a mapping's file */
};
/* An object of shared anonymous memory open as a file ("/dev/zero
 * (deleted)" on the kernel's shmem mount): saved as a memfd. */
bool files_is_anon_shmem(const char *path, const struct stat *st);
/* Its files.img entry (one per file and flags), made by the kind that
 * owns it; 0 or -1 (reported). */
int files_dump_path(struct file_table *t, const struct opts *o, const struct path_facts *p, uint32_t *id);
/* The type of entry id (FD_TYPES__UND if there is none). */
FdTypes files_type(const struct file_table *t, uint32_t id);

/* A file in flight (an fd passed with SCM_RIGHTS, waiting in the queue
 * of a socket of process via; where names that socket): fd is our own on it (taken over: kept
 * open until files_free, so the fds dumped later are compared with it).
 * It is dumped like a task's fd, or shares the id of one with the same
 * open file description. 0 (id set) or -1 (reported). */
int files_dump_in_flight(struct file_table *t, const struct opts *o, int fd, pid_t via, const char *where,
			 uint32_t *id);

/* Fd of task pid, dumped ahead of the task's other fds because a
 * mapping names it (a packet socket's rings): its id, which the fd keeps
 * when files_dump_fds comes to it. 0 or -1 (reported). */
int files_dump_task_fd(struct file_table *t, const struct opts *o, pid_t pid, int fd, uint32_t *id);
/* Once every task is dumped: the kinds' images, then files.img. */
int files_write(struct file_table *t, int dirfd);
/* The dump failed: the kinds undo what they made outside the images. */
void files_dump_failed(struct file_table *t);
/* Whether half-closed TCP connections can be dumped and restored here
 * (check --feature tcp_half_closed). */
bool files_tcp_half_closed(void);
void files_free(struct file_table *t);

/* ---- restore ---- */

/* files.img and every kind's images (rf->o set); files_unload frees what
 * it made, even after a failure. */
int files_load(struct rst_files *rf, int dirfd);
void files_unload(struct rst_files *rf);
/* The restore succeeded: the kinds put away what the images needed
 * outside them (link remaps). */
void files_restored(struct rst_files *rf);
const FileEntry *files_find(const struct rst_files *rf, uint32_t id);
/* After files_load, each process's fds in pstree.img order (the order of
 * the dump), so that a kind can tell which process holding a file comes
 * first (the one whose fd numbers its entry speaks of: epoll targets). */
struct files_task {
	pid_t pid;
	FdinfoEntry *const *fdi;
	int nr;
};
int files_note_task(struct rst_files *rf, pid_t pid, FdinfoEntry *const *fdi, int nr);
/* Whether a process before pid in that order holds file id and has an fd
 * numbered fd (any fd if fd < 0). */
bool files_earlier_holder_has(const struct rst_files *rf, uint32_t id, pid_t pid, int fd);
int files_index(const struct rst_files *rf, uint32_t id);	/* -1 if absent */

/* The open file description of fe, made anew (rf->who names its user);
 * the new fd or -1 (reported). */
int files_open(struct rst_files *rf, const FileEntry *fe, int fdflags);
/* File id, in flight in a socket's queue (where names it), in the pool:
 * opened there now if no fd of a process opened it yet. The pool's fd
 * (not to be closed) or -1 (reported). */
int files_pool_fd(struct rst_files *rf, uint32_t id, const char *where);
/* The pool's fd of file idx (-1 if it has no slot: see slot). */
int files_pool_at(const struct rst_files *rf, int idx);
/* For the pool's plan (restore/pool_plan.c): whether the process using
 * file idx alone may open it itself (its kind says how); and the files
 * the kinds make together (a pair's sockets, a pipe's ends), each tie a
 * pair of indexes, b -1 for a file that must be in the pool (in flight:
 * a queue names it, and whoever fills the queue opens it there). Ties
 * at_once are made at once, whichever of them is opened first, and kept
 * (above the pool: files_keep_fd) until each is opened; the others only
 * go to the same process (a datagram socket and the one it sends to). */
bool files_own_open(const struct rst_files *rf, int idx);
typedef void (*files_tie_fn)(void *arg, int a, int b, bool at_once);
void files_ties(const struct rst_files *rf, files_tie_fn tie, void *arg);
/* --inherit-fd: the name of a file for fd[N]:NAME, false if it has none. */
bool files_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len);

/* File id, used by path (a mapping's, the executable), opened anew with
 * flags: the fd or -1 (reported). */
int files_open_path(struct rst_files *rf, uint32_t id, uint32_t flags);
/* File id is mapped: if it is made rather than reopened (a ghost, a
 * memfd), make it now so that the processes forked next share it. */
int files_make_path(struct rst_files *rf, uint32_t id);

/* In a restored process, its session and group set and its files open,
 * before it forks: the controlling terminal of a session leader and the
 * foreground group of a terminal of the tree. */
int files_before_fork(struct rst_files *rf, pid_t pid, pid_t sid, pid_t pgid);
/* In a restored process whose fds are all in place: what each needs of
 * the others (epoll targets), then the process's flock and OFD locks. */
int files_after_install(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid);
/* Once the dump's network lock is lifted, the tree rebuilt and still
 * stopped: each kind's after_unlock on the files of the process pid (the
 * pid here; fdi: its fds), each file once over all calls. 0 or -1 (reported). */
int files_after_unlock(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid);
/* The tree rebuilt, its scripts run, just before it is let go: what each
 * kind starts last (timerfds). 0 or -1 (reported). */
int files_before_resume(struct rst_files *rf);
struct inj;
/* By the ptracer of a restored process (ij: its injection context), once
 * the service fds in it are closed: its POSIX locks (any close() of an fd
 * on a locked file would drop them). fdi: the process's fds. */
int files_after_service_close(struct rst_files *rf, struct inj *ij, FdinfoEntry *const *fdi, int nr);

/* By the ptracer of a restored process, once every process of the tree
 * exists and before its credentials are restored: the owners of its fds
 * (F_SETOWN_EX records the caller's uids). fdi: the process's fds. */
int files_before_creds(struct rst_files *rf, struct inj *ij, FdinfoEntry *const *fdi, int nr);

/* An fd kept open through the forks for later use (a kind's keeper, a
 * pages image), moved where the fds of the image and of the restore
 * can't land on it; -1 (reported) on failure, fd closed either way. */
int files_keep_fd(const struct rst_files *rf, int fd, const char *what);
/* files/tty_restore.c: pty INDEX of the devpts instance whose root is
 * devpts made now, before the mounts, in the process that will open the
 * tree's files: a bind mount of its slave (a container's /dev/console)
 * needs it. The pair restored at that index takes it (with
 * orphan_pts_master, its master then goes to the RPC client). 0, or -1
 * (reported). */
int tty_premake_pty(int devpts, uint32_t index);

#endif
