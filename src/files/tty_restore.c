/* Terminals, restore: a pty pair of the tree is made anew (the same
 * index when it is free) with its settings and queued bytes, each of its
 * files opened on it; a terminal that is not the tree's is the user's
 * (--shell-job: the one stasis runs on). A session leader takes its pty
 * back as its controlling terminal before it forks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "files/tty.h"
#include "image/img.h"
#include "ns/user.h"
#include "util/log.h"

/* How many pty indices restore may hold while looking for the saved one. */
#define PTMX_TRIES 64

static const TtyInfoEntry *rst_info(const struct rst_files *rf, uint32_t id)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	for (int i = 0; i < s->nr_ttys; i++)
		if (s->ttys[i]->id == id)
			return s->ttys[i];
	return NULL;
}

/* A pty slave hung up at dump (its master was closed): no settings, and
 * the tree's own, as CRIU sees it. Restored on a new pair whose master is
 * closed once restore is done, so it is hung up again. */
static bool pty_hung_up(const TtyInfoEntry *ti)
{
	return ti->type == TTY_TYPE__PTY && !PTY_IS_MASTER(ti->id) && !ti->termios;
}

/* The index of the tree's own pty a file is on: a pty side whose master
 * is in the image, or /dev/tty standing for the pty whose session it is
 * the controlling terminal of (CRIU's images don't say more). */
