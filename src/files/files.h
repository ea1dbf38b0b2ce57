/* Open files: a table of file descriptions (files.img, shared by id) and one
 * module per kind of fd, each holding its dump and restore side. */
#ifndef STASIS_FILES_H
#define STASIS_FILES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <limits.h>

#include "cli/opts.h"
#include "proc/proc.h"
#include "files.pb-c.h"

/* An fd already dumped, to find fds sharing its open file description. */
struct fd_seen {
	pid_t pid;
	int fd;
	uint32_t id;
	dev_t dev;
	ino_t ino;
};

/* A pipe's unread bytes, saved once per pipe (pipes-data.img). */
struct pipe_data {
	uint32_t pipe_id;
	uint32_t size;		/* capacity */
	uint32_t len;
	uint8_t *buf;
};

struct file_table {
	FileEntry **e;
	int nr, cap;
	uint32_t next_id;
	/* extra state of the kinds that need it (tty infos) */
	TtyInfoEntry **ttys;
	int nr_ttys;
	struct fd_seen *seen;
	int nr_seen, cap_seen;
	struct pipe_data *pipes;
	int nr_pipes;
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

/* Restore-side context each kind's open() gets. */
struct rst_files {
	const struct opts *o;
	FileEntry **e;		/* loaded files.img */
	int nr;
	TtyInfoEntry **ttys;
	int nr_ttys;
	int shell_tty_fd;	/* restorer's terminal for --shell-job, or -1 */
	struct pipe_data *pipes;	/* pipes-data.img */
	int nr_pipes;
	/* pipes made so far: both ends, for the entries of the other end */
	struct made_pipe { uint32_t pipe_id; int fd[2]; } *made;
	int nr_made;
	struct unix_rst *unix_sk;	/* unix.c's sockets made so far, queues */
};

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
extern const struct fd_kind fd_kind_unix;

/* Table side. */
FileEntry *files_new_entry(struct file_table *t, FdTypes type);
int files_write(struct file_table *t, int dirfd);
void files_free(struct file_table *t);

/* Adds a regular file by path (used for exe, cwd, root, mapped files). */
int reg_file_add(struct file_table *t, const char *path, uint32_t flags, uint64_t pos, uint32_t *id);
int reg_file_open(const RegFileEntry *r, uint32_t flags_override);

/* Dump every fd of the task: files.img entries + fdinfo-ID.img. */
int files_dump_fds(struct file_table *t, const struct opts *o, pid_t pid, int dirfd, uint32_t files_id);

/* Restore: load files.img and tty-info.img, find an entry by id. */
int files_load(struct rst_files *rf, int dirfd);
const FileEntry *files_find(const struct rst_files *rf, uint32_t id);
int files_index(const struct rst_files *rf, uint32_t id);	/* -1 if absent */
const struct fd_kind *fd_kind_of(FdTypes type);
void files_unload(struct rst_files *rf);
/* In a restored process whose fds are all in place: each kind's
 * after_install for each of them. */
int files_after_install(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid);
/* --inherit-fd: the name of a file for fd[N]:NAME, false if it has none. */
bool files_inherit_name(const FileEntry *fe, char *buf, size_t len);

#endif
