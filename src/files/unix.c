/* Unix sockets. Dump: the kernel's socket list (sock_diag) tells each
 * socket's name, peer, state, shutdown bits, queue lengths and, for a
 * listener, the clients waiting in its accept queue; the socket itself
 * (taken with pidfd_getfd) gives its options and, peeked with SO_PEEK_OFF
 * so the task loses nothing, its unread data (sk-queues.img). Once every
 * task is dumped, peers are checked: a peer outside the tree needs
 * --ext-unix-sk and gets an entry of its own (no fd) carrying its name.
 *
 * Restore: every socket is made once (the pool keeps it) together with
 * the sockets it is tied to: a socketpair for two sockets connected to
 * each other; a listener with, right away, the connections it had
 * accepted (connect to it and accept, so both ends keep the names they
 * had) and then the ones waiting to be accepted. Unread data goes back by
 * sending it from the peer (or a throwaway socket) before options and
 * shutdown are set. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>

#include "files/kind.h"
#include "rpc.pb-c.h"
#include "image/img.h"
#include "image/magic.h"
#include "util/log.h"

#ifndef SIOCUNIXFILE
#define SIOCUNIXFILE (SIOCPROTOPRIVATE + 0)	/* O_PATH fd of a bound socket's file */
#endif
#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

/* The kernel's socket states as sock_diag reports them. */
#define ST_ESTABLISHED 1
#define ST_LISTEN 10

#define USK_EXTERN 1u			/* uflags: a peer outside the tree, no fd */
#define USK_SERVICE (1u << 1)		/* uflags: the task's connection to the RPC
					 * service that dumps it (a self-dump) */
#define ST_CLOSE 7
#define QUEUE_MAX (256u << 20)		/* sanity bound on one socket's saved queue */
#define PEEK_CHUNK (256u << 10)

static bool connection_type(uint32_t type)
{
	return type == SOCK_STREAM || type == SOCK_SEQPACKET;
}

/* "@abstract" or "/path" or "unnamed", for messages. */
static const char *name_str(const void *name, size_t len, char *buf, size_t size)
{
	const char *n = name;
	size_t i, o = 0;

	while (len && !n[len - 1] && n[0])	/* a path's trailing NULs */
		len--;
	if (!len)
		return "unnamed";
	for (i = 0; i < len && o + 1 < size; i++)
		buf[o++] = (n[i] >= 32 && n[i] < 127) ? n[i] : '@';
	buf[o] = 0;
	return buf;
}
#define NAME(ue) name_str((ue)->name.data, (ue)->name.len, (char[128]){ 0 }, 128)

/* ================================ dump ================================ */

struct usk_diag {
	uint32_t ino, peer;
	uint8_t type, state, shutdown;
	uint32_t rq, wq;
	uint32_t vfs_ino;	/* a path name's file */
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int namelen;
	uint32_t *icons;
	int nr_icons;
};

struct usk_dumped {
	pid_t pid;
	int fd;
	UnixSkEntry *ue;	/* in the file table */
	const struct usk_diag *d;
};

struct usk_packet {
	uint32_t id_for, len;
	uint8_t *buf;
};

extern const struct fd_kind fd_kind_unix;

struct unix_dump {
	const struct opts *o;
	bool loaded;
	struct usk_diag *diag;
	int nr_diag;
	struct usk_dumped *sk;
	int nr_sk;
	struct usk_packet *pk;
	int nr_pk;
	uint32_t *ext;		/* peers given an external entry */
	int nr_ext;
};

static bool unix_owns(const struct fd_facts *f)
{
	char link[64], proto[32];

	if (!S_ISSOCK(f->st.st_mode))
		return false;
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", f->pid, f->fd);
	ssize_t n = getxattr(link, "system.sockprotoname", proto, sizeof(proto) - 1);
	return n >= 4 && !strncmp(proto, "UNIX", 4);
}

static int diag_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct usk_diag *)a)->ino, y = ((const struct usk_diag *)b)->ino;
	return x < y ? -1 : x > y;
}

static const struct usk_diag *diag_find(const struct unix_dump *u, uint32_t ino)
{
	struct usk_diag key = { .ino = ino };
	return bsearch(&key, u->diag, u->nr_diag, sizeof(key), diag_cmp);
}

static int diag_add(struct unix_dump *u, const struct nlmsghdr *h)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	struct usk_diag d = { .ino = m->udiag_ino, .type = m->udiag_type, .state = m->udiag_state };
	int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	struct rtattr *a = (struct rtattr *)(m + 1);

	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t n = RTA_PAYLOAD(a);
		void *p = RTA_DATA(a);
		switch (a->rta_type) {
		case UNIX_DIAG_NAME:
			d.namelen = n < sizeof(d.name) ? n : sizeof(d.name);
			memcpy(d.name, p, d.namelen);
			break;
		case UNIX_DIAG_VFS:
			if (n >= sizeof(struct unix_diag_vfs))
				d.vfs_ino = ((struct unix_diag_vfs *)p)->udiag_vfs_ino;
			break;
		case UNIX_DIAG_PEER:
			if (n >= 4)
				memcpy(&d.peer, p, 4);
			break;
		case UNIX_DIAG_SHUTDOWN:
			if (n >= 1)
				d.shutdown = *(uint8_t *)p;
			break;
		case UNIX_DIAG_RQLEN:
			if (n >= sizeof(struct unix_diag_rqlen)) {
				d.rq = ((struct unix_diag_rqlen *)p)->udiag_rqueue;
				d.wq = ((struct unix_diag_rqlen *)p)->udiag_wqueue;
			}
			break;
		case UNIX_DIAG_ICONS:
			free(d.icons);
			d.nr_icons = n / 4;
			if (d.nr_icons && !(d.icons = malloc(n)))
				return -1;
			memcpy(d.icons, p, d.nr_icons * 4);
			break;
		}
	}
	struct usk_diag *nd = realloc(u->diag, (u->nr_diag + 1) * sizeof(*nd));
	if (!nd) {
		free(d.icons);
		return -1;
	}
	u->diag = nd;
	u->diag[u->nr_diag++] = d;
	return 0;
}

