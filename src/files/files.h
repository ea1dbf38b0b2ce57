/* Open files: a table of file descriptions (files.img, shared by id) and one
 * module per kind of fd, each holding its dump and restore side. */
#ifndef STASIS_FILES_H
#define STASIS_FILES_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <limits.h>

#include "cli/opts.h"
#include "image/kinds.h"
#include "proc/proc.h"
#include "files.pb-c.h"
#include "file-lock.pb-c.h"

/* An fd already dumped, to find fds sharing its open file description. */
struct fd_seen {
	pid_t pid;
	int fd;
	uint32_t id;
	dev_t dev;
	ino_t ino;
};

/* A pipe's or FIFO's unread bytes, saved once per pipe (pipes-data.img,
 * fifo-data.img). */
struct pipe_data {
	uint32_t pipe_id;
	uint32_t size;		/* capacity */
	uint32_t len;
	uint8_t *buf;
};

struct pipe_data_set {
	struct pipe_data *d;
	int nr;
};

struct file_table {
	FileEntry **e;
	int nr, cap;
	uint32_t next_id;
	/* extra state of the kinds that need it (tty infos) */
	TtyInfoEntry **ttys;
	int nr_ttys;
	struct tty_holder *tty_holders;	/* per tty: an fd holding it (tty.c) */
	struct fd_seen *seen;
	int nr_seen, cap_seen;
	struct pipe_data_set pipes;	/* pipe.c */
	struct dumped_lock *locks;	/* locks.c: filelocks.img entries */
	int nr_locks;
	struct reg_dump_state *reg;	/* reg.c: ghosts (deleted files) */
	struct fifo_dump_state *fifo;	/* fifo.c: unread bytes */
	struct memfd_dump_state *memfd;	/* memfd.c: inodes and contents */
	struct unix_dump *unix_sk;	/* unix.c's state of the dump */
};

/* What /proc and fstat tell about one fd of the dumped task. */
struct fd_facts {
	pid_t pid;
	int fd;
	char path[PATH_MAX];	/* readlink of /proc/PID/fd/N */
	struct stat st;
	struct proc_fdinfo fi;
};

/* Whether an fd with these (fdinfo) flags reads its file: not O_PATH,
 * not write-only. */
static inline bool fd_reads(uint32_t flags)
{
	return !(flags & O_PATH) && (flags & O_ACCMODE) != O_WRONLY;
}

/* Restore-side context each kind's open() gets. */
struct rst_files {
	const struct opts *o;
	FileEntry **e;		/* loaded files.img */
	int nr;
	TtyInfoEntry **ttys;
	int nr_ttys;
	int shell_tty_fd;	/* restorer's terminal for --shell-job, or -1 */
	struct pipe_data_set pipes;	/* pipes-data.img */
	/* pipes made so far: both ends, for the entries of the other end */
	struct made_pipe { uint32_t pipe_id; int fd[2]; } *made;
	int nr_made;
	FileLockEntry **locks;	/* locks.c: filelocks.img */
	int nr_locks;
	struct made_pty *ptys;	/* pty pairs made so far (tty.c) */
	int nr_ptys;
	struct tty_queued *tty_queued;	/* tty-data.img (tty.c) */
	int nr_tty_queued;
	/* during files_after_install: the fds of the process (its fdinfo) */
	FdinfoEntry *const *task_fdi;
	int task_nr_fdi;
	char who[64];			/* "fd N of pid P" being opened, for messages */
	int keep_base;			/* fds from here up are clear of the pool and
					 * service fds: for the fds kinds keep open */
	struct reg_rst_state *reg;	/* reg.c: ghosts to recreate */
	struct fifo_rst_state *fifo;	/* fifo.c: bytes, fifos opened */
	struct memfd_rst_state *memfd;	/* memfd.c: inodes, memfds made */
	struct unix_rst *unix_sk;	/* unix.c's sockets made so far, queues */
};

/* An fd a kind keeps for later opens (a recreated ghost, a FIFO, a made
 * memfd), moved where the fds of the image and of the restore can't land
 * on it; -1 (reported) on failure, fd closed either way. */
int files_keep_fd(const struct rst_files *rf, int fd, const char *what);

/* One kind of fd. Only owns, dump and open are required. Entries of
 * files.img are built from separately malloc'ed parts, so one
 * protobuf_c_message_free_unpacked() frees any kind's entry. */
struct fd_kind {
	const char *name;
	FdTypes type;
	bool (*owns)(const struct fd_facts *f);
	/* Fills fe (type/id already set) for the fd; returns 0 or -1 (reported). */
	int (*dump)(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe);
	/* Opens the file for restore; returns the new fd or -1 (reported).
	 * Runs in the highest restored process that needs the file, before
	 * it forks (see restore/tree.c, the file pool). */
	int (*open)(struct rst_files *rf, const FileEntry *fe, int fdflags);

