/* The network lock (see netlock.h): nftables through libnftables, whose
 * commands for one lock go as one batch (all or nothing); iptables by
 * running iptables-restore / iptables as CRIU does. The rules are
 * CRIU 4.2's, so that either tool unlocks what the other locked. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>


#include "net/netlock.h"
#include "net/nft_lib.h"
#include "util/log.h"

#define MARK_STR "0xC114"	/* NETLOCK_MARK, as the rules spell it */

int netlock_parse(const char *name, enum netlock_method *m)
{
	if (!strcmp(name, "iptables"))
		*m = NETLOCK_IPTABLES;
	else if (!strcmp(name, "nftables"))
		*m = NETLOCK_NFTABLES;
	else if (!strcmp(name, "skip") || !strcmp(name, "none"))
		*m = NETLOCK_SKIP;
	else
		return -1;
	return 0;
}

const char *netlock_name(enum netlock_method m)
{
	switch (m) {
	case NETLOCK_IPTABLES: return "iptables";
	case NETLOCK_NFTABLES: return "nftables";
	case NETLOCK_SKIP: return "skip";
	}
	return "?";
}

int netlock_new_run_id(char *buf)
{
	int fd = open("/proc/sys/kernel/random/uuid", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, NETLOCK_RUN_ID_LEN - 1);
	if (fd >= 0)
		close(fd);
	if (n != NETLOCK_RUN_ID_LEN - 1) {
		pr_perror("can't make a run id (/proc/sys/kernel/random/uuid)");
		return -1;
	}
	buf[n] = '\0';
	return 0;
}

/* ---- running in the tree's network namespace ---- */

/* setns of this thread only (CLONE_NEWNET is per thread), back after. */
static int netns_enter(pid_t pid, int *back)
{
	char path[64];
	*back = -1;
	if (!pid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	*back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || *back < 0 || setns(fd, CLONE_NEWNET) < 0) {
		pr_perror("can't enter the network namespace of pid %d to lock it", pid);
		if (fd >= 0)
			close(fd);
		if (*back >= 0)
			close(*back);
		*back = -1;
		return -1;
	}
	close(fd);
	return 0;
}

static int netns_leave(int back)
{
	if (back < 0)
		return 0;
	int ret = setns(back, CLONE_NEWNET);
	if (ret < 0)
		pr_perror("can't return to our network namespace");
	close(back);
	return ret;
}

/* ---- nftables ---- */

static int nft_run(const char *cmds, bool quiet_missing)
{
	const struct nft_lib *L = nft_lib("the nftables network lock", quiet_missing);
	if (!L)
		return -1;
	struct nft_ctx *nft = L->ctx_new(NFT_CTX_DEFAULT);
	if (!nft) {
		pr_err("can't make an nftables context");
		return -1;
	}
	L->ctx_buffer_output(nft);
	L->ctx_buffer_error(nft);
	int ret = L->run_cmd_from_buffer(nft, cmds);
	if (ret) {
		const char *e = L->ctx_get_error_buffer(nft);
		if (quiet_missing)
			pr_info("nft: %s", e);
		else
			pr_err("nft failed: %s(commands: %s)", e, cmds);
	} else
		pr_debug("nft: %s", cmds);
	L->ctx_free(nft);
	return ret ? -1 : 0;
}

#define TABLE "%s"

/* CRIU 4.2 makes the name in a char[32]: "inet CRIU-" and the first 21
 * characters of the run id. The same cut here, so that either tool
 * lifts the other's lock. */
struct table_name { char s[32]; };

static struct table_name table_of(const char *run_id)
{
	struct table_name t;
	snprintf(t.s, sizeof(t.s), "inet CRIU-%.21s", run_id);
	return t;
}

/* The whole namespace: everything dropped but the marked. */
static int nft_lock_netns(const struct netlock *nl)
{
	char cmds[1024];
	struct table_name t = table_of(nl->run_id);
	const char *id = t.s;
	snprintf(cmds, sizeof(cmds),
		 "create table " TABLE "\n"
		 "add chain " TABLE " output { type filter hook output priority 0; policy drop; }\n"
		 "add rule " TABLE " output meta mark " MARK_STR " accept\n"
		 "add chain " TABLE " input { type filter hook input priority 0; policy drop; }\n"
		 "add rule " TABLE " input meta mark " MARK_STR " accept\n",
		 id, id, id, id, id);
	return nft_run(cmds, false);
}

