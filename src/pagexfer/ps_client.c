/* The client side of the page-server protocol (ps_client.h). Every
 * failure is said once, naming the page server. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "image/vma.h"
#include "pagexfer/ps_client.h"
#include "pagexfer/ps_tls.h"
#include "util/io.h"
#include "util/log.h"

int ps_connect(const char *addr, unsigned port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP }, *res, *p;
	char service[16];
	int sk = -1, err;

	if (!addr) {
		pr_err("--page-server needs the server's address: --address ADDR");
		return -1;
	}
	snprintf(service, sizeof(service), "%u", port);
	if ((err = getaddrinfo(addr, service, &hints, &res)) != 0) {
		pr_err("page server %s:%u: %s", addr, port, gai_strerror(err));
		return -1;
	}
	for (p = res; p; p = p->ai_next) {
		sk = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
		if (sk < 0)
			continue;
		if (connect(sk, p->ai_addr, p->ai_addrlen) == 0)
			break;
		err = errno;
		close(sk);
		sk = -1;
		errno = err;
	}
	freeaddrinfo(res);
	if (sk < 0) {
		pr_perror("can't connect to the page server %s:%u", addr, port);
		return -1;
	}
	/* corked, as CRIU: headers and pages leave in full segments; the
	 * requests that wait for an answer push themselves out (ask) */
	int on = 1;
	setsockopt(sk, SOL_TCP, TCP_CORK, &on, sizeof(on));
	pr_info("connected to the page server %s:%u", addr, port);
	return sk;
}

void ps_set_timeout(int sk, unsigned timeout)
{
	struct timeval tv = { .tv_sec = timeout };
	setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void say_io_error(const char *what)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		pr_err("the page server %s for too long (--timeout)", what);
	else
		pr_perror("the page server %s", what);
}

int ps_sendv(int sk, struct iovec *iov, int n)
{
	while (n) {
		ssize_t sent = ps_io_sendv(sk, iov, n);
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0) {
			say_io_error("takes no data");
			return -1;
		}
		iov_advance(&iov, &n, sent);
	}
	return 0;
}

int ps_send(int sk, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	return len ? ps_sendv(sk, &iov, 1) : 0;
}

static int recv_all(int sk, void *buf, size_t len, const char *what)
{
	char *p = buf;
	while (len) {
		ssize_t n = ps_io_recv(sk, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			char msg[96];
			snprintf(msg, sizeof(msg), "did not answer %s", what);
			say_io_error(msg);
			return -1;
		}
		if (n == 0) {
			pr_err("the page server closed the connection instead of answering %s", what);
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int send_iov(int sk, uint32_t cmd, uint64_t dst, uint64_t vaddr, uint64_t nr_pages)
{
	struct ps_iov pi = { .cmd = cmd, .nr_pages = nr_pages, .vaddr = vaddr, .dst_id = dst };
	return ps_send(sk, &pi, sizeof(pi));
}

/* A request whose answer we wait for leaves now, not when the cork
 * fills a segment. */
static void push(int sk)
{
	int on = 1;
	setsockopt(sk, SOL_TCP, TCP_NODELAY, &on, sizeof(on));
}

int ps_open(int sk, uint64_t dst, bool *has_parent)
{
	char c;
	if (send_iov(sk, PS_IOV_OPEN2, dst, 0, 0) < 0)
		return -1;
	push(sk);
	if (recv_all(sk, &c, 1, "an open") < 0)
		return -1;
	*has_parent = c != 0;
	return 0;
}

int ps_has_parent(int sk, uint64_t dst, bool *has_parent)
{
	int32_t v;
	if (send_iov(sk, PS_IOV_PARENT, dst, 0, 0) < 0)
		return -1;
	push(sk);
	if (recv_all(sk, &v, sizeof(v), "whether it has a parent") < 0)
		return -1;
	*has_parent = v > 0;
	return 0;
}

int ps_add(int sk, uint64_t dst, uint64_t vaddr, uint64_t nr_pages, uint32_t flags)
{
	return send_iov(sk, ps_cmd(PS_IOV_ADD_F, flags), dst, vaddr, nr_pages);
}

int ps_close(int sk, bool force)
{
	int32_t status;
	if (send_iov(sk, force ? PS_IOV_FORCE_CLOSE : PS_IOV_CLOSE, 0, 0, 0) < 0)
		return -1;
	push(sk);
	if (recv_all(sk, &status, sizeof(status), "the end of the transfer") < 0)
		return -1;
	if (status != 0) {
		pr_err("the page server failed to write the pages (status %d)", status);
		return -1;
	}
	return 0;
}

int ps_get(int sk, uint64_t dst, uint64_t vaddr, uint64_t nr_pages, void *buf, uint64_t *got)
{
	struct ps_iov pi;
	if (send_iov(sk, PS_IOV_GET, dst, vaddr, nr_pages) < 0)
		return -1;
	push(sk);
	if (recv_all(sk, &pi, sizeof(pi), "a request for pages") < 0)
		return -1;
	if ((pi.cmd & PS_CMD_MASK) != PS_IOV_ADD_F || pi.nr_pages > nr_pages ||
	    (pi.nr_pages && pi.vaddr != vaddr)) {
		pr_err("the page server answered a request for %#lx (%lu pages) with command %#x for %#lx "
		       "(%lu pages)", (unsigned long)vaddr, (unsigned long)nr_pages, pi.cmd,
		       (unsigned long)pi.vaddr, (unsigned long)pi.nr_pages);
		return -1;
	}
	*got = pi.nr_pages;
	return pi.nr_pages ? recv_all(sk, buf, pi.nr_pages * PAGE_SZ, "with the pages") : 0;
}
