/* FIFOs (named pipes): a fifo_entry per open file description, with the
 * FIFO's path in a reg_file_entry (regf_id) and its inode as pipe_id.
 * Unread bytes are saved once per FIFO in fifo-data.img, the format of
 * pipes-data.img and the same code (pipe.c's pipe_data_*). On
 * restore the FIFO is first opened read-write, which never blocks and
 * keeps it alive while the bytes go back in and the ends open; that
 * "keeper" fd is kept above the pool (files_keep_fd) and closed with
 * stasis's other fds in each process before it runs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files/ghost.h"
#include "files/pipe.h"
#include "files/reg.h"
#include "util/log.h"

extern const struct fd_kind fd_kind_fifo;

struct fifo_rst_state {
	struct pipe_data_set data;
	struct made_fifo { uint32_t pipe_id; int keeper; } *made;
	int nr_made;
};

static bool fifo_owns(const struct fd_facts *f)
{
	return S_ISFIFO(f->st.st_mode) && strncmp(f->path, "pipe:[", 6) != 0;
}

static bool deleted(const char *path)
{
	static const char suffix[] = " (deleted)";
	size_t n = strlen(path), k = sizeof(suffix) - 1;
	return n > k && !strcmp(path + n - k, suffix);
}

static int fifo_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	char what[PATH_MAX + 64];
	uint32_t regf_id;

	snprintf(what, sizeof(what), "pid %d: fd %d (FIFO %s)", f->pid, f->fd, f->path);
	if (f->path[0] != '/') {
		pr_err("%s has no path to reopen it by; stasis can't dump it", what);
		return -1;
	}
	/* A deleted FIFO is remade at its path and removed again on restore
	 * (a ghost, as CRIU does it). */
	uint32_t flags = f->fi.flags & ~O_CLOEXEC;
	char src[64];
	snprintf(src, sizeof(src), "/proc/%d/fd/%d", f->pid, f->fd);
	if ((deleted(f->path) ? reg_ghost_add(t, o, f->path, src, flags, "FIFO", &regf_id)
			      : reg_file_add_at(t, f->path, flags, 0, 0, f->fi.mnt_id, &regf_id)) < 0)
		return -1;
	FifoEntry *e = calloc(1, sizeof(*e));
	if (!e)
		return files_oom(f);
	fifo_entry__init(e);
	e->id = fe->id;
	e->pipe_id = f->st.st_ino;
	e->has_regf_id = 1;
	e->regf_id = regf_id;
	fe->fifo = e;
	return pipe_data_save(files_dump_state(t, &fd_kind_fifo), f, what);
}

static int fifo_write_data(struct file_table *t, int dirfd)
{
	return pipe_data_write(files_dump_state(t, &fd_kind_fifo), dirfd, IMG_FIFO_DATA);
}

static void fifo_free_data(struct file_table *t)
{
	pipe_data_free(files_dump_state(t, &fd_kind_fifo));
}

/* ---- restore ---- */

static int fifo_load_data(struct rst_files *rf, int dirfd)
{
	struct fifo_rst_state *s = files_rst_state(rf, &fd_kind_fifo);
	return pipe_data_load(&s->data, dirfd, IMG_FIFO_DATA);
}

static void fifo_unload_data(struct rst_files *rf)
{
	struct fifo_rst_state *s = files_rst_state(rf, &fd_kind_fifo);
	pipe_data_free(&s->data);
	free(s->made);
}

/* Opens the FIFO of r read-write (the keeper), recreating it first if it
 * was deleted, and puts its bytes back. */
static int open_keeper(struct rst_files *rf, uint32_t pipe_id, const RegFileEntry *r, const char *who)
{
	struct fifo_rst_state *s = files_rst_state(rf, &fd_kind_fifo);
	const char *path = r->name;
	struct stat st;
	int fd = ghost_open(rf, r, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (fd == -2)
		fd = reg_open_name(rf, r, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("%s: can't reopen FIFO %s", who, path);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		pr_err("%s: %s was a FIFO at dump and is not one now", who, path);
		goto err;
	}
	char what[PATH_MAX + 8];
	snprintf(what, sizeof(what), "FIFO %s", path);
	if (pipe_data_put_back(fd, pipe_data_find(&s->data, pipe_id), what) < 0)
		goto err;
	struct made_fifo *m = realloc(s->made, (s->nr_made + 1) * sizeof(*m));
	if (!m) {
		pr_err("%s: out of memory opening FIFO %s", who, path);
		goto err;
	}
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
	struct fifo_rst_state *s = files_rst_state(rf, &fd_kind_fifo);
	int keeper = -1;
	char what[PATH_MAX + 16];

	if (!path_fe || !path_fe->reg || !path_fe->reg->name) {
		pr_err("image files.img: FIFO entry %u has no path", fe->id);
		return -1;
	}
	const RegFileEntry *r = path_fe->reg;
	/* Made here or by an ancestor before it forked: ours either way. */
	for (int i = 0; i < s->nr_made && keeper < 0; i++)
		if (s->made[i].pipe_id == e->pipe_id)
			keeper = s->made[i].keeper;
	if (keeper < 0 && (keeper = open_keeper(rf, e->pipe_id, r, rf->who)) < 0)
		return -1;
	/* With the keeper open, neither end blocks or fails to open. */
	snprintf(what, sizeof(what), "FIFO %s", r->name);
	int fd = files_reopen_kept(rf, keeper, r->flags | O_NONBLOCK, 0, what);
	/* (O_ASYNC is set by the process itself: fown.c) */
	if (fd >= 0 && fcntl(fd, F_SETFL, r->flags & (O_NONBLOCK | O_APPEND | O_DIRECT)) < 0) {
		pr_perror("%s: can't set the flags of an end of FIFO %s", rf->who, r->name);
		close(fd);
		return -1;
	}
	return fd;
}

static bool fifo_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	if (!fe->fifo)
		return false;
	snprintf(buf, len, "pipe:[%u]", fe->fifo->pipe_id);
	return true;
}

const struct fd_kind fd_kind_fifo = {
	.name = "fifo", .type = FD_TYPES__FIFO,
	.dump_state = sizeof(struct pipe_data_set), .rst_state = sizeof(struct fifo_rst_state),
	.owns = fifo_owns, .dump = fifo_dump, .open = fifo_open,
	.write_images = fifo_write_data, .free_images = fifo_free_data,
	.load_images = fifo_load_data, .unload_images = fifo_unload_data,
	.inherit_name = fifo_inherit_name,
};
