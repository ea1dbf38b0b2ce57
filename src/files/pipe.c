/* Pipes: each end is a file description (pipe_entry) and the two ends
 * share a pipe_id (the pipe's inode). Unread bytes are saved once per
 * pipe in pipes-data.img, copied with tee() so the task loses nothing.
 * On restore the first end opened makes the pipe (capacity and bytes
 * back), the other end's entries take its other fd. */
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

#define PIPE_DATA_MAX (64u << 20)	/* F_SETPIPE_SZ can't exceed 1 MiB by default anyway */

static bool pipe_owns(const struct fd_facts *f)
{
	return S_ISFIFO(f->st.st_mode) && !strncmp(f->path, "pipe:[", 6);
}

static bool have_data(const struct file_table *t, uint32_t pipe_id)
{
	for (int i = 0; i < t->nr_pipes; i++)
		if (t->pipes[i].pipe_id == pipe_id)
			return true;
	return false;
}

/* Copies the unread bytes without taking them: tee() into a pipe of our
 * own, read from that. */
static int save_data(struct file_table *t, const struct fd_facts *f)
{
	char path[64];
	int rd, tmp[2] = { -1, -1 }, avail = 0, ret = -1;
	struct pipe_data d = { .pipe_id = f->st.st_ino };

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", f->pid, f->fd);
	rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rd < 0) {
		pr_perror("pid %d: can't open pipe of fd %d to read its data", f->pid, f->fd);
		return -1;
	}
	int size = fcntl(rd, F_GETPIPE_SZ);
	if (size <= 0 || ioctl(rd, FIONREAD, &avail) < 0 || pipe2(tmp, O_CLOEXEC | O_NONBLOCK) < 0) {
		pr_perror("pid %d: can't inspect pipe of fd %d", f->pid, f->fd);
		goto out;
	}
	d.size = size;
	if (avail > 0) {
		if (fcntl(tmp[1], F_SETPIPE_SZ, size) < size || !(d.buf = malloc(avail))) {
			pr_perror("pid %d: can't make room for the %d bytes in pipe of fd %d", f->pid, avail, f->fd);
			goto out;
		}
		ssize_t n = tee(rd, tmp[1], avail, SPLICE_F_NONBLOCK);
		if (n != avail || read(tmp[0], d.buf, n) != n) {
			pr_perror("pid %d: can't copy the %d bytes in pipe of fd %d", f->pid, avail, f->fd);
			free(d.buf);
			goto out;
		}
		d.len = n;
	}
	struct pipe_data *np = realloc(t->pipes, (t->nr_pipes + 1) * sizeof(*np));
	if (!np) {
		free(d.buf);
		goto out;
	}
	t->pipes = np;
	t->pipes[t->nr_pipes++] = d;
	ret = 0;
out:
	close(rd);
	if (tmp[0] >= 0) {
		close(tmp[0]);
		close(tmp[1]);
	}
	return ret;
}

static int pipe_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	PipeEntry *p = calloc(1, sizeof(*p));
	FownEntry *fown = calloc(1, sizeof(*fown));
	if (!p || !fown) {
		free(p);
		free(fown);
		return -1;
	}
	pipe_entry__init(p);
	fown_entry__init(fown);
	p->id = fe->id;
	p->pipe_id = f->st.st_ino;
	p->flags = f->fi.flags & ~O_CLOEXEC;
	p->fown = fown;
	fe->pipe = p;
	return have_data(t, p->pipe_id) ? 0 : save_data(t, f);
}

