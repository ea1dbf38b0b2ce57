/* Which namespaces a tree has of its own, and the checks that hold for
 * all kinds (see ns.h). The state of each kind is in its own file. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/img.h"
#include "ns/ns.h"
#include "util/log.h"
#include "util/opts.h"
#include "proc/ns_ids.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* The kinds a process of the tree shares with its root (pid aside: a
 * tree may be, or hold, a pid namespace of its own). */
static const struct {
	unsigned long cflag;
	const char *name, *what;
} kinds[] = {
	{ CLONE_NEWNET, "net", "network" }, { CLONE_NEWIPC, "ipc", "IPC" },
	{ CLONE_NEWUTS, "uts", "UTS" },	    { CLONE_NEWNS, "mnt", "mount" },
	{ CLONE_NEWUSER, "user", "user" },  { CLONE_NEWCGROUP, "cgroup", "cgroup" },
	{ CLONE_NEWTIME, "time", "time" },
};
#define NR_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const char *ns_what(unsigned long cflag)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (kinds[k].cflag == cflag)
			return kinds[k].what;
	return cflag == CLONE_NEWPID ? "pid" : "?";
}

const char *ns_name(unsigned long cflag)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (kinds[k].cflag == cflag)
			return kinds[k].name;
	return cflag == CLONE_NEWPID ? "pid" : "?";
}

struct in_thread {
	int nsfd;
	unsigned long cflag;
	int (*fn)(void *);
	void *arg;
	int ret;
};

static void *run_in(void *p)
{
	struct in_thread *t = p;
	if (setns(t->nsfd, t->cflag) < 0) {
		pr_perror("can't join a %s namespace", ns_name(t->cflag));
		t->ret = -1;
	} else {
		t->ret = t->fn(t->arg);
	}
	return NULL;
}

int ns_in_thread(pid_t pid, unsigned long cflag, int (*fn)(void *), void *arg)
{
	struct in_thread t = { .cflag = cflag, .fn = fn, .arg = arg, .ret = -1 };
	char path[64];
	pthread_t th;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns_name(cflag));
	t.nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (t.nsfd < 0) {
		pr_perror("pid %d: can't open its %s namespace", pid, ns_name(cflag));
		return -1;
	}
	int e = pthread_create(&th, NULL, run_in, &t);
	if (e == 0)
		pthread_join(th, NULL);
	close(t.nsfd);
	if (e) {
		errno = e;
		pr_perror("pid %d: can't start a thread to join its %s namespace", pid, ns_name(cflag));
		return -1;
	}
	return t.ret;
}

/* 1: the same namespace of kind k; 0: not; -1: unreadable (a kind this
 * kernel lacks, or a process gone: nothing to compare). */
static int same_ns(pid_t a, pid_t b, size_t k)
{
	return ns_same(a, b, kinds[k].name);
}

static int check_not_nested(pid_t root, const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		if (pids[i] == root)
			continue;
		for (size_t k = 0; k < NR_KINDS; k++)
			if (kinds[k].cflag != CLONE_NEWNS && same_ns(root, pids[i], k) == 0) {
				pr_err("pid %d is in a %s namespace other than its root's (pid %d): stasis, as CRIU, "
				       "can't dump a namespace nested in the tree's", pids[i], kinds[k].what, root);
				return -1;
			}
	}
	return 0;
}

/* Its devices, addresses and firewall are root's to read and to make
 * again; an empty one (--empty-ns net) is the caller's. */
static int net_dump(int dirfd, pid_t root, const pid_t *pids, int n, uint32_t id, const struct opts *o)
{
	if (o->unprivileged) {
		pr_err("pid %d has a network namespace of its own: only root may dump it (its devices, "
		       "addresses and firewall)", root);
		return -1;
	}
	if (o->empty_net) {
		pr_info("pid %d has a network namespace of its own: left empty (--empty-ns net), for the "
			"restore's setup-namespaces script to fill", root);
		return 0;
	}
	pr_info("pid %d has a network namespace of its own: its devices, addresses, routes and firewall "
		"are saved", root);
	struct netns_dump_arg a = { dirfd, id, root, pids, n };
	return ns_in_thread(root, CLONE_NEWNET, netns_dump_in, &a);
}

