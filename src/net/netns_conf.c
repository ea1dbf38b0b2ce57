/* The sysctls of a network namespace CRIU 4.2 saves: net/ipv4/conf and
 * net/ipv6/conf of "all", "default" and each device, net/unix's
 * max_dgram_qlen, net/ipv4's ping_group_range. An image holds a device's
 * in a list whose n-th entry is the n-th name below (CRIU's order: the
 * lists are part of the format); an entry without a value is a sysctl
 * the dumping kernel lacked. Run in the namespace (net/netns.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/netns.h"
#include "util/log.h"

static const char *const conf4[] = {
	"accept_local", "accept_redirects", "accept_source_route", "arp_accept", "arp_announce",
	"arp_filter", "arp_ignore", "arp_notify", "bootp_relay", "disable_policy", "disable_xfrm",
	"force_igmp_version", "forwarding", "igmpv2_unsolicited_report_interval",
	"igmpv3_unsolicited_report_interval", "log_martians", "medium_id", "promote_secondaries",
	"proxy_arp", "proxy_arp_pvlan", "route_localnet", "rp_filter", "secure_redirects",
	"send_redirects", "shared_media", "src_valid_mark", "tag", "ignore_routes_with_linkdown",
	"drop_gratuitous_arp", "drop_unicast_in_l2_multicast",
};

static const char *const conf6[] = {
	"accept_dad", "accept_ra", "accept_ra_defrtr", "accept_ra_from_local", "accept_ra_min_hop_limit",
	"accept_ra_mtu", "accept_ra_pinfo", "accept_ra_rt_info_max_plen", "accept_ra_rtr_pref",
	"accept_redirects", "accept_source_route", "autoconf", "dad_transmits", "disable_ipv6",
	"drop_unicast_in_l2_multicast", "drop_unsolicited_na", "force_mld_version", "force_tllao",
	"forwarding", "hop_limit", "ignore_routes_with_linkdown", "keep_addr_on_down", "max_addresses",
	"max_desync_factor", "mldv1_unsolicited_report_interval", "mldv2_unsolicited_report_interval",
	"mtu", "ndisc_notify", "optimistic_dad", "proxy_ndp", "regen_max_retry", "router_probe_interval",
	"router_solicitation_delay", "router_solicitation_interval", "router_solicitations",
	"stable_secret", "suppress_frag_ndisc", "temp_prefered_lft", "temp_valid_lft",
	"use_oif_addrs_only", "use_optimistic", "use_tempaddr",
};

#define N4 (sizeof(conf4) / sizeof(conf4[0]))
#define N6 (sizeof(conf6) / sizeof(conf6[0]))

/* The value of /proc/sys/PATH without its newline; -1 if it has none
 * (errno: ENOENT a sysctl this kernel lacks, EIO an unset secret). */
static int read_sysctl(const char *path, char *buf, size_t len)
{
	char full[256];
	snprintf(full, sizeof(full), "/proc/sys/%s", path);
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return 0;
}

static int write_sysctl(const char *path, const char *val)
{
	char full[256];
	snprintf(full, sizeof(full), "/proc/sys/%s", path);
	int fd = open(full, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't open %s to restore it", full);
		return -1;
	}
	ssize_t n = write(fd, val, strlen(val));
	if (n < 0)
		pr_perror("can't write %s to %s", val, full);
	close(fd);
	return n < 0 ? -1 : 0;
}

static SysctlEntry *entry_read(const char *path, bool str)
{
	char buf[256];
	SysctlEntry *e = malloc(sizeof(*e));
	if (!e)
		return NULL;
	sysctl_entry__init(e);
	e->type = str ? SYSCTL_TYPE__CTL_STR : SYSCTL_TYPE__CTL_32;
	if (read_sysctl(path, buf, sizeof(buf)) < 0)
		return e;	/* none here: an entry without a value */
	if (str) {
		e->sarg = strdup(buf);
		if (!e->sarg) {
			free(e);
			return NULL;
		}
	} else {
		e->has_iarg = true;
		e->iarg = (int32_t)strtol(buf, NULL, 10);
	}
	return e;
}

/* The names' values under dir (net/ipv4/conf/NAME) into a new list. */
static int list_read(const char *dir, const char *const *names, size_t n, SysctlEntry ***out, size_t *nr)
{
	char path[160];
	*out = calloc(n, sizeof(**out));
	*nr = 0;
	if (!*out)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		(*out)[i] = entry_read(path, !strcmp(names[i], "stable_secret"));
		if (!(*out)[i])
			goto oom;
		*nr = i + 1;
	}
	return 0;
oom:
	pr_err("out of memory reading the sysctls of %s", dir);
	return -1;
}

void netns_conf_free(SysctlEntry **e, size_t n)
{
	for (size_t i = 0; i < n && e; i++) {
		if (e[i])
			free(e[i]->sarg);
		free(e[i]);
	}
	free(e);
}