/* Host mode: a table whose sets the connections are added to. */
static int nft_lock_host(const struct netlock *nl)
{
	char cmds[2048];
	struct table_name t = table_of(nl->run_id);
	const char *id = t.s;
	snprintf(cmds, sizeof(cmds),
		 "create table " TABLE "\n"
		 "add chain " TABLE " output { type filter hook output priority 0; }\n"
		 "add rule " TABLE " output meta mark " MARK_STR " accept\n"
		 "add chain " TABLE " input { type filter hook input priority 0; }\n"
		 "add rule " TABLE " input meta mark " MARK_STR " accept\n"
		 "add set " TABLE " conns4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }\n"
		 "add rule " TABLE " output ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop\n"
		 "add rule " TABLE " input ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop\n"
		 "add set " TABLE " conns6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }\n"
		 "add rule " TABLE " output ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop\n"
		 "add rule " TABLE " input ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop\n",
		 id, id, id, id, id, id, id, id, id, id, id);
	return nft_run(cmds, false);
}

static int nft_unlock(const struct netlock *nl)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "delete table " TABLE, table_of(nl->run_id).s);
	return nft_run(cmd, nl->gone_ok);
}

bool netlock_nft_works(void)
{
	char cmds[512], id[32];
	snprintf(id, sizeof(id), "inet CRIU-check-%d", getpid());
	snprintf(cmds, sizeof(cmds),
		 "create table " TABLE "\n"
		 "add set " TABLE " conn { type ipv4_addr . inet_service; }\n", id, id);
	if (nft_run(cmds, true) < 0)
		return false;
	snprintf(cmds, sizeof(cmds), "delete table " TABLE, id);
	nft_run(cmds, false);
	return true;
}

/* ---- iptables ---- */

/* Runs argv (a tool found in PATH, as CRIU runs it) with in on its
 * stdin (NULL: /dev/null); its stdout goes to /dev/null, its stderr is
 * ours (quiet: /dev/null too, and a failure is not said). In the netns of
 * the calling thread. The input is in a memfd,
 * whole, before the tool starts: a tool that dies early can't leave us
 * writing to a pipe nobody reads, and the rules of a thousand
 * connections are more than a pipe holds. */
static int run_tool_quiet(char *const argv[], const char *in, bool quiet)
{
	int infd = -1;
	if (in) {
		size_t len = strlen(in), off = 0;
		infd = memfd_create("stasis-netlock", MFD_CLOEXEC);
		while (infd >= 0 && off < len) {
			ssize_t n = write(infd, in + off, len - off);
			if (n <= 0)
				break;
			off += n;
		}
		if (infd < 0 || off < len || lseek(infd, 0, SEEK_SET) < 0) {
			pr_perror("can't pass its input to %s", argv[0]);
			if (infd >= 0)
				close(infd);
			return -1;
		}
	}
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(in ? infd : null, 0);
		dup2(null, 1);
		if (quiet)
			dup2(null, 2);
		execvp(argv[0], argv);
		fprintf(stderr, "Error: can't run %s: %m\n", argv[0]);
		_exit(127);
	}
	if (in)
		close(infd);
	if (pid < 0) {
		pr_perror("can't run %s", argv[0]);
		return -1;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			pr_perror("can't wait for %s", argv[0]);
			return -1;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (!quiet)
			pr_err("%s failed (status 0x%x)", argv[0], status);
		return -1;
	}
	return 0;
}

static int run_tool(char *const argv[], const char *in)
{
	return run_tool_quiet(argv, in, false);
}

static bool have_ipv6(void)
{
	return access("/proc/thread-self/net/if_inet6", F_OK) == 0;	/* in the namespace we are in */
}

static int iptables_restore(const char *conf)
{
	char *v4[] = { "iptables-restore", "-w", "--noflush", NULL };
	char *v6[] = { "ip6tables-restore", "-w", "--noflush", NULL };
	int ret = run_tool(v4, conf);
	if (have_ipv6() && run_tool(v6, conf) < 0)
		ret = -1;
	return ret;
}

