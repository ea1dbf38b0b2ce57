/* dump of a network namespace (net/netns.h), in the namespace: its
 * devices listed by rtnetlink, the kinds stasis can make again saved and
 * any other refused by name; then its sysctls, and the output of the
 * tools CRIU runs (ip addr/route/rule save, iptables-save, the nftables
 * ruleset) as raw images. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "image/img.h"
#include "net/netns.h"
#include "net/nft_lib.h"
#include "util/log.h"

struct links {
	NetDeviceEntry **d;
	int nr;
};

static void links_free(struct links *l)
{
	for (int i = 0; i < l->nr; i++) {
		NetDeviceEntry *d = l->d[i];
		free(d->name);
		free(d->address.data);
		netns_conf_free(d->conf4, d->n_conf4);
		netns_conf_free(d->conf6, d->n_conf6);
		link_kind_free(d);
		free(d);
	}
	free(l->d);
}

static const struct rtattr *attr(const struct rtattr *a, int len, int type)
{
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == type)
			return a;
	return NULL;
}

static const char *link_kind(const struct rtattr *info, char *buf, size_t len)
{
	const struct rtattr *k = info ? attr(RTA_DATA(info), RTA_PAYLOAD(info), IFLA_INFO_KIND) : NULL;
	if (!k)
		return NULL;
	snprintf(buf, len, "%.*s", (int)RTA_PAYLOAD(k), (const char *)RTA_DATA(k));
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

struct link_arg {
	struct links *l;
	const struct netns_dump_arg *ns;
};

/* The loopback, or a device of a kind links.c knows; -1 (reported). */
static int link_type(const struct link_arg *la, const struct ifinfomsg *ifi, const char *name,
		     const struct rtattr *a, int len, NetDeviceEntry *d)
{
	char kbuf[32];
	const struct rtattr *info = attr(a, len, IFLA_LINKINFO);
	struct link_msg m = { la->ns, ifi, a, len, name, link_kind(info, kbuf, sizeof(kbuf)),
			      info ? attr(RTA_DATA(info), RTA_PAYLOAD(info), IFLA_INFO_DATA) : NULL };
	if (ifi->ifi_type == ARPHRD_LOOPBACK) {
		d->type = ND_TYPE__LOOPBACK;
		return 0;
	}
	return link_dump_kind(&m, d);
}

static const char *type_name(const NetDeviceEntry *d, uint32_t ns_id)
{
	switch (d->type) {
	case ND_TYPE__LOOPBACK: return "the loopback";
	case ND_TYPE__VETH: return netns_veth_inside(d, ns_id) ? "a veth with both ends inside" : "a veth to the outside";
	case ND_TYPE__BRIDGE: return "a bridge";
	case ND_TYPE__MACVLAN: return "a macvlan";
	case ND_TYPE__TUN: return "a tun/tap device";
	default: return "?";
	}
}

static int add_link(const struct nlmsghdr *h, struct link_arg *la)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *a = IFLA_RTA(ifi);
	int len = IFLA_PAYLOAD(h);
	const struct rtattr *name = attr(a, len, IFLA_IFNAME), *mtu = attr(a, len, IFLA_MTU);
	char nbuf[IFNAMSIZ + 1];

	if (!name || !mtu) {
		pr_err("rtnetlink gave device %d without a name or mtu", ifi->ifi_index);
		return -1;
	}
	snprintf(nbuf, sizeof(nbuf), "%.*s", (int)RTA_PAYLOAD(name), (const char *)RTA_DATA(name));
	NetDeviceEntry *d = calloc(1, sizeof(*d)), **n = realloc(la->l->d, (la->l->nr + 1) * sizeof(*n));
	if (n)
		la->l->d = n;
	if (!d || !n) {
		free(d);
		pr_err("out of memory listing network devices");
		return -1;
	}
	net_device_entry__init(d);
	la->l->d[la->l->nr++] = d;
	if (!(d->name = strdup(nbuf))) {
		pr_err("out of memory listing network devices");
		return -1;
	}
	if (link_type(la, ifi, nbuf, a, len, d) < 0)
		return -1;
	d->ifindex = ifi->ifi_index;
	d->mtu = *(const uint32_t *)RTA_DATA(mtu);
	d->flags = ifi->ifi_flags;
	const struct rtattr *addr = attr(a, len, IFLA_ADDRESS), *link = attr(a, len, IFLA_LINK);
	if (addr && d->type != ND_TYPE__LOOPBACK) {
		d->has_address = true;
		d->address.len = RTA_PAYLOAD(addr);
		d->address.data = malloc(d->address.len);
		if (!d->address.data)
			return -1;
		memcpy(d->address.data, RTA_DATA(addr), d->address.len);
	}
	/* as CRIU: the other end's (a veth's, a macvlan's parent) index, and
	 * its namespace when it is the tree's (none given: another one) */
	d->has_peer_ifindex = true;
	d->peer_ifindex = link ? *(const uint32_t *)RTA_DATA(link) : (uint32_t)ifi->ifi_index;
	if (!attr(a, len, IFLA_LINK_NETNSID)) {
		d->has_peer_nsid = true;
		d->peer_nsid = la->ns->id;
	}
	const struct rtattr *master = attr(a, len, IFLA_MASTER);
	if (master) {
		d->has_master = true;
		d->master = *(const uint32_t *)RTA_DATA(master);
	}
	pr_info("network device %s (index %u, mtu %u, flags %#x%s): saved as %s", d->name, d->ifindex, d->mtu,
		d->flags, master ? ", in a bridge" : "", type_name(d, la->ns->id));
	return netns_dev_conf_dump(d);
}

