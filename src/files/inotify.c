/* inotify: its watches. fdinfo gives, per watch, its number (wd), mask
 * and the watched inode as a file handle; the dump turns the handle back
 * into a path (open_by_handle_at on a mount of that filesystem, then the
 * path of that fd) and saves both. Restore adds each watch on its path,
 * with INOTIFY_IOC_SETNEXTWD first so it gets its old number. Events
 * queued but not read at dump time are not saved. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files/anonfd.h"
#include "files/fsnotify.h"
#include "files/ghost.h"
#include "util/log.h"

#ifndef INOTIFY_IOC_SETNEXTWD
#define INOTIFY_IOC_SETNEXTWD _IOW('I', 0, int32_t)
#endif

/* What a watch's mask may hold besides events. */
#define WATCH_FLAGS (IN_EXCL_UNLINK | IN_ONESHOT)

static bool inotify_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "inotify");
}

/* One "inotify wd:..." line of fdinfo into a watch entry. */
static InotifyWdEntry *parse_watch(const char *l)
{
	unsigned wd, sdev, mask, ign, bytes, type;
	unsigned long long ino;
	int hoff = 0;

	if (sscanf(l, "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x "
		   "fhandle-bytes:%x fhandle-type:%x f_handle:%n",
		   &wd, &ino, &sdev, &mask, &ign, &bytes, &type, &hoff) != 7 || !hoff)
		return NULL;
	InotifyWdEntry *w = calloc(1, sizeof(*w));
	FhEntry *fh = fsn_parse_handle(bytes, type, l + hoff);
	if (!w || !fh) {
		free(w);
		if (fh)
			protobuf_c_message_free_unpacked(&fh->base, NULL);
		return NULL;
	}
	inotify_wd_entry__init(w);
	w->f_handle = fh;
	w->wd = wd;
	w->i_ino = ino;
	w->s_dev = sdev;
	w->mask = mask;
	w->ignored_mask = ign;
	return w;
}

static int add_watch_entry(InotifyFileEntry *e, InotifyWdEntry *w)
{
	InotifyWdEntry **n = realloc(e->wd, (e->n_wd + 1) * sizeof(*n));
	if (!n)
		return -1;
	e->wd = n;
	e->wd[e->n_wd++] = w;
	return 0;
}

static int inotify_dump_watches(struct file_table *t, const struct opts *o, const struct fd_facts *f,
				const char *buf, InotifyFileEntry *e)
{
	char what[48];

	for (const char *l = buf; l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, "inotify wd:", 11))
			continue;
		InotifyWdEntry *w = parse_watch(l);
		if (!w || add_watch_entry(e, w) < 0) {
			pr_err("pid %d: fd %d (inotify): can't parse watch line \"%.80s\"", f->pid, f->fd, l);
			if (w)
				protobuf_c_message_free_unpacked(&w->base, NULL);
			return -1;
		}
		w->id = e->id;
		snprintf(what, sizeof(what), "inotify watch %u", w->wd);
		if (fsn_watch_path(t, o, f, w->s_dev, w->i_ino, w->f_handle, what) < 0)
			return -1;
		pr_debug("pid %d: fd %d: inotify watch %u on %s mask %#x", f->pid, f->fd, w->wd,
			 w->f_handle->path ? w->f_handle->path : "(a deleted file)",
			 w->mask);
	}
	return 0;
}

static int inotify_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
			FileEntry *fe)
{
	InotifyFileEntry *e = calloc(1, sizeof(*e));
	char *buf = NULL;
	int ret = -1;

	if (!e) {
		files_oom(f);
		return -1;
	}
	inotify_file_entry__init(e);
	fe->ify = e;
	e->id = fe->id;
	e->flags = f->fi.flags & ~O_CLOEXEC;
	if (!(e->fown = anon_fown_new())) {
		files_oom(f);
		return -1;
	}
	if (!(buf = anon_fdinfo_load(f)))
		return -1;
	ret = inotify_dump_watches(t, o, f, buf, e);
	free(buf);
	return ret;
}

/* ---- restore ---- */

static int cmp_wd(const void *a, const void *b)
{
	const InotifyWdEntry *x = *(InotifyWdEntry *const *)a, *y = *(InotifyWdEntry *const *)b;
	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

/* Adds a watch so it gets number w->wd: INOTIFY_IOC_SETNEXTWD sets the
 * next number; without it (ENOTTY), watches are added and removed until
 * the number comes up (they are added in increasing wd order), which
 * queues an IN_IGNORED event per removal: *removed says so. */
static int add_watch(int fd, const char *path, const InotifyWdEntry *w, bool *removed)
{
	uint32_t mask = w->mask & (IN_ALL_EVENTS | WATCH_FLAGS);
	bool setnext = ioctl(fd, INOTIFY_IOC_SETNEXTWD, (unsigned long)w->wd) == 0;

	for (;;) {
		int wd = inotify_add_watch(fd, path, mask);
		if (wd < 0) {
			pr_perror("can't add inotify watch %u on %s", w->wd, path);
			return -1;
		}
		if ((uint32_t)wd == w->wd)
			return 0;
		if (setnext || (uint32_t)wd > w->wd) {
			pr_err("inotify watch on %s got number %d, not %u as it had", path, wd, w->wd);
			return -1;
		}
		inotify_rm_watch(fd, wd);
		*removed = true;
	}
}

static int inotify_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const InotifyFileEntry *e = fe->ify;
	char path[PATH_MAX];

	if (!e) {
		pr_err("image files.img: inotify entry %u is empty", fe->id);
		return -1;
	}
	InotifyWdEntry **sorted = malloc((e->n_wd ? e->n_wd : 1) * sizeof(*sorted));
	int fd = inotify_init1(IN_NONBLOCK);
	bool removed = false;
	if (fd < 0 || !sorted) {
		pr_perror("can't make inotify %u", fe->id);
		goto err;
	}
	memcpy(sorted, e->wd, e->n_wd * sizeof(*sorted));
	qsort(sorted, e->n_wd, sizeof(*sorted), cmp_wd);
	for (size_t i = 0; i < e->n_wd; i++) {
		const InotifyWdEntry *w = sorted[i];
		char what[48];
		snprintf(what, sizeof(what), "inotify watch %u", w->wd);
		int target = fsn_open_watched(rf, w->s_dev, w->i_ino, w->f_handle, what);
		if (target < 0)
			goto err;
		/* the /proc link watches the very inode the fd is on */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", target);
		int ret = add_watch(fd, path, w, &removed);
		close(target);
		if (ret < 0)
			goto err;
	}
	/* the IN_IGNORED of the watches removed: not events of the process */
	while (removed && read(fd, path, sizeof(path)) > 0)
		;
	if (anon_set_status_flags(fd, e->flags) < 0) {
		pr_perror("can't set the flags of inotify %u", fe->id);
		goto err;
	}
	free(sorted);
	return fd;
err:
	free(sorted);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Its process may make it (it opens its watched files as the root would,
 * before its root changes), but for a watch on a deleted file: the ghost
 * it recreates is made once, by the root, for all its users. */
static bool inotify_own_open(const struct rst_files *rf, const FileEntry *fe)
{
	for (size_t i = 0; fe->ify && i < fe->ify->n_wd; i++)
		if (ghost_is_inode(rf, fe->ify->wd[i]->s_dev, fe->ify->wd[i]->i_ino))
			return false;
	return fe->ify != NULL;
}

const struct fd_kind fd_kind_inotify = {
	.name = "inotify", .type = FD_TYPES__INOTIFY,
	.owns = inotify_owns, .dump = inotify_dump, .open = inotify_open, .own_open = inotify_own_open,
};