/* The whole namespace: a chain CRIU, jumped to from INPUT and OUTPUT. */
static int ipt_lock_netns(void)
{
	int ret = iptables_restore("*filter\n"
				   ":CRIU - [0:0]\n"
				   "-I INPUT -j CRIU\n"
				   "-I OUTPUT -j CRIU\n"
				   "-A CRIU -m mark --mark " MARK_STR " -j ACCEPT\n"
				   "-A CRIU -j DROP\n"
				   "COMMIT\n");
	if (ret < 0)
		pr_err("locking the network with iptables-restore failed (does the kernel have "
		       "CONFIG_NETFILTER_XT_MARK?)");
	return ret;
}

static int ipt_unlock_netns(void)
{
	static const char jumps[] = "*filter\n:CRIU - [0:0]\n-D INPUT -j CRIU\n-D OUTPUT -j CRIU\nCOMMIT\n";
	return iptables_restore(jumps) | iptables_restore("*filter\n:CRIU - [0:0]\n-X CRIU\nCOMMIT\n");
}

/* Is the namespace lock's chain there (in the namespace we are in)? */
static bool ipt_netns_locked(void)
{
	char *argv[] = { "iptables", "-w", "-n", "-L", "CRIU", NULL };
	return run_tool_quiet(argv, NULL, true) == 0;
}

/* What `bin -V` says: 1 an iptables of the legacy (x_tables) kind, 0 one
 * of nf_tables, -1 none that runs. */
