/* Restore asked for by a non-root client of the RPC service: the images
 * are the client's word, so nothing in them may give the restored tree
 * more than the client has. Ids must be the client's, capabilities none,
 * the root directory "/".
 *
 * And the new processes are the client from their first step: each one
 * stasis forks drops root at once (rst_client_become), before it opens,
 * binds or connects anything, so every file, socket and peer credential
 * it makes carries the client's identity. Two things of a restore need
 * a privilege the client has not got, and the service lends exactly
 * those, through CAP_CHECKPOINT_RESTORE kept in the permitted set and
 * raised into the effective set only around them (the kernel asks for
 * it, or CAP_SYS_ADMIN, in checkpoint_restore_ns_capable):
 *   - clone3() with set_tid (the process's own pid; kernel/pid.c,
 *     alloc_pid, in the pid namespace's user namespace), for every
 *     process (by its parent) and thread (injected into its main thread);
 *   - prctl(PR_SET_MM_MAP) with an exe_fd (the /proc/PID/exe link;
 *     kernel/sys.c, prctl_set_mm_map, in the caller's user namespace).
 * Last, each thread drops it from its permitted set too
 * (rst_client_final) and is checked to hold exactly its image's
 * credentials.
 *
 * A process forked by one of the tree's inherits its parent's groups,
 * bounding set and securebits, and without CAP_SETGID or CAP_SETPCAP it
 * can't change them: so a client's tree must have one set of them, taken
 * once from root by the processes stasis forks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/securebits.h>

#include "proc/proc.h"
#include "restore/rst.h"
#include "task/own_proc.h"
#include "util/log.h"

#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif
#define LENT_CAPS (1ull << CAP_CHECKPOINT_RESTORE)

static uint64_t caps64(const uint32_t *c, size_t n)
{
	return n >= 2 ? (c[0] | ((uint64_t)c[1] << 32)) : n == 1 ? c[0] : 0;
}

/* ---- checks of the images, in stasis ---- */

static bool ids_are_clients(const struct opts *o, const CredsEntry *c)
{
	uid_t u = o->client_uid;
	gid_t g = o->client_gid;
	return c->uid == u && c->euid == u && c->suid == u && c->fsuid == u &&
	       c->gid == g && c->egid == g && c->sgid == g && c->fsgid == g;
}

static bool has_caps(const uint32_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i])
			return true;
	return false;
}

static bool group_allowed(const struct opts *o, uint32_t gid)
{
	if (gid == o->client_gid)
		return true;
	for (int i = 0; i < o->nr_client_groups; i++)
		if (o->client_groups[i] == gid)
			return true;
	return false;
}

static int check_creds(const struct rst_ctx *rc, const CredsEntry *c)
{
	const struct opts *o = rc->o;
	if (!c || !ids_are_clients(o, c)) {
		pr_err("image core-%d.img asks for user/group ids %d/%d; a client of uid %u may restore "
		       "only its own", rc->pid, c ? (int)c->uid : 0, c ? (int)c->gid : 0, o->client_uid);
		return -1;
	}
	if (has_caps(c->cap_prm, c->n_cap_prm) || has_caps(c->cap_eff, c->n_cap_eff) ||
	    has_caps(c->cap_inh, c->n_cap_inh) || has_caps(c->cap_amb, c->n_cap_amb)) {
		pr_err("image core-%d.img asks for capabilities, which a client of uid %u may not give",
		       rc->pid, o->client_uid);
		return -1;
	}
	for (size_t i = 0; i < c->n_groups; i++)
		if (!group_allowed(o, c->groups[i])) {
			pr_err("image core-%d.img asks for group %u, which uid %u is not in", rc->pid,
			       c->groups[i], o->client_uid);
			return -1;
		}
	return 0;
}

/* Whether two threads' securebits differ in more than the keep-caps bit,
 * which a thread may change itself (PR_SET_KEEPCAPS) unless it is locked;
 * the others take CAP_SETPCAP. */
