/* File locks (-l/--file-locks): flock, POSIX (fcntl/lockf) and OFD locks
 * held by the dumped tree, saved in filelocks.img and taken again by the
 * restored processes. Not an fd kind: a lock rides on fds the kinds
 * restore. */
#ifndef STASIS_LOCKS_H
#define STASIS_LOCKS_H

#include <sys/types.h>

#include "files/files.h"

/* Lock styles, as filelocks.img's flag field spells them (CRIU's values). */
#define LOCK_FL_POSIX 1
#define LOCK_FL_FLOCK 2
#define LOCK_FL_OFD   4
#define LOCK_FL_LEASE 8

/* A lock found at dump. flock and OFD locks belong to an open file
 * description (file_id, as in files.img): one entry however many fds or
 * processes share it. POSIX locks belong to a process. */
struct dumped_lock {
	FileLockEntry e;
	uint32_t file_id;	/* flock/OFD: the description holding it */
	pid_t real_pid;		/* e.pid in our pid namespace */
	unsigned maj, min;	/* the locked inode */
	unsigned long ino;
};

/* Dump: the locks one process of the (frozen) tree holds, read from its
 * /proc/PID/fdinfo. Runs after files_dump_fds() of that process (the fds'
 * file ids come from it). Without --file-locks any lock fails the dump. */
int locks_dump_task(struct file_table *t, const struct opts *o, pid_t pid, pid_t ns_pid);
/* filelocks.img, always written (empty when there is no lock). */
int locks_write(struct file_table *t, int dirfd);
void locks_free(struct file_table *t);

/* Restore: filelocks.img (optional: older dumps lack it). Locks are taken
 * only with --file-locks, as CRIU does; without it they are dropped with
 * a warning. */
int locks_load(struct rst_files *rf, int dirfd);
void locks_unload(struct rst_files *rf);
/* In a restored process with all its fds in place: its flock and OFD
 * locks (they belong to descriptions, which later closes of other fds
 * don't touch). */
int locks_restore_task(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid);

struct inj;
/* Its POSIX locks, injected by the ptracer once the service fds are closed:
 * any close() of an fd on a locked file drops the process's POSIX locks
 * on it, so they can only be taken after the last stasis close. */
int locks_restore_posix(struct rst_files *rf, struct inj *ij, FdinfoEntry *const *fdi, int nr);

#endif