static int ipt_is_legacy(const char *bin)
{
	char buf[128];
	int pfd[2];
	ssize_t n = 0, r;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(null, 2);
		execlp(bin, bin, "-V", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (pid > 0 && n < (ssize_t)sizeof(buf) - 1 && (r = read(pfd[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += r;
	close(pfd[0]);
	int status = 0;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	buf[n] = '\0';
	return strstr(buf, "nf_tables") ? 0 : 1;
}

/* check --feature has_ipt_legacy, CRIU's way: iptables-save (else
 * iptables-legacy-save) of the legacy kind, and the same for ip6tables
 * where there is IPv6. */
bool netlock_ipt_legacy(void)
{
	if (ipt_is_legacy("iptables-save") != 1 && ipt_is_legacy("iptables-legacy-save") != 1)
		return false;
	return !have_ipv6() || ipt_is_legacy("ip6tables-save") == 1 || ipt_is_legacy("ip6tables-legacy-save") == 1;
}

/* One direction of a connection: packets from src:sport to dst:dport on
 * chain, dropped unless marked. */
static int ipt_conn_rule(int family, const char *src, uint16_t sport, const char *dst, uint16_t dport,
			 const char *chain, bool lock)
{
	char sp[8], dp[8];
	snprintf(sp, sizeof(sp), "%u", sport);
	snprintf(dp, sizeof(dp), "%u", dport);
	char *argv[] = { family == AF_INET ? "iptables" : "ip6tables", "-w", "-t", "filter", lock ? "-I" : "-D",
			 (char *)chain, "--protocol", "tcp", "-m", "mark", "!", "--mark", MARK_STR,
			 "--source", (char *)src, "--sport", sp, "--destination", (char *)dst, "--dport", dp,
			 "-j", "DROP", NULL };
	return run_tool(argv, NULL);
}

/* ---- the interface ---- */

static bool needs_privilege(const struct netlock *nl, const char *what)
{
	if (!nl->unprivileged)
		return false;
	pr_err("the network lock (%s) changes the network's filters, which a client without root can't: "
	       "dump with --network-lock skip", what);
	return true;
}

int netlock_lock(struct netlock *nl)
{
	int back, ret = 0;
	if (nl->method == NETLOCK_SKIP)
		return 0;
	/* host mode with iptables: nothing until a connection is dumped */
	if (!nl->netns_pid && nl->method == NETLOCK_IPTABLES)
		return 0;
	if (needs_privilege(nl, netlock_name(nl->method)))
		return -1;
	/* loaded from our own mount namespace, before entering the tree's */
	if (nl->method == NETLOCK_NFTABLES && !nft_lib("the nftables network lock", false))
		return -1;
	if (netns_enter(nl->netns_pid, &back) < 0)
		return -1;
	if (nl->method == NETLOCK_NFTABLES)
		ret = nl->netns_pid ? nft_lock_netns(nl) : nft_lock_host(nl);	/* one batch: all or nothing */
	else if ((ret = ipt_lock_netns()) < 0)
		ipt_unlock_netns();	/* IPv4's may be in while IPv6's failed */
	nl->locked = ret == 0;	/* in place, for netlock_unlock, whatever follows */
	if (netns_leave(back) < 0)
		ret = -1;
	if (ret < 0) {
		pr_err("locking the network with %s failed", netlock_name(nl->method));
		return -1;
	}
	if (nl->method == NETLOCK_NFTABLES)
		pr_info("network locked with nftables: table %s%s", table_of(nl->run_id).s,
			nl->netns_pid ? " in the tree's namespace" : "");
	else
		pr_info("network locked with iptables: chain CRIU in the tree's namespace");
	return 0;
}

/* The connection's addresses as text, a v4-mapped v6 one as the v4 one
 * it is (so CRIU's rules and ours name it alike). */
static int conn_text(const struct netlock_conn *c, int *family, char *s, char *d)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const unsigned char *src = c->src, *dst = c->dst;
	*family = c->family;
	if (*family == AF_INET6 && !memcmp(dst, mapped, sizeof(mapped))) {
		*family = AF_INET;
		src += 12;
		dst += 12;
	}
	if ((*family != AF_INET && *family != AF_INET6) || !inet_ntop(*family, src, s, INET6_ADDRSTRLEN) ||
	    !inet_ntop(*family, dst, d, INET6_ADDRSTRLEN)) {
		pr_err("can't lock a connection of address family %d", c->family);
		return -1;
	}
	return 0;
}

/* iptables: a rule each way, incoming (from the peer) on INPUT,
 * outgoing on OUTPUT. */
static int ipt_conn(const struct netlock_conn *c, bool lock)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int family;
	if (conn_text(c, &family, s, d) < 0)
		return -1;
	if (ipt_conn_rule(family, d, c->dport, s, c->sport, "INPUT", lock) < 0)
		return -1;
	if (ipt_conn_rule(family, s, c->sport, d, c->dport, "OUTPUT", lock) < 0) {
		if (lock)
			ipt_conn_rule(family, d, c->dport, s, c->sport, "INPUT", false);
		return -1;
	}
	pr_info("%s %s:%u - %s:%u", lock ? "locked" : "unlocked", s, c->sport, d, c->dport);
	return 0;
}

/* nftables: both ways into the table's set of the family. */
static int nft_conn(const struct netlock *nl, const struct netlock_conn *c)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], cmds[512];
	int family;
	if (conn_text(c, &family, s, d) < 0)
		return -1;
	char set = family == AF_INET ? '4' : '6';
	snprintf(cmds, sizeof(cmds),
		 "add element " TABLE " conns%c { %s . %u . %s . %u }\n"
		 "add element " TABLE " conns%c { %s . %u . %s . %u }\n",
		 table_of(nl->run_id).s, set, d, c->dport, s, c->sport, table_of(nl->run_id).s, set, s, c->sport, d,
		 c->dport);
	if (nft_run(cmds, false) < 0)
		return -1;
	pr_info("locked %s:%u - %s:%u", s, c->sport, d, c->dport);
	return 0;
}

int netlock_conn_locked(struct netlock *nl, const struct netlock_conn *c)
{
	if (nl->method != NETLOCK_IPTABLES || nl->netns_pid || nl->unprivileged)
		return 0;	/* nothing, or lifted whole */
	struct netlock_conn *n = realloc(nl->conns, (nl->nr_conns + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory for the locked connections");
		return -1;
	}
	nl->conns = n;
	n[nl->nr_conns++] = *c;
	return 0;
}

int netlock_conn_lock(struct netlock *nl, const struct netlock_conn *c)
{
	if (nl->method == NETLOCK_SKIP || nl->netns_pid)
		return 0;	/* nothing, or the whole namespace is locked */
	if (needs_privilege(nl, netlock_name(nl->method)))
		return -1;
	if (nl->method == NETLOCK_NFTABLES)
		return nft_conn(nl, c);
	/* remembered first, so that a failed unlock can't leave it untracked */
	if (netlock_conn_locked(nl, c) < 0)
		return -1;
	if (ipt_conn(c, true) < 0) {
		nl->nr_conns--;
		return -1;
	}
	return 0;
}

/* ---- many connections at once ----
 * One iptables-restore (per family) or one nft batch for all of them: a
 * tool run per rule costs milliseconds each, more as the chains grow,
 * which with a thousand connections was most of a dump and a restore. */

/* A text that grows (the rules of many connections); NULL on no memory. */
struct text {
	char *s;
	size_t len, size;
};

static bool text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->size - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return false;
		if (t->s && t->len + n < t->size) {
			t->len += n;
			return true;
		}
		size_t size = (t->size + n + 1) * 2;
		char *s = realloc(t->s, size);
		if (!s)
			return false;
		t->s = s;
		t->size = size;
	}
}

