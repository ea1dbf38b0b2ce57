/* The page server (ps_server.h). One connection at a time; every header
 * is checked before anything is written for it: a known command, a known
 * image type and id, page-aligned runs in ascending order within the
 * address space, and holes (PE_PARENT) only where the parent dump has
 * pages. What a client sends is written as it arrives, and hashed for
 * stasis-checksums-ps (image/checksum.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image/checksum.h"
#include "image/dedup.h"
#include "image/img.h"
#include "image/pagemap.h"
#include "image/vma.h"
#include "pagexfer/ps_images.h"
#include "pagexfer/ps_proto.h"
#include "pagexfer/ps_server.h"
#include "pagexfer/ps_tls.h"
#include "util/fsop.h"
#include "util/io.h"
#include "util/action.h"
#include "util/log.h"
#include "util/ranges.h"
#include "util/pidfile.h"

#define RECV_BUF (1ul << 20)
#define WRITE_IOVS 1024		/* IOV_MAX */
#define MAX_VADDR (1ull << 57)		/* 5-level paging's user space */
#define FIRST_PAGES_ID 0x10001		/* as CRIU's server: never a dump's own */
#define DEFAULT_IDLE 60

struct session {
	int sk, dirfd;
	bool open;			/* an image is open */
	uint64_t dst;
	enum img_kind kind;
	uint32_t id, pages_id;
	struct img pm;
	int pages_fd;
	uint64_t next_vaddr;		/* runs come in ascending order */
	bool has_parent;
	struct addr_ranges parent;		/* what the parent's pagemap names */
	struct ck_state ck;		/* of the pages file */
	char pages_name[IMG_NAME_MAX];
	struct ck_list made;		/* every file made: hashed, or removed */
	bool auto_dedup;		/* --auto-dedup */
	unsigned timeout;		/* --timeout: seconds */
	int parentfd;			/* the parent dump's directory, -1 */
	struct dedup dedup;		/* of the open image's parent */
	char *buf;			/* RECV_BUF: what came, [rx_start, rx_end) not used yet */
	size_t rx_start, rx_end;
	struct iovec wv[WRITE_IOVS];	/* pages of the buffer not written yet */
	int nwv;
};

static uint32_t next_pages_id = FIRST_PAGES_ID;

/* ---- receiving ---- */

static uint64_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* What comes from the client is received into one buffer, as much as is
 * there at a time: a dump after a pre-dump sends thousands of one-page
 * runs, and a header and its page are then one recv, not two. The pages
 * are written from the buffer, runs that follow each other in one
 * writev (they follow each other in the pages file too), before the
 * buffer is used again. */
static int flush_writes(struct session *s)
{
	struct iovec *iov = s->wv;
	int n = s->nwv;
	while (n) {
		ssize_t w = writev(s->pages_fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			pr_perror("page server: can't write %s", s->pages_name);
			return -1;
		}
		iov_advance(&iov, &n, w);
	}
	s->nwv = 0;
	return 0;
}

/* len bytes of the buffer at p go to the pages file (and its hash). */
static int queue_write(struct session *s, char *p, size_t len)
{
	struct iovec *last = s->nwv ? &s->wv[s->nwv - 1] : NULL;
	ck_update(&s->ck, p, len);
	if (last && (char *)last->iov_base + last->iov_len == p) {
		last->iov_len += len;
		return 0;
	}
	if (s->nwv == WRITE_IOVS && flush_writes(s) < 0)
		return -1;
	s->wv[s->nwv++] = (struct iovec){ p, len };
	return 0;
}

/* At least want bytes (at most RECV_BUF) in the buffer, received by the
 * deadline (monotonic seconds): a client trickling a byte now and then
 * is as good as a silent one. 1: the client left before a byte (only if
 * may_end), -1: failed (said). */
static int rx_need(struct session *s, size_t want, bool may_end, uint64_t deadline)
{
	size_t have = s->rx_end - s->rx_start;
	if (have >= want)
		return 0;
	if (s->rx_start + want > RECV_BUF) {
		/* the pages queued point into the buffer: written first */
		if (flush_writes(s) < 0)
			return -1;
		memmove(s->buf, s->buf + s->rx_start, have);
		s->rx_start = 0;
		s->rx_end = have;
	}
	while (s->rx_end - s->rx_start < want) {
		if (now_s() > deadline) {
			pr_err("page server: the client sends too slowly (less than %zu bytes in --timeout, %u s); "
			       "dropped", want, s->timeout);
			return -1;
		}
		ssize_t n = ps_io_recv(s->sk, s->buf + s->rx_end, RECV_BUF - s->rx_end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			pr_err("page server: the client sent nothing for too long (--timeout); dropped");
			return -1;
		}
		if (n < 0) {
			pr_perror("page server: can't receive");
			return -1;
		}
		if (n == 0) {
			if (may_end && s->rx_end == s->rx_start)
				return 1;
			pr_err("page server: the client closed the connection in the middle of a transfer");
			return -1;
		}
		s->rx_end += n;
	}
	return 0;
}

