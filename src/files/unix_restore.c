/* Unix sockets, restore: every socket is made once (the pool keeps it)
 * together with the sockets it is tied to: a socketpair for two sockets
 * connected to each other; a listener with, right away, the connections
 * it had accepted (connect to it and accept, so both ends keep the names
 * they had) and then the ones waiting to be accepted. Unread data goes
 * back (unix_queue.c) before options and shutdown are set. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/unix.h"
#include "rpc.pb-c.h"
#include "ns/user.h"
#include "util/log.h"

void unix_unload_images(struct rst_files *rf)
{
	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	for (int i = 0; i < r->nr_m; i++)
		if (r->m[i].ghost >= 0)
			close(r->m[i].ghost);
	for (int i = 0; i < r->nr_q; i++) {
		free(r->q[i].buf);
		free(r->q[i].rights);
	}
	free(r->q);
	free(r->m);
	idmap_free(&r->made_by_ino);
	idmap_free(&r->file_by_ino);
	free(r->listeners);
}

static const UnixSkEntry *usk_of(const struct rst_files *rf, int i)
{
	return rf->e[i]->type == FD_TYPES__UNIXSK ? rf->e[i]->usk : NULL;
}

/* The files' unix sockets by inode, and the listeners among them, made
 * as the files grow: scans of all files for each socket were quadratic
 * (10,000 sockets). Out of memory: -1, the lookups scan. */
static int index_files(const struct rst_files *rf)
{
	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	for (; r->nr_indexed < rf->nr; r->nr_indexed++) {
		const UnixSkEntry *ue = usk_of(rf, r->nr_indexed);
		if (!ue)
			continue;
		if (idmap_add(&r->file_by_ino, ue->ino, r->nr_indexed) < 0)
			return -1;
		if (ue->state == ST_LISTEN && !(ue->uflags & USK_EXTERN)) {
			int *n = realloc(r->listeners, (r->nr_listeners + 1) * sizeof(*n));
			if (!n)
				return -1;
			r->listeners = n;
			r->listeners[r->nr_listeners++] = r->nr_indexed;
		}
	}
	return 0;
}

/* The index in the files of the socket of inode ino, or -1. */
static int index_of_ino(const struct rst_files *rf, uint32_t ino)
{
	const struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	if (index_files(rf) == 0) {
		unsigned pos = 0;
		for (int i; (i = idmap_next(&r->file_by_ino, ino, &pos)) >= 0;)
			if (usk_of(rf, i)->ino == ino)
				return i;
		return -1;
	}
	for (int i = 0; i < rf->nr; i++)
		if (usk_of(rf, i) && usk_of(rf, i)->ino == ino)
			return i;
	return -1;
}

static const UnixSkEntry *by_ino(const struct rst_files *rf, uint32_t ino)
{
	int i = index_of_ino(rf, ino);
	return i < 0 ? NULL : usk_of(rf, i);
}

static struct usk_made *made_find(const struct rst_files *rf, uint32_t ino)
{
	const struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	unsigned pos = 0;
	for (int i; (i = idmap_next(&r->made_by_ino, ino, &pos)) >= 0;)
		if (r->m[i].ino == ino)
			return &r->m[i];
	return NULL;
}

static bool made(const struct rst_files *rf, uint32_t ino)
{
	return made_find(rf, ino) != NULL;
}

/* *fd, the socket of ino just made, is kept above the pool and the fds
 * of the process (which take the image's numbers from the lowest up:
 * a made socket there would be replaced) until unix_open hands it over. */
static int made_add(struct rst_files *rf, uint32_t ino, int *fd)
{
	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	char what[48];
	snprintf(what, sizeof(what), "unix socket %u", ino);
	if ((*fd = files_keep_fd(rf, *fd, what)) < 0)
		return -1;
	struct usk_made *n = realloc(r->m, (r->nr_m + 1) * sizeof(*n));
	if (!n || idmap_add(&r->made_by_ino, ino, r->nr_m) < 0) {
		if (n)
			r->m = n;
		pr_err("out of memory keeping unix socket %u", ino);
		close(*fd);
		return -1;
	}
	r->m = n;
	r->m[r->nr_m++] = (struct usk_made){ ino, *fd, -1 };
	return 0;
}

static bool same_name(const UnixSkEntry *a, const UnixSkEntry *b)
{
	return a->name.len && a->name.len == b->name.len && !memcmp(a->name.data, b->name.data, a->name.len);
}

