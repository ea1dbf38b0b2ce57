/* The kinds of network device stasis saves and makes again in a tree's
 * network namespace besides the loopback and the veths to the outside
 * (netns_restore.c's), in CRIU 4.2's netdev-ID.img:
 *
 * - veth pairs with both ends inside: each end an entry whose peer
 *   (peer_ifindex) is in the tree's namespace (peer_nsid, CRIU's way);
 *   made once, with the first end, by index, name, address and mtu;
 * - bridges: an entry of their own; their ports name them by index
 *   (master, which any device may have);
 * - macvlans on a device outside the namespace (the only kind CRIU makes
 *   again): their mode and flags; made in our namespace on the device
 *   --external macvlan[IN]:DEV names, straight into the tree's;
 * - tun/tap devices: tun_link.c.
 *
 * They are made with ip(8) (nettool.c), in the namespace (net/netns.h). */
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>

#include "net/netns.h"
#include "util/log.h"
#include "util/opts.h"

static const struct rtattr *find_attr(const struct rtattr *a, int len, int type)
{
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == type)
			return a;
	return NULL;
}

bool netns_veth_inside(const NetDeviceEntry *d, uint32_t ns_id)
{
	return d->type == ND_TYPE__VETH && d->has_peer_nsid && d->peer_nsid == ns_id;
}

/* ---- dump ---- */

static int refuse(const struct link_msg *m, const char *why)
{
	pr_err("pid %d: network device %s (%s) of the tree's network namespace: %s; dump with --empty-ns net "
	       "and let the restore's setup-namespaces script make the namespace", m->ns->root, m->name,
	       m->kind ? m->kind : "no kind", why);
	return -1;
}

static int dump_macvlan(const struct link_msg *m, NetDeviceEntry *d)
{
	const struct rtattr *mode = m->data ? find_attr(RTA_DATA(m->data), RTA_PAYLOAD(m->data), IFLA_MACVLAN_MODE) : NULL;
	const struct rtattr *flags = m->data ? find_attr(RTA_DATA(m->data), RTA_PAYLOAD(m->data), IFLA_MACVLAN_FLAGS) : NULL;
	if (!mode)
		return refuse(m, "rtnetlink gave no macvlan mode");
	/* CRIU makes a macvlan again only on a device of its own namespace */
	if (!find_attr(m->a, m->len, IFLA_LINK_NETNSID))
		return refuse(m, "a macvlan on a device inside the namespace (stasis, as CRIU, makes a macvlan "
				 "only on a device outside: --external macvlan[NAME]:DEV at restore)");
	MacvlanLinkEntry *e = calloc(1, sizeof(*e));
	if (!e) {
		pr_err("out of memory listing network devices");
		return -1;
	}
	macvlan_link_entry__init(e);
	e->mode = *(const uint32_t *)RTA_DATA(mode);
	if (flags) {
		e->has_flags = true;
		e->flags = *(const uint16_t *)RTA_DATA(flags);
	}
	d->macvlan = e;
	return 0;
}

int link_dump_kind(const struct link_msg *m, NetDeviceEntry *d)
{
	const char *k = m->kind ? m->kind : "";
	if (!strcmp(k, "veth")) {
		d->type = ND_TYPE__VETH;
		return 0;
	}
	if (!strcmp(k, "bridge")) {
		d->type = ND_TYPE__BRIDGE;
		return 0;
	}
	if (!strcmp(k, "macvlan")) {
		d->type = ND_TYPE__MACVLAN;
		return dump_macvlan(m, d);
	}
	if (!strcmp(k, "tun")) {
		d->type = ND_TYPE__TUN;
		return tun_link_dump(m, d);
	}
	return refuse(m, "stasis saves the loopback, veths, bridges, macvlans and tun/tap devices");
}

void link_kind_free(NetDeviceEntry *d)
{
	free(d->macvlan);
	free(d->tun);
	d->macvlan = NULL;
	d->tun = NULL;
}

/* ---- restore ---- */

const NetDeviceEntry *netns_rst_dev(const struct netns_rst *r, uint32_t ifindex)
{
	for (int i = 0; i < r->nr_dev; i++)
		if (r->dev[i]->ifindex == ifindex)
			return r->dev[i];
	return NULL;
}

