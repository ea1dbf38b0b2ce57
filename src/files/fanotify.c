/* fanotify: a group (its fanotify_init flags and event file flags) and
 * its marks, as fdinfo shows them: a mark on an inode (its file handle,
 * turned into a path as for inotify: files/fsnotify.c) or on a mount (its
 * mount id, saved with the mount's path as this process sees it). Each
 * mark has its mark flags, mask and ignored mask. CRIU's FanotifyFileEntry.
 * Restore makes the group again and adds each mark through an O_PATH fd
 * on its inode or mount point. Events queued but not read at dump time
 * are not saved (CRIU drops them too). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files/anonfd.h"
#include "files/fsnotify.h"
#include "proc/proc.h"
#include "util/log.h"

#define MOUNTINFO_MAX (1 << 20)

static bool fanotify_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "[fanotify]");
}

static int add_mark(FanotifyFileEntry *e, FanotifyMarkEntry *m)
{
	FanotifyMarkEntry **n = realloc(e->mark, (e->n_mark + 1) * sizeof(*n));
	if (!n)
		return -1;
	e->mark = n;
	e->mark[e->n_mark++] = m;
	return 0;
}

/* A new mark of e, with the fields every type has. */
static FanotifyMarkEntry *new_mark(FanotifyFileEntry *e, MarkType type, unsigned mflags, unsigned mask,
				   unsigned ignored)
{
	FanotifyMarkEntry *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	fanotify_mark_entry__init(m);
	if (add_mark(e, m) < 0) {
		free(m);
		return NULL;
	}
	m->id = e->id;
	m->type = type;
	m->mflags = mflags;
	m->mask = mask;
	m->ignored_mask = ignored;
	return m;
}

/* "fanotify ino:... f_handle:HEX" into an inode mark of e. */
static int parse_inode_mark(FanotifyFileEntry *e, const char *l)
{
	unsigned long long ino;
	unsigned sdev, mflags, mask, ign, bytes, type;
	int hoff = 0;

	if (sscanf(l, "fanotify ino:%llx sdev:%x mflags:%x mask:%x ignored_mask:%x fhandle-bytes:%x "
		   "fhandle-type:%x f_handle: %n", &ino, &sdev, &mflags, &mask, &ign, &bytes, &type,
		   &hoff) != 7 || !hoff)
		return -1;
	FanotifyMarkEntry *m = new_mark(e, MARK_TYPE__INODE, mflags, mask, ign);
	FanotifyInodeMarkEntry *ie = calloc(1, sizeof(*ie));
	if (!m || !ie) {
		free(ie);
		return -1;
	}
	fanotify_inode_mark_entry__init(ie);
	m->ie = ie;
	m->s_dev = sdev;
	ie->i_ino = ino;
	return (ie->f_handle = fsn_parse_handle(bytes, type, l + hoff)) ? 0 : -1;
}

/* "fanotify mnt_id:..." into a mount mark of e (path and s_dev later). */
static int parse_mount_mark(FanotifyFileEntry *e, const char *l)
{
	unsigned mnt_id, mflags, mask, ign;

	if (sscanf(l, "fanotify mnt_id:%x mflags:%x mask:%x ignored_mask:%x", &mnt_id, &mflags, &mask,
		   &ign) != 4)
		return -1;
	FanotifyMarkEntry *m = new_mark(e, MARK_TYPE__MOUNT, mflags, mask, ign);
	FanotifyMountMarkEntry *me = calloc(1, sizeof(*me));
	if (!m || !me) {
		free(me);
		return -1;
	}
	fanotify_mount_mark_entry__init(me);
	m->me = me;
	me->mnt_id = mnt_id;
	return 0;
}

/* The mount point (as pid sees it) and device of a mount mark's mount. */
static int mount_of(const struct fd_facts *f, FanotifyMarkEntry *m, const char *mountinfo)
{
	for (const char *l = mountinfo; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		unsigned id, maj, min;
		char mnt[PATH_MAX];
		if (sscanf(l, "%u %*u %u:%u %*s %4095s", &id, &maj, &min, mnt) != 4 || id != m->me->mnt_id)
			continue;
		fsn_unescape(mnt);
		m->s_dev = (maj << 20) | min;
		return (m->me->path = strdup(mnt)) ? 0 : files_oom(f);
	}
	pr_err("pid %d: fd %d (fanotify) marks mount %u, which is not among the mounts pid %d "
	       "sees; stasis can't dump it", f->pid, f->fd, m->me->mnt_id, f->pid);
	return -1;
}

static int fanotify_marks(struct file_table *t, const struct opts *o, const struct fd_facts *f,
			  FanotifyFileEntry *e)
{
	char *mountinfo = NULL, what[48];
	int ret = -1;

	for (size_t i = 0; i < e->n_mark; i++) {
		FanotifyMarkEntry *m = e->mark[i];
		snprintf(what, sizeof(what), "fanotify mark %zu", i + 1);
		if (m->type == MARK_TYPE__INODE) {
			if (fsn_watch_path(t, o, f, m->s_dev, m->ie->i_ino, m->ie->f_handle, what) < 0)
				goto out;
			continue;
		}
		if (!mountinfo) {
			if (!(mountinfo = malloc(MOUNTINFO_MAX))) {
				files_oom(f);
				goto out;
			}
			ssize_t n = proc_read_file(f->pid, "mountinfo", mountinfo, MOUNTINFO_MAX);
			if (n <= 0 || n == MOUNTINFO_MAX - 1) {
				pr_perror("pid %d: fd %d (fanotify): can't read /proc/%d/mountinfo", f->pid,
					  f->fd, f->pid);
				goto out;
			}
		}
		if (mount_of(f, m, mountinfo) < 0)
			goto out;
	}
	ret = 0;
out:
	free(mountinfo);
	return ret;
}