static bool secbits_differ(uint32_t a, uint32_t b)
{
	uint32_t free = (a & SECBIT_KEEP_CAPS_LOCKED) ? 0 : SECBIT_KEEP_CAPS;
	return (a & ~free) != (b & ~free);
}

/* What every process of the tree inherits and can't change: the same
 * groups, bounding set and securebits as the tree's first process. */
static int check_same_as_tree(const struct rst_tree *tr, const struct rst_ctx *rc, const CredsEntry *c)
{
	const CredsEntry *tree = tr->creds;
	bool same = c->n_groups == tree->n_groups &&
		    (!c->n_groups || !memcmp(c->groups, tree->groups, c->n_groups * sizeof(*c->groups))) &&
		    caps64(c->cap_bnd, c->n_cap_bnd) == caps64(tree->cap_bnd, tree->n_cap_bnd) &&
		    !secbits_differ(c->secbits, tree->secbits);
	if (!same) {
		pr_err("image core-%d.img: its groups, capability bounding set or securebits differ from "
		       "those of pid %d; in a restore for a client of uid %u every process inherits them "
		       "and can't change them", rc->pid, tr->t[0].pid, rc->o->client_uid);
		return -1;
	}
	/* the processes stasis forks set keep-caps to keep CAP_CHECKPOINT_RESTORE
	 * across their change of uid: it can't be locked off */
	if ((c->secbits & SECBIT_KEEP_CAPS_LOCKED) && !(c->secbits & SECBIT_KEEP_CAPS)) {
		pr_err("image core-%d.img: securebits %#x lock keep-caps off, which a restore for a client "
		       "of uid %u can't do", rc->pid, c->secbits, rc->o->client_uid);
		return -1;
	}
	return 0;
}

/* Hard limits above the client's own: only root may raise them. */
static int check_rlimits(const struct rst_ctx *rc, const struct rlimit *mine, int nr)
{
	const TaskCoreEntry *tc = rc->core[0]->tc;
	if (!tc || !tc->rlimits)
		return 0;
	for (size_t i = 0; i < tc->rlimits->n_rlimits && (int)i < nr; i++) {
		const RlimitEntry *l = tc->rlimits->rlimits[i];
		if (l->max > (uint64_t)mine[i].rlim_max) {
			pr_err("image core-%d.img asks for a hard limit %zu of %llu, above the %llu of the client "
			       "(uid %u)", rc->pid, i, (unsigned long long)l->max,
			       (unsigned long long)mine[i].rlim_max, rc->o->client_uid);
			return -1;
		}
	}
	return 0;
}

/* An oom_score_adj below the client's own is one it may not have been
 * able to set (that takes CAP_SYS_RESOURCE below its minimum, which can't
 * be read): the client's own instead, as for a missing one, so nothing of
 * the service's is inherited either. */
static void clamp_oom_adj(const struct rst_tree *tr, const struct rst_ctx *rc, TaskCoreEntry *tc)
{
	if (tc->has_oom_score_adj && tc->oom_score_adj >= tr->client_oom_adj)
		return;
	if (tc->has_oom_score_adj)
		pr_warn("image core-%d.img: oom_score_adj %d is below the %lld of the client (uid %u), which it "
			"gets instead", rc->pid, tc->oom_score_adj, tr->client_oom_adj, rc->o->client_uid);
	tc->has_oom_score_adj = 1;
	tc->oom_score_adj = tr->client_oom_adj;
}

/* A loginuid is the client's own, or any where the client's is unset (it
 * may set one itself); a missing one becomes the client's, never the
 * service's inherited. */