bool is_path(const UnixSkEntry *ue)
{
	return ue->name.len && ue->name.data[0];
}

static bool deleted(const UnixSkEntry *ue)
{
	return ue->has_deleted && ue->deleted;
}

static int sk_addr(const UnixSkEntry *ue, struct sockaddr_un *a, socklen_t *len)
{
	if (!ue->name.len || ue->name.len > sizeof(a->sun_path)) {
		pr_err("image files.img: unix socket %u has a bad name (%zu bytes)", ue->ino, ue->name.len);
		return -1;
	}
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, ue->name.data, ue->name.len);
	*len = offsetof(struct sockaddr_un, sun_path) + ue->name.len;
	return 0;
}

/* A relative name is relative to the directory it was bound in: we work
 * from there for a moment. Returns the fd of our directory to go back to,
 * AT_FDCWD if there was no need, or -1. */
int enter_name_dir(const UnixSkEntry *ue)
{
	if (!is_path(ue) || ue->name.data[0] == '/' || !ue->name_dir)
		return AT_FDCWD;
	int back = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (back < 0 || chdir(ue->name_dir) < 0) {
		pr_perror("can't go to %s, the directory of unix socket %u (%s)", ue->name_dir, ue->ino, NAME(ue));
		if (back >= 0)
			close(back);
		return -1;
	}
	return back;
}

void leave_name_dir(int back)
{
	if (back == AT_FDCWD)
		return;
	if (fchdir(back) < 0)
		pr_perror("can't go back to the restore's directory");
	close(back);
}

void restore_perms(const UnixSkEntry *ue, const char *path)
{
	const FilePermsEntry *p = ue->file_perms;
	if (p && (chmod(path, p->mode & 07777) < 0 ||
		  lchown(path, userns_rst_id(USERNS_UID, p->uid), userns_rst_id(USERNS_GID, p->gid)) < 0))
		pr_warn("can't give %s its mode %o and owner %u:%u: %m", path, p->mode & 07777, p->uid, p->gid);
}

/* A socket whose file was deleted: bound for a moment (unix_ghost.c). */
static int bind_ghost(struct rst_files *rf, int fd, const UnixSkEntry *ue, const struct sockaddr_un *a,
		      socklen_t len)
{
	struct usk_made *m = made_find(rf, ue->ino);
	int ghost = files_keep_fd(rf, bind_deleted(fd, ue, a, len), "the file of a unix socket");
	if (ghost < 0)
		return -1;
	if (m)
		m->ghost = ghost;
	else
		close(ghost);
	return 0;
}

/* Binds fd to ue's name; a stale socket file at the path goes, anything
 * else there is an error. The file gets back its mode and owner. */
static int bind_name(struct rst_files *rf, int fd, const UnixSkEntry *ue)
{
	struct sockaddr_un a;
	socklen_t len;
	struct stat st;
	char path[sizeof(a.sun_path) + 1];
	int ret = -1;

	if (!ue->name.len)
		return 0;
	if (sk_addr(ue, &a, &len) < 0)
		return -1;
	if (is_path(ue) && deleted(ue))
		return bind_ghost(rf, fd, ue, &a, len);
	int back = enter_name_dir(ue);
	if (back == -1)
		return -1;
	memcpy(path, a.sun_path, sizeof(a.sun_path));
	path[sizeof(a.sun_path)] = 0;
	if (is_path(ue) && lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			pr_err("can't bind unix socket %u to %s%s%s: a %s is in the way (remove it?)", ue->ino,
			       path[0] != '/' && ue->name_dir ? ue->name_dir : "",
			       path[0] != '/' && ue->name_dir ? "/" : "", path, files_mode_name(st.st_mode));
			goto out;
		}
		if (unlink(path) < 0) {
			pr_perror("can't remove the stale socket file %s", path);
			goto out;
		}
		pr_info("removed the stale socket file %s", path);
	}
	if (bind(fd, (struct sockaddr *)&a, len) < 0) {
		pr_perror("can't bind unix socket %u to %s%s", ue->ino, NAME(ue),
			  errno == EADDRINUSE ? " (is the dumped program still running?)" : "");
		goto out;
	}
	if (is_path(ue))
		restore_perms(ue, path);
	ret = 0;
out:
	leave_name_dir(back);
	return ret;
}

/* Connects fd to peer by its name, or through its file if it was
 * deleted (bound for a moment, bind_ghost). */
