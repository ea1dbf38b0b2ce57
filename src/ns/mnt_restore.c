/* Restore of a mount namespace of the tree's own, by the tree's first
 * process inside the new namespace, before any file of the tree is
 * opened: every mount made private (nothing done here reaches the host),
 * a tmpfs of stasis's own mounted on --root DIR as a yard, DIR bound
 * under it as the new root, each mount of the image made in it (anew:
 * proc, sysfs, tmpfs with its files, devpts instances, mqueue, cgroup;
 * or as a bind of the root, of an external path, of another mount of
 * the tree), their flags set, then pivot_root into the new root and the
 * old one detached; last their propagation (shared, slave of another
 * mount of the tree, unbindable). A failure leaves nothing: all of it is
 * in the namespace, which dies with the process. Paths of the image are
 * resolved inside the new root (openat2 RESOLVE_IN_ROOT), never through
 * a link of its out to the host. */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/fsuid.h>
#include <unistd.h>

#include "image/img.h"
#include "ns/mnt.h"
#include "ns/ns.h"
#include "files/files.h"
#include "util/log.h"

#define FD_PATH(buf, fd) (snprintf(buf, sizeof(buf), "/proc/self/fd/%d", fd), buf)
#define MNT_OWN_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME)

/* How each mount comes back, decided from the image alone. */
enum how { H_ROOT, H_EXT, H_FRESH, H_BIND, H_SUBDIR };

struct rmnt {
	const MntEntry *e;
	enum how how;
	int src;		/* H_BIND: the mount it is a bind of */
	int parent;
	int fd;			/* O_PATH on its root once mounted, else -1 */
	int srcfd;		/* H_BIND: its root in its source, found as soon as
				 * the source is mounted (before mounts on it hide it) */
	int clone;		/* H_ROOT, H_EXT: a clone of the host's mount, made
				 * while it is still a peer of the host's (ext_clones) */
	int tar;		/* a fresh tmpfs's files, opened early (inside_root), or -1 */
	int ns;			/* its namespace's index */
};

struct mctx {
	const struct mnt_ns *ns;
	const struct opts *o;
	int dirfd;		/* the images */
	struct rmnt *m;
	int root;		/* index of the root mount */
	int *nsroot;		/* per namespace: index of its root mount */
	int yard;		/* O_PATH: stasis's tmpfs on --root DIR */
	int user;		/* the tree's user namespace, or -1: none */
};

static bool under(const char *path, const char *p)
{
	size_t n = strlen(p);
	if (!strcmp(p, "/"))
		return true;
	return !strncmp(path, p, n) && (path[n] == 0 || path[n] == '/');
}

/* path below p, without its leading slash ("" for p itself). */
static const char *rel(const char *path, const char *p)
{
	const char *r = strcmp(p, "/") ? path + strlen(p) : path;
	while (*r == '/')
		r++;
	return r;
}

/* An absolute path with no "." or ".." component. */
static bool clean_path(const char *p)
{
	if (p[0] != '/')
		return false;
	for (const char *s = p; *s; s++)
		if (s[0] == '/' && s[1] == '.' && (s[2] == 0 || s[2] == '/' || (s[2] == '.' && (s[3] == 0 || s[3] == '/'))))
			return false;
	return true;
}

static int find_id(const struct mnt_ns *ns, uint32_t id)
{
	for (int i = 0; i < ns->nr; i++)
		if (ns->e[i]->mnt_id == id)
			return i;
	return -1;
}

/* Room for n more mounts and one more namespace. */
static int grow(struct mnt_ns *ns, int n)
{
	MntEntry **e = realloc(ns->e, (ns->nr + n) * sizeof(*e));
	if (e)
		ns->e = e;
	int *idx = e ? realloc(ns->ns, (ns->nr + n) * sizeof(*idx)) : NULL;
	if (idx)
		ns->ns = idx;
	uint32_t *ids = idx ? realloc(ns->ids, (ns->nr_ns + 1) * sizeof(*ids)) : NULL;
	if (ids)
		ns->ids = ids;
	int *fds = ids ? realloc(ns->nsfd, (ns->nr_ns + 1) * sizeof(*fds)) : NULL;
	if (fds)
		ns->nsfd = fds;
	int *roots = fds ? realloc(ns->rootfd, (ns->nr_ns + 1) * sizeof(*roots)) : NULL;
	if (!roots) {
		pr_err("out of memory loading mount namespaces");
		return -1;
	}
	ns->rootfd = roots;
	return 0;
}

int mnt_load(int dirfd, uint32_t id, struct mnt_ns *ns)
{
	char name[IMG_NAME_MAX];
	MntEntry **e1;
	int n1, roots = 0, base = ns->nr, k = ns->nr_ns;

	img_name(name, sizeof(name), IMG_MNTS, id);
	if (img_load_all(dirfd, IMG_MNTS, id, (void ***)&e1, &n1) < 0)
		return -1;
	if (grow(ns, n1) < 0) {
		for (int i = 0; i < n1; i++)
			img_free(e1[i]);
		free(e1);
		return -1;
	}
	memcpy(ns->e + base, e1, n1 * sizeof(*e1));
	free(e1);
	for (int i = base; i < base + n1; i++)
		ns->ns[i] = k;
	ns->nr += n1;
	ns->ids[k] = id;
	ns->nsfd[k] = ns->rootfd[k] = -1;
	ns->nr_ns++;
	for (int i = base; i < ns->nr; i++) {
		const MntEntry *e = ns->e[i];
		int p = find_id(ns, e->parent_mnt_id);
		if (!clean_path(e->mountpoint) || !clean_path(e->root)) {
			pr_err("image %s: mount %u has a mount point or root that is not a plain absolute path", name,
			       e->mnt_id);
			return -1;
		}
		if (find_id(ns, e->mnt_id) != i) {
			pr_err("image %s: mount id %u twice (in this image or another's)", name, e->mnt_id);
			return -1;
		}
		if (p >= 0 && ns->ns[p] != k) {
			pr_err("image %s: mount %u has its parent in another namespace's image", name, e->mnt_id);
			return -1;
		}
		if (p < 0) {
			if (strcmp(e->mountpoint, "/")) {
				pr_err("image %s: mount %u at %s has no parent among the mounts", name, e->mnt_id,
				       e->mountpoint);
				return -1;
			}
			roots++;
		}
	}
	if (roots != 1) {
		pr_err("image %s: %d root mounts (one wanted)", name, roots);
		return -1;
	}
	/* no loop of parents: each mount's chain reaches the root */
	for (int i = base; i < ns->nr; i++) {
		int p = i, steps = 0;
		while ((p = find_id(ns, ns->e[p]->parent_mnt_id)) >= 0)
			if (++steps > ns->nr) {
				pr_err("image %s: mount %u is its own ancestor", name, ns->e[i]->mnt_id);
				return -1;
			}
	}
	return 0;
}

