/* The lazy-pages daemon. It listens on LAZY_SOCK_NAME in its work
 * directory and serves one restore: for each process the restore sends,
 * a userfaultfd with the process's lazy mappings registered. A fault is
 * answered with the pages around it (UFFDIO_COPY), or a zero page where
 * the images have none; once the restore says the tree runs, the rest is
 * copied in the background, in growing chunks that shrink again at each
 * fault. The kernel tells what the processes do meanwhile: a fork gives
 * a new userfaultfd for the child, which gets what its parent had still
 * to come; mremap moves pages still to come; munmap and madvise drop them.
 * A process that exits is noticed at the next copy (ESRCH). When every
 * page of every process is in, the restore's guard is told (LAZY_DONE)
 * and the daemon ends.
 *
 * Only one peer is served: one with our uid, or root (a restore, whose
 * pids name the images we read: the socket is ours, mode 0600). The
 * images are read as the user who started the daemon, from its images
 * directory only, never from a parent dump. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "image/checksum.h"
#include "image/img.h"
#include "image/vma.h"
#include "lazy/lazy.h"
#include "lazy/source.h"
#include "pagexfer/ps_client.h"
#include "pagexfer/ps_tls.h"
#include "util/fault.h"
#include "util/lazy_proto.h"
#include "util/action.h"
#include "util/log.h"
#include "util/pidfile.h"

#define FAULT_CHUNK (64ul << 10)	/* copied around a fault */
#define XFER_MIN (64ul << 10)		/* background chunks grow from here */
#define XFER_MAX (4ul << 20)
#define MAX_MSGS 32
#define MAX_RETRY 4096

/* One process (or one forked in the lazy phase: the same images). */
struct lproc {
	pid_t pid;		/* in the images */
	int uffd;
	struct lranges todo;
	struct lazy_src *src;
	bool gone;
	uint64_t copied;
	struct lproc *next;
};

/* A fault that could not be answered yet (the process's memory was
 * changing: EAGAIN), tried again after the events are read. */
struct retry {
	struct lproc *p;
	uint64_t addr;
};

struct daemon {
	const struct opts *o;
	int dirfd, epfd, sk;
	int ps_sk;		/* --page-server: the source's, else -1 */
	bool finished, peer_gone;
	struct lproc *procs, *next_bg;
	struct retry retry[MAX_RETRY];
	int nr_retry;
	char *buf;
	size_t xfer;
	int nr_procs;
	uint64_t bg_from_ms;	/* the background starts then (a test's hold) */
};

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000ull + t.tv_nsec / 1000000;
}

/* ---- copying ---- */

static void proc_gone(struct daemon *d, struct lproc *p)
{
	if (p->gone)
		return;
	pr_debug("pid %d (uffd %d): gone, %lu KiB copied", p->pid, p->uffd, (unsigned long)(p->copied >> 10));
	p->gone = true;
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, p->uffd, NULL);
	close(p->uffd);
	p->uffd = -1;
	lr_free(&p->todo);
}

enum { COPY_OK, COPY_AGAIN, COPY_FAIL };

static void wake(struct lproc *p, uint64_t addr, uint64_t len)
{
	struct uffdio_range r = { addr, len };
	ioctl(p->uffd, UFFDIO_WAKE, &r);
}

/* Copies [addr, addr + len), which lies in one range still to come. */
static int copy_range(struct daemon *d, struct lproc *p, uint64_t addr, uint64_t len)
{
	struct lrange *r = lr_find(&p->todo, addr);
	if (!r || addr + len > r->end)
		return COPY_FAIL;
	const char *from = p->src->get(p->src, r->img + (addr - r->start), d->buf, len);
	if (!from)
		return COPY_FAIL;
	uint64_t done = 0;
	while (done < len) {
		struct uffdio_copy c = { .dst = addr + done, .src = (uint64_t)from + done, .len = len - done };
		if (ioctl(p->uffd, UFFDIO_COPY, &c) == 0) {
			done = len;
			break;
		}
		int err = errno;
		uint64_t n = c.copy > 0 ? (uint64_t)c.copy : 0;
		done += n;
		p->copied += n;
		if (err == ESRCH || err == ENOSPC) {
			proc_gone(d, p);
			return COPY_OK;
		}
		if (err == EAGAIN) {	/* its memory is changing: events first */
			lr_drop(&p->todo, addr, addr + done);
			return COPY_AGAIN;
		}
		if (err == EEXIST || err == ENOENT) {
			/* a page in place already, or no mapping there any more */
			wake(p, addr + done, PAGE_SZ);
			done += PAGE_SZ;
			continue;
		}
		errno = err;
		pr_perror("pid %d: can't copy pages to %#lx", p->pid, (unsigned long)(addr + done));
		return COPY_FAIL;
	}
	p->copied += len;
	return lr_drop(&p->todo, addr, addr + len) < 0 ? COPY_FAIL : COPY_OK;
}

