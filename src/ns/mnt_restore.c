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
#include <sys/mount.h>
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
};

struct mctx {
	const struct mnt_ns *ns;
	const struct opts *o;
	int dirfd;		/* the images */
	struct rmnt *m;
	int root;		/* index of the root mount */
	int yard;		/* O_PATH: stasis's tmpfs on --root DIR */
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

int mnt_load(int dirfd, uint32_t id, struct mnt_ns *ns)
{
	char name[IMG_NAME_MAX];
	int roots = 0;

	img_name(name, sizeof(name), IMG_MNTS, id);
	if (img_load_all(dirfd, IMG_MNTS, id, (void ***)&ns->e, &ns->nr) < 0)
		return -1;
	for (int i = 0; i < ns->nr; i++) {
		const MntEntry *e = ns->e[i];
		if (!clean_path(e->mountpoint) || !clean_path(e->root)) {
			pr_err("image %s: mount %u has a mount point or root that is not a plain absolute path", name,
			       e->mnt_id);
			return -1;
		}
		if (find_id(ns, e->mnt_id) != i) {
			pr_err("image %s: mount id %u twice", name, e->mnt_id);
			return -1;
		}
		if (find_id(ns, e->parent_mnt_id) < 0) {
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
	for (int i = 0; i < ns->nr; i++) {
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
	free(ns->e);
	ns->e = NULL;
	ns->nr = 0;
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
		r->fd = r->srcfd = r->clone = -1;
		r->src = -1;
		r->parent = find_id(ns, e->parent_mnt_id);
		if (r->parent < 0) {
			r->how = H_ROOT;
			c->root = i;
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

/* The new root's path p (its topmost mount), made if missing: a
 * directory, or an empty file for a bind of a file. */
static int target(struct mctx *c, const char *p, bool dir)
{
	const unsigned long in = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	int nroot = c->m[c->root].fd;
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

/* A tmpfs's files from the dump's tar. */
static int untar(struct mctx *c, struct rmnt *r, int dst)
{
	char name[64] = "its early fd";
	int in = r->tar >= 0 ? r->tar : open_tar(c, r->e, name, sizeof(name));
	r->tar = -1;
	if (in < 0)
		return -1;
	pid_t p = fork();
	if (p == 0) {
		if (dup2(in, 0) < 0 || fchdir(dst) < 0)
			_exit(126);
		/* exec sets the fs ids back from the others: root inside, all */
		if (c->ns->inside_root && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
			_exit(126);
		int nul = open("/dev/null", O_WRONLY);
		if (nul >= 0)
			dup2(nul, 1);
		execlp("tar", "tar", "--extract", "--gzip", "--no-unquote", "--no-wildcards", "--directory", ".",
		       (char *)NULL);
		_exit(127);
	}
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
static int group_rep(const struct mctx *c, uint32_t shared);

/* A mount of the host's (the root, an external one) whose image says it
 * was the slave of a peer group outside the tree: the host's, which its
 * clone still belongs to. */
static bool external_master(const struct mctx *c, int i)
{
	const MntEntry *e = c->m[i].e;
	return (c->m[i].how == H_ROOT || c->m[i].how == H_EXT) && (e->flags & MS_SLAVE) &&
	       group_rep(c, e->master_id) < 0;
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
	int tfd = resolve(c->m[c->root].fd, r->e->mountpoint + 1, 0, in);
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
	int dst = target(c, e->mountpoint, dir);
	if (dst < 0)
		goto out;
	if (r->how == H_FRESH)
		ret = mount_new(e, dst);
	else if (r->how == H_SUBDIR)
		ret = mount_subdir(c, e, dst);
	else if (r->how == H_EXT)
		ret = attach_clone(c, i, dst);
	else
		ret = bind_fd(src, dst, 0, e->mountpoint);
	close(dst);
	if (ret == 0) {
		r->fd = target(c, e->mountpoint, dir);	/* now the new mount */
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

/* The first mount of a peer group whose root holds every other's root
 * (what MOVE_MOUNT_SET_GROUP needs), or -1: none in the tree. */
static int group_rep(const struct mctx *c, uint32_t shared)
{
	int best = -1;
	for (int j = 0; j < c->ns->nr; j++) {
		const MntEntry *e = c->m[j].e;
		if (!(e->flags & MS_SHARED) || e->shared_id != shared)
			continue;
		if (best < 0 || strlen(e->root) < strlen(c->m[best].e->root))
			best = j;
	}
	return best;
}

/* Peer groups and masters within the tree, as they were; a master
 * outside it (the host's) is not the tree's to join: such a mount is
 * left private, as the log says. Each group's representative first
 * (slave of its master's representative, then shared), the other peers
 * join it. */
static int propagation(struct mctx *c)
{
	int nr = c->ns->nr, left = nr;
	/* binds of a slave are its master's slaves: each as the image says */
	for (int i = 0; i < nr; i++)
		if (!external_master(c, i) && set_propagation(c->m[i].fd, MS_PRIVATE, c->m[i].e->mountpoint) < 0)
			return -1;
	char *done = calloc(nr > 0 ? (size_t)nr : 1, 1);
	if (!done)
		return -1;
	for (int pass = 0; left && pass <= nr; pass++)
		for (int i = 0; i < nr; i++) {
			const struct rmnt *r = &c->m[i];
			const MntEntry *e = r->e;
			int rep = (e->flags & MS_SHARED) ? group_rep(c, e->shared_id) : i;
			int master = (e->flags & MS_SLAVE) ? group_rep(c, e->master_id) : -1;
			if (done[i] || (rep != i && !done[rep]) || (rep == i && master >= 0 && !done[master]))
				continue;
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
				if ((e->flags & MS_SLAVE) && master < 0 && !external_master(c, i))
					pr_info("mount %u at %s: its master (peer group %u) is outside the tree; "
						"restored without it", e->mnt_id, e->mountpoint, e->master_id);
			}
			if (ret == 0 && (e->flags & MS_UNBINDABLE))
				ret = set_propagation(r->fd, MS_UNBINDABLE, e->mountpoint);
			if (ret < 0) {
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

/* Parents first, and a bind after its source. */
static int mount_all(struct mctx *c)
{
	int nr = c->ns->nr, left = nr - 1;
	bool in_order = true;
	while (left) {
		int made = 0;
		for (int i = 0; i < nr; i++) {
			struct rmnt *r = &c->m[i];
			if (r->fd >= 0 || c->m[r->parent].fd < 0 || (r->how == H_BIND && c->m[r->src].fd < 0))
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
		r->tar = -1;
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

int mnt_fill(const struct mnt_ns *ns, int dirfd, const struct opts *o)
{
	struct mctx c = { .ns = ns, .o = o, .dirfd = dirfd, .yard = -1 };
	int ret = -1;

	if (!o->root) {
		pr_err("the tree has a mount namespace of its own: restore it with --root DIR (its new root "
		       "directory)");
		return -1;
	}
	c.m = calloc(ns->nr, sizeof(*c.m));
	if (!c.m)
		return -1;
	if (plan(&c) == 0 && as_inside_root(&c) == 0 && make_root(&c) == 0 && mount_all(&c) == 0 &&
	    set_flags(&c) == 0 && enter_root(&c) == 0 && propagation(&c) == 0)
		ret = 0;
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
	if (ret == 0)
		pr_info("mount namespace restored: %d mounts, root %s", ns->nr, o->root);
	return ret;
}