static int pipes_write_data(struct file_table *t, int dirfd)
{
	struct img img;
	if (!t->nr_pipes)
		return 0;
	if (img_create(dirfd, &img, "pipes-data.img", PIPES_DATA_MAGIC) < 0)
		return -1;
	for (int i = 0; i < t->nr_pipes; i++) {
		PipeDataEntry e = PIPE_DATA_ENTRY__INIT;
		e.pipe_id = t->pipes[i].pipe_id;
		e.bytes = t->pipes[i].len;
		e.has_size = 1;
		e.size = t->pipes[i].size;
		if (img_write(&img, &e.base) < 0 || img_write_raw(&img, t->pipes[i].buf, t->pipes[i].len) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

/* ---- restore ---- */

static int pipes_load_data(struct rst_files *rf, int dirfd)
{
	struct img img;
	PipeDataEntry *e;
	int ret;

	if (img_open(dirfd, &img, "pipes-data.img", PIPES_DATA_MAGIC, true) < 0)
		return errno == ENOENT ? 0 : -1;
	while ((ret = img_read(&img, &pipe_data_entry__descriptor, (ProtobufCMessage **)&e)) == 1) {
		struct pipe_data d = { e->pipe_id, e->has_size ? e->size : 0, e->bytes, NULL };
		img_free(e);
		struct pipe_data *np = realloc(rf->pipes, (rf->nr_pipes + 1) * sizeof(*np));
		if (np)
			rf->pipes = np;	/* the old array may be gone: keep the new one, even on error */
		if (!np || d.len > PIPE_DATA_MAX || !img_has(&img, d.len) || !(d.buf = malloc(d.len ? d.len : 1))) {
			pr_err("image pipes-data.img: bad entry for pipe %u (%u bytes)", d.pipe_id, d.len);
			ret = -1;
			break;
		}
		if (img_read_raw(&img, d.buf, d.len) < 0) {
			free(d.buf);
			ret = -1;
			break;
		}
		rf->pipes[rf->nr_pipes++] = d;
	}
	img_close(&img);
	return ret;
}

static const struct pipe_data *find_data(const struct rst_files *rf, uint32_t pipe_id)
{
	for (int i = 0; i < rf->nr_pipes; i++)
		if (rf->pipes[i].pipe_id == pipe_id)
			return &rf->pipes[i];
	return NULL;
}

/* A new pipe with the saved capacity and unread bytes. */
static struct made_pipe *make_pipe(struct rst_files *rf, uint32_t pipe_id)
{
	struct made_pipe *m = realloc(rf->made, (rf->nr_made + 1) * sizeof(*m));
	if (!m)
		return NULL;
	rf->made = m;
	m = &rf->made[rf->nr_made];
	if (pipe2(m->fd, 0) < 0) {
		pr_perror("can't make pipe %u", pipe_id);
		return NULL;
	}
	m->pipe_id = pipe_id;
	const struct pipe_data *d = find_data(rf, pipe_id);
	if (d && d->size && fcntl(m->fd[1], F_SETPIPE_SZ, d->size) < 0)
		pr_warn("can't give pipe %u its capacity of %u bytes: %m", pipe_id, d->size);
	if (d && d->len && write(m->fd[1], d->buf, d->len) != (ssize_t)d->len) {
		pr_perror("can't put %u bytes back into pipe %u", d->len, pipe_id);
		close(m->fd[0]);
		close(m->fd[1]);
		return NULL;
	}
	rf->nr_made++;
	return m;
}

static int pipe_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const PipeEntry *p = fe->pipe;
	struct made_pipe *m = NULL;

	if (!p) {
		pr_err("image files.img: pipe entry %u is empty", fe->id);
		return -1;
	}
	for (int i = 0; i < rf->nr_made && !m; i++)
		if (rf->made[i].pipe_id == p->pipe_id)
			m = &rf->made[i];
	if (!m && !(m = make_pipe(rf, p->pipe_id)))
		return -1;
	int end = (p->flags & O_ACCMODE) == O_RDONLY ? 0 : 1;
	int fd = dup(m->fd[end]);
	if (fd < 0 || fcntl(fd, F_SETFL, p->flags & (O_NONBLOCK | O_DIRECT)) < 0) {
		pr_perror("can't open an end of pipe %u", p->pipe_id);
		return -1;
	}
	return fd;
}

static void pipes_free_data(struct file_table *t)
{
	for (int i = 0; i < t->nr_pipes; i++)
		free(t->pipes[i].buf);
	free(t->pipes);
}

static void pipes_unload_data(struct rst_files *rf)
{
	for (int i = 0; i < rf->nr_pipes; i++)
		free(rf->pipes[i].buf);
	free(rf->pipes);
	free(rf->made);
	rf->pipes = NULL;
	rf->made = NULL;
	rf->nr_pipes = rf->nr_made = 0;
}

static bool pipe_inherit_name(const FileEntry *fe, char *buf, size_t len)
{
	if (!fe->pipe)
		return false;
	snprintf(buf, len, "pipe:[%u]", fe->pipe->pipe_id);
	return true;
}

const struct fd_kind fd_kind_pipe = {
	.name = "pipe", .type = FD_TYPES__PIPE,
	.owns = pipe_owns, .dump = pipe_dump, .open = pipe_open,
	.write_images = pipes_write_data, .free_images = pipes_free_data,
	.load_images = pipes_load_data, .unload_images = pipes_unload_data,
	.inherit_name = pipe_inherit_name,
};