/* The fallback device a tunnel module makes in every namespace (sit0 &
 * co.): the restoring namespace gets its own (CRIU leaves out sit0, gre0
 * and gretap0). */
static const char *fallback_tunnel(const struct nlmsghdr *h)
{
	static const char *const names[] = { "tunl0", "sit0", "gre0", "gretap0", "erspan0", "ip6tnl0", "ip6gre0",
					     "ip_vti0", "ip6_vti0" };
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *name = attr(IFLA_RTA(ifi), IFLA_PAYLOAD(h), IFLA_IFNAME);
	for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
		if (RTA_PAYLOAD(name) >= strlen(names[i]) + 1 && !strcmp(RTA_DATA(name), names[i]))
			return names[i];
	return NULL;
}

/* 1: the list is over; 0: more to read; -1: an error, reported */
static int take_links(const char *buf, ssize_t n, struct link_arg *la)
{
	for (const struct nlmsghdr *h = (const void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
			pr_perror("rtnetlink refused to list the network devices");
			return -1;
		}
		const char *fb = h->nlmsg_type == RTM_NEWLINK ? fallback_tunnel(h) : NULL;
		if (fb)
			pr_info("network device %s: a tunnel module's own, left out", fb);
		else if (h->nlmsg_type == RTM_NEWLINK && add_link(h, la) < 0)
			return -1;
	}
	return 0;
}

static int list_links(struct links *l, const struct netns_dump_arg *ns)
{
	static char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		  .i = { .ifi_family = AF_UNSPEC } };
	struct link_arg la = { l, ns };
	int r = 0, sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (sk < 0 || send(sk, &req, sizeof(req), 0) != sizeof(req)) {
		pr_perror("can't ask rtnetlink for the network devices");
		r = -1;
	}
	while (r == 0) {
		ssize_t n = recv(sk, buf, sizeof(buf), 0);
		if (n <= 0) {
			pr_perror("can't read the network devices from rtnetlink");
			r = -1;
		} else {
			r = take_links(buf, n, &la);
		}
	}
	if (sk >= 0)
		close(sk);
	return r < 0 ? -1 : 0;
}

static int store_links(int dirfd, uint32_t id, const struct links *l)
{
	struct img img;
	if (img_create(dirfd, &img, IMG_NETDEV, id) < 0)
		return -1;
	for (int i = 0; i < l->nr; i++)
		if (img_write(&img, &l->d[i]->base) < 0) {
			img_abort(&img);
			return -1;
		}
	return img_finish(&img);
}

static int store_conf(int dirfd, uint32_t id)
{
	NetnsEntry ne = NETNS_ENTRY__INIT;
	int ret = netns_conf_dump(&ne);
	if (ret == 0)
		ret = img_store_one(dirfd, IMG_NETNS, id, &ne.base);
	netns_conf_free(ne.all_conf4, ne.n_all_conf4);
	netns_conf_free(ne.def_conf4, ne.n_def_conf4);
	netns_conf_free(ne.all_conf6, ne.n_all_conf6);
	netns_conf_free(ne.def_conf6, ne.n_def_conf6);
	netns_conf_free(ne.unix_conf, ne.n_unix_conf);
	netns_conf_free(ne.ipv4_sysctl, ne.n_ipv4_sysctl);
	return ret;
}

/* A raw image of kind, the output of argv; can_fail: a tool that fails
 * leaves no image (CRIU's ip rule save, which old ip lacks). */