/* One sock_diag dump of every unix socket of our network namespace: the
 * tree is frozen, so what it says of the tree's sockets holds. */
static int diag_load(struct unix_dump *u)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.r = { .sdiag_family = AF_UNIX, .udiag_states = ~0u,
		       .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS |
				     UDIAG_SHOW_RQLEN },	/* shutdown bits always come */
	};
	static char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
	int ret = -1, nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (nl < 0 || send(nl, &req, sizeof(req), 0) != sizeof(req)) {
		pr_perror("can't ask sock_diag for the unix sockets");
		goto out;
	}
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		if (n <= 0) {
			pr_perror("can't read the unix sockets from sock_diag");
			goto out;
		}
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				ret = 0;
				goto out;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
				pr_perror("sock_diag refused to list the unix sockets");
				goto out;
			}
			if (diag_add(u, h) < 0) {
				pr_err("out of memory");
				goto out;
			}
		}
	}
out:
	if (nl >= 0)
		close(nl);
	if (!ret)
		qsort(u->diag, u->nr_diag, sizeof(*u->diag), diag_cmp);
	u->loaded = !ret;
	return ret;
}

static struct unix_dump *dump_state(struct file_table *t, const struct opts *o)
{
	struct unix_dump *u = files_dump_state(t, &fd_kind_unix);
	u->o = o;
	if (!u->loaded && diag_load(u) < 0)
		return NULL;
	return u;
}

/* Our own fd for the task's socket (the same open file description). */
static int grab_fd(const struct fd_facts *f)
{
	int fd = proc_take_fd(f->pid, f->fd);
	if (fd < 0)
		pr_perror("pid %d: can't take fd %d (a unix socket) to inspect it", f->pid, f->fd);
	return fd;
}

static int getopt_int(int sk, int name, uint32_t *val)
{
	int v = 0;
	socklen_t l = sizeof(v);
	if (getsockopt(sk, SOL_SOCKET, name, &v, &l) < 0)
		return -1;
	*val = v;
	return 0;
}

static int dump_opts(int sk, SkOptsEntry *so)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);
	uint32_t v;

	if (getopt_int(sk, SO_SNDBUF, &so->so_sndbuf) < 0 || getopt_int(sk, SO_RCVBUF, &so->so_rcvbuf) < 0)
		return -1;
	if (getsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) < 0)
		return -1;
	so->so_snd_tmo_sec = tv.tv_sec;
	so->so_snd_tmo_usec = tv.tv_usec;
	l = sizeof(tv);
	if (getsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) < 0)
		return -1;
	so->so_rcv_tmo_sec = tv.tv_sec;
	so->so_rcv_tmo_usec = tv.tv_usec;
	if (!getopt_int(sk, SO_PASSCRED, &v) && v)
		so->has_so_passcred = so->so_passcred = true;
	if (!getopt_int(sk, SO_PASSSEC, &v) && v)
		so->has_so_passsec = so->so_passsec = true;
	if (!getopt_int(sk, SO_PRIORITY, &v) && v)
		so->has_so_priority = true, so->so_priority = v;
	if (!getopt_int(sk, SO_RCVLOWAT, &v) && v > 1)
		so->has_so_rcvlowat = true, so->so_rcvlowat = v;
	if (!getopt_int(sk, SO_MARK, &v) && v)
		so->has_so_mark = true, so->so_mark = v;
	if (!getopt_int(sk, SO_BUF_LOCK, &v))
		so->has_so_buf_lock = true, so->so_buf_lock = v;
	return 0;
}

static int add_packet(struct unix_dump *u, uint32_t id, const uint8_t *data, size_t len)
{
	struct usk_packet *np = realloc(u->pk, (u->nr_pk + 1) * sizeof(*np));
	if (!np)
		return -1;
	u->pk = np;
	struct usk_packet p = { id, len, malloc(len ? len : 1) };
	if (!p.buf)
		return -1;
	memcpy(p.buf, data, len);
	u->pk[u->nr_pk++] = p;
	return 0;
}

/* Control messages of a peeked message: credentials are dropped (the
 * restored data carries the restorer's); passed fds are refused. */
static int check_cmsgs(struct msghdr *mh, const struct fd_facts *f)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (int i = 0; i < n; i++)
			close(((int *)CMSG_DATA(c))[i]);
		pr_err("pid %d: fd %d: unix socket %lu has file descriptors in flight (SCM_RIGHTS) in its "
		       "queue, which stasis can't dump", f->pid, f->fd, (unsigned long)f->st.st_ino);
		return -1;
	}
	if (mh->msg_flags & MSG_CTRUNC) {
		pr_err("pid %d: fd %d: unix socket queue holds more control data than expected", f->pid, f->fd);
		return -1;
	}
	return 0;
}

/* Copies the socket's unread data without taking it: MSG_PEEK walking
 * with SO_PEEK_OFF, which is put back as it was. A datagram longer than
 * our buffer comes in several pieces (MSG_TRUNC until its end); an empty
 * one is kept too (the next peek goes past it), except in a socket shut
 * down for reading, where it can't be told from the end. */
