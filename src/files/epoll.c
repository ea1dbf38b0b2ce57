/* epoll: its flags and its watched files (fdinfo "tfd:" lines: fd number,
 * events, data). The kernel names a target by the fd number it was added
 * under, which may since be closed (the file still open as another fd,
 * a dup) or reused for another file. As CRIU does, the dump saves each
 * target as an fd of the process it dumps the epoll from (the first of
 * the tree holding it) that is that very file, found with
 * kcmp(KCMP_EPOLL_TFD). Beyond CRIU, a target only another process
 * sharing the epoll has an fd of is saved as that fd, if no other holder
 * has an fd of that number. A target no holder has an fd of is refused.
 * The restore adds each target in the first process in pstree.img that
 * holds the epoll and has an fd of its number, once all its fds are in
 * place; the other processes sharing the epoll share it. What was ready
 * is not saved: adding a target polls it anew. */
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


struct epoll_slot {	/* kcmp's struct kcmp_epoll_slot */
	uint32_t efd, tfd, toff;
};

static bool epoll_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "[eventpoll]");
}

/* 0: fd tfd of pid is the file the epoll (fd efd) watches as tfd, 1:
 * another file, -1 (errno): fd tfd not open or no such target. */
static int target_is_fd(pid_t pid, int efd, int tfd)
{
	struct epoll_slot slot = { efd, tfd, 0 };
	long r = syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, tfd, &slot);
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

/* A process of the dumped tree holding the epoll, and its fd there (the
 * first: for an epoll in flight, the process holding the socket, with
 * stasis's own fd on the epoll). */
struct holder {
	pid_t pid;
	int efd;
};

struct holders {
	struct holder *h;
	int nr;
};