/* HOSTDEV from --external macvlan[NAME]:HOSTDEV; NULL if none. */
static const char *macvlan_parent(const struct opts *o, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < o->nr_external; i++) {
		const char *e = o->external[i];
		if (!strncmp(e, "macvlan[", 8) && !strncmp(e + 8, name, n) && !strncmp(e + 8 + n, "]:", 2))
			return e + 8 + n + 2;
	}
	return NULL;
}

static bool ifname_ok(const char *n)
{
	return n && *n && strlen(n) < IFNAMSIZ && !strpbrk(n, "/ :") && strcmp(n, ".") && strcmp(n, "..");
}

int link_check(const struct netns_rst *r, const NetDeviceEntry *d)
{
	switch (d->type) {
	case ND_TYPE__VETH: {
		const NetDeviceEntry *p = netns_rst_dev(r, d->peer_ifindex);
		if (d->has_peer_nsid && d->peer_nsid != r->id) {
			pr_err("network device %s of the tree's namespace is a veth to another namespace of the "
			       "tree (%u): stasis restores one network namespace per tree", d->name, d->peer_nsid);
			return -1;
		}
		if (!p || p->type != ND_TYPE__VETH || p == d || p->peer_ifindex != d->ifindex) {
			pr_err("netdev image: the veth %s has its other end (index %u) inside, but the image has no "
			       "veth there pointing back", d->name, d->peer_ifindex);
			return -1;
		}
		return 0;
	}
	case ND_TYPE__BRIDGE:
		return 0;
	case ND_TYPE__MACVLAN: {
		const char *parent = macvlan_parent(r->o, d->name);
		if (!d->macvlan) {
			pr_err("netdev image: the macvlan %s has no macvlan settings", d->name);
			return -1;
		}
		if (!parent) {
			pr_err("network device %s of the tree's namespace is a macvlan: name the device it goes on "
			       "with --external macvlan[%s]:DEV", d->name, d->name);
			return -1;
		}
		if (!ifname_ok(parent)) {
			pr_err("--external macvlan[%s]:%s: %s is not a device name", d->name, parent, parent);
			return -1;
		}
		return 0;
	}
	case ND_TYPE__TUN:
		if (!d->tun) {
			pr_err("netdev image: the tun device %s has no tun settings", d->name);
			return -1;
		}
		return 0;
	default:
		pr_err("network device %s of the tree's namespace (type %d): stasis makes again the loopback, "
		       "veths, bridges, macvlans and tun/tap devices; restore with --empty-ns net and make it in "
		       "the setup-namespaces script", d->name, d->type);
		return -1;
	}
}

/* "ip link add" of d's own settings: argv[0..n), with the buffers in b. */
struct link_args {
	char *argv[40];
	int n;
	char idx[2][16], mtu[2][16], mac[2][64];
};

static void add(struct link_args *a, char *arg)
{
	if (a->n < (int)(sizeof(a->argv) / sizeof(a->argv[0])) - 1)
		a->argv[a->n++] = arg;
	a->argv[a->n] = NULL;
}

/* name NAME index I mtu M [address A] of d, with buffers of slot s. */
static void add_own(struct link_args *a, const NetDeviceEntry *d, int s)
{
	snprintf(a->idx[s], sizeof(a->idx[s]), "%u", d->ifindex);
	snprintf(a->mtu[s], sizeof(a->mtu[s]), "%u", d->mtu);
	add(a, "name");
	add(a, (char *)d->name);
	add(a, "index");
	add(a, a->idx[s]);
	add(a, "mtu");
	add(a, a->mtu[s]);
	if (!d->has_address || !d->address.len)
		return;
	a->mac[s][0] = '\0';
	for (size_t i = 0; i < d->address.len && i < 20; i++)
		snprintf(a->mac[s] + strlen(a->mac[s]), sizeof(a->mac[s]) - strlen(a->mac[s]), "%s%02x", i ? ":" : "",
			 d->address.data[i]);
	add(a, "address");
	add(a, a->mac[s]);
}

/* Each word of w (NULL-terminated). */
static void add_all(struct link_args *a, const char *const *w)
{
	for (; *w; w++)
		add(a, (char *)*w);
}

/* ip link add with d's own settings, then the words of w. */
static void ip_link_add(struct link_args *a, const NetDeviceEntry *d, const char *const *w)
{
	add_all(a, (const char *const[]){ "ip", "link", "add", NULL });
	add_own(a, d, 0);
	add_all(a, w);
}