/* A header, whole within the timeout; 1 if the client left before it. */
static int recv_header(struct session *s, struct ps_iov *pi)
{
	int r = rx_need(s, sizeof(*pi), true, now_s() + s->timeout);
	if (r)
		return r;
	memcpy(pi, s->buf + s->rx_start, sizeof(*pi));
	s->rx_start += sizeof(*pi);
	return 0;
}

/* A run's len bytes to the pages file, each RECV_BUF of them whole
 * within the timeout. */
static int recv_pages(struct session *s, uint64_t len)
{
	uint64_t deadline = now_s() + s->timeout, window = 0;
	while (len) {
		if (rx_need(s, 1, false, deadline) < 0)
			return -1;
		size_t n = s->rx_end - s->rx_start;
		if (n > len)
			n = len;
		if (queue_write(s, s->buf + s->rx_start, n) < 0)
			return -1;
		s->rx_start += n;
		len -= n;
		window += n;
		if (window >= RECV_BUF) {
			window = 0;
			deadline = now_s() + s->timeout;
		}
	}
	return 0;
}

/* ---- the parent ---- */

/* The "parent" link of the images directory (--prev-images-dir, ours or
 * the dump's in a shared directory), looked up at each open, as CRIU. */
static int load_parent(struct session *s)
{
	char name[IMG_NAME_MAX];
	ProtobufCMessage *head;
	PagemapEntry **e;
	int n, ret = 0;

	ranges_free(&s->parent);
	s->has_parent = false;
	if (s->parentfd >= 0)
		close(s->parentfd);
	s->parentfd = -1;
	int pfd = openat(s->dirfd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return 0;
	img_name(name, sizeof(name), s->kind, s->id);
	if (faccessat(pfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		close(pfd);
		return 0;
	}
	if (img_load_headed(pfd, s->kind, s->id, &head, (void ***)&e, &n) < 0) {
		pr_err("page server: the parent's %s can't be read", name);
		close(pfd);
		return -1;
	}
	img_free(head);
	for (int i = 0; i < n; i++) {
		uint64_t len = pagemap_run_pages(e[i]) * PAGE_SZ;
		if (!ret && (!ranges_in_order(&s->parent, e[i]->vaddr) ||
			     ranges_add(&s->parent, e[i]->vaddr, e[i]->vaddr + len) < 0)) {
			pr_err("page server: the parent's %s is not in order", name);
			ret = -1;
		}
		img_free(e[i]);
	}
	free(e);
	s->parentfd = pfd;
	s->has_parent = ret == 0;
	if (!ret && s->auto_dedup)
		ret = dedup_open(&s->dedup, pfd, s->kind, s->id);
	return ret;
}

/* ---- images ---- */

static int close_image(struct session *s)
{
	if (!s->open)
		return 0;
	s->open = false;
	int ret = flush_writes(s);
	if (img_finish(&s->pm) < 0)
		ret = -1;
	if (s->auto_dedup && dedup_close(&s->dedup) < 0)
		ret = -1;
	if (close(s->pages_fd) < 0 && !ret) {
		pr_perror("page server: can't write %s", s->pages_name);
		ret = -1;
	}
	s->pages_fd = -1;
	if (!ret)
		ret = ck_list_add_known(&s->made, s->pages_name, ck_digest(&s->ck), s->ck.total);
	return ret;
}

/* Type and id of dst; older CRIU's numbers of the two types too. */
static int decode_dst(uint64_t dst, enum img_kind *kind, uint32_t *id)
{
	switch (dst & PS_TYPE_MASK) {
	case PS_TYPE_PID: case 10: case 11: case 16: case 17:
		*kind = IMG_PAGEMAP;
		break;
	case PS_TYPE_SHMEM: case 27: case 28: case 29: case 32: case 33: case 34:
		*kind = IMG_PAGEMAP_SHMEM;
		break;
	default:
		return -1;
	}
	uint64_t v = dst >> PS_TYPE_BITS;
	if (v == 0 || v > UINT32_MAX)
		return -1;
	*id = v;
	return 0;
}

static int create_file(struct session *s, const char *name)
{
	/* a dropped session's or an earlier server's leftovers */
	fs_unlink(s->dirfd, name);
	if (ck_list_add(&s->made, name) < 0)
		return -1;
	int fd = fs_create(s->dirfd, name, O_WRONLY, 0600);
	if (fd < 0)
		pr_perror("page server: can't create %s", name);
	return fd;
}

static int open_image(struct session *s, uint64_t dst)
{
	char name[IMG_NAME_MAX];
	PagemapHead head = PAGEMAP_HEAD__INIT;

	if (close_image(s) < 0)
		return -1;
	if (decode_dst(dst, &s->kind, &s->id) < 0) {
		pr_err("page server: unknown image %#llx; not CRIU's page-server protocol?", (unsigned long long)dst);
		return -1;
	}
	if (load_parent(s) < 0)
		return -1;
	img_name(name, sizeof(name), s->kind, s->id);
	fs_unlink(s->dirfd, name);
	img_note_written(&s->made);
	int ret = img_create(s->dirfd, &s->pm, s->kind, s->id);
	img_note_written(NULL);
	if (ret < 0)
		return -1;
	head.pages_id = s->pages_id = next_pages_id++;
	img_name(s->pages_name, sizeof(s->pages_name), IMG_PAGES, s->pages_id);
	if (img_write(&s->pm, &head.base) < 0 || (s->pages_fd = create_file(s, s->pages_name)) < 0) {
		img_abort(&s->pm);
		return -1;
	}
	s->open = true;
	s->dst = dst;
	s->next_vaddr = 0;
	ck_init(&s->ck);
	pr_info("page server: receiving %s (pages in %s%s)", name, s->pages_name,
		s->has_parent ? ", with a parent" : "");
	return 0;
}

static int add_run(struct session *s, const struct ps_iov *pi, uint32_t flags)
{
	uint64_t len = pi->nr_pages * PAGE_SZ;

	if (!s->open || pi->dst_id != s->dst) {
		/* CRIU's server opens on the fly (an old client's way) */
		if (open_image(s, pi->dst_id) < 0)
			return -1;
	}
	if ((flags & ~(PE_PARENT | PE_LAZY | PE_PRESENT)) || !(flags & (PE_PARENT | PE_LAZY | PE_PRESENT)) ||
	    ((flags & PE_PARENT) && (flags & PE_PRESENT)) || !pi->nr_pages || pi->nr_pages > MAX_VADDR / PAGE_SZ ||
	    (pi->vaddr & (PAGE_SZ - 1)) || pi->vaddr > MAX_VADDR - len || pi->vaddr < s->next_vaddr) {
		pr_err("page server: bad run %#llx, %llu pages, flags %#x (after %#llx)",
		       (unsigned long long)pi->vaddr, (unsigned long long)pi->nr_pages, flags,
		       (unsigned long long)s->next_vaddr);
		return -1;
	}
	if ((flags & PE_PARENT) && (!s->has_parent || !ranges_cover(&s->parent, pi->vaddr, pi->vaddr + len))) {
		pr_err("page server: pages %#llx-%#llx are left to the parent dump, which does not have them",
		       (unsigned long long)pi->vaddr, (unsigned long long)(pi->vaddr + len));
		return -1;
	}
	s->next_vaddr = pi->vaddr + len;
	if (pagemap_write_run(&s->pm, pi->vaddr, pi->nr_pages, flags) < 0)
		return -1;
	if (!(flags & PE_PRESENT))
		return 0;
	if (s->auto_dedup && s->has_parent && dedup_run(&s->dedup, pi->vaddr, pi->vaddr + len) < 0)
		return -1;
	return recv_pages(s, len);
}

/* ---- a session ---- */

static int answer(struct session *s, const void *v, size_t len)
{
	if (ps_io_send(s->sk, v, len) != (ssize_t)len) {
		pr_perror("page server: can't answer the client");
		return -1;
	}
	return 0;
}

/* The end: everything written and hashed, then the client is told. */
static int finish(struct session *s)
{
	int32_t status = 0;
	if (close_image(s) < 0 || ck_list_write(&s->made, s->dirfd, CK_LIST_PS) < 0)
		status = -1;
	if (answer(s, &status, sizeof(status)) < 0)
		return -1;
	return status;
}

/* 0: the session ended well; -1: it failed. */
static int serve(struct session *s)
{
	bool any = false;
	for (;;) {
		struct ps_iov pi;
		int r = recv_header(s, &pi);
		if (r == 1) {
			pr_err("page server: the client left %s", any ? "without ending the transfer" : "without a word");
			return -1;
		}
		if (r < 0)
			return -1;
		any = true;
		uint32_t cmd = pi.cmd & PS_CMD_MASK, flags = pi.cmd >> PS_CMD_BITS;
		if (cmd != PS_IOV_ADD_F && flags) {
			pr_err("page server: command %#x with flags; not CRIU's page-server protocol", pi.cmd);
			return -1;
		}
		switch (cmd) {
		case PS_IOV_OPEN:
		case PS_IOV_OPEN2: {
			if (open_image(s, pi.dst_id) < 0)
				return -1;
			char c = s->has_parent;
			if (cmd == PS_IOV_OPEN2 && answer(s, &c, 1) < 0)
				return -1;
			break;
		}
		case PS_IOV_PARENT: {
			enum img_kind kind;
			uint32_t id;
			char name[IMG_NAME_MAX];
			if (decode_dst(pi.dst_id, &kind, &id) < 0) {
				pr_err("page server: unknown image %#llx", (unsigned long long)pi.dst_id);
				return -1;
			}
			img_name(name, sizeof(name), kind, id);
			int pfd = openat(s->dirfd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			int32_t has = pfd >= 0 && faccessat(pfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
			if (pfd >= 0)
				close(pfd);
			if (answer(s, &has, sizeof(has)) < 0)
				return -1;
			break;
		}
		case PS_IOV_ADD_F:
		case PS_IOV_ADD:
		case PS_IOV_HOLE:
			if (add_run(s, &pi, cmd == PS_IOV_ADD_F ? flags : cmd == PS_IOV_ADD ? PE_PRESENT : PE_PARENT) < 0)
				return -1;
			break;
		case PS_IOV_CLOSE:
		case PS_IOV_FORCE_CLOSE:
			return finish(s);
		case PS_IOV_GET:
			pr_err("page server: PS_IOV_GET asks for pages, but this server receives them");
			return -1;
		default:
			pr_err("page server: unknown command %#x; not CRIU's page-server protocol", pi.cmd);
			return -1;
		}
	}
}

/* A failed session leaves nothing: its images would pass for a dump. */
static void drop(struct session *s)
{
	s->nwv = 0;
	if (s->open) {
		img_abort(&s->pm);
		close(s->pages_fd);
		s->open = false;
	}
	for (int i = 0; i < s->made.nr; i++)
		fs_unlink(s->dirfd, s->made.e[i].name);
	fs_unlink(s->dirfd, CK_LIST_PS);
}

static int run_session(int sk, int dirfd, unsigned timeout, const struct opts *o)
{
	struct session s = { .sk = sk, .dirfd = dirfd, .pages_fd = -1, .auto_dedup = o->auto_dedup, .parentfd = -1,
			     .timeout = timeout,
			     .dedup = { .pages_fd = -1 } };
	struct timeval tv = { .tv_sec = timeout };
	int on = 1;
	setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sk, SOL_TCP, TCP_NODELAY, &on, sizeof(on));
	s.buf = malloc(RECV_BUF);
	if (!s.buf) {
		pr_err("page server: out of memory");
		return -1;
	}
	next_pages_id = FIRST_PAGES_ID;
	int ret = ps_tls_start(sk, true, o);
	if (!ret)
		ret = serve(&s);
	if (ret < 0)
		drop(&s);
	else {
		/* as CRIU: the client closes first (no TIME_WAIT here) */
		char c;
		if (s.rx_end > s.rx_start || ps_io_recv(sk, &c, 1) > 0)
			pr_warn("page server: the client sent more after the end");
	}
	ps_tls_end(ret < 0);
	free(s.buf);
	ranges_free(&s.parent);
	if (s.auto_dedup)
		dedup_close(&s.dedup);
	if (s.parentfd >= 0)
		close(s.parentfd);
	ck_list_free(&s.made);
	return ret;
}

/* ---- listening ---- */

static int listen_on(const struct opts *o, unsigned *got_port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int on = 1;

	if (o->port > 65535) {
		pr_err("page server: bad --port %u", o->port);
		return -1;
	}
	if (!o->address || inet_pton(AF_INET, o->address, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(o->port);
		if (!o->address)
			in4->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, o->address, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(o->port);
		len = sizeof(*in6);
	} else {
		pr_err("page server: --address %s is not an IPv4 or IPv6 address", o->address);
		return -1;
	}
	int sk = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (sk < 0 || setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    bind(sk, (struct sockaddr *)&ss, len) < 0 || listen(sk, 1) < 0 ||
	    getsockname(sk, (struct sockaddr *)&ss, &len) < 0) {
		pr_perror("page server: can't listen on %s port %u", o->address ? o->address : "*", o->port);
		if (sk >= 0)
			close(sk);
		return -1;
	}
	unsigned port = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
	pr_info("page server: listening on %s port %u", o->address ? o->address : "*", port);
	if (got_port)
		*got_port = port;
	return sk;
}

/* --daemon: the parent leaves once the child listens (the socket is
 * made before the fork), writing --pidfile. 1 in the parent. */
static int daemonize(const struct opts *o)
{
	pid_t pid = fork();
	if (pid < 0) {
		pr_perror("page server: can't fork");
		return -1;
	}
	if (pid > 0) {
		if (o->pidfile && write_pidfile(o->pidfile, pid) < 0) {
			kill(pid, SIGKILL);
			return -1;
		}
		return 1;
	}
	setsid();
	stdio_to_null();
	return 0;
}

/* --prev-images-dir DIR (relative to -D), linked as "parent", as CRIU. */
static int link_parent(int dirfd, const struct opts *o)
{
	if (!o->prev_images_dir)
		return 0;
	if (faccessat(dirfd, o->prev_images_dir, R_OK, 0) < 0) {
		pr_perror("page server: bad --prev-images-dir %s (relative to %s)", o->prev_images_dir,
			  o->images_dir);
		return -1;
	}
	fs_unlink(dirfd, "parent");
	if (fs_symlink(o->prev_images_dir, dirfd, "parent") < 0) {
		pr_perror("page server: can't link %s as parent", o->prev_images_dir);
		return -1;
	}
	return 0;
}

int stasis_page_server(const struct opts *o)
{
	int dirfd = img_dir_open(o->images_dir, o->images_dirfd), lsk = -1, ret = -1;
	struct ps_pages *lazy = NULL;
	if (dirfd < 0)
		goto out;
	if (o->lazy_pages) {
		/* serving a dump's images, which stay as they are */
		if (!(lazy = ps_images_open(dirfd, o)))
			goto out;
	} else {
		if (link_parent(dirfd, o) < 0)
			goto out;
		fs_unlink(dirfd, CK_LIST_PS);
	}
	signal(SIGPIPE, SIG_IGN);
	if (o->ps_socket < 0 && (lsk = listen_on(o, NULL)) < 0)
		goto out;
	if (o->detach) {
		int r = daemonize(o);
		if (r != 0) {
			ret = r > 0 ? 0 : -1;
			goto out;
		}
	}
	if (action_status_ready(o) < 0)
		goto out;
	if (lazy)
		ret = ps_lazy_serve(lsk, o->ps_socket, o, lazy);
	else if (o->ps_socket >= 0)	/* one session on the socket given */
		ret = run_session(o->ps_socket, dirfd, o->timeout ? o->timeout : DEFAULT_IDLE, o);
	else
		ret = ps_server_serve(lsk, dirfd, o);
out:
	ps_images_close(lazy);
	if (lsk >= 0)
		close(lsk);
	if (dirfd >= 0)
		close(dirfd);
	return ret;
}

int ps_server_listen(const struct opts *o, unsigned *port)
{
	signal(SIGPIPE, SIG_IGN);
	return listen_on(o, port);
}

int ps_server_serve(int lsk, int dirfd, const struct opts *o)
{
	unsigned timeout = o->timeout ? o->timeout : DEFAULT_IDLE;
	int ret;
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		char host[INET6_ADDRSTRLEN] = "?";
		int sk = accept4(lsk, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
		if (sk < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			pr_perror("page server: can't accept");
			return -1;
		}
		if (peer.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, host, sizeof(host));
		else if (peer.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, host, sizeof(host));
		pr_info("page server: connection from %s", host);
		ret = run_session(sk, dirfd, timeout, o);
		close(sk);
		if (ret == 0)
			break;
		pr_warn("page server: the session from %s failed; its images are removed, waiting for the next", host);
	}
	pr_info("page server: the dump's pages are all written");
	return ret;
}
