/* Terminals.
 *
 * A tty file is a tty_file_entry (flags) pointing at a tty_info_entry
 * (the terminal: settings, session, foreground group). Infos are numbered
 * as CRIU numbers them: a pty is index * 2 for its slave side and
 * index * 2 + 1 for its master side, so the two sides of a pair find each
 * other; /dev/tty, the console and vts get fixed numbers above the ptys.
 *
 * A pty pair is the tree's own when some fd of the tree holds its master:
 * restore makes a new pair (the same index when it is free), gives it the
 * saved settings, and session leaders get it back as their controlling
 * terminal. A pty slave (or any other terminal) whose master is not in the
 * tree is the user's: with --shell-job it is replaced on restore by the
 * terminal stasis runs on; --inherit-fd fd[N]:tty[RDEV:DEV] hands one in.
 *
 * Fds of the dumped tasks are read through pidfd_getfd(): opening
 * /proc/PID/fd/N of a master would make a brand new pair.
 *
 * Bytes in flight inside a pair of the tree (written at one side, not yet
 * read at the other) are copied into tty-data.img (CRIU's format) and put
 * back at once, so the tree keeps them whether it goes on running or not;
 * restore writes them into the new pair. Input for a slave reader in
 * canonical mode can't be put back exactly: it is left alone, not saved,
 * and the dump says so. Bytes queued in a terminal that isn't the tree's
 * are never touched (nor saved). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "files/reg.h"
#include "util/io.h"
#include "image/img.h"
#include "image/magic.h"
#include "util/log.h"
#include "tty.pb-c.h"

#define TTY_MAJOR 4
#define TTYAUX_MAJOR 5
#define PTM_MAJOR_FIRST 128
#define PTM_MAJOR_LAST 135
#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST 143

/* tty_info ids (CRIU's numbering, so images of either tool pair up). */
#define MAX_PTY_INDEX 1000
#define CONSOLE_ID (1002 << 1)
#define VT_ID (1004 << 1)
#define CTTY_ID (1006 << 1)
#define SERIAL_ID (1010 << 1)
#define PTY_ID(index, master) (((index) << 1) + ((master) ? 1 : 0))
#define PTY_IS_MASTER(id) ((id) & 1)

/* c_cc entries of the kernel's struct termios (TCGETS), as CRIU saves. */
#define KERNEL_NCCS 19

/* Most bytes saved from one side of a pty (the kernel queues far less). */
#define TTY_DATA_MAX (1u << 20)
/* How long to wait for bytes written into a pty to reach its reader. */
#define TTY_FLUSH_WAIT_MS 2000

/* How many pty indices restore may hold while looking for the saved one. */
#define PTMX_TRIES 64

enum tty_kind { TK_NONE, TK_MASTER, TK_SLAVE, TK_CTTY, TK_CONSOLE, TK_VT, TK_OTHER };

/* Who holds a terminal, to name it in messages (dump side). */
struct tty_holder {
	pid_t pid;
	int fd;
	char path[PATH_MAX];
	bool foreign_ok;	/* --shell-job or --external tty[..]: may be the user's */
	uint32_t index;		/* the pty (of /dev/tty: the one it stands for), or ~0 */
	uint8_t *queued;	/* bytes waiting to be read at this side */
	size_t nr_queued;
};

/* tty-data.img loaded for restore. */
struct tty_queued {
	uint32_t id;
	uint8_t *data;
	size_t len;
};

/* A pty pair made on restore (kept per process across fork). */
struct made_pty {
	uint32_t index;		/* the index in the image */
	int master, slave;	/* slave: for TIOCSCTTY / TIOCSPGRP */
	bool locked;
	const TtyInfoEntry *info;	/* the slave's info, else the master's */
};

extern const struct fd_kind fd_kind_tty;

/* Dump: tty-info.img's entries, and per entry an fd holding it. */
struct tty_dump {
	TtyInfoEntry **ttys;
	int nr_ttys;
	struct tty_holder *holders;
};

/* Restore: tty-info.img, tty-data.img, the pairs made so far. */
struct tty_rst {
	TtyInfoEntry **ttys;
	int nr_ttys;
	int shell_tty_fd;	/* restorer's terminal for --shell-job, or -1 */
	struct made_pty *ptys;
	int nr_ptys;
	struct tty_queued *queued;
	int nr_queued;
};

static enum tty_kind tty_kind_of(dev_t rdev)
{
	unsigned maj = major(rdev), min = minor(rdev);
	if (maj == TTYAUX_MAJOR)
		return min == 2 ? TK_MASTER : min == 0 ? TK_CTTY : min == 1 ? TK_CONSOLE : TK_NONE;
	if (maj >= PTM_MAJOR_FIRST && maj <= PTM_MAJOR_LAST)
		return TK_MASTER;
	if (maj >= PTS_MAJOR_FIRST && maj <= PTS_MAJOR_LAST)
		return TK_SLAVE;
	if (maj == TTY_MAJOR)
		return min < 64 ? TK_VT : TK_OTHER;
	return TK_NONE;
}

static bool tty_owns(const struct fd_facts *f)
{
	return S_ISCHR(f->st.st_mode) && tty_kind_of(f->st.st_rdev) != TK_NONE;
}

/* devpts numbers every slave 136:INDEX (minors have 20 bits). */
static uint32_t pts_index(dev_t rdev)
{
	return minor(rdev);
}

static int set_lock(int master, bool on)
{
	int v = on;
	return ioctl(master, TIOCSPTLCK, &v);
}

/* ---- dump ---- */