	/* Optional. Images of the kind besides files.img (written before it,
	 * once every task is dumped, and may still add entries to it; loaded
	 * before any open), and freeing their state. */
	int (*write_images)(struct file_table *t, int dirfd);
	void (*free_images)(struct file_table *t);
	int (*load_images)(struct rst_files *rf, int dirfd);
	void (*unload_images)(struct rst_files *rf);
	/* Optional. In each restored process, once all its fds are in place
	 * (numbers as in the image): state that needs the other fds or the
	 * process itself (epoll sets, POSIX locks, controlling terminal).
	 * fd is the fd number in this process. */
	int (*after_install)(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid);
	/* Optional. The name --inherit-fd fd[N]:NAME uses for this file
	 * (pipe:[INODE], a path, ...); returns false if it has none. */
	bool (*inherit_name)(const FileEntry *fe, char *buf, size_t len);
};

extern const struct fd_kind fd_kind_reg, fd_kind_tty, fd_kind_pipe;
extern const struct fd_kind fd_kind_eventfd, fd_kind_signalfd, fd_kind_timerfd, fd_kind_inotify, fd_kind_epoll;
extern const struct fd_kind fd_kind_fifo, fd_kind_memfd;
extern const struct fd_kind fd_kind_unix;

/* pipe.c: unread bytes of pipes and FIFOs, one format, two images.
 * save: copies them (tee: the task keeps them) once per pipe_id;
 * put_back: capacity and bytes into a new pipe's write end. */
int pipe_data_save(struct pipe_data_set *s, const struct fd_facts *f, const char *what);
int pipe_data_write(const struct pipe_data_set *s, int dirfd, enum img_kind kind);
int pipe_data_load(struct pipe_data_set *s, int dirfd, enum img_kind kind);
const struct pipe_data *pipe_data_find(const struct pipe_data_set *s, uint32_t pipe_id);
int pipe_data_put_back(int fd, const struct pipe_data *d, const char *what);
void pipe_data_free(struct pipe_data_set *s);

/* Table side. */
FileEntry *files_new_entry(struct file_table *t, FdTypes type);
int files_write(struct file_table *t, int dirfd);
void files_free(struct file_table *t);

/* Adds a regular file by path (used for exe, cwd, root, mapped files). */
int reg_file_add(struct file_table *t, const char *path, uint32_t flags, uint64_t pos, uint32_t *id);
int reg_file_open(const RegFileEntry *r, uint32_t flags_override);
/* A deleted file (path ends in " (deleted)") mapped or executed, saved with
 * its bytes; src is a /proc link that opens it. */
int reg_ghost_add(struct file_table *t, const struct opts *o, const char *path, const char *src,
		  uint32_t flags, uint32_t *id);
/* reg_file_open, recreating the file first if it was saved deleted. */
int reg_file_reopen(struct rst_files *rf, const RegFileEntry *r, uint32_t flags);
/* Restore: file id is mapped; if it is made rather than reopened (a ghost,
 * a memfd), make it now so that the processes forked next share it. */
int reg_prepare_mapped(struct rst_files *rf, uint32_t id);
/* Restore: opens memfd file entry fe (made once) with flags, for a mapping. */
int memfd_open_mapped(struct rst_files *rf, const FileEntry *fe, uint32_t flags);
/* Dump: a memfd mapped at src (/proc/PID/map_files/...); its file id. */
int memfd_map_add(struct file_table *t, const char *path, const char *src, uint32_t flags, uint32_t *id);

/* Dump every fd of the task but skip_fd (stasis's own memory tracker, or
 * -1): files.img entries + fdinfo-ID.img. */
int files_dump_fds(struct file_table *t, const struct opts *o, pid_t pid, int dirfd, uint32_t files_id,
		   int skip_fd);

/* Restore: load files.img and tty-info.img, find an entry by id. */
int files_load(struct rst_files *rf, int dirfd);
const FileEntry *files_find(const struct rst_files *rf, uint32_t id);
int files_index(const struct rst_files *rf, uint32_t id);	/* -1 if absent */
const struct fd_kind *fd_kind_of(FdTypes type);
void files_unload(struct rst_files *rf);
/* In a restored process whose fds are all in place: each kind's
 * after_install for each of them. */
int files_after_install(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid);
/* In a restored process after its session and group are set and its
 * files opened, before it forks: the controlling terminal of a session
 * leader and the foreground group of a pty of the tree (tty.c). */
int tty_restore_ctty(struct rst_files *rf, pid_t pid, pid_t sid, pid_t pgid);
/* During after_install: is fd one of the process's own (in its image)?
 * Other fds may still be open then (not closed yet). */
bool files_task_has_fd(const struct rst_files *rf, int fd);
/* --inherit-fd: the name of a file for fd[N]:NAME, false if it has none. */
bool files_inherit_name(const FileEntry *fe, char *buf, size_t len);

#endif
