/* The network lock, as CRIU's --network-lock: from the moment the tree
 * is frozen until it runs again (restored, or resumed after a failed or
 * --leave-running dump), no packet of its TCP connections may reach the
 * kernel, which would answer a stopped socket with a reset.
 *
 * Two shapes, as CRIU 4.2:
 *  - the tree has a network namespace of its own: the whole namespace is
 *    locked (every packet dropped but those marked NETLOCK_MARK, the mark
 *    of CRIU's own repair traffic);
 *  - the tree shares ours (host mode): only its TCP connections, each by
 *    its 4-tuple, as they are dumped (netlock_conn_lock). With nftables a
 *    table is made at the lock all the same, and the connections become
 *    elements of its sets; the table goes at the unlock.
 * The nftables table is "inet CRIU-<run id>" cut to 31 characters (as
 * CRIU 4.2 cuts it), the run id of the dump (kept in inventory.img as
 * dump_criu_run_id, so the restore finds it). */
#ifndef STASIS_NETLOCK_H
#define STASIS_NETLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* CRIU's values, as inventory.img's network_lock_method holds them
 * (rpc.proto's criu_network_lock_method is these plus one). */
enum netlock_method {
	NETLOCK_IPTABLES = 0,
	NETLOCK_NFTABLES = 1,
	NETLOCK_SKIP = 2,
};
#define NETLOCK_DEFAULT NETLOCK_IPTABLES

/* soccr's SOCCR_MARK: packets with it pass the lock. */
#define NETLOCK_MARK 0xC114

#define NETLOCK_RUN_ID_LEN 37	/* a uuid and its NUL */

/* A TCP connection as the lock names it: addresses of 4 (AF_INET) or 16
 * (AF_INET6) bytes, ports in host order; src is the tree's end. */
struct netlock_conn {
	int family;
	unsigned char src[16], dst[16];
	uint16_t sport, dport;
};

struct netlock {
	enum netlock_method method;
	pid_t netns_pid;	/* a process in the tree's own netns; 0: host mode */
	char run_id[NETLOCK_RUN_ID_LEN];
	bool unprivileged;	/* an RPC client without root: no netfilter on its behalf */
	bool locked;		/* the lock is in place (the namespace's or the nft table) */
	bool gone_ok;		/* restore: the table may be gone already, no error */
	/* iptables, host mode: the connections with rules of their own,
	 * which netlock_unlock deletes */
	struct netlock_conn *conns;
	int nr_conns;
};

/* "iptables", "nftables", "skip" (or CRIU's other name for it, "none"). */
int netlock_parse(const char *name, enum netlock_method *m);
const char *netlock_name(enum netlock_method m);

/* A fresh run id for a dump (the nft table's name). */
int netlock_new_run_id(char *buf);

/* Dump, right after the tree is frozen. */
int netlock_lock(struct netlock *nl);
/* Host mode, dump: locks one TCP connection of the tree, both ways, as
 * it is dumped (before it is put in repair); netlock_unlock lifts it.
 * A v4-mapped v6 connection is locked as the v4 one it is. */
int netlock_conn_lock(struct netlock *nl, const struct netlock_conn *c);
/* Host mode, dump: n connections locked at once (one iptables-restore
 * per family, one nft batch), all or none: 0, or -1 with none locked
 * (then lock them one by one, which says why). */
int netlock_conns_lock(struct netlock *nl, const struct netlock_conn *conns, int n);
/* Host mode, dump: a connection locked, whose repair then failed, unlocked
 * again (iptables; an nft lock goes with its table). */
int netlock_conn_unlock(struct netlock *nl, const struct netlock_conn *c);
/* Host mode, restore: a connection the dump locked, which netlock_unlock
 * is to lift (iptables; an nft lock goes with its table). */
int netlock_conn_locked(struct netlock *nl, const struct netlock_conn *c);
/* Takes the lock away: the connections' iptables rules, the nft table,
 * the namespace's chains. */
int netlock_unlock(struct netlock *nl);
/* Restore into a network namespace joined (--join-ns net) for a tree
 * that had one of its own: the dump locked that whole namespace, so the
 * unlock lifts the namespace's lock, in the namespace the caller is in,
 * not per-connection rules; a lock not there (a dump left running) is
 * no error. */
void netlock_joined_netns(struct netlock *nl);
void netlock_free(struct netlock *nl);
/* After a failed restore: one line saying what stays locked (if any)
 * for the next try, as CRIU leaves it. */
void netlock_say_kept(const struct netlock *nl);

/* check --feature network_lock_nftables: libnftables here makes tables
 * with concatenated sets. */
bool netlock_nft_works(void);

/* check --feature has_ipt_legacy: iptables of the legacy kind here (its
 * -save tools, as CRIU asks them). */
bool netlock_ipt_legacy(void);

#endif
