/* A tun/tap device of the tree's network namespace (net/netns.h), as
 * CRIU 4.2 saves it (tun_link_entry in its net_device_entry): the flags
 * it was made with (TUNGETIFF), its owner and group (rtnetlink), its
 * vnet header size and send buffer. These are a file's to ask, so the
 * dump takes one attached to the device: a process's of the tree, or,
 * for a persistent device no one holds, its own (attached with the
 * device's own flags: attaching sets them). A tap with a socket filter
 * is refused, as CRIU does (the filter is in the holder's memory).
 *
 * Restore makes it persistent with its index, name, flags, owner and
 * group; the tree's files attach to it then (files/tunfile.c), and the
 * first drops the persistence if it had none. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>

#include "net/netns.h"
#include "util/log.h"

#define TUN_PATH "/dev/net/tun"

static const struct rtattr *tun_attr(const struct link_msg *m, int type)
{
	if (!m->data)
		return NULL;
	const struct rtattr *a = RTA_DATA(m->data);
	int len = RTA_PAYLOAD(m->data);
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == type)
			return a;
	return NULL;
}

static bool tun_flag(const struct link_msg *m, int type)
{
	const struct rtattr *a = tun_attr(m, type);
	return a && *(const uint8_t *)RTA_DATA(a);
}

/* Our fd on fd of pid if it is a file attached to the device name. */
static int tree_fd_on(pid_t pid, int fd, const char *name)
{
	int pfd = syscall(SYS_pidfd_open, pid, 0), our = pfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pfd, fd, 0);
	struct ifreq ifr = { 0 };
	if (pfd >= 0)
		close(pfd);
	if (our >= 0 && (ioctl(our, TUNGETIFF, &ifr) < 0 || strncmp(ifr.ifr_name, name, IFNAMSIZ))) {
		close(our);
		our = -1;
	}
	return our;
}

/* A file of the tree's processes attached to the device; -1 if none. */
static int tree_file_on(const struct netns_dump_arg *ns, const char *name)
{
	for (int i = 0; i < ns->nr_pids; i++) {
		char dir[64], link[PATH_MAX], target[32];
		snprintf(dir, sizeof(dir), "/proc/%d/fd", ns->pids[i]);
		DIR *d = opendir(dir);
		for (struct dirent *e; d && (e = readdir(d));) {
			snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
			ssize_t n = readlink(link, target, sizeof(target) - 1);
			if (n != (ssize_t)strlen(TUN_PATH) || strncmp(target, TUN_PATH, n))
				continue;
			int fd = tree_fd_on(ns->pids[i], atoi(e->d_name), name);
			if (fd >= 0) {
				closedir(d);
				return fd;
			}
		}
		if (d)
			closedir(d);
	}
	return -1;
}

/* Ours, attached to a persistent device with the flags it has. */
static int own_file_on(const struct link_msg *m)
{
	const struct rtattr *type = tun_attr(m, IFLA_TUN_TYPE);
	struct ifreq ifr = { 0 };
	if (!type)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", m->name);
	ifr.ifr_flags = *(const uint8_t *)RTA_DATA(type) | IFF_NOFILTER;
	if (!tun_flag(m, IFLA_TUN_PI))
		ifr.ifr_flags |= IFF_NO_PI;
	if (tun_flag(m, IFLA_TUN_VNET_HDR))
		ifr.ifr_flags |= IFF_VNET_HDR;
	if (tun_flag(m, IFLA_TUN_MULTI_QUEUE))
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	int fd = open(TUN_PATH, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) < 0) {
		pr_perror("can't attach to the persistent tun device %s to read its settings", m->name);
		close(fd);
		return -2;
	}
	return fd;
}

static int32_t owner_of(const struct link_msg *m, int type)
{
	const struct rtattr *a = tun_attr(m, type);
	return a ? (int32_t) * (const uint32_t *)RTA_DATA(a) : -1;
}

