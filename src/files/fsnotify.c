/* What inotify and fanotify share: see fsnotify.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files/fsnotify.h"
#include "files/ghost.h"
#include "files/irmap.h"
#include "util/log.h"

extern const struct fd_kind fd_kind_fsnotify;

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
void fsn_unescape(char *s)
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
 * every inode of it is reachable from there, then our own root (in a
 * chroot, a bind mount of some other directory of the filesystem, such
 * as `ip netns`'s /run/netns, reaches less of what we can name). */
static int open_mount_of(uint32_t kdev)
{
	char line[4096], want[32], best[PATH_MAX] = "";
	bool whole = false;	/* best is a mount of the filesystem's root */
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%u:%u", KDEV_MAJOR(kdev), KDEV_MINOR(kdev));
	while (fgets(line, sizeof(line), f)) {
		char dev[32], root[PATH_MAX], mnt[PATH_MAX];
		if (sscanf(line, "%*d %*d %31s %4095s %4095s", dev, root, mnt) != 3 || strcmp(dev, want))
			continue;
		whole = !strcmp(root, "/");
		if (!best[0] || whole)
			snprintf(best, sizeof(best), "%s", mnt);
		if (whole)
			break;
	}
	fclose(f);
	if (!whole) {
		int fd = open_root_on(kdev);
		if (fd >= 0 || !best[0])
			return fd;
	}
	fsn_unescape(best);
	int fd = open(best, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : open(best, O_PATH | O_CLOEXEC);
}

/* Opens (O_PATH) the inode a saved handle names. */
static int open_handle(uint32_t kdev, const FhEntry *fh)
{
	union {
		struct file_handle h;
		char space[sizeof(struct file_handle) + FSN_HANDLE_MAX];
	} u;
	if (fh->bytes > FSN_HANDLE_MAX || fh->n_handle * 8 < fh->bytes) {
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

FhEntry *fsn_parse_handle(unsigned bytes, int type, const char *hex)
{
	if (bytes > FSN_HANDLE_MAX)
		return NULL;
	FhEntry *fh = calloc(1, sizeof(*fh));
	uint64_t *h = calloc(FSN_HANDLE_WORDS, sizeof(*h));
	if (!fh || !h) {
		free(fh);
		free(h);
		return NULL;
	}
	fh_entry__init(fh);
	for (unsigned i = 0; i < bytes; i++) {
		int b = hexbyte(hex + 2 * i);
		if (b < 0)
			break;
		((uint8_t *)h)[i] = b;
	}
	fh->bytes = bytes;
	fh->type = type;
	fh->handle = h;
	fh->n_handle = FSN_HANDLE_WORDS;
	return fh;
}

/* ---- dump ---- */

/* A watch saved without a path, checked by fsn_check once all is dumped. */
struct pathless {
	pid_t pid;
	int fd;
	uint32_t kdev;
	uint64_t ino;
	char what[48];
};

struct fsn_dump {
	struct pathless *p;
	int nr;
};

static int add_pathless(struct file_table *t, const struct fd_facts *f, uint32_t kdev, uint64_t ino,
			const char *what)
{
	struct fsn_dump *s = files_dump_state(t, &fd_kind_fsnotify);
	struct pathless *n = realloc(s->p, (s->nr + 1) * sizeof(*n));
	if (!n)
		return files_oom(f);
	s->p = n;
	n = &s->p[s->nr++];
	*n = (struct pathless){ f->pid, f->fd, kdev, ino, "" };
	snprintf(n->what, sizeof(n->what), "%s", what);
	return 0;
}

int fsn_watch_path(struct file_table *t, const struct opts *o, const struct fd_facts *f, uint32_t kdev,
		   uint64_t ino, FhEntry *fh, const char *what)
{
	char path[PATH_MAX];

	if (handle_to_path(kdev, ino, fh, path, sizeof(path)) < 0) {
		if (!o->force_irmap && errno == ESTALE) {
			pr_debug("pid %d: fd %d: %s (inode %llu on device %u:%u) has no path: saved "
				 "without one", f->pid, f->fd, what, (unsigned long long)ino, KDEV_MAJOR(kdev),
				 KDEV_MINOR(kdev));
			return add_pathless(t, f, kdev, ino, what);
		}
		if (irmap_lookup(o, kdev, ino, path, sizeof(path)) < 0) {
			pr_err("pid %d: fd %d: can't find a path for %s (inode %llu on device %u:%u)%s", f->pid,
			       f->fd, what, (unsigned long long)ino, KDEV_MAJOR(kdev), KDEV_MINOR(kdev),
			       o->force_irmap ? ", not even by a scan (--force-irmap): add the directory "
			       "holding it with --irmap-scan-path" : "; --force-irmap looks for it by inode");
			return -1;
		}
	}
	if (!(fh->path = strdup(path)))
		return files_oom(f);
	return 0;
}

/* Each watch saved without a path must be on a deleted file saved as a
 * ghost: the restore puts the watch on the recreated file. */
static int fsn_check(struct file_table *t, int dirfd)
{
	const struct fsn_dump *s = files_dump_state(t, &fd_kind_fsnotify);
	(void)dirfd;
	for (int i = 0; i < s->nr; i++) {
		const struct pathless *p = &s->p[i];
		if (ghost_has_inode(t, p->kdev, p->ino))
			continue;
		pr_err("pid %d: fd %d: %s is on a file that is deleted (inode %llu on device %u:%u) and "
		       "that no process of the tree has open; stasis can't restore it (remove the "
		       "watch, or keep the file open)", p->pid, p->fd, p->what, (unsigned long long)p->ino,
		       KDEV_MAJOR(p->kdev), KDEV_MINOR(p->kdev));
		return -1;
	}
	return 0;
}

static void fsn_free(struct file_table *t)
{
	struct fsn_dump *s = files_dump_state(t, &fd_kind_fsnotify);
	if (s)
		free(s->p);
}

/* ---- restore ---- */

int fsn_open_watched(struct rst_files *rf, uint32_t kdev, uint64_t ino, const FhEntry *fh, const char *what)
{
	char path[PATH_MAX];
	int fd;

	if (fh && fh->path) {
		fd = open(fh->path, O_PATH | O_CLOEXEC);
		if (fd < 0)
			pr_perror("%s: can't open %s, the file of %s", rf->who, fh->path, what);
		return fd;
	}
	fd = ghost_open_inode(rf, kdev, ino, O_RDONLY);
	if (fd != -2)
		return fd;
	/* an image without paths (CRIU's): resolve the handle here */
	if (!fh || handle_to_path(kdev, ino, fh, path, sizeof(path)) < 0 ||
	    (fd = open(path, O_PATH | O_CLOEXEC)) < 0) {
		pr_perror("%s: can't find the file of %s (inode %llu on device %u:%u)", rf->who, what,
			  (unsigned long long)ino, KDEV_MAJOR(kdev), KDEV_MINOR(kdev));
		return -1;
	}
	return fd;
}

const struct fd_kind fd_kind_fsnotify = {
	.name = "fsnotify", .dump_state = sizeof(struct fsn_dump),
	.write_images = fsn_check, .free_images = fsn_free,
};
