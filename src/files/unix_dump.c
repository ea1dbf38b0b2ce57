/* Unix sockets, dump: what the kernel's socket list (sock_diag) and the
 * socket itself (our own fd on it, from pidfd_getfd) tell of each one:
 * name, peer, state, shutdown bits, options, its path name's file; its
 * unread data is copied by unix_queue.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include "files/sock_diag.h"
#include "files/unix.h"
#include "ns/user.h"
#include "util/log.h"

static int diag_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct usk_diag *)a)->ino, y = ((const struct usk_diag *)b)->ino;
	return x < y ? -1 : x > y;
}

const struct usk_diag *diag_find(const struct unix_dump *u, uint32_t ino)
{
	struct usk_diag key = { .ino = ino };
	return bsearch(&key, u->diag, u->nr_diag, sizeof(key), diag_cmp);
}

static int diag_add(const struct nlmsghdr *h, void *arg)
{
	struct unix_dump *u = arg;
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

/* Every unix socket of our network namespace, sorted by inode. */
static int diag_load(struct unix_dump *u)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req = {
		.r = { .sdiag_family = AF_UNIX, .udiag_states = ~0u,
		       .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS |
				     UDIAG_SHOW_RQLEN },	/* shutdown bits always come */
	};
	int ret = sock_diag_list(&req, sizeof(req), "the unix sockets", diag_add, u);

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
		return files_oom(f);
	file_perms_entry__init(p);
	p->mode = st.st_mode;
	p->uid = userns_dump_id(USERNS_UID, st.st_uid);
	p->gid = userns_dump_id(USERNS_GID, st.st_gid);
	ue->file_perms = p;

	memcpy(name, d->name, d->namelen);
	name[d->namelen] = 0;
	if (name[0] != '/') {
		size_t nl = strlen(name);
		if ((size_t)n > nl + 1 && !strcmp(path + n - nl, name) && path[n - nl - 1] == '/') {
			path[n - nl - 1] = 0;
			if (!(ue->name_dir = strdup(path[0] ? path : "/")))
				return files_oom(f);
		} else {
			pr_warn("pid %d: fd %d: can't tell the directory of unix socket %s (file %s)", f->pid,
				f->fd, name, path);
		}
	}
	return 0;
}

UnixSkEntry *new_usk(void)
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

int set_name(UnixSkEntry *ue, const struct usk_diag *d)
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
		return files_oom(f);
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

int unix_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
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
		return files_oom(f);
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
		return files_oom(f);
	if (o->service_sk_ino && d->peer == o->service_sk_ino)
		return dump_service_sk(ue, f);

	int sk = f->sk, ret = -1;
	if (dump_opts(sk, ue->opts) < 0) {
		pr_perror("pid %d: fd %d: can't read the options of unix socket %u", f->pid, f->fd, d->ino);
		goto out;
	}
	if (d->namelen && d->name[0] && dump_name_file(sk, d, ue, f) < 0)
		goto out;
	/* a datagram's rq is only its first message's length, maybe 0 */
	bool queued = d->type == SOCK_DGRAM || (d->state == ST_ESTABLISHED && d->rq);
	if (queued && peek_queue(t, u, sk, fe->id, d, f) < 0)
		goto out;
	ret = remember(u, f, ue, d);
	pr_debug("pid %d: fd %d: unix socket %u type %u state %u peer %u name %s", f->pid, f->fd, d->ino,
		 d->type, d->state, d->peer, NAME(ue));
out:
	return ret;
}

void unix_free_images(struct file_table *t)
{
	struct unix_dump *u = files_dump_state(t, &fd_kind_unix);
	for (int i = 0; i < u->nr_diag; i++)
		free(u->diag[i].icons);
	for (int i = 0; i < u->nr_pk; i++) {
		free(u->pk[i].buf);
		free(u->pk[i].rights);
	}
	free(u->diag);
	free(u->sk);
	idmap_free(&u->sk_by_ino);
	free(u->pk);
	free(u->ext);
}