/* A veth pair inside: made with its first end, the other then found made. */
static int make_inner_veth(struct netns_rst *r, const NetDeviceEntry *d)
{
	const NetDeviceEntry *p = netns_rst_dev(r, d->peer_ifindex);
	for (int i = 0; i < r->nr_dev && r->dev[i] != d; i++)
		if (r->dev[i] == p)
			return 0;	/* made with p */
	struct link_args a = { .n = 0 };
	ip_link_add(&a, d, (const char *const[]){ "type", "veth", "peer", NULL });
	add_own(&a, p, 1);
	if (net_tool(a.argv, -1, -1, false) < 0) {
		pr_err("can't make the veth pair %s-%s of the tree's network namespace", d->name, p->name);
		return -1;
	}
	pr_info("veth pair %s (index %u) - %s (index %u) made inside", d->name, d->ifindex, p->name, p->ifindex);
	return 0;
}

static int make_bridge(const NetDeviceEntry *d)
{
	struct link_args a = { .n = 0 };
	ip_link_add(&a, d, (const char *const[]){ "type", "bridge", NULL });
	if (net_tool(a.argv, -1, -1, false) < 0) {
		pr_err("can't make the bridge %s of the tree's network namespace", d->name);
		return -1;
	}
	pr_info("bridge %s made (index %u)", d->name, d->ifindex);
	return 0;
}

static const char *macvlan_mode(uint32_t mode)
{
	switch (mode) {
	case MACVLAN_MODE_PRIVATE: return "private";
	case MACVLAN_MODE_VEPA: return "vepa";
	case MACVLAN_MODE_BRIDGE: return "bridge";
	case MACVLAN_MODE_PASSTHRU: return "passthru";
	case MACVLAN_MODE_SOURCE: return "source";
	default: return NULL;
	}
}

/* Made by ip in our namespace, on its parent there, straight into the
 * tree's (this thread's: /proc/TID/ns/net while it lives). */
static int make_macvlan(struct netns_rst *r, const NetDeviceEntry *d)
{
	const char *mode = macvlan_mode(d->macvlan->mode);
	char here[64], host[64];
	if (!mode) {
		pr_err("netdev image: the macvlan %s has an unknown mode %u", d->name, d->macvlan->mode);
		return -1;
	}
	snprintf(here, sizeof(here), "/proc/%d/ns/net", gettid());
	snprintf(host, sizeof(host), "/proc/%d/ns/net", r->host_pid);
	struct link_args a = { .n = 0 };
	ip_link_add(&a, d, (const char *const[]){ "link", macvlan_parent(r->o, d->name), "netns", here, "type",
						  "macvlan", "mode", mode, NULL });
	if (d->macvlan->has_flags && (d->macvlan->flags & MACVLAN_FLAG_NOPROMISC))
		add(&a, "nopromisc");
	if (d->macvlan->has_flags && (d->macvlan->flags & MACVLAN_FLAG_NODST))
		add(&a, "nodst");
	if (net_tool_at(host, a.argv, -1, -1, false) < 0) {
		pr_err("can't make the macvlan %s of the tree's network namespace on %s", d->name,
		       macvlan_parent(r->o, d->name));
		return -1;
	}
	pr_info("macvlan %s made (index %u) on %s, mode %s", d->name, d->ifindex, macvlan_parent(r->o, d->name), mode);
	return 0;
}

int link_make(struct netns_rst *r, const NetDeviceEntry *d)
{
	switch (d->type) {
	case ND_TYPE__VETH:
		return make_inner_veth(r, d);
	case ND_TYPE__BRIDGE:
		return make_bridge(d);
	case ND_TYPE__MACVLAN:
		return make_macvlan(r, d);
	case ND_TYPE__TUN:
		return tun_link_make(d);
	default:
		return -1;	/* refused by link_check */
	}
}

int link_set_master(const struct netns_rst *r, const NetDeviceEntry *d)
{
	if (!d->has_master)
		return 0;
	const NetDeviceEntry *m = netns_rst_dev(r, d->master);
	if (!m) {
		pr_err("netdev image: the device %s has its master %u, which the image has not", d->name, d->master);
		return -1;
	}
	if (net_tool((char *[]){ "ip", "link", "set", "dev", (char *)d->name, "master", (char *)m->name, NULL }, -1,
		     -1, false) < 0) {
		pr_err("can't put the network device %s in %s", d->name, m->name);
		return -1;
	}
	pr_info("network device %s is in %s", d->name, m->name);
	return 0;
}