static int holders_add(struct holders *hs, pid_t pid, int efd)
{
	struct holder *n = realloc(hs->h, (hs->nr + 1) * sizeof(*n));
	if (!n)
		return -1;
	hs->h = n;
	hs->h[hs->nr++] = (struct holder){ pid, efd };
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
			ret = holders_add(hs, pid, fds[i]);
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

/* How many targets before target i in e share its number: kcmp's toff. */
static uint32_t target_offset(const EventpollFileEntry *e, size_t i)
{
	uint32_t off = 0;
	for (size_t j = 0; j < i; j++)
		off += e->tfd[j]->tfd == e->tfd[i]->tfd;
	return off;
}

/* Whether fd of pid is target t of the epoll (efd of ep), whose toff
 * tells apart targets added under one number (kcmp's slot). */
static bool fd_is_target(pid_t pid, int fd, pid_t ep, int efd, const EventpollTfdEntry *t,
			 uint32_t toff)
{
	struct epoll_slot slot = { efd, t->tfd, toff };
	return syscall(SYS_kcmp, pid, ep, KCMP_EPOLL_TFD, fd, &slot) == 0;
}

/* Whether a holder other than h has an fd numbered fd. */
static bool other_has_fd(const struct holders *hs, const struct holder *h, int fd)
{
	char link[64], buf[8];
	for (int i = 0; i < hs->nr; i++) {
		if (&hs->h[i] == h)
			continue;
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", hs->h[i].pid, fd);
		if (readlink(link, buf, sizeof(buf)) >= 0)
			return true;
	}
	return false;
}

/* An fd of holder h that is target i of e: its own number if that fd
 * still is the target, else any that is (added through a dup since
 * closed, or the number reused). With only, an fd no other holder has a
 * fd of that number (so the restore knows h must add it). -1 if none. */
static int find_target_fd(const struct fd_facts *f, const EventpollFileEntry *e, size_t i,
			  const struct holders *hs, const struct holder *h, bool only)
{
	const EventpollTfdEntry *t = e->tfd[i];
	uint32_t toff = target_offset(e, i);
	int *fds, nr, found = -1;

	if (fd_is_target(h->pid, t->tfd, f->pid, f->fd, t, toff) &&
	    !(only && other_has_fd(hs, h, t->tfd)))
		return t->tfd;
	if (proc_list_fds(h->pid, &fds, &nr) < 0)
		return -1;
	for (int k = 0; k < nr && found < 0; k++)
		if (fd_is_target(h->pid, fds[k], f->pid, f->fd, t, toff) &&
		    !(only && other_has_fd(hs, h, fds[k])))
			found = fds[k];
	free(fds);
	return found;
}

/* Target i as an fd number of the process the restore adds it in: the
 * first of the tree holding the epoll (the one dumping it, hs->h[0]) if
 * it has an fd of it, as CRIU saves it; else another holder with an fd of
 * it at a number none of the others has (CRIU refuses those). */
/* Is fd of pid a pidfd of a live process? Those are opened only once the
 * tree exists, after the epoll's targets are added (files/pidfd.c). */
static bool is_live_pidfd(pid_t pid, int fd)
{
	char link[64], target[32], info[512], name[32];

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	if (strcmp(target, "anon_inode:[pidfd]"))
		return false;
	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	if (proc_read_file(pid, name, info, sizeof(info)) <= 0)
		return false;
	const char *p = strstr(info, "\nPid:");
	return p && atoi(p + 5) != -1;
}

static int target_number(const struct fd_facts *f, const EventpollFileEntry *e, size_t i,
			 const struct holders *hs)
{
	int fd = find_target_fd(f, e, i, hs, &hs->h[0], false), k = 0;
	while (fd < 0 && ++k < hs->nr)
		fd = find_target_fd(f, e, i, hs, &hs->h[k], true);
	if (fd >= 0 && is_live_pidfd(hs->h[k].pid, fd)) {
		pr_err("pid %d: fd %d (epoll) watches a pidfd of a live process (fd %d of pid %d), "
		       "which stasis can't restore yet; remove it from the epoll before the dump",
		       f->pid, f->fd, fd, hs->h[k].pid);
		return -1;
	}
	if (fd < 0)
		pr_err("pid %d: fd %d (epoll) watches a file added as fd %u that no process holding "
		       "the epoll has an fd of any more (closed since), or has at a number another "
		       "holder uses too; stasis can't restore such an epoll set (keep an fd of it open "
		       "in pid %d, or remove it with EPOLL_CTL_DEL before closing it)", f->pid, f->fd,
		       e->tfd[i]->tfd, f->pid);
	return fd;
}

static int epoll_number_targets(const struct fd_facts *f, pid_t root, EventpollFileEntry *e)
{
	struct holders hs = { NULL, 0 };
	int *fd = calloc(e->n_tfd ? e->n_tfd : 1, sizeof(*fd)), ret = -1;

	if (!fd)
		return files_oom(f);
	/* an epoll in flight (f->via): its targets are the fds of the process
	 * holding the socket that carries it, where restore adds them */
	if (holders_add(&hs, f->via ? f->via : f->pid, f->fd) < 0 ||
	    find_holders(&hs, f, root ? root : f->pid) < 0) {
		pr_err("pid %d: fd %d (epoll): can't find the processes sharing it", f->pid, f->fd);
		goto out;
	}
	for (size_t i = 0; i < e->n_tfd; i++)
		if ((fd[i] = target_number(f, e, i, &hs)) < 0)
			goto out;
	/* renumbered once all are found: toff counts the old numbers */
	for (size_t i = 0; i < e->n_tfd; i++) {
		if ((uint32_t)fd[i] != e->tfd[i]->tfd)
			pr_debug("pid %d: fd %d: epoll target added as fd %u is fd %d now", f->pid,
				 f->fd, e->tfd[i]->tfd, fd[i]);
		e->tfd[i]->tfd = fd[i];
	}
	ret = 0;
out:
	free(hs.h);
	free(fd);
	return ret;
}

static int epoll_dump_targets(const struct fd_facts *f, pid_t root, const char *buf,
			      EventpollFileEntry *e)
{
	for (const char *l = buf; l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, "tfd:", 4))
			continue;
		EventpollTfdEntry *t = parse_target(l);
		if (!t || add_target(e, t) < 0) {
			pr_err("pid %d: fd %d (epoll): can't parse target line \"%.80s\"", f->pid, f->fd, l);
			free(t);
			return -1;
		}
		t->id = e->id;
		pr_debug("pid %d: fd %d: epoll target fd %u events %#x data %#llx", f->pid, f->fd,
			 t->tfd, t->events, (unsigned long long)t->data);
	}
	return epoll_number_targets(f, root, e);
}

static int epoll_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
		      FileEntry *fe)
{
	EventpollFileEntry *e = calloc(1, sizeof(*e));
	char *buf = NULL;
	int ret = -1;

	if (!e) {
		files_oom(f);
		return -1;
	}
	eventpoll_file_entry__init(e);
	fe->epfd = e;
	e->id = fe->id;
	e->flags = f->fi.flags & ~O_CLOEXEC;
	if (!(e->fown = anon_fown_new())) {
		files_oom(f);
		return -1;
	}
	if (!(buf = anon_fdinfo_load(f)))
		return -1;
	ret = epoll_dump_targets(f, o->pid, buf, e);
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

/* In the process the dump took the epoll from, its fds in place: adds
 * the targets, each its fd of that number; the others sharing the epoll
 * share its targets. */
static int epoll_add_targets(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid)
{
	const EventpollFileEntry *e = fe->epfd;

	for (size_t i = 0; e && i < e->n_tfd; i++) {
		const EventpollTfdEntry *t = e->tfd[i];
		if (!files_task_has_fd(rf, t->tfd) || files_earlier_holder_has(rf, fe->id, pid, t->tfd))
			continue;	/* added by the first holder with that fd */
		if (target_is_fd(getpid(), fd, t->tfd) >= 0)
			continue;	/* added already (the epoll has two fds here) */
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