/* The pid namespace level the task's pids are recorded at (its own). */
static int ns_level(pid_t pid)
{
	struct proc_status st;
	return proc_parse_status(pid, &st) == 0 && st.nr_nspid > 0 ? st.nr_nspid - 1 : 0;
}

static pid_t to_ns(pid_t pid, int lvl)
{
	return pid > 0 ? proc_ns_pid(pid, lvl) : 0;
}

/* Session and foreground group of the task's controlling terminal, if it
 * is rdev (/proc/PID/stat: session, tty_nr, tpgid). */
static void ctty_of_task(pid_t pid, dev_t rdev, pid_t *sid, pid_t *pgrp)
{
	char buf[1024];
	int session, tty_nr, tpgid;

	if (proc_read_file(pid, "stat", buf, sizeof(buf)) < 0)
		return;
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %d %d %d", &session, &tty_nr, &tpgid) != 3)
		return;
	if ((dev_t)tty_nr != rdev)
		return;
	*sid = session;
	*pgrp = tpgid > 0 ? tpgid : 0;
}

static TermiosEntry *termios_entry_of(const struct termios *tio)
{
	TermiosEntry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	termios_entry__init(e);
	if (!(e->c_cc = calloc(KERNEL_NCCS, sizeof(uint32_t)))) {
		free(e);
		return NULL;
	}
	e->c_iflag = tio->c_iflag;
	e->c_oflag = tio->c_oflag;
	e->c_cflag = tio->c_cflag;
	e->c_lflag = tio->c_lflag;
	e->c_line = tio->c_line;
	e->c_ispeed = cfgetispeed(tio);
	e->c_ospeed = cfgetospeed(tio);
	e->n_c_cc = KERNEL_NCCS;
	for (int i = 0; i < KERNEL_NCCS; i++)
		e->c_cc[i] = tio->c_cc[i];
	return e;
}

/* Settings as the task's fd sees them. On a master, the termios, window
 * size, session and group ioctls act on the slave side, so both sides of
 * a pair record the slave's. A hung-up terminal has none: left out. */
static int tty_settings_read(TtyInfoEntry *ti, int lfd, const struct fd_facts *f)
{
	struct termios tio, locked;
	struct winsize ws;

	/* The ioctls fill the kernel's struct termios, a prefix of glibc's. */
	memset(&tio, 0, sizeof(tio));
	memset(&locked, 0, sizeof(locked));
	if (ioctl(lfd, TCGETS, &tio) < 0 || ioctl(lfd, TIOCGLCKTRMIOS, &locked) < 0 ||
	    ioctl(lfd, TIOCGWINSZ, &ws) < 0) {
		pr_warn("pid %d: fd %d (%s): no terminal settings (hung up?): %m", f->pid, f->fd, f->path);
		return 0;
	}
	ti->termios = termios_entry_of(&tio);
	ti->termios_locked = termios_entry_of(&locked);
	ti->winsize = calloc(1, sizeof(*ti->winsize));
	if (!ti->termios || !ti->termios_locked || !ti->winsize)
		return -1;
	winsize_entry__init(ti->winsize);
	ti->winsize->ws_row = ws.ws_row;
	ti->winsize->ws_col = ws.ws_col;
	ti->winsize->ws_xpixel = ws.ws_xpixel;
	ti->winsize->ws_ypixel = ws.ws_ypixel;
	return 0;
}

static int tty_info_fill(TtyInfoEntry *ti, enum tty_kind kind, uint32_t index, int lfd,
			 const struct fd_facts *f)
{
	int v = 0;
	int lvl = ns_level(f->pid);

	ti->rdev = f->st.st_rdev;
	ti->has_dev = ti->has_uid = ti->has_gid = true;
	ti->dev = f->st.st_dev;
	ti->uid = f->st.st_uid;
	ti->gid = f->st.st_gid;
	if (ioctl(lfd, TIOCGEXCL, &v) == 0)
		ti->exclusive = v;
	if (kind == TK_MASTER) {
		pid_t sid = 0, pgrp = 0;
		if (ioctl(lfd, TIOCGPTLCK, &v) == 0)
			ti->locked = v;
		if (ioctl(lfd, TIOCGPKT, &v) == 0)
			ti->packet_mode = v;
		/* ENOTTY: the slave is nobody's controlling terminal */
		if (ioctl(lfd, TIOCGSID, &sid) == 0 && ioctl(lfd, TIOCGPGRP, &pgrp) == 0) {
			ti->sid = to_ns(sid, lvl);
			ti->pgrp = to_ns(pgrp, lvl);
		}
	} else {
		pid_t sid = 0, pgrp = 0;
		ctty_of_task(f->pid, f->st.st_rdev, &sid, &pgrp);
		ti->sid = to_ns(sid, lvl);
		ti->pgrp = to_ns(pgrp, lvl);
	}
	if (kind == TK_MASTER || kind == TK_SLAVE) {
		if (!(ti->pty = calloc(1, sizeof(*ti->pty))))
			return -1;
		tty_pty_entry__init(ti->pty);
		ti->pty->index = index;
	}
	return tty_settings_read(ti, lfd, f);
}

static int tty_info_index(const struct file_table *t, uint32_t id)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	for (int i = 0; i < d->nr_ttys; i++)
		if (d->ttys[i]->id == id)
			return i;
	return -1;
}

static TtyInfoEntry *tty_info_find(const struct file_table *t, uint32_t id)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	int i = tty_info_index(t, id);
	return i < 0 ? NULL : d->ttys[i];
}

