/* The kinds' side of the file table: what one kind of file implements (its
 * row in files.c's table) and the helpers the kinds share. Only the
 * modules of src/files include this; dump and restore use files.h. */
#ifndef STASIS_FILES_KIND_H
#define STASIS_FILES_KIND_H

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "files/files.h"
#include "proc/proc.h"
#include "proc/task_fds.h"

/* What /proc and the file itself tell about one fd of the dumped task,
 * each read once. */
struct inj;

struct fd_facts {
	pid_t pid;
	int fd;
	pid_t via;		/* a file in flight (pid, fd: ours): the process
				 * holding the socket whose queue carries it */
	const struct task_fds *tf;	/* pid's fds: files_take takes fd from it */
	char path[PATH_MAX];	/* readlink of /proc/PID/fd/N */
	char proto[32];		/* a socket's protocol as it names itself ("TCP",
				 * "UNIX-STREAM", ...); "" for any other file */
	int sk;			/* a socket: our own fd on it, for its kind to ask
				 * (closed after the fd is dumped); else -1 */
	struct stat st;
	struct proc_fdinfo fi;
};

/* Whether an fd with these (fdinfo) flags reads its file: not O_PATH,
 * not write-only. */
static inline bool fd_reads(uint32_t flags)
{
	return !(flags & O_PATH) && (flags & O_ACCMODE) != O_WRONLY;
}

/* One kind of file: a row of files.c's table. Every hook is optional.
 *
 * A kind of fd has a type and owns, dump and open. A row without a type
 * (FD_TYPES__UND) is no kind of fd but state riding on the fds of the
 * others (ghosts of deleted files, file locks): it has only the hooks of
 * the whole tree and of a whole process.
 *
 * Its own state lives behind the table, not in files.h: dump_state and
 * rst_state bytes, zeroed, made before any hook runs and freed after
 * free_images / unload_images (files_dump_state, files_rst_state).
 * Entries of files.img are built from separately malloc'ed parts, so one
 * protobuf_c_message_free_unpacked() frees any kind's entry. */
struct fd_kind {
	const char *name;
	FdTypes type;
	size_t dump_state, rst_state;

	/* One fd. owns: is the fd of this kind (asked in table order)?
	 * dump fills fe (type/id already set): 0 or -1 (reported). open
	 * makes the open file description for restore: the new fd or -1
	 * (reported); the root of the tree opens every file of the tree
	 * this way before it forks (restore/tree.c, the file pool). */
	bool (*owns)(const struct fd_facts *f);
	int (*dump)(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe);
	int (*open)(struct rst_files *rf, const FileEntry *fe, int fdflags);
	/* In each restored process, once all its fds are in place (numbers
	 * as in the image): state that needs the other fds of the process
	 * (epoll targets). fd is its number here; for a file in flight (in
	 * the process holding the socket that carries it), its pool fd. */
	int (*after_install)(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid);
	/* Once the dump's network lock is lifted, before the tree runs: what
	 * speaks to the network (a TCP connection leaves repair mode, which
	 * sends a probe the lock would drop). Once per file, though many fds
	 * share it; fd is stasis's own on it, where names the fd ("pid P:
	 * fd N"). A file in flight gets it after its after_install. */
	int (*after_unlock)(struct rst_files *rf, const FileEntry *fe, int fd, const char *where);
	/* Restore, the pool's plan (files_own_open, files_ties): own_open,
	 * whether a file of the kind used by one process alone may be
	 * opened by that process, after its children are forked (rather
	 * than in the pool); ties, the files of the kind made together. */
	bool (*own_open)(const struct rst_files *rf, const FileEntry *fe);
	void (*ties)(const struct rst_files *rf, files_tie_fn tie, void *arg);
	/* The name --inherit-fd fd[N]:NAME uses for this file (pipe:[INODE],
	 * a path, ...); false if it has none. */
	bool (*inherit_name)(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len);

	/* A file used by path (files_dump_path; owns_path is asked in table
	 * order): its entry and id. open_path opens it anew with flags (a
	 * mapping, the executable); make_path makes it now if it is made
	 * rather than reopened (a ghost, a memfd), so that the processes
	 * forked next share it. */
	bool (*owns_path)(const struct path_facts *p);
	int (*dump_path)(struct file_table *t, const struct opts *o, const struct path_facts *p, uint32_t *id);
	int (*open_path)(struct rst_files *rf, const FileEntry *fe, uint32_t flags);
	int (*make_path)(struct rst_files *rf, const FileEntry *fe);

