/* `restore --lazy-pages`: the tree runs before its private anonymous
 * memory is back; a lazy-pages daemon (stasis's, src/lazy/, or CRIU's)
 * fills each page on first touch through userfaultfd, and the rest in the
 * background.
 *
 * Before the rebuild, stasis connects to the daemon's socket in the work
 * directory (util/lazy_proto.h) and names the zombies. The rebuild maps
 * every mapping and reads in the pages that are not lazy (mem.c skips the
 * lazy runs); then, before anything else runs in the process, it makes a
 * userfaultfd there (the process's own, asking for the events of fork,
 * mremap, munmap and madvise), registers the mappings that have lazy
 * pages, takes the fd out (pidfd_getfd) and hands it to the daemon, which
 * serves faults from then on. When the whole tree runs, the daemon is
 * told so and copies the rest.
 *
 * A userfaultfd whose last holder closes it lets the kernel fill every
 * missing page with zeros: a daemon that dies would leave the tree
 * running on zeros. So stasis keeps a copy of every userfaultfd in a
 * guard process (while a copy is open, a fault waits instead), which the
 * daemon also sends the userfaultfds of processes forked later. If the
 * daemon goes before it says every page is in place, the guard kills the
 * tree and says why. CRIU's daemon does not speak to the restore: then no
 * guard is kept (said in the log). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "image/lazy.h"
#include "proc/proc.h"
#include "restore/rst.h"
#include "util/lazy_proto.h"
#include "util/log.h"

struct rst_lazy {
	int sk;
	pthread_mutex_t lock;
	int *uffd;		/* our copies, for the guard */
	int nr_uffd;
	pid_t watcher;		/* until the tree runs (watch_daemon) */
};

/* ---- the connection, made as the one who asked for the restore ---- */