/* The iptables-restore lines of conns of one family (AF_INET, AF_INET6),
 * each way, -I or -D; the number of connections in it (-1: no memory).
 * Deleted last first: -I put the last at the head of the chain, where
 * a delete, which looks for its rule from the head, finds it at once (in
 * the order they were put in, a thousand connections' rules took 30 s). */
static int ipt_batch(const struct netlock_conn *conns, int n, int family, bool lock, struct text *t)
{
	int nr = 0;
	if (!text_add(t, "*filter\n"))
		return -1;
	for (int k = 0; k < n; k++) {
		int i = lock ? k : n - 1 - k;
		char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
		int f;
		if (conn_text(&conns[i], &f, s, d) < 0)
			return -1;
		if (f != family)
			continue;
		static const char rule[] = "%s %s --protocol tcp -m mark ! --mark " MARK_STR
					   " --source %s --sport %u --destination %s --dport %u -j DROP\n";
		if (!text_add(t, rule, lock ? "-I" : "-D", "INPUT", d, conns[i].dport, s, conns[i].sport) ||
		    !text_add(t, rule, lock ? "-I" : "-D", "OUTPUT", s, conns[i].sport, d, conns[i].dport))
			return -1;
		nr++;
	}
	return text_add(t, "COMMIT\n") ? nr : -1;
}

/* iptables: the rules of conns of one family all in (lock) or out, in
 * one iptables-restore, which takes them all or none: 0, or -1 with
 * none changed. */
static int ipt_conns(const struct netlock_conn *conns, int n, int family, bool lock)
{
	struct text t = { 0 };
	int nr = ipt_batch(conns, n, family, lock, &t);
	char *argv[] = { family == AF_INET6 ? "ip6tables-restore" : "iptables-restore", "-w", "--noflush", NULL };
	int ret = nr < 0 || (nr > 0 && run_tool(argv, t.s) < 0) ? -1 : 0;
	free(t.s);
	return ret;
}

static int conn_family(const struct netlock_conn *c)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int family;
	return conn_text(c, &family, s, d) < 0 ? -1 : family;
}

/* nftables: all of conns into the sets, one batch. */
static int nft_conns(const struct netlock *nl, const struct netlock_conn *conns, int n)
{
	struct text t = { 0 };
	bool ok = true;
	for (int i = 0; i < n && ok; i++) {
		char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
		int family;
		ok = conn_text(&conns[i], &family, s, d) == 0;
		char set = family == AF_INET ? '4' : '6';
		ok = ok && text_add(&t, "add element " TABLE " conns%c { %s . %u . %s . %u }\n"
				    "add element " TABLE " conns%c { %s . %u . %s . %u }\n",
				    table_of(nl->run_id).s, set, d, conns[i].dport, s, conns[i].sport,
				    table_of(nl->run_id).s, set, s, conns[i].sport, d, conns[i].dport);
	}
	ok = ok && (!t.s || nft_run(t.s, false) == 0);
	free(t.s);
	return ok ? 0 : -1;
}

