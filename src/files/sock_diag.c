/* The kernel's list of sockets, read through sock_diag. The tree is
 * frozen while it is read, so what it says of the tree's sockets holds. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>

#include "files/sock_diag.h"
#include "util/log.h"

/* 1: the list is over; 0: more to read; -1: an error, reported */
static int take_answers(const char *buf, ssize_t n, const char *what,
			int (*each)(const struct nlmsghdr *h, void *arg), void *arg)
{
	for (const struct nlmsghdr *h = (const void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
			pr_perror("sock_diag refused to list %s", what);
			return -1;
		}
		if (each(h, arg) < 0) {
			pr_err("out of memory listing %s", what);
			return -1;
		}
	}
	return 0;
}

/* The tree's network namespace, when it has one of its own: sock_diag
 * lists the sockets of the namespace its socket was made in. */
static int tree_netns = -1;

int sock_diag_set_netns(pid_t pid)
{
	char path[64];
	if (tree_netns >= 0)
		close(tree_netns);
	tree_netns = -1;
	if (!pid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	tree_netns = open(path, O_RDONLY | O_CLOEXEC);
	if (tree_netns < 0)
		pr_perror("can't open the network namespace of pid %d", pid);
	return tree_netns < 0 ? -1 : 0;
}

/* A sock_diag socket in the tree's namespace: made by this thread in it
 * (a thread's network namespace is its own), which then comes back. */
static int diag_socket(void)
{
	if (tree_netns < 0)
		return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	int back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), sk = -1;
	if (back >= 0 && setns(tree_netns, CLONE_NEWNET) == 0) {
		sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		int e = errno;
		if (setns(back, CLONE_NEWNET) < 0) {
			pr_perror("can't come back to our network namespace");
			abort();	/* the dumper can't go on in the tree's */
		}
		errno = e;
	}
	if (back >= 0)
		close(back);
	return sk;
}

int sock_diag_list(void *req, size_t len, const char *what,
		   int (*each)(const struct nlmsghdr *h, void *arg), void *arg)
{
	static __thread char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *h = req;
	int r = 0, nl = diag_socket();

	*h = (struct nlmsghdr){ .nlmsg_len = len, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
				.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 };
	if (nl < 0 || send(nl, req, len, 0) != (ssize_t)len) {
		pr_perror("can't ask sock_diag for %s", what);
		r = -1;
	}
	while (r == 0) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		if (n <= 0) {
			pr_perror("can't read %s from sock_diag", what);
			r = -1;
		} else {
			r = take_answers(buf, n, what, each, arg);
		}
	}
	if (nl >= 0)
		close(nl);
	return r < 0 ? -1 : 0;
}

/* ---- the answers kept ---- */

struct keep_arg {
	struct sock_diag_kept *l;
	size_t ino_off;
};

static int keep_one(const struct nlmsghdr *h, void *arg)
{
	struct keep_arg *k = arg;
	struct sock_diag_kept *l = k->l;

	if (h->nlmsg_len < NLMSG_LENGTH(k->ino_off + sizeof(uint32_t)))
		return 0;	/* not a socket's message */
	struct sock_diag_msg *n = realloc(l->m, (l->nr + 1) * sizeof(*n));
	if (!n)
		return -1;
	l->m = n;
	struct nlmsghdr *c = malloc(h->nlmsg_len);
	if (!c)
		return -1;
	memcpy(c, h, h->nlmsg_len);
	memcpy(&l->m[l->nr].ino, (const char *)NLMSG_DATA(h) + k->ino_off, sizeof(uint32_t));
	l->m[l->nr++].h = c;
	return 0;
}

int sock_diag_keep(struct sock_diag_kept *l, void *req, size_t len, size_t ino_off, const char *what)
{
	struct keep_arg k = { l, ino_off };

	if (l->loaded)
		return 0;
	sock_diag_free(l);	/* what a failed try kept */
	if (sock_diag_list(req, len, what, keep_one, &k) < 0)
		return -1;
	l->loaded = true;
	return 0;
}

const struct nlmsghdr *sock_diag_find(const struct sock_diag_kept *l, uint32_t ino)
{
	for (int i = 0; i < l->nr; i++)
		if (l->m[i].ino == ino)
			return l->m[i].h;
	return NULL;
}

void sock_diag_free(struct sock_diag_kept *l)
{
	for (int i = 0; i < l->nr; i++)
		free(l->m[i].h);
	free(l->m);
	memset(l, 0, sizeof(*l));
}

const void *sock_diag_attr(const struct nlmsghdr *h, size_t hdr, int type, size_t *len)
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

int sock_diag_our_netns(int sk)
{
	struct stat theirs, ours;
	int ns = ioctl(sk, SIOCGSKNS);
	if (ns < 0)
		return -1;
	int r = fstat(ns, &theirs);
	close(ns);
	if (r < 0 || (tree_netns >= 0 ? fstat(tree_netns, &ours) : stat("/proc/self/ns/net", &ours)) < 0)
		return -1;
	return theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev;
}