static int connect_name(struct rst_files *rf, int fd, const UnixSkEntry *ue, const UnixSkEntry *peer)
{
	struct sockaddr_un a;
	socklen_t len;
	const struct usk_made *m = made_find(rf, peer->ino);

	if (m && m->ghost >= 0) {
		memset(&a, 0, sizeof(a));
		a.sun_family = AF_UNIX;
		snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d", m->ghost);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return 0;
		pr_perror("can't connect unix socket %u to deleted %s (socket %u)", ue->ino, NAME(peer), peer->ino);
		return -1;
	}

	if (!peer->name.len) {
		pr_err("can't connect unix socket %u again to its peer %u outside the tree: the peer has no "
		       "name (use --inherit-fd fd[N]:socket:[%u] to give one)", ue->ino, peer->ino, ue->ino);
		return -1;
	}
	if (sk_addr(peer, &a, &len) < 0)
		return -1;
	int back = enter_name_dir(peer);
	if (back == -1)
		return -1;
	int ret = connect(fd, (struct sockaddr *)&a, len);
	if (ret < 0)
		pr_perror("can't connect unix socket %u to %s (socket %u)", ue->ino, NAME(peer), peer->ino);
	leave_name_dir(back);
	return ret;
}

/* A buffer size as the dump saw it. Forcing it past net.core.[wr]mem_max
 * takes CAP_NET_ADMIN, which a non-root client's process has not got
 * (restore/unpriv.c): it gets what the plain option allows it. */
static int set_buf(int fd, int force, int plain, int val)
{
	if (set_int(fd, force, val) == 0)
		return 0;
	return errno == EPERM ? set_int(fd, plain, val) : -1;
}

static int apply_opts(int fd, const UnixSkEntry *ue)
{
	const SkOptsEntry *so = ue->opts;
	struct timeval snd = { so->so_snd_tmo_sec, so->so_snd_tmo_usec };
	struct timeval rcv = { so->so_rcv_tmo_sec, so->so_rcv_tmo_usec };
	int ret = 0;

	/* the kernel doubles what it is given */
	ret |= set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, so->so_sndbuf / 2);
	ret |= set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, so->so_rcvbuf / 2);
	if (so->has_so_buf_lock)
		ret |= set_int(fd, SO_BUF_LOCK, so->so_buf_lock);
	ret |= setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
	ret |= setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
	if (so->has_so_passcred && so->so_passcred)
		ret |= set_int(fd, SO_PASSCRED, 1);
	if (so->has_so_passsec && so->so_passsec)
		ret |= set_int(fd, SO_PASSSEC, 1);
	if (so->has_so_priority)
		ret |= set_int(fd, SO_PRIORITY, so->so_priority);
	if (so->has_so_rcvlowat)
		ret |= set_int(fd, SO_RCVLOWAT, so->so_rcvlowat);
	if (so->has_so_mark && so->so_mark)
		ret |= set_int(fd, SO_MARK, so->so_mark);
	if (ret)
		pr_perror("can't set the options of unix socket %u", ue->ino);
	return ret ? -1 : 0;
}

/* Last touches once its data is in: options, shutdown, file flags. */
static int finish(int fd, const UnixSkEntry *ue)
{
	if (apply_opts(fd, ue) < 0)
		return -1;
	if (ue->has_shutdown && ue->shutdown != SK_SHUTDOWN__NONE &&
	    shutdown(fd, ue->shutdown - 1) < 0) {	/* READ 1 -> SHUT_RD 0, ... */
		pr_perror("can't shut down unix socket %u", ue->ino);
		return -1;
	}
	if (fcntl(fd, F_SETFL, ue->flags & O_NONBLOCK) < 0) {
		pr_perror("can't set the file flags of unix socket %u", ue->ino);
		return -1;
	}
	return 0;
}

static int new_socket(const UnixSkEntry *ue)
{
	int fd = socket(AF_UNIX, ue->type, 0);
	if (fd < 0)
		pr_perror("can't make unix socket %u (type %u)", ue->ino, ue->type);
	return fd;
}

/* Two sockets connected to each other. A connected stream socket keeps no
 * name (it can't be bound to its listener's); datagram ones do. */