static int peek_queue(struct unix_dump *u, int sk, uint32_t id, const struct usk_diag *d,
		      const struct fd_facts *f)
{
	uint32_t type = d->type;
	int orig = -1, zero = 0, ret = -1;
	socklen_t l = sizeof(orig);
	uint8_t *msg = NULL, *chunk = malloc(PEEK_CHUNK);
	size_t mlen = 0, total = 0;

	if (!chunk)
		return -1;
	if (getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, &l) < 0 ||
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0) {
		pr_perror("pid %d: fd %d: can't peek at the unix socket's queue", f->pid, f->fd);
		free(chunk);
		return -1;
	}
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(struct ucred)) + 256];
		struct iovec iov = { chunk, PEEK_CHUNK };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			pr_perror("pid %d: fd %d: can't peek at the unix socket's queue", f->pid, f->fd);
			goto out;
		}
		if (check_cmsgs(&mh, f) < 0)
			goto out;
		if (n == 0 && !(mh.msg_flags & MSG_TRUNC) && (type == SOCK_STREAM || (d->shutdown & 1)))
			break;	/* the end */
		if (n == 0 && !mlen) {	/* an empty datagram */
			if (add_packet(u, id, chunk, 0) < 0)
				goto out;
			continue;
		}
		total += n;
		if (total > QUEUE_MAX) {
			pr_err("pid %d: fd %d: unix socket holds more than %u MiB unread", f->pid, f->fd,
			       QUEUE_MAX >> 20);
			goto out;
		}
		uint8_t *nm = realloc(msg, mlen + n);
		if (!nm)
			goto out;
		msg = nm;
		memcpy(msg + mlen, chunk, n);
		mlen += n;
		if (type != SOCK_STREAM && (mh.msg_flags & MSG_TRUNC))
			continue;	/* the rest of this datagram comes next */
		if (add_packet(u, id, msg, mlen) < 0)
			goto out;
		mlen = 0;
	}
	ret = 0;
out:
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, sizeof(orig)) < 0) {
		pr_perror("pid %d: fd %d: can't put back the unix socket's peek offset", f->pid, f->fd);
		ret = -1;
	}
	free(msg);
	free(chunk);
	return ret;
}

/* A path name's file: its mode and owner, whether it was unlinked, and
 * for a relative name the directory it is in. */
static int dump_name_file(int sk, const struct usk_diag *d, UnixSkEntry *ue, const struct fd_facts *f)
{
	char link[64], path[PATH_MAX], name[sizeof(d->name) + 1];
	struct stat st;
	int pf = ioctl(sk, SIOCUNIXFILE);

	if (pf < 0) {
		pr_warn("pid %d: fd %d: can't open the file of unix socket %s: %m", f->pid, f->fd, d->name);
		return 0;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", pf);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n < 0 || fstat(pf, &st) < 0) {
		pr_perror("pid %d: fd %d: can't inspect the file of unix socket %s", f->pid, f->fd, d->name);
		close(pf);
		return -1;
	}
	close(pf);
	path[n] = 0;
	const char *del = " (deleted)";
	if ((size_t)n > strlen(del) && !strcmp(path + n - strlen(del), del)) {
		path[n -= strlen(del)] = 0;
		ue->has_deleted = ue->deleted = true;
	}
	FilePermsEntry *p = malloc(sizeof(*p));
	if (!p)
		return -1;
	file_perms_entry__init(p);
	p->mode = st.st_mode;
	p->uid = st.st_uid;
	p->gid = st.st_gid;
	ue->file_perms = p;

	memcpy(name, d->name, d->namelen);
	name[d->namelen] = 0;
	if (name[0] != '/') {
		size_t nl = strlen(name);
		if ((size_t)n > nl + 1 && !strcmp(path + n - nl, name) && path[n - nl - 1] == '/') {
			path[n - nl - 1] = 0;
			if (!(ue->name_dir = strdup(path[0] ? path : "/")))
				return -1;
		} else {
			pr_warn("pid %d: fd %d: can't tell the directory of unix socket %s (file %s)", f->pid,
				f->fd, name, path);
		}
	}
	return 0;
}

static UnixSkEntry *new_usk(void)
{
	UnixSkEntry *ue = calloc(1, sizeof(*ue));
	FownEntry *fown = calloc(1, sizeof(*fown));
	SkOptsEntry *so = calloc(1, sizeof(*so));
	if (!ue || !fown || !so) {
		free(ue);
		free(fown);
		free(so);
		return NULL;
	}
	unix_sk_entry__init(ue);
	fown_entry__init(fown);
	sk_opts_entry__init(so);
	ue->fown = fown;
	ue->opts = so;
	return ue;
}

static int set_name(UnixSkEntry *ue, const struct usk_diag *d)
{
	if (!d || !d->namelen)
		return 0;
	if (!(ue->name.data = malloc(d->namelen)))
		return -1;
	memcpy(ue->name.data, d->name, d->namelen);
	ue->name.len = d->namelen;
	return 0;
}

static int remember(struct unix_dump *u, const struct fd_facts *f, UnixSkEntry *ue, const struct usk_diag *d)
{
	struct usk_dumped *n = realloc(u->sk, (u->nr_sk + 1) * sizeof(*n));
	if (!n)
		return -1;
	u->sk = n;
	u->sk[u->nr_sk++] = (struct usk_dumped){ f->pid, f->fd, ue, d };
	return 0;
}

/* A task that asked the RPC service to dump it waits for the answer on
 * this socket. It is saved as a closed socket marked USK_SERVICE, as CRIU
 * does; restore gives it a socket holding the answer "restored". */
static int dump_service_sk(UnixSkEntry *ue, const struct fd_facts *f)
{
	ue->state = ST_CLOSE;
	ue->peer = 0;
	ue->uflags |= USK_SERVICE;
	pr_info("pid %d: fd %d: its connection to the RPC service (a self-dump)", f->pid, f->fd);
	return 0;
}