static int work_dirfd(const struct opts *o)
{
	if (o->work_dirfd >= 0)
		return dup(o->work_dirfd);
	if (o->images_dirfd >= 0 && !o->work_dir)
		return dup(o->images_dirfd);
	const char *dir = o->work_dir ? o->work_dir : o->images_dir;
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int connect_here(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, LAZY_SOCK_NAME);
	int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -1;
	if (connect(sk, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(sk);
		errno = e;
		return -1;
	}
	return sk;
}

/* A child goes into the work directory, becomes the client of an
 * unprivileged restore (so the socket is one the client may reach, and
 * the daemon sees the client as its peer), connects, and passes the
 * socket back. */
static int connect_daemon(const struct rst_tree *tr)
{
	int pair[2], dfd = work_dirfd(tr->o);
	if (dfd < 0) {
		pr_perror("lazy pages: can't open the work directory");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
		close(dfd);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pair[0]);
		int sk = -1, err = 0;
		if (fchdir(dfd) < 0 || rst_client_become(tr, false) < 0 || (sk = connect_here()) < 0)
			err = errno ? errno : EPERM;
		lazy_send(pair[1], &err, sizeof(err), sk);
		_exit(0);
	}
	close(dfd);
	close(pair[1]);
	int err = EIO, sk = -1;
	if (pid < 0 || lazy_recv(pair[0], &err, sizeof(err), &sk) != 1)
		err = EIO;
	close(pair[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	if (sk < 0) {
		errno = err;
		pr_perror("lazy pages: can't connect to the lazy-pages daemon's socket %s in %s (is `stasis "
			  "lazy-pages` running there?)", LAZY_SOCK_NAME,
			  tr->o->work_dir ? tr->o->work_dir : tr->o->images_dir);
		return -1;
	}
	return sk;
}

static int send_pid(struct rst_lazy *l, pid_t pid, int uffd)
{
	int32_t p = pid;
	char one = 0;
	pthread_mutex_lock(&l->lock);
	int ret = lazy_send(l->sk, &p, sizeof(p), -1);
	if (ret == 0 && uffd >= 0)
		ret = lazy_send(l->sk, &one, 1, uffd);
	pthread_mutex_unlock(&l->lock);
	if (ret < 0)
		pr_perror("lazy pages: can't hand pid %d to the lazy-pages daemon", pid);
	return ret;
}

static void kill_descendants(pid_t pid, int depth, pid_t spare);
static bool kept(int fd, const int *keep, int nr);
static void close_others(const int *keep, int nr);

/* Until the tree runs, the restore itself may wait on a fault in a
 * process's lazy memory (a call it runs there): a daemon that dies then
 * (its page source lost, say) would leave it hung, as our copies of the
 * userfaultfds keep the fault waiting. So a child of ours watches the
 * daemon's socket meanwhile, without reading it, and if the daemon goes
 * kills what we made (our descendants): the restore's calls then fail,
 * and it cleans up. A process, not a thread: the tree is cloned from
 * us with clone3, and C library calls in a clone of a threaded process
 * may wait for threads it no longer has. */
static void watch_daemon(int sk)
{
	struct pollfd p = { sk, POLLRDHUP, 0 };
	for (;;) {
		if (getppid() == 1)
			_exit(0);
		int n = poll(&p, 1, 1000);
		if (n < 0 && errno != EINTR)
			_exit(0);
		if (n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			break;
	}
	pr_err("lazy pages: the lazy-pages daemon is gone before the restored tree ran (see its log); "
	       "what the restore made so far is killed");
	for (int round = 0; round < 3; round++)
		kill_descendants(getppid(), 0, getpid());
	_exit(0);
}

static void start_watch(struct rst_lazy *l)
{
	pid_t parent = getpid();
	l->watcher = fork();
	if (l->watcher == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		int keep[3] = { l->sk };
		log_fds(keep + 1);
		close_others(keep, 3);
		watch_daemon(l->sk);
	}
	if (l->watcher < 0)
		pr_perror("lazy pages: can't watch the daemon while the tree is made");
}

static void unwatch(struct rst_lazy *l)
{
	if (l->watcher <= 0)
		return;
	kill(l->watcher, SIGKILL);
	waitpid(l->watcher, NULL, 0);
	l->watcher = 0;
}

int rst_lazy_start(struct rst_tree *tr)
{
	if (!tr->o->lazy_pages)
		return 0;
	struct rst_lazy *l = calloc(1, sizeof(*l));
	if (!l)
		return -1;
	pthread_mutex_init(&l->lock, NULL);
	l->uffd = calloc(tr->nr + 1, sizeof(int));
	tr->lazy = l;
	l->sk = -1;
	if (!l->uffd || (l->sk = connect_daemon(tr)) < 0)
		return -1;
	/* above the fds the tree's processes are made with, as the pages
	 * images: they close it with their service fds */
	if ((l->sk = files_keep_fd(&tr->files, l->sk, LAZY_SOCK_NAME)) < 0)
		return -1;
	/* a zombie has no memory: its negated pid only, as CRIU sends it */
	for (int i = 0; i < tr->nr; i++)
		if (tr->t[i].zombie && send_pid(l, -tr->t[i].pid, -1) < 0)
			return -1;
	pr_info("lazy pages: connected to the lazy-pages daemon");
	start_watch(l);
	return 0;
}

/* ---- each process ---- */

static bool vma_has_lazy_run(const struct rst_ctx *rc, const VmaEntry *e)
{
	if (!vma_can_be_lazy(e))
		return false;
	for (int i = 0; i < rc->nr_pagemap; i++) {
		const PagemapEntry *pe = rc->pagemap[i];
		uint64_t end = pe->vaddr + pagemap_run_pages(pe) * PAGE_SZ;
		if (pe->vaddr < e->end && end > e->start && run_is_lazy(rc->mm, pe))
			return true;
	}
	return false;
}

bool rst_lazy_run(const struct rst_ctx *rc, const PagemapEntry *pe)
{
	return rc->o->lazy_pages && run_is_lazy(rc->mm, pe);
}

/* An ioctl on the process's userfaultfd, run in the process (so the
 * kernel checks its rights, not stasis's), its argument read back. */
static int uffd_ioctl(struct rst_ctx *rc, int fd, unsigned long req, void *arg, size_t len, long *ret)
{
	size_t mark = inj_args_mark(&rc->inj);
	uint64_t at;
	int r = inj_arg(&rc->inj, arg, len, &at) < 0 || inj_call(&rc->inj, ret, INJ(SYS_ioctl, fd, req, at)) < 0 ||
		inj_read(&rc->inj, at, arg, len) < 0 ? -1 : 0;
	inj_args_release(&rc->inj, mark);
	return r;
}

static int make_uffd(struct rst_ctx *rc, long *fd)
{
	if (inj_call(&rc->inj, fd, INJ(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)) < 0)
		return -1;
	if (*fd >= 0)
		return 0;
	errno = -*fd;
	if (errno == EPERM)
		pr_err("pid %d: can't make a userfaultfd for a lazy restore: vm.unprivileged_userfaultfd is 0 "
		       "and the process (a non-root client's) lacks CAP_SYS_PTRACE, and a lazy restore needs "
		       "one that catches the kernel's own faults too", rc->pid);
	else
		pr_perror("pid %d: can't make a userfaultfd for a lazy restore", rc->pid);
	return -1;
}

static int setup_uffd(struct rst_ctx *rc, int fd)
{
	long ret;
	struct uffdio_api api = { .api = UFFD_API, .features = LAZY_UFFD_FEATURES };
	if (uffd_ioctl(rc, fd, UFFDIO_API, &api, sizeof(api), &ret) < 0)
		return -1;
	if (ret < 0 || (api.features & LAZY_UFFD_FEATURES) != LAZY_UFFD_FEATURES) {
		errno = ret < 0 ? -ret : ENOTSUP;
		pr_perror("pid %d: userfaultfd without the events of fork, mremap, munmap and madvise "
			  "(a lazy restore needs them)", rc->pid);
		return -1;
	}
	for (size_t i = 0; i < rc->mm->n_vmas; i++) {
		const VmaEntry *e = rc->mm->vmas[i];
		if (!vma_has_lazy_run(rc, e))
			continue;
		struct uffdio_register reg = { .range = { e->start, e->end - e->start },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };
		if (uffd_ioctl(rc, fd, UFFDIO_REGISTER, &reg, sizeof(reg), &ret) < 0)
			return -1;
		if (ret < 0 || !(reg.ioctls & (1ull << _UFFDIO_COPY))) {
			errno = ret < 0 ? -ret : ENOTSUP;
			pr_perror("pid %d: can't register mapping %#lx-%#lx for lazy pages", rc->pid,
				  (unsigned long)e->start, (unsigned long)e->end);
			return -1;
		}
	}
	return 0;
}

int rst_lazy_task(struct rst_tree *tr, struct rst_ctx *rc)
{
	struct rst_lazy *l = tr->lazy;
	long fd, r;
	if (!l)
		return 0;
	if (make_uffd(rc, &fd) < 0)
		return -1;
	int ours = -1, ret = setup_uffd(rc, fd);
	if (ret == 0 && (ours = proc_take_fd(rc->real_pid, fd)) < 0) {
		pr_perror("pid %d: can't take its userfaultfd", rc->pid);
		ret = -1;
	}
	if (inj_call(&rc->inj, &r, INJ(SYS_close, fd)) < 0 || r < 0)
		ret = -1;
	if (ret == 0)
		ret = send_pid(l, rc->pid, ours);
	if (ret < 0) {
		if (ours >= 0)
			close(ours);
		return -1;
	}
	pthread_mutex_lock(&l->lock);
	l->uffd[l->nr_uffd++] = ours;
	pthread_mutex_unlock(&l->lock);
	pr_debug("pid %d: its lazy memory is handed to the lazy-pages daemon", rc->pid);
	return 0;
}

/* ---- once the tree runs ---- */

/* The processes of the tree and their descendants, killed until none is
 * left that was not before (a fork may race with the kill). */
static void kill_descendants(pid_t pid, int depth, pid_t spare)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *s = buf, *end; *s; s = end) {
		long c = strtol(s, &end, 10);
		if (end == s)
			break;
		if (c > 0 && c != spare) {
			kill(c, SIGKILL);
			if (depth < 64)
				kill_descendants(c, depth + 1, spare);
		}
	}
}

static void kill_tree(int *pidfd, int nr, const pid_t *pid)
{
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < nr; i++) {
			if (pidfd[i] < 0)
				continue;
			kill_descendants(pid[i], 0, 0);
			syscall(SYS_pidfd_send_signal, pidfd[i], SIGKILL, NULL, 0);
		}
}