static bool rst_owned(const struct rst_files *rf, const TtyInfoEntry *ti, uint32_t *index)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	if (ti->type == TTY_TYPE__PTY && ti->pty) {
		*index = ti->pty->index;
		return rst_info(rf, PTY_ID(*index, true)) != NULL || pty_hung_up(ti);
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

int tty_load_info(struct rst_files *rf, int dirfd)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	/* --shell-job: the terminal stasis runs on stands for the user's */
	s->shell_tty_fd = !rf->o->shell_job ? -1 : isatty(0) ? 0 : isatty(1) ? 1 : isatty(2) ? 2 : -1;
	if (img_load_all(dirfd, IMG_TTY_INFO, 0, (void ***)&s->ttys, &s->nr_ttys) < 0)
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

void tty_unload_info(struct rst_files *rf)
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

void termios_from_entry(struct termios *tio, const TermiosEntry *e)
{
	memset(tio, 0, sizeof(*tio));
	tio->c_iflag = e->c_iflag;
	tio->c_oflag = e->c_oflag;
	tio->c_cflag = e->c_cflag;
	tio->c_lflag = e->c_lflag;
	tio->c_line = e->c_line;
	tty_cc_unpack(tio->c_cc, e->c_cc, e->n_c_cc);
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

	/* setting the lock takes CAP_SYS_ADMIN of the host (not a user
	 * namespace's): only where it differs from the new pair's */
	struct termios cur;
	memset(&cur, 0, sizeof(cur));	/* the kernel's is shorter than libc's */
	if (ti->termios_locked) {
		termios_from_entry(&tio, ti->termios_locked);
		bool same = ioctl(p->slave, TIOCGLCKTRMIOS, &cur) == 0 && cur.c_iflag == tio.c_iflag &&
			    cur.c_oflag == tio.c_oflag && cur.c_cflag == tio.c_cflag && cur.c_lflag == tio.c_lflag &&
			    cur.c_line == tio.c_line && !memcmp(cur.c_cc, tio.c_cc, sizeof(cur.c_cc));
		if (!same && ioctl(p->slave, TIOCSLCKTRMIOS, &tio) < 0)
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

/* Pty masters made before the files, in this process: a bind mount of a
 * pty slave (a container's /dev/console is its console's slave, bound
 * from the container's devpts) needs the slave to exist when the mounts
 * are made. Taken by the pair of that index when the files come. */
static struct premade { uint32_t index; int master; } premade[8];
static int nr_premade;

static int highest_fd(void)
{
	int max = 2;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (atoi(de->d_name) > max)
			max = atoi(de->d_name);
	if (d)
		closedir(d);
	return max;
}

int tty_premake_pty(int devpts, uint32_t index)
{
	int held[PTMX_TRIES], nr = 0, fd = -1;
	unsigned idx = 0;

	if (nr_premade == (int)(sizeof(premade) / sizeof(premade[0]))) {
		pr_err("pty %u: more than %d bind-mounted ptys", index, nr_premade);
		return -1;
	}
	/* the kernel hands out the lowest free index: lower ones held meanwhile */
	while (nr < PTMX_TRIES) {
		int m = openat(devpts, "ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (m < 0 || ioctl(m, TIOCGPTN, &idx) < 0) {
			pr_perror("pty %u: can't open the ptmx of its devpts", index);
			if (m >= 0)
				close(m);
			break;
		}
		if (idx >= index) {
			fd = m;
			break;
		}
		held[nr++] = m;
	}
	while (nr > 0)
		close(held[--nr]);
	if (fd >= 0 && idx != index) {
		pr_err("pty %u is taken in its devpts: its bind mount can't be made", index);
		close(fd);
		return -1;
	}
	if (fd < 0)
		return -1;
	/* above every fd open now (the pages images sit above the pool and
	 * the service fds): the tree's fds are placed at fixed numbers below,
	 * and a pool slot found open counts as opened already */
	int high = fcntl(fd, F_DUPFD_CLOEXEC, highest_fd() + 1);
	close(fd);
	if (high < 0) {
		pr_perror("pty %u: can't move its master above our fds", index);
		return -1;
	}
	premade[nr_premade++] = (struct premade){ index, high };
	pr_info("pty %u made before the mounts (bound somewhere)", index);
	return 0;
}

static int premade_take(uint32_t index)
{
	for (int i = 0; i < nr_premade; i++)
		if (premade[i].index == index && premade[i].master >= 0) {
			int fd = premade[i].master;
			premade[i].master = -1;
			return fd;
		}
	return -1;
}

static struct made_pty *make_pty(struct rst_files *rf, uint32_t index)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	const TtyInfoEntry *si = rst_info(rf, PTY_ID(index, false));
	const TtyInfoEntry *mi = rst_info(rf, PTY_ID(index, true));
	struct made_pty *n = realloc(s->ptys, (s->nr_ptys + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory making pty %u", index);
		return NULL;
	}
	s->ptys = n;
	struct made_pty *p = &s->ptys[s->nr_ptys];
	*p = (struct made_pty){ .index = index, .master = -1, .slave = -1, .info = si ? si : mi };
	p->master = premade_take(index);
	if (p->master < 0)
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
	p->locked = mi && mi->locked;
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

/* A terminal's owner and mode as they were (devpts gives a new slave the
 * restorer's uid, the mount's gid and mode): the mode from the path's
 * entry, as CRIU keeps it. A change the restoring user may not make (a
 * client's restore is the client) fails as the kernel says. */
static int owner_restore(struct rst_files *rf, const FileEntry *fe, const TtyInfoEntry *ti, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		pr_perror("%s: can't stat the terminal", rf->who);
		return -1;
	}
	uid_t uid = ti->has_uid ? userns_rst_id(USERNS_UID, ti->uid) : st.st_uid;
	gid_t gid = ti->has_gid ? userns_rst_id(USERNS_GID, ti->gid) : st.st_gid;
	if ((uid != st.st_uid || gid != st.st_gid) && fchown(fd, uid, gid) < 0) {
		pr_perror("%s: can't give the terminal its owner %u:%u back", rf->who, uid, gid);
		return -1;
	}
	const FileEntry *r = fe->tty->has_regf_id ? files_find(rf, fe->tty->regf_id) : NULL;
	mode_t mode = r && r->reg && r->reg->has_mode ? r->reg->mode & 07777 : st.st_mode & 07777;
	if (mode != (st.st_mode & 07777) && fchmod(fd, mode) < 0) {
		pr_perror("%s: can't give the terminal its mode %o back", rf->who, mode);
		return -1;
	}
	return 0;
}

/* The saved settings onto a terminal reopened by its path, where they
 * differ (the terminal may be shared: what is already so is left be). */
static int simple_params_restore(struct rst_files *rf, const TtyInfoEntry *ti, int fd)
{
	struct termios now, want;
	struct winsize ws;

	memset(&now, 0, sizeof(now));
	if (ti->termios_locked && ioctl(fd, TIOCGLCKTRMIOS, &now) == 0) {
		termios_from_entry(&want, ti->termios_locked);
		if (memcmp(&now, &want, sizeof(now)) && ioctl(fd, TIOCSLCKTRMIOS, &want) < 0)
			goto err;
	}
	memset(&now, 0, sizeof(now));
	if (ti->termios && ioctl(fd, TCGETS, &now) == 0) {
		termios_from_entry(&want, ti->termios);
		if (memcmp(&now, &want, sizeof(now)) && ioctl(fd, TCSETS, &want) < 0)
			goto err;
	}
	if (ti->winsize && ioctl(fd, TIOCGWINSZ, &ws) == 0 &&
	    (ws.ws_row != ti->winsize->ws_row || ws.ws_col != ti->winsize->ws_col ||
	     ws.ws_xpixel != ti->winsize->ws_xpixel || ws.ws_ypixel != ti->winsize->ws_ypixel)) {
		ws = (struct winsize){ ti->winsize->ws_row, ti->winsize->ws_col, ti->winsize->ws_xpixel,
				       ti->winsize->ws_ypixel };
		if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
			goto err;
	}
	return 0;
err:
	pr_perror("%s: can't give the terminal its saved settings", rf->who);
	return -1;
}

/* The console, or a virtual terminal (as CRIU: unless --shell-job, which
 * hands the job the user's terminal instead), is reopened by its path,
 * which must still be that device. */
static bool opened_by_path(const struct rst_files *rf, const TtyInfoEntry *ti)
{
	return ti->type == TTY_TYPE__CONSOLE || (ti->type == TTY_TYPE__VT && !rf->o->shell_job);
}

static int open_by_path(struct rst_files *rf, const FileEntry *fe, const TtyInfoEntry *ti)
{
	struct stat st;
	if (!fe->tty->has_regf_id) {
		pr_err("%s: terminal file %u has no path to reopen it by", rf->who, fe->id);
		return -1;
	}
	int fd = files_open_path(rf, fe->tty->regf_id, fe->tty->flags);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_rdev != ti->rdev) {
		pr_err("%s: the terminal's path is no longer device %u:%u", rf->who, major(ti->rdev),
		       minor(ti->rdev));
		goto err;
	}
	if (owner_restore(rf, fe, ti, fd) < 0 || simple_params_restore(rf, ti, fd) < 0)
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

/* RPC orphan_pts_master: a pty slave whose master was outside the tree
 * (a container's console, held by the runtime) comes back on a new pair
 * of the same index, made where the task opens it (its /dev/pts); the
 * pair's master goes to the RPC client, once, at the orphan-pts-master
 * notification (as CRIU), and the client keeps it: ours is closed with
 * the pair at the end of the restore. */
static bool orphan_index(const struct rst_files *rf, const TtyInfoEntry *ti, uint32_t *index)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	if (!rf->o->orphan_pts_master)
		return false;
	if (ti->type == TTY_TYPE__PTY && ti->pty && !PTY_IS_MASTER(ti->id)) {
		*index = ti->pty->index;
		return true;
	}
	/* /dev/tty: the orphan slave of its session */
	for (int i = 0; ti->type == TTY_TYPE__CTTY && ti->sid && i < s->nr_ttys; i++) {
		const TtyInfoEntry *o = s->ttys[i];
		if (o->type == TTY_TYPE__PTY && o->pty && !PTY_IS_MASTER(o->id) && o->sid == ti->sid) {
			*index = o->pty->index;
			return true;
		}
	}
	return false;
}

static int open_orphan_slave(struct rst_files *rf, const FileEntry *fe, const TtyInfoEntry *ti,
			     uint32_t index)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	bool made = true;
	for (int i = 0; i < s->nr_ptys; i++)
		made = made && s->ptys[i].index != index;
	struct made_pty *p = get_pty(rf, index);
	if (!p)
		return -1;
	if (made) {
		if (!rf->o->notify_fd) {
			pr_err("pty %u: its master was outside the tree; orphan_pts_master needs an RPC "
			       "client with notify_scripts to hand the new master to", index);
			return -1;
		}
		if (rf->o->notify_fd(rf->o->notify_ctx, "orphan-pts-master", p->master) < 0)
			return -1;
	}
	int fd = open_slave(p, fe->tty->flags);
	if (fd < 0) {
		pr_perror("can't open file %u on the new pty %u", fe->id, index);
		return -1;
	}
	if (ti->type == TTY_TYPE__PTY && owner_restore(rf, fe, ti, fd) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int tty_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const TtyInfoEntry *ti = fe->tty ? rst_info(rf, fe->tty->tty_info_id) : NULL;
	if (!ti) {
		pr_err("image files.img: terminal file %u has no tty-info entry", fe->id);
		return -1;
	}
	if (opened_by_path(rf, ti))
		return open_by_path(rf, fe, ti);
	uint32_t index;
	if (!rst_owned(rf, ti, &index) && orphan_index(rf, ti, &index))
		return open_orphan_slave(rf, fe, ti, index);
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
		if (fd >= 0 && ti->type == TTY_TYPE__PTY && owner_restore(rf, fe, ti, fd) < 0) {
			close(fd);
			return -1;
		}
	}
	if (fd < 0)
		pr_perror("can't open file %u of pty %u", fe->id, index);
	return fd;
}

/* A session leader takes back the pty that was its controlling terminal
 * (before it forks: children inherit it); then a member of the terminal's
 * foreground group makes that group the foreground again (the group
 * exists once its members have joined it). */
/* TIOCSPGRP from a group that may be in the background (which the
 * kernel would stop with SIGTTOU). */
static int set_foreground(int fd, pid_t pgrp)
{
	sigset_t ttou, old;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	int ret = ioctl(fd, TIOCSPGRP, &pgrp);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/* --shell-job, a root that leads its own group again (restore/tree.c):
 * the user's terminal had stasis's group in the foreground, so it gives
 * the root's group the foreground instead (as CRIU), or the job would be
 * stopped reading it. */
static int shell_job_foreground(struct rst_files *rf, pid_t pid, pid_t pgid)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	if (!rf->o->shell_job || s->shell_tty_fd < 0 || pid != rf->root_pid || pgid != pid ||
	    getpgid(0) != pid)
		return 0;
	pid_t fg = tcgetpgrp(s->shell_tty_fd), ours = getpgid(getppid());
	if (fg <= 0 || fg != ours)
		return 0;	/* not our controlling terminal, or not our job's */
	if (set_foreground(s->shell_tty_fd, pid) < 0) {
		pr_perror("pid %d: can't give its group the foreground of the terminal", pid);
		return -1;
	}
	return 0;
}

int tty_restore_ctty(struct rst_files *rf, pid_t pid, pid_t sid, pid_t pgid)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	if (shell_job_foreground(rf, pid, pgid) < 0)
		return -1;
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
		if (set_foreground(p->slave, tpgrp) < 0) {
			pr_perror("pid %d: can't make group %d the foreground of pty %u", pid, tpgrp, p->index);
			return -1;
		}
	}
	return 0;
}

/* --inherit-fd fd[N]:tty[RDEV:DEV], as CRIU names a terminal. */
bool tty_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	const TtyInfoEntry *ti = fe->tty ? rst_info(rf, fe->tty->tty_info_id) : NULL;
	if (!ti)
		return false;
	snprintf(buf, len, "tty[%x:%x]", ti->rdev, ti->has_dev ? ti->dev : 0);
	return true;
}
