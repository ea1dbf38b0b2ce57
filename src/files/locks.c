/* File locks: dump reads them from /proc/PID/fdinfo/N ("lock:" lines),
 * which names the fd a lock is held through, so there is no guessing
 * which of several fds on the same inode owns it; nothing is taken or
 * released in the dumped tree, so a failed dump or --leave-running leaves
 * every lock as it was.
 *
 * Ownership decides who takes a lock back on restore:
 *  - flock and OFD locks and leases (F_SETLEASE) belong to the open file
 *    description. A shared description (inherited or dup'ed) is one
 *    files.img entry, restored as one description, so the lock is saved
 *    and taken once, through one of its fds (the process that took it
 *    originally, if it has one). A lease being broken is refused.
 *  - POSIX locks belong to the process (its fd table): each process takes
 *    its own ranges in itself. The kernel shows them on every fd of the
 *    description they were taken through, in every process sharing it:
 *    only the owner's pid counts.
 *
 * Not a kind of fd: a row of the table of kinds without a type, whose
 * hooks run per process (after its fds are dumped; once its fds are in
 * place; once stasis's own fds in it are closed). Locks are taken back
 * only with --file-locks, as CRIU does; without it they are dropped with
 * a warning. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "file-lock.pb-c.h"
#include "files/kind.h"
#include "image/img.h"
#include "infect/inject.h"
#include "util/log.h"

#define FDINFO_MAX (256u << 10)	/* fdinfo of an fd with a few thousand locks */

/* Lock styles, as filelocks.img's flag field spells them (CRIU's values). */
#define LOCK_FL_POSIX 1
#define LOCK_FL_FLOCK 2
#define LOCK_FL_OFD   4
#define LOCK_FL_LEASE 8
#define LEASE_BREAKING 4	/* in a lease's type: being broken, to the type it holds */

extern const struct fd_kind fd_kind_locks;

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

/* Dump: filelocks.img's entries. */
struct locks_dump {
	struct dumped_lock *locks;
	int nr_locks;
};

/* Restore: filelocks.img (optional: older dumps lack it). */
struct locks_rst {
	FileLockEntry **locks;
	int nr_locks;
};

/* One "lock:" line of fdinfo (the format of /proc/locks):
 * "1: POSIX  ADVISORY  WRITE 1234 fe:00:5678 5 14" (end: a byte or EOF). */
struct lock_line {
	int flag;		/* LOCK_FL_*, 0 if unknown */
	char style[16], mode[16], rw[16];
	pid_t pid;		/* POSIX: owner; flock: taker; OFD: -1 */
	unsigned maj, min;
	unsigned long ino;
	int64_t start, len;	/* len 0: to EOF */
};

static const char *style_name(int flag)
{
	switch (flag) {
	case LOCK_FL_POSIX: return "POSIX";
	case LOCK_FL_FLOCK: return "flock";
	case LOCK_FL_OFD: return "OFD";
	case LOCK_FL_LEASE: return "lease";
	}
	return "unknown";
}

static int parse_lock_line(const char *s, struct lock_line *l)
{
	char end[32];
	long long start;

	memset(l, 0, sizeof(*l));
	if (sscanf(s, "%*d: %15s %15s %15s %d %x:%x:%lu %lld %31s", l->style, l->mode, l->rw, &l->pid,
		   &l->maj, &l->min, &l->ino, &start, end) != 9)
		return -1;
	l->start = start;
	if (!strcmp(end, "EOF"))
		l->len = 0;
	else
		l->len = strtoll(end, NULL, 10) - start + 1;
	if (!strcmp(l->style, "POSIX"))
		l->flag = LOCK_FL_POSIX;
	else if (!strcmp(l->style, "FLOCK"))
		l->flag = LOCK_FL_FLOCK;
	else if (!strcmp(l->style, "OFDLCK"))
		l->flag = LOCK_FL_OFD;
	else if (!strcmp(l->style, "LEASE"))
		l->flag = LOCK_FL_LEASE;
	return 0;
}

/* F_RDLCK/F_WRLCK, as filelocks.img holds them; -1 for anything else
 * (a lease being broken among them). */
static int lock_type(const struct lock_line *l)
{
	if (strcmp(l->mode, l->flag == LOCK_FL_LEASE ? "ACTIVE" : "ADVISORY"))
		return -1;	/* MSNFS, mandatory: gone from today's kernels */
	if (!strcmp(l->rw, "READ"))
		return F_RDLCK;
	if (!strcmp(l->rw, "WRITE"))
		return F_WRLCK;
	return -1;
}

/* ---- dump ---- */