static size_t mnt_kind(void)
{
	size_t k = 0;
	while (kinds[k].cflag != CLONE_NEWNS)
		k++;
	return k;
}

/* The tree's mount namespaces, the root's first, each with a process in
 * it: nested ones (a process's unshare -m) are saved under a root with a
 * mount namespace of its own; as CRIU, not under a root in the dumper's,
 * whose mounts are not the tree's to save. In a tree with a user
 * namespace of its own (user), each must be owned by it, as the restore
 * makes them. *nr: how many (0 on error). */
static struct mnt_ns_ref *mnt_namespaces(pid_t root, const pid_t *pids, const uint32_t *mnt_ids, int n,
					 bool own, bool user, int *nr)
{
	struct mnt_ns_ref *refs = calloc(n > 0 ? (size_t)n : 1, sizeof(*refs));
	*nr = 0;
	if (!refs) {
		pr_err("out of memory");
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		if (pids[i] == root)
			refs[0] = (struct mnt_ns_ref){ root, mnt_ids[i] };
	}
	*nr = 1;
	for (int i = 0; i < n; i++) {
		bool seen = false;
		for (int j = 0; j < *nr && !seen; j++)
			seen = refs[j].id == mnt_ids[i];
		if (seen)
			continue;
		if (own && same_ns(pids[i], getpid(), mnt_kind()) == 1) {
			pr_err("pid %d is in stasis's mount namespace, and its root (pid %d) in one of its own: "
			       "stasis, as CRIU, can't take the host's mounts with the tree", pids[i], root);
			free(refs);
			*nr = 0;
			return NULL;
		}
		if (!own) {
			pr_err("pid %d is in a mount namespace of its own, and its root (pid %d) in stasis's: as "
			       "CRIU, stasis saves nested mount namespaces only under a root with one of its own "
			       "(start the tree under unshare -m, or dump pid %d alone)", pids[i], root, pids[i]);
			free(refs);
			*nr = 0;
			return NULL;
		}
		if (user && userns_check_owns_mnt(root, pids[i]) < 0) {
			free(refs);
			*nr = 0;
			return NULL;
		}
		refs[(*nr)++] = (struct mnt_ns_ref){ pids[i], mnt_ids[i] };
	}
	return refs;
}

int ns_dump(int dirfd, pid_t root, const pid_t *pids, const uint32_t *mnt_ids, int n,
	    const TaskKobjIdsEntry *root_ids, const struct opts *o, unsigned long *taken,
	    struct userns_maps *user)
{
	pid_t self = getpid();

	*taken = 0;
	user->on = false;
	if (check_not_nested(root, pids, n) < 0)
		return -1;
	for (size_t k = 0; k < NR_KINDS; k++)
		if ((kinds[k].cflag & NS_TAKEN_MASK) && same_ns(root, self, k) == 0)
			*taken |= kinds[k].cflag;
	/* a tree that is a pid namespace: CRIU's restore makes one only when
	 * the inventory says so, as its own dumps do (stasis's looks at pids) */
	if (ns_same(root, self, "pid") == 0)
		*taken |= CLONE_NEWPID;
	/* first: the others must be owned by it, and ids are seen inside it
	 * (a non-root client's is refused last, after the kinds it may not
	 * take either) */
	if ((*taken & CLONE_NEWUSER) && !o->unprivileged &&
	    userns_dump(dirfd, root, root_ids->user_ns_id, o, user) < 0)
		return -1;
	if (*taken & CLONE_NEWUTS) {
		pr_info("pid %d has a UTS namespace of its own: its names are saved", root);
		if (uts_dump(dirfd, root, root_ids->uts_ns_id) < 0)
			return -1;
	}
	if (*taken & CLONE_NEWIPC) {
		/* its segments, semaphores and queues may be anyone's in it */
		if (o->unprivileged) {
			pr_err("pid %d has an IPC namespace of its own: only root may dump it (its objects "
			       "need not be the client's)", root);
			return -1;
		}
		pr_info("pid %d has an IPC namespace of its own: its objects are saved", root);
		if (ipc_dump(dirfd, root, root_ids->ipc_ns_id) < 0)
			return -1;
	}
	int nr_mnt;
	struct mnt_ns_ref *mnt = mnt_namespaces(root, pids, mnt_ids, n, *taken & CLONE_NEWNS, user->on, &nr_mnt);
	if (!mnt)
		return -1;
	if (*taken & CLONE_NEWNS) {
		/* its mounts would be made by root, from what the image says */
		if (o->unprivileged) {
			pr_err("pid %d has a mount namespace of its own: only root may dump it (its mounts are "
			       "made again by root at restore)", root);
			free(mnt);
			return -1;
		}
		pr_info("pid %d has a mount namespace of its own: its mounts are saved (%d mount namespace%s)",
			root, nr_mnt, nr_mnt > 1 ? "s" : "");
		if (mnt_dump(dirfd, mnt, nr_mnt, o, user) < 0) {
			free(mnt);
			return -1;
		}
	}
	free(mnt);
	if ((*taken & CLONE_NEWNET) && net_dump(dirfd, root, pids, n, root_ids->net_ns_id, o) < 0)
		return -1;
	if ((*taken & CLONE_NEWUSER) && o->unprivileged)
		return userns_dump(dirfd, root, root_ids->user_ns_id, o, user);	/* refuses */
	return 0;
}