static int make_pair(struct rst_files *rf, const UnixSkEntry *a, const UnixSkEntry *b)
{
	int sk[2];
	if (socketpair(AF_UNIX, a->type, 0, sk) < 0) {
		pr_perror("can't make the pair of unix sockets %u and %u", a->ino, b->ino);
		return -1;
	}
	if (made_add(rf, a->ino, &sk[0]) < 0) {
		close(sk[1]);
		return -1;
	}
	if (made_add(rf, b->ino, &sk[1]) < 0)
		return -1;
	if (a->type == SOCK_DGRAM && (bind_name(rf, sk[0], a) < 0 || bind_name(rf, sk[1], b) < 0))
		return -1;
	if (fill_queue(rf, sk[1], a, sk[0]) < 0 || fill_queue(rf, sk[0], b, sk[1]) < 0)
		return -1;
	return finish(sk[0], a) < 0 || finish(sk[1], b) < 0 ? -1 : 0;
}

/* A socket alone whose queue must be filled: born as one end of a pair,
 * the other end sends the data and goes. For a stream socket that leaves
 * it as it was, its peer closed (EOF after the data); a datagram socket is
 * disconnected first, or it could not be connected elsewhere without
 * losing its queue. */
static int make_filled(struct rst_files *rf, const UnixSkEntry *ue)
{
	int sk[2];
	if (socketpair(AF_UNIX, ue->type, 0, sk) < 0) {
		pr_perror("can't make unix socket %u", ue->ino);
		return -1;
	}
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	if (ue->type == SOCK_DGRAM && connect(sk[0], &sa, sizeof(sa.sa_family)) < 0) {
		pr_perror("can't make unix socket %u", ue->ino);
		close(sk[0]);
		close(sk[1]);
		return -1;
	}
	int ret = fill_queue(rf, sk[1], ue, sk[0]);
	close(sk[1]);
	if (ret < 0) {
		close(sk[0]);
		return -1;
	}
	return sk[0];
}

/* The listener in the tree whose accepted connection a or b is (the
 * accepted end has the listener's name). */
static bool accepted_by(const UnixSkEntry *l, const UnixSkEntry *a, const UnixSkEntry *b)
{
	return l && !(l->uflags & USK_EXTERN) && l->state == ST_LISTEN && l->type == a->type &&
	       (same_name(l, a) || same_name(l, b));
}

static const UnixSkEntry *listener_of(const struct rst_files *rf, const UnixSkEntry *a, const UnixSkEntry *b)
{
	const struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	if (index_files(rf) == 0) {
		for (int k = 0; k < r->nr_listeners; k++)
			if (accepted_by(usk_of(rf, r->listeners[k]), a, b))
				return usk_of(rf, r->listeners[k]);
		return NULL;
	}
	for (int i = 0; i < rf->nr; i++)
		if (accepted_by(usk_of(rf, i), a, b))
			return usk_of(rf, i);
	return NULL;
}

/* A connection accepted by listener l (fd lfd): client c connects to it
 * again and it is accepted, so that both ends keep their names. */
static int make_accepted(struct rst_files *rf, int lfd, const UnixSkEntry *l, const UnixSkEntry *s,
			 const UnixSkEntry *c)
{
	int cfd = new_socket(c);
	if (cfd < 0 || made_add(rf, c->ino, &cfd) < 0)
		return -1;
	if ((!same_name(c, l) && bind_name(rf, cfd, c) < 0) || connect_name(rf, cfd, c, l) < 0)
		return -1;
	int sfd = accept(lfd, NULL, NULL);
	if (sfd < 0) {
		pr_perror("can't accept the connection of unix socket %u on %s again", c->ino, NAME(l));
		return -1;
	}
	if (made_add(rf, s->ino, &sfd) < 0)
		return -1;
	if (fill_queue(rf, cfd, s, sfd) < 0 || fill_queue(rf, sfd, c, cfd) < 0)
		return -1;
	return finish(cfd, c) < 0 || finish(sfd, s) < 0 ? -1 : 0;
}

/* A client whose connection waited to be accepted: it waits again. */
static int make_waiting(struct rst_files *rf, const UnixSkEntry *l, const UnixSkEntry *c)
{
	int cfd = new_socket(c);
	if (cfd < 0 || made_add(rf, c->ino, &cfd) < 0 || fcntl(cfd, F_SETFL, O_NONBLOCK) < 0)
		return -1;
	if (c->name.len && bind_name(rf, cfd, c) < 0)
		return -1;
	if (connect_name(rf, cfd, c, l) < 0)
		return -1;
	return finish(cfd, c);
}