static int unix_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	struct unix_dump *u = dump_state(t, o);
	if (!u)
		return -1;
	const struct usk_diag *d = diag_find(u, f->st.st_ino);
	if (!d) {
		pr_err("pid %d: fd %d: unix socket %lu is not in the kernel's socket list (sock_diag); "
		       "is it in another network namespace?", f->pid, f->fd, (unsigned long)f->st.st_ino);
		return -1;
	}
	UnixSkEntry *ue = new_usk();
	if (!ue)
		return -1;
	fe->usk = ue;
	ue->id = fe->id;
	ue->ino = d->ino;
	ue->type = d->type;
	ue->state = d->state;
	ue->flags = f->fi.flags & ~O_CLOEXEC;
	ue->backlog = d->wq;
	ue->peer = d->peer;
	ue->has_shutdown = d->shutdown != 0;
	ue->shutdown = d->shutdown & 3;
	if (set_name(ue, d) < 0)
		return -1;
	if (o->service_sk_ino && d->peer == o->service_sk_ino)
		return dump_service_sk(ue, f);

	int sk = grab_fd(f), ret = -1;
	if (sk < 0)
		return -1;
	if (dump_opts(sk, ue->opts) < 0) {
		pr_perror("pid %d: fd %d: can't read the options of unix socket %u", f->pid, f->fd, d->ino);
		goto out;
	}
	if (d->namelen && d->name[0] && dump_name_file(sk, d, ue, f) < 0)
		goto out;
	/* a datagram's rq is only its first message's length, maybe 0 */
	bool queued = d->type == SOCK_DGRAM || (d->state == ST_ESTABLISHED && d->rq);
	if (queued && peek_queue(u, sk, fe->id, d, f) < 0)
		goto out;
	ret = remember(u, f, ue, d);
	pr_debug("pid %d: fd %d: unix socket %u type %u state %u peer %u name %s", f->pid, f->fd, d->ino,
		 d->type, d->state, d->peer, NAME(ue));
out:
	close(sk);
	return ret;
}

/* ---- once every task is dumped: peers ---- */

static struct usk_dumped *dumped(struct unix_dump *u, uint32_t ino)
{
	for (int i = 0; i < u->nr_sk; i++)
		if (u->sk[i].ue->ino == ino)
			return &u->sk[i];
	return NULL;
}

/* The listener whose accept queue holds the connection of client ino. */
static const struct usk_diag *icon_listener(const struct unix_dump *u, uint32_t ino)
{
	for (int i = 0; i < u->nr_diag; i++)
		for (int k = 0; k < u->diag[i].nr_icons; k++)
			if (u->diag[i].icons[k] == ino)
				return &u->diag[i];
	return NULL;
}

static bool ext_allowed(const struct opts *o, uint32_t ino, uint32_t peer)
{
	if (!o->ext_unix_sk)
		return false;
	if (!o->nr_ext_unix_sk_ino)
		return true;
	for (int i = 0; i < o->nr_ext_unix_sk_ino; i++)
		if (o->ext_unix_sk_ino[i] == ino || o->ext_unix_sk_ino[i] == peer)
			return true;
	return false;
}

/* The directory of an outside peer's relative name: we have no fd of it,
 * but the task connected to it by that name, most likely from its cwd;
 * the file found there must be the peer's. */
static int external_name_dir(UnixSkEntry *ue, const struct usk_diag *d, pid_t pid)
{
	char cwd[64], dir[PATH_MAX], path[PATH_MAX + sizeof(d->name) + 2];
	struct stat st;

	if (!d->namelen || !d->name[0] || d->name[0] == '/')
		return 0;
	snprintf(cwd, sizeof(cwd), "/proc/%d/cwd", pid);
	ssize_t n = readlink(cwd, dir, sizeof(dir) - 1);
	if (n > 0) {
		dir[n] = 0;
		snprintf(path, sizeof(path), "%s/%.*s", dir, d->namelen, d->name);
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == d->vfs_ino)
			return (ue->name_dir = strdup(dir)) ? 0 : -1;
	}
	pr_warn("can't tell the directory of %.*s, the name of unix socket %u outside the tree: it is "
		"taken relative to the restore's directory", d->namelen, d->name, d->ino);
	return 0;
}

/* An entry (no fd) for a peer outside the tree: its name, to reconnect. */
static int add_external(struct file_table *t, struct unix_dump *u, uint32_t ino, pid_t pid)
{
	for (int i = 0; i < u->nr_ext; i++)
		if (u->ext[i] == ino)
			return 0;
	uint32_t *ne = realloc(u->ext, (u->nr_ext + 1) * sizeof(*ne));
	if (!ne)
		return -1;
	u->ext = ne;
	u->ext[u->nr_ext++] = ino;

	const struct usk_diag *d = diag_find(u, ino);
	FileEntry *fe = files_new_entry(t, FD_TYPES__UNIXSK);
	UnixSkEntry *ue = fe ? new_usk() : NULL;
	if (!ue)
		return -1;
	fe->usk = ue;
	ue->id = fe->id;
	ue->ino = ino;
	ue->type = d ? d->type : SOCK_DGRAM;
	ue->state = d ? d->state : ST_LISTEN;
	ue->uflags = USK_EXTERN;
	if (set_name(ue, d) < 0)
		return -1;
	return d ? external_name_dir(ue, d, pid) : 0;
}

static void refuse_external(const struct usk_dumped *s, const struct usk_diag *pd, uint32_t peer)
{
	char b[128];
	const char *pn = pd ? name_str(pd->name, pd->namelen, b, sizeof(b)) : "unknown";
	pr_err("pid %d: fd %d: unix socket %u (%s) is connected to socket %u (%s) outside the dumped "
	       "tree; use --ext-unix-sk to dump it (it is reconnected by name on restore)",
	       s->pid, s->fd, s->ue->ino, NAME(s->ue), peer, pn);
}

/* A client whose connection waits in a listener's accept queue: it is
 * connected again to that listener on restore. */
