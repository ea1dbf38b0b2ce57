/* epoll: its flags and its watched files (fdinfo "tfd:" lines: fd number,
 * events, data). The kernel names a target by the fd number it had in the
 * process that added it, and the restore re-adds each target by that
 * number: in each restored process holding the epoll, once all its fds
 * are in place (after_install), the targets whose number is one of its
 * own fds are added, unless a process sharing the epoll added them
 * already (so an epoll shared across fork is filled once, and a target
 * only a child has is added by that child). For this to be right, the
 * dump checks with kcmp(KCMP_EPOLL_TFD), in every process of the tree
 * holding the epoll, that a fd of that number is the target itself, and
 * that at least one has it; otherwise (fd closed, or its number reused
 * for another file) it refuses the dump. What was ready is not saved:
 * adding a target polls it anew. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "files/anonfd.h"
#include "proc/proc.h"
#include "util/log.h"

#define FDINFO_MAX (1 << 20)

struct epoll_slot {	/* kcmp's struct kcmp_epoll_slot */
	uint32_t efd, tfd, toff;
};

static bool epoll_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "[eventpoll]");
}

/* 0: fd tfd of pid is the file the epoll (fd efd of epid) watches as
 * tfd, 1: another file, -1 (errno): fd tfd not open or no such target. */
static int target_is_fd(pid_t pid, pid_t epid, int efd, int tfd)
{
	struct epoll_slot slot = { efd, tfd, 0 };
	long r = syscall(SYS_kcmp, pid, epid, KCMP_EPOLL_TFD, tfd, &slot);
	return r < 0 ? -1 : r != 0;
}

static EventpollTfdEntry *parse_target(const char *l)
{
	int tfd;
	unsigned events, sdev;
	unsigned long long data, ino;
	long long pos;

	int n = sscanf(l, "tfd: %d events: %x data: %llx pos:%lli ino:%llx sdev:%x", &tfd, &events,
		       &data, &pos, &ino, &sdev);
	if (n < 3 || tfd < 0)
		return NULL;
	EventpollTfdEntry *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	eventpoll_tfd_entry__init(t);
	t->tfd = tfd;
	t->events = events;
	t->data = data;
	if (n == 6) {
		t->has_pos = t->has_inode = t->has_dev = 1;
		t->pos = pos;
		t->inode = ino;
		t->dev = sdev;
	}
	return t;
}

static int add_target(EventpollFileEntry *e, EventpollTfdEntry *t)
{
	EventpollTfdEntry **n = realloc(e->tfd, (e->n_tfd + 1) * sizeof(*n));
	if (!n)
		return -1;
	e->tfd = n;
	e->tfd[e->n_tfd++] = t;
	return 0;
}

/* A process of the dumped tree holding the epoll, and its fd there (in
 * process epid: pid itself, or we for an epoll in flight, whose targets
 * are the fds of the process holding the socket that carries it). */
struct holder {
	pid_t pid, epid;
	int efd;
};

struct holders {
	struct holder *h;
	int nr;
};

static int holders_add(struct holders *hs, pid_t pid, pid_t epid, int efd)
{
	struct holder *n = realloc(hs->h, (hs->nr + 1) * sizeof(*n));
	if (!n)
		return -1;
	hs->h = n;
	hs->h[hs->nr++] = (struct holder){ pid, epid, efd };
	return 0;
}

/* Adds pid if one of its fds is the epoll file (fd f->fd of f->pid). */
static int find_holder(struct holders *hs, const struct fd_facts *f, pid_t pid)
{
	int *fds, nr, ret = 0;

	if (proc_list_fds(pid, &fds, &nr) < 0)
		return -1;
	for (int i = 0; i < nr; i++)
		if (syscall(SYS_kcmp, f->pid, pid, KCMP_FILE, f->fd, fds[i]) == 0) {
			ret = holders_add(hs, pid, pid, fds[i]);
			break;
		}
	free(fds);
	return ret;
}

/* The processes of the tree under pid that hold the epoll besides f->pid. */
static int find_holders(struct holders *hs, const struct fd_facts *f, pid_t pid)
{
	pid_t *tids = NULL, *kids = NULL;
	int nt = 0, nk = 0, ret = -1;

	if (pid != f->pid && find_holder(hs, f, pid) < 0)
		return -1;
	if (proc_list_threads(pid, &tids, &nt) < 0)
		return -1;
	for (int t = 0; t < nt; t++) {
		if (proc_list_children(pid, tids[t], &kids, &nk) < 0)
			goto out;
		for (int k = 0; k < nk; k++)
			if (find_holders(hs, f, kids[k]) < 0)
				goto out;
		free(kids);
		kids = NULL;
	}
	ret = 0;
out:
	free(kids);
	free(tids);
	return ret;
}

/* The restore re-adds a target in each process holding the epoll that
 * has an fd of the target's number. So in every such process that fd
 * must be the target, and at least one must have it; and the number must
 * name one target only (not a closed fd's number reused for another). */