static int store_tool(int dirfd, uint32_t id, enum img_kind kind, char *const argv[], bool can_fail)
{
	struct img img;
	if (img_create(dirfd, &img, kind, id) < 0)
		return -1;
	int ret = net_tool(argv, -1, img.fd, can_fail);
	if (img_finish(&img) < 0)
		return -1;
	if (ret < 0 && can_fail) {
		pr_warn("%s %s failed: no %s", argv[0], argv[1], img.name);
		img_remove(dirfd, kind, id);
		return 0;
	}
	return ret;
}

/* Whether the tool's --version says nf_tables: 1 yes, 0 no, -1 no tool. */
static int tool_is_nft(const char *tool)
{
	char buf[256] = "";
	int fd = memfd_create("stasis-version", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	char *argv[] = { (char *)tool, "--version", NULL };
	int ret = net_tool(argv, -1, fd, true);
	if (ret == 0 && pread(fd, buf, sizeof(buf) - 1, 0) < 0)
		ret = -1;
	close(fd);
	return ret < 0 ? -1 : strstr(buf, "nf_tables") != NULL;
}

/* CRIU's choice: the tool if it is a legacy one, else its -legacy-
 * twin, else none (the nftables ruleset holds what iptables-nft made). */
const char *netns_legacy_tool(bool v6, bool restore)
{
	static const char *const names[2][2][2] = {
		{ { "iptables-save", "iptables-legacy-save" }, { "iptables-restore", "iptables-legacy-restore" } },
		{ { "ip6tables-save", "ip6tables-legacy-save" }, { "ip6tables-restore", "ip6tables-legacy-restore" } },
	};
	for (int i = 0; i < 2; i++)
		if (tool_is_nft(names[v6][restore][i]) == 0)
			return names[v6][restore][i];
	return NULL;
}

static int store_nftables(int dirfd, uint32_t id)
{
	struct img img;
	const struct nft_lib *L = nft_lib("the nftables ruleset of a network namespace", false);
	if (!L || img_create(dirfd, &img, IMG_NFTABLES, id) < 0)
		return -1;
	struct nft_ctx *nft = L->ctx_new(NFT_CTX_DEFAULT);
	int fd = dup(img.fd);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	int ret = -1;
	if (!nft || !f) {
		pr_perror("can't list the nftables ruleset");
	} else {
		L->ctx_set_output(nft, f);
		L->ctx_buffer_error(nft);
		ret = L->run_cmd_from_buffer(nft, "list ruleset") ? -1 : 0;
		if (ret < 0)
			pr_err("nft list ruleset failed: %s", L->ctx_get_error_buffer(nft));
	}
	if (f && fclose(f) != 0 && ret == 0) {
		pr_perror("can't write %s", img.name);
		ret = -1;
	} else if (!f && fd >= 0)
		close(fd);
	if (nft)
		L->ctx_free(nft);
	return img_finish(&img) < 0 ? -1 : ret;
}

static int store_firewall(int dirfd, uint32_t id, bool v6)
{
	const char *t4 = netns_legacy_tool(false, false), *t6 = v6 ? netns_legacy_tool(true, false) : NULL;
	if (t4 && store_tool(dirfd, id, IMG_IPTABLES, (char *[]){ (char *)t4, NULL }, false) < 0)
		return -1;
	if (t6 && store_tool(dirfd, id, IMG_IP6TABLES, (char *[]){ (char *)t6, NULL }, false) < 0)
		return -1;
	return store_nftables(dirfd, id);
}

int netns_dump_in(void *arg)
{
	struct netns_dump_arg *a = arg;
	struct links l = { 0 };
	bool v6 = access("/proc/sys/net/ipv6/conf/all", F_OK) == 0;

	int ret = list_links(&l, a);
	if (ret == 0)
		ret = store_links(a->dirfd, a->id, &l);
	links_free(&l);
	if (ret < 0 || store_conf(a->dirfd, a->id) < 0)
		return -1;
	if (store_tool(a->dirfd, a->id, IMG_IFADDR, (char *[]){ "ip", "addr", "save", NULL }, false) < 0 ||
	    store_tool(a->dirfd, a->id, IMG_ROUTE, (char *[]){ "ip", "route", "save", NULL }, false) < 0 ||
	    (v6 && store_tool(a->dirfd, a->id, IMG_ROUTE6, (char *[]){ "ip", "-6", "route", "save", NULL }, false) < 0) ||
	    store_tool(a->dirfd, a->id, IMG_RULE, (char *[]){ "ip", "rule", "save", NULL }, true) < 0)
		return -1;
	if (store_firewall(a->dirfd, a->id, v6) < 0)
		return -1;
	return netns_ct_dump(a->dirfd, a->id);
}
