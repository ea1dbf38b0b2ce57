#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/lazy_proto.h"
#include "util/scm.h"

int lazy_send(int sk, const void *data, size_t n, int fd)
{
	const char *p = data;
	bool with_fd = fd >= 0;	/* the fd goes with the first bytes */
	while (n) {
		ssize_t w = scm_send(sk, p, n, &fd, with_fd);
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
		with_fd = false;
	}
	return 0;
}

int lazy_recv(int sk, void *data, size_t n, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { data, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int got = -1;

	while (iov.iov_len) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		ssize_t r = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0) {
			if (got >= 0)
				close(got);
			return 0;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (int i = 0; i < nfd; i++) {
				int f;
				memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (got < 0 && fd)
					got = f;
				else
					close(f);
			}
		}
		iov.iov_base = (char *)iov.iov_base + r;
		iov.iov_len -= r;
	}
	if (fd)
		*fd = got;
	return 1;
fail:
	if (got >= 0)
		close(got);
	return -1;
}
