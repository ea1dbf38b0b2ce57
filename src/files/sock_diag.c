/* The kernel's list of sockets, read through sock_diag. The tree is
 * frozen while it is read, so what it says of the tree's sockets holds. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/sock_diag.h>

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

int sock_diag_list(void *req, size_t len, const char *what,
		   int (*each)(const struct nlmsghdr *h, void *arg), void *arg)
{
	static __thread char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *h = req;
	int r = 0, nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

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
