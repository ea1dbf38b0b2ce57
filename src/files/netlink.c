/* Netlink sockets (AF_NETLINK), as CRIU saves them: a netlink_sk_entry in
 * files.img with the socket's protocol, its port id and multicast groups,
 * and the peer it is connected to.
 *
 * Dump: the kernel's list of netlink sockets (sock_diag, netlink_diag)
 * tells port id, groups, state and peer; a socket it does not list is
 * neither bound nor connected (its protocol is asked of the socket).
 * Refused as CRIU refuses them: a socket with messages waiting to be read
 * (they would be lost), one in groups without a port id. Also refused: a
 * socket in the middle of a dump the kernel is answering (the rest of the
 * answer would be lost). Groups above 32 (`ip monitor` is in group 36,
 * RTNLGRP_STATS) are kept in the image's further words and joined again
 * one by one; CRIU refuses to dump such a socket, and its restore takes
 * the first word only (it refuses an image with more).
 *
 * Restore makes the socket anew in the restored process, binds it to its
 * port id and groups (another port id if that one is taken, as CRIU
 * does: the kernel picks port ids for most sockets anyway), connects it,
 * and sets its options. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>

#include "files/kind.h"
#include "files/sock_diag.h"
#include "files/sockopts.h"
#include "util/log.h"

#define NETLINK_CONNECTED 1	/* the kernel's ndiag_state of a connected socket */

extern const struct fd_kind fd_kind_netlink;

struct netlink_dump {
	struct sock_diag_kept diag;
};

/* ---- dump ---- */

static bool netlink_owns(const struct fd_facts *f)
{
	return S_ISSOCK(f->st.st_mode) && !strcmp(f->proto, "NETLINK");
}

/* What netlink_diag says of socket ino; NULL if it is not listed (or the
 * list could not be read: *err). */
static const struct nlmsghdr *diag_of(struct file_table *t, uint32_t ino, int *err)
{
	struct netlink_dump *d = files_dump_state(t, &fd_kind_netlink);
	struct {
		struct nlmsghdr h;
		struct netlink_diag_req r;
	} req = {
		.r = { .sdiag_family = AF_NETLINK, .sdiag_protocol = NDIAG_PROTO_ALL,
		       .ndiag_show = NDIAG_SHOW_GROUPS | NDIAG_SHOW_FLAGS },
	};
	*err = sock_diag_keep(&d->diag, &req, sizeof(req), offsetof(struct netlink_diag_msg, ndiag_ino),
			     "the netlink sockets");
	return *err ? NULL : sock_diag_find(&d->diag, ino);
}

/* The groups, a bitmask of longs, as words of 32 without the zero ones
 * at the end. */
static int dump_groups(const struct nlmsghdr *h, NetlinkSkEntry *ne)
{
	size_t len;
	const uint32_t *g = sock_diag_attr(h, sizeof(struct netlink_diag_msg), NETLINK_DIAG_GROUPS, &len);
	size_t n = g ? len / sizeof(uint32_t) : 0;

	while (n && !g[n - 1])
		n--;
	if (!n)
		return 0;
	if (!(ne->groups = malloc(n * sizeof(uint32_t))))
		return -1;
	memcpy(ne->groups, g, n * sizeof(uint32_t));
	ne->n_groups = n;
	return 0;
}

static const char *refusal(const struct nlmsghdr *h, const NetlinkSkEntry *ne)
{
	size_t l;
	const uint32_t *flags = sock_diag_attr(h, sizeof(struct netlink_diag_msg), NETLINK_DIAG_FLAGS, &l);

	if (flags && l >= sizeof(*flags) && (*flags & NDIAG_FLAG_CB_RUNNING))
		return "is in the middle of a dump the kernel answers (the rest of the answer would be lost)";
	if (ne->n_groups && !ne->portid)
		return "is in multicast groups but has no port id (nor can CRIU dump it)";
	if (ne->state == NETLINK_CONNECTED && ne->dst_group > 32)
		return "is connected to a multicast group above 32, which connect() can't name";
	return NULL;
}

static NetlinkSkEntry *new_nlsk(void)
{
	NetlinkSkEntry *ne = calloc(1, sizeof(*ne));
	FownEntry *fown = calloc(1, sizeof(*fown));
	SkOptsEntry *so = skopts_new();
	if (!ne || !fown || !so) {
		free(ne);
		free(fown);
		free(so);
		return NULL;
	}
	netlink_sk_entry__init(ne);
	fown_entry__init(fown);
	ne->fown = fown;
	ne->opts = so;
	return ne;
}

/* Unread messages would be lost: refused, as CRIU does. */
static int has_data(int sk)
{
	struct pollfd p = { .fd = sk, .events = POLLIN };
	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

static int dump_socket(struct file_table *t, int sk, const struct fd_facts *f, NetlinkSkEntry *ne)
{
	int err, v;
	socklen_t l = sizeof(v);
	const struct nlmsghdr *h = diag_of(t, ne->ino, &err);

	if (err)
		return -1;
	if (sock_diag_our_netns(sk) != 1) {
		pr_err("pid %d: fd %d: netlink socket %u is in another network namespace than stasis (or its "
		       "namespace can't be told); stasis can't dump it", f->pid, f->fd, ne->ino);
		return -1;
	}
	if (has_data(sk)) {
		pr_err("pid %d: fd %d: netlink socket %u has messages not yet read, which would be lost; "
		       "stasis (as CRIU) can't dump it: let the program read them and dump again", f->pid,
		       f->fd, ne->ino);
		return -1;
	}
	if (!h) {	/* neither bound nor connected */
		if (getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &v, &l) < 0) {
			pr_perror("pid %d: fd %d: can't read the protocol of netlink socket %u", f->pid, f->fd,
				  ne->ino);
			return -1;
		}
		ne->protocol = v;
		return 0;
	}
	const struct netlink_diag_msg *m = NLMSG_DATA(h);
	ne->protocol = m->ndiag_protocol;
	ne->portid = m->ndiag_portid;
	ne->state = m->ndiag_state;
	ne->dst_portid = m->ndiag_dst_portid;
	ne->dst_group = m->ndiag_dst_group;
	if (dump_groups(h, ne) < 0)
		return files_oom(f);
	const char *no = refusal(h, ne);
	if (no) {
		pr_err("pid %d: fd %d: netlink socket %u (protocol %u, port %u) %s; close it before the dump",
		       f->pid, f->fd, ne->ino, ne->protocol, ne->portid, no);
		return -1;
	}
	return 0;
}