static int check_loginuid(const struct rst_tree *tr, const struct rst_ctx *rc, TaskCoreEntry *tc)
{
	if (tr->client_loginuid < 0)
		return 0;	/* the kernel has none */
	if (!tc->has_loginuid) {
		tc->has_loginuid = 1;
		tc->loginuid = tr->client_loginuid;
		return 0;
	}
	if (tc->loginuid == tr->client_loginuid || tr->client_loginuid == LOGINUID_UNSET)
		return 0;
	pr_err("image core-%d.img asks for loginuid %u; a client of uid %u and loginuid %lld may restore "
	       "only its own", rc->pid, tc->loginuid, rc->o->client_uid, tr->client_loginuid);
	return -1;
}

static int check_task(struct rst_tree *tr, struct rst_ctx *rc)
{
	if (check_loginuid(tr, rc, rc->core[0]->tc) < 0)
		return -1;
	clamp_oom_adj(tr, rc, rc->core[0]->tc);
	rc->client_nnp = tr->client_nnp;
	for (size_t t = 0; t < rc->pe->n_threads; t++) {
		const CredsEntry *c = rc->core[t]->thread_core ? rc->core[t]->thread_core->creds : NULL;
		if (check_creds(rc, c) < 0)
			return -1;
		if (!tr->creds)
			tr->creds = c;
		if (check_same_as_tree(tr, rc, c) < 0)
			return -1;
	}
	if (check_rlimits(rc, tr->client_lim, RLIM_NLIMITS) < 0)
		return -1;
	const FileEntry *root = files_find(rc->files, rc->fs->root_id);
	if (!root || !root->reg || strcmp(root->reg->name, "/")) {
		pr_err("image fs-%d.img: a client of uid %u may not restore into another root directory",
		       rc->pid, tr->o->client_uid);
		return -1;
	}
	return 0;
}

int rst_check_unprivileged(struct rst_tree *tr)
{
	struct proc_status st;
	/* read by pid: they are the client's only if it is still there */
	tr->client_loginuid = -1;
	if (proc_parse_limits(tr->o->client_pid, tr->client_lim, RLIM_NLIMITS) < 0 ||
	    proc_parse_status(tr->o->client_pid, &st) < 0 ||
	    own_proc_read(tr->o->client_pid, "oom_score_adj", &tr->client_oom_adj) < 0 ||
	    (own_proc_read(tr->o->client_pid, "loginuid", &tr->client_loginuid) < 0 && errno != ENOENT) ||
	    (tr->o->client_pidfd >= 0 && syscall(SYS_pidfd_send_signal, tr->o->client_pidfd, 0, NULL, 0) < 0)) {
		pr_err("can't read the limits, status, oom_score_adj and loginuid of the client (pid %d)", tr->o->client_pid);
		return -1;
	}
	tr->client_nnp = st.no_new_privs;
	tr->creds = NULL;
	for (int i = 0; i < tr->nr; i++)
		if (!tr->t[i].zombie && check_task(tr, &tr->t[i]) < 0)
			return -1;
	return 0;
}

/* ---- in each new process ---- */

/* This thread's capabilities: permitted and effective, none inheritable
 * (which also empties the ambient set). */
static int set_caps(uint64_t prm, uint64_t eff)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ .effective = (uint32_t)eff, .permitted = (uint32_t)prm },
		{ .effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(prm >> 32) },
	};
	return syscall(SYS_capset, &hdr, d);
}

/* No more than the client may have, before it is the client (lowering
 * is allowed to anyone, raising is not): the processes forked from
 * stasis would otherwise carry its limits. The image's own come later
 * (task.c), set by the process itself. */
static int clamp_limits(const struct rst_tree *tr)
{
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit l;
		if (getrlimit(r, &l) < 0) {
			pr_perror("can't read resource limit %d", r);
			return -1;
		}
		if (l.rlim_max > tr->client_lim[r].rlim_max)
			l.rlim_max = tr->client_lim[r].rlim_max;
		if (l.rlim_cur > l.rlim_max)
			l.rlim_cur = l.rlim_max;
		if (setrlimit(r, &l) < 0) {
			pr_perror("can't lower resource limit %d to the client's", r);
			return -1;
		}
	}
	return 0;
}