static struct dumped_lock *find_same(struct file_table *t, const struct lock_line *l, pid_t pid,
				     uint32_t file_id)
{
	struct locks_dump *ld = files_dump_state(t, &fd_kind_locks);
	for (int i = 0; i < ld->nr_locks; i++) {
		struct dumped_lock *d = &ld->locks[i];
		if ((int)d->e.flag != l->flag || d->e.start != l->start)
			continue;
		if (l->flag == LOCK_FL_POSIX ? d->real_pid == pid && d->maj == l->maj &&
						       d->min == l->min && d->ino == l->ino
					     : d->file_id == file_id)
			return d;
	}
	return NULL;
}

static int add_lock(struct file_table *t, const struct lock_line *l, int type, pid_t pid,
		    pid_t ns_pid, int fd, uint32_t file_id)
{
	struct locks_dump *ld = files_dump_state(t, &fd_kind_locks);
	struct dumped_lock *n = realloc(ld->locks, (ld->nr_locks + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory");
		return -1;
	}
	ld->locks = n;
	struct dumped_lock *d = &ld->locks[ld->nr_locks++];
	memset(d, 0, sizeof(*d));
	file_lock_entry__init(&d->e);
	d->e.flag = l->flag;
	d->e.type = type;
	d->e.pid = ns_pid;
	d->e.fd = fd;
	d->e.start = l->start;
	d->e.len = l->len;
	d->file_id = file_id;
	d->real_pid = pid;
	d->maj = l->maj;
	d->min = l->min;
	d->ino = l->ino;
	pr_info("pid %d: fd %d holds a lock: %s, %s, from byte %" PRId64 ", length %" PRId64 " (0: to EOF)",
		pid, fd, style_name(l->flag), type == F_WRLCK ? "write" : "read", l->start, l->len);
	return 0;
}

/* One lock seen on fd of pid: refused, skipped, saved, or the same lock
 * seen through another fd. */
static int note_lock(struct file_table *t, const struct opts *o, pid_t pid, pid_t ns_pid, int fd,
		     const char *path, const struct lock_line *l)
{
	int type = lock_type(l);

	if (l->flag == LOCK_FL_LEASE && type < 0) {
		pr_err("pid %d: fd %d (%s) holds a file lease that is being broken (%s %s); stasis can't "
		       "dump it: let the lease break finish first", pid, fd, path, l->mode, l->rw);
		return -1;
	}
	if (!l->flag || type < 0) {
		pr_err("pid %d: fd %d (%s) holds a lock stasis can't dump: %s %s %s", pid, fd, path,
		       l->style, l->mode, l->rw);
		return -1;
	}
	if (l->flag == LOCK_FL_POSIX && l->pid != pid)
		return 0;	/* another process's, through a shared description */
	if (!o->file_locks) {
		pr_err("pid %d: fd %d (%s) holds a file lock (%s); use --file-locks (-l) to dump file locks",
		       pid, fd, path, style_name(l->flag));
		return -1;
	}
	uint32_t file_id = files_id_of_fd(t, pid, fd);
	if (!file_id) {
		pr_err("pid %d: fd %d (%s) holds a lock but was not dumped as a file", pid, fd, path);
		return -1;
	}
	struct dumped_lock *same = find_same(t, l, pid, file_id);
	if (!same)
		return add_lock(t, l, type, pid, ns_pid, fd, file_id);
	/* a shared description's lock: its taker, if ours, takes it back */
	if ((l->flag == LOCK_FL_FLOCK || l->flag == LOCK_FL_LEASE) && l->pid == pid && same->real_pid != pid) {
		same->real_pid = pid;
		same->e.pid = ns_pid;
		same->e.fd = fd;
	}
	return 0;
}

static int dump_fd_locks(struct file_table *t, const struct opts *o, pid_t pid, pid_t ns_pid, int fd,
			 char *buf)
{
	char name[32], link[64], path[PATH_MAX] = "?";

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	ssize_t n = proc_read_file(pid, name, buf, FDINFO_MAX);
	if (n < 0) {
		pr_perror("pid %d: can't read /proc/%d/fdinfo/%d", pid, pid, fd);
		return -1;
	}
	if ((size_t)n >= FDINFO_MAX - 1) {
		pr_err("pid %d: fd %d holds more locks than stasis can read", pid, fd);
		return -1;
	}
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
	ssize_t pl = readlink(link, path, sizeof(path) - 1);
	if (pl > 0)
		path[pl] = 0;
	for (char *s = buf; (s = strstr(s, "\nlock:")); s++) {
		struct lock_line l;
		if (parse_lock_line(s + strlen("\nlock:"), &l) < 0) {
			pr_err("pid %d: fd %d: can't parse its lock line in fdinfo", pid, fd);
			return -1;
		}
		if (note_lock(t, o, pid, ns_pid, fd, path, &l) < 0)
			return -1;
	}
	return 0;
}

/* The locks one process of the (frozen) tree holds, read from its
 * /proc/PID/fdinfo, once its fds are dumped (their file ids come from
 * there). Without --file-locks any lock fails the dump.
 *
 * A process that was waiting for a lock (F_SETLKW, flock, a lease break)
 * is not waiting any more: its waits are interruptible, and the seize
 * interrupted it, which took its request off the lock (the call restarts
 * after the restore; tests/cases/locks.sh, waiters). So /proc/locks, whose
 * first read costs a dump an RCU grace period (about 10 ms), is not read. */
static int locks_dump_task(struct file_table *t, const struct opts *o, pid_t pid, pid_t ns_pid)
{
	int ret = -1;
	char *buf = NULL;

	/* only the fds whose fdinfo showed locks when they were dumped
	 * (files.c): reading every fdinfo again cost a dump of a thousand
	 * connections a tenth of its time */
	if (!t->nr_lock_fds)
		return 0;
	if (!(buf = malloc(FDINFO_MAX))) {
		pr_err("pid %d: out of memory to read its locks", pid);
		return -1;
	}
	for (int i = 0; i < t->nr_lock_fds; i++)
		if (dump_fd_locks(t, o, pid, ns_pid, t->lock_fds[i], buf) < 0)
			goto out;
	ret = 0;
out:
	free(buf);
	return ret;
}

/* filelocks.img, always written (empty when there is no lock). */
static int locks_write(struct file_table *t, int dirfd)
{
	struct locks_dump *ld = files_dump_state(t, &fd_kind_locks);
	struct img img;
	if (img_create(dirfd, &img, IMG_FILE_LOCKS, 0) < 0)
		return -1;
	for (int i = 0; i < ld->nr_locks; i++)
		if (img_write(&img, &ld->locks[i].e.base) < 0) {
			img_abort(&img);
			return -1;
		}
	return img_finish(&img);
}

static void locks_free(struct file_table *t)
{
	struct locks_dump *ld = files_dump_state(t, &fd_kind_locks);
	free(ld->locks);
}

/* ---- restore ---- */

static int check_entry(const FileLockEntry *e)
{
	if (e->flag == LOCK_FL_LEASE && (e->type & LEASE_BREAKING)) {
		pr_err("filelocks.img: pid %d holds a lease being broken on fd %d; stasis can't "
		       "restore a lease break", e->pid, e->fd);
		return -1;
	}
	if ((e->flag != LOCK_FL_POSIX && e->flag != LOCK_FL_FLOCK && e->flag != LOCK_FL_OFD &&
	     e->flag != LOCK_FL_LEASE) ||
	    (e->type != F_RDLCK && e->type != F_WRLCK) || e->start < 0 || e->len < 0) {
		pr_err("filelocks.img: pid %d fd %d: lock style %u type %u bytes %" PRId64 " len %" PRId64
		       " is not one stasis can restore", e->pid, e->fd, e->flag, e->type, e->start, e->len);
		return -1;
	}
	return 0;
}

static int locks_load(struct rst_files *rf, int dirfd)
{
	struct locks_rst *s = files_rst_state(rf, &fd_kind_locks);
	if (img_load_all(dirfd, IMG_FILE_LOCKS, 0, (void ***)&s->locks, &s->nr_locks) < 0)
		return -1;
	if (s->nr_locks && !rf->o->file_locks) {
		/* CRIU's rule: without the option, locks in the image are ignored */
		pr_warn("the images hold %d file locks; restoring without them (use --file-locks to "
			"take them back)", s->nr_locks);
		return 0;
	}
	for (int i = 0; i < s->nr_locks; i++)
		if (check_entry(s->locks[i]) < 0)
			return -1;
	return 0;
}

static void locks_unload(struct rst_files *rf)
{
	struct locks_rst *s = files_rst_state(rf, &fd_kind_locks);
	for (int i = 0; i < s->nr_locks; i++)
		img_free(s->locks[i]);
	free(s->locks);
}

static const char *fd_path(pid_t real_pid, int fd, char *buf, size_t len)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", real_pid, fd);
	ssize_t n = readlink(link, buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? buf : "?";
}

static const char *busy_hint(int err)
{
	return err == EAGAIN || err == EACCES || err == EWOULDBLOCK ?
		" (a process outside the tree holds a conflicting lock: the original still alive?)" : "";
}

/* The entries of pid of the given styles, each checked against its fds. */
static bool lock_is_for(const FileLockEntry *e, pid_t pid, bool posix)
{
	return e->pid == pid && (e->flag == LOCK_FL_POSIX) == posix;
}

static int take_description_lock(const FileLockEntry *e, pid_t pid)
{
	char path[PATH_MAX];
	int ret;

	if (e->flag == LOCK_FL_FLOCK) {
		ret = flock(e->fd, (e->type == F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB);
	} else if (e->flag == LOCK_FL_LEASE) {
		/* the restored process is root, or the client, who may lease
		 * only its own files (as it could before) */
		ret = fcntl(e->fd, F_SETLEASE, e->type);
	} else {
		struct flock fl = { .l_type = e->type, .l_whence = SEEK_SET, .l_start = e->start,
				    .l_len = e->len };
		ret = fcntl(e->fd, F_OFD_SETLK, &fl);
	}
	if (ret < 0) {
		int err = errno;
		pr_err("pid %d: can't take back its lock (%s, %s) on fd %d (%s): %s%s", pid,
		       style_name(e->flag), e->type == F_WRLCK ? "write" : "read", e->fd,
		       fd_path(getpid(), e->fd, path, sizeof(path)), strerror(err), busy_hint(err));
		return -1;
	}
	pr_info("pid %d: took back its lock (%s, %s) on fd %d", pid, style_name(e->flag),
		e->type == F_WRLCK ? "write" : "read", e->fd);
	return 0;
}

/* In a restored process with all its fds in place: its flock and OFD
 * locks (they belong to descriptions, which later closes of other fds
 * don't touch). */
static int locks_restore_task(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid)
{
	struct locks_rst *s = files_rst_state(rf, &fd_kind_locks);
	if (!rf->o->file_locks)
		return 0;
	for (int i = 0; i < s->nr_locks; i++) {
		const FileLockEntry *e = s->locks[i];
		if (!lock_is_for(e, pid, false))
			continue;
		if (!files_task_has_fd(rf, e->fd)) {
			pr_err("filelocks.img: pid %d holds a lock on fd %d, which it doesn't have", pid, e->fd);
			return -1;
		}
		if (take_description_lock(e, pid) < 0)
			return -1;
	}
	return 0;
}

static int take_posix_lock(struct inj *ij, const FileLockEntry *e)
{
	struct flock fl = { .l_type = e->type, .l_whence = SEEK_SET, .l_start = e->start, .l_len = e->len };
	char path[PATH_MAX];
	size_t mark = inj_args_mark(ij);
	uint64_t at;
	long ret;
	int failed = inj_arg(ij, &fl, sizeof(fl), &at) < 0 ||
		     inj_call(ij, &ret, INJ(SYS_fcntl, e->fd, F_SETLK, at)) < 0;

	inj_args_release(ij, mark);
	if (failed)
		return -1;
	if (ret < 0 && ret > -4096) {
		pr_err("pid %d: can't take back its POSIX %s lock on fd %d (%s), from byte %" PRId64
		       ", length %" PRId64 ": %s%s", ij->pid, e->type == F_WRLCK ? "write" : "read", e->fd,
		       fd_path(ij->th[0].pid, e->fd, path, sizeof(path)), e->start, e->len,
		       strerror(-ret), busy_hint(-ret));
		return -1;
	}
	pr_info("pid %d: took back its lock (POSIX, %s) on fd %d, from byte %" PRId64 ", length %" PRId64,
		ij->pid, e->type == F_WRLCK ? "write" : "read", e->fd, e->start, e->len);
	return 0;
}

/* Its POSIX locks, injected by the ptracer once the service fds are
 * closed: any close() of an fd on a locked file drops the process's
 * POSIX locks on it, so they can only be taken after the last stasis
 * close. */
static int locks_restore_posix(struct rst_files *rf, struct inj *ij)
{
	struct locks_rst *s = files_rst_state(rf, &fd_kind_locks);

	if (!rf->o->file_locks)
		return 0;
	for (int i = 0; i < s->nr_locks; i++) {
		const FileLockEntry *e = s->locks[i];
		if (!lock_is_for(e, ij->pid, true))
			continue;
		if (!files_task_has_fd(rf, e->fd)) {
			pr_err("filelocks.img: pid %d holds a lock on fd %d, which it doesn't have",
			       ij->pid, e->fd);
			return -1;
		}
		if (take_posix_lock(ij, e) < 0)
			return -1;
	}
	return 0;
}

const struct fd_kind fd_kind_locks = {
	.name = "file lock", .dump_state = sizeof(struct locks_dump), .rst_state = sizeof(struct locks_rst),
	.dump_task = locks_dump_task, .after_install_task = locks_restore_task,
	.after_service_close = locks_restore_posix,
	.write_images = locks_write, .free_images = locks_free,
	.load_images = locks_load, .unload_images = locks_unload,
};