static TtyInfoEntry *tty_info_new(struct file_table *t, uint32_t id, TtyType type,
				  const struct fd_facts *f, bool foreign_ok)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	TtyInfoEntry **n = realloc(d->ttys, (d->nr_ttys + 1) * sizeof(*n));
	if (n)
		d->ttys = n;
	struct tty_holder *h = realloc(d->holders, (d->nr_ttys + 1) * sizeof(*h));
	if (h)
		d->holders = h;
	TtyInfoEntry *ti = n && h ? calloc(1, sizeof(*ti)) : NULL;
	if (!ti)
		return NULL;
	tty_info_entry__init(ti);
	ti->id = id;
	ti->type = type;
	h = &d->holders[d->nr_ttys];
	memset(h, 0, sizeof(*h));
	h->pid = f->pid;
	h->fd = f->fd;
	snprintf(h->path, sizeof(h->path), "%s", f->path);
	h->foreign_ok = foreign_ok;
	d->ttys[d->nr_ttys++] = ti;
	return ti;
}

static bool ext_tty_allowed(const struct opts *o, const struct fd_facts *f)
{
	char name[64];
	snprintf(name, sizeof(name), "tty[%lx:%lx]", (unsigned long)f->st.st_rdev,
		 (unsigned long)f->st.st_dev);
	for (int i = 0; i < o->nr_external; i++)
		if (!strcmp(o->external[i], name))
			return true;
	return false;
}

/* Which info an fd belongs to: its id, type and (for ptys) index. */
static int tty_classify(int lfd, const struct fd_facts *f, enum tty_kind *kind, uint32_t *id,
			TtyType *type, uint32_t *index)
{
	unsigned real = 0;

	*kind = tty_kind_of(f->st.st_rdev);
	*index = 0;
	switch (*kind) {
	case TK_MASTER:
		if (ioctl(lfd, TIOCGPTN, index) < 0) {
			pr_perror("pid %d: fd %d (%s): can't read the pty index", f->pid, f->fd, f->path);
			return -1;
		}
		break;
	case TK_SLAVE:
		*index = pts_index(f->st.st_rdev);
		break;
	case TK_CTTY:
		/* /dev/tty stands for the terminal it was opened on */
		if (ioctl(lfd, TIOCGDEV, &real) < 0) {
			pr_perror("pid %d: fd %d (/dev/tty): can't tell which terminal it is", f->pid, f->fd);
			return -1;
		}
		*index = tty_kind_of(real) == TK_SLAVE ? pts_index(real) : ~0u;
		*id = CTTY_ID;
		*type = TTY_TYPE__CTTY;
		return 0;
	default:
		break;
	}
	if ((*kind == TK_MASTER || *kind == TK_SLAVE) && *index >= MAX_PTY_INDEX) {
		pr_err("pid %d: fd %d (%s): pty index %u is too big (limit %d)", f->pid, f->fd, f->path,
		       *index, MAX_PTY_INDEX);
		return -1;
	}
	*type = *kind == TK_VT ? TTY_TYPE__VT : *kind == TK_CONSOLE ? TTY_TYPE__CONSOLE :
		*kind == TK_OTHER ? TTY_TYPE__SERIAL : TTY_TYPE__PTY;
	*id = *kind == TK_VT ? VT_ID : *kind == TK_CONSOLE ? CONSOLE_ID : *kind == TK_OTHER ? SERIAL_ID :
	      (uint32_t)PTY_ID(*index, *kind == TK_MASTER);
	return 0;
}

static int tty_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	enum tty_kind kind;
	uint32_t id = 0, index;
	TtyType type = TTY_TYPE__TTY_UNKNOWN;

	int lfd = files_take_fd(f->pid, f->fd, f->path);
	if (lfd < 0)
		return -1;
	if (tty_classify(lfd, f, &kind, &id, &type, &index) < 0)
		goto err;
	/* Only ptys can be the tree's own; other terminals are the user's. */
	bool foreign_ok = o->shell_job || ext_tty_allowed(o, f);
	if (kind != TK_MASTER && kind != TK_SLAVE && !(kind == TK_CTTY && index != ~0u) && !foreign_ok) {
		pr_err("pid %d: fd %d is a terminal (%s) the tree does not own; dump a job of your "
		       "shell with --shell-job (or name it with --external tty[%lx:%lx])", f->pid, f->fd,
		       f->path, (unsigned long)f->st.st_rdev, (unsigned long)f->st.st_dev);
		goto err;
	}
	int at = tty_info_index(t, id);
	TtyInfoEntry *ti = at < 0 ? NULL : d->ttys[at];
	if (ti && kind == TK_CTTY && d->holders[at].index != index) {
		pr_err("pid %d: fd %d (/dev/tty) is another terminal than an earlier /dev/tty of the "
		       "tree; stasis can't dump /dev/tty opened on two terminals", f->pid, f->fd);
		goto err;
	}
	if (!ti) {
		ti = tty_info_new(t, id, type, f, foreign_ok);
		if (ti)
			d->holders[d->nr_ttys - 1].index = kind == TK_MASTER || kind == TK_SLAVE ||
							       kind == TK_CTTY ? index : ~0u;
		if (!ti || tty_info_fill(ti, kind, index, lfd, f) < 0) {
			pr_err("pid %d: can't record the terminal of fd %d (%s)", f->pid, f->fd, f->path);
			goto err;
		}
	}
	close(lfd);

	TtyFileEntry *tf = calloc(1, sizeof(*tf));
	FownEntry *fown = calloc(1, sizeof(*fown));
	if (!tf || !fown) {
		free(tf);
		free(fown);
		pr_err("pid %d: out of memory recording fd %d", f->pid, f->fd);
		return -1;
	}
	tty_file_entry__init(tf);
	fown_entry__init(fown);
	tf->fown = fown;
	tf->id = fe->id;
	tf->tty_info_id = id;
	tf->flags = f->fi.flags & ~O_CLOEXEC;
	fe->tty = tf;
	/* The path too, as a regular file entry: CRIU opens terminals by it
	 * (stasis opens ptys by the pair and index, not by path). */
	if (f->path[0] == '/' && reg_file_add(t, f->path, tf->flags, 0, &tf->regf_id) == 0)
		tf->has_regf_id = true;
	return 0;
