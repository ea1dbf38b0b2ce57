/* dump --lazy-pages (lazy_serve.h): the source side of a remote lazy
 * restore. The tree stays frozen while the destination's lazy-pages
 * daemon asks for its lazy pages; they are read from the processes
 * themselves and sent by pagexfer/ps_lazy.h, which answers the requests
 * (the same that page-server --lazy-pages answers from images). */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump/lazy_serve.h"
#include "image/pagemap.h"
#include "image/vma.h"
#include "pagexfer/ps_lazy.h"
#include "pagexfer/ps_server.h"
#include "util/action.h"
#include "util/log.h"
#include "util/ranges.h"

bool lazy_dump(const struct opts *o)
{
	return o->lazy_pages && !o->pre_dump;
}

struct tree_pages {
	struct ps_pages p;
	struct dump_tree *tr;
	int *memfd;		/* per process of tr, opened when first asked */
	int *pidfd;		/* per process of tr, in p.gone_fd (an epoll set) */
};

/* The process whose pages dst names: CRIU's lazy daemon names it by its
 * pid in the images. */
static int task_of(const struct dump_tree *tr, uint64_t dst)
{
	for (int i = 0; i < tr->nr; i++)
		if (tr->t[i].lazy && (uint64_t)tr->t[i].ns_pid == dst)
			return i;
	return -1;
}

static const struct page_run *lazy_run(const struct page_runs *l, uint64_t addr)
{
	ptrdiff_t i = runs_index(l->r, l->nr, addr);
	return i < 0 ? NULL : &l->r[i];
}

static uint64_t tree_avail(struct ps_pages *p, uint64_t pid, uint64_t addr, uint64_t nr)
{
	struct tree_pages *tp = (struct tree_pages *)p;
	int t = task_of(tp->tr, pid);
	const struct page_run *r = t < 0 ? NULL : lazy_run(tp->tr->t[t].lazy, addr);
	if (!r)
		return 0;
	uint64_t avail = (r->end - addr) / PAGE_SZ;
	return nr < avail ? nr : avail;
}

/* From /proc/PID/mem, which reads whatever the protection. */
static int tree_read(struct ps_pages *p, uint64_t pid, uint64_t addr, void *buf, size_t len)
{
	struct tree_pages *tp = (struct tree_pages *)p;
	int t = task_of(tp->tr, pid);
	struct dump_ctx *dc = &tp->tr->t[t];
	if (tp->memfd[t] < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", dc->pid);
		tp->memfd[t] = open(path, O_RDONLY | O_CLOEXEC);
		if (tp->memfd[t] < 0) {
			pr_perror("lazy pages: can't open %s", path);
			return -1;
		}
	}
	if (pread(tp->memfd[t], buf, len, addr) != (ssize_t)len) {
		pr_perror("lazy pages: pid %d: can't read its memory at %#lx", dc->pid, (unsigned long)addr);
		return -1;
	}
	return 0;
}

/* The processes' pidfds in one epoll set, readable once any of them
 * ends (someone killed it while the tree was frozen). 0, or -1 (said). */
static int watch_tree(struct tree_pages *tp)
{
	struct dump_tree *tr = tp->tr;
	tp->p.gone_fd = epoll_create1(EPOLL_CLOEXEC);
	if (tp->p.gone_fd < 0) {
		pr_perror("lazy pages: can't make an epoll set");
		return -1;
	}
	for (int i = 0; i < tr->nr; i++) {
		struct epoll_event ev = { .events = EPOLLIN };
		tp->pidfd[i] = syscall(SYS_pidfd_open, tr->t[i].pid, 0);
		if (tp->pidfd[i] < 0 || epoll_ctl(tp->p.gone_fd, EPOLL_CTL_ADD, tp->pidfd[i], &ev) < 0) {
			pr_perror("lazy pages: can't watch pid %d", tr->t[i].pid);
			return -1;
		}
	}
	return 0;
}

static void tree_gone(struct ps_pages *p)
{
	struct tree_pages *tp = (struct tree_pages *)p;
	for (int i = 0; i < tp->tr->nr; i++) {
		struct pollfd pf = { .fd = tp->pidfd[i], .events = POLLIN };
		if (poll(&pf, 1, 0) == 1)
			pr_err("lazy pages: pid %d of the tree ended (killed?) while its memory was being served",
			       tp->tr->t[i].pid);
	}
}

static void unwatch_tree(struct tree_pages *tp)
{
	for (int i = 0; i < tp->tr->nr; i++)
		if (tp->pidfd[i] >= 0)
			close(tp->pidfd[i]);
	if (tp->p.gone_fd >= 0)
		close(tp->p.gone_fd);
}

int lazy_dump_serve(struct dump_tree *tr)
{
	const struct opts *o = tr->o;
	struct tree_pages tp = { .p = { tree_avail, tree_read, .fail_after_pages = true, .gone_fd = -1,
					.gone = tree_gone }, .tr = tr };
	unsigned port = 0;
	int ret = -1;

	if (o->ps_socket >= 0) {
		pr_err("dump --lazy-pages serves its pages on --address/--port; --ps-socket is not supported with it");
		return -1;
	}
	tp.memfd = malloc(tr->nr * sizeof(int));
	tp.pidfd = malloc(tr->nr * sizeof(int));
	if (!tp.memfd || !tp.pidfd) {
		pr_err("lazy pages: out of memory");
		free(tp.memfd);
		free(tp.pidfd);
		return -1;
	}
	for (int i = 0; i < tr->nr; i++)
		tp.memfd[i] = tp.pidfd[i] = -1;
	int lsk = watch_tree(&tp) < 0 ? -1 : ps_server_listen(o, &port);
	if (lsk >= 0) {
		pr_info("lazy pages: serving the tree's lazy memory on %s port %u", o->address ? o->address : "*", port);
		if (action_status_ready(o) == 0)
			ret = ps_lazy_serve(lsk, -1, o, &tp.p);
		if (ret < 0)
			pr_err("lazy pages: the tree resumes here");
		close(lsk);
	}
	for (int i = 0; i < tr->nr; i++)
		if (tp.memfd[i] >= 0)
			close(tp.memfd[i]);
	unwatch_tree(&tp);
	free(tp.memfd);
	free(tp.pidfd);
	return ret;
}