/* The guard: until the daemon says every page is in place, or is gone. */
static void guard(int sk, int *pidfd, pid_t *pid, int nr, pid_t root)
{
	struct pollfd p = { sk, POLLIN, 0 };
	uint32_t w;
	int fd, n;

	if (poll(&p, 1, 2000) <= 0) {
		pr_info("lazy pages: the lazy-pages daemon is not stasis's: the tree is not guarded against its death");
		return;
	}
	if (lazy_recv(sk, &w, sizeof(w), NULL) != 1 || w != LAZY_HELLO) {
		pr_info("lazy pages: the lazy-pages daemon is not stasis's: the tree is not guarded against its death");
		return;
	}
	for (;;) {
		n = lazy_recv(sk, &w, sizeof(w), &fd);
		if (n == 1 && w == LAZY_FORKED)
			continue;	/* its fd stays open here, as the others */
		if (fd >= 0)
			close(fd);
		if (n == 1 && w == LAZY_DONE)
			return;
		if (n == 1)
			continue;
		break;
	}
	pr_err("lazy pages: the lazy-pages daemon is gone before every page of the restored tree was in place; "
	       "the tree (root pid %d) is killed rather than left to run on missing memory", root);
	kill_tree(pidfd, nr, pid);
}

static bool kept(int fd, const int *keep, int nr)
{
	for (int i = 0; i < nr; i++)
		if (keep[i] == fd)
			return true;
	return false;
}