err:
	close(lfd);
	return -1;
}

/* The pty a slave-side info (pty slave or /dev/tty on one) belongs to,
 * if the tree holds its master. */
static const TtyInfoEntry *dump_master_of(const struct file_table *t, int i)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	uint32_t index = d->holders[i].index;
	return index < MAX_PTY_INDEX ? tty_info_find(t, PTY_ID(index, true)) : NULL;
}

/* Now that every task is dumped: a pty slave is the tree's own only if
 * the tree holds its master; both sides get the session and the lock and
 * packet state (only the master can tell those). */
static int tty_check_owned(struct file_table *t)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	for (int i = 0; i < d->nr_ttys; i++) {
		TtyInfoEntry *ti = d->ttys[i];
		const struct tty_holder *h = &d->holders[i];
		bool slave_side = (ti->type == TTY_TYPE__PTY && !PTY_IS_MASTER(ti->id)) ||
				  ti->type == TTY_TYPE__CTTY;
		if (!slave_side)
			continue;
		const TtyInfoEntry *m = dump_master_of(t, i);
		if (!m) {
			if (h->foreign_ok)
				continue;
			pr_err("pid %d: fd %d is a terminal (%s) the tree does not own (its master is "
			       "not in the tree); dump a job of your shell with --shell-job (or name it "
			       "with --external tty[%x:%x])", h->pid, h->fd, h->path, ti->rdev, ti->dev);
			return -1;
		}
		ti->locked = m->locked;
		ti->packet_mode = m->packet_mode;
		if (!ti->sid || ti->type == TTY_TYPE__CTTY) {
			ti->sid = m->sid;
			ti->pgrp = m->pgrp;
		}
	}
	return 0;
}

/* ---- dump: bytes queued inside a pair ----
 *
 * Reading a side takes its bytes; they are put straight back, written into
 * the other side with the processing that would change them switched off
 * for the moment (output processing for what the slave wrote; echo,
 * signals and input mapping for what the master wrote), so the tree keeps
 * them whether it goes on running or not. What can't be put back exactly
 * is left alone and not saved: input for a slave reader in canonical mode
 * (its line editing state can't be rebuilt) or with IXON. */

/* All that is queued for readers of fd (non-blocking). In packet mode
 * each read starts with a status byte: data packets keep their data,
 * status-only packets are dropped. */
static int drain(int fd, bool packet, uint8_t **out, size_t *len)
{
	size_t cap = 0;
	uint8_t *buf = NULL;

	*len = 0;
	for (;;) {
		if (cap - *len < 4097) {
			cap = cap ? cap * 2 : 16384;
			uint8_t *n = cap <= TTY_DATA_MAX ? realloc(buf, cap) : NULL;
			if (!n) {
				errno = ENOBUFS;
				goto err;
			}
			buf = n;
		}
		ssize_t n = read(fd, buf + *len, 4097);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EIO))
			break;	/* EIO: the other side is closed, nothing more */
		if (n < 0)
			goto err;
		if (n == 0)
			break;
		if (packet) {
			if (buf[*len] != TIOCPKT_DATA)
				continue;
			memmove(buf + *len, buf + *len + 1, --n);
		}
		*len += n;
	}
	*out = buf;
	return 0;
err:
	free(buf);
	*out = NULL;
	*len = 0;
	return -1;
}

/* The slave's termios for a moment, with its locks lifted; undone by
 * termios_back(). */
struct termios_saved {
	struct termios t, locked;
};

static int termios_for_now(int slave, struct termios_saved *sv, tcflag_t oflag_off,
			   tcflag_t iflag_off, tcflag_t lflag_off)
{
	struct termios tmp, none;
	memset(sv, 0, sizeof(*sv));
	memset(&none, 0, sizeof(none));
	if (ioctl(slave, TCGETS, &sv->t) < 0 || ioctl(slave, TIOCGLCKTRMIOS, &sv->locked) < 0 ||
	    ioctl(slave, TIOCSLCKTRMIOS, &none) < 0)
		return -1;
	tmp = sv->t;
	tmp.c_oflag &= ~oflag_off;
	tmp.c_iflag &= ~iflag_off;
	tmp.c_lflag &= ~lflag_off;
	return ioctl(slave, TCSETS, &tmp);
}

static void termios_back(int slave, struct termios_saved *sv)
{
	ioctl(slave, TCSETS, &sv->t);
	ioctl(slave, TIOCSLCKTRMIOS, &sv->locked);
}

#define INPUT_MAP_FLAGS (ISTRIP | INLCR | IGNCR | ICRNL | IUCLC | PARMRK)
#define INPUT_LOCAL_FLAGS (ECHO | ECHONL | ISIG | IEXTEN)

/* Until fd has at least len bytes to read (writes reach the other side's
 * reader through a kernel work queue). */
