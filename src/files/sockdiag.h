/* The kernel's list of the sockets of one family (sock_diag), read once
 * per dump by the socket kinds that need what only it tells (packet
 * sockets' rings and memberships, netlink sockets' peers): each socket's
 * message, found by inode. Only the socket kinds include this. */
#ifndef STASIS_FILES_SOCKDIAG_H
#define STASIS_FILES_SOCKDIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

struct sockdiag_list {
	bool loaded;
	struct sockdiag_msg {
		uint32_t ino;
		struct nlmsghdr *h;	/* a copy, attributes and all */
	} *m;
	int nr;
};

/* Fills l (once: later calls find it loaded) with the answers to req
 * (a SOCK_DIAG_BY_FAMILY dump request of len bytes), each socket's
 * inode at ino_off in its message; what names the family in errors.
 * 0 or -1 (reported). */
int sockdiag_load(struct sockdiag_list *l, const void *req, size_t len, size_t ino_off, const char *what);
/* The message of socket ino, or NULL if the list has none. */
const struct nlmsghdr *sockdiag_find(const struct sockdiag_list *l, uint32_t ino);
/* Attribute type of the message h, whose fixed part is hdr bytes, or
 * NULL; *len its payload's length. */
const void *sockdiag_attr(const struct nlmsghdr *h, size_t hdr, int type, size_t *len);
void sockdiag_free(struct sockdiag_list *l);

/* Is socket sk (our fd on it) of our network namespace, the one sock_diag
 * lists? 1 yes, 0 no, -1 (errno set) if it can't be told. */
int sockdiag_our_netns(int sk);

#endif