void mnt_free(struct mnt_ns *ns)
{
	for (int i = 0; i < ns->nr; i++)
		img_free(ns->e[i]);
	for (int k = 0; k < ns->nr_ns; k++) {
		if (ns->nsfd[k] >= 0)
			close(ns->nsfd[k]);
		if (ns->rootfd[k] >= 0)
			close(ns->rootfd[k]);
	}
	free(ns->e);
	free(ns->ns);
	free(ns->ids);
	free(ns->nsfd);
	free(ns->rootfd);
	ns->e = NULL;
	ns->ns = ns->nsfd = ns->rootfd = NULL;
	ns->ids = NULL;
	ns->nr = ns->nr_ns = 0;
}

static bool fresh_kind(const MntEntry *e)
{
	return e->fstype == MNT_FS_AUTO ? e->fsname && *e->fsname : mnt_fs_name(e->fstype) != NULL;
}

/* A mount of the tree another can be a bind of. */
static bool is_source(const struct mctx *c, int j)
{
	return c->m[j].how == H_ROOT || c->m[j].how == H_EXT || c->m[j].how == H_FRESH;
}

static int plan(struct mctx *c)
{
	const struct mnt_ns *ns = c->ns;
	for (int i = 0; i < ns->nr; i++) {
		const MntEntry *e = ns->e[i];
		struct rmnt *r = &c->m[i];
		r->e = e;
		r->fd = r->srcfd = r->clone = r->tar = -1;
		r->src = -1;
		r->ns = ns->ns[i];
		r->parent = find_id(ns, e->parent_mnt_id);
		if (r->parent < 0)
			c->nsroot[r->ns] = i;
		if (r->parent < 0 && r->ns == 0) {
			r->how = H_ROOT;
			c->root = i;
		} else if (r->parent < 0) {
			r->how = H_BIND;	/* a nested namespace's root: of a mount of the tree */
		} else if (e->ext_key || (e->has_ext_mount && e->ext_mount)) {
			r->how = H_EXT;
		} else {
			r->how = H_BIND;	/* for now */
		}
	}
	/* made anew: the first of a kind mounted fresh with its device's root */
	for (int i = 0; i < ns->nr; i++) {
		struct rmnt *r = &c->m[i];
		if (r->how != H_BIND || !fresh_kind(r->e) || strcmp(r->e->root, "/"))
			continue;
		bool first = true;
		for (int j = 0; j < i; j++)
			if (c->m[j].how == H_FRESH && c->m[j].e->root_dev == r->e->root_dev)
				first = false;
		if (first)
			r->how = H_FRESH;
	}
	for (int i = 0; i < ns->nr; i++) {
		struct rmnt *r = &c->m[i];
		if (r->how != H_BIND)
			continue;
		for (int j = 0; j < ns->nr && r->src < 0; j++)
			if (j != i && is_source(c, j) && c->m[j].e->root_dev == r->e->root_dev &&
			    under(r->e->root, c->m[j].e->root))
				r->src = j;
		if (r->src >= 0)
			continue;
		if (fresh_kind(r->e) && r->e->fstype != MNT_FS_TMPFS) {
			r->how = H_SUBDIR;
			continue;
		}
		pr_err("mount %u at %s (%s, root %s) is a bind of nothing the images hold; stasis can't make it "
		       "again", r->e->mnt_id, r->e->mountpoint, r->e->fsname ? r->e->fsname : "?", r->e->root);
		return -1;
	}
	return 0;
}

static int resolve(int dirfd, const char *path, int flags, unsigned long resolve)
{
	struct open_how how = { .flags = flags | O_PATH | O_CLOEXEC, .resolve = resolve };
	return (int)syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));
}

/* The path p of namespace ns's new root (its topmost mount), made if
 * missing: a directory, or an empty file for a bind of a file. */
static int target(struct mctx *c, int ns, const char *p, bool dir)
{
	const unsigned long in = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	int nroot = c->m[c->nsroot[ns]].fd;
	int fd = resolve(nroot, p + 1, 0, in);
	if (fd >= 0 || errno != ENOENT)
		goto out;
	char *parent = strdup(p), *slash = parent ? strrchr(parent, '/') : NULL;
	if (!slash) {
		free(parent);
		return -1;
	}
	*slash = 0;
	int pfd = resolve(nroot, parent + 1, O_DIRECTORY, in);
	if (pfd >= 0) {
		int r = dir ? mkdirat(pfd, slash + 1, 0755) : mknodat(pfd, slash + 1, S_IFREG | 0644, 0);
		if (r < 0 && errno != EEXIST)
			pr_perror("can't make the mount point %s", p);
		close(pfd);
	}
	free(parent);
	fd = resolve(nroot, p + 1, 0, in);
out:
	if (fd < 0)
		pr_perror("can't reach the mount point %s in the new root", p);
	return fd;
}