/* A listener, then the connections it had accepted, then those waiting
 * in its queue (in this order, so accept() takes the right ones). */
static int make_listener(struct rst_files *rf, const UnixSkEntry *l)
{
	int lfd = new_socket(l);
	if (lfd < 0 || made_add(rf, l->ino, &lfd) < 0 || bind_name(rf, lfd, l) < 0)
		return -1;
	if (listen(lfd, l->backlog) < 0) {
		pr_perror("can't listen on unix socket %u (%s)", l->ino, NAME(l));
		return -1;
	}
	for (int i = 0; i < rf->nr; i++) {
		const UnixSkEntry *s = rf->e[i]->type == FD_TYPES__UNIXSK ? rf->e[i]->usk : NULL;
		if (!s || s == l || (s->uflags & USK_EXTERN) || s->type != l->type ||
		    s->state != ST_ESTABLISHED || !same_name(s, l) || made(rf, s->ino))
			continue;
		const UnixSkEntry *c = by_ino(rf, s->peer);
		if (c && !(c->uflags & USK_EXTERN) && c->peer == s->ino && !made(rf, c->ino) &&
		    make_accepted(rf, lfd, l, s, c) < 0)
			return -1;
	}
	for (int i = 0; i < rf->nr; i++) {
		const UnixSkEntry *c = rf->e[i]->type == FD_TYPES__UNIXSK ? rf->e[i]->usk : NULL;
		if (c && c != l && !(c->uflags & USK_EXTERN) && c->peer == l->ino &&
		    c->state == ST_ESTABLISHED && !made(rf, c->ino) && make_waiting(rf, l, c) < 0)
			return -1;
	}
	return finish(lfd, l);
}

static int make(struct rst_files *rf, const UnixSkEntry *ue);

/* A datagram socket: its queue, its name, then its peer if it has one. */
static int make_dgram(struct rst_files *rf, const UnixSkEntry *ue)
{
	int fd = has_queue(rf, ue) ? make_filled(rf, ue) : new_socket(ue);
	if (fd < 0 || made_add(rf, ue->ino, &fd) < 0 || bind_name(rf, fd, ue) < 0)
		return -1;
	if (ue->peer) {
		const UnixSkEntry *p = by_ino(rf, ue->peer);
		if (!p) {
			pr_err("image files.img: the peer %u of unix socket %u is missing", ue->peer, ue->ino);
			return -1;
		}
		if (p != ue && !(p->uflags & USK_EXTERN) && make(rf, p) < 0)
			return -1;
		if (connect_name(rf, fd, ue, p) < 0)
			return -1;
	}
	return finish(fd, ue);
}

/* A connected stream socket whose peer is outside the tree: connected
 * again to the peer's name (a new connection to its server). */
static int make_to_outside(struct rst_files *rf, const UnixSkEntry *ue, const UnixSkEntry *p)
{
	int fd = new_socket(ue);
	if (fd < 0 || made_add(rf, ue->ino, &fd) < 0 || connect_name(rf, fd, ue, p) < 0)
		return -1;
	return finish(fd, ue);
}

static int make_connected(struct rst_files *rf, const UnixSkEntry *ue)
{
	const UnixSkEntry *p = ue->peer ? by_ino(rf, ue->peer) : NULL;
	if (ue->peer && !p) {
		pr_err("image files.img: the peer %u of unix socket %u is missing", ue->peer, ue->ino);
		return -1;
	}
	if (!p) {	/* its peer closed */
		int fd = make_filled(rf, ue);
		if (fd < 0 || made_add(rf, ue->ino, &fd) < 0)
			return -1;
		return finish(fd, ue);
	}
	if (p->uflags & USK_EXTERN)
		return make_to_outside(rf, ue, p);
	if (p->state == ST_LISTEN)	/* waiting to be accepted */
		return make(rf, p);
	const UnixSkEntry *l = listener_of(rf, ue, p);
	if (l)
		return make(rf, l);
	return make_pair(rf, ue, p);
}

