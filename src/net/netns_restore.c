/* restore of a network namespace (net/netns.h): the images loaded and
 * checked first (every device one stasis makes, every veth's outer end
 * named), then, in the new namespace, as CRIU 4.2: the namespace's
 * sysctls, its devices with theirs, addresses, routes, rules, firewall. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/img.h"
#include "net/netns.h"
#include "net/nft_lib.h"
#include "util/log.h"
#include "util/opts.h"

/* The nftables ruleset image is read whole: bounded. */
#define NFT_MAX (64u << 20)

static bool good_ifname(const char *n)
{
	return n && *n && strlen(n) < IFNAMSIZ && !strchr(n, '/') && !strchr(n, ' ') && strcmp(n, ".") &&
	       strcmp(n, "..");
}

/* OUT[@BRIDGE] for the veth in, from --veth-pair IN=OUT[@BRIDGE] (RPC
 * veths) or --external veth[IN]:OUT[@BRIDGE]; NULL if none names it. */
static const char *outer_of(const struct opts *o, const char *in)
{
	size_t n = strlen(in);
	for (int i = 0; i < o->nr_veth_pairs; i++)
		if (!strncmp(o->veth_pairs[i], in, n) && o->veth_pairs[i][n] == '=')
			return o->veth_pairs[i] + n + 1;
	for (int i = 0; i < o->nr_external; i++) {
		const char *e = o->external[i];
		if (!strncmp(e, "veth[", 5) && !strncmp(e + 5, in, n) && !strncmp(e + 5 + n, "]:", 2))
			return e + 5 + n + 2;
	}
	return NULL;
}

/* The outer name and bridge of a veth, checked; -1 (reported). */
static int split_outer(const char *in, const char *val, char name[IFNAMSIZ], char bridge[IFNAMSIZ])
{
	const char *at = strchr(val, '@');
	size_t n = at ? (size_t)(at - val) : strlen(val);
	bridge[0] = '\0';
	if (n && n < IFNAMSIZ) {
		memcpy(name, val, n);
		name[n] = '\0';
		if (good_ifname(name) && (!at || good_ifname(at + 1))) {
			if (at)
				strcpy(bridge, at + 1);
			return 0;
		}
	}
	pr_err("the outer end %s given for the veth %s is not a device name (OUT or OUT@BRIDGE)", val, in);
	return -1;
}

static int check_dev(const struct netns_rst *r, const NetDeviceEntry *d)
{
	char name[IFNAMSIZ], bridge[IFNAMSIZ];
	if (!good_ifname(d->name)) {
		pr_err("netdev image: a device named '%.20s' is no device name", d->name);
		return -1;
	}
	if (d->has_master && !netns_rst_dev(r, d->master)) {
		pr_err("netdev image: the device %s is in a bridge (index %u) the image has not", d->name, d->master);
		return -1;
	}
	if (d->type == ND_TYPE__LOOPBACK)
		return 0;
	if (d->type != ND_TYPE__VETH || d->has_peer_nsid)
		return link_check(r, d);
	const char *out = outer_of(r->o, d->name);
	if (!out) {
		pr_err("network device %s of the tree's namespace is a veth to the outside: name its outer end "
		       "with --veth-pair %s=NAME[@BRIDGE] (RPC veths, or --external veth[%s]:NAME)",
		       d->name, d->name, d->name);
		return -1;
	}
	return split_outer(d->name, out, name, bridge);
}

int netns_rst_load(int dirfd, uint32_t id, const struct opts *o, struct netns_rst *r)
{
	*r = (struct netns_rst){ .dirfd = dirfd, .id = id, .empty = o->empty_net, .o = o, .host_pid = getpid() };
	if (r->empty)
		return 0;
	char name[IMG_NAME_MAX];
	img_name(name, sizeof(name), IMG_NETDEV, id);
	if (faccessat(dirfd, name, F_OK, 0) < 0) {
		pr_err("the tree has a network namespace of its own, but the images have no %s (a dump with "
		       "--empty-ns net?): restore with --empty-ns net", name);
		return -1;
	}
	if (img_load_all(dirfd, IMG_NETDEV, id, (void ***)&r->dev, &r->nr_dev) < 0 ||
	    img_load_one(dirfd, IMG_NETNS, id, (ProtobufCMessage **)&r->conf) < 0)
		return -1;
	for (int i = 0; i < r->nr_dev; i++)
		if (check_dev(r, r->dev[i]) < 0)
			return -1;
	r->outer = calloc(r->nr_dev ? r->nr_dev : 1, sizeof(*r->outer));
	if (!r->outer) {
		pr_err("out of memory");
		return -1;
	}
	return 0;
}

/* ---- in the new namespace ---- */

