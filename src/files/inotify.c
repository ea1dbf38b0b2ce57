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
#include "util/log.h"

#ifndef INOTIFY_IOC_SETNEXTWD
#define INOTIFY_IOC_SETNEXTWD _IOW('I', 0, int32_t)
#endif

#define FDINFO_MAX (1 << 20)
#define HANDLE_MAX 128			/* MAX_HANDLE_SZ */
#define HANDLE_WORDS (HANDLE_MAX / 8)	/* as CRIU stores it: always 16 words */
/* What a watch's mask may hold besides events. */
#define WATCH_FLAGS (IN_EXCL_UNLINK | IN_ONESHOT)
/* The kernel's encoding of a dev_t, as in fdinfo's sdev. */
#define KDEV_MAJOR(d) ((unsigned)(d) >> 20)
#define KDEV_MINOR(d) ((unsigned)(d) & 0xfffff)

static bool inotify_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "inotify");
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *d = s;
	for (; *s; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
			*d = (s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0');
			s += 3;
		} else {
			*d = *s;
		}
	}
	*d = 0;
}

/* In a chroot, mountinfo leaves out the mounts it can't reach, often the
 * one the chroot lives on: our root, if on that filesystem, serves too. */
static int open_root_on(uint32_t kdev)
{
	struct stat st;
	if (stat("/", &st) == 0 && major(st.st_dev) == KDEV_MAJOR(kdev) && minor(st.st_dev) == KDEV_MINOR(kdev))
		return open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	errno = ENOENT;
	return -1;
}

/* An fd on a mount of the filesystem with device kdev, for
 * open_by_handle_at; a mount of the filesystem's root is preferred, as
 * every inode of it is reachable from there. */
