/* Terminals, dump: which terminal an fd is on (tty_classify), its
 * tty_info_entry (settings, session, foreground group, lock and packet
 * state), and once every task is dumped, whether the tree owns each pty
 * (holds its master); tty-info.img. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "files/reg.h"
#include "files/tty.h"
#include "image/img.h"
#include "ns/user.h"
#include "util/log.h"

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
	tty_cc_pack(e->c_cc, tio->c_cc);
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
	/* as the tree's user namespace sees them (CRIU's too) */
	ti->uid = userns_dump_id(USERNS_UID, f->st.st_uid);
	ti->gid = userns_dump_id(USERNS_GID, f->st.st_gid);
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

int tty_info_index(const struct file_table *t, uint32_t id)
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

/* devpts numbers every slave 136:INDEX (minors have 20 bits). */
static uint32_t pts_index(dev_t rdev)
{
	return minor(rdev);
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

static void strip_deleted(char *path)
{
	static const char suffix[] = " (deleted)";
	size_t n = strlen(path), k = sizeof(suffix) - 1;
	if (n > k && !strcmp(path + n - k, suffix))
		path[n - k] = '\0';
}

/* A pty of a devpts instance other than the tree's /dev/pts (a devpts
 * mounted with newinstance elsewhere) would come back on /dev/pts:
 * refused. A master opened through /dev/ptmx is /dev/pts's. */
static int check_devpts(const struct fd_facts *f, enum tty_kind kind)
{
	char path[64];
	struct stat pts, dev;

	if (kind != TK_MASTER && kind != TK_SLAVE)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/root/dev/pts", f->pid);
	if (stat(path, &pts) < 0)
		return 0;	/* no /dev/pts to compare with: as before */
	snprintf(path, sizeof(path), "/proc/%d/root/dev", f->pid);
	if (f->st.st_dev == pts.st_dev || (kind == TK_MASTER && stat(path, &dev) == 0 && f->st.st_dev == dev.st_dev))
		return 0;
	pr_err("pid %d: fd %d (%s) is a pty of another devpts instance than /dev/pts; stasis can't dump it "
	       "yet (restored, it would be a pty of /dev/pts)", f->pid, f->fd, f->path);
	return -1;
}

int tty_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	enum tty_kind kind;
	uint32_t id = 0, index;
	TtyType type = TTY_TYPE__TTY_UNKNOWN;

	int lfd = files_take(f);
	if (lfd < 0)
		return -1;
	if (tty_classify(lfd, f, &kind, &id, &type, &index) < 0 || check_devpts(f, kind) < 0)
		goto err;
	/* Ptys can be the tree's own; the console and virtual terminals are
	 * reopened by path (as CRIU); other terminals are the user's. */
	/* orphan_pts_master: a pty slave (or /dev/tty on one) whose master
	 * is outside the tree, as a container's console */
	bool orphan_ok = o->orphan_pts_master && (kind == TK_SLAVE || (kind == TK_CTTY && index != ~0u));
	bool foreign_ok = o->shell_job || ext_tty_allowed(o, f) || orphan_ok;
	bool by_path = kind == TK_CONSOLE || kind == TK_VT;
	if (kind != TK_MASTER && kind != TK_SLAVE && !(kind == TK_CTTY && index != ~0u) && !by_path &&
	    !foreign_ok) {
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
		if (ti) {
			d->holders[d->nr_ttys - 1].index = kind == TK_MASTER || kind == TK_SLAVE ||
							       kind == TK_CTTY ? index : ~0u;
			d->holders[d->nr_ttys - 1].orphan = orphan_ok;
		}
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
	/* The path too, as a regular file entry with the file's mode: CRIU
	 * opens terminals by it (stasis opens ptys by the pair and index, not
	 * by path). A slave whose master is closed is gone from devpts: its
	 * name is still the one to open. */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", f->path);
	if (kind == TK_SLAVE)
		strip_deleted(path);
	if (path[0] == '/' && reg_file_add(t, path, tf->flags, 0, f->st.st_mode, &tf->regf_id) == 0)
		tf->has_regf_id = true;
	return 0;
err:
	close(lfd);
	return -1;
}

/* The pty a slave-side info (pty slave or /dev/tty on one) belongs to,
 * if the tree holds its master. */
const TtyInfoEntry *dump_master_of(const struct file_table *t, int i)
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
		/* hung up (its master closed): the tree's own, restored hung up */
		if (!m && ti->type == TTY_TYPE__PTY && !ti->termios)
			continue;
		if (!m && h->orphan && ti->type == TTY_TYPE__CTTY) {
			/* /dev/tty on an orphan slave: its session, for restore to
			 * find the slave by (CRIU's images name no index for it) */
			const TtyInfoEntry *sl = tty_info_find(t, PTY_ID(h->index, false));
			ti->sid = sl ? sl->sid : 0;
			ti->pgrp = sl ? sl->pgrp : 0;
		}
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

/* tty-info.img: one entry per terminal, shared by its files. It is
 * written after every task is dumped: the place to refuse a terminal the
 * tree turned out not to own. */
int tty_write_info(struct file_table *t, int dirfd)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	struct img img;
	if (!d->nr_ttys)
		return 0;
	if (tty_check_owned(t) < 0 || tty_copy_queues(t) < 0)
		return -1;
	if (img_create(dirfd, &img, IMG_TTY_INFO, 0) < 0)
		return -1;
	for (int i = 0; i < d->nr_ttys; i++)
		if (img_write(&img, &d->ttys[i]->base) < 0) {
			img_abort(&img);
			return -1;
		}
	return img_finish(&img) < 0 ? -1 : tty_write_queued(t, dirfd);
}

void tty_free_info(struct file_table *t)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	for (int i = 0; i < d->nr_ttys; i++) {
		protobuf_c_message_free_unpacked(&d->ttys[i]->base, NULL);
		free(d->holders[i].queued);
	}
	free(d->ttys);
	free(d->holders);
}
