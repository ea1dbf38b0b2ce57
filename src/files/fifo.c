/* FIFOs (named pipes): a fifo_entry per open file description, with the
 * FIFO's path in a reg_file_entry (regf_id) and its inode as pipe_id.
 * Unread bytes are saved once per FIFO in fifo-data.img (the format of
 * pipes-data.img), copied with tee() so the task loses nothing. On
 * restore the FIFO is first opened read-write, which never blocks and
 * keeps it alive while the bytes go back in and the ends open; that
 * "keeper" fd goes away with the other foreign fds of the process. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "files/files.h"
#include "image/img.h"
#include "image/magic.h"
#include "util/log.h"

#define FIFO_DATA_MAX (64u << 20)

struct fifo_dump_state {
	struct pipe_data *data;
	int nr;
};

struct fifo_rst_state {
	struct pipe_data *data;
	int nr;
	struct made_fifo { uint32_t pipe_id; int keeper; } *made;
	int nr_made;
};

static bool fifo_owns(const struct fd_facts *f)
{
	return S_ISFIFO(f->st.st_mode) && strncmp(f->path, "pipe:[", 6) != 0;
}

static bool have_data(const struct fifo_dump_state *s, uint32_t pipe_id)
{
	for (int i = 0; i < s->nr; i++)
		if (s->data[i].pipe_id == pipe_id)
			return true;
	return false;
}

/* Copies the unread bytes through a read end of our own (the FIFO opened
 * again through /proc) and a pipe of ours, leaving them in place. */
static int copy_bytes(int rd, struct pipe_data *d, const char *what)
{
	int tmp[2], avail = 0, ret = -1;
	int size = fcntl(rd, F_GETPIPE_SZ);

	if (size <= 0 || ioctl(rd, FIONREAD, &avail) < 0 || pipe2(tmp, O_CLOEXEC | O_NONBLOCK) < 0) {
		pr_perror("%s: can't inspect the FIFO", what);
		return -1;
	}
	d->size = size;
	if (avail == 0) {
		ret = 0;
		goto out;
	}
	if (fcntl(tmp[1], F_SETPIPE_SZ, size) < size || !(d->buf = malloc(avail))) {
		pr_perror("%s: can't make room for the %d unread bytes", what, avail);
		goto out;
	}
	ssize_t n = tee(rd, tmp[1], avail, SPLICE_F_NONBLOCK);
	if (n != avail || read(tmp[0], d->buf, n) != n) {
		pr_perror("%s: can't copy the %d unread bytes", what, avail);
		free(d->buf);
		d->buf = NULL;
		goto out;
	}
	d->len = n;
	ret = 0;
out:
	close(tmp[0]);
	close(tmp[1]);
	return ret;
}

static int save_data(struct fifo_dump_state *s, const struct fd_facts *f, const char *what)
{
	char path[64];
	struct pipe_data d = { .pipe_id = f->st.st_ino };

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", f->pid, f->fd);
	int rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rd < 0) {
		pr_perror("%s: can't open the FIFO to read its unread bytes", what);
		return -1;
	}
	int ret = copy_bytes(rd, &d, what);
	close(rd);
	if (ret < 0)
		return -1;
	struct pipe_data *n = realloc(s->data, (s->nr + 1) * sizeof(*n));
	if (!n) {
		free(d.buf);
		return -1;
	}
	s->data = n;
	s->data[s->nr++] = d;
	return 0;
}

static int fifo_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	char what[PATH_MAX + 64];
	uint32_t regf_id;

	snprintf(what, sizeof(what), "pid %d: fd %d (FIFO %s)", f->pid, f->fd, f->path);
	if (f->path[0] != '/' || strstr(f->path, " (deleted)")) {
		pr_err("%s has no path to reopen it by (deleted?); stasis can't dump it", what);
		return -1;
	}
	if (!t->fifo && !(t->fifo = calloc(1, sizeof(*t->fifo))))
		return -1;
	if (reg_file_add(t, f->path, f->fi.flags & ~O_CLOEXEC, 0, &regf_id) < 0)
		return -1;
	FifoEntry *e = calloc(1, sizeof(*e));
	if (!e)
		return -1;
	fifo_entry__init(e);
	e->id = fe->id;
	e->pipe_id = f->st.st_ino;
	e->has_regf_id = 1;
	e->regf_id = regf_id;
	fe->fifo = e;
	return have_data(t->fifo, e->pipe_id) ? 0 : save_data(t->fifo, f, what);
}