static int read_settings(int fd, const struct link_msg *m, TunLinkEntry *t)
{
	struct ifreq ifr = { 0 };
	struct sock_fprog flt = { 0 };
	int vnethdr = 0, sndbuf = 0;
	if (ioctl(fd, TUNGETIFF, &ifr) < 0 || ioctl(fd, TUNGETVNETHDRSZ, &vnethdr) < 0 ||
	    ioctl(fd, TUNGETSNDBUF, &sndbuf) < 0) {
		pr_perror("can't read the settings of the tun device %s", m->name);
		return -1;
	}
	if ((ifr.ifr_flags & IFF_TAP) && ioctl(fd, TUNGETFILTER, &flt) == 0 && flt.len) {
		pr_err("pid %d: the tap device %s of the tree's network namespace has a socket filter, which "
		       "stasis (as CRIU) can't save; dump with --empty-ns net", m->ns->root, m->name);
		return -1;
	}
	/* TUNGETIFF's IFF_NOFILTER (the file has no filter) is IFF_NO_PI's
	 * bit: whether the device has no packet info is rtnetlink's to say */
	t->flags = (uint16_t)ifr.ifr_flags & ~(IFF_DETACH_QUEUE | IFF_NO_PI);
	if (tun_attr(m, IFLA_TUN_PI) ? !tun_flag(m, IFLA_TUN_PI) : (ifr.ifr_flags & IFF_NO_PI))
		t->flags |= IFF_NO_PI;
	t->owner = owner_of(m, IFLA_TUN_OWNER);
	t->group = owner_of(m, IFLA_TUN_GROUP);
	t->vnethdr = vnethdr;
	t->sndbuf = sndbuf;
	return 0;
}

int tun_link_dump(const struct link_msg *m, NetDeviceEntry *d)
{
	int fd = tree_file_on(m->ns, m->name);
	if (fd < 0 && tun_flag(m, IFLA_TUN_PERSIST))
		fd = own_file_on(m);
	if (fd == -2)
		return -1;
	if (fd < 0) {
		pr_err("pid %d: the tun device %s of the tree's network namespace is held by no process of the "
		       "tree and is not persistent; dump with --empty-ns net", m->ns->root, m->name);
		return -1;
	}
	TunLinkEntry *t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		pr_err("out of memory listing network devices");
		return -1;
	}
	tun_link_entry__init(t);
	d->tun = t;
	int ret = read_settings(fd, m, t);
	close(fd);
	if (ret == 0)
		pr_info("tun device %s: flags %#x, owner %d, group %d, vnet header %u, send buffer %u", d->name,
			t->flags, t->owner, t->group, t->vnethdr, t->sndbuf);
	return ret;
}

static int set_hwaddr(int fd, const NetDeviceEntry *d)
{
	struct ifreq ifr = { 0 };
	if (!d->has_address || !(d->tun->flags & IFF_TAP) || d->address.len != 6)
		return 0;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", d->name);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, d->address.data, 6);
	return ioctl(fd, SIOCSIFHWADDR, &ifr);
}

int tun_link_make(const NetDeviceEntry *d)
{
	struct ifreq ifr = { 0 };
	unsigned int idx = d->ifindex;
	int owner = d->tun->owner, group = d->tun->group, sndbuf = d->tun->sndbuf, vnethdr = d->tun->vnethdr;
	int fd = open(TUN_PATH, O_RDWR | O_CLOEXEC);
	const char *what = "open " TUN_PATH;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", d->name);
	ifr.ifr_flags = d->tun->flags & ~IFF_PERSIST;
	if (fd >= 0 && ioctl(fd, TUNSETIFINDEX, &idx) < 0)
		what = "set its index";
	else if (fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) < 0)
		what = "make it";
	else if (fd >= 0 && owner != -1 && ioctl(fd, TUNSETOWNER, owner) < 0)
		what = "set its owner";
	else if (fd >= 0 && group != -1 && ioctl(fd, TUNSETGROUP, group) < 0)
		what = "set its group";
	else if (fd >= 0 && (ioctl(fd, TUNSETSNDBUF, &sndbuf) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &vnethdr) < 0))
		what = "set its send buffer and vnet header size";
	else if (fd >= 0 && set_hwaddr(fd, d) < 0)
		what = "set its address";
	/* persistent until the tree's first file attaches (tunfile.c) */
	else if (fd >= 0 && ioctl(fd, TUNSETPERSIST, 1) < 0)
		what = "make it persistent";
	else if (fd >= 0)
		what = NULL;
	if (what)
		pr_perror("can't %s: the tun device %s (index %u) of the tree's network namespace", what, d->name,
			  d->ifindex);
	else
		pr_info("tun device %s made (index %u, flags %#x)", d->name, d->ifindex, d->tun->flags);
	if (fd >= 0)
		close(fd);
	return what ? -1 : 0;
}