/* A mount namespace: its mounts, and the new root they go on (--root).
 * A non-root client's restore is refused by the caller. */
static int mnt_ns_load(int dirfd, uint32_t id, const struct opts *o, struct ns_restore *nr)
{
	struct stat st;

	nr->flags |= CLONE_NEWNS;
	if (o->unprivileged)
		return 0;	/* refused by the caller: root's only */
	if (mnt_load(dirfd, id, &nr->mnt) < 0)
		return -1;
	if (!o->root) {
		pr_err("the tree has a mount namespace of its own: restore it with --root DIR (its new "
		       "root directory)");
		return -1;
	}
	if (stat(o->root, &st) < 0) {
		pr_perror("--root %s", o->root);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		pr_err("--root %s is not a directory", o->root);
		return -1;
	}
	return 0;
}

/* A network namespace: its images, and the pipe its first process waits
 * on. A non-root client's restore was refused before (restore.c). */
static int net_load(int dirfd, uint32_t id, const struct opts *o, struct ns_restore *nr)
{
	nr->flags |= CLONE_NEWNET;
	if (o->unprivileged)
		return 0;	/* refused by the caller, before anything is read */
	if (netns_rst_load(dirfd, id, o, &nr->net) < 0)
		return -1;
	if (pipe2(nr->net_ready, O_CLOEXEC) < 0) {
		pr_perror("can't make a pipe");
		return -1;
	}
	return 0;
}

/* Differs: the root's namespace of a kind is not the dumper's. */
static bool differs(protobuf_c_boolean has_inv, uint32_t inv, protobuf_c_boolean has_root, uint32_t root)
{
	return has_inv && has_root && inv != root;
}