static bool wait_readable(int fd, size_t len)
{
	for (int ms = 0; ms < TTY_FLUSH_WAIT_MS; ms++) {
		int n = 0;
		if (ioctl(fd, FIONREAD, &n) == 0 && (size_t)n >= len)
			return true;
		usleep(1000);
	}
	return false;
}

/* Copy of what the slave side wrote and the master's reader has not
 * read: drained from the master, written back through our slave. */
static int copy_master_queue(int master, int slave, bool packet, struct tty_holder *h, uint32_t index)
{
	struct termios_saved sv;

	if (drain(master, packet, &h->queued, &h->nr_queued) < 0) {
		pr_perror("pty %u: can't read the bytes queued at the master", index);
		return -1;
	}
	if (!h->nr_queued)
		return 0;
	if (termios_for_now(slave, &sv, OPOST, 0, 0) < 0 || write_all(slave, h->queued, h->nr_queued) < 0) {
		pr_perror("pty %u: can't put %zu queued bytes back for the master's reader", index,
			  h->nr_queued);
		termios_back(slave, &sv);
		return -1;
	}
	termios_back(slave, &sv);
	pr_info("pty %u: %zu bytes queued for the master's reader saved", index, h->nr_queued);
	return 0;
}

/* Copy of what the master wrote and the slave's reader has not read. */
static int copy_slave_queue(int master, int slave, struct tty_holder *h, uint32_t index)
{
	struct termios t;
	struct termios_saved sv;
	int avail = 0;

	if (ioctl(slave, FIONREAD, &avail) < 0 || avail == 0 || ioctl(slave, TCGETS, &t) < 0)
		return 0;
	if ((t.c_lflag & ICANON) || (t.c_iflag & IXON) || (t.c_lflag & EXTPROC)) {
		pr_warn("pty %u: %d bytes written into the master are not read yet by the slave's "
			"reader and are not saved (canonical mode or IXON): they stay with a running "
			"tree, a restore will not have them", index, avail);
		return 0;
	}
	if (drain(slave, false, &h->queued, &h->nr_queued) < 0) {
		pr_perror("pty %u: can't read the bytes queued at the slave", index);
		return -1;
	}
	if (!h->nr_queued)
		return 0;
	int ret = termios_for_now(slave, &sv, 0, INPUT_MAP_FLAGS, INPUT_LOCAL_FLAGS);
	if (ret == 0)
		ret = write_all(master, h->queued, h->nr_queued);
	if (ret == 0 && !wait_readable(slave, h->nr_queued)) {
		errno = ETIMEDOUT;
		ret = -1;
	}
	termios_back(slave, &sv);
	if (ret < 0) {
		pr_perror("pty %u: can't put %zu queued bytes back for the slave's reader", index,
			  h->nr_queued);
		return -1;
	}
	pr_info("pty %u: %zu bytes queued for the slave's reader saved", index, h->nr_queued);
	return 0;
}

/* Both queues of a pair whose master the tree holds. Our own slave file
 * reads and writes the slave side; the master's only file is the task's,
 * made non-blocking for the moment. */
static int pty_copy_queues(struct file_table *t, int mi)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	TtyInfoEntry *m = d->ttys[mi];
	uint32_t index = m->pty->index;
	int si = tty_info_index(t, PTY_ID(index, false));
	struct tty_holder *mh = &d->holders[mi];
	int ret = -1, slave = -1, lock = 0;

	int master = files_take_fd(mh->pid, mh->fd, mh->path);
	if (master < 0)
		return -1;
	int fl = fcntl(master, F_GETFL);
	if (fl < 0 || fcntl(master, F_SETFL, fl | O_NONBLOCK) < 0) {
		pr_perror("pty %u: can't make its master non-blocking to save the queued bytes", index);
		goto out;
	}
	ioctl(master, TIOCGPTLCK, &lock);
	if (lock)
		set_lock(master, false);
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (lock)
		set_lock(master, true);
	if (slave < 0) {
		pr_perror("pty %u: can't open its slave to save the queued bytes", index);
		goto out;
	}
	if (copy_master_queue(master, slave, m->packet_mode, mh, index) < 0)
		goto out;
	if (si >= 0 && copy_slave_queue(master, slave, &d->holders[si], index) < 0)
		goto out;
	ret = 0;
out:
	if (fl >= 0)
		fcntl(master, F_SETFL, fl);
	if (slave >= 0)
		close(slave);
	close(master);
	return ret;
}

/* Bytes typed into a terminal the tree does not own: not saved. */
static void warn_foreign_queue(const struct tty_holder *h)
{
	int n = 0, fd = files_take_fd(h->pid, h->fd, h->path);
	if (fd >= 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0)
		pr_warn("pid %d: fd %d (%s): %d bytes of input not read yet are not saved (the "
			"terminal is not the tree's)", h->pid, h->fd, h->path, n);
	if (fd >= 0)
		close(fd);
}

static int tty_copy_queues(struct file_table *t)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	for (int i = 0; i < d->nr_ttys; i++) {
		const TtyInfoEntry *ti = d->ttys[i];
		if (ti->type != TTY_TYPE__PTY)
			continue;
		if (PTY_IS_MASTER(ti->id)) {
			if (pty_copy_queues(t, i) < 0)
				return -1;
		} else if (!dump_master_of(t, i)) {
			warn_foreign_queue(&d->holders[i]);
		}
	}
	return 0;
}

