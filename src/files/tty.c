/* Terminals. For now only the --shell-job case: the task's terminal is the
 * user's, saved as a pty with its settings and, on restore, replaced by the
 * terminal stasis itself runs on. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "files/files.h"
#include "image/img.h"
#include "image/magic.h"
#include "util/log.h"

#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST 143
#define TTY_MAJOR 4
#define TTYAUX_MAJOR 5

static bool tty_owns(const struct fd_facts *f)
{
	unsigned maj = major(f->st.st_rdev);
	return S_ISCHR(f->st.st_mode) &&
	       ((maj >= PTS_MAJOR_FIRST && maj <= PTS_MAJOR_LAST) || maj == TTY_MAJOR ||
		maj == TTYAUX_MAJOR);
}

static TtyInfoEntry *tty_info_find(struct file_table *t, dev_t rdev)
{
	for (int i = 0; i < t->nr_ttys; i++)
		if (t->ttys[i]->rdev == rdev)
			return t->ttys[i];
	return NULL;
}

static int tty_info_fill(TtyInfoEntry *ti, const struct fd_facts *f)
{
	char link[64];
	struct termios tio;
	struct winsize ws;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", f->pid, f->fd);
	int fd = open(link, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || tcgetattr(fd, &tio) < 0 || ioctl(fd, TIOCGWINSZ, &ws) < 0) {
		pr_perror("pid %d: can't read terminal settings of fd %d (%s)", f->pid, f->fd, f->path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	pid_t sid = 0, pgrp = 0;
	ioctl(fd, TIOCGSID, &sid);
	pgrp = tcgetpgrp(fd);
	close(fd);

	ti->termios = calloc(1, sizeof(*ti->termios));
	ti->winsize = calloc(1, sizeof(*ti->winsize));
	ti->pty = calloc(1, sizeof(*ti->pty));
	if (!ti->termios || !ti->winsize || !ti->pty)
		return -1;
	termios_entry__init(ti->termios);
	winsize_entry__init(ti->winsize);
	tty_pty_entry__init(ti->pty);
	if (!(ti->termios->c_cc = calloc(NCCS, sizeof(uint32_t))))
		return -1;
	ti->termios->c_iflag = tio.c_iflag;
	ti->termios->c_oflag = tio.c_oflag;
	ti->termios->c_cflag = tio.c_cflag;
	ti->termios->c_lflag = tio.c_lflag;
	ti->termios->c_line = tio.c_line;
	ti->termios->c_ispeed = cfgetispeed(&tio);
	ti->termios->c_ospeed = cfgetospeed(&tio);
	ti->termios->n_c_cc = NCCS;
	for (int i = 0; i < NCCS; i++)
		ti->termios->c_cc[i] = tio.c_cc[i];
	ti->winsize->ws_row = ws.ws_row;
	ti->winsize->ws_col = ws.ws_col;
	ti->winsize->ws_xpixel = ws.ws_xpixel;
	ti->winsize->ws_ypixel = ws.ws_ypixel;
	ti->pty->index = minor(f->st.st_rdev);
	ti->sid = sid > 0 ? sid : 0;
	ti->pgrp = pgrp > 0 ? pgrp : 0;
	return 0;
}

static TtyInfoEntry *tty_info_get(struct file_table *t, const struct fd_facts *f)
{
	TtyInfoEntry *ti = tty_info_find(t, f->st.st_rdev);
	if (ti)
		return ti;
	TtyInfoEntry **n = realloc(t->ttys, (t->nr_ttys + 1) * sizeof(*n));
	if (!n || !(ti = calloc(1, sizeof(*ti))))
		return NULL;
	t->ttys = n;
	tty_info_entry__init(ti);
	ti->id = t->nr_ttys + 1;
	ti->type = TTY_TYPE__PTY;
	ti->rdev = f->st.st_rdev;
	t->ttys[t->nr_ttys++] = ti;
	if (tty_info_fill(ti, f) < 0)
		return NULL;
	return ti;
}

static int tty_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	if (!o->shell_job) {
		pr_err("pid %d: fd %d is a terminal (%s); dump a job of your shell with --shell-job",
		       f->pid, f->fd, f->path);
		return -1;
	}
	TtyInfoEntry *ti = tty_info_get(t, f);
	TtyFileEntry *tf = calloc(1, sizeof(*tf));
	FownEntry *fown = calloc(1, sizeof(*fown));
	if (!ti || !tf || !fown) {
		free(tf);
		free(fown);
		pr_err("pid %d: can't record terminal of fd %d", f->pid, f->fd);
		return -1;
	}
	tty_file_entry__init(tf);
	fown_entry__init(fown);
	tf->fown = fown;
	fe->tty = tf;
	fe->tty->id = fe->id;
	fe->tty->tty_info_id = ti->id;
	fe->tty->flags = f->fi.flags & ~O_CLOEXEC;
	return 0;
}

static int tty_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	char path[64];

	if (!fe->tty) {
		pr_err("image files.img: terminal entry %u is empty", fe->id);
		return -1;
	}
	if (!rf->o->shell_job || rf->shell_tty_fd < 0) {
		pr_err("the image holds a terminal; restore it from a terminal with --shell-job");
		return -1;
	}
	/* A fresh open file description on our terminal, with the saved flags. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rf->shell_tty_fd);
	int fd = open(path, (fe->tty->flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_NOCTTY);
	if (fd < 0)
		pr_perror("can't reopen the terminal for --shell-job");
	return fd;
}

/* tty-info.img: one entry per terminal, shared by its files. */
static int tty_write_info(struct file_table *t, int dirfd)
{
	struct img img;
	if (!t->nr_ttys)
		return 0;
	if (img_create(dirfd, &img, "tty-info.img", TTY_INFO_MAGIC) < 0)
		return -1;
	for (int i = 0; i < t->nr_ttys; i++)
		if (img_write(&img, &t->ttys[i]->base) < 0) {
			img_abort(&img);
			return -1;
		}
	return img_finish(&img);
}

static void tty_free_info(struct file_table *t)
{
	for (int i = 0; i < t->nr_ttys; i++)
		protobuf_c_message_free_unpacked(&t->ttys[i]->base, NULL);
	free(t->ttys);
}

static int tty_load_info(struct rst_files *rf, int dirfd)
{
	return img_load_all(dirfd, "tty-info.img", TTY_INFO_MAGIC, true, &tty_info_entry__descriptor,
			    (void ***)&rf->ttys, &rf->nr_ttys);
}

static void tty_unload_info(struct rst_files *rf)
{
	for (int i = 0; i < rf->nr_ttys; i++)
		img_free(rf->ttys[i]);
	free(rf->ttys);
	rf->ttys = NULL;
	rf->nr_ttys = 0;
}

const struct fd_kind fd_kind_tty = {
	.name = "tty", .type = FD_TYPES__TTY,
	.owns = tty_owns, .dump = tty_dump, .open = tty_open,
	.write_images = tty_write_info, .free_images = tty_free_info,
	.load_images = tty_load_info, .unload_images = tty_unload_info,
};