static int check_target(const struct fd_facts *f, const EventpollFileEntry *e,
			const EventpollTfdEntry *t, const struct holders *hs)
{
	bool found = false;

	for (size_t i = 0; i + 1 < e->n_tfd; i++)
		if (e->tfd[i]->tfd == t->tfd) {
			pr_err("pid %d: fd %d (epoll) watches two files as fd %u: one was closed and "
			       "the number reused; stasis can't restore such an epoll set",
			       f->pid, f->fd, t->tfd);
			return -1;
		}
	for (int i = 0; i < hs->nr; i++) {
		const struct holder *h = &hs->h[i];
		int r = target_is_fd(h->pid, h->epid, h->efd, t->tfd);
		if (r == 0) {
			found = true;
			continue;
		}
		if (r < 0 && errno == EBADF)
			continue;	/* no such fd there: that process won't add it */
		if (r < 0 && errno != ENOENT) {
			pr_perror("pid %d: fd %d (epoll): can't check its target fd %u", h->pid, h->efd,
				  t->tfd);
			return -1;
		}
		if (f->via && h->epid != h->pid)
			pr_err("pid %d: an epoll in flight in the queue of one of its unix sockets watches a "
			       "file added as fd %u, which is another file in this process; stasis can't "
			       "restore such an epoll set", h->pid, t->tfd);
		else if (h->pid == f->pid)
			pr_err("pid %d: fd %d (epoll) watches a file added as fd %u, but fd %u is "
			       "another file now (closed and reused); stasis can't restore such an "
			       "epoll set", f->pid, f->fd, t->tfd, t->tfd);
		else
			pr_err("pid %d: fd %u is another file than the one the epoll it shares (pid %d "
			       "fd %d) watches as fd %u; stasis can't restore such an epoll set", h->pid,
			       t->tfd, f->pid, f->fd, t->tfd);
		return -1;
	}
	if (found)
		return 0;
	if (f->via) {
		pr_err("pid %d: an epoll in flight in the queue of one of its unix sockets watches a file "
		       "added as fd %u, which the process has no more; stasis can't restore such an epoll "
		       "set", f->via, t->tfd);
		return -1;
	}
	pr_err("pid %d: fd %d (epoll) watches a file added as fd %u, which no process holding the "
	       "epoll has any more (closed since); stasis can't restore such an epoll set (keep the "
	       "fd open, or remove it with EPOLL_CTL_DEL before closing it)", f->pid, f->fd, t->tfd);
	return -1;
}

static int epoll_dump_targets(const struct fd_facts *f, pid_t root, const char *buf,
			      EventpollFileEntry *e)
{
	struct holders hs = { NULL, 0 };
	int ret = -1;

	/* in flight: restore adds its targets in the process holding the socket */
	if (holders_add(&hs, f->via ? f->via : f->pid, f->pid, f->fd) < 0 ||
	    find_holders(&hs, f, root ? root : f->pid) < 0) {
		pr_err("pid %d: fd %d (epoll): can't find the processes sharing it", f->pid, f->fd);
		goto out;
	}
	for (const char *l = buf; l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, "tfd:", 4))
			continue;
		EventpollTfdEntry *t = parse_target(l);
		if (!t || add_target(e, t) < 0) {
			pr_err("pid %d: fd %d (epoll): can't parse target line \"%.80s\"", f->pid, f->fd, l);
			free(t);
			goto out;
		}
		t->id = e->id;
		if (check_target(f, e, t, &hs) < 0)
			goto out;
		pr_debug("pid %d: fd %d: epoll target fd %u events %#x data %#llx", f->pid, f->fd,
			 t->tfd, t->events, (unsigned long long)t->data);
	}
	ret = 0;
out:
	free(hs.h);
	return ret;
}

static int epoll_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
		      FileEntry *fe)
{
	char *buf = malloc(FDINFO_MAX);
	EventpollFileEntry *e = calloc(1, sizeof(*e));
	int ret = -1;

	if (!buf || !e) {
		free(e);
		files_oom(f);
		goto out;
	}
	eventpoll_file_entry__init(e);
	fe->epfd = e;
	e->id = fe->id;
	e->flags = f->fi.flags & ~O_CLOEXEC;
	if (!(e->fown = anon_fown_new())) {
		files_oom(f);
		goto out;
	}
	if (anon_fdinfo_read(f->pid, f->fd, buf, FDINFO_MAX) < 0)
		goto out;
	ret = epoll_dump_targets(f, o->pid, buf, e);
out:
	free(buf);
	return ret;
}

/* ---- restore ---- */

static int epoll_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const EventpollFileEntry *e = fe->epfd;
	if (!e) {
		pr_err("image files.img: epoll entry %u is empty", fe->id);
		return -1;
	}
	int fd = epoll_create1(0);
	if (fd < 0) {
		pr_perror("can't make epoll %u", fe->id);
		return -1;
	}
	if (anon_set_status_flags(fd, e->flags) < 0) {
		pr_perror("can't set the flags of epoll %u", fe->id);
		close(fd);
		return -1;
	}
	return fd;
}

/* In a process whose fds are in place: adds the targets it has at their
 * fd numbers and that no process sharing this epoll added already. */
static int epoll_add_targets(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid)
{
	const EventpollFileEntry *e = fe->epfd;

	for (size_t i = 0; e && i < e->n_tfd; i++) {
		const EventpollTfdEntry *t = e->tfd[i];
		if (!files_task_has_fd(rf, t->tfd))
			continue;	/* not ours: a process sharing the epoll adds it */
		if (target_is_fd(getpid(), getpid(), fd, t->tfd) >= 0)
			continue;	/* added already */
		struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
		if (epoll_ctl(fd, EPOLL_CTL_ADD, t->tfd, &ev) < 0 && errno != EEXIST) {
			pr_perror("pid %d: can't add fd %u to epoll fd %d (events %#x)", pid, t->tfd, fd,
				  t->events);
			return -1;
		}
		pr_debug("pid %d: epoll fd %d watches fd %u again (events %#x data %#llx)", pid, fd,
			 t->tfd, t->events, (unsigned long long)t->data);
	}
	return 0;
}

const struct fd_kind fd_kind_epoll = {
	.name = "epoll", .type = FD_TYPES__EVENTPOLL,
	.owns = epoll_owns, .dump = epoll_dump, .open = epoll_open,
	.after_install = epoll_add_targets,
};