static int make_veth(struct netns_rst *r, const NetDeviceEntry *d)
{
	char out[IFNAMSIZ], bridge[IFNAMSIZ], idx[16], mtu[16], mac[64] = "", host[64];
	split_outer(d->name, outer_of(r->o, d->name), out, bridge);
	snprintf(idx, sizeof(idx), "%u", d->ifindex);
	snprintf(mtu, sizeof(mtu), "%u", d->mtu);
	snprintf(host, sizeof(host), "/proc/%d/ns/net", r->host_pid);
	for (size_t i = 0; d->has_address && i < d->address.len && i < 20; i++)
		snprintf(mac + strlen(mac), sizeof(mac) - strlen(mac), "%s%02x", i ? ":" : "", d->address.data[i]);
	char *argv[24] = { "ip", "link", "add", (char *)d->name, "index", idx, "mtu", mtu };
	int n = 8;
	if (*mac) {
		argv[n++] = "address";
		argv[n++] = mac;
	}
	char *tail[] = { "type", "veth", "peer", "name", out, "netns", host, NULL };
	memcpy(argv + n, tail, sizeof(tail));
	if (net_tool(argv, -1, -1, false) < 0) {
		pr_err("can't make the veth %s of the tree's network namespace with its outer end %s", d->name, out);
		return -1;
	}
	strcpy(r->outer[r->nr_outer++], out);
	pr_info("veth %s made (index %u), its outer end %s in our namespace", d->name, d->ifindex, out);
	return 0;
}

static int set_mtu(const NetDeviceEntry *d)
{
	char mtu[16];
	snprintf(mtu, sizeof(mtu), "%u", d->mtu);
	return net_tool((char *[]){ "ip", "link", "set", "dev", (char *)d->name, "mtu", mtu, NULL }, -1, -1, false);
}

/* Its flags as saved (up, noarp, promisc, ...); the kernel leaves out
 * those it keeps itself (running). */
static int set_flags(const NetDeviceEntry *d)
{
	struct ifreq ifr = { 0 };
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", d->name);
	ifr.ifr_flags = d->flags & 0xffff;
	int ret = sk < 0 ? -1 : ioctl(sk, SIOCSIFFLAGS, &ifr);
	if (ret < 0)
		pr_perror("can't set the flags %#x of the network device %s", d->flags, d->name);
	if (sk >= 0)
		close(sk);
	return ret;
}

static bool veth_outside(const NetDeviceEntry *d)
{
	return d->type == ND_TYPE__VETH && !d->has_peer_nsid;
}

/* Every device made, then the ports put in their bridges, then each
 * one's mtu (a bridge's follows its ports'), sysctls and flags. */
static int restore_devices(struct netns_rst *r)
{
	for (int i = 0; i < r->nr_dev; i++) {
		const NetDeviceEntry *d = r->dev[i];
		if (d->type != ND_TYPE__LOOPBACK && (veth_outside(d) ? make_veth(r, d) : link_make(r, d)) < 0)
			return -1;
	}
	for (int i = 0; i < r->nr_dev; i++)
		if (link_set_master(r, r->dev[i]) < 0)
			return -1;
	for (int i = 0; i < r->nr_dev; i++)
		if (set_mtu(r->dev[i]) < 0 || netns_dev_conf_restore(r->dev[i]) < 0 || set_flags(r->dev[i]) < 0)
			return -1;
	return 0;
}

/* A raw image as a tool's stdin: its fd, or -1 with *empty when there is
 * none or it is empty (nothing to restore). */
static int open_raw(struct netns_rst *r, enum img_kind kind, bool *empty)
{
	struct img img;
	struct stat st;
	*empty = false;
	if (img_open(r->dirfd, &img, kind, r->id) < 0) {
		*empty = errno == ENOENT;
		return -1;
	}
	if (fstat(img.fd, &st) < 0 || st.st_size == 0) {
		*empty = true;
		img_close(&img);
		return -1;
	}
	return img.fd;
}

static int from_image(struct netns_rst *r, enum img_kind kind, char *const argv[])
{
	bool empty;
	int fd = open_raw(r, kind, &empty);
	if (fd < 0)
		return empty ? 0 : -1;
	int ret = net_tool(argv, fd, -1, false);
	close(fd);
	if (ret < 0) {
		char name[IMG_NAME_MAX];
		img_name(name, sizeof(name), kind, r->id);
		pr_err("can't restore %s of the tree's network namespace", name);
	}
	return ret;
}

static int restore_rules(struct netns_rst *r)
{
	char name[IMG_NAME_MAX];
	img_name(name, sizeof(name), IMG_RULE, r->id);
	if (faccessat(r->dirfd, name, F_OK, 0) < 0)
		return 0;
	/* the kernel's three default rules are in the image too (CRIU's way) */
	net_tool((char *[]){ "ip", "rule", "flush", NULL }, -1, -1, true);
	net_tool((char *[]){ "ip", "rule", "delete", "table", "local", NULL }, -1, -1, true);
	return from_image(r, IMG_RULE, (char *[]){ "ip", "rule", "restore", NULL });
}

