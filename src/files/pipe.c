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

#include "files/pipe.h"
#include "image/img.h"
#include "util/log.h"

#define PIPE_DATA_MAX (64u << 20)	/* F_SETPIPE_SZ can't exceed 1 MiB by default anyway */

extern const struct fd_kind fd_kind_pipe;

/* Restore: the bytes, and the pipes made so far (both ends, for the
 * entries of the other end). */
struct pipe_rst {
	struct pipe_data_set data;
	struct made_pipe {
		uint32_t pipe_id;
		int fd[2];	/* closed (-1) once every entry has its end */
		bool given[2];	/* the end's own description is some entry's */
		int left;	/* entries of the pipe not opened yet */
	} *made;
	int nr_made;
	struct idmap made_by_id;	/* pipe_id -> index in made */
	struct idmap entries_by_id;	/* pipe_id -> index in entries */
	int *entries;			/* how many entries each pipe has */
	int nr_pipes;
	bool counted;
};

static bool pipe_owns(const struct fd_facts *f)
{
	return S_ISFIFO(f->st.st_mode) && !strncmp(f->path, "pipe:[", 6);
}

/* By an index: a scan for each pipe was quadratic (thousands of pipes). */
const struct pipe_data *pipe_data_find(const struct pipe_data_set *s, uint32_t pipe_id)
{
	unsigned pos = 0;
	for (int i; (i = idmap_next(&s->by_id, pipe_id, &pos)) >= 0;)
		if (s->d[i].pipe_id == pipe_id)
			return &s->d[i];
	return NULL;
}

/* Copies the unread bytes of rd without taking them: tee() into a pipe
 * of our own, read from that. */
static int copy_unread(int rd, struct pipe_data *d, const char *what)
{
	int tmp[2], avail = 0, ret = -1;
	int size = fcntl(rd, F_GETPIPE_SZ);

	if (size <= 0 || ioctl(rd, FIONREAD, &avail) < 0 || pipe2(tmp, O_CLOEXEC | O_NONBLOCK) < 0) {
		pr_perror("%s: can't inspect the pipe", what);
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

int pipe_data_save(struct pipe_data_set *s, const struct fd_facts *f, const char *what)
{
	char path[64];
	struct pipe_data d = { .pipe_id = f->st.st_ino };

	if (pipe_data_find(s, d.pipe_id))
		return 0;
	/* a read end of our own: the task's fd may be the write end */
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", f->pid, f->fd);
	int rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rd < 0) {
		pr_perror("%s: can't open the pipe to read its unread bytes", what);
		return -1;
	}
	int ret = copy_unread(rd, &d, what);
	close(rd);
	if (ret < 0)
		return -1;
	struct pipe_data *n = realloc(s->d, (s->nr + 1) * sizeof(*n));
	if (n)
		s->d = n;
	if (!n || idmap_add(&s->by_id, d.pipe_id, s->nr) < 0) {
		free(d.buf);
		pr_err("%s: out of memory saving the unread bytes", what);
		return -1;
	}
	s->d[s->nr++] = d;
	return 0;
}

static int pipe_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	PipeEntry *p = calloc(1, sizeof(*p));
	FownEntry *fown = calloc(1, sizeof(*fown));
	if (!p || !fown) {
		free(p);
		free(fown);
		return files_oom(f);
	}
	pipe_entry__init(p);
	fown_entry__init(fown);
	p->id = fe->id;
	p->pipe_id = f->st.st_ino;
	p->flags = f->fi.flags & ~O_CLOEXEC;
	p->fown = fown;
	fe->pipe = p;
	char what[64];
	snprintf(what, sizeof(what), "pid %d: fd %d (pipe)", f->pid, f->fd);
	return pipe_data_save(files_dump_state(t, &fd_kind_pipe), f, what);
}