static int open_mount_of(uint32_t kdev)
{
	char line[4096], want[32], best[PATH_MAX] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%u:%u", KDEV_MAJOR(kdev), KDEV_MINOR(kdev));
	while (fgets(line, sizeof(line), f)) {
		char dev[32], root[PATH_MAX], mnt[PATH_MAX];
		if (sscanf(line, "%*d %*d %31s %4095s %4095s", dev, root, mnt) != 3 || strcmp(dev, want))
			continue;
		if (!best[0] || !strcmp(root, "/"))
			snprintf(best, sizeof(best), "%s", mnt);
		if (!strcmp(root, "/"))
			break;
	}
	fclose(f);
	if (!best[0])
		return open_root_on(kdev);
	unescape(best);
	int fd = open(best, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : open(best, O_PATH | O_CLOEXEC);
}

/* Opens (O_PATH) the inode a saved handle names. */
static int open_handle(uint32_t kdev, const FhEntry *fh)
{
	union {
		struct file_handle h;
		char space[sizeof(struct file_handle) + HANDLE_MAX];
	} u;
	if (fh->bytes > HANDLE_MAX || fh->n_handle * 8 < fh->bytes) {
		errno = EINVAL;
		return -1;
	}
	u.h.handle_bytes = fh->bytes;
	u.h.handle_type = fh->type;
	memcpy(u.h.f_handle, fh->handle, fh->bytes);
	int mfd = open_mount_of(kdev);
	if (mfd < 0)
		return -1;
	int fd = open_by_handle_at(mfd, &u.h, O_PATH | O_CLOEXEC);
	int err = errno;
	close(mfd);
	errno = err;
	return fd;
}

/* The path of the inode a watch is on, checked to lead to that inode. */
static int handle_to_path(uint32_t kdev, uint64_t ino, const FhEntry *fh, char *path, size_t len)
{
	char link[64];
	struct stat st;
	int fd = open_handle(kdev, fh);
	if (fd < 0)
		return -1;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	path[n] = 0;
	if (path[0] != '/' || stat(path, &st) < 0 || st.st_ino != ino ||
	    major(st.st_dev) != KDEV_MAJOR(kdev) || minor(st.st_dev) != KDEV_MINOR(kdev)) {
		errno = ESTALE;	/* deleted, or not reachable by a path */
		return -1;
	}
	return 0;
}

static int hexbyte(const char *s)
{
	unsigned v;
	return sscanf(s, "%2x", &v) == 1 ? (int)v : -1;
}

/* One "inotify wd:..." line of fdinfo into a watch entry. */
static InotifyWdEntry *parse_watch(const char *l)
{
	unsigned wd, sdev, mask, ign, bytes, type;
	unsigned long long ino;
	int hoff = 0;

	if (sscanf(l, "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x "
		   "fhandle-bytes:%x fhandle-type:%x f_handle:%n",
		   &wd, &ino, &sdev, &mask, &ign, &bytes, &type, &hoff) != 7 || !hoff ||
	    bytes > HANDLE_MAX)
		return NULL;
	InotifyWdEntry *w = calloc(1, sizeof(*w));
	FhEntry *fh = calloc(1, sizeof(*fh));
	uint64_t *h = calloc(HANDLE_WORDS, sizeof(*h));
	if (!w || !fh || !h) {
		free(w);
		free(fh);
		free(h);
		return NULL;
	}
	inotify_wd_entry__init(w);
	fh_entry__init(fh);
	for (unsigned i = 0; i < bytes; i++) {
		int b = hexbyte(l + hoff + 2 * i);
		if (b < 0)
			break;
		((uint8_t *)h)[i] = b;
	}
	fh->bytes = bytes;
	fh->type = type;
	fh->handle = h;
	fh->n_handle = HANDLE_WORDS;
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

static int inotify_dump_watches(const struct fd_facts *f, const char *buf, InotifyFileEntry *e)
{
	char path[PATH_MAX];

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
		if (handle_to_path(w->s_dev, w->i_ino, w->f_handle, path, sizeof(path)) < 0) {
			pr_perror("pid %d: fd %d (inotify): can't find a path for watch %u (inode %llu on "
				  "device %u:%u); a watch on a deleted file can't be restored", f->pid, f->fd, w->wd,
				  (unsigned long long)w->i_ino, KDEV_MAJOR(w->s_dev), KDEV_MINOR(w->s_dev));
			return -1;
		}
		if (!(w->f_handle->path = strdup(path)))
			return files_oom(f);
		pr_debug("pid %d: fd %d: inotify watch %u on %s mask %#x", f->pid, f->fd, w->wd, path,
			 w->mask);
	}
	return 0;
}

static int inotify_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
			FileEntry *fe)
{
	char *buf = malloc(FDINFO_MAX);
	InotifyFileEntry *e = calloc(1, sizeof(*e));
	int ret = -1;

	if (!buf || !e) {
		free(e);
		files_oom(f);
		goto out;
	}
	inotify_file_entry__init(e);
	fe->ify = e;
	e->id = fe->id;
	e->flags = f->fi.flags & ~O_CLOEXEC;
	if (!(e->fown = anon_fown_new())) {
		files_oom(f);
		goto out;
	}
	if (anon_fdinfo_read(f->pid, f->fd, buf, FDINFO_MAX) < 0)
		goto out;
	ret = inotify_dump_watches(f, buf, e);
out:
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

static int watch_path(const InotifyWdEntry *w, char *path, size_t len)
{
	if (w->f_handle && w->f_handle->path) {
		snprintf(path, len, "%s", w->f_handle->path);
		return 0;
	}
	/* an image without paths (CRIU's): resolve the handle here */
	if (!w->f_handle || handle_to_path(w->s_dev, w->i_ino, w->f_handle, path, len) < 0) {
		pr_perror("can't find the file of inotify watch %u (inode %llu on device %u:%u)", w->wd,
			  (unsigned long long)w->i_ino, KDEV_MAJOR(w->s_dev), KDEV_MINOR(w->s_dev));
		return -1;
	}
	return 0;
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
	for (size_t i = 0; i < e->n_wd; i++)
		if (watch_path(sorted[i], path, sizeof(path)) < 0 ||
		    add_watch(fd, path, sorted[i], &removed) < 0)
			goto err;
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

const struct fd_kind fd_kind_inotify = {
	.name = "inotify", .type = FD_TYPES__INOTIFY,
	.owns = inotify_owns, .dump = inotify_dump, .open = inotify_open,
};