static int fifo_write_data(struct file_table *t, int dirfd)
{
	struct img img;
	if (!t->fifo || !t->fifo->nr)
		return 0;
	if (img_create(dirfd, &img, "fifo-data.img", FIFO_DATA_MAGIC) < 0)
		return -1;
	for (int i = 0; i < t->fifo->nr; i++) {
		const struct pipe_data *d = &t->fifo->data[i];
		PipeDataEntry e = PIPE_DATA_ENTRY__INIT;
		e.pipe_id = d->pipe_id;
		e.bytes = d->len;
		e.has_size = 1;
		e.size = d->size;
		if (img_write(&img, &e.base) < 0 || img_write_raw(&img, d->buf, d->len) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

static void fifo_free_data(struct file_table *t)
{
	if (!t->fifo)
		return;
	for (int i = 0; i < t->fifo->nr; i++)
		free(t->fifo->data[i].buf);
	free(t->fifo->data);
	free(t->fifo);
	t->fifo = NULL;
}

/* ---- restore ---- */

static int fifo_load_data(struct rst_files *rf, int dirfd)
{
	struct img img;
	PipeDataEntry *e;
	int ret;

	if (!(rf->fifo = calloc(1, sizeof(*rf->fifo))))
		return -1;
	struct fifo_rst_state *s = rf->fifo;
	if (img_open(dirfd, &img, "fifo-data.img", FIFO_DATA_MAGIC, true) < 0)
		return errno == ENOENT ? 0 : -1;
	while ((ret = img_read(&img, &pipe_data_entry__descriptor, (ProtobufCMessage **)&e)) == 1) {
		struct pipe_data d = { e->pipe_id, e->has_size ? e->size : 0, e->bytes, NULL };
		img_free(e);
		struct pipe_data *n = realloc(s->data, (s->nr + 1) * sizeof(*n));
		if (n)
			s->data = n;
		if (!n || d.len > FIFO_DATA_MAX || !(d.buf = malloc(d.len ? d.len : 1))) {
			pr_err("image fifo-data.img: bad entry for FIFO %u (%u bytes)", d.pipe_id, d.len);
			ret = -1;
			break;
		}
		if (img_read_raw(&img, d.buf, d.len) < 0) {
			free(d.buf);
			ret = -1;
			break;
		}
		s->data[s->nr++] = d;
	}
	img_close(&img);
	return ret;
}

static void fifo_unload_data(struct rst_files *rf)
{
	struct fifo_rst_state *s = rf->fifo;
	if (!s)
		return;
	for (int i = 0; i < s->nr; i++)
		free(s->data[i].buf);
	free(s->data);
	free(s->made);
	free(s);
	rf->fifo = NULL;
}

static const struct pipe_data *find_data(const struct fifo_rst_state *s, uint32_t pipe_id)
{
	for (int i = 0; i < s->nr; i++)
		if (s->data[i].pipe_id == pipe_id)
			return &s->data[i];
	return NULL;
}

/* Opens the FIFO at path read-write (the keeper) and puts its bytes back. */
static int open_keeper(struct rst_files *rf, uint32_t pipe_id, const char *path, const char *who)
{
	struct fifo_rst_state *s = rf->fifo;
	struct stat st;
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("%s: can't reopen FIFO %s", who, path);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		pr_err("%s: %s was a FIFO at dump and is not one now", who, path);
		goto err;
	}
	const struct pipe_data *d = find_data(s, pipe_id);
	if (d && d->size && fcntl(fd, F_SETPIPE_SZ, d->size) < 0)
		pr_warn("can't give FIFO %s its capacity of %u bytes: %m", path, d->size);
	if (d && d->len && write(fd, d->buf, d->len) != (ssize_t)d->len) {
		pr_perror("can't put %u bytes back into FIFO %s", d->len, path);
		goto err;
	}
	struct made_fifo *m = realloc(s->made, (s->nr_made + 1) * sizeof(*m));
	if (!m)
		goto err;
	s->made = m;
	if ((fd = files_keep_fd(rf, fd, path)) < 0)
		return -1;
	s->made[s->nr_made++] = (struct made_fifo){ pipe_id, fd };
	return fd;
err:
	close(fd);
	return -1;
}

static int fifo_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const FifoEntry *e = fe->fifo;
	const FileEntry *path_fe = e && e->has_regf_id ? files_find(rf, e->regf_id) : NULL;
	struct fifo_rst_state *s = rf->fifo;
	int keeper = -1;
	char self[64];

	if (!path_fe || !path_fe->reg || !path_fe->reg->name) {
		pr_err("image files.img: FIFO entry %u has no path", fe->id);
		return -1;
	}
	const RegFileEntry *r = path_fe->reg;
	/* Made here or by an ancestor before it forked: ours either way. */
	for (int i = 0; i < s->nr_made && keeper < 0; i++)
		if (s->made[i].pipe_id == e->pipe_id)
			keeper = s->made[i].keeper;
	if (keeper < 0 && (keeper = open_keeper(rf, e->pipe_id, r->name, rf->who)) < 0)
		return -1;
	/* With the keeper open, neither end blocks or fails to open. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", keeper);
	int fd = open(self, (r->flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fcntl(fd, F_SETFL, r->flags & (O_NONBLOCK | O_APPEND | O_ASYNC | O_DIRECT)) < 0) {
		pr_perror("%s: can't open an end of FIFO %s", rf->who, r->name);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static bool fifo_inherit_name(const FileEntry *fe, char *buf, size_t len)
{
	if (!fe->fifo)
		return false;
	snprintf(buf, len, "pipe:[%u]", fe->fifo->pipe_id);
	return true;
}

const struct fd_kind fd_kind_fifo = {
	.name = "fifo", .type = FD_TYPES__FIFO,
	.owns = fifo_owns, .dump = fifo_dump, .open = fifo_open,
	.write_images = fifo_write_data, .free_images = fifo_free_data,
	.load_images = fifo_load_data, .unload_images = fifo_unload_data,
	.inherit_name = fifo_inherit_name,
};