int pipe_data_write(const struct pipe_data_set *s, int dirfd, enum img_kind kind)
{
	struct img img;
	if (!s->nr)
		return 0;
	if (img_create(dirfd, &img, kind, 0) < 0)
		return -1;
	for (int i = 0; i < s->nr; i++) {
		const struct pipe_data *d = &s->d[i];
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

static int pipes_write_data(struct file_table *t, int dirfd)
{
	return pipe_data_write(files_dump_state(t, &fd_kind_pipe), dirfd, IMG_PIPES_DATA);
}

/* ---- restore ---- */

int pipe_data_load(struct pipe_data_set *s, int dirfd, enum img_kind kind)
{
	struct img img;
	PipeDataEntry *e;
	int ret;

	if (img_open(dirfd, &img, kind, 0) < 0)
		return errno == ENOENT ? 0 : -1;
	while ((ret = img_read(&img, &pipe_data_entry__descriptor, (ProtobufCMessage **)&e)) == 1) {
		struct pipe_data d = { e->pipe_id, e->has_size ? e->size : 0, e->bytes, NULL };
		img_free(e);
		struct pipe_data *n = realloc(s->d, (s->nr + 1) * sizeof(*n));
		if (n)
			s->d = n;	/* the old array may be gone: keep the new one, even on error */
		if (!n || d.len > PIPE_DATA_MAX || !img_has(&img, d.len) || !(d.buf = malloc(d.len ? d.len : 1))) {
			pr_err("image %s: bad entry for pipe %u (%u bytes)", img.name, d.pipe_id, d.len);
			ret = -1;
			break;
		}
		if (img_read_raw(&img, d.buf, d.len) < 0 || idmap_add(&s->by_id, d.pipe_id, s->nr) < 0) {
			free(d.buf);
			ret = -1;
			break;
		}
		s->d[s->nr++] = d;
	}
	img_close(&img);
	return ret;
}

static int pipes_load_data(struct rst_files *rf, int dirfd)
{
	struct pipe_rst *s = files_rst_state(rf, &fd_kind_pipe);
	return pipe_data_load(&s->data, dirfd, IMG_PIPES_DATA);
}

int pipe_data_put_back(int fd, const struct pipe_data *d, const char *what)
{
	if (!d)
		return 0;
	if (d->size && fcntl(fd, F_SETPIPE_SZ, d->size) < 0)
		pr_warn("can't give %s its capacity of %u bytes: %m", what, d->size);
	if (d->len && write(fd, d->buf, d->len) != (ssize_t)d->len) {
		pr_perror("can't put %u bytes back into %s", d->len, what);
		return -1;
	}
	return 0;
}

void pipe_data_free(struct pipe_data_set *s)
{
	for (int i = 0; i < s->nr; i++)
		free(s->d[i].buf);
	free(s->d);
	s->d = NULL;
	s->nr = 0;
	idmap_free(&s->by_id);
}

/* The index under pipe_id in map (keys are compared whole: a hit is it). */
static int by_id(const struct idmap *map, uint32_t pipe_id)
{
	unsigned pos = 0;
	return idmap_next(map, pipe_id, &pos);
}

/* How many entries each pipe has (once), so that its made ends can be
 * closed after the last: kept for the whole restore, 10,000 pipes took
 * 20,000 fds of the limit. */
static int count_entries(struct rst_files *rf, struct pipe_rst *s)
{
	s->counted = true;
	for (int i = 0; i < rf->nr; i++) {
		const FileEntry *fe = rf->e[i];
		if (fe->type != FD_TYPES__PIPE || !fe->pipe)
			continue;
		int k = by_id(&s->entries_by_id, fe->pipe->pipe_id);
		if (k < 0) {
			int *n = realloc(s->entries, (s->nr_pipes + 1) * sizeof(*n));
			if (!n || idmap_add(&s->entries_by_id, fe->pipe->pipe_id, s->nr_pipes) < 0) {
				if (n)
					s->entries = n;
				pr_err("out of memory counting the pipes' entries");
				return -1;
			}
			s->entries = n;
			k = s->nr_pipes++;
			s->entries[k] = 0;
		}
		s->entries[k]++;
	}
	return 0;
}

/* A new pipe with the saved capacity and unread bytes. Its ends are kept
 * above the pool: at the lowest free fds they could sit on a pool slot,
 * which then looks filled already (restore/tree.c's pool_open_one). */
static struct made_pipe *make_pipe(struct rst_files *rf, struct pipe_rst *s, uint32_t pipe_id)
{
	if (!s->counted && count_entries(rf, s) < 0)
		return NULL;
	struct made_pipe *m = realloc(s->made, (s->nr_made + 1) * sizeof(*m));
	if (!m) {
		pr_err("out of memory making pipe %u", pipe_id);
		return NULL;
	}
	s->made = m;
	m = &s->made[s->nr_made];
	int k = by_id(&s->entries_by_id, pipe_id);
	m->left = k >= 0 ? s->entries[k] : -1;	/* -1: not in the files, never closed */
	if (pipe2(m->fd, 0) < 0) {
		pr_perror("can't make pipe %u", pipe_id);
		return NULL;
	}
	char what[32];
	snprintf(what, sizeof(what), "pipe %u", pipe_id);
	m->fd[0] = files_keep_fd(rf, m->fd[0], what);
	m->fd[1] = files_keep_fd(rf, m->fd[1], what);
	if (m->fd[0] < 0 || m->fd[1] < 0) {
		if (m->fd[0] >= 0)
			close(m->fd[0]);
		if (m->fd[1] >= 0)
			close(m->fd[1]);
		return NULL;
	}
	m->pipe_id = pipe_id;
	m->given[0] = m->given[1] = false;
	if (pipe_data_put_back(m->fd[1], pipe_data_find(&s->data, pipe_id), what) < 0 ||
	    idmap_add(&s->made_by_id, pipe_id, s->nr_made) < 0) {
		close(m->fd[0]);
		close(m->fd[1]);
		return NULL;
	}
	s->nr_made++;
	return m;
}

static int pipe_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const PipeEntry *p = fe->pipe;
	struct pipe_rst *s = files_rst_state(rf, &fd_kind_pipe);
	struct made_pipe *m = NULL;

	if (!p) {
		pr_err("image files.img: pipe entry %u is empty", fe->id);
		return -1;
	}
	int i = by_id(&s->made_by_id, p->pipe_id);
	if (i >= 0)
		m = &s->made[i];
	if (!m && !(m = make_pipe(rf, s, p->pipe_id)))
		return -1;
	if (m->fd[0] < 0) {
		pr_err("pipe %u has more entries than files.img listed", p->pipe_id);
		return -1;
	}
	/* Each entry is an open file description of its own, with its own
	 * status flags. The end pipe() made is one (the only kind without
	 * O_LARGEFILE, which open() adds and F_SETFL can't take away); any
	 * other is reopened through /proc, which the made ends keep from
	 * blocking. */
	int end = (p->flags & O_ACCMODE) == O_RDONLY ? 0 : 1;
	int fd;
	if (!(p->flags & O_LARGEFILE) && !m->given[end]) {
		m->given[end] = true;
		fd = dup(m->fd[end]);
	} else {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", m->fd[end]);
		fd = open(path, (end ? O_WRONLY : O_RDONLY) | O_NONBLOCK);
	}
	if (fd < 0 || fcntl(fd, F_SETFL, p->flags & (O_NONBLOCK | O_DIRECT)) < 0) {
		pr_perror("can't open an end of pipe %u", p->pipe_id);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (m->left > 0 && --m->left == 0) {	/* every entry has its end */
		close(m->fd[0]);
		close(m->fd[1]);
		m->fd[0] = m->fd[1] = -1;
	}
	return fd;
}

static void pipes_free_data(struct file_table *t)
{
	pipe_data_free(files_dump_state(t, &fd_kind_pipe));
}

static void pipes_unload_data(struct rst_files *rf)
{
	struct pipe_rst *s = files_rst_state(rf, &fd_kind_pipe);
	pipe_data_free(&s->data);
	free(s->made);
	idmap_free(&s->made_by_id);
	idmap_free(&s->entries_by_id);
	free(s->entries);
}

static bool pipe_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	if (!fe->pipe)
		return false;
	snprintf(buf, len, "pipe:[%u]", fe->pipe->pipe_id);
	return true;
}

/* A pipe's ends are made together: every entry of a pipe is one
 * process's, or all go to the pool (out of memory: all do). */
static void pipe_ties(const struct rst_files *rf, files_tie_fn tie, void *arg)
{
	struct idmap first = { 0 };
	bool lost = false;

	for (int i = 0; i < rf->nr; i++) {
		const FileEntry *fe = rf->e[i];
		if (fe->type != FD_TYPES__PIPE || !fe->pipe)
			continue;
		int k = lost ? -1 : by_id(&first, fe->pipe->pipe_id);
		if (k >= 0)
			tie(arg, i, k, true);
		else if (lost || idmap_add(&first, fe->pipe->pipe_id, i) < 0) {
			lost = true;
			tie(arg, i, -1, false);
		}
	}
	idmap_free(&first);
}


const struct fd_kind fd_kind_pipe = {
	.name = "pipe", .type = FD_TYPES__PIPE,
	.dump_state = sizeof(struct pipe_data_set), .rst_state = sizeof(struct pipe_rst),
	.owns = pipe_owns, .dump = pipe_dump, .open = pipe_open,
	.write_images = pipes_write_data, .free_images = pipes_free_data,
	.load_images = pipes_load_data, .unload_images = pipes_unload_data,
	.inherit_name = pipe_inherit_name, .own_open = kind_own_open_any, .ties = pipe_ties,
};