static int bind_fd(int src, int dst, unsigned long flags, const char *what)
{
	char s[64], d[64];
	if (mount(FD_PATH(s, src), FD_PATH(d, dst), NULL, MS_BIND | flags, NULL) < 0) {
		pr_perror("can't bind %s", what);
		return -1;
	}
	return 0;
}

/* The dump's tar of a tmpfs's files (or an older CRIU's, by mount id). */
static int open_tar(const struct mctx *c, const MntEntry *e, char *name, size_t size)
{
	snprintf(name, size, "tmpfs-dev-%u.tar.gz.img", e->root_dev);
	int in = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (in < 0 && errno == ENOENT) {
		snprintf(name, size, "tmpfs-%u.tar.gz.img", e->mnt_id);
		in = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC);
	}
	if (in < 0)
		pr_perror("can't open the files of the tmpfs at %s (%s)", e->mountpoint, name);
	return in;
}

/* In a child of ours: the tree's root in its user namespace, if it has
 * one (joined, unless made in it), as the writer of its files must be. */
static int be_tree_root(const struct mctx *c)
{
	return c->user >= 0 && (userns_rst_be_in(c->user) < 0 || userns_rst_root() < 0) ? -1 : 0;
}

/* A tmpfs's files from the dump's tar (owners as seen inside the tree's
 * user namespace: written there). */
static int untar(struct mctx *c, struct rmnt *r, int dst)
{
	char name[64] = "its early fd";
	int in = r->tar >= 0 ? r->tar : open_tar(c, r->e, name, sizeof(name));
	r->tar = -1;
	if (in < 0)
		return -1;
	char *const argv[] = { "tar", "--extract", "--gzip", "--no-unquote", "--no-wildcards", "--directory", ".", NULL };
	char **env = mnt_tar_env();
	pid_t p = env ? fork() : -1;
	if (p == 0) {
		if (dup2(in, 0) < 0 || fchdir(dst) < 0)
			_exit(126);
		/* exec sets the fs ids back from the others: root inside, all */
		if (be_tree_root(c) < 0)
			_exit(126);
		int nul = open("/dev/null", O_WRONLY);
		if (nul >= 0)
			dup2(nul, 1);
		execvpe(argv[0], argv, env);
		_exit(127);
	}
	free(env);
	close(in);
	int status = -1;
	if (p > 0)
		while (waitpid(p, &status, 0) < 0 && errno == EINTR)
			;
	if (p < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_err("tar could not restore the files of the tmpfs at %s from %s (status %#x)", r->e->mountpoint,
		       name, status);
		return -1;
	}
	return 0;
}

static const char *fs_name(const MntEntry *e)
{
	return e->fstype == MNT_FS_AUTO ? e->fsname : mnt_fs_name(e->fstype);
}

/* A new file system of e's kind on dst (no read-only yet: its files,
 * and mounts below, come first). */
static int mount_new(const MntEntry *e, int dst)
{
	char d[64];
	unsigned long f = (e->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)) |
			  (e->sb_flags & (MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK));
	if (mount(e->source, FD_PATH(d, dst), fs_name(e), f, e->options) < 0) {
		pr_perror("can't mount %s (%s, options %s) at %s", fs_name(e), e->source, e->options, e->mountpoint);
		return -1;
	}
	return 0;
}

/* A tmpfs of a tree made outside its user namespace (no pid namespace of
 * its own, user.h) is mounted by a child of ours in it, as its root, as
 * the original was: owned by it, its root directory root's there, the
 * uid= and gid= of its options seen inside (as the dump wrote them). */
