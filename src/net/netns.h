/* A network namespace the tree has of its own, saved and made again as
 * CRIU 4.2 does it (its images: netdev-ID.img, netns-ID.img, and the raw
 * output of the tools CRIU runs: ifaddr-, route-, route6-, rule-,
 * iptables-, ip6tables-, nftables-ID.img).
 *
 * Devices: the loopback (its flags and mtu), and veths whose other end is
 * outside the namespace (the tree's link to the world: made again with
 * the outer end in the restorer's namespace, named by --veth-pair IN=OUT
 * or --external veth[IN]:OUT, put in a bridge by @BRIDGE). Any other
 * device is refused at dump, by name. Then the namespace's and each
 * device's sysctls (CRIU's lists, in its order), addresses, routes and
 * rules (ip save/restore), and firewall: the legacy iptables (when the
 * iptables tools are nft ones, the legacy ones, as CRIU) and the nftables
 * ruleset (which holds what iptables-nft made).
 *
 * The functions marked "in the namespace" run in a thread that joined
 * it (ns/ns.c's ns_in_thread): what they open, fork or ask the kernel is
 * the namespace's. */
#ifndef STASIS_NET_NETNS_H
#define STASIS_NET_NETNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/rtnetlink.h>

#include "netdev.pb-c.h"

struct opts;

struct netns_dump_arg {
	int dirfd;
	uint32_t id;		/* the namespace's id: the images' names */
	pid_t root;		/* for messages */
	const pid_t *pids;	/* the tree's processes (the fds on tun devices) */
	int nr_pids;
};

/* One device as rtnetlink lists it, for the kinds' dump (links.c,
 * tun_link.c). */
struct link_msg {
	const struct netns_dump_arg *ns;
	const struct ifinfomsg *ifi;
	const struct rtattr *a;		/* its attributes */
	int len;
	const char *name;
	const char *kind;		/* IFLA_INFO_KIND; NULL: none */
	const struct rtattr *data;	/* IFLA_INFO_DATA; NULL: none */
};

/* dump, in the namespace: its devices (refusing those stasis can't make
 * again), sysctls, addresses, routes, rules and firewall. 0 or -1
 * (reported). */
int netns_dump_in(void *arg);

/* restore: what the images say, loaded and checked before anything is
 * made. */
struct netns_rst {
	int dirfd;
	uint32_t id;
	bool empty;		/* --empty-ns net: made empty, for the scripts */
	NetDeviceEntry **dev;
	int nr_dev;
	NetnsEntry *conf;
	const struct opts *o;
	pid_t host_pid;		/* whose namespace the outer ends go to: ours */
	/* the outer ends of veths made so far, to delete if the restore fails */
	char (*outer)[16];
	int nr_outer;
};

/* Loads netdev- and netns-ID.img and finds each veth's outer name. */
int netns_rst_load(int dirfd, uint32_t id, const struct opts *o, struct netns_rst *r);
/* In the new namespace: devices, sysctls, addresses, routes, rules,
 * firewall (nothing for an empty one). */
int netns_rst_fill_in(void *r);
/* In ours, after netns_rst_fill_in: the outer ends into their bridges. */
int netns_rst_bridges(struct netns_rst *r);
/* After a failed restore: the outer ends made are deleted. */
void netns_rst_undo(struct netns_rst *r);
void netns_rst_free(struct netns_rst *r);

/* links.c: the kind of the device for the image (d->type) and what the
 * image holds of that kind (a macvlan's mode, a sit's tunnel); -1
 * (reported, naming the device and --empty-ns net): one stasis can't
 * make again. */
int link_dump_kind(const struct link_msg *m, NetDeviceEntry *d);
/* What link_dump_kind allocated in d. */
void link_kind_free(NetDeviceEntry *d);
/* restore: a device of the images other than the loopback and the veths
 * to the outside checked before anything is made (0, or -1 reported);
 * made in the new namespace (its index, name, address, mtu; a veth pair
 * inside made once, with its first end); put in its bridge (after all
 * are made). */
int link_check(const struct netns_rst *r, const NetDeviceEntry *d);
int link_make(struct netns_rst *r, const NetDeviceEntry *d);
int link_set_master(const struct netns_rst *r, const NetDeviceEntry *d);
/* The device of the images with that index; NULL if none. */
const NetDeviceEntry *netns_rst_dev(const struct netns_rst *r, uint32_t ifindex);
/* A veth with both ends in the tree's namespace (CRIU: its peer's
 * namespace is the tree's). */
bool netns_veth_inside(const NetDeviceEntry *d, uint32_t ns_id);

/* tun_link.c: a tun/tap device's settings (flags, owner, group, vnet
 * header size, send buffer), read through a file attached to it (the
 * tree's, or ours on a persistent device no one holds); made again
 * persistent, for the tree's files to attach to (files/tunfile.c). */
int tun_link_dump(const struct link_msg *m, NetDeviceEntry *d);
int tun_link_make(const NetDeviceEntry *d);

/* conntrack.c, in the namespace: its conntrack entries and expectations
 * (netns-ct-, netns-exp-ID.img, raw ctnetlink messages as CRIU writes
 * them) saved, and made again. 0 or -1 (reported). */
int netns_ct_dump(int dirfd, uint32_t id);
int netns_ct_restore(int dirfd, uint32_t id);

/* nettool.c: runs argv (found in PATH) with in as stdin and out as
 * stdout (-1: /dev/null), in the network namespace of the calling
 * thread; 0 if it exited 0, else -1 (reported unless quiet). */
int net_tool(char *const argv[], int in, int out, bool quiet);
/* The same in the network namespace of netns (a path: /proc/PID/ns/net). */
int net_tool_at(const char *netns, char *const argv[], int in, int out, bool quiet);

/* netns_dump.c: the iptables tool CRIU runs (save or restore, IPv4 or
 * IPv6): the legacy one, or NULL if there is none. */
const char *netns_legacy_tool(bool v6, bool restore);

/* netns_conf.c: the sysctls CRIU saves. */
int netns_conf_dump(NetnsEntry *ne);
int netns_dev_conf_dump(NetDeviceEntry *nde);
int netns_conf_restore(const NetnsEntry *ne);
int netns_dev_conf_restore(const NetDeviceEntry *nde);
void netns_conf_free(SysctlEntry **e, size_t n);

#endif