static int netlink_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	(void)o;
	NetlinkSkEntry *ne = new_nlsk();
	if (!ne)
		return files_oom(f);
	fe->nlsk = ne;
	ne->id = fe->id;
	ne->ino = f->st.st_ino;
	ne->flags = f->fi.flags & ~O_CLOEXEC;

	int sk = f->sk, ret = -1;
	if (dump_socket(t, sk, f, ne) < 0)
		goto out;
	if (skopts_dump(sk, AF_NETLINK, ne->opts) < 0) {
		pr_perror("pid %d: fd %d: can't read the options of netlink socket %u", f->pid, f->fd, ne->ino);
		goto out;
	}
	pr_debug("pid %d: fd %d: netlink socket %u protocol %u port %u groups %#x state %u -> %u/%u", f->pid,
		 f->fd, ne->ino, ne->protocol, ne->portid, ne->n_groups ? ne->groups[0] : 0, ne->state,
		 ne->dst_portid, ne->dst_group);
	ret = 0;
out:
	return ret;
}

static void netlink_free_images(struct file_table *t)
{
	struct netlink_dump *d = files_dump_state(t, &fd_kind_netlink);
	if (d)
		sock_diag_free(&d->diag);
}

/* ---- restore ---- */

/* Its port id and first 32 groups by bind(), another port id if that one
 * is taken; the groups above joined one by one. */
static int bind_again(int sk, const NetlinkSkEntry *ne, const char *what)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = ne->portid,
				 .nl_groups = ne->n_groups ? ne->groups[0] : 0 };

	if (bind(sk, (struct sockaddr *)&a, sizeof(a)) < 0) {
		a.nl_pid = 0;
		if (errno != EADDRINUSE || bind(sk, (struct sockaddr *)&a, sizeof(a)) < 0) {
			pr_perror("can't bind %s to port %u", what, ne->portid);
			return -1;
		}
		pr_warn("%s: port %u is taken, the socket got another one (as CRIU does)", what, ne->portid);
	}
	for (size_t w = 1; w < ne->n_groups; w++)
		for (int b = 0; b < 32; b++) {
			int group = w * 32 + b + 1;
			if ((ne->groups[w] >> b & 1) &&
			    setsockopt(sk, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
				pr_perror("can't join %s to multicast group %d", what, group);
				return -1;
			}
		}
	return 0;
}

static int connect_again(int sk, const NetlinkSkEntry *ne, const char *what)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = ne->dst_portid };

	if (ne->dst_group > 32) {
		pr_err("image files.img: %s is connected to multicast group %u, which connect() can't name",
		       what, ne->dst_group);
		return -1;
	}
	if (ne->dst_group)
		a.nl_groups = 1u << (ne->dst_group - 1);
	if (connect(sk, (struct sockaddr *)&a, sizeof(a)) < 0) {
		pr_perror("can't connect %s to port %u group %u", what, ne->dst_portid, ne->dst_group);
		return -1;
	}
	return 0;
}

static int netlink_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	(void)fdflags;
	const NetlinkSkEntry *ne = fe->nlsk;
	char what[96];

	if (!ne || !ne->opts || (ne->n_groups && !ne->groups)) {
		pr_err("image files.img: %s: netlink socket %u has no entry", rf->who, fe->id);
		return -1;
	}
	snprintf(what, sizeof(what), "netlink socket %u (protocol %u, %s)", ne->ino, ne->protocol, rf->who);
	int sk = socket(AF_NETLINK, SOCK_RAW, ne->protocol);
	if (sk < 0) {
		pr_perror("can't make %s", what);
		return -1;
	}
	if ((ne->portid && bind_again(sk, ne, what) < 0) ||
	    (ne->state == NETLINK_CONNECTED && connect_again(sk, ne, what) < 0))
		goto fail;
	if (fcntl(sk, F_SETFL, ne->flags & O_NONBLOCK) < 0) {
		pr_perror("can't set the file flags of %s", what);
		goto fail;
	}
	if (skopts_restore(sk, ne->opts, what) < 0)
		goto fail;
	return sk;
fail:
	close(sk);
	return -1;
}

static bool netlink_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	(void)rf;
	if (!fe->nlsk)
		return false;
	snprintf(buf, len, "socket:[%u]", fe->nlsk->ino);
	return true;
}

const struct fd_kind fd_kind_netlink = {
	.name = "netlink socket", .type = FD_TYPES__NETLINKSK,
	.dump_state = sizeof(struct netlink_dump),
	.owns = netlink_owns, .dump = netlink_dump, .open = netlink_open,
	.free_images = netlink_free_images, .inherit_name = netlink_inherit_name,
};