/* Bounding set, securebits, groups and ids of the tree, in the order in
 * which root may still set each one; SECBIT_KEEP_CAPS keeps the
 * permitted set across the change of uid (the effective one empties). */
static int drop_root(const struct rst_tree *tr)
{
	const CredsEntry *c = tr->creds;
	uid_t u = tr->o->client_uid;
	gid_t g = tr->o->client_gid;
	uint64_t bnd = caps64(c->cap_bnd, c->n_cap_bnd);

	if (clamp_limits(tr) < 0)
		return -1;
	/* a client that can't gain privileges by execve can't make processes
	 * that can (it may be a sandbox restoring its own image) */
	if (tr->client_nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		pr_perror("can't take the client's no_new_privs");
		return -1;
	}
	for (int cap = 0; cap < 64; cap++)
		if (!(bnd & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap) < 0 && errno != EINVAL) {
			pr_perror("can't drop capability %d from the bounding set", cap);
			return -1;
		}
	if (prctl(PR_SET_SECUREBITS, c->secbits | SECBIT_KEEP_CAPS) < 0) {
		pr_perror("can't take securebits %#x", c->secbits);
		return -1;
	}
	if (setgroups(c->n_groups, (const gid_t *)c->groups) < 0 || setresgid(g, g, g) < 0 ||
	    setresuid(u, u, u) < 0) {
		pr_perror("can't take the ids of the client (uid %u, gid %u)", u, g);
		return -1;
	}
	if (!(c->secbits & SECBIT_KEEP_CAPS) && prctl(PR_SET_KEEPCAPS, 0) < 0) {
		pr_perror("can't clear the keep-caps securebit");
		return -1;
	}
	return 0;
}

/* What the kernel now says we are: the client's ids, and no capability
 * but (if lent) CAP_CHECKPOINT_RESTORE, permitted only. */
static int check_became(const struct rst_tree *tr, uint64_t lent)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	uid_t r, e, s, u = tr->o->client_uid;
	gid_t rg, eg, sg, g = tr->o->client_gid;

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 || syscall(SYS_capget, &hdr, d) < 0)
		return -1;
	uint64_t eff = d[0].effective | ((uint64_t)d[1].effective << 32);
	uint64_t prm = d[0].permitted | ((uint64_t)d[1].permitted << 32);
	uint64_t inh = d[0].inheritable | ((uint64_t)d[1].inheritable << 32);
	if (r != u || e != u || s != u || rg != g || eg != g || sg != g || eff || inh || prm != lent ||
	    (uid_t)setfsuid(-1) != u || (gid_t)setfsgid(-1) != g) {
		pr_err("pid %d did not become uid %u gid %u without capabilities (uid %u/%u/%u, gid "
		       "%u/%u/%u, permitted %#llx, effective %#llx)", getpid(), u, g, r, e, s, rg, eg, sg,
		       (unsigned long long)prm, (unsigned long long)eff);
		return -1;
	}
	return 0;
}

int rst_client_become(const struct rst_tree *tr, bool lend)
{
	if (!tr->o->unprivileged)
		return 0;
	/* forked by stasis (or its init), not by a process of the tree */
	if (geteuid() == 0 && drop_root(tr) < 0)
		return -1;
	uint64_t lent = lend ? LENT_CAPS : 0;
	if (set_caps(lent, 0) < 0) {
		pr_perror("can't drop capabilities");
		return -1;
	}
	/* whatever fs.suid_dumpable says: see rst_client_dumpable */
	if (prctl(PR_SET_DUMPABLE, 0) < 0) {
		pr_perror("can't make the process not dumpable");
		return -1;
	}
	return check_became(tr, lent);
}

int rst_client_lend(const struct opts *o, bool on)
{
	if (!o || !o->unprivileged)
		return 0;
	if (set_caps(LENT_CAPS, on ? LENT_CAPS : 0) < 0) {
		pr_perror("can't %s CAP_CHECKPOINT_RESTORE", on ? "raise" : "lower");
		return -1;
	}
	return 0;
}

