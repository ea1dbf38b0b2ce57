/* Files stasis creates, replaces or reads on someone's behalf: images,
 * logs, pidfiles, and the bytes of files a dumped task holds open.
 *
 * Each call is made relative to a directory fd and never follows a
 * symlink in the last component; a file is created only where none is
 * (an old one is unlinked first, then O_CREAT|O_EXCL), so a name planted
 * in a directory that others can write never redirects us.
 *
 * For a non-root client of the RPC service every call is made by the
 * broker: a process forked for the request that has become the client
 * (its uid, gid and groups, no capabilities, not dumpable). What the
 * client could not create, replace or read itself, the broker can't
 * either, and the kernel is the one that decides. Without a broker (the
 * command line, root clients) the calls are made here. */
#ifndef STASIS_FSOP_H
#define STASIS_FSOP_H

#include <stdbool.h>
#include <sys/types.h>

/* Starts the broker as the given ids; 0, or -1 (reported). */
int fs_broker_start(uid_t uid, gid_t gid, const gid_t *groups, int ngroups);
/* Stops it (it also goes away when we do: its socket closes). */
void fs_broker_stop(void);
bool fs_brokered(void);

/* An existing directory (dump and restore both refuse a missing one, as
 * CRIU does: a typo must not scatter images in a new directory). */
int fs_open_dir(const char *path);
/* The same, path resolved inside rootfd as its "/" (a task's root,
 * /proc/PID/root): its absolute symlinks and ".." never leave it. */
int fs_open_dir_in(int rootfd, const char *path);
/* A new regular file name in dirfd, replacing an old one; flags are
 * O_WRONLY or O_RDWR plus O_APPEND/O_TRUNC. */
int fs_create(int dirfd, const char *name, int flags, mode_t mode);
/* A log: appended to when it exists, made otherwise; regular files only. */
int fs_open_append(int dirfd, const char *name);
/* An existing regular file of dirfd itself, read-only. -1 with errno
 * ELOOP (a symlink) or EINVAL (not a regular file), not reported. */
int fs_open_read(int dirfd, const char *name);
/* Any path, read-only (e.g. /proc/PID/fd/N): what the opener may read. */
int fs_open_path_read(const char *path);
/* The bytes of a file a dumped task holds (src: /proc/PID/fd/N or a
 * map_files link). Opened here when the task's own fd or mapping reads
 * it (readable); otherwise (an O_PATH or write-only fd) by the broker, so
 * a client gets only what it could read itself. */
int fs_open_task_file(const char *src, bool readable);
int fs_rename(int dirfd, const char *from, const char *to);
int fs_unlink(int dirfd, const char *name);
int fs_symlink(const char *target, int dirfd, const char *name);
/* A new hard link name in dirfd to the file src names (followed: a /proc
 * link to a deleted file that still has a name elsewhere). */
int fs_link(const char *src, int dirfd, const char *name);

/* For cgroups (task/cgroup_restore.c), in a directory of a cgroup file
 * system: a new directory name; an existing file of dirfd opened for
 * writing (rdwr: reading too); owner, group and mode of a file or
 * directory (".": dirfd's own) set to these (only what differs is
 * changed). */
int fs_mkdir(int dirfd, const char *name, mode_t mode);
int fs_open_write(int dirfd, const char *name, bool rdwr);
int fs_chperm(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode);

/* A path split into the directory it names and its last component; the
 * caller frees *dir. -1 when the last component is empty, "." or "..". */
int fs_split(const char *path, char **dir, const char **name);
/* fs_split + fs_open_dir + fs_create in one, for a file named by path
 * (a pidfile): the new fd, or -1 (errno set, not reported). */
int fs_create_path(const char *path, int flags, mode_t mode);

#endif