int netlock_conns_lock(struct netlock *nl, const struct netlock_conn *conns, int n)
{
	if (nl->method == NETLOCK_SKIP || nl->netns_pid || n == 0)
		return 0;
	if (nl->unprivileged)
		return -1;	/* netlock_conn_lock says why */
	if (nl->method == NETLOCK_NFTABLES) {
		if (nft_conns(nl, conns, n) < 0)
			return -1;
	} else {
		struct netlock_conn *m = realloc(nl->conns, (nl->nr_conns + n) * sizeof(*m));
		if (!m)
			return -1;
		nl->conns = m;
		if (ipt_conns(conns, n, AF_INET, true) < 0)
			return -1;
		if (ipt_conns(conns, n, AF_INET6, true) < 0) {
			ipt_conns(conns, n, AF_INET, false);	/* IPv4's out again */
			return -1;
		}
		memcpy(nl->conns + nl->nr_conns, conns, n * sizeof(*conns));
		nl->nr_conns += n;
	}
	for (int i = 0; i < n; i++) {
		char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
		int family;
		if (conn_text(&conns[i], &family, s, d) == 0)
			pr_info("locked %s:%u - %s:%u", s, conns[i].sport, d, conns[i].dport);
	}
	return 0;
}

int netlock_conn_unlock(struct netlock *nl, const struct netlock_conn *c)
{
	for (int i = nl->nr_conns - 1; i >= 0; i--)
		if (!memcmp(&nl->conns[i], c, sizeof(*c))) {
			memmove(&nl->conns[i], &nl->conns[i + 1], (nl->nr_conns - i - 1) * sizeof(*c));
			nl->nr_conns--;
			return ipt_conn(c, false);
		}
	return 0;	/* nftables: the set goes with its table */
}

int netlock_unlock(struct netlock *nl)
{
	int back, ret = 0;
	/* the connections first, as CRIU: they were locked last; all at
	 * once, else (a rule gone, say) one by one */
	for (int family = AF_INET; nl->nr_conns && family; family = family == AF_INET ? AF_INET6 : 0) {
		bool batch = ipt_conns(nl->conns, nl->nr_conns, family, false) == 0;
		for (int i = 0; i < nl->nr_conns; i++) {
			char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
			int f;
			if (conn_family(&nl->conns[i]) != family)
				continue;
			if (!batch && ipt_conn(&nl->conns[i], false) < 0)
				ret = -1;
			else if (batch && conn_text(&nl->conns[i], &f, s, d) == 0)
				pr_info("unlocked %s:%u - %s:%u", s, nl->conns[i].sport, d, nl->conns[i].dport);
		}
	}
	nl->nr_conns = 0;
	if (!nl->locked)
		return ret;
	if (netns_enter(nl->netns_pid, &back) < 0)
		return -1;
	if ((nl->method == NETLOCK_NFTABLES ? nft_unlock(nl) : ipt_unlock_netns()) < 0)
		ret = -1;
	if (netns_leave(back) < 0)
		ret = -1;
	if (ret == 0) {
		nl->locked = false;
		pr_info("network unlocked (%s)", netlock_name(nl->method));
	}
	return ret;
}

void netlock_joined_netns(struct netlock *nl)
{
	nl->nr_conns = 0;	/* noted by the restored sockets: the dump made none */
	nl->netns_pid = 0;	/* the namespace we are in */
	nl->gone_ok = true;
	if (nl->method == NETLOCK_IPTABLES)
		nl->locked = !nl->unprivileged && ipt_netns_locked();
	else
		nl->locked = nl->method == NETLOCK_NFTABLES && !nl->unprivileged;
}

void netlock_free(struct netlock *nl)
{
	free(nl->conns);
	nl->conns = NULL;
	nl->nr_conns = 0;
}

void netlock_say_kept(const struct netlock *nl)
{
	if (nl->locked && nl->method == NETLOCK_NFTABLES)
		pr_err("the network stays locked (nft table %s) for the next restore of these images",
		       table_of(nl->run_id).s);
	else if (nl->nr_conns)
		pr_err("the network stays locked (iptables rules of %d TCP connections) for the next restore of "
		       "these images", nl->nr_conns);
}