/* Everything but what the guard needs goes: a file of the tree it held
 * would keep a pipe or a socket open behind the tree's back. */
static void close_others(const int *keep, int nr)
{
	int *fds, n;
	if (proc_list_fds(getpid(), &fds, &n) < 0)
		return;
	for (int i = 0; i < n; i++)
		if (fds[i] > 2 && !kept(fds[i], keep, nr))
			close(fds[i]);
	free(fds);
}

int rst_lazy_finish(struct rst_tree *tr)
{
	struct rst_lazy *l = tr->lazy;
	uint32_t fin = LAZY_RESTORE_FINISHED;
	if (!l)
		return 0;
	unwatch(l);	/* the guard watches from here */
	if (lazy_send(l->sk, &fin, sizeof(fin), -1) < 0) {
		pr_perror("lazy pages: can't tell the lazy-pages daemon that the tree runs");
		return -1;
	}
	int nr = 0, *pidfd = calloc(tr->nr + 1, sizeof(int));
	pid_t *pid = calloc(tr->nr + 1, sizeof(pid_t));
	if (!pidfd || !pid) {
		free(pidfd);
		free(pid);
		return -1;
	}
	for (int i = 0; i < tr->nr; i++)
		if (!tr->t[i].zombie) {
			pid[nr] = tr->t[i].real_pid;
			pidfd[nr++] = syscall(SYS_pidfd_open, tr->t[i].real_pid, 0);
		}
	pid_t g = fork();
	if (g == 0) {
		int nkeep = l->nr_uffd + nr + 3, *keep = malloc(nkeep * sizeof(int));
		if (keep) {
			memcpy(keep, l->uffd, l->nr_uffd * sizeof(int));
			memcpy(keep + l->nr_uffd, pidfd, nr * sizeof(int));
			keep[nkeep - 3] = l->sk;
			log_fds(keep + nkeep - 2);
			close_others(keep, nkeep);
		}
		setsid();
		guard(l->sk, pidfd, pid, nr, tr->t[0].real_pid);
		_exit(0);
	}
	if (g < 0)
		pr_perror("lazy pages: can't start the guard; the tree is not guarded against the daemon's death");
	for (int i = 0; i < nr; i++)
		if (pidfd[i] >= 0)
			close(pidfd[i]);
	free(pidfd);
	free(pid);
	return 0;
}

/* Our copies go: while one is open a fault waits for a daemon. */
void rst_lazy_free(struct rst_tree *tr)
{
	struct rst_lazy *l = tr->lazy;
	if (!l)
		return;
	unwatch(l);
	for (int i = 0; i < l->nr_uffd; i++)
		close(l->uffd[i]);
	if (l->sk >= 0)
		close(l->sk);
	free(l->uffd);
	pthread_mutex_destroy(&l->lock);
	free(l);
	tr->lazy = NULL;
}
