/* Terminals: bytes in flight inside a pair of the tree, written at one
 * side and not yet read at the other (tty-data.img, CRIU's format).
 *
 * Dump: reading a side takes its bytes; they are put straight back,
 * written into the other side with the processing that would change them
 * switched off for the moment (output processing for what the slave
 * wrote; echo, signals and input mapping for what the master wrote), so
 * the tree keeps them whether it goes on running or not. Input for a
 * slave reader in canonical mode is written back in canonical mode, so its
 * lines form again (as CRIU, which saves it too); only input under
 * external line editing (EXTPROC) is left alone and not saved. Restore
 * writes them into the new pair the same way. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "files/tty.h"
#include "image/img.h"
#include "util/io.h"
#include "util/log.h"
#include "util/grow.h"

/* How long to wait for bytes written into a pty to reach its reader. */
#define TTY_FLUSH_WAIT_MS 2000

/* All that is queued for readers of fd (non-blocking). In packet mode
 * each read starts with a status byte: data packets keep their data,
 * status-only packets are dropped. */
static int drain(int fd, bool packet, uint8_t **out, size_t *len)
{
	size_t cap = 0;
	uint8_t *buf = NULL;

	*len = 0;
	for (;;) {
		/* room for a read that says whether more is queued, up to the limit */
		if (*len + 4097 > TTY_DATA_MAX || grow_array(buf, cap, *len + 4097, 16384) < 0) {
			errno = ENOBUFS;
			goto err;
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

/* Bytes before the end of the last complete line of data: what a
 * canonical reader can see of it (FIONREAD counts whole lines only). */
static size_t canon_lines_len(const struct termios *t, const uint8_t *data, size_t len)
{
	for (size_t i = len; i > 0; i--) {
		uint8_t c = data[i - 1];
		if (c == '\n' || (c && (c == t->c_cc[VEOL] || c == t->c_cc[VEOL2])))
			return i;
	}
	return 0;
}

/* Bytes a canonical reader would take for line editing if written again
 * (a byte once escaped with ^V, an end of file): the lines may differ. */
static bool canon_specials_in(const struct termios *t, const uint8_t *data, size_t len)
{
	const int special[] = { VEOF, VERASE, VKILL, VWERASE, VREPRINT };
	for (size_t i = 0; i < len; i++)
		for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++)
			if (data[i] == t->c_cc[special[k]] && data[i])
				return true;
	return false;
}

/* Writes bytes into the master for the slave's reader with the input
 * processing that would change them off (echo, signals, mapping, flow
 * control), keeping canonical mode so lines form again as they were, and
 * waits until the slave's reader can see them. */
static int pty_input_put(int master, int slave, const struct termios *saved, const uint8_t *data, size_t len)
{
	struct termios tmp = *saved;
	tmp.c_iflag &= ~(INPUT_MAP_FLAGS | IXON);
	tmp.c_lflag &= ~INPUT_LOCAL_FLAGS;
	if (ioctl(slave, TCSETS, &tmp) < 0 || write_all(master, data, len) < 0)
		return -1;
	size_t visible = tmp.c_lflag & ICANON ? canon_lines_len(&tmp, data, len) : len;
	if (!wait_readable(slave, visible)) {
		errno = ETIMEDOUT;
		return -1;
	}
	/* a line not ended yet counts nowhere; polling a reader that has
	 * no whole line makes the kernel finish passing on what was written */
	if (visible < len) {
		struct pollfd p = { slave, POLLIN, 0 };
		poll(&p, 1, 0);
	}
	return 0;
}

/* Copy of what the master wrote and the slave's reader has not read.
 * A canonical reader's queue is read with canonical mode off for the
 * moment, so a line not ended yet comes out too (after the whole ones);
 * written back in canonical mode, the lines form again. */
static int copy_slave_queue(int master, int slave, struct tty_holder *h, uint32_t index)
{
	struct termios t;
	struct termios_saved sv;

	if (ioctl(slave, TCGETS, &t) < 0)
		return 0;
	if (t.c_lflag & EXTPROC) {
		int avail = 0;
		if (ioctl(slave, FIONREAD, &avail) == 0 && avail > 0)
			pr_warn("pty %u: %d bytes written into the master are not read yet by the slave's "
				"reader and are not saved (external line editing, EXTPROC): they stay with "
				"a running tree, a restore will not have them", index, avail);
		return 0;
	}
	if (termios_for_now(slave, &sv, 0, 0, ICANON) < 0) {
		pr_perror("pty %u: can't switch canonical mode off to read its input queue", index);
		termios_back(slave, &sv);
		return -1;
	}
	int ret = drain(slave, false, &h->queued, &h->nr_queued);
	if (ret < 0)
		pr_perror("pty %u: can't read the bytes queued at the slave", index);
	else if (h->nr_queued)
		ret = pty_input_put(master, slave, &t, h->queued, h->nr_queued);
	termios_back(slave, &sv);
	if (ret < 0) {
		pr_perror("pty %u: can't put %zu queued bytes back for the slave's reader", index,
			  h->nr_queued);
		return -1;
	}
	if (!h->nr_queued)
		return 0;
	if ((t.c_lflag & ICANON) && canon_specials_in(&t, h->queued, h->nr_queued))
		pr_warn("pty %u: the input queued for the slave's reader holds line editing characters "
			"taken as data: a restore may divide its lines otherwise", index);
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

int tty_copy_queues(struct file_table *t)
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

int tty_write_queued(struct file_table *t, int dirfd)
{
	struct tty_dump *d = files_dump_state(t, &fd_kind_tty);
	struct img img;
	bool any = false;
	for (int i = 0; i < d->nr_ttys; i++)
		any |= d->holders[i].nr_queued > 0;
	if (!any)
		return 0;
	if (img_create(dirfd, &img, IMG_TTY_DATA, 0) < 0)
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

int tty_load_queued(struct rst_files *rf, int dirfd)
{
	struct tty_rst *s = files_rst_state(rf, &fd_kind_tty);
	TtyDataEntry **e = NULL;
	int nr = 0;

	if (img_load_all(dirfd, IMG_TTY_DATA, 0, (void ***)&e, &nr) < 0)
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

/* The saved queued bytes into the new pair, before its settings: written
 * with the processing that would change them off (see the dump side). */
int pty_queues_restore(struct rst_files *rf, struct made_pty *p)
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
	if (for_slave && pty_input_put(p->master, p->slave, &tio, for_slave->data, for_slave->len) < 0) {
		pr_perror("pty %u: can't put back %zu bytes for the slave's reader", p->index, for_slave->len);
		return -1;
	}
	if (ioctl(p->slave, TCSETS, &tio) < 0)
		return -1;
	if (for_master && write_all(p->slave, for_master->data, for_master->len) < 0) {
		pr_perror("pty %u: can't put back %zu bytes for the master's reader", p->index,
			  for_master->len);
		return -1;
	}
	pr_info("pty %u: %zu + %zu queued bytes put back", p->index, for_master ? for_master->len : 0,
		for_slave ? for_slave->len : 0);
	return 0;
}
