/* Ghost files (see ghost.h): a row of the table of kinds without a type
 * of its own, for its state and images. The bytes are copied from an fd
 * of ours on the file when the images are written, in chunks that skip
 * holes, and on restore straight from the image into the recreated file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files/ghost.h"
#include "ghost.pb-c.h"
#include "files/reg.h"
#include "image/img.h"
#include "util/fsop.h"
#include "util/io.h"
#include "ns/user.h"
#include "util/log.h"

#define COPY_BUF (64u << 10)

struct ghost {
	uint32_t id;		/* remap_id: names ghost-file-ID.img */
	struct stat st;
	int fd;			/* ours, open on the file until the images are written */
	char *target;		/* a symlink's: what it points to (it has no bytes) */
	bool fiemap;		/* its data found by its extents (--ghost-fiemap) */
	char *what;		/* names it in errors */
};

/* remap_id: a ghost's id, or for REMAP_TYPE__PROCFS the pid of a dead
 * process whose /proc entry the file is (restore holds the pid by a
 * helper process while the file is opened). */
struct remap { uint32_t orig_id, remap_id; RemapType type; };

extern const struct fd_kind fd_kind_ghost;

struct ghost_dump {
	struct ghost *g;
	int nr_g;
	struct remap *r;
	int nr_r;
};

/* On restore: a ghost, and once recreated the fd that holds it open. */
struct rst_ghost {
	uint32_t id;
	GhostFileEntry *e;
	/* Its image, opened by stasis at load and left just past the entry,
	 * where its bytes begin: the process that recreates the file reads
	 * them from here. That process may be a non-root client's, which
	 * can't open stasis's images itself (restore/unpriv.c). Only one
	 * process reads it: the root of the tree, which opens every file
	 * before it forks (the keeper is inherited from there). */
	struct img img;
	int keeper;		/* made here or by an ancestor before it forked */
};

struct ghost_rst {
	RemapFilePathEntry **remaps;
	int nr_remaps;
	pid_t *dead;		/* pids of PROCFS remaps */
	int nr_dead;
	struct rst_ghost *g;
	int nr_g;
};

/* ---- dump ---- */

static int add_remap(struct ghost_dump *s, uint32_t orig_id, uint32_t remap_id, const char *what)
{
	struct remap *n = realloc(s->r, (s->nr_r + 1) * sizeof(*n));
	if (!n) {
		pr_err("%s: out of memory saving it as a deleted file", what);
		return -1;
	}
	s->r = n;
	s->r[s->nr_r++] = (struct remap){ orig_id, remap_id, REMAP_TYPE__GHOST };
	return 0;
}

int ghost_save_linked(struct file_table *t, uint32_t file_id, uint32_t link_id, const char *what)
{
	struct ghost_dump *s = files_dump_state(t, &fd_kind_ghost);
	if (add_remap(s, file_id, link_id, what) < 0)
		return -1;
	s->r[s->nr_r - 1].type = REMAP_TYPE__LINKED;
	return 0;
}

int ghost_save_dead_pid(struct file_table *t, uint32_t file_id, pid_t pid, const char *what)
{
	struct ghost_dump *s = files_dump_state(t, &fd_kind_ghost);
	/* once per pid, as CRIU: one helper holds it for all its files */
	for (int i = 0; i < s->nr_r; i++)
		if (s->r[i].type == REMAP_TYPE__PROCFS && s->r[i].remap_id == (uint32_t)pid)
			return 0;
	if (add_remap(s, file_id, pid, what) < 0)
		return -1;
	s->r[s->nr_r - 1].type = REMAP_TYPE__PROCFS;
	return 0;
}

/* What the deleted symlink src (a /proc link to an O_PATH fd on it) points
 * to, malloc'ed; NULL (reported) if it can't be read whole. */