static int tty_write_queued(struct file_table *t, int dirfd)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	struct img img;
	bool any = false;
	for (int i = 0; i < d->nr_ttys; i++)
		any |= d->holders[i].nr_queued > 0;
	if (!any)
		return 0;
	if (img_create(dirfd, &img, "tty-data.img", TTY_DATA_MAGIC) < 0)
		return -1;
	for (int i = 0; i < d->nr_ttys; i++) {
		const struct tty_holder *h = &d->holders[i];
		if (!h->nr_queued)
			continue;
		TtyDataEntry e = TTY_DATA_ENTRY__INIT;
		e.tty_id = d->ttys[i]->id;
		e.data.data = h->queued;
		e.data.len = h->nr_queued;
		if (img_write(&img, &e.base) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

/* tty-info.img: one entry per terminal, shared by its files. It is
 * written after every task is dumped: the place to refuse a terminal the
 * tree turned out not to own. */
static int tty_write_info(struct file_table *t, int dirfd)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	struct img img;
	if (!d->nr_ttys)
		return 0;
	if (tty_check_owned(t) < 0 || tty_copy_queues(t) < 0)
		return -1;
	if (img_create(dirfd, &img, "tty-info.img", TTY_INFO_MAGIC) < 0)
		return -1;
	for (int i = 0; i < d->nr_ttys; i++)
		if (img_write(&img, &d->ttys[i]->base) < 0) {
			img_abort(&img);
			return -1;
		}
	return img_finish(&img) < 0 ? -1 : tty_write_queued(t, dirfd);
}

static void tty_free_info(struct file_table *t)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	for (int i = 0; i < d->nr_ttys; i++) {
		protobuf_c_message_free_unpacked(&d->ttys[i]->base, NULL);
		free(d->holders[i].queued);
	}
	free(d->ttys);
	free(d->holders);
}

/* ---- restore ---- */

static const TtyInfoEntry *rst_info(const struct rst_files *rf, uint32_t id)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	for (int i = 0; i < s->nr_ttys; i++)
		if (s->ttys[i]->id == id)
			return s->ttys[i];
	return NULL;
}

/* The index of the tree's own pty a file is on: a pty side whose master
 * is in the image, or /dev/tty standing for the pty whose session it is
 * the controlling terminal of (CRIU's images don't say more). */
static bool rst_owned(const struct rst_files *rf, const TtyInfoEntry *ti, uint32_t *index)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	if (ti->type == TTY_TYPE__PTY && ti->pty) {
		*index = ti->pty->index;
		return rst_info(rf, PTY_ID(*index, true)) != NULL;
	}
	if (ti->type != TTY_TYPE__CTTY || !ti->sid)
		return false;
	for (int i = 0; i < s->nr_ttys; i++) {
		const TtyInfoEntry *m = s->ttys[i];
		if (m->type == TTY_TYPE__PTY && m->pty && PTY_IS_MASTER(m->id) && m->sid == ti->sid) {
			*index = m->pty->index;
			return true;
		}
	}
	return false;
}

static int tty_load_queued(struct rst_files *rf, int dirfd)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	TtyDataEntry **e = NULL;
	int nr = 0;

	if (img_load_all(dirfd, "tty-data.img", TTY_DATA_MAGIC, true, &tty_data_entry__descriptor,
			 (void ***)&e, &nr) < 0)
		return -1;
	s->queued = calloc(nr ? nr : 1, sizeof(*s->queued));
	for (int i = 0; i < nr; i++) {
		struct tty_queued *q = s->queued ? &s->queued[i] : NULL;
		if (q && e[i]->data.len <= TTY_DATA_MAX && (q->data = malloc(e[i]->data.len + 1))) {
			q->id = e[i]->tty_id;
			q->len = e[i]->data.len;
			memcpy(q->data, e[i]->data.data, q->len);
			s->nr_queued++;
		} else {
			pr_err("image tty-data.img: can't load %zu bytes for tty %u", e[i]->data.len,
			       e[i]->tty_id);
			nr = -nr;
		}
	}
	for (int i = 0; i < (nr < 0 ? -nr : nr); i++)
		img_free(e[i]);
	free(e);
	return nr < 0 ? -1 : 0;
}

static const struct tty_queued *rst_queued(const struct rst_files *rf, uint32_t id)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	for (int i = 0; i < s->nr_queued; i++)
		if (s->queued[i].id == id)
			return &s->queued[i];
	return NULL;
}

static int tty_load_info(struct rst_files *rf, int dirfd)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	/* --shell-job: the terminal stasis runs on stands for the user's */
	s->shell_tty_fd = !rf->o->shell_job ? -1 : isatty(0) ? 0 : isatty(1) ? 1 : isatty(2) ? 2 : -1;
	if (img_load_all(dirfd, "tty-info.img", TTY_INFO_MAGIC, true, &tty_info_entry__descriptor,
			 (void ***)&s->ttys, &s->nr_ttys) < 0)
		return -1;
	for (int i = 0; i < s->nr_ttys; i++) {
		const TtyInfoEntry *ti = s->ttys[i];
		if (ti->type == TTY_TYPE__PTY && !ti->pty) {
			pr_err("image tty-info.img: pty %u has no index", ti->id);
			return -1;
		}
	}
	return tty_load_queued(rf, dirfd);
}

static void tty_unload_info(struct rst_files *rf)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	for (int i = 0; i < s->nr_ttys; i++)
		img_free(s->ttys[i]);
	free(s->ttys);
	free(s->ptys);
	for (int i = 0; i < s->nr_queued; i++)
		free(s->queued[i].data);
	free(s->queued);
}