	/* The whole seized tree, before any fd of it is dumped (pids: its
	 * live processes): state that must be caught for all at once (TCP
	 * connections, silenced together). */
	int (*dump_prepare)(struct file_table *t, const struct opts *o, const pid_t *pids, int nr);
	/* A whole process. dump_task: once its fds are dumped. before_fork:
	 * in the restored process, its session and group set and its files
	 * opened. after_install_task: after the after_install of each of
	 * its fds. after_service_close: by its ptracer, once stasis's fds
	 * in it are closed (state a close() would drop), with calls injected
	 * into the process through ij; the process's fds are rf's task_fdi. */
	int (*dump_task)(struct file_table *t, const struct opts *o, pid_t pid, pid_t ns_pid);
	int (*before_fork)(struct rst_files *rf, pid_t pid, pid_t sid, pid_t pgid);
	int (*after_install_task)(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid);
	int (*after_service_close)(struct rst_files *rf, struct inj *ij);
	/* before_creds: by its ptracer too, once every process of the tree
	 * exists and before the process's credentials are restored (state
	 * the kernel records with the caller's ids: an fd's owner). */
	int (*before_creds)(struct rst_files *rf, struct inj *ij);
	/* before_resume: by stasis, the whole tree rebuilt and the pre-resume
	 * scripts run, just before the tree is let go: what should start as
	 * late as can be (timers), on fds the kind took for it. */
	int (*before_resume)(struct rst_files *rf);

	/* The whole tree: images of the kind besides files.img, written
	 * before it once every task is dumped (and may still add entries to
	 * it), loaded before any open; freeing what the state holds. */
	int (*write_images)(struct file_table *t, int dirfd);
	void (*free_images)(struct file_table *t);
	int (*load_images)(struct rst_files *rf, int dirfd);
	void (*unload_images)(struct rst_files *rf);
	/* What a kind made outside the images for them: undone when the dump
	 * fails (dump_failed), put away once a restore of them succeeded
	 * (restored); a failed restore leaves it for the next try. */
	void (*dump_failed)(struct file_table *t);
	void (*restored)(struct rst_files *rf);
};

/* own_open for a kind whose files are each made on their own (an
 * eventfd) or tied to others only through ties (a pipe's ends). */
bool kind_own_open_any(const struct rst_files *rf, const FileEntry *fe);

/* The state of kind k (see struct fd_kind); NULL for a kind without. */
void *files_dump_state(const struct file_table *t, const struct fd_kind *k);
void *files_rst_state(const struct rst_files *rf, const struct fd_kind *k);

/* What a file of mode m is, for messages: "regular file", "FIFO", ... */
const char *files_mode_name(mode_t m);

/* The census of pid (files_census), NULL if none was taken; its
 * sockets, by index (the fd; *ino its inode then); the inode the census
 * saw for fd if it is a socket (else 0), fds asked in increasing order
 * from *from (0 at first). */
struct files_census;
const struct files_census *files_census_of(const struct file_table *t, pid_t pid);
int files_census_nr(const struct files_census *c);
int files_census_fd(const struct files_census *c, int i, uint64_t *ino);
uint64_t files_census_sock(const struct files_census *c, int fd, int *from);
void files_census_free(struct file_table *t);

/* Out of memory while recording fd f: reported with f named; -1. */
int files_oom(const struct fd_facts *f);

/* A new files.img entry (id set); NULL (reported) if out of memory. */
FileEntry *files_new_entry(struct file_table *t, FdTypes type);
/* A second entry with the id of another (CRIU's reg entry of a tun
 * file), added once every fd is dumped (write_images); NULL (reported)
 * if out of memory. files_find gives the other. */
FileEntry *files_add_twin(struct file_table *t, FdTypes type, uint32_t id);
/* The id of the file fd of pid was dumped as; 0 if it wasn't. */
uint32_t files_id_of_fd(const struct file_table *t, pid_t pid, int fd);

/* Our own fd on the open file description of fd of pid (pidfd_getfd),
 * to inspect it; -1 (reported, what naming it) if it can't be taken. */
int files_take_fd(pid_t pid, int fd, const char *what);
/* The same for the fd f tells of, through its task's pidfd. */
int files_take(const struct fd_facts *f);

/* A new open file description, with flags (O_CREAT & co. left out) and
 * at pos, of the file a kind made once and keeps open on kept (a ghost, a
 * memfd), reopened through /proc/self/fd. what names the file in errors,
 * rf->who its user. The new fd or -1 (reported). */
int files_reopen_kept(const struct rst_files *rf, int kept, uint32_t flags, uint64_t pos, const char *what);
/* During after_install, for a file in flight (id) in the queue of a
 * socket of this process: its kind's after_install, on its pool fd. */
int files_after_install_in_flight(struct rst_files *rf, uint32_t id, pid_t pid);
/* During after_install: is fd one of the process's own (in its image)?
 * Other fds may still be open then (not closed yet). */
bool files_task_has_fd(const struct rst_files *rf, int fd);

#endif