static int zero_page(struct daemon *d, struct lproc *p, uint64_t addr)
{
	struct uffdio_zeropage z = { .range = { addr, PAGE_SZ } };
	if (ioctl(p->uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return COPY_OK;
	if (errno == ESRCH || errno == ENOSPC) {
		proc_gone(d, p);
		return COPY_OK;
	}
	if (errno == EAGAIN)
		return COPY_AGAIN;
	if (errno == EEXIST || errno == ENOENT) {
		wake(p, addr, PAGE_SZ);
		return COPY_OK;
	}
	pr_perror("pid %d: can't put a zero page at %#lx", p->pid, (unsigned long)addr);
	return COPY_FAIL;
}

static int serve_fault(struct daemon *d, struct lproc *p, uint64_t addr)
{
	addr &= ~(PAGE_SZ - 1);
	if (p->gone)
		return 0;
	struct lrange *r = lr_find(&p->todo, addr);
	int ret;
	if (!r) {
		ret = zero_page(d, p, addr);
	} else {
		uint64_t len = r->end - addr < FAULT_CHUNK ? r->end - addr : FAULT_CHUNK;
		ret = copy_range(d, p, addr, len);
	}
	d->xfer = XFER_MIN;
	if (ret == COPY_AGAIN) {
		if (d->nr_retry == MAX_RETRY) {
			pr_err("pid %d: too many faults wait for its memory to settle", p->pid);
			return -1;
		}
		d->retry[d->nr_retry++] = (struct retry){ p, addr };
		return 0;
	}
	return ret == COPY_OK ? 0 : -1;
}

static int run_retries(struct daemon *d)
{
	int n = d->nr_retry;
	struct retry r[MAX_RETRY];
	memcpy(r, d->retry, n * sizeof(*r));
	d->nr_retry = 0;
	for (int i = 0; i < n; i++)
		if (serve_fault(d, r[i].p, r[i].addr) < 0)
			return -1;
	return 0;
}

/* ---- the processes' events ---- */

static struct lproc *proc_new(struct daemon *d, pid_t pid, int uffd)
{
	struct lproc *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	p->uffd = uffd;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, uffd, &ev) < 0) {
		pr_perror("pid %d: can't watch its userfaultfd", pid);
		free(p);
		return NULL;
	}
	p->next = d->procs;
	d->procs = p;
	d->nr_procs++;
	return p;
}

static int on_fork(struct daemon *d, struct lproc *parent, int uffd)
{
	struct lproc *p = proc_new(d, parent->pid, uffd);
	if (!p) {
		close(uffd);
		return -1;
	}
	if (lr_copy(&p->todo, &parent->todo) < 0)
		return -1;
	p->src = parent->src;
	p->src->refs++;
	pr_debug("pid %d: forked a child (uffd %d), %lu KiB still to come", parent->pid, uffd,
		 (unsigned long)(p->todo.bytes >> 10));
	/* the restore's guard keeps a copy, so that it can't lose its memory */
	uint32_t w = LAZY_FORKED;
	if (!d->peer_gone)
		lazy_send(d->sk, &w, sizeof(w), uffd);
	return 0;
}

static int on_event(struct daemon *d, struct lproc *p, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		return serve_fault(d, p, m->arg.pagefault.address);
	case UFFD_EVENT_FORK:
		return on_fork(d, p, m->arg.fork.ufd);
	case UFFD_EVENT_REMAP:
		pr_debug("pid %d: mremap %#llx -> %#llx (%llu)", p->pid, m->arg.remap.from, m->arg.remap.to,
			 m->arg.remap.len);
		return lr_remap(&p->todo, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		/* gone, or to read as zeros: a later fault there gets a zero page */
		pr_debug("pid %d: %s %#llx-%#llx", p->pid, m->event == UFFD_EVENT_REMOVE ? "madvise" : "munmap",
			 m->arg.remove.start, m->arg.remove.end);
		return lr_drop(&p->todo, m->arg.remove.start, m->arg.remove.end);
	default:
		pr_err("pid %d: unexpected userfaultfd event %u", p->pid, m->event);
		return -1;
	}
}

static int read_events(struct daemon *d, struct lproc *p)
{
	struct uffd_msg m[MAX_MSGS];
	for (;;) {
		if (p->gone)
			return 0;
		ssize_t n = read(p->uffd, m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0 || n % sizeof(m[0])) {
			pr_perror("pid %d: can't read its userfaultfd", p->pid);
			return -1;
		}
		for (size_t i = 0; i < n / sizeof(m[0]); i++)
			if (on_event(d, p, &m[i]) < 0)
				return -1;
	}
}