/* Makes the socket of ue (and those it is tied to) unless made already. */
static int make(struct rst_files *rf, const UnixSkEntry *ue)
{
	if (made(rf, ue->ino))
		return 0;
	if (ue->uflags & USK_EXTERN) {
		pr_err("unix socket %u is outside the tree: it can't be opened", ue->ino);
		return -1;
	}
	if (ue->type == SOCK_DGRAM) {
		const UnixSkEntry *p = ue->peer ? by_ino(rf, ue->peer) : NULL;
		if (p && p != ue && !(p->uflags & USK_EXTERN) && p->peer == ue->ino)
			return make_pair(rf, ue, p);
		return make_dgram(rf, ue);
	}
	if (!connection_type(ue->type)) {
		pr_err("image files.img: unix socket %u has unknown type %u", ue->ino, ue->type);
		return -1;
	}
	if (ue->state == ST_LISTEN)
		return make_listener(rf, ue);
	if (ue->state == ST_ESTABLISHED)
		return make_connected(rf, ue);
	/* not connected: maybe bound */
	int fd = has_queue(rf, ue) ? make_filled(rf, ue) : new_socket(ue);
	if (fd < 0 || made_add(rf, ue->ino, &fd) < 0 || bind_name(rf, fd, ue) < 0)
		return -1;
	return finish(fd, ue);
}

/* The restored copy of a self-dumping task finds the service's answer
 * waiting: its dump succeeded and it was restored. */
static int open_service_sk(const UnixSkEntry *ue)
{
	CriuResp resp = CRIU_RESP__INIT;
	CriuDumpResp dr = CRIU_DUMP_RESP__INIT;
	uint8_t buf[64];
	int sk[2];

	resp.type = CRIU_REQ_TYPE__DUMP;
	resp.success = true;
	dr.has_restored = true;
	dr.restored = true;
	resp.dump = &dr;
	size_t len = criu_resp__pack(&resp, buf);
	if (socketpair(AF_UNIX, ue->type | SOCK_CLOEXEC, 0, sk) < 0) {
		pr_perror("can't make the socket of the RPC answer for unix socket %u", ue->ino);
		return -1;
	}
	if (send(sk[1], buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		pr_perror("can't put the RPC answer into unix socket %u", ue->ino);
		close(sk[0]);
		close(sk[1]);
		return -1;
	}
	close(sk[1]);
	return sk[0];
}

int unix_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const UnixSkEntry *ue = fe->usk;
	if (!ue || !ue->opts) {
		pr_err("image files.img: unix socket entry %u is empty", fe->id);
		return -1;
	}
	if (ue->uflags & USK_SERVICE)
		return open_service_sk(ue);
	if (make(rf, ue) < 0)
		return -1;
	/* handed over: each socket is opened once (the pool's slot or its
	 * process's own fd), and a made one kept would hold an fd until the
	 * end (10,000 sockets: 10,000 fds) */
	struct usk_made *m = made_find(rf, ue->ino);
	int fd = m ? m->fd : -1;
	if (fd < 0) {
		pr_err("unix socket %u was %s", ue->ino,
		       m ? "opened twice" : "not made (its peer is not what the image says)");
		return -1;
	}
	m->fd = -1;
	return fd;
}

/* The sockets made together: a socket and its peer, a connection and its
 * listener; a socket whose queue carries files, and those files, are the
 * pool's (whoever fills the queue opens them there). */
void unix_ties(const struct rst_files *rf, files_tie_fn tie, void *arg)
{
	const struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	for (int i = 0; i < rf->nr; i++) {
		const UnixSkEntry *ue = usk_of(rf, i);
		if (!ue)
			continue;
		int p = ue->peer ? index_of_ino(rf, ue->peer) : -1;
		/* a datagram socket makes the one it sends to, not the others
		 * sending there too; a connection, its peer or its listener's
		 * every connection (make_listener) */
		if (p >= 0)
			tie(arg, i, p, ue->type != SOCK_DGRAM || usk_of(rf, p)->peer == ue->ino);
		const UnixSkEntry *l = listener_of(rf, ue, p >= 0 ? usk_of(rf, p) : ue);
		if (l && l != ue)
			tie(arg, i, index_of_ino(rf, l->ino), true);
	}
	for (int k = 0; k < r->nr_q; k++) {
		if (!r->q[k].nr_rights)
			continue;
		tie(arg, files_index(rf, r->q[k].id_for), -1, false);
		for (int j = 0; j < r->q[k].nr_rights; j++)
			tie(arg, files_index(rf, r->q[k].rights[j]), -1, false);
	}
}

bool unix_own_open(const struct rst_files *rf, const FileEntry *fe)
{
	(void)rf;
	return fe->usk && !(fe->usk->uflags & (USK_SERVICE | USK_EXTERN));
}