static int mount_new_in(struct mctx *c, const MntEntry *e, int dst)
{
	if (c->user < 0 || c->ns->inside_root || e->fstype != MNT_FS_TMPFS)
		return mount_new(e, dst);
	int status = -1;
	pid_t p = fork();
	if (p == 0)
		_exit(be_tree_root(c) < 0 || mount_new(e, dst) < 0);
	if (p < 0)
		pr_perror("can't fork to mount the tmpfs at %s", e->mountpoint);
	while (p > 0 && waitpid(p, &status, 0) < 0 && errno == EINTR)
		;
	return p > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A kind mounted anew whose mount showed a subdirectory of it: the whole
 * in the yard, the subdirectory bound, the whole let go. */
static int mount_subdir(struct mctx *c, const MntEntry *e, int dst)
{
	char name[32];
	snprintf(name, sizeof(name), "m%u", e->mnt_id);
	if (mkdirat(c->yard, name, 0700) < 0) {
		pr_perror("can't make a directory in the mount yard");
		return -1;
	}
	int y = openat(c->yard, name, O_PATH | O_CLOEXEC);
	if (y < 0 || mount_new(e, y) < 0) {
		if (y >= 0)
			close(y);
		return -1;
	}
	int top = resolve(c->yard, name, 0, RESOLVE_NO_MAGICLINKS);
	int src = top < 0 ? -1 : resolve(top, rel(e->root, "/"), 0, RESOLVE_IN_ROOT | RESOLVE_NO_XDEV);
	int ret = src < 0 ? -1 : bind_fd(src, dst, 0, e->mountpoint);
	if (src < 0)
		pr_perror("can't find %s in a new %s for %s", e->root, fs_name(e), e->mountpoint);
	char p[64];
	if (top >= 0 && umount2(FD_PATH(p, top), MNT_DETACH) < 0)
		pr_perror("can't let go of the whole %s mounted for %s", fs_name(e), e->mountpoint);
	close(y);
	if (top >= 0)
		close(top);
	if (src >= 0)
		close(src);
	return ret;
}

static int set_propagation(int fd, uint64_t prop, const char *mp);
/* Which mounts group_rep picks from: any, or those whose propagation is
 * set now (per namespace) or later (across namespaces, deferred). */
enum pick { PICK_ANY, PICK_NOW, PICK_LATER };
static int group_rep(const struct mctx *c, int ns, uint32_t shared, enum pick pick);

/* A mount of the host's (the root, an external one) whose image says it
 * was the slave of a peer group outside the tree: the host's, which its
 * clone still belongs to. */
static bool external_master(const struct mctx *c, int i)
{
	const MntEntry *e = c->m[i].e;
	return (c->m[i].how == H_ROOT || c->m[i].how == H_EXT) && (e->flags & MS_SLAVE) &&
	       group_rep(c, c->m[i].ns, e->master_id, PICK_ANY) < 0;
}

/* Clones of the host's mounts the tree's root and external mounts are
 * made from, taken before anything is made private: a clone of a shared
 * mount is a peer of it, from which a slave of the host's peer group can
 * be made. */
static int host_clones(struct mctx *c)
{
	for (int i = 0; i < c->ns->nr; i++) {
		struct rmnt *r = &c->m[i];
		const char *host = c->o->root;
		if (r->how == H_EXT) {
			const char *key = r->e->ext_key ? r->e->ext_key : r->e->root;
			host = mnt_ext_lookup(c->o, key);
			if (!host) {
				pr_err("mount %u at %s is external (key %s): give its source with --external "
				       "mnt[%s]:PATH (or --ext-mount-map %s:PATH)", r->e->mnt_id, r->e->mountpoint, key,
				       key, key);
				return -1;
			}
		} else if (r->how != H_ROOT) {
			continue;
		}
		r->clone = (int)syscall(SYS_open_tree, AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (r->clone < 0) {
			pr_perror("%s %s", r->how == H_ROOT ? "--root" : "can't take the external mount", host);
			return -1;
		}
	}
	return 0;
}

/* A clone of host_clones put on dst, at once a slave of the host's peer
 * group or private: nothing mounted on it later reaches the host. */
static int attach_clone(struct mctx *c, int i, int dst)
{
	struct rmnt *r = &c->m[i];
	if (syscall(SYS_move_mount, r->clone, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
		pr_perror("can't put the mount at %s in place", r->e->mountpoint);
		return -1;
	}
	int ret = set_propagation(r->clone, external_master(c, i) ? MS_SLAVE : MS_PRIVATE, r->e->mountpoint);
	close(r->clone);
	r->clone = -1;
	return ret;
}

/* The roots of the binds of mount i, in it while nothing is mounted on
 * it yet: a bind of a directory a mount of the tree hides later is of
 * the directory, as it was. */
/* A bind of a pty slave of the tree's devpts (a container's /dev/console,
 * runc's): the slave does not exist in the new instance yet, so the pair
 * is made now, at its index (files/tty_restore.c takes it later). 0 if
 * made. */
static int premake_bound_pty(const struct rmnt *s, const struct rmnt *r)
{
	unsigned pty;
	char end;

	if (!fs_name(s->e) || strcmp(fs_name(s->e), "devpts") || sscanf(r->e->root, "/%u%c", &pty, &end) != 1)
		return -1;
	return tty_premake_pty(s->fd, pty);
}

static int find_bind_sources(struct mctx *c, int i)
{
	const struct rmnt *s = &c->m[i];
	for (int j = 0; j < c->ns->nr; j++) {
		struct rmnt *r = &c->m[j];
		if (r->how != H_BIND || r->src != i || r->e->deleted)
			continue;	/* a deleted root is made for its bind (mount_one) */
		r->srcfd = resolve(s->fd, rel(r->e->root, s->e->root), 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (r->srcfd < 0 && errno == ENOENT && premake_bound_pty(s, r) == 0)
			r->srcfd = resolve(s->fd, rel(r->e->root, s->e->root), 0,
					   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (r->srcfd < 0) {
			pr_perror("can't find %s in mount %u for the bind at %s", r->e->root, s->e->mnt_id,
				  r->e->mountpoint);
			return -1;
		}
	}
	return 0;
}

/* A bind's root that had been removed, made again in its source for the
 * bind (a directory, or a file where the mount point is one) and removed
 * after it, so the bind shows it deleted as it was. */
struct removed_root {
	int dir;		/* its directory, or -1 */
	char *buf;
	const char *base;
	int unlink_flags;
};

static int make_removed_root(struct mctx *c, int i, struct removed_root *g)
{
	struct rmnt *r = &c->m[i];
	const struct rmnt *s = &c->m[r->src];
	const unsigned long in = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	struct stat st;
	g->buf = strdup(rel(r->e->root, s->e->root));
	char *slash = g->buf ? strrchr(g->buf, '/') : NULL;
	g->base = slash ? slash + 1 : g->buf;
	if (!g->base || !*g->base)
		return -1;
	if (slash)
		*slash = 0;
	int tfd = resolve(c->m[c->nsroot[r->ns]].fd, r->e->mountpoint + 1, 0, in);
	bool dir = tfd < 0 || (fstat(tfd, &st) == 0 && S_ISDIR(st.st_mode));
	if (tfd >= 0)
		close(tfd);
	g->dir = resolve(s->fd, slash ? g->buf : "", O_DIRECTORY, in);
	if (g->dir < 0 || (dir ? mkdirat(g->dir, g->base, 0700) : mknodat(g->dir, g->base, S_IFREG | 0600, 0)) < 0) {
		pr_perror("can't make the removed root %s of the bind at %s again", r->e->root, r->e->mountpoint);
		return -1;
	}
	g->unlink_flags = dir ? AT_REMOVEDIR : 0;
	r->srcfd = resolve(g->dir, g->base, 0, in);
	if (r->srcfd < 0) {
		pr_perror("can't find %s again", r->e->root);
		return -1;
	}
	return 0;
}

static void drop_removed_root(struct removed_root *g)
{
	if (g->dir >= 0) {
		if (g->unlink_flags >= 0 && unlinkat(g->dir, g->base, g->unlink_flags) < 0)
			pr_perror("can't remove %s again", g->base);
		close(g->dir);
	}
	free(g->buf);
}

/* A nested namespace's root is made in the yard, on ns-ID. */
static int nested_root(struct mctx *c, int i)
{
	char name[32];
	snprintf(name, sizeof(name), "ns-%u", c->ns->ids[c->m[i].ns]);
	if (mkdirat(c->yard, name, 0755) < 0 && errno != EEXIST) {
		pr_perror("can't make the root of mount namespace %u in the yard", c->ns->ids[c->m[i].ns]);
		return -1;
	}
	int fd = resolve(c->yard, name, O_DIRECTORY, RESOLVE_NO_MAGICLINKS);
	if (fd < 0)
		pr_perror("can't reach the root of mount namespace %u in the yard", c->ns->ids[c->m[i].ns]);
	return fd;
}

static int mount_one(struct mctx *c, int i)
{
	struct rmnt *r = &c->m[i];
	const MntEntry *e = r->e;
	int src = -1, ret = -1;
	bool dir = true;
	struct stat st;
	struct removed_root gone = { .dir = -1, .unlink_flags = -1 };

	if (r->how == H_EXT) {
		if (fstat(r->clone, &st) == 0)
			dir = S_ISDIR(st.st_mode);
	} else if (r->how == H_BIND) {
		if (e->deleted && make_removed_root(c, i, &gone) < 0)
			goto out;
		src = r->srcfd;
		r->srcfd = -1;
	}
	if (src >= 0 && fstat(src, &st) == 0)
		dir = S_ISDIR(st.st_mode);
	int dst = r->parent < 0 ? nested_root(c, i) : target(c, r->ns, e->mountpoint, dir);
	if (dst < 0)
		goto out;
	if (r->how == H_FRESH)
		ret = mount_new_in(c, e, dst);
	else if (r->how == H_SUBDIR)
		ret = mount_subdir(c, e, dst);
	else if (r->how == H_EXT)
		ret = attach_clone(c, i, dst);
	else
		ret = bind_fd(src, dst, 0, e->mountpoint);
	close(dst);
	if (ret == 0) {
		/* now the new mount */
		r->fd = r->parent < 0 ? nested_root(c, i) : target(c, r->ns, e->mountpoint, dir);
		if (r->fd < 0)
			ret = -1;
	}
	if (ret == 0 && r->how == H_FRESH && e->fstype == MNT_FS_TMPFS)
		ret = untar(c, r, r->fd);
	if (ret == 0)
		ret = find_bind_sources(c, i);
	if (ret == 0)
		pr_debug("mount %u: %s at %s", e->mnt_id, fs_name(e) ? fs_name(e) : "bind", e->mountpoint);
out:
	if (src >= 0)
		close(src);
	drop_removed_root(&gone);
	return ret;
}

/* The yard on DIR and the new root in it (a bind of DIR itself). */
static int make_root(struct mctx *c)
{
	if (host_clones(c) < 0)
		return -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("stasis-yard", c->o->root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0) {
		pr_perror("can't make a mount yard on %s", c->o->root);
		return -1;
	}
	c->yard = open(c->o->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int ret = -1;
	if (c->yard >= 0 && mkdirat(c->yard, "root", 0755) == 0) {
		int at = openat(c->yard, "root", O_PATH | O_CLOEXEC);
		if (at >= 0) {
			ret = attach_clone(c, c->root, at);
			close(at);
		}
	}
	if (ret == 0)
		c->m[c->root].fd = resolve(c->yard, "root", O_DIRECTORY, RESOLVE_NO_MAGICLINKS);
	if (ret < 0 || c->m[c->root].fd < 0) {
		pr_perror("can't bind %s as the new root", c->o->root);
		ret = -1;
	}
	if (ret == 0)
		ret = find_bind_sources(c, c->root);
	return ret;
}

/* Flags of each mount as they were: a superblock read-only, then each
 * mount's own (the atime ones too: none of them is strictatime). */
static int set_flags(struct mctx *c)
{
	char p[64];
	for (int i = 0; i < c->ns->nr; i++) {
		const struct rmnt *r = &c->m[i];
		const MntEntry *e = r->e;
		if (r->how == H_FRESH && (e->sb_flags & MS_RDONLY) &&
		    mount(NULL, FD_PATH(p, r->fd), NULL, MS_REMOUNT | (e->sb_flags & ~MS_MGC_MSK), NULL) < 0) {
			pr_perror("can't make the %s at %s read-only", fs_name(e), e->mountpoint);
			return -1;
		}
		unsigned long f = e->flags & MNT_OWN_FLAGS;
		if (!(f & (MS_NOATIME | MS_RELATIME)))
			f |= MS_STRICTATIME;
		if (mount(NULL, FD_PATH(p, r->fd), NULL, MS_REMOUNT | MS_BIND | f, NULL) < 0) {
			pr_perror("can't set the flags %#lx of the mount at %s", f, e->mountpoint);
			return -1;
		}
	}
	return 0;
}

static int enter_root(struct mctx *c)
{
	if (fchdir(c->m[c->root].fd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0) {
		pr_perror("can't pivot_root into %s", c->o->root);
		return -1;
	}
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
		pr_perror("can't let go of the old root");
		return -1;
	}
	return 0;
}

static int set_propagation(int fd, uint64_t prop, const char *mp)
{
	struct mount_attr a = { .propagation = prop };
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0) {
		pr_perror("can't make the mount at %s %s", mp,
			  prop == MS_SHARED ? "shared" : prop == MS_SLAVE ? "a slave" : "unbindable");
		return -1;
	}
	return 0;
}

/* to joins from's peer group and master (MOVE_MOUNT_SET_GROUP). */
static int join_group(const struct rmnt *from, const struct rmnt *to)
{
	if (syscall(SYS_move_mount, from->fd, "", to->fd, "",
		    MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
		pr_perror("can't make the mount at %s a peer of the one at %s", to->e->mountpoint,
			  from->e->mountpoint);
		return -1;
	}
	return 0;
}

static bool deferred(const struct mctx *c, int i);

/* The first mount of a peer group in namespace ns (-1: in any) whose
 * root holds every other's root (what MOVE_MOUNT_SET_GROUP needs), or -1:
 * none there. */
static int group_rep(const struct mctx *c, int ns, uint32_t shared, enum pick pick)
{
	int best = -1;
	for (int j = 0; j < c->ns->nr; j++) {
		const MntEntry *e = c->m[j].e;
		if ((ns >= 0 && c->m[j].ns != ns) || !(e->flags & MS_SHARED) || e->shared_id != shared)
			continue;
		if (pick != PICK_ANY && deferred(c, j) != (pick == PICK_LATER))
			continue;
		if (best < 0 || strlen(e->root) < strlen(c->m[best].e->root))
			best = j;
	}
	return best;
}

/* A peer group with mounts in two namespaces or more. */
static bool spans(const struct mctx *c, uint32_t shared)
{
	int first = -1;
	for (int j = 0; j < c->ns->nr; j++) {
		const MntEntry *e = c->m[j].e;
		if (!(e->flags & MS_SHARED) || e->shared_id != shared)
			continue;
		if (first >= 0 && c->m[j].ns != first)
			return true;
		first = c->m[j].ns;
	}
	return false;
}

/* 1: mount a is one of b's parents, up to its namespace's root. */
static bool ancestor(const struct mctx *c, int a, int b)
{
	for (int p = c->m[b].parent, n = 0; p >= 0 && n <= c->ns->nr; p = c->m[p].parent, n++)
		if (p == a)
			return true;
	return false;
}

/* A mount of a nested namespace no path reaches there: another, not one
 * of its parents, is on its mount point or above it. */
static bool hidden(const struct mctx *c, int i)
{
	const char *mp = c->m[i].e->mountpoint;
	for (int j = 0; j < c->ns->nr; j++)
		if (j != i && c->m[j].ns == c->m[i].ns && under(mp, c->m[j].e->mountpoint) && !ancestor(c, j, i))
			return true;
	return false;
}

/* A mount whose propagation waits for all namespaces to be made
 * (cross_propagation): a peer of a group spanning namespaces, or a
 * slave (not shared) of one. Until then it is private. A hidden mount
 * of a nested namespace can't be reached there then: its group stays
 * its namespace's. */
static bool deferred(const struct mctx *c, int i)
{
	const MntEntry *e = c->m[i].e;
	if (c->m[i].ns != 0 && hidden(c, i))
		return false;
	if (e->flags & MS_SHARED)
		return spans(c, e->shared_id);
	return (e->flags & MS_SLAVE) && spans(c, e->master_id);
}

/* One mount's propagation: it joins its group's representative rep, or,
 * being it, becomes a slave of master's group (-1: none) and shared; then
 * unbindable. */
static int set_one(struct mctx *c, int i, int rep, int master)
{
	const struct rmnt *r = &c->m[i];
	const MntEntry *e = r->e;
	int ret = 0;
	if (rep != i) {
		ret = join_group(&c->m[rep], r);
	} else {
		if (master >= 0)
			ret = join_group(&c->m[master], r);
		if (ret == 0 && master >= 0)
			ret = set_propagation(r->fd, MS_SLAVE, e->mountpoint);
		if (ret == 0 && (e->flags & MS_SHARED))
			ret = set_propagation(r->fd, MS_SHARED, e->mountpoint);
		if ((e->flags & MS_SLAVE) && master < 0 && !spans(c, e->master_id) && !external_master(c, i))
			pr_info("mount %u at %s: its master (peer group %u) is outside the tree; "
				"restored without it", e->mnt_id, e->mountpoint, e->master_id);
	}
	if (ret == 0 && (e->flags & MS_UNBINDABLE))
		ret = set_propagation(r->fd, MS_UNBINDABLE, e->mountpoint);
	return ret;
}

/* Peer groups and masters as they were: those of namespace ns but the
 * deferred mounts, or (ns -1) the deferred ones, across namespaces. Each
 * group's representative first (slave of its master's representative,
 * then shared), the other peers join it. */
static int propagate(struct mctx *c, int ns)
{
	int nr = c->ns->nr, left = 0;
	char *done = calloc(nr > 0 ? (size_t)nr : 1, 1);
	if (!done)
		return -1;
	for (int i = 0; i < nr; i++) {
		done[i] = ns >= 0 ? c->m[i].ns != ns || deferred(c, i) : !deferred(c, i);
		left += !done[i];
	}
	for (int pass = 0; left && pass <= nr; pass++)
		for (int i = 0; i < nr; i++) {
			const MntEntry *e = c->m[i].e;
			enum pick pick = ns >= 0 ? PICK_NOW : PICK_LATER;
			int rep = (e->flags & MS_SHARED) ? group_rep(c, ns, e->shared_id, pick) : i;
			bool own_master = (e->flags & MS_SLAVE) && (ns < 0 || !spans(c, e->master_id));
			int master = own_master ? group_rep(c, ns, e->master_id, PICK_ANY) : -1;
			if (done[i] || (rep != i && !done[rep]) || (rep == i && master >= 0 && !done[master]))
				continue;
			if (set_one(c, i, rep, master) < 0) {
				free(done);
				return -1;
			}
			done[i] = 1;
			left--;
		}
	free(done);
	if (left) {
		pr_err("the mounts' masters go round in a loop; stasis can't restore their propagation");
		return -1;
	}
	return 0;
}

/* Namespace ns's propagation: a master outside the tree (the host's) is
 * not the tree's to join: such a mount is left private, as the log says;
 * a mount of a group spanning namespaces waits (cross_propagation). */
static int propagation(struct mctx *c, int ns)
{
	/* binds of a slave are its master's slaves: each as the image says */
	for (int i = 0; i < c->ns->nr; i++)
		if (c->m[i].ns == ns && !external_master(c, i) &&
		    set_propagation(c->m[i].fd, MS_PRIVATE, c->m[i].e->mountpoint) < 0)
			return -1;
	return propagate(c, ns);
}

/* The deferred mounts of a nested namespace: fds on them there. */
static int reach_nested(struct mctx *c)
{
	for (int i = 0; i < c->ns->nr; i++) {
		struct rmnt *r = &c->m[i];
		if (r->ns == 0 || !deferred(c, i))
			continue;
		close(r->fd);
		r->fd = resolve(c->ns->rootfd[r->ns], r->e->mountpoint + 1, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (r->fd < 0) {
			pr_perror("can't reach the mount at %s in mount namespace %u", r->e->mountpoint,
				  c->ns->ids[r->ns]);
			return -1;
		}
	}
	return 0;
}

/* Peer groups spanning namespaces, once all are made (a copy of a shared
 * mount would be its peer, and their detached yard's would take mounts
 * of the others away with them): the group's representative shared (a
 * slave of its master first), the other peers join it, and the slaves
 * of such a group join it as slaves. */
static int cross_propagation(struct mctx *c)
{
	bool any = false;
	for (int i = 0; i < c->ns->nr && !any; i++)
		any = deferred(c, i);
	if (!any)
		return 0;
	return reach_nested(c) < 0 ? -1 : propagate(c, -1);
}

/* Parents first, and a bind after its source. */
static int mount_all(struct mctx *c)
{
	int nr = c->ns->nr, left = nr - 1;
	bool in_order = true;
	while (left) {
		int made = 0;
		for (int i = 0; i < nr; i++) {
			struct rmnt *r = &c->m[i];
			if (r->fd >= 0 || (r->parent >= 0 && c->m[r->parent].fd < 0) ||
			    (r->how == H_BIND && c->m[r->src].fd < 0))
				continue;
			/* siblings in the order they were mounted (stacked ones last) */
			bool earlier = false;
			for (int j = 0; j < nr && in_order && !earlier; j++)
				earlier = j != i && c->m[j].fd < 0 && c->m[j].parent == r->parent &&
					  c->m[j].e->mnt_id < r->e->mnt_id;
			if (earlier)
				continue;
			if (mount_one(c, i) < 0)
				return -1;
			made++;
			left--;
		}
		if (!made && in_order) {
			in_order = false;	/* a bind waits for a later source */
			continue;
		}
		if (!made) {
			pr_err("the mounts of the images depend on each other in a loop; stasis can't order them");
			return -1;
		}
		in_order = true;
	}
	return 0;
}

/* In the tree's user namespace our ids outside (root's) have no name:
 * file systems mounted there take no new file of ours (EOVERFLOW). New
 * files are then made as its root, 0 inside, and the images, root's,
 * are opened before. */
static int as_inside_root(struct mctx *c)
{
	char name[64];
	for (int i = 0; i < c->ns->nr; i++) {
		struct rmnt *r = &c->m[i];
		if (c->ns->inside_root && r->how == H_FRESH && r->e->fstype == MNT_FS_TMPFS &&
		    (r->tar = open_tar(c, r->e, name, sizeof(name))) < 0)
			return -1;
	}
	if (!c->ns->inside_root)
		return 0;
	setfsgid(0);
	setfsuid(0);
	if ((int)setfsuid(-1) != 0 || (int)setfsgid(-1) != 0) {
		pr_err("the tree's user namespace maps no uid or gid 0: stasis can't make its mounts' files there");
		return -1;
	}
	return 0;
}

/* An fd on path (a mount namespace, a root directory: flags), kept
 * clear of the tree's fds. */
static int keep_ns(const struct mnt_ns *ns, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't open %s", path);
		return -1;
	}
	int high = fcntl(fd, F_DUPFD_CLOEXEC, ns->fd_floor);
	if (high < 0)
		pr_perror("can't move the fd of a mount namespace above %d", ns->fd_floor);
	close(fd);
	return high;
}

/* A shared root can't be pivot_root's new root: private for it, then
 * back in its peer group (that of another of its peers in the
 * namespace, or a group of its own). */
static int reshare_root(struct mctx *c, int k)
{
	const MntEntry *root = c->m[c->nsroot[k]].e;
	for (int j = 0; j < c->ns->nr; j++) {
		const MntEntry *e = c->m[j].e;
		if (j == c->nsroot[k] || c->m[j].ns != k || !(e->flags & MS_SHARED) || e->shared_id != root->shared_id)
			continue;
		int peer = resolve(AT_FDCWD, e->mountpoint, 0, RESOLVE_NO_MAGICLINKS);
		int me = open("/", O_PATH | O_CLOEXEC);
		int ret = peer < 0 || me < 0 ? -1 :
			  (int)syscall(SYS_move_mount, peer, "", me, "",
				       MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
		if (peer >= 0)
			close(peer);
		if (me >= 0)
			close(me);
		if (ret == 0)
			return 0;
	}
	if (mount(NULL, "/", NULL, MS_SHARED, NULL) < 0) {
		pr_perror("can't make the root of mount namespace %u shared", c->ns->ids[k]);
		return -1;
	}
	return 0;
}

/* In a child of ours, a copy of our namespace rooted at nested
 * namespace k's root in the yard: its new namespace, made in the tree's
 * user namespace if it has one (owned by it, as the unshare -m that made
 * the original was: its mounts are not locked more than ours). Its pid
 * as our /proc knows it (a pid namespace of the tree's own is not our
 * /proc's) goes to the parent through ready. */
static void nested_main(struct mctx *c, int k, int ready, int done)
{
	char b, self[32] = "";
	bool shared = (c->m[c->nsroot[k]].e->flags & MS_SHARED) && !deferred(c, c->nsroot[k]);
	if (readlink("/proc/self", self, sizeof(self) - 1) < 0 || fchdir(c->m[c->nsroot[k]].fd) < 0 ||
	    userns_rst_be_in(c->user) < 0 || unshare(CLONE_NEWNS) < 0 ||
	    (shared && mount(NULL, ".", NULL, MS_PRIVATE, NULL) < 0) || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
		pr_perror("can't make mount namespace %u", c->ns->ids[k]);
		_exit(1);
	}
	if (shared && reshare_root(c, k) < 0)
		_exit(1);
	/* our parent opens our namespace and root in /proc: a tree made in
	 * its user namespace changed its fs ids there (as_inside_root), which
	 * left us undumpable, open to a ptracer of stasis's namespace only */
	if (prctl(PR_SET_DUMPABLE, 1) < 0 || write(ready, self, sizeof(self)) != sizeof(self))
		_exit(1);
	/* until our parent holds the namespace */
	while (read(done, &b, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* Nested namespace k, made from its mounts in the yard once their
 * propagation is set (a copy of a shared mount is its peer, of a slave a
 * slave of the same master); the yard's are then made private, so their
 * detaching with our old root does not reach the copies. */
static int make_nested(struct mctx *c, int k)
{
	int ready[2], done[2], ret = -1;
	char path[64], self[32];

	if (propagation(c, k) < 0)
		return -1;
	if (pipe2(ready, O_CLOEXEC) < 0) {
		pr_perror("can't make a pipe");
		return -1;
	}
	if (pipe2(done, O_CLOEXEC) < 0) {
		pr_perror("can't make a pipe");
		close(ready[0]);
		close(ready[1]);
		return -1;
	}
	pid_t p = fork();
	if (p == 0) {
		close(ready[0]);
		close(done[1]);
		nested_main(c, k, ready[1], done[0]);
	}
	close(ready[1]);
	close(done[0]);
	if (p > 0 && read(ready[0], self, sizeof(self)) == sizeof(self)) {
		self[sizeof(self) - 1] = 0;
		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", atoi(self));
		c->ns->nsfd[k] = keep_ns(c->ns, path, O_RDONLY);
		snprintf(path, sizeof(path), "/proc/%d/root", atoi(self));
		c->ns->rootfd[k] = keep_ns(c->ns, path, O_PATH | O_DIRECTORY);
		ret = c->ns->nsfd[k] < 0 || c->ns->rootfd[k] < 0 ? -1 : 0;
	} else if (p < 0) {
		pr_perror("can't fork to make mount namespace %u", c->ns->ids[k]);
	}
	close(ready[0]);
	close(done[1]);
	while (p > 0 && waitpid(p, NULL, 0) < 0 && errno == EINTR)
		;
	char fp[64];
	if (mount(NULL, FD_PATH(fp, c->m[c->nsroot[k]].fd), NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		pr_perror("can't make the yard's mounts of mount namespace %u private", c->ns->ids[k]);
		ret = -1;
	}
	if (ret == 0)
		pr_info("mount namespace %u made", c->ns->ids[k]);
	return ret;
}

int mnt_fill(struct mnt_ns *ns, int dirfd, const struct opts *o, int user)
{
	struct mctx c = { .ns = ns, .o = o, .dirfd = dirfd, .yard = -1, .user = user };
	int ret = -1;

	if (!o->root) {
		pr_err("the tree has a mount namespace of its own: restore it with --root DIR (its new root "
		       "directory)");
		return -1;
	}
	c.m = calloc(ns->nr, sizeof(*c.m));
	c.nsroot = calloc(ns->nr_ns, sizeof(*c.nsroot));
	if (!c.m || !c.nsroot) {
		free(c.m);
		free(c.nsroot);
		return -1;
	}
	if (plan(&c) < 0)
		goto out;
	/* ours, while the host's /proc is there: the root's namespace */
	if (ns->nr_ns > 1 && (ns->nsfd[0] = keep_ns(ns, "/proc/self/ns/mnt", O_RDONLY)) < 0)
		goto out;
	if (as_inside_root(&c) < 0 || make_root(&c) < 0 || mount_all(&c) < 0 || set_flags(&c) < 0)
		goto out;
	for (int k = 1; k < ns->nr_ns; k++)
		if (make_nested(&c, k) < 0)
			goto out;
	if (enter_root(&c) == 0 && propagation(&c, 0) == 0)
		ret = 0;
	if (ret == 0 && ns->nr_ns > 1 && (ns->rootfd[0] = keep_ns(ns, "/", O_PATH | O_DIRECTORY)) < 0)
		ret = -1;
	if (ret == 0 && cross_propagation(&c) < 0)
		ret = -1;
out:
	for (int i = 0; i < ns->nr; i++) {
		if (c.m[i].tar >= 0)
			close(c.m[i].tar);
		if (c.m[i].fd >= 0)
			close(c.m[i].fd);
		if (c.m[i].srcfd >= 0)
			close(c.m[i].srcfd);
		if (c.m[i].clone >= 0)
			close(c.m[i].clone);
	}
	if (c.yard >= 0)
		close(c.yard);
	free(c.m);
	free(c.nsroot);
	if (ret == 0)
		pr_info("mount namespace%s restored: %d mounts in %d, root %s", ns->nr_ns > 1 ? "s" : "", ns->nr,
			ns->nr_ns, o->root);
	return ret;
}
