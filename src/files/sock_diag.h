#ifndef STASIS_FILES_SOCK_DIAG_H
#define STASIS_FILES_SOCK_DIAG_H
/* One sock_diag dump (NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY): the
 * family's request is sent as it is, and each answer is handed to each(). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/netlink.h>

/* req: a struct nlmsghdr followed by the family's request, len bytes in
 * all; what names the sockets in messages ("the unix sockets"). each()
 * returns <0 when out of memory. 0 when the whole list was read. */
int sock_diag_list(void *req, size_t len, const char *what,
		   int (*each)(const struct nlmsghdr *h, void *arg), void *arg);

/* The answers kept, each socket's message found by inode: for the kinds
 * that look sockets up one at a time as their fds come (packet, netlink
 * sockets). */
struct sock_diag_kept {
	bool loaded;
	struct sock_diag_msg {
		uint32_t ino;
		struct nlmsghdr *h;	/* a copy, attributes and all */
	} *m;
	int nr;
};

/* Fills l with the answers to req (as sock_diag_list; once: a later call
 * finds it loaded), each socket's inode at ino_off in its message. 0 or
 * -1 (reported). */
int sock_diag_keep(struct sock_diag_kept *l, void *req, size_t len, size_t ino_off, const char *what);
/* The message of socket ino, or NULL if the list has none. */
const struct nlmsghdr *sock_diag_find(const struct sock_diag_kept *l, uint32_t ino);
void sock_diag_free(struct sock_diag_kept *l);
/* Attribute type of the message h, whose fixed part is hdr bytes, or
 * NULL; *len its payload's length. */
const void *sock_diag_attr(const struct nlmsghdr *h, size_t hdr, int type, size_t *len);

/* The network namespace sock_diag lists: pid's (the root of a tree with
 * one of its own), or 0: ours. 0 or -1 (reported). */
int sock_diag_set_netns(pid_t pid);

/* Is socket sk (our fd on it) of the network namespace sock_diag lists
 * (ours, or the tree's)? 1 yes, 0 no, -1 (errno set) if it can't be told. */
int sock_diag_our_netns(int sk);

#endif