/* ---- the restore ---- */

static int add_process(struct daemon *d, pid_t pid)
{
	char one;
	int uffd;
	if (lazy_recv(d->sk, &one, 1, &uffd) != 1 || uffd < 0) {
		pr_err("pid %d: the restore sent no userfaultfd", pid);
		return -1;
	}
	struct lproc *p = proc_new(d, pid, uffd);
	if (!p) {
		close(uffd);
		return -1;
	}
	if (lazy_plan(d->dirfd, pid, &p->todo) < 0)
		return -1;
	p->src = d->ps_sk >= 0 ? lazy_src_remote(d->ps_sk, pid) : lazy_src_local(d->dirfd, pid);
	if (!p->src)
		return -1;
	pr_info("pid %d: %lu KiB to fill lazily", pid, (unsigned long)(p->todo.bytes >> 10));
	return 0;
}

static int from_restore(struct daemon *d)
{
	int32_t w;
	int r = lazy_recv(d->sk, &w, sizeof(w), NULL);
	if (r != 1) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->sk, NULL);
		d->peer_gone = true;
		if (d->finished)
			return 0;	/* CRIU's restore goes once the tree runs */
		pr_err("the restore ended before the tree ran (it failed: see its log)");
		return -1;
	}
	if ((uint32_t)w == LAZY_RESTORE_FINISHED) {
		pr_info("the restored tree runs: copying the rest in the background");
		d->finished = true;
		/* tests hold the background back to act in the lazy phase */
		const char *hold = getenv("STASIS_TEST_LAZY_BG_DELAY_MS");
		d->bg_from_ms = now_ms() + (hold ? strtoul(hold, NULL, 10) : 0);
		return 0;
	}
	if (w < 0) {
		pr_debug("pid %d: a zombie", -w);
		return 0;
	}
	if (w == 0 || d->finished) {
		pr_err("the restore sent %#x, which is neither a pid nor the end", (unsigned)w);
		return -1;
	}
	return add_process(d, w);
}

/* ---- the background ---- */

static bool all_done(const struct daemon *d)
{
	for (const struct lproc *p = d->procs; p; p = p->next)
		if (!p->gone && p->todo.nr)
			return false;
	return d->nr_retry == 0;
}

static int copy_some(struct daemon *d)
{
	struct lproc *p = d->next_bg ? d->next_bg : d->procs;
	for (int i = 0; i <= d->nr_procs && p && (p->gone || !p->todo.nr); i++)
		p = p->next ? p->next : d->procs;
	if (!p || p->gone || !p->todo.nr)
		return 0;
	d->next_bg = p->next;
	const struct lrange *r = &p->todo.r[0];
	uint64_t len = r->end - r->start < d->xfer ? r->end - r->start : d->xfer;
	uint64_t addr = r->start;
	if (d->xfer < XFER_MAX)
		d->xfer += XFER_MIN;
	int ret = copy_range(d, p, addr, len);
	fault_point("lazy-copy");	/* tests: the daemon dies mid-way */
	return ret == COPY_FAIL ? -1 : 0;
}

static int serve(struct daemon *d)
{
	struct epoll_event ev[16];
	for (;;) {
		if (d->finished && all_done(d))
			return 0;
		int timeout = d->finished || d->nr_retry ? 0 : -1;
		uint64_t now = d->finished ? now_ms() : 0;
		bool bg = d->finished && now >= d->bg_from_ms;
		if (d->finished && !bg && !d->nr_retry)
			timeout = d->bg_from_ms - now;
		int n = epoll_wait(d->epfd, ev, 16, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pr_perror("epoll_wait");
			return -1;
		}
		for (int i = 0; i < n; i++) {
			int r = ev[i].data.ptr ? read_events(d, ev[i].data.ptr) : from_restore(d);
			if (r < 0)
				return -1;
		}
		if (d->nr_retry && run_retries(d) < 0)
			return -1;
		if (!n && bg && copy_some(d) < 0)
			return -1;
	}
}

/* ---- the socket ---- */

/* --page-server: the source's page server (a dump --lazy-pages), or the
 * connection passed in --ps-socket. A source that stalls fails the
 * request after --timeout seconds (default 10), so that the restored
 * tree is killed rather than hung. */