/* ---- injected into the new threads by stasis ---- */

static int inject_caps(struct rst_ctx *rc, uint64_t prm, uint64_t eff)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ .effective = (uint32_t)eff, .permitted = (uint32_t)prm },
		{ .effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(prm >> 32) },
	};
	return inj_must_ins(&rc->inj, "capabilities", INJ(SYS_capset),
			    (struct inj_in[]){ { 0, &hdr, sizeof(hdr) }, { 1, d, sizeof(d) } }, 2);
}

int rst_client_lend_inject(struct rst_ctx *rc, int idx, bool on)
{
	if (!rc->o->unprivileged)
		return 0;
	inj_use(&rc->inj, idx);
	return inject_caps(rc, LENT_CAPS, on ? LENT_CAPS : 0);
}

/* The thread holds what its image says, and nothing lent. */
static int check_final(struct rst_ctx *rc, int idx, const CredsEntry *c, bool nnp)
{
	struct proc_status st;
	pid_t tid = rc->inj.th[idx].pid;
	long secbits;

	if (inj_must(&rc->inj, "securebits read", &secbits, INJ(SYS_prctl, PR_GET_SECUREBITS)) < 0 ||
	    proc_parse_status(tid, &st) < 0)
		return -1;
	bool ok = st.uid[0] == c->uid && st.uid[1] == c->euid && st.uid[2] == c->suid &&
		  st.uid[3] == c->fsuid && st.gid[0] == c->gid && st.gid[1] == c->egid &&
		  st.gid[2] == c->sgid && st.gid[3] == c->fsgid && st.ngroups == (int)c->n_groups &&
		  !st.cap_inh && !st.cap_prm && !st.cap_eff && !st.cap_amb &&
		  !(st.cap_bnd & ~caps64(c->cap_bnd, c->n_cap_bnd)) && (uint32_t)secbits == c->secbits &&
		  st.no_new_privs == nnp;
	for (int i = 0; ok && i < st.ngroups; i++)
		ok = st.groups[i] == c->groups[i];
	if (!ok) {
		pr_err("pid %d: thread %d ends with credentials other than its image's (uid %u, permitted "
		       "%#llx, effective %#llx, securebits %#lx, no_new_privs %d)", rc->pid, tid, st.uid[0],
		       (unsigned long long)st.cap_prm, (unsigned long long)st.cap_eff, secbits,
		       st.no_new_privs);
		return -1;
	}
	return 0;
}

int rst_client_final(struct rst_ctx *rc, int idx)
{
	const CredsEntry *c = rc->core[idx]->thread_core->creds;
	bool nnp = (c->has_no_new_privs && c->no_new_privs) || rc->client_nnp;

	inj_use(&rc->inj, idx);
	if (!(c->secbits & SECBIT_KEEP_CAPS_LOCKED) &&
	    inj_must(&rc->inj, "keep-caps securebit", NULL,
		     INJ(SYS_prctl, PR_SET_KEEPCAPS, !!(c->secbits & SECBIT_KEEP_CAPS))) < 0)
		return -1;
	if (nnp && inj_must(&rc->inj, "no_new_privs", NULL, INJ(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1)) < 0)
		return -1;
	if (inject_caps(rc, 0, 0) < 0)
		return -1;
	return check_final(rc, idx, c, nnp);
}

/* Until now the process was not dumpable (the change of uid made it so),
 * so the client could neither ptrace it nor take its fds (pidfd_getfd)
 * while it still held what stasis opened for it: its image's flag only
 * once those are closed. */
int rst_client_dumpable(struct rst_ctx *rc)
{
	if (!rc->o->unprivileged || !rc->mm->has_dumpable)
		return 0;
	inj_use(&rc->inj, 0);
	return inj_must(&rc->inj, "dumpable flag", NULL, INJ(SYS_prctl, PR_SET_DUMPABLE, rc->mm->dumpable));
}