static int resolve_icon_client(struct file_table *t, struct unix_dump *u, struct usk_dumped *s)
{
	const struct usk_diag *l = icon_listener(u, s->ue->ino);
	if (!l) {
		if (s->d->shutdown == 3)
			return 0;	/* its peer closed: EOF after the unread data */
		pr_err("pid %d: fd %d: unix socket %u is connected but has no peer (the kernel says "
		       "state %u, shutdown %u); stasis can't dump it", s->pid, s->fd, s->ue->ino,
		       s->d->state, s->d->shutdown);
		return -1;
	}
	if (s->d->wq) {
		pr_err("pid %d: fd %d: unix socket %u sent data (%u bytes of buffer) on a connection to %s "
		       "that is not accepted yet; it can't be saved: dump once it is accepted", s->pid, s->fd,
		       s->ue->ino, s->d->wq, name_str(l->name, l->namelen, (char[128]){ 0 }, 128));
		return -1;
	}
	if (!dumped(u, l->ino)) {
		if (!ext_allowed(u->o, s->ue->ino, l->ino)) {
			refuse_external(s, l, l->ino);
			return -1;
		}
		if (add_external(t, u, l->ino, s->pid) < 0)
			return -1;
	}
	s->ue->peer = l->ino;
	return 0;
}

static int resolve_peer(struct file_table *t, struct unix_dump *u, struct usk_dumped *s)
{
	UnixSkEntry *ue = s->ue;

	if (!ue->peer)
		return connection_type(ue->type) && ue->state == ST_ESTABLISHED ?
			resolve_icon_client(t, u, s) : 0;
	struct usk_dumped *p = dumped(u, ue->peer);
	if (p) {
		if (p->ue->peer != ue->ino && !p->ue->name.len) {
			pr_err("pid %d: fd %d: unix socket %u is connected to socket %u, which has no name to "
			       "connect to again on restore", s->pid, s->fd, ue->ino, ue->peer);
			return -1;
		}
		return 0;
	}
	const struct usk_diag *pd = diag_find(u, ue->peer);
	if (!ext_allowed(u->o, ue->ino, ue->peer)) {
		refuse_external(s, pd, ue->peer);
		return -1;
	}
	if (connection_type(ue->type) && s->d->rq) {
		pr_err("pid %d: fd %d: unix socket %u holds %u unread bytes from its peer %u outside the "
		       "tree, which can't be put back on restore: dump once they are read", s->pid, s->fd,
		       ue->ino, s->d->rq, ue->peer);
		return -1;
	}
	pr_info("pid %d: fd %d: unix socket %u: its peer %u (%s) is outside the tree", s->pid, s->fd,
		ue->ino, ue->peer, pd ? name_str(pd->name, pd->namelen, (char[128]){ 0 }, 128) : "unknown");
	return add_external(t, u, ue->peer, s->pid);
}

/* Connections waiting in a dumped listener's accept queue must have their
 * client in the tree too (they are made again from it). */
static int check_listener(struct unix_dump *u, const struct usk_dumped *s)
{
	for (int k = 0; k < s->d->nr_icons; k++) {
		uint32_t c = s->d->icons[k];
		if (!c) {
			pr_err("pid %d: fd %d: listening unix socket %u (%s) has a connection waiting to be "
			       "accepted whose client is closed; its data can't be saved: dump once it is "
			       "accepted", s->pid, s->fd, s->ue->ino, NAME(s->ue));
			return -1;
		}
		if (dumped(u, c))
			continue;
		if (!ext_allowed(u->o, s->ue->ino, c)) {
			pr_err("pid %d: fd %d: listening unix socket %u (%s) has a connection from socket %u "
			       "outside the tree waiting to be accepted; use --ext-unix-sk to dump it anyway "
			       "(that connection is dropped on restore)", s->pid, s->fd, s->ue->ino,
			       NAME(s->ue), c);
			return -1;
		}
		pr_warn("pid %d: fd %d: the connection of socket %u outside the tree, waiting to be "
			"accepted by unix socket %u, is dropped", s->pid, s->fd, c, s->ue->ino);
	}
	return 0;
}