/* Writes what differs from the namespace's value: a value that is
 * already there (a default, a read-only one) is not written again.
 * accept_redirects goes last (CRIU's order: after forwarding, which
 * resets it). */
static int write_one(const char *dir, const char *name, const SysctlEntry *e)
{
	char path[160], cur[256], val[256];
	if (e->type == SYSCTL_TYPE__CTL_STR && e->sarg)
		snprintf(val, sizeof(val), "%s", e->sarg);
	else if (e->type == SYSCTL_TYPE__CTL_32 && e->has_iarg)
		snprintf(val, sizeof(val), "%d", e->iarg);
	else
		return 0;	/* the dumping kernel had none */
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_sysctl(path, cur, sizeof(cur)) == 0 && !strcmp(cur, val))
		return 0;
	return write_sysctl(path, val);
}

static int list_write(const char *dir, const char *const *names, size_t n, SysctlEntry **e, size_t nr)
{
	int last = -1;
	if (nr > n)
		pr_warn("%s: %zu sysctls in the image, stasis knows %zu: the others are left", dir, nr, n);
	for (size_t i = 0; i < nr && i < n; i++) {
		if (!strcmp(names[i], "accept_redirects")) {
			last = i;
			continue;
		}
		if (write_one(dir, names[i], e[i]) < 0)
			return -1;
	}
	return last < 0 ? 0 : write_one(dir, names[last], e[last]);
}

static bool have_ipv6(void)
{
	return access("/proc/sys/net/ipv6/conf/all", F_OK) == 0;
}

int netns_dev_conf_dump(NetDeviceEntry *nde)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "net/ipv4/conf/%s", nde->name);
	if (list_read(dir, conf4, N4, &nde->conf4, &nde->n_conf4) < 0)
		return -1;
	if (!have_ipv6())
		return 0;
	snprintf(dir, sizeof(dir), "net/ipv6/conf/%s", nde->name);
	return list_read(dir, conf6, N6, &nde->conf6, &nde->n_conf6);
}

int netns_conf_dump(NetnsEntry *ne)
{
	static const char *const unix_names[] = { "max_dgram_qlen" };

	if (list_read("net/ipv4/conf/all", conf4, N4, &ne->all_conf4, &ne->n_all_conf4) < 0 ||
	    list_read("net/ipv4/conf/default", conf4, N4, &ne->def_conf4, &ne->n_def_conf4) < 0 ||
	    list_read("net/unix", unix_names, 1, &ne->unix_conf, &ne->n_unix_conf) < 0)
		return -1;
	/* ping_group_range is a string: two numbers */
	ne->ipv4_sysctl = calloc(1, sizeof(*ne->ipv4_sysctl));
	if (!ne->ipv4_sysctl || !(ne->ipv4_sysctl[0] = entry_read("net/ipv4/ping_group_range", true))) {
		pr_err("out of memory reading net/ipv4/ping_group_range");
		return -1;
	}
	ne->n_ipv4_sysctl = 1;
	if (!have_ipv6())
		return 0;
	return list_read("net/ipv6/conf/all", conf6, N6, &ne->all_conf6, &ne->n_all_conf6) < 0 ||
	       list_read("net/ipv6/conf/default", conf6, N6, &ne->def_conf6, &ne->n_def_conf6) < 0 ? -1 : 0;
}

int netns_conf_restore(const NetnsEntry *ne)
{
	static const char *const unix_names[] = { "max_dgram_qlen" };
	static const char *const ipv4_names[] = { "ping_group_range" };

	if (list_write("net/ipv4/conf/all", conf4, N4, ne->all_conf4, ne->n_all_conf4) < 0 ||
	    list_write("net/ipv4/conf/default", conf4, N4, ne->def_conf4, ne->n_def_conf4) < 0 ||
	    list_write("net/unix", unix_names, 1, ne->unix_conf, ne->n_unix_conf) < 0 ||
	    list_write("net/ipv4", ipv4_names, 1, ne->ipv4_sysctl, ne->n_ipv4_sysctl) < 0)
		return -1;
	if (!have_ipv6())
		return 0;
	return list_write("net/ipv6/conf/all", conf6, N6, ne->all_conf6, ne->n_all_conf6) < 0 ||
	       list_write("net/ipv6/conf/default", conf6, N6, ne->def_conf6, ne->n_def_conf6) < 0 ? -1 : 0;
}

int netns_dev_conf_restore(const NetDeviceEntry *nde)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "net/ipv4/conf/%s", nde->name);
	if (list_write(dir, conf4, N4, nde->conf4, nde->n_conf4) < 0)
		return -1;
	if (!have_ipv6())
		return 0;
	snprintf(dir, sizeof(dir), "net/ipv6/conf/%s", nde->name);
	return list_write(dir, conf6, N6, nde->conf6, nde->n_conf6);
}