static void termios_from_entry(struct termios *tio, const TermiosEntry *e)
{
	memset(tio, 0, sizeof(*tio));
	tio->c_iflag = e->c_iflag;
	tio->c_oflag = e->c_oflag;
	tio->c_cflag = e->c_cflag;
	tio->c_lflag = e->c_lflag;
	tio->c_line = e->c_line;
	for (size_t i = 0; i < e->n_c_cc && i < KERNEL_NCCS; i++)
		tio->c_cc[i] = e->c_cc[i];
	/* the speeds are in c_cflag (CBAUD) for the kernel */
}

/* /dev/ptmx until it hands out the saved index: the kernel gives the
 * lowest free one, so lower ones are held meanwhile. If the index is
 * taken, the pair gets another one (the tasks see a new /dev/pts/N). */
static int open_ptmx(uint32_t want)
{
	int held[PTMX_TRIES], nr = 0, fd = -1;

	while (nr < PTMX_TRIES) {
		int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (m < 0 && errno == ENOENT)
			m = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		unsigned idx;
		if (m < 0 || ioctl(m, TIOCGPTN, &idx) < 0) {
			pr_perror("can't open /dev/ptmx for pty %u", want);
			if (m >= 0)
				close(m);
			break;
		}
		if (idx == want || idx > want) {
			if (idx != want)
				pr_warn("pty %u is taken: the pair is restored as pty %u", want, idx);
			fd = m;
			break;
		}
		held[nr++] = m;
	}
	if (fd < 0 && nr == PTMX_TRIES) {
		/* the lowest one we held will do */
		pr_warn("pty %u is out of reach: the pair gets another index", want);
		fd = held[--nr];
	}
	while (nr > 0)
		close(held[--nr]);
	return fd;
}

/* A new open file description of the pair's slave. */
static int open_slave(const struct made_pty *p, int flags)
{
	if (p->locked && set_lock(p->master, false) < 0)
		return -1;
	int fd = ioctl(p->master, TIOCGPTPEER, (flags & (O_ACCMODE | O_NONBLOCK)) | O_NOCTTY);
	int err = errno;
	if (p->locked)
		set_lock(p->master, true);
	errno = err;
	return fd;
}

/* The saved terminal settings onto the new pair (through its slave). */
static int pty_settings_restore(struct made_pty *p)
{
	const TtyInfoEntry *ti = p->info;
	struct termios tio;

	if (ti->termios_locked) {
		termios_from_entry(&tio, ti->termios_locked);
		if (ioctl(p->slave, TIOCSLCKTRMIOS, &tio) < 0)
			return -1;
	}
	if (ti->termios) {
		termios_from_entry(&tio, ti->termios);
		if (ioctl(p->slave, TCSETS, &tio) < 0)
			return -1;
	}
	if (ti->winsize) {
		struct winsize ws = { ti->winsize->ws_row, ti->winsize->ws_col, ti->winsize->ws_xpixel,
				      ti->winsize->ws_ypixel };
		if (ioctl(p->slave, TIOCSWINSZ, &ws) < 0)
			return -1;
	}
	int pkt = ti->packet_mode;
	if (pkt && ioctl(p->master, TIOCPKT, &pkt) < 0)
		return -1;
	if (ti->exclusive && ioctl(p->slave, TIOCEXCL) < 0)
		return -1;
	return 0;
}

/* The saved queued bytes into the new pair, before its settings: written
 * with the processing that would change them off (see the dump side). */
static int pty_queues_restore(struct rst_files *rf, struct made_pty *p)
{
	const struct tty_queued *for_master = rst_queued(rf, PTY_ID(p->index, true));
	const struct tty_queued *for_slave = rst_queued(rf, PTY_ID(p->index, false));
	struct termios tio;

	if (!for_master && !for_slave)
		return 0;
	if (p->info->termios)
		termios_from_entry(&tio, p->info->termios);
	else if (ioctl(p->slave, TCGETS, &tio) < 0)
		return -1;
	tio.c_oflag &= ~OPOST;
	if (for_slave) {
		tio.c_iflag &= ~(INPUT_MAP_FLAGS | IXON);
		tio.c_lflag &= ~(INPUT_LOCAL_FLAGS | ICANON);
	}
	if (ioctl(p->slave, TCSETS, &tio) < 0)
		return -1;
	if (for_slave && (write_all(p->master, for_slave->data, for_slave->len) < 0 ||
			  !wait_readable(p->slave, for_slave->len))) {
		pr_perror("pty %u: can't put back %zu bytes for the slave's reader", p->index, for_slave->len);
		return -1;
	}
	if (for_master && write_all(p->slave, for_master->data, for_master->len) < 0) {
		pr_perror("pty %u: can't put back %zu bytes for the master's reader", p->index,
			  for_master->len);
		return -1;
	}
	pr_info("pty %u: %zu + %zu queued bytes put back", p->index, for_master ? for_master->len : 0,
		for_slave ? for_slave->len : 0);
	return 0;
}

static struct made_pty *make_pty(struct rst_files *rf, uint32_t index)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	const TtyInfoEntry *si = rst_info(rf, PTY_ID(index, false));
	const TtyInfoEntry *mi = rst_info(rf, PTY_ID(index, true));
	struct made_pty *n = realloc(s->ptys, (s->nr_ptys + 1) * sizeof(*n));
	if (!n)
		return NULL;
	s->ptys = n;
	struct made_pty *p = &s->ptys[s->nr_ptys];
	*p = (struct made_pty){ .index = index, .master = -1, .slave = -1, .info = si ? si : mi };
	p->master = open_ptmx(index);
	if (p->master < 0)
		return NULL;
	if (set_lock(p->master, false) < 0 || (p->slave = open_slave(p, O_RDWR)) < 0) {
		pr_perror("can't open the slave of the new pty for pty %u", index);
		goto err;
	}
	if (pty_queues_restore(rf, p) < 0 || pty_settings_restore(p) < 0) {
		pr_perror("can't give pty %u its saved terminal settings", index);
		goto err;
	}
	p->locked = mi->locked;
	if (p->locked && set_lock(p->master, true) < 0) {
		pr_perror("can't lock pty %u", index);
		goto err;
	}
	unsigned now = index;
	ioctl(p->master, TIOCGPTN, &now);
	pr_info("pty %u restored as /dev/pts/%u", index, now);
	s->nr_ptys++;
	return p;