static int write_queues(struct unix_dump *u, int dirfd)
{
	struct img img;
	if (!u->nr_pk)
		return 0;
	if (img_create(dirfd, &img, "sk-queues.img", SK_QUEUES_MAGIC) < 0)
		return -1;
	for (int i = 0; i < u->nr_pk; i++) {
		SkPacketEntry e = SK_PACKET_ENTRY__INIT;
		e.id_for = u->pk[i].id_for;
		e.length = u->pk[i].len;
		if (img_write(&img, &e.base) < 0 || img_write_raw(&img, u->pk[i].buf, u->pk[i].len) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

static int dump_index(const struct unix_dump *u, uint32_t ino)
{
	for (int i = 0; i < u->nr_sk; i++)
		if (u->sk[i].ue->ino == ino)
			return i;
	return -1;
}

/* Appends socket i to order[], then those waiting for it. */
static void put_in_order(const struct unix_dump *u, int i, const int *waits_for, int *order, int *n)
{
	order[(*n)++] = i;
	for (int k = 0; k < u->nr_sk; k++)
		if (waits_for[k] == i)
			put_in_order(u, k, waits_for, order, n);
}

/* Where client c waits in the accept queue of its listener, or -1 if it
 * is not waiting (its peer was set to the listener by resolve_icon_client). */
static int queue_place(const struct unix_dump *u, const struct usk_dumped *c)
{
	const struct usk_diag *l = c->d->peer || !c->ue->peer ? NULL : diag_find(u, c->ue->peer);
	for (int k = 0; l && k < l->nr_icons; k++)
		if (l->icons[k] == c->ue->ino)
			return k;
	return -1;
}

/* Clients waiting on one listener in the order of its queue (our restore
 * connects them in files.img order): a selection sort among their places
 * in order[]. */
static void order_waiting(const struct unix_dump *u, int *order, int n)
{
	for (int a = 0; a < n; a++) {
		int qa = queue_place(u, &u->sk[order[a]]);
		for (int b = a + 1; qa >= 0 && b < n; b++) {
			int qb = queue_place(u, &u->sk[order[b]]);
			if (qb >= 0 && qb < qa && u->sk[order[b]].ue->peer == u->sk[order[a]].ue->peer) {
				int tmp = order[a];
				order[a] = order[b];
				order[b] = tmp;
				qa = qb;
			}
		}
	}
}

/* The order of our entries in files.img. CRIU's restore (4.2) gets
 * socketpairs shared across fork wrong unless a socket comes after its
 * peer whenever the peer was dumped later (the order CRIU's own dump
 * writes them in), so we keep that order; and clients waiting to be
 * accepted come in their queue's order. */
static int order_entries(struct file_table *t, struct unix_dump *u)
{
	int n = 0, *waits_for = calloc(u->nr_sk + 1, sizeof(int)), *order = calloc(u->nr_sk + 1, sizeof(int));
	int *slot = calloc(u->nr_sk + 1, sizeof(int));
	FileEntry **fe = calloc(u->nr_sk + 1, sizeof(*fe));
	int ret = -1;

	if (!waits_for || !order || !slot || !fe)
		goto out;
	for (int i = 0; i < u->nr_sk; i++) {
		int p = u->sk[i].ue->peer ? dump_index(u, u->sk[i].ue->peer) : -1;
		waits_for[i] = p > i ? p : -1;
	}
	for (int i = 0; i < u->nr_sk; i++)
		if (waits_for[i] < 0)
			put_in_order(u, i, waits_for, order, &n);
	order_waiting(u, order, n);
	/* the slots of our entries in the table, in table order */
	int ns = 0;
	for (int e = 0; e < t->nr && ns < u->nr_sk; e++)
		for (int i = 0; i < u->nr_sk; i++)
			if (t->e[e]->usk == u->sk[i].ue) {
				slot[ns] = e;
				fe[i] = t->e[e];
				ns++;
				break;
			}
	if (n == u->nr_sk && ns == u->nr_sk)
		for (int k = 0; k < n; k++)
			t->e[slot[k]] = fe[order[k]];
	ret = 0;
out:
	free(waits_for);
	free(order);
	free(slot);
	free(fe);
	return ret;
}

static int unix_write_images(struct file_table *t, int dirfd)
{
	struct unix_dump *u = files_dump_state(t, &fd_kind_unix);
	if (!u->loaded)
		return 0;	/* no unix socket in the tree */
	for (int i = 0; i < u->nr_sk; i++)
		if (resolve_peer(t, u, &u->sk[i]) < 0 ||
		    (u->sk[i].d->state == ST_LISTEN && check_listener(u, &u->sk[i]) < 0))
			return -1;
	if (order_entries(t, u) < 0)
		return -1;
	return write_queues(u, dirfd);
}

static void unix_free_images(struct file_table *t)
{
	struct unix_dump *u = files_dump_state(t, &fd_kind_unix);
	for (int i = 0; i < u->nr_diag; i++)
		free(u->diag[i].icons);
	for (int i = 0; i < u->nr_pk; i++)
		free(u->pk[i].buf);
	free(u->diag);
	free(u->sk);
	free(u->pk);
	free(u->ext);
}

/* ============================== restore ============================== */

struct usk_made {
	uint32_t ino;
	int fd;
};

struct unix_rst {
	struct usk_made *m;
	int nr_m;
	struct usk_packet *q;	/* sk-queues.img */
	int nr_q;
};

static int unix_load_images(struct rst_files *rf, int dirfd)
{
	struct img img;
	SkPacketEntry *e;
	int ret;

	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	if (img_open(dirfd, &img, "sk-queues.img", SK_QUEUES_MAGIC, true) < 0)
		return errno == ENOENT ? 0 : -1;
	while ((ret = img_read(&img, &sk_packet_entry__descriptor, (ProtobufCMessage **)&e)) == 1) {
		struct usk_packet p = { e->id_for, e->length, NULL };
		bool scm = e->n_scm > 0;
		img_free(e);
		if (scm || p.len > QUEUE_MAX) {
			pr_err("image sk-queues.img: unsupported entry for socket file %u (%u bytes%s)",
			       p.id_for, p.len, scm ? ", passed fds" : "");
			ret = -1;
			break;
		}
		struct usk_packet *nq = realloc(r->q, (r->nr_q + 1) * sizeof(*nq));
		if (!nq || !(p.buf = malloc(p.len ? p.len : 1))) {
			if (nq)
				r->q = nq;
			ret = -1;
			break;
		}
		r->q = nq;
		if (img_read_raw(&img, p.buf, p.len) < 0) {
			free(p.buf);
			ret = -1;
			break;
		}
		r->q[r->nr_q++] = p;
	}
	img_close(&img);
	return ret;
}

static void unix_unload_images(struct rst_files *rf)
{
	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	for (int i = 0; i < r->nr_q; i++)
		free(r->q[i].buf);
	free(r->q);
	free(r->m);
}

static const UnixSkEntry *by_ino(const struct rst_files *rf, uint32_t ino)
{
	for (int i = 0; i < rf->nr; i++)
		if (rf->e[i]->type == FD_TYPES__UNIXSK && rf->e[i]->usk && rf->e[i]->usk->ino == ino)
			return rf->e[i]->usk;
	return NULL;
}

static int made_fd(const struct rst_files *rf, uint32_t ino)
{
	const struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	for (int i = 0; i < r->nr_m; i++)
		if (r->m[i].ino == ino)
			return r->m[i].fd;
	return -1;
}

static int made_add(struct rst_files *rf, uint32_t ino, int fd)
{
	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	struct usk_made *n = realloc(r->m, (r->nr_m + 1) * sizeof(*n));
	if (!n) {
		close(fd);
		return -1;
	}
	r->m = n;
	r->m[r->nr_m++] = (struct usk_made){ ino, fd };
	return 0;
}

static bool same_name(const UnixSkEntry *a, const UnixSkEntry *b)
{
	return a->name.len && a->name.len == b->name.len && !memcmp(a->name.data, b->name.data, a->name.len);
}

static bool is_path(const UnixSkEntry *ue)
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
static int enter_name_dir(const UnixSkEntry *ue)
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

static void leave_name_dir(int back)
{
	if (back == AT_FDCWD)
		return;
	if (fchdir(back) < 0)
		pr_perror("can't go back to the restore's directory");
	close(back);
}

static const char *type_str(mode_t m)
{
	return S_ISREG(m) ? "regular file" : S_ISDIR(m) ? "directory" : S_ISFIFO(m) ? "fifo" :
	       S_ISLNK(m) ? "symlink" : "special file";
}

/* Binds fd to ue's name; a stale socket file at the path goes, anything
 * else there is an error. The file gets back its mode and owner. */
static int bind_name(int fd, const UnixSkEntry *ue)
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
	int back = enter_name_dir(ue);
	if (back == -1)
		return -1;
	memcpy(path, a.sun_path, sizeof(a.sun_path));
	path[sizeof(a.sun_path)] = 0;
	if (is_path(ue) && deleted(ue) && lstat(path, &st) == 0) {
		/* whatever is there now is not ours */
		pr_warn("unix socket %u was bound to %s, since deleted and taken again by a %s: it is "
			"restored without a name", ue->ino, path, type_str(st.st_mode));
		ret = 0;
		goto out;
	}
	if (is_path(ue) && lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			pr_err("can't bind unix socket %u to %s%s%s: a %s is in the way (remove it?)", ue->ino,
			       path[0] != '/' && ue->name_dir ? ue->name_dir : "",
			       path[0] != '/' && ue->name_dir ? "/" : "", path, type_str(st.st_mode));
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
	if (is_path(ue) && ue->file_perms) {
		const FilePermsEntry *p = ue->file_perms;
		if (chmod(path, p->mode & 07777) < 0 || lchown(path, p->uid, p->gid) < 0)
			pr_warn("can't give %s its mode %o and owner %u:%u: %m", path, p->mode & 07777, p->uid,
				p->gid);
	}
	ret = 0;
out:
	leave_name_dir(back);
	return ret;
}

static int connect_name(int fd, const UnixSkEntry *ue, const UnixSkEntry *peer)
{
	struct sockaddr_un a;
	socklen_t len;

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

static int set_int(int fd, int name, int val)
{
	return setsockopt(fd, SOL_SOCKET, name, &val, sizeof(val));
}

/* Puts back the unread data of socket `to` (fd to_fd) by sending it from
 * `from`, with room enough in both for the whole queue. */
static int fill_queue(struct rst_files *rf, int from, const UnixSkEntry *to, int to_fd)
{
	struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	size_t total = 0;

	for (int i = 0; i < r->nr_q; i++)
		if (r->q[i].id_for == to->id)
			total += r->q[i].len;
	if (!total)
		return 0;
	int room = total + (1 << 20);
	if (set_int(from, SO_SNDBUFFORCE, room) < 0 || set_int(to_fd, SO_RCVBUFFORCE, room) < 0)
		pr_warn("can't make room for the %zu unread bytes of unix socket %u: %m", total, to->ino);
	for (int i = 0; i < r->nr_q; i++) {
		const struct usk_packet *p = &r->q[i];
		if (p->id_for != to->id)
			continue;
		size_t off = 0;
		do {	/* a stream may take its bytes in several sends */
			ssize_t n = send(from, p->buf + off, p->len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 || (to->type != SOCK_STREAM && (size_t)n != p->len)) {
				pr_perror("can't put %u unread bytes back into unix socket %u%s", p->len, to->ino,
					  errno == EAGAIN && to->type == SOCK_DGRAM ?
					  " (more datagrams than net.unix.max_dgram_qlen?)" : "");
				return -1;
			}
			off += n;
		} while (off < p->len);
	}
	return 0;
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
	if (made_add(rf, a->ino, sk[0]) < 0 || made_add(rf, b->ino, sk[1]) < 0)
		return -1;
	if (a->type == SOCK_DGRAM && (bind_name(sk[0], a) < 0 || bind_name(sk[1], b) < 0))
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

static bool has_queue(const struct rst_files *rf, const UnixSkEntry *ue)
{
	const struct unix_rst *r = files_rst_state(rf, &fd_kind_unix);
	for (int i = 0; i < r->nr_q; i++)
		if (r->q[i].id_for == ue->id)
			return true;
	return false;
}

/* The listener in the tree whose accepted connection a or b is (the
 * accepted end has the listener's name). */
static const UnixSkEntry *listener_of(const struct rst_files *rf, const UnixSkEntry *a, const UnixSkEntry *b)
{
	for (int i = 0; i < rf->nr; i++) {
		const UnixSkEntry *l = rf->e[i]->type == FD_TYPES__UNIXSK ? rf->e[i]->usk : NULL;
		if (l && !(l->uflags & USK_EXTERN) && l->state == ST_LISTEN && l->type == a->type &&
		    (same_name(l, a) || same_name(l, b)))
			return l;
	}
	return NULL;
}

/* A connection accepted by listener l (fd lfd): client c connects to it
 * again and it is accepted, so that both ends keep their names. */
static int make_accepted(struct rst_files *rf, int lfd, const UnixSkEntry *l, const UnixSkEntry *s,
			 const UnixSkEntry *c)
{
	int cfd = new_socket(c);
	if (cfd < 0 || made_add(rf, c->ino, cfd) < 0)
		return -1;
	if ((!same_name(c, l) && bind_name(cfd, c) < 0) || connect_name(cfd, c, l) < 0)
		return -1;
	int sfd = accept(lfd, NULL, NULL);
	if (sfd < 0) {
		pr_perror("can't accept the connection of unix socket %u on %s again", c->ino, NAME(l));
		return -1;
	}
	if (made_add(rf, s->ino, sfd) < 0)
		return -1;
	if (fill_queue(rf, cfd, s, sfd) < 0 || fill_queue(rf, sfd, c, cfd) < 0)
		return -1;
	return finish(cfd, c) < 0 || finish(sfd, s) < 0 ? -1 : 0;
}

/* A client whose connection waited to be accepted: it waits again. */
static int make_waiting(struct rst_files *rf, const UnixSkEntry *l, const UnixSkEntry *c)
{
	int cfd = new_socket(c);
	if (cfd < 0 || made_add(rf, c->ino, cfd) < 0 || fcntl(cfd, F_SETFL, O_NONBLOCK) < 0)
		return -1;
	if (c->name.len && bind_name(cfd, c) < 0)
		return -1;
	if (connect_name(cfd, c, l) < 0)
		return -1;
	return finish(cfd, c);
}

/* A listener, then the connections it had accepted, then those waiting
 * in its queue (in this order, so accept() takes the right ones). */
static int make_listener(struct rst_files *rf, const UnixSkEntry *l)
{
	int lfd = new_socket(l);
	if (lfd < 0 || made_add(rf, l->ino, lfd) < 0 || bind_name(lfd, l) < 0)
		return -1;
	if (listen(lfd, l->backlog) < 0) {
		pr_perror("can't listen on unix socket %u (%s)", l->ino, NAME(l));
		return -1;
	}
	for (int i = 0; i < rf->nr; i++) {
		const UnixSkEntry *s = rf->e[i]->type == FD_TYPES__UNIXSK ? rf->e[i]->usk : NULL;
		if (!s || s == l || (s->uflags & USK_EXTERN) || s->type != l->type ||
		    s->state != ST_ESTABLISHED || !same_name(s, l) || made_fd(rf, s->ino) >= 0)
			continue;
		const UnixSkEntry *c = by_ino(rf, s->peer);
		if (c && !(c->uflags & USK_EXTERN) && c->peer == s->ino && made_fd(rf, c->ino) < 0 &&
		    make_accepted(rf, lfd, l, s, c) < 0)
			return -1;
	}
	for (int i = 0; i < rf->nr; i++) {
		const UnixSkEntry *c = rf->e[i]->type == FD_TYPES__UNIXSK ? rf->e[i]->usk : NULL;
		if (c && c != l && !(c->uflags & USK_EXTERN) && c->peer == l->ino &&
		    c->state == ST_ESTABLISHED && made_fd(rf, c->ino) < 0 && make_waiting(rf, l, c) < 0)
			return -1;
	}
	return finish(lfd, l);
}

static int make(struct rst_files *rf, const UnixSkEntry *ue);

/* A datagram socket: its queue, its name, then its peer if it has one. */
static int make_dgram(struct rst_files *rf, const UnixSkEntry *ue)
{
	int fd = has_queue(rf, ue) ? make_filled(rf, ue) : new_socket(ue);
	if (fd < 0 || made_add(rf, ue->ino, fd) < 0 || bind_name(fd, ue) < 0)
		return -1;
	if (ue->peer) {
		const UnixSkEntry *p = by_ino(rf, ue->peer);
		if (!p) {
			pr_err("image files.img: the peer %u of unix socket %u is missing", ue->peer, ue->ino);
			return -1;
		}
		if (p != ue && !(p->uflags & USK_EXTERN) && make(rf, p) < 0)
			return -1;
		if (connect_name(fd, ue, p) < 0)
			return -1;
	}
	return finish(fd, ue);
}

/* A connected stream socket whose peer is outside the tree: connected
 * again to the peer's name (a new connection to its server). */
static int make_to_outside(struct rst_files *rf, const UnixSkEntry *ue, const UnixSkEntry *p)
{
	int fd = new_socket(ue);
	if (fd < 0 || made_add(rf, ue->ino, fd) < 0 || connect_name(fd, ue, p) < 0)
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
		if (fd < 0 || made_add(rf, ue->ino, fd) < 0)
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
	if (made_fd(rf, ue->ino) >= 0)
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
	if (fd < 0 || made_add(rf, ue->ino, fd) < 0 || bind_name(fd, ue) < 0)
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

static int unix_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
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
	int fd = made_fd(rf, ue->ino);
	if (fd < 0) {
		pr_err("unix socket %u was not made (its peer %u is not what the image says)", ue->ino, ue->peer);
		return -1;
	}
	fd = dup(fd);
	if (fd < 0)
		pr_perror("can't dup unix socket %u", ue->ino);
	return fd;
}

/* A socket whose file was deleted is bound again (its name and the
 * connections made to it by name come back); once every fd of the tree is
 * open its file goes again, if it still is this socket's. */
static int unix_after_install(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid)
{
	const UnixSkEntry *ue = fe->usk;
	struct stat mine, there;

	if (!ue || !is_path(ue) || !deleted(ue) || ue->name.len > sizeof(((struct sockaddr_un *)0)->sun_path))
		return 0;
	int pf = ioctl(fd, SIOCUNIXFILE);
	if (pf < 0)
		return 0;	/* not bound (its path was taken), or removed already */
	int ok = fstat(pf, &mine);
	close(pf);
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1] = { 0 };
	memcpy(path, ue->name.data, ue->name.len);
	int back = enter_name_dir(ue);
	if (back == -1)
		return -1;
	if (!ok && lstat(path, &there) == 0 && there.st_ino == mine.st_ino && there.st_dev == mine.st_dev &&
	    unlink(path) < 0)
		pr_warn("pid %d: can't remove %s again (it was deleted): %m", pid, path);
	leave_name_dir(back);
	return 0;
}

static bool unix_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	if (!fe->usk)
		return false;
	snprintf(buf, len, "socket:[%u]", fe->usk->ino);
	return true;
}

const struct fd_kind fd_kind_unix = {
	.name = "unix socket", .type = FD_TYPES__UNIXSK,
	.dump_state = sizeof(struct unix_dump), .rst_state = sizeof(struct unix_rst),
	.owns = unix_owns, .dump = unix_dump, .open = unix_open,
	.write_images = unix_write_images, .free_images = unix_free_images,
	.load_images = unix_load_images, .unload_images = unix_unload_images,
	.after_install = unix_after_install, .inherit_name = unix_inherit_name,
};
