/* The connection tracking table of the tree's network namespace
 * (net/netns.h), as CRIU 4.2 saves it: netns-ct-ID.img holds the
 * entries and netns-exp-ID.img the expectations, each the ctnetlink
 * messages of a dump of them, one after the other, raw. Restore sends
 * them back as they are, asking the kernel to make each (a TCP entry
 * made "liberal" first, as CRIU does: its window is not checked, since
 * the connection's sequence numbers moved on while it was saved). Both
 * images are written always, empty when the namespace tracks nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netlink.h>

#include "image/img.h"
#include "net/netns.h"
#include "util/log.h"

/* CRIU's sequence number: the saved messages carry it, and CRIU's
 * restore sends them as they are and waits for an answer with it. */
#define CRIU_NLMSG_SEQ 24680

/* An image is read whole: bounded (each entry is a few hundred bytes). */
#define CT_MAX (256u << 20)

struct ct_kind {
	enum img_kind img;
	int type;		/* the dump request's nlmsg_type */
	const char *what;
};

/* (CRIU 4.2 asks for its expectations in the subsystem of the entries,
 * so its netns-exp image holds the entries again: sent back, they change
 * nothing. Stasis asks the expectations' own subsystem.) */
static const struct ct_kind kinds[] = {
	{ IMG_NETNF_CT, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, "connection tracking entries" },
	{ IMG_NETNF_EXP, (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_GET, "connection tracking expectations" },
};

static int ct_socket(const char *what)
{
	int sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (sk < 0)
		pr_perror("can't open a netfilter netlink socket for the %s", what);
	return sk;
}

/* The messages of one read into the image: 1 the dump is over, 0 more
 * to read, -1 an error (reported). */
static int take(const char *buf, ssize_t n, int fd, const struct ct_kind *k)
{
	for (const struct nlmsghdr *h = (const void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			int err = -((const struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (err == ENOENT || err == EOPNOTSUPP)
				return 1;	/* no conntrack here: nothing to save */
			errno = err;
			pr_perror("ctnetlink refused to list the %s", k->what);
			return -1;
		}
		if (write(fd, h, h->nlmsg_len) != (ssize_t)h->nlmsg_len) {
			pr_perror("can't write the %s", k->what);
			return -1;
		}
	}
	return 0;
}

static int dump_one(int dirfd, uint32_t id, const struct ct_kind *k)
{
	static char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct {
		struct nlmsghdr h;
		struct nfgenmsg g;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = k->type,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = CRIU_NLMSG_SEQ },
		  .g = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0 } };
	struct img img;
	int r = 0, sk = ct_socket(k->what);
	if (sk < 0)
		return -1;
	if (img_create(dirfd, &img, k->img, id) < 0) {
		close(sk);
		return -1;
	}
	if (send(sk, &req, sizeof(req), 0) != sizeof(req)) {
		pr_perror("can't ask ctnetlink for the %s", k->what);
		r = -1;
	}
	while (r == 0) {
		ssize_t n = recv(sk, buf, sizeof(buf), 0);
		if (n <= 0) {
			pr_perror("can't read the %s from ctnetlink", k->what);
			r = -1;
		} else {
			r = take(buf, n, img.fd, k);
		}
	}
	close(sk);
	return img_finish(&img) < 0 || r < 0 ? -1 : 0;
}

int netns_ct_dump(int dirfd, uint32_t id)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (dump_one(dirfd, id, &kinds[i]) < 0)
			return -1;
	return 0;
}

/* ---- restore ---- */

