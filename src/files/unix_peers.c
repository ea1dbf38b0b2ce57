/* Unix sockets, once every task is dumped: each socket's peer must be in
 * the tree too, or allowed outside it (--ext-unix-sk: it gets an entry of
 * its own, no fd, carrying its name to connect to again); then the order
 * of the entries in files.img and the queues' image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/unix.h"
#include "util/log.h"

static int dump_index(const struct unix_dump *u, uint32_t ino)
{
	unsigned pos = 0;
	for (int i; (i = idmap_next(&u->sk_by_ino, ino, &pos)) >= 0;)
		if (u->sk[i].ue->ino == ino)
			return i;
	return -1;
}

static struct usk_dumped *dumped(struct unix_dump *u, uint32_t ino)
{
	int i = dump_index(u, ino);
	return i >= 0 ? &u->sk[i] : NULL;
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
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == d->vfs_ino) {
			if (!(ue->name_dir = strdup(dir))) {
				pr_err("out of memory recording unix socket %u outside the tree", d->ino);
				return -1;
			}
			return 0;
		}
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
		goto oom;
	u->ext = ne;
	u->ext[u->nr_ext++] = ino;

	const struct usk_diag *d = diag_find(u, ino);
	FileEntry *fe = files_new_entry(t, FD_TYPES__UNIXSK);
	if (!fe)
		return -1;
	UnixSkEntry *ue = new_usk();
	if (!ue)
		goto oom;
	fe->usk = ue;
	ue->id = fe->id;
	ue->ino = ino;
	ue->type = d ? d->type : SOCK_DGRAM;
	ue->state = d ? d->state : ST_LISTEN;
	ue->uflags = USK_EXTERN;
	if (set_name(ue, d) < 0)
		goto oom;
	return d ? external_name_dir(ue, d, pid) : 0;
oom:
	pr_err("out of memory recording unix socket %u outside the tree", ino);
	return -1;
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

/* Appends socket i to order[], then those waiting for it (first_waiter
 * and next_waiter list them by index). */
static void put_in_order(int i, const int *first_waiter, const int *next_waiter, int *order, int *n)
{
	order[(*n)++] = i;
	for (int k = first_waiter[i]; k >= 0; k = next_waiter[k])
		put_in_order(k, first_waiter, next_waiter, order, n);
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
 * in order[] (wait[]: those places, of the waiting clients only; the
 * others stay where they are). */
static int order_waiting(const struct unix_dump *u, int *order, int n)
{
	int nw = 0, *wait = malloc((n + 1) * sizeof(int)), *q = malloc((n + 1) * sizeof(int));
	if (!wait || !q) {
		free(wait);
		free(q);
		pr_err("out of memory ordering the %d unix sockets", n);
		return -1;
	}
	for (int a = 0; a < n; a++)
		if ((q[nw] = queue_place(u, &u->sk[order[a]])) >= 0)
			wait[nw++] = a;
	for (int a = 0; a < nw; a++)
		for (int b = a + 1; b < nw; b++) {
			int *oa = &order[wait[a]], *ob = &order[wait[b]];
			if (q[b] < q[a] && u->sk[*ob].ue->peer == u->sk[*oa].ue->peer) {
				int tmp = *oa, tq = q[a];
				*oa = *ob;
				*ob = tmp;
				q[a] = q[b];
				q[b] = tq;
			}
		}
	free(wait);
	free(q);
	return 0;
}

/* The order of our entries in files.img. CRIU's restore (4.2) gets
 * socketpairs shared across fork wrong unless a socket comes after its
 * peer whenever the peer was dumped later (the order CRIU's own dump
 * writes them in), so we keep that order; and clients waiting to be
 * accepted come in their queue's order. */
static int order_entries(struct file_table *t, struct unix_dump *u)
{
	int n = 0, *waits_for = calloc(u->nr_sk + 1, sizeof(int)), *order = calloc(u->nr_sk + 1, sizeof(int));
	int *slot = calloc(u->nr_sk + 1, sizeof(int)), *first = calloc(u->nr_sk + 1, sizeof(int));
	int *next = calloc(u->nr_sk + 1, sizeof(int));
	FileEntry **fe = calloc(u->nr_sk + 1, sizeof(*fe));
	int ret = -1;

	if (!waits_for || !order || !slot || !first || !next || !fe) {
		pr_err("out of memory ordering the %d unix sockets", u->nr_sk);
		goto out;
	}
	for (int i = 0; i < u->nr_sk; i++) {
		int p = u->sk[i].ue->peer ? dump_index(u, u->sk[i].ue->peer) : -1;
		waits_for[i] = p > i ? p : -1;
		first[i] = next[i] = -1;
	}
	/* the waiters of each socket, by index: filled backwards, so each
	 * list comes out in increasing order */
	for (int i = u->nr_sk - 1; i >= 0; i--)
		if (waits_for[i] >= 0) {
			next[i] = first[waits_for[i]];
			first[waits_for[i]] = i;
		}
	for (int i = 0; i < u->nr_sk; i++)
		if (waits_for[i] < 0)
			put_in_order(i, first, next, order, &n);
	if (order_waiting(u, order, n) < 0)
		goto out;
	/* the slots of our entries in the table, in table order */
	int ns = 0;
	for (int e = 0; e < t->nr && ns < u->nr_sk; e++) {
		int i = t->e[e]->type == FD_TYPES__UNIXSK && t->e[e]->usk ? dump_index(u, t->e[e]->usk->ino) : -1;
		if (i >= 0 && t->e[e]->usk == u->sk[i].ue) {
			slot[ns] = e;
			fe[i] = t->e[e];
			ns++;
		}
	}
	if (n == u->nr_sk && ns == u->nr_sk)
		for (int k = 0; k < n; k++)
			t->e[slot[k]] = fe[order[k]];
	ret = 0;
out:
	free(waits_for);
	free(order);
	free(slot);
	free(first);
	free(next);
	free(fe);
	return ret;
}

int unix_write_images(struct file_table *t, int dirfd)
{
	struct unix_dump *u = files_dump_state(t, &fd_kind_unix);
	if (!u->loaded)
		return 0;	/* no unix socket in the tree */
	for (int i = 0; i < u->nr_sk; i++)
		if (idmap_add(&u->sk_by_ino, u->sk[i].ue->ino, i) < 0) {
			pr_err("out of memory indexing the %d unix sockets", u->nr_sk);
			return -1;
		}
	for (int i = 0; i < u->nr_sk; i++)
		if (resolve_peer(t, u, &u->sk[i]) < 0 ||
		    (u->sk[i].d->state == ST_LISTEN && check_listener(u, &u->sk[i]) < 0))
			return -1;
	if (order_entries(t, u) < 0)
		return -1;
	return write_queues(u, dirfd);
}
