/* Restore asked for by a non-root client of the RPC service: the images
 * are the client's word, so nothing in them may give the restored tree
 * more than the client has. Ids must be the client's, capabilities none,
 * the root directory "/"; and the new processes open their files as the
 * client (fs ids), so a file the client can't open can't be restored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proc/proc.h"
#include "restore/rst.h"
#include "util/log.h"

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

int rst_check_unprivileged(struct rst_tree *tr)
{
	struct rlimit mine[RLIM_NLIMITS];
	/* read by pid: they are the client's only if it is still there */
	if (proc_parse_limits(tr->o->client_pid, mine, RLIM_NLIMITS) < 0 ||
	    (tr->o->client_pidfd >= 0 && syscall(SYS_pidfd_send_signal, tr->o->client_pidfd, 0, NULL, 0) < 0)) {
		pr_err("can't read the limits of the client (pid %d)", tr->o->client_pid);
		return -1;
	}
	for (int i = 0; i < tr->nr; i++) {
		struct rst_ctx *rc = &tr->t[i];
		if (rc->zombie)
			continue;
		for (size_t t = 0; t < rc->pe->n_threads; t++)
			if (check_creds(rc, rc->core[t]->thread_core ? rc->core[t]->thread_core->creds : NULL) < 0)
				return -1;
		if (check_rlimits(rc, mine, RLIM_NLIMITS) < 0)
			return -1;
		const FileEntry *root = files_find(rc->files, rc->fs->root_id);
		if (!root || !root->reg || strcmp(root->reg->name, "/")) {
			pr_err("image fs-%d.img: a client of uid %u may not restore into another root directory",
			       rc->pid, tr->o->client_uid);
			return -1;
		}
	}
	return 0;
}

/* The tree's files are opened as the client; stasis's own (the images)
 * as root: switch with client true or false. */
int rst_client_fs(const struct opts *o, bool client)
{
	if (!o->unprivileged)
		return 0;
	if (client && setgroups(o->nr_client_groups, o->client_groups) < 0) {
		pr_perror("can't take the client's groups");
		return -1;
	}
	uid_t uid = client ? o->client_uid : 0;
	setfsgid(client ? o->client_gid : 0);
	setfsuid(uid);
	if ((uid_t)setfsuid(-1) != uid) {
		pr_err("can't take the file system ids of uid %u", uid);
		return -1;
	}
	return 0;
}