static struct nlattr *nested(struct nlattr *a, int len, int type)
{
	for (; len >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len;
	     len -= NLA_ALIGN(a->nla_len), a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
	return NULL;
}

static void *nla_body(struct nlattr *a)
{
	return (char *)a + NLA_HDRLEN;
}

static int nla_body_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

/* A TCP entry's both directions made liberal (CRIU's way). */
static void make_liberal(struct nlmsghdr *h)
{
	int len = h->nlmsg_len - NLMSG_SPACE(sizeof(struct nfgenmsg));
	struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	struct nlattr *pi = len > 0 ? nested(a, len, CTA_PROTOINFO) : NULL;
	struct nlattr *tcp = pi ? nested(nla_body(pi), nla_body_len(pi), CTA_PROTOINFO_TCP) : NULL;
	static const int dirs[] = { CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, CTA_PROTOINFO_TCP_FLAGS_REPLY };
	for (size_t i = 0; tcp && i < 2; i++) {
		struct nlattr *f = nested(nla_body(tcp), nla_body_len(tcp), dirs[i]);
		if (f && nla_body_len(f) >= (int)sizeof(struct nf_ct_tcp_flags)) {
			struct nf_ct_tcp_flags *fl = nla_body(f);
			fl->flags |= IP_CT_TCP_FLAG_BE_LIBERAL;
			fl->mask |= IP_CT_TCP_FLAG_BE_LIBERAL;
		}
	}
}

/* Sends one message and reads its answer: 0, or -1 (reported). An
 * entry that is there already is changed to the image's (no NLM_F_EXCL);
 * an expectation there already (EEXIST) is kept. */
static int send_one(int sk, struct nlmsghdr *h, const struct ct_kind *k)
{
	char ack[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
	if (send(sk, h, h->nlmsg_len, 0) != (ssize_t)h->nlmsg_len) {
		pr_perror("can't send the %s to ctnetlink", k->what);
		return -1;
	}
	ssize_t n = recv(sk, ack, sizeof(ack), 0);
	const struct nlmsghdr *r = (const void *)ack;
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || r->nlmsg_type != NLMSG_ERROR) {
		pr_perror("no answer from ctnetlink while restoring the %s", k->what);
		return -1;
	}
	int err = -((const struct nlmsgerr *)NLMSG_DATA(r))->error;
	if (err && err != EEXIST) {
		errno = err;
		pr_perror("ctnetlink refused one of the %s of the tree's network namespace", k->what);
		return -1;
	}
	return 0;
}

static int restore_msgs(char *buf, size_t len, const struct ct_kind *k)
{
	int sk = ct_socket(k->what), ret = 0, nr = 0;
	if (sk < 0)
		return -1;
	for (size_t off = 0; ret == 0 && off < len;) {
		struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
		if (len - off < sizeof(*h) || h->nlmsg_len < NLMSG_SPACE(sizeof(struct nfgenmsg)) ||
		    h->nlmsg_len > len - off) {
			pr_err("the image of the %s is cut or damaged at byte %zu", k->what, off);
			ret = -1;
			break;
		}
		if (h->nlmsg_type >> 8 == NFNL_SUBSYS_CTNETLINK)
			make_liberal(h);
		ret = send_one(sk, h, k);
		nr++;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	close(sk);
	if (ret == 0 && nr)
		pr_info("%d %s restored", nr, k->what);
	return ret;
}

/* The image whole, in memory aligned for netlink: NULL if it is absent
 * or empty (*len 0), or on an error (reported, *len 1). */
static char *read_image(int dirfd, uint32_t id, const struct ct_kind *k, size_t *len)
{
	struct img img;
	struct stat st;
	char *buf = NULL;
	*len = 0;
	if (img_open(dirfd, &img, k->img, id) < 0) {
		*len = errno != ENOENT;
		return NULL;
	}
	if (fstat(img.fd, &st) < 0) {
		pr_perror("can't read the image of the %s", k->what);
		*len = 1;
	} else if ((uint64_t)st.st_size > CT_MAX) {
		pr_err("the image of the %s is over %u bytes", k->what, CT_MAX);
		*len = 1;
	} else if (st.st_size && (!(buf = aligned_alloc(NLMSG_ALIGNTO, NLMSG_ALIGN(st.st_size))) ||
				  pread(img.fd, buf, st.st_size, 0) != st.st_size)) {
		pr_perror("can't read the image of the %s", k->what);
		free(buf);
		buf = NULL;
		*len = 1;
	} else {
		*len = st.st_size;
	}
	img_close(&img);
	return buf;
}

int netns_ct_restore(int dirfd, uint32_t id)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t len;
		char *buf = read_image(dirfd, id, &kinds[i], &len);
		if (!buf && len)
			return -1;
		int ret = buf ? restore_msgs(buf, len, &kinds[i]) : 0;
		free(buf);
		if (ret < 0)
			return -1;
	}
	return 0;
}