int ns_restore_load(int dirfd, const InventoryEntry *inv, pid_t root, const TaskKobjIdsEntry *root_ids,
		    const struct opts *o, struct ns_restore *nr)
{
	const TaskKobjIdsEntry *inv_ids = inv->root_ids;

	*nr = (struct ns_restore){ .o = o, .net_ready = { -1, -1 },
				   .urst = { .holder = -1, .user_fd = -1 } };
	if (!inv_ids)
		return 0;	/* no dumper's ids: nothing to compare with */
	/* images of older dumps are named by the root's pid */
	bool per_id = inv->has_ns_per_id && inv->ns_per_id;
	nr->dirfd = dirfd;
	if (differs(inv_ids->has_uts_ns_id, inv_ids->uts_ns_id, root_ids->has_uts_ns_id, root_ids->uts_ns_id)) {
		nr->flags |= CLONE_NEWUTS;
		if (uts_load(dirfd, per_id ? root_ids->uts_ns_id : (uint32_t)root, &nr->uts) < 0)
			return -1;
	}
	if (differs(inv_ids->has_ipc_ns_id, inv_ids->ipc_ns_id, root_ids->has_ipc_ns_id, root_ids->ipc_ns_id)) {
		nr->flags |= CLONE_NEWIPC;
		if (ipc_load(dirfd, per_id ? root_ids->ipc_ns_id : (uint32_t)root, &nr->ipc) < 0)
			return -1;
	}
	if (differs(inv_ids->has_mnt_ns_id, inv_ids->mnt_ns_id, root_ids->has_mnt_ns_id, root_ids->mnt_ns_id)) {
		if (mnt_ns_load(dirfd, per_id ? root_ids->mnt_ns_id : (uint32_t)root, o, nr) < 0)
			return -1;
		/* its processes name it by the root's id (ids-PID.img) */
		if (nr->mnt.nr_ns)
			nr->mnt.ids[0] = root_ids->mnt_ns_id;
	}
	if (differs(inv_ids->has_user_ns_id, inv_ids->user_ns_id, root_ids->has_user_ns_id, root_ids->user_ns_id)) {
		nr->flags |= CLONE_NEWUSER;
		/* a non-root client's is refused by the caller, unread */
		if (!o->unprivileged && userns_load(dirfd, root_ids->user_ns_id, &nr->user) < 0)
			return -1;
		userns_rst_ids(&nr->user);
	}
	/* --join-ns net: the tree goes into that one, as is (CRIU's way) */
	if (differs(inv_ids->has_net_ns_id, inv_ids->net_ns_id, root_ids->has_net_ns_id, root_ids->net_ns_id)) {
		nr->joined_own_net = o->join_net != NULL;
		if (!o->join_net && net_load(dirfd, root_ids->net_ns_id, o, nr) < 0)
			return -1;
	}
	return 0;
}

int ns_restore_make(struct ns_restore *nr, int (*keep)(int fd, void *arg), void *arg)
{
	if (!(nr->flags & CLONE_NEWUSER))
		return 0;
	return userns_rst_make(&nr->user, nr->flags, keep, arg, &nr->urst);
}

unsigned long ns_restore_clone_flags(const struct ns_restore *nr)
{
	return (nr->flags & CLONE_NEWUSER) ? 0 : nr->flags;
}

int ns_restore_enter(const struct ns_restore *nr)
{
	return (nr->flags & CLONE_NEWUSER) ? userns_rst_enter(&nr->urst) : 0;
}

int ns_restore_join_user(const struct ns_restore *nr, const CredsEntry *c)
{
	return (nr->flags & CLONE_NEWUSER) ? userns_rst_join(&nr->urst, &nr->user, c) : 0;
}

int ns_restore_load_mnt(int dirfd, pid_t pid, uint32_t id, uint32_t root_id, const struct opts *o,
			struct ns_restore *nr)
{
	if (!id || id == root_id || (o->unprivileged && (nr->flags & CLONE_NEWNS)))
		return 0;	/* the root's; or refused by the caller */
	if (!(nr->flags & CLONE_NEWNS)) {
		pr_err("image ids-%d.img: pid %d is in a mount namespace of its own, and its root in the dumper's: "
		       "stasis, as CRIU, restores nested mount namespaces only under a root with one of its own",
		       pid, pid);
		return -1;
	}
	for (int k = 0; k < nr->mnt.nr_ns; k++)
		if (nr->mnt.ids[k] == id)
			return 0;	/* loaded for another process */
	return mnt_load(dirfd, id, &nr->mnt);
}

int ns_restore_enter_mnt(struct ns_restore *nr, pid_t pid, uint32_t id, uint32_t parent_id)
{
	struct mnt_ns *m = &nr->mnt;
	if (m->nr_ns < 2 || !id || id == parent_id)
		return 0;	/* where our parent made us */
	for (int k = 0; k < m->nr_ns; k++) {
		if (m->ids[k] != id)
			continue;
		if (setns(m->nsfd[k], CLONE_NEWNS) < 0) {
			pr_perror("pid %d: can't join its mount namespace %u", pid, id);
			return -1;
		}
		nr->mnt.cur = k;	/* in our own copy of it */
		return 0;
	}
	pr_err("pid %d: its mount namespace %u is not among the tree's", pid, id);
	return -1;
}