static int restore_iptables(struct netns_rst *r, bool v6)
{
	bool empty;
	enum img_kind kind = v6 ? IMG_IP6TABLES : IMG_IPTABLES;
	int fd = open_raw(r, kind, &empty);
	if (fd < 0)
		return empty ? 0 : -1;
	const char *tool = netns_legacy_tool(v6, true);
	int ret = -1;
	if (!tool)
		pr_err("the tree's network namespace has legacy %s rules, and there is no legacy "
		       "%s-restore here", v6 ? "ip6tables" : "iptables", v6 ? "ip6tables" : "iptables");
	else
		ret = net_tool((char *[]){ (char *)tool, "-w", NULL }, fd, -1, false);
	close(fd);
	return ret;
}

static int restore_nftables(struct netns_rst *r)
{
	bool empty;
	struct stat st;
	int fd = open_raw(r, IMG_NFTABLES, &empty);
	if (fd < 0)
		return empty ? 0 : -1;
	char *buf = NULL;
	int ret = -1;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > NFT_MAX)
		pr_err("the nftables image of the tree's network namespace is over %u bytes", NFT_MAX);
	else if (!(buf = calloc(1, st.st_size + 1)) || pread(fd, buf, st.st_size, 0) != st.st_size)
		pr_perror("can't read the nftables image");
	else
		ret = 0;
	close(fd);
	const struct nft_lib *L = ret == 0 ? nft_lib("the nftables ruleset of a network namespace", false) : NULL;
	struct nft_ctx *nft = L ? L->ctx_new(NFT_CTX_DEFAULT) : NULL;
	if (!L) {
		ret = -1;
	} else if (nft) {
		L->ctx_buffer_output(nft);
		L->ctx_buffer_error(nft);
		if (L->run_cmd_from_buffer(nft, buf)) {
			pr_err("can't restore the nftables ruleset of the tree's network namespace: %s",
			       L->ctx_get_error_buffer(nft));
			ret = -1;
		}
		L->ctx_free(nft);
	} else if (ret == 0) {
		pr_err("can't make an nftables context");
		ret = -1;
	}
	free(buf);
	return ret;
}

int netns_rst_fill_in(void *arg)
{
	struct netns_rst *r = arg;
	bool v6 = access("/proc/sys/net/ipv6/conf/all", F_OK) == 0;
	if (r->empty)
		return 0;	/* the setup-namespaces script's */
	if (netns_conf_restore(r->conf) < 0 || restore_devices(r) < 0)
		return -1;
	if (from_image(r, IMG_IFADDR, (char *[]){ "ip", "addr", "restore", NULL }) < 0 ||
	    from_image(r, IMG_ROUTE, (char *[]){ "ip", "route", "restore", NULL }) < 0 ||
	    from_image(r, IMG_ROUTE6, (char *[]){ "ip", "route", "restore", NULL }) < 0 || restore_rules(r) < 0)
		return -1;
	if (restore_iptables(r, false) < 0 || (v6 && restore_iptables(r, true) < 0) || restore_nftables(r) < 0 ||
	    netns_ct_restore(r->dirfd, r->id) < 0)
		return -1;
	pr_info("the tree's network namespace is made: %d devices", r->nr_dev);
	return 0;
}

/* ---- in ours ---- */

int netns_rst_bridges(struct netns_rst *r)
{
	char out[IFNAMSIZ], bridge[IFNAMSIZ];
	for (int i = 0; i < r->nr_dev; i++) {
		const NetDeviceEntry *d = r->dev[i];
		if (!veth_outside(d))
			continue;
		split_outer(d->name, outer_of(r->o, d->name), out, bridge);
		if (!*bridge)
			continue;
		if (net_tool((char *[]){ "ip", "link", "set", "dev", out, "master", bridge, "up", NULL }, -1, -1,
			     false) < 0) {
			pr_err("can't put the outer end %s of the veth %s in the bridge %s", out, d->name, bridge);
			return -1;
		}
		pr_info("veth %s: its outer end %s is in the bridge %s", d->name, out, bridge);
	}
	return 0;
}

void netns_rst_undo(struct netns_rst *r)
{
	for (int i = 0; i < r->nr_outer; i++)
		if (net_tool((char *[]){ "ip", "link", "delete", "dev", r->outer[i], NULL }, -1, -1, true) == 0)
			pr_info("the outer end %s of a veth of the failed restore is deleted", r->outer[i]);
	r->nr_outer = 0;
}

void netns_rst_free(struct netns_rst *r)
{
	for (int i = 0; i < r->nr_dev; i++)
		img_free(r->dev[i]);
	free(r->dev);
	if (r->conf)
		img_free(r->conf);
	free(r->outer);
	r->dev = NULL;
	r->conf = NULL;
	r->outer = NULL;
	r->nr_dev = r->nr_outer = 0;
}