static int fanotify_parse(const struct fd_facts *f, const char *buf, FanotifyFileEntry *e)
{
	bool group = false;

	for (const char *l = buf; l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		int r = 0;
		if (!strncmp(l, "fanotify flags:", 15)) {
			group = sscanf(l, "fanotify flags:%x event-flags:%x", &e->faflags, &e->evflags) == 2;
			r = group ? 0 : -1;
		} else if (!strncmp(l, "fanotify ino:", 13)) {
			r = parse_inode_mark(e, l);
		} else if (!strncmp(l, "fanotify mnt_id:", 16)) {
			r = parse_mount_mark(e, l);
		} else if (!strncmp(l, "fanotify ", 9)) {
			pr_err("pid %d: fd %d (fanotify) has a mark stasis can't dump (a filesystem "
			       "mark?): \"%.80s\"", f->pid, f->fd, l);
			return -1;
		}
		if (r < 0) {
			pr_err("pid %d: fd %d (fanotify): can't parse \"%.80s\"", f->pid, f->fd, l);
			return -1;
		}
	}
	if (!group)
		pr_err("pid %d: fd %d (fanotify): its fdinfo has no \"fanotify flags\" line", f->pid, f->fd);
	return group ? 0 : -1;
}

static int fanotify_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
			 FileEntry *fe)
{
	FanotifyFileEntry *e = calloc(1, sizeof(*e));
	char *buf = NULL;
	int ret = -1;

	if (!e) {
		files_oom(f);
		return -1;
	}
	fanotify_file_entry__init(e);
	fe->ffy = e;
	e->id = fe->id;
	e->flags = f->fi.flags & ~O_CLOEXEC;
	if (!(e->fown = anon_fown_new())) {
		files_oom(f);
		return -1;
	}
	if (!(buf = anon_fdinfo_load(f)))
		return -1;
	if (fanotify_parse(f, buf, e) < 0)
		goto out;
	ret = fanotify_marks(t, o, f, e);
	pr_debug("pid %d: fd %d: fanotify flags %#x event flags %#x, %zu marks", f->pid, f->fd,
		 e->faflags, e->evflags, e->n_mark);
out:
	free(buf);
	return ret;
}

/* ---- restore ---- */

static int mark_add(struct rst_files *rf, int fd, const FanotifyMarkEntry *m, unsigned flags, int target)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", target);
	flags |= FAN_MARK_ADD | m->mflags;
	if (m->mask && fanotify_mark(fd, flags, m->mask, AT_FDCWD, path) < 0) {
		pr_perror("%s: can't add fanotify mark %u (mask %#x)", rf->who, m->id, m->mask);
		return -1;
	}
	if (m->ignored_mask &&
	    fanotify_mark(fd, flags | FAN_MARK_IGNORED_MASK, m->ignored_mask, AT_FDCWD, path) < 0) {
		pr_perror("%s: can't add fanotify mark %u (ignored mask %#x)", rf->who, m->id,
			  m->ignored_mask);
		return -1;
	}
	return 0;
}

static int restore_mark(struct rst_files *rf, int fd, const FanotifyMarkEntry *m, size_t i)
{
	char what[48];
	int target, ret;
	unsigned flags = 0;

	snprintf(what, sizeof(what), "fanotify mark %zu", i + 1);
	if (m->type == MARK_TYPE__INODE && m->ie) {
		target = fsn_open_watched(rf, m->s_dev, m->ie->i_ino, m->ie->f_handle, what);
	} else if (m->type == MARK_TYPE__MOUNT && m->me && m->me->path) {
		flags = FAN_MARK_MOUNT;
		target = open(m->me->path, O_PATH | O_CLOEXEC);
		if (target < 0)
			pr_perror("%s: can't open %s, the mount of %s", rf->who, m->me->path, what);
	} else {
		pr_err("image files.img: %s of fanotify %u is malformed", what, m->id);
		return -1;
	}
	if (target < 0)
		return -1;
	ret = mark_add(rf, fd, m, flags, target);
	close(target);
	return ret;
}

static int fanotify_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const FanotifyFileEntry *e = fe->ffy;
	(void)fdflags;

	if (!e) {
		pr_err("image files.img: fanotify entry %u is empty", fe->id);
		return -1;
	}
	/* the group's flags as they were (fdinfo shows them); O_NONBLOCK as
	 * the file has it now */
	unsigned flags = e->faflags;
	int fd = fanotify_init(flags, e->evflags);
	if (fd >= 0 && anon_set_status_flags(fd, e->flags) < 0) {
		pr_perror("%s: can't set the flags of fanotify %u", rf->who, fe->id);
		close(fd);
		return -1;
	}
	if (fd < 0) {
		pr_perror("%s: can't make fanotify %u (flags %#x, event flags %#x)", rf->who, fe->id, flags,
			  e->evflags);
		return -1;
	}
	for (size_t i = 0; i < e->n_mark; i++)
		if (restore_mark(rf, fd, e->mark[i], i) < 0) {
			close(fd);
			return -1;
		}
	return fd;
}

const struct fd_kind fd_kind_fanotify = {
	.name = "fanotify", .type = FD_TYPES__FANOTIFY,
	.owns = fanotify_owns, .dump = fanotify_dump, .open = fanotify_open,
};