int ns_mnt_root(const void *ctx, int mnt_id)
{
	const struct mnt_ns *m = &((const struct ns_restore *)ctx)->mnt;
	if (m->nr_ns < 2)
		return -1;
	for (int i = 0; i < m->nr; i++)
		if (m->e[i]->mnt_id == (uint32_t)mnt_id)
			return m->ns[i] == m->cur ? -1 : m->rootfd[m->ns[i]];
	return -1;
}

int ns_restore_net(struct ns_restore *nr, pid_t first)
{
	if (!(nr->flags & CLONE_NEWNET))
		return 0;
	/* the holder's is the tree's (the first process may not be in it yet) */
	if (nr->flags & CLONE_NEWUSER)
		first = userns_rst_holder(&nr->urst);
	if (ns_in_thread(first, CLONE_NEWNET, netns_rst_fill_in, &nr->net) < 0)
		return -1;
	return netns_rst_bridges(&nr->net);
}

void ns_restore_net_release(struct ns_restore *nr, bool ok)
{
	if (!(nr->flags & CLONE_NEWNET) || nr->net_ready[1] < 0)
		return;
	if (ok && write(nr->net_ready[1], "y", 1) != 1)
		pr_perror("can't tell the first process its network namespace is ready");
	close(nr->net_ready[1]);
	nr->net_ready[1] = -1;
}

void ns_restore_undo(struct ns_restore *nr)
{
	netns_rst_undo(&nr->net);
}

/* In the first process: stasis fills its new network namespace first. */
static int net_wait(const struct ns_restore *nr)
{
	char c;
	if (!(nr->flags & CLONE_NEWNET) || nr->net_ready[0] < 0)
		return 0;
	close(nr->net_ready[1]);
	if (read(nr->net_ready[0], &c, 1) != 1) {
		pr_err("the tree's network namespace could not be made");
		return -1;
	}
	close(nr->net_ready[0]);
	return 0;
}

static int fill_names_and_objects(const struct ns_restore *nr)
{
	if (nr->uts && uts_fill(nr->uts) < 0)
		return -1;
	if (nr->ipc.var && ipc_fill(nr->dirfd, &nr->ipc) < 0)
		return -1;
	return 0;
}

/* In a child that joined the tree's user namespace (as its root for an
 * IPC namespace, whose tunables are that root's to write): the objects'
 * owners are named as inside. */
static int fill_inside(const struct ns_restore *nr)
{
	pid_t c = fork();
	if (c == 0)
		_exit(userns_rst_join(&nr->urst, &nr->user, NULL) < 0 || (nr->ipc.var && userns_rst_root() < 0) ||
		      fill_names_and_objects(nr) < 0);
	int status = -1;
	if (c < 0)
		pr_perror("can't fork");
	else
		while (waitpid(c, &status, 0) < 0 && errno == EINTR)
			;
	return c > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int ns_restore_fill(struct ns_restore *nr)
{
	if (net_wait(nr) < 0)
		return -1;
	if ((nr->uts || nr->ipc.var) &&
	    ((nr->flags & CLONE_NEWUSER) ? fill_inside(nr) : fill_names_and_objects(nr)) < 0)
		return -1;
	/* mounts last (the tree's /proc/sys may be read-only), before
	 * anything of the tree is opened by path */
	int user = (nr->flags & CLONE_NEWUSER) ? nr->urst.user_fd : -1;
	return nr->mnt.nr ? mnt_fill(&nr->mnt, nr->dirfd, nr->o, user) : 0;
}

void ns_restore_free(struct ns_restore *nr)
{
	if (nr->uts)
		img_free(nr->uts);
	nr->uts = NULL;
	ipc_free(&nr->ipc);
	mnt_free(&nr->mnt);
	netns_rst_free(&nr->net);
	/* the pipe is there only once ns_restore_load saw a network namespace
	 * (a zeroed ns_restore has fds 0 and 1 in it, not ours) */
	for (int i = 0; i < 2 && (nr->flags & CLONE_NEWNET); i++)
		if (nr->net_ready[i] >= 0)
			close(nr->net_ready[i]);
	nr->net_ready[0] = nr->net_ready[1] = -1;
	if (nr->flags & CLONE_NEWUSER)
		userns_rst_free(&nr->urst);
	nr->flags = 0;
}