static char *read_target(const char *src, const struct stat *st, const char *what)
{
	char buf[PATH_MAX];
	/* the /proc link leads to the symlink itself, not followed further */
	int fd = open(src, O_PATH | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : readlinkat(fd, "", buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n < 0 || n != st->st_size) {
		pr_perror("%s: can't read what the deleted symlink points to", what);
		return NULL;
	}
	buf[n] = 0;
	char *t = strdup(buf);
	if (!t)
		pr_err("%s: out of memory saving it as a deleted symlink", what);
	return t;
}

int ghost_save(struct file_table *t, const struct opts *o, const char *src, bool readable,
	       const struct stat *st, uint32_t file_id, const char *what)
{
	struct ghost_dump *s = files_dump_state(t, &fd_kind_ghost);
	for (int i = 0; i < s->nr_g; i++)
		if (s->g[i].st.st_dev == st->st_dev && s->g[i].st.st_ino == st->st_ino)
			return add_remap(s, file_id, s->g[i].id, what);

	/* As CRIU: the space the file takes (holes are not saved). */
	unsigned long long used = (unsigned long long)st->st_blocks * 512;
	if (used > o->ghost_limit) {
		pr_err("%s is deleted and takes %llu bytes, more than the ghost limit of %llu bytes; "
		       "raise it with --ghost-limit SIZE", what, used, o->ghost_limit);
		return -1;
	}
	struct ghost *n = realloc(s->g, (s->nr_g + 1) * sizeof(*n));
	if (!n) {
		pr_err("%s: out of memory saving it as a deleted file", what);
		return -1;
	}
	s->g = n;
	struct ghost *g = &s->g[s->nr_g];
	*g = (struct ghost){ .id = s->nr_g + 1, .st = *st, .fd = -1, .fiemap = !o->no_ghost_fiemap };
	/* Only a regular file has bytes to save, a symlink its target: a
	 * directory, FIFO or device is remade from its entry alone (opening
	 * those could block or act on the device). */
	if (S_ISLNK(st->st_mode)) {
		if (!(g->target = read_target(src, st, what)))
			return -1;
	} else if (S_ISREG(st->st_mode))
		/* Through /proc the file opens for reading whatever the fd's mode:
		 * so as the task could read it, or else as the client (util/fsop.h) */
		g->fd = fs_open_task_file(src, readable);
	if (S_ISREG(st->st_mode) && g->fd < 0) {
		pr_perror("%s: can't open it to save its bytes%s", what,
			  readable ? "" : " (the task's fd does not read it, nor may the client)");
		return -1;
	}
	if (!(g->what = strdup(what))) {
		pr_err("%s: out of memory saving it as a deleted file", what);
		if (g->fd >= 0)
			close(g->fd);
		free(g->target);
		return -1;
	}
	s->nr_g++;
	return add_remap(s, file_id, g->id, what);
}

bool ghost_is_remapped(const struct file_table *t, uint32_t file_id)
{
	const struct ghost_dump *s = files_dump_state(t, &fd_kind_ghost);
	for (int i = 0; i < s->nr_r; i++)
		if (s->r[i].orig_id == file_id && s->r[i].type == REMAP_TYPE__GHOST)
			return true;
	return false;
}

bool ghost_has_inode(const struct file_table *t, uint32_t kdev, uint64_t ino)
{
	const struct ghost_dump *s = files_dump_state(t, &fd_kind_ghost);
	for (int i = 0; i < s->nr_g; i++)
		if (s->g[i].st.st_ino == ino &&
		    ((major(s->g[i].st.st_dev) << 20) | minor(s->g[i].st.st_dev)) == kdev)
			return true;
	return false;
}

static int copy_range(struct img *img, const struct ghost *g, uint8_t *buf, uint64_t off, uint64_t len)
{
	while (len) {
		size_t want = len < COPY_BUF ? len : COPY_BUF;
		ssize_t n = pread(g->fd, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_err("%s: can't read its bytes at offset %llu: %s", g->what,
			       (unsigned long long)off, n < 0 ? strerror(errno) : "the file shrank");
			return -1;
		}
		if (img_write_raw(img, buf, n) < 0)
			return -1;
		off += n;
		len -= n;
	}
	return 0;
}

static int write_chunk(struct img *img, const struct ghost *g, uint8_t *buf, uint64_t off, uint64_t len)
{
	GhostChunkEntry c = GHOST_CHUNK_ENTRY__INIT;
	c.off = off;
	c.len = len;
	if (img_write(img, &c.base) < 0)
		return -1;
	return copy_range(img, g, buf, off, len);
}

/* The data of the file as (chunk entry, bytes) pairs, holes left out,
 * found by SEEK_DATA and SEEK_HOLE. */
static int write_data_ranges(struct img *img, const struct ghost *g, uint8_t *buf)
{
	uint64_t size = g->st.st_size, off = 0;
	int ret = 0;

	while (off < size && ret == 0) {
		off_t data = lseek(g->fd, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;		/* a hole to the end */
		if (data < 0)
			data = off;	/* no hole support: all data */
		if ((uint64_t)data >= size)
			break;
		off_t hole = lseek(g->fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = size;
		ret = write_chunk(img, g, buf, data, hole - data);
		off = hole;
	}
	return ret;
}

#define EXTENTS_AT_ONCE 64

/* The same, the data being the file's extents (FS_IOC_FIEMAP, after a
 * sync; preallocated extents count as data). -2 if the file system
 * can't tell them. */
static int write_extents(struct img *img, const struct ghost *g, uint8_t *buf)
{
	size_t len = sizeof(struct fiemap) + EXTENTS_AT_ONCE * sizeof(struct fiemap_extent);
	struct fiemap *fm = malloc(len);
	uint64_t size = g->st.st_size, pos = 0;
	bool last = false;
	int ret = 0;

	if (!fm) {
		pr_err("%s: out of memory mapping its extents", g->what);
		return -1;
	}
	while (!last && pos < size && ret == 0) {
		memset(fm, 0, len);
		fm->fm_start = pos;
		fm->fm_length = size - pos;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = EXTENTS_AT_ONCE;
		if (ioctl(g->fd, FS_IOC_FIEMAP, fm) < 0) {
			if (errno == EOPNOTSUPP)
				ret = -2;
			else
				ret = -1, pr_perror("%s: can't map its extents", g->what);
			break;
		}
		if (!fm->fm_mapped_extents)
			break;
		for (unsigned i = 0; i < fm->fm_mapped_extents && !last && ret == 0; i++) {
			const struct fiemap_extent *x = &fm->fm_extents[i];
			uint64_t start = x->fe_logical > pos ? x->fe_logical : pos;
			uint64_t end = x->fe_logical + x->fe_length;
			last = x->fe_flags & FIEMAP_EXTENT_LAST;
			if (end > size)
				end = size;
			if (start < end)
				ret = write_chunk(img, g, buf, start, end - start);
			if (x->fe_logical + x->fe_length > pos)
				pos = x->fe_logical + x->fe_length;
		}
	}
	free(fm);
	return ret;
}

/* The data of the file, holes left out, as --ghost-fiemap says to find
 * it (as CRIU: by seeking where the file system maps no extents). */
static int write_chunks(struct img *img, const struct ghost *g)
{
	uint8_t *buf = malloc(COPY_BUF);
	int ret;

	if (!buf) {
		pr_err("%s: out of memory copying its bytes", g->what);
		return -1;
	}
	ret = g->fiemap ? write_extents(img, g, buf) : -2;
	if (ret == -2)
		ret = write_data_ranges(img, g, buf);
	free(buf);
	return ret;
}

static int write_ghost(int dirfd, const struct ghost *g)
{
	struct img img;
	GhostFileEntry e = GHOST_FILE_ENTRY__INIT;
	Timeval atim = TIMEVAL__INIT, mtim = TIMEVAL__INIT;

	e.uid = userns_dump_id(USERNS_UID, g->st.st_uid);
	e.gid = userns_dump_id(USERNS_GID, g->st.st_gid);
	e.mode = g->st.st_mode;
	e.has_dev = 1;	/* the kernel's own encoding, as CRIU stores it */
	e.dev = (major(g->st.st_dev) << 20) | minor(g->st.st_dev);
	e.has_ino = 1;
	e.ino = g->st.st_ino;
	atim.tv_sec = g->st.st_atim.tv_sec;
	atim.tv_usec = g->st.st_atim.tv_nsec / 1000;
	mtim.tv_sec = g->st.st_mtim.tv_sec;
	mtim.tv_usec = g->st.st_mtim.tv_nsec / 1000;
	e.atim = &atim;
	e.mtim = &mtim;
	if (S_ISCHR(g->st.st_mode) || S_ISBLK(g->st.st_mode)) {
		e.has_rdev = 1;	/* as stat gives it, mknod takes it (as CRIU) */
		e.rdev = g->st.st_rdev;
	}
	if (g->target)
		e.symlnk_target = g->target;	/* and no bytes */
	if (S_ISREG(g->st.st_mode)) {
		e.has_chunks = 1;
		e.chunks = 1;
		e.has_size = 1;
		e.size = g->st.st_size;
	}

	if (img_create(dirfd, &img, IMG_GHOST_FILE, g->id) < 0)
		return -1;
	if (img_write(&img, &e.base) < 0 || (S_ISREG(g->st.st_mode) && write_chunks(&img, g) < 0)) {
		img_abort(&img);
		return -1;
	}
	return img_finish(&img);
}

static int ghost_write_images(struct file_table *t, int dirfd)
{
	struct ghost_dump *s = files_dump_state(t, &fd_kind_ghost);
	struct img img;

	if (!s->nr_r)
		return 0;
	for (int i = 0; i < s->nr_g; i++)
		if (write_ghost(dirfd, &s->g[i]) < 0)
			return -1;
	if (img_create(dirfd, &img, IMG_REMAP_FPATH, 0) < 0)
		return -1;
	for (int i = 0; i < s->nr_r; i++) {
		RemapFilePathEntry e = REMAP_FILE_PATH_ENTRY__INIT;
		e.orig_id = s->r[i].orig_id;
		e.remap_id = s->r[i].remap_id;
		e.has_remap_type = 1;
		e.remap_type = s->r[i].type;
		if (img_write(&img, &e.base) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

static void ghost_free(struct file_table *t)
{
	struct ghost_dump *s = files_dump_state(t, &fd_kind_ghost);
	for (int i = 0; i < s->nr_g; i++) {
		if (s->g[i].fd >= 0)
			close(s->g[i].fd);
		free(s->g[i].target);
		free(s->g[i].what);
	}
	free(s->g);
	free(s->r);
}

/* ---- restore ---- */

static int load_ghost(struct ghost_rst *s, int dirfd, uint32_t id)
{
	struct img img;

	for (int i = 0; i < s->nr_g; i++)
		if (s->g[i].id == id)
			return 0;
	struct rst_ghost *n = realloc(s->g, (s->nr_g + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory loading ghost file %x", id);
		return -1;
	}
	s->g = n;
	struct rst_ghost *g = &s->g[s->nr_g];
	*g = (struct rst_ghost){ .id = id, .keeper = -1, .img.fd = -1 };
	if (img_open(dirfd, &img, IMG_GHOST_FILE, id) < 0)
		return -1;
	if (img_read_one(&img, &ghost_file_entry__descriptor, (ProtobufCMessage **)&g->e) < 0) {
		img_close(&img);
		return -1;
	}
	g->img = img;
	s->nr_g++;
	mode_t m = g->e->mode;
	if (!S_ISREG(m) && !S_ISDIR(m) && !S_ISFIFO(m) && !S_ISCHR(m) && !S_ISBLK(m) && !S_ISLNK(m)) {
		pr_err("image %s: stasis can't recreate a deleted %s (mode %o)", g->img.name,
		       files_mode_name(m), m);
		return -1;
	}
	if (S_ISLNK(m) && !g->e->symlnk_target) {
		pr_err("image %s: deleted symlink without its target", g->img.name);
		return -1;
	}
	if ((S_ISCHR(m) || S_ISBLK(m)) && !g->e->has_rdev) {
		pr_err("image %s: a deleted device without its device number", g->img.name);
		return -1;
	}
	return 0;
}

static int add_dead_pid(struct ghost_rst *s, uint32_t pid)
{
	if (!pid || pid > INT32_MAX) {
		pr_err("image remap-fpath.img: bad pid %u of a dead process", pid);
		return -1;
	}
	for (int i = 0; i < s->nr_dead; i++)
		if (s->dead[i] == (pid_t)pid)
			return 0;
	pid_t *n = realloc(s->dead, (s->nr_dead + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory loading remap-fpath.img");
		return -1;
	}
	s->dead = n;
	s->dead[s->nr_dead++] = pid;
	return 0;
}

const RegFileEntry *ghost_link_of(const struct rst_files *rf, uint32_t file_id, int nth)
{
	const struct ghost_rst *s = files_rst_state(rf, &fd_kind_ghost);
	for (int i = 0; i < s->nr_remaps; i++) {
		const RemapFilePathEntry *r = s->remaps[i];
		if (r->has_remap_type && r->remap_type != REMAP_TYPE__LINKED)
			continue;
		if (file_id ? r->orig_id != file_id : nth--)
			continue;
		const FileEntry *l = files_find(rf, r->remap_id);
		return l ? l->reg : NULL;
	}
	return NULL;
}

int files_dead_pids(const struct rst_files *rf, const pid_t **pids)
{
	const struct ghost_rst *s = files_rst_state(rf, &fd_kind_ghost);
	*pids = s->dead;
	return s->nr_dead;
}

static int ghost_load(struct rst_files *rf, int dirfd)
{
	struct ghost_rst *s = files_rst_state(rf, &fd_kind_ghost);
	if (img_load_all(dirfd, IMG_REMAP_FPATH, 0, (void ***)&s->remaps, &s->nr_remaps) < 0)
		return -1;
	for (int i = 0; i < s->nr_remaps; i++) {
		const RemapFilePathEntry *r = s->remaps[i];
		if (r->has_remap_type && r->remap_type == REMAP_TYPE__PROCFS) {
			if (add_dead_pid(s, r->remap_id) < 0)
				return -1;
			continue;
		}
		if (!r->has_remap_type || r->remap_type == REMAP_TYPE__LINKED) {
			/* (no type: an old CRIU's linked remap) */
			const FileEntry *l = files_find(rf, r->remap_id);
			if (!l || !l->reg || !l->reg->name) {
				pr_err("image remap-fpath.img: file %u is linked as file %u, which "
				       "files.img lacks", r->orig_id, r->remap_id);
				return -1;
			}
			continue;
		}
		if (!r->has_remap_type || r->remap_type != REMAP_TYPE__GHOST) {
			pr_err("image remap-fpath.img: file %u is remapped in a way stasis can't "
			       "restore (type %d; only ghost files and dead processes' /proc "
			       "entries are supported)", r->orig_id, r->has_remap_type ? (int)r->remap_type : 0);
			return -1;
		}
		if (load_ghost(s, dirfd, r->remap_id) < 0)
			return -1;
	}
	return 0;
}

static void ghost_unload(struct rst_files *rf)
{
	struct ghost_rst *s = files_rst_state(rf, &fd_kind_ghost);
	for (int i = 0; i < s->nr_remaps; i++)
		img_free(s->remaps[i]);
	free(s->remaps);
	free(s->dead);
	for (int i = 0; i < s->nr_g; i++) {
		if (s->g[i].e)
			img_free(s->g[i].e);
		img_close(&s->g[i].img);
	}
	free(s->g);
}

/* len bytes of the image (to its end if len is -1) into fd at off. */
static int copy_out(struct img *img, int fd, uint8_t *buf, uint64_t off, uint64_t len)
{
	while (len) {
		size_t want = len < COPY_BUF ? len : COPY_BUF;
		ssize_t n = read(img->fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n == 0 && len != (uint64_t)-1)) {
			pr_err("image %s is truncated", img->name);
			return -1;
		}
		if (n == 0)
			return 0;
		if (pwrite_all(fd, buf, n, off) < 0) {
			pr_perror("can't write the bytes of image %s", img->name);
			return -1;
		}
		off += n;
		if (len != (uint64_t)-1)
			len -= n;
	}
	return 0;
}

/* The bytes of ghost g into fd: whole or in chunks, as the image has
 * them; its image is used up (see struct rst_ghost). */
static int fill_bytes(struct rst_ghost *g, int fd)
{
	struct img *img = &g->img;
	GhostChunkEntry *c;
	uint64_t size = g->e->has_size ? g->e->size : 0;
	uint8_t *buf = malloc(COPY_BUF);
	int ret = 0;

	if (!buf) {
		pr_err("image %s: out of memory to copy it", img->name);
		return -1;
	}
	if (img->fd < 0) {
		pr_err("image %s was read already", img->name);
		free(buf);
		return -1;
	}
	if (!g->e->chunks)
		ret = copy_out(img, fd, buf, 0, (uint64_t)-1);
	else {
		while ((ret = img_read(img, &ghost_chunk_entry__descriptor, (ProtobufCMessage **)&c)) == 1) {
			uint64_t off = c->off, len = c->len;
			img_free(c);
			if (off > size || len > size - off) {
				pr_err("image %s: chunk %llu+%llu outside the file's %llu bytes", img->name,
				       (unsigned long long)off, (unsigned long long)len,
				       (unsigned long long)size);
				ret = -1;
				break;
			}
			if ((ret = copy_out(img, fd, buf, off, len)) < 0)
				break;
		}
	}
	img_close(img);
	free(buf);
	return ret < 0 ? -1 : 0;
}

static void remove_node(const char *path, mode_t mode)
{
	if (S_ISDIR(mode))
		rmdir(path);
	else
		unlink(path);
}

/* A new node at path of ghost e's kind, opened, failing with EEXIST if
 * something is there: a regular file to be filled, a directory, a FIFO
 * read-write (which never blocks), a symlink to its target or a device
 * by O_PATH only (opening a device could act on it). The fd, or -1 with
 * errno set. */
static int make_node(const char *path, const GhostFileEntry *e)
{
	mode_t type = e->mode & S_IFMT;
	int fd, err;

	if (S_ISREG(type))
		return open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (S_ISLNK(type) ? symlink(e->symlnk_target, path) :
	    S_ISDIR(type) ? mkdir(path, 0700) : mknod(path, type | 0600, e->rdev))
		return -1;
	if (S_ISDIR(type))
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	else if (S_ISFIFO(type))
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	else
		fd = open(path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		err = errno;
		remove_node(path, type);
		errno = err;
	}
	return fd;
}

/* Drops the last directory of path, keeping the file name: /a/b/f -> /a/f.
 * false at the root. */
static bool up_one_dir(char *path)
{
	char *name = strrchr(path, '/');
	if (!name || name == path)
		return false;
	*name = 0;
	char *dir = strrchr(path, '/');
	*name = '/';
	if (!dir)
		return false;
	memmove(dir, name, strlen(name) + 1);
	return true;
}

/* A new file at path, or next to it if something is there now. If its
 * directory is gone too, in the nearest directory above that exists (the
 * name the task sees then differs, the bytes don't). */
static int create_at(const char *who, const char *path, const GhostFileEntry *e, uint32_t id,
		     char *made, size_t len)
{
	int fd;

	snprintf(made, len, "%s", path);
	for (;;) {
		fd = make_node(made, e);
		if (fd < 0 && errno == EEXIST) {
			size_t n = strlen(made);
			snprintf(made + n, len - n, ".stasis-ghost.%x", id);
			fd = make_node(made, e);
		}
		if (fd >= 0 || errno != ENOENT || !up_one_dir(made))
			break;
	}
	if (fd < 0)
		pr_perror("%s: can't recreate deleted %s %s (as %s)", who, files_mode_name(e->mode), path, made);
	else if (strcmp(made, path))
		pr_info("%s: deleted file %s recreated as %s", who, path, made);
	return fd;
}

/* A deleted symlink, made again at made (fd: O_PATH on it): its owner and
 * times; its mode is always 0777. */
static int symlink_attrs(int fd, const GhostFileEntry *e, const char *made, const char *who)
{
	if (fchownat(fd, "", userns_rst_id(USERNS_UID, e->uid), userns_rst_id(USERNS_GID, e->gid),
		     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		pr_perror("%s: can't give recreated deleted symlink %s its owner", who, made);
		return -1;
	}
	if (e->atim && e->mtim) {
		struct timespec ts[2] = {
			{ e->atim->tv_sec, e->atim->tv_usec * 1000 },
			{ e->mtim->tv_sec, e->mtim->tv_usec * 1000 },
		};
		if (utimensat(AT_FDCWD, made, ts, AT_SYMLINK_NOFOLLOW) < 0)
			pr_warn("%s: can't give recreated deleted symlink %s its times: %m", who, made);
	}
	return 0;
}

/* Owner, mode and times of ghost e onto the node open at fd, through
 * its /proc link (an O_PATH fd takes no fchmod). */
static int apply_attrs(int fd, const GhostFileEntry *e, const char *who, const char *made)
{
	char self[64];

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (chown(self, userns_rst_id(USERNS_UID, e->uid), userns_rst_id(USERNS_GID, e->gid)) < 0 ||
	    chmod(self, e->mode & 07777) < 0) {
		pr_perror("%s: can't give recreated deleted file %s its owner and mode", who, made);
		return -1;
	}
	if (e->atim && e->mtim) {
		struct timespec ts[2] = {
			{ e->atim->tv_sec, e->atim->tv_usec * 1000 },
			{ e->mtim->tv_sec, e->mtim->tv_usec * 1000 },
		};
		if (utimensat(AT_FDCWD, self, ts, 0) < 0)
			pr_warn("%s: can't give recreated deleted file %s its times: %m", who, made);
	}
	return 0;
}

/* A regular ghost's bytes and size. */
static int fill_file(struct rst_ghost *g, int fd, const char *who, const char *made)
{
	if (fill_bytes(g, fd) < 0) {
		pr_err("%s: can't fill recreated deleted file %s", who, made);
		return -1;
	}
	if (g->e->has_size && ftruncate(fd, g->e->size) < 0) {
		pr_perror("%s: can't give recreated deleted file %s its size", who, made);
		return -1;
	}
	return 0;
}

/* The fd that holds a recreated regular file: read-only, as a file open
 * for writing can't become a task's executable (PR_SET_MM_MAP fails
 * with EACCES). Others are held by the fd they were made with. */
static int keeper_of(int fd, mode_t mode, const char *who, const char *path)
{
	if (!S_ISREG(mode))
		return fd;
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	int ro = open(self, O_RDONLY | O_CLOEXEC);
	if (ro < 0)
		pr_perror("%s: can't reopen recreated deleted file %s", who, path);
	close(fd);
	return ro;
}

/* Recreates the ghost with its bytes and attributes and removes it at
 * once: only g->keeper holds it, as only the task held it at dump. */
static int recreate(struct rst_files *rf, struct rst_ghost *g, const char *path, const char *who)
{
	char made[PATH_MAX + 32];
	const GhostFileEntry *e = g->e;
	int fd = create_at(who, path, e, g->id, made, sizeof(made));
	if (fd < 0)
		return -1;
	int ret;
	if (S_ISLNK(e->mode)) {
		img_close(&g->img);	/* no bytes */
		ret = symlink_attrs(fd, e, made, who);
	} else {
		ret = S_ISREG(e->mode) ? fill_file(g, fd, who, made) : 0;
		if (ret == 0)
			ret = apply_attrs(fd, e, who, made);
	}
	if ((S_ISDIR(e->mode) ? rmdir(made) : unlink(made)) < 0 && ret == 0) {
		pr_perror("%s: can't remove recreated deleted file %s", who, made);
		ret = -1;
	}
	if (ret < 0) {
		close(fd);
		return -1;
	}
	g->keeper = files_keep_fd(rf, keeper_of(fd, e->mode, who, path), path);
	return g->keeper < 0 ? -1 : 0;
}

int ghost_open(struct rst_files *rf, const RegFileEntry *r, uint32_t flags)
{
	struct ghost_rst *s = files_rst_state(rf, &fd_kind_ghost);
	struct rst_ghost *g = NULL;
	char what[PATH_MAX + 32];

	for (int i = 0; i < s->nr_remaps && !g; i++) {
		if (s->remaps[i]->orig_id != r->id || s->remaps[i]->remap_type != REMAP_TYPE__GHOST)
			continue;
		for (int j = 0; j < s->nr_g; j++)
			if (s->g[j].id == s->remaps[i]->remap_id)
				g = &s->g[j];
	}
	if (!g)
		return -2;
	/* Our memory is our own since the fork: a keeper is here only if we
	 * or an ancestor made it. The root's file pool opens every file and
	 * mapped ghost of the tree first, so that is the usual case. */
	char at[PATH_MAX + 32];
	if (g->keeper < 0 && recreate(rf, g, reg_ns_path(rf, r, at, sizeof(at)), rf->who) < 0)
		return -1;
	if (S_ISLNK(g->e->mode)) {
		/* O_PATH, nothing of its own: through /proc it would lose
		 * O_NOFOLLOW, which opens the /proc link itself */
		int fd = dup(g->keeper);
		if (fd < 0)
			pr_perror("%s: can't reopen recreated deleted symlink %s", rf->who, r->name);
		return fd;
	}
	snprintf(what, sizeof(what), "recreated deleted file %s", r->name);
	return files_reopen_kept(rf, g->keeper, flags, r->pos, what);
}

/* The file whose ghost was inode ino of device kdev, or NULL. */
static const FileEntry *ghost_of_inode(const struct rst_files *rf, uint32_t kdev, uint64_t ino)
{
	const struct ghost_rst *s = files_rst_state(rf, &fd_kind_ghost);

	for (int i = 0; i < s->nr_remaps; i++) {
		if (s->remaps[i]->remap_type != REMAP_TYPE__GHOST)
			continue;	/* a link or a dead process's pid, not a ghost's id */
		const FileEntry *fe = files_find(rf, s->remaps[i]->orig_id);
		for (int j = 0; fe && fe->reg && j < s->nr_g; j++) {
			const GhostFileEntry *e = s->g[j].e;
			if (s->g[j].id == s->remaps[i]->remap_id && e->has_dev && e->has_ino &&
			    e->dev == kdev && e->ino == ino)
				return fe;
		}
	}
	return NULL;
}

int ghost_open_inode(struct rst_files *rf, uint32_t kdev, uint64_t ino, uint32_t flags)
{
	const FileEntry *fe = ghost_of_inode(rf, kdev, ino);
	if (!fe)
		return -2;
	RegFileEntry r = *fe->reg;
	r.pos = 0;
	return ghost_open(rf, &r, flags);
}

bool ghost_is_inode(const struct rst_files *rf, uint32_t kdev, uint64_t ino)
{
	return ghost_of_inode(rf, kdev, ino) != NULL;
}

const struct fd_kind fd_kind_ghost = {
	.name = "ghost", .dump_state = sizeof(struct ghost_dump), .rst_state = sizeof(struct ghost_rst),
	.write_images = ghost_write_images, .free_images = ghost_free,
	.load_images = ghost_load, .unload_images = ghost_unload,
};
