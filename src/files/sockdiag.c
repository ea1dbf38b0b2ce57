/* The kernel's socket list, one family at a time (sock_diag): a dump
 * request answered by one message per socket, kept by inode. The tree is
 * frozen while it is dumped, so what the list says of its sockets holds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "files/sockdiag.h"
#include "util/log.h"

static int add(struct sockdiag_list *l, const struct nlmsghdr *h, size_t ino_off)
{
	if (h->nlmsg_len < NLMSG_LENGTH(ino_off + sizeof(uint32_t)))
		return 0;	/* not a socket's message */
	struct sockdiag_msg *n = realloc(l->m, (l->nr + 1) * sizeof(*n));
	if (!n)
		return -1;
	l->m = n;
	struct nlmsghdr *c = malloc(h->nlmsg_len);
	if (!c)
		return -1;
	memcpy(c, h, h->nlmsg_len);
	memcpy(&l->m[l->nr].ino, (const char *)NLMSG_DATA(h) + ino_off, sizeof(uint32_t));
	l->m[l->nr++].h = c;
	return 0;
}

/* The answers, up to NLMSG_DONE; 1 once done, 0 for more, -1 (reported). */
static int take(struct sockdiag_list *l, const char *buf, ssize_t n, size_t ino_off, const char *what)
{
	for (const struct nlmsghdr *h = (const void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			errno = -((const struct nlmsgerr *)NLMSG_DATA(h))->error;
			pr_perror("sock_diag refused to list the %s sockets", what);
			return -1;
		}
		if (add(l, h, ino_off) < 0) {
			pr_err("out of memory listing the %s sockets", what);
			return -1;
		}
	}
	return 0;
}

int sockdiag_load(struct sockdiag_list *l, const void *req, size_t len, size_t ino_off, const char *what)
{
	static char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
	int ret = -1, nl;

	if (l->loaded)
		return 0;
	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0 || send(nl, req, len, 0) != (ssize_t)len) {
		pr_perror("can't ask sock_diag for the %s sockets", what);
		goto out;
	}
	while (ret < 0) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		if (n <= 0) {
			pr_perror("can't read the %s sockets from sock_diag", what);
			goto out;
		}
		int r = take(l, buf, n, ino_off, what);
		if (r < 0)
			goto out;
		if (r)
			ret = 0;
	}
	l->loaded = true;
out:
	if (nl >= 0)
		close(nl);
	return ret;
}

const struct nlmsghdr *sockdiag_find(const struct sockdiag_list *l, uint32_t ino)
{
	for (int i = 0; i < l->nr; i++)
		if (l->m[i].ino == ino)
			return l->m[i].h;
	return NULL;
}

const void *sockdiag_attr(const struct nlmsghdr *h, size_t hdr, int type, size_t *len)
{
	int left = h->nlmsg_len - NLMSG_LENGTH(hdr);
	for (const struct rtattr *a = (const void *)((const char *)NLMSG_DATA(h) + NLMSG_ALIGN(hdr));
	     RTA_OK(a, left); a = RTA_NEXT(a, left))
		if (a->rta_type == type) {
			*len = RTA_PAYLOAD(a);
			return RTA_DATA(a);
		}
	return NULL;
}

void sockdiag_free(struct sockdiag_list *l)
{
	for (int i = 0; i < l->nr; i++)
		free(l->m[i].h);
	free(l->m);
	memset(l, 0, sizeof(*l));
}

int sockdiag_our_netns(int sk)
{
	struct stat theirs, ours;
	int ns = ioctl(sk, SIOCGSKNS);
	if (ns < 0)
		return -1;
	int r = fstat(ns, &theirs);
	close(ns);
	if (r < 0 || stat("/proc/self/ns/net", &ours) < 0)
		return -1;
	return theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev;
}