static int connect_source(const struct opts *o)
{
	int sk = o->ps_socket >= 0 ? dup(o->ps_socket) : ps_connect(o->address, o->port);
	if (sk < 0) {
		if (o->ps_socket >= 0)
			pr_perror("--ps-socket %d", o->ps_socket);
		return -1;
	}
	ps_set_timeout(sk, o->timeout ? o->timeout : 10);
	if (ps_tls_start(sk, false, o) < 0) {
		close(sk);
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	return sk;
}

static int listen_here(const struct opts *o)
{
	const char *dir = o->work_dir ? o->work_dir : o->images_dir;
	if (chdir(dir) < 0) {
		pr_perror("can't enter the work directory %s", dir);
		return -1;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, LAZY_SOCK_NAME);
	int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -1;
	unlink(LAZY_SOCK_NAME);
	mode_t old = umask(077);	/* ours alone: root or we may connect */
	int r = bind(sk, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(sk, 4) < 0) {
		pr_perror("can't listen on %s/%s", dir, LAZY_SOCK_NAME);
		close(sk);
		return -1;
	}
	return sk;
}

/* The restore: root's, or our own user's. */
static int accept_restore(int lsk)
{
	for (;;) {
		int sk = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
		if (sk < 0 && errno == EINTR)
			continue;
		if (sk < 0) {
			pr_perror("can't accept the restore's connection");
			return -1;
		}
		struct ucred cr;
		socklen_t len = sizeof(cr);
		if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && (cr.uid == 0 || cr.uid == getuid()))
			return sk;
		pr_warn("refused a connection from pid %d of uid %u", cr.pid, cr.uid);
		close(sk);
	}
}

static int daemonize(const struct opts *o)
{
	pid_t pid = fork();
	if (pid < 0) {
		pr_perror("can't run in the background");
		return -1;
	}
	if (pid > 0) {
		if (o->pidfile && write_pidfile(o->pidfile, pid) < 0) {
			kill(pid, SIGKILL);
			_exit(1);
		}
		_exit(0);
	}
	setsid();
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		close(null);
	}
	return 0;
}

int stasis_lazy_pages(const struct opts *o)
{
	struct daemon d = { .o = o, .sk = -1, .epfd = -1, .ps_sk = -1, .xfer = XFER_MIN };
	int ret = 1;

	d.dirfd = img_dir_open(o->images_dir, -1);
	if (d.dirfd < 0)
		return 1;
	/* the restore leaves the pages to us (its own check would cost the
	 * program its quick start): checked before anything is served */
	if (!o->skip_checksums && ck_verify_chain(d.dirfd, o->images_dir, CK_ONLY_PAGES) < 0) {
		close(d.dirfd);
		return 1;
	}
	if ((o->page_server || o->ps_socket >= 0) && (d.ps_sk = connect_source(o)) < 0)
		goto out_dir;
	d.buf = mmap(NULL, XFER_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d.buf == MAP_FAILED)
		goto out_dir;
	int lsk = listen_here(o);
	if (lsk < 0)
		goto out_buf;
	if (o->detach && daemonize(o) < 0) {
		close(lsk);
		goto out_buf;
	}
	if (!o->detach && o->pidfile && write_pidfile(o->pidfile, getpid()) < 0) {
		close(lsk);
		goto out_buf;
	}
	if (action_status_ready(o) < 0) {
		close(lsk);
		goto out_buf;
	}
	d.sk = accept_restore(lsk);
	close(lsk);
	unlink(LAZY_SOCK_NAME);
	if (d.sk < 0)
		goto out_buf;
	uint32_t hello = LAZY_HELLO;
	lazy_send(d.sk, &hello, sizeof(hello), -1);
	d.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (d.epfd < 0 || epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.sk, &ev) < 0) {
		pr_perror("epoll");
		goto out;
	}
	if (serve(&d) == 0) {
		uint64_t total = 0;
		for (struct lproc *p = d.procs; p; p = p->next)
			total += p->copied;
		pr_info("every page is in place: %lu KiB copied", (unsigned long)(total >> 10));
		uint32_t done = LAZY_DONE;
		if (!d.peer_gone)
			lazy_send(d.sk, &done, sizeof(done), -1);
		/* the source may let its tree go now */
		if (d.ps_sk >= 0 && ps_close(d.ps_sk, o->ps_socket >= 0) < 0)
			pr_warn("the source's page server did not confirm the end of the transfer");
		ret = 0;
	} else {
		pr_err("lazy-pages daemon: giving up; the restored tree can't get the rest of its memory");
	}
out:
	while (d.procs) {
		struct lproc *p = d.procs;
		d.procs = p->next;
		if (p->uffd >= 0)
			close(p->uffd);
		lr_free(&p->todo);
		lazy_src_put(p->src);
		free(p);
	}
	if (d.epfd >= 0)
		close(d.epfd);
	if (d.sk >= 0)
		close(d.sk);
out_buf:
	if (d.buf != MAP_FAILED)
		munmap(d.buf, XFER_MAX);
out_dir:
	if (d.ps_sk >= 0) {
		ps_tls_end(ret != 0);
		close(d.ps_sk);
	}
	close(d.dirfd);
	return ret;
}
