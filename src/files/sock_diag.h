#ifndef STASIS_FILES_SOCK_DIAG_H
#define STASIS_FILES_SOCK_DIAG_H
/* One sock_diag dump (NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY): the
 * family's request is sent as it is, and each answer is handed to each(). */
#include <stddef.h>
#include <linux/netlink.h>

/* req: a struct nlmsghdr followed by the family's request, len bytes in
 * all; what names the sockets in messages ("the unix sockets"). each()
 * returns <0 when out of memory. 0 when the whole list was read. */
int sock_diag_list(void *req, size_t len, const char *what,
		   int (*each)(const struct nlmsghdr *h, void *arg), void *arg);

#endif