err:
	close(p->master);
	if (p->slave >= 0)
		close(p->slave);
	return NULL;
}

static struct made_pty *get_pty(struct rst_files *rf, uint32_t index)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	for (int i = 0; i < s->nr_ptys; i++)
		if (s->ptys[i].index == index)
			return &s->ptys[i];
	return make_pty(rf, index);
}

/* The user's terminal: for --shell-job, the one stasis runs on. */
static int open_foreign(struct rst_files *rf, const FileEntry *fe, const TtyInfoEntry *ti)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	char path[64];
	int flags = (fe->tty->flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_NOCTTY;

	if (!rf->o->shell_job || s->shell_tty_fd < 0) {
		pr_err("the image holds a terminal the tree does not own (tty[%x:%x]); restore it "
		       "from a terminal with --shell-job, or hand one in with --inherit-fd "
		       "fd[N]:tty[%x:%x]", ti->rdev, ti->dev, ti->rdev, ti->dev);
		return -1;
	}
	if (ti->type == TTY_TYPE__CTTY) {
		/* stasis's own controlling terminal, which the job keeps */
		int fd = open("/dev/tty", flags);
		if (fd < 0)
			pr_perror("can't open /dev/tty (stasis's controlling terminal) for --shell-job");
		return fd;
	}
	/* a fresh open file description on our terminal, with the saved flags */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->shell_tty_fd);
	int fd = open(path, flags);
	if (fd < 0)
		pr_perror("can't reopen the terminal for --shell-job");
	return fd;
}

static int tty_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const TtyInfoEntry *ti = fe->tty ? rst_info(rf, fe->tty->tty_info_id) : NULL;
	if (!ti) {
		pr_err("image files.img: terminal file %u has no tty-info entry", fe->id);
		return -1;
	}
	uint32_t index;
	if (!rst_owned(rf, ti, &index))
		return open_foreign(rf, fe, ti);
	struct made_pty *p = get_pty(rf, index);
	if (!p)
		return -1;
	int fd;
	if (ti->type == TTY_TYPE__PTY && PTY_IS_MASTER(ti->id)) {
		fd = dup(p->master);
		if (fd >= 0 && fcntl(fd, F_SETFL, fe->tty->flags & O_NONBLOCK) < 0) {
			close(fd);
			fd = -1;
		}
	} else {
		/* a pty slave, or /dev/tty on it (restored as the slave itself) */
		fd = open_slave(p, fe->tty->flags);
	}
	if (fd < 0)
		pr_perror("can't open file %u of pty %u", fe->id, index);
	return fd;
}

/* A session leader takes back the pty that was its controlling terminal
 * (before it forks: children inherit it); then a member of the terminal's
 * foreground group makes that group the foreground again (the group
 * exists once its members have joined it). */
static int tty_restore_ctty(struct rst_files *rf, pid_t pid, pid_t sid, pid_t pgid)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	for (int i = 0; i < s->nr_ptys; i++) {
		const struct made_pty *p = &s->ptys[i];
		pid_t tsid = p->info->sid, tpgrp = p->info->pgrp;
		/* not in that session (--shell-job keeps the root in stasis's) */
		if (!tsid || tsid != sid || getsid(0) != tsid)
			continue;
		if (pid == sid && ioctl(p->slave, TIOCSCTTY, 0) < 0) {
			pr_perror("pid %d: can't take pty %u back as its controlling terminal", pid, p->index);
			return -1;
		}
		if (!tpgrp || tpgrp != pgid)
			continue;
		/* a background group asking would get SIGTTOU */
		sigset_t ttou, old;
		sigemptyset(&ttou);
		sigaddset(&ttou, SIGTTOU);
		sigprocmask(SIG_BLOCK, &ttou, &old);
		int ret = ioctl(p->slave, TIOCSPGRP, &tpgrp);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (ret < 0) {
			pr_perror("pid %d: can't make group %d the foreground of pty %u", pid, tpgrp, p->index);
			return -1;
		}
	}
	return 0;
}

/* --inherit-fd fd[N]:tty[RDEV:DEV], as CRIU names a terminal. */
static bool tty_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	const TtyInfoEntry *ti = fe->tty ? rst_info(rf, fe->tty->tty_info_id) : NULL;
	if (!ti)
		return false;
	snprintf(buf, len, "tty[%x:%x]", ti->rdev, ti->has_dev ? ti->dev : 0);
	return true;
}

const struct fd_kind fd_kind_tty = {
	.name = "tty", .type = FD_TYPES__TTY,
	.dump_state = sizeof(struct tty_dump), .rst_state = sizeof(struct tty_rst),
	.owns = tty_owns, .dump = tty_dump, .open = tty_open,
	.inherit_name = tty_inherit_name, .before_fork = tty_restore_ctty,
	.write_images = tty_write_info, .free_images = tty_free_info,
	.load_images = tty_load_info, .unload_images = tty_unload_info,
};
