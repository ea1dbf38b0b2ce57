/* cgroups at restore (see cgroup.h): the directories made by mode, each
 * process and thread moved into its set, then the properties. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/img.h"
#include "task/cgroup.h"
#include "util/fsop.h"
#include "util/log.h"

/* Written as soon as a cgroup is made, before anything joins it or it
 * has children (as CRIU): the others once every task is in place. */
static const char *const special_props[] = { "cpuset.cpus", "cpuset.mems", "devices.list",
	"memory.kmem.limit_in_bytes", "memory.swappiness", "memory.oom_control", "memory.use_hierarchy",
	"cgroup.type", NULL };

static bool is_special(const char *name)
{
	for (int i = 0; special_props[i]; i++)
		if (!strcmp(name, special_props[i]))
			return true;
	return false;
}

static int ctl_of(const struct cg_rst *cg, const char *name)
{
	for (size_t i = 0; i < cg->img->n_controllers; i++)
		if (cg_contains(cg->img->controllers[i]->cnames, cg->img->controllers[i]->n_cnames, name))
			return i;
	return -1;
}

static bool v2(const CgControllerEntry *c)
{
	return c->n_cnames == 1 && !c->cnames[0][0];
}

/* ---- loading ---- */

/* A path of the image must stay inside its hierarchy. */
static bool sane_path(const char *p)
{
	for (const char *c = p; *c; c += strcspn(c, "/"), c += *c == '/')
		if (!strncmp(c, "..", 2) && (c[2] == '/' || !c[2]))
			return false;
	return strlen(p) < PATH_MAX / 2;
}

static int check_dirs(CgroupDirEntry **d, size_t n, bool head)
{
	for (size_t i = 0; i < n; i++) {
		if (!sane_path(d[i]->dir_name) || (!head && (!*d[i]->dir_name || strchr(d[i]->dir_name, '/')))) {
			pr_err("cgroup.img: bad cgroup directory name '%s'", d[i]->dir_name);
			return -1;
		}
		for (size_t k = 0; k < d[i]->n_properties; k++)
			if (!*d[i]->properties[k]->name || strchr(d[i]->properties[k]->name, '/')) {
				pr_err("cgroup.img: bad property name '%s'", d[i]->properties[k]->name);
				return -1;
			}
		if (check_dirs(d[i]->children, d[i]->n_children, false) < 0)
			return -1;
	}
	return 0;
}

static int check_image(struct cg_rst *cg)
{
	CgroupEntry *e = cg->img;
	for (size_t i = 0; i < e->n_controllers; i++) {
		if (!e->controllers[i]->n_cnames) {
			pr_err("cgroup.img: a controller entry without a controller");
			return -1;
		}
		if (check_dirs(e->controllers[i]->dirs, e->controllers[i]->n_dirs, true) < 0)
			return -1;
	}
	for (size_t i = 0; i < e->n_sets; i++)
		for (size_t k = 0; k < e->sets[i]->n_ctls; k++) {
			const CgMemberEntry *m = e->sets[i]->ctls[k];
			if (ctl_of(cg, m->name) < 0 || m->path[0] != '/' || !sane_path(m->path) ||
			    (m->has_cgns_prefix && m->cgns_prefix > strlen(m->path))) {
				pr_err("cgroup.img: set %u: bad cgroup %s of hierarchy '%s'", e->sets[i]->id, m->path,
				       m->name);
				return -1;
			}
		}
	return 0;
}

/* --cgroup-root: the new root of controller c, or NULL. */
static const char *new_root(const struct cg_rst *cg, const CgControllerEntry *c)
{
	const char *root = NULL;
	for (int i = 0; i < cg->o->nr_cg_roots; i++)
		if (!cg->o->cg_roots[i].ctl)
			root = cg->o->cg_roots[i].path;
	for (int i = 0; i < cg->o->nr_cg_roots; i++)
		if (cg->o->cg_roots[i].ctl && cg_contains(c->cnames, c->n_cnames, cg->o->cg_roots[i].ctl))
			root = cg->o->cg_roots[i].path;
	return root;
}

/* As CRIU: each top directory of the controller becomes the new root,
 * and the sets' cgroups below it move along. */
static int rewrite_roots(struct cg_rst *cg)
{
	for (size_t i = 0; i < cg->img->n_controllers; i++) {
		CgControllerEntry *c = cg->img->controllers[i];
		const char *root = new_root(cg, c);
		for (size_t d = 0; root && d < c->n_dirs; d++) {
			char *old = c->dirs[d]->dir_name;
			size_t len = strlen(old);
			for (size_t s = 0; s < cg->img->n_sets; s++)
				for (size_t k = 0; k < cg->img->sets[s]->n_ctls; k++) {
					CgMemberEntry *m = cg->img->sets[s]->ctls[k];
					const char *rest = !len ? (strcmp(m->path, "/") ? m->path : "") : m->path + 1 + len;
					if (!cg_contains(c->cnames, c->n_cnames, m->name) ||
					    (len && (strncmp(m->path + 1, old, len) || (*rest && *rest != '/'))))
						continue;
					char *p;
					if (asprintf(&p, "%s%s", strcmp(root, "/") ? root : *rest ? "" : "/", rest) < 0)
						return -1;
					pr_info("cgroup %s of '%s' restored as %s", m->path, m->name, p);
					free(m->path);	/* the image's strings are malloc's */
					m->path = p;
					m->has_cgns_prefix = false;
				}
			char *nd = strdup(root + 1);
			if (!nd)
				return -1;
			free(old);
			c->dirs[d]->dir_name = nd;
		}
	}
	return 0;
}

int cg_rst_load(struct cg_rst *cg, const struct opts *o, int dirfd, uint32_t root_set)
{
	*cg = (struct cg_rst){ .o = o, .root_set = root_set };
	if (o->cg_mode == CG_MODE_IGNORE)
		return 0;
	if (img_load_one(dirfd, IMG_CGROUP, 0, (ProtobufCMessage **)&cg->img) < 0) {
		cg->img = NULL;
		return errno == ENOENT ? 0 : -1;
	}
	if (check_image(cg) < 0 || rewrite_roots(cg) < 0) {
		cg_rst_free(cg);
		return -1;
	}
	return 0;
}

/* ---- directories and properties ---- */

/* The directory path ("/a/b") of controller ci, O_PATH. */
static int open_cgroup(const struct cg_rst *cg, int ci, const char *path)
{
	while (*path == '/')
		path++;
	int fd = openat(cg->yard[ci], *path ? path : ".", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		pr_perror("can't open cgroup /%s", path);
	return fd;
}

static int set_perms(int dirfd, const char *name, const CgroupPerms *p)
{
	if (!p)
		return 0;
	if (fs_chperm(dirfd, name, p->uid, p->gid, p->mode) < 0) {
		pr_perror("can't set owner %u:%u and mode %o of cgroup file %s", p->uid, p->gid, p->mode & 07777,
			  name);
		return -1;
	}
	return 0;
}

static int write_all(int fd, const char *s, size_t len)
{
	return write(fd, s, len) == (ssize_t)len ? 0 : -1;
}

/* cgroup.subtree_control: what it has off, what the image has on. */
static int subtree_control(int fd, const char *want)
{
	char cur[1024], line[2560];
	ssize_t n = read(fd, cur, sizeof(cur) - 1);
	size_t off = 0;
	if (n < 0)
		return -1;
	cur[n] = 0;
	char *save = NULL;
	for (char *t = strtok_r(cur, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
		off += snprintf(line + off, sizeof(line) - off, "-%s ", t);
	char *w = strdup(want);
	if (!w)
		return -1;
	for (char *t = strtok_r(w, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
		off += snprintf(line + off, sizeof(line) - off, "+%s ", t);
	free(w);
	if (off >= sizeof(line))
		return -1;
	return off ? write_all(fd, line, off - 1) : 0;
}

/* One property, as CRIU writes it; lines: one write per line (the
 * kernel reads one), failures of single lines forgiven if lenient. */
static int write_prop(int dirfd, const char *path, const char *name, const char *value, const CgroupPerms *perms,
		      bool lines, bool lenient)
{
	bool sub = !strcmp(name, "cgroup.subtree_control");
	int ret = 0;
	if (set_perms(dirfd, name, perms) < 0)
		return -1;
	if (!strcmp(name, "cgroup.procs") || !strcmp(name, "tasks") ||
	    (!strcmp(name, "cgroup.type") && strcmp(value, "threaded")))
		return 0;
	int fd = fs_open_write(dirfd, name, sub);
	if (fd < 0) {
		pr_perror("can't open cgroup property %s/%s", path, name);
		return -1;
	}
	pr_debug("cgroup %s: %s = %s", path, name, value);
	if (sub) {
		ret = subtree_control(fd, value);
	} else if (lines) {
		for (const char *l = value; *l; l += *l == '\n') {
			size_t len = strcspn(l, "\n");
			if (write_all(fd, l, len) < 0 && !lenient) {
				ret = -1;
				break;
			}
			l += len;
		}
	} else {
		ret = write_all(fd, value, strlen(value));
		if (ret < 0 && errno == EOPNOTSUPP && !strcmp(name, "memory.kmem.limit_in_bytes"))
			ret = 0;	/* gone from newer kernels */
	}
	if (ret < 0)
		pr_perror("can't write '%s' to cgroup property %s/%s", value, path, name);
	close(fd);
	return ret;
}

static int special_prop(int dirfd, const char *path, CgroupPropEntry *p)
{
	if ((!strcmp(p->name, "memory.swappiness") && !strcmp(p->value, "60")) ||
	    (!strcmp(p->name, "memory.oom_control") && !strcmp(p->value, "0")))
		return 0;	/* the defaults */
	if (!strcmp(p->name, "devices.list")) {
		/* a list allowed: everything denied, then each line allowed */
		CgroupPerms w;
		cgroup_perms__init(&w);
		w.mode = 0200;
		w.uid = p->perms ? p->perms->uid : 0;
		w.gid = p->perms ? p->perms->gid : 0;
		if (write_prop(dirfd, path, "devices.deny", "a", &w, false, false) < 0)
			return -1;
		return *p->value ? write_prop(dirfd, path, "devices.allow", p->value, &w, true, false) : 0;
	}
	return write_prop(dirfd, path, p->name, p->value, p->perms, false, false);
}

static int record_made(struct cg_rst *cg, int ci, const char *path)
{
	char **v = realloc(cg->made, (cg->nr_made + 1) * sizeof(*v));
	if (!v)
		return -1;
	cg->made = v;
	return asprintf(&v[cg->nr_made++], "%d:%s", ci, path) < 0 ? -1 : 0;
}

/* v2: the controllers a cgroup's properties belong to ("memory pids"),
 * which a parent made here must give its children. */
static void controllers_of(const CgroupDirEntry *e, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = 0;
	for (size_t k = 0; k < e->n_properties; k++) {
		const char *n = e->properties[k]->name, *dot = strchr(n, '.');
		char want[64];
		if (!dot || dot - n >= 60 || !strncmp(n, "cgroup.", 7))
			continue;
		snprintf(want, sizeof(want), "%.*s", (int)(dot - n), n);
		bool dup = false;
		for (const char *at = buf; (at = strstr(at, want)); at++)
			dup |= (at == buf || at[-1] == ' ') && (at[strlen(want)] == ' ' || !at[strlen(want)]);
		if (!dup && off + strlen(want) + 2 < size)
			off += snprintf(buf + off, size - off, "%s%s", off ? " " : "", want);
	}
}

/* mkdir -p of path in controller ci, each directory made recorded; on
 * v2 each one made above the last gets the controllers enable (what
 * the last one's properties need). */
static int make_path(struct cg_rst *cg, int ci, const char *path, const char *enable)
{
	char sub[PATH_MAX];
	size_t len = strlen(path);
	if (len >= sizeof(sub))
		return -1;
	for (size_t at = 1; at <= len; at++) {
		if (path[at] != '/' && path[at] != 0)
			continue;
		memcpy(sub, path, at);
		sub[at] = 0;
		if (faccessat(cg->yard[ci], sub + 1, F_OK, AT_SYMLINK_NOFOLLOW) == 0 || at == 1)
			continue;
		char *slash = strrchr(sub, '/');
		*slash = 0;
		int parent = open_cgroup(cg, ci, sub);
		*slash = '/';
		if (parent < 0)
			return -1;
		int ret = fs_mkdir(parent, slash + 1, 0755);
		close(parent);
		if (ret < 0) {
			pr_perror("can't make cgroup %s", sub);
			return -1;
		}
		pr_info("cgroup %s made", sub);
		if (record_made(cg, ci, sub) < 0)
			return -1;
		if (at < len && *enable) {
			int fd = open_cgroup(cg, ci, sub);
			ret = fd < 0 ? -1 : write_prop(fd, sub, "cgroup.subtree_control", enable, NULL, false, false);
			if (fd >= 0)
				close(fd);
			if (ret < 0)
				return -1;
		}
	}
	return 0;
}

/* v2: a cgroup made here gives its children their controllers at once
 * (their own properties are written before the late ones, and need them). */
static int early_subtree_control(int dirfd, const char *path, const CgroupDirEntry *e)
{
	for (size_t k = 0; k < e->n_properties; k++)
		if (!strcmp(e->properties[k]->name, "cgroup.subtree_control") && *e->properties[k]->value)
			return write_prop(dirfd, path, "cgroup.subtree_control", e->properties[k]->value,
					  e->properties[k]->perms, false, false);
	return 0;
}

static int prepare_dirs(struct cg_rst *cg, int ci, const char *base, CgroupDirEntry **d, size_t n)
{
	enum cg_mode mode = cg->o->cg_mode;
	for (size_t i = 0; i < n; i++) {
		CgroupDirEntry *e = d[i];
		char path[PATH_MAX];
		const char *name = e->dir_name;
		while (*name == '/')
			name++;
		snprintf(path, sizeof(path), "%s/%s", base, name);
		if (!*name)
			snprintf(path, sizeof(path), "%s", *base ? base : "/");
		bool exists = !strcmp(path, "/") || faccessat(cg->yard[ci], path + 1, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
		if (!exists && errno != ENOENT) {
			pr_perror("can't look for cgroup %s", path);
			return -1;
		}
		int dirfd = -1, ret = 0;
		if (!exists) {
			if (mode == CG_MODE_NONE || mode == CG_MODE_PROPS) {
				pr_err("cgroup %s does not exist (--manage-cgroups=%s makes none)", path,
				       mode == CG_MODE_NONE ? "none" : "props");
				return -1;
			}
			char enable[256] = "";
			if (v2(cg->img->controllers[ci]))
				controllers_of(e, enable, sizeof(enable));
			if (make_path(cg, ci, path, enable) < 0 || (dirfd = open_cgroup(cg, ci, path)) < 0)
				return -1;
			ret = set_perms(dirfd, ".", e->dir_perms);
			if (ret == 0 && v2(cg->img->controllers[ci]))
				ret = early_subtree_control(dirfd, path, e);
			for (size_t k = 0; ret == 0 && k < e->n_properties; k++)
				if (is_special(e->properties[k]->name))
					ret = special_prop(dirfd, path, e->properties[k]);
		} else {
			pr_info("cgroup %s exists", path);
			if (mode == CG_MODE_STRICT) {
				pr_err("cgroup %s exists (--manage-cgroups=strict restores into new ones only)", path);
				return -1;
			}
			if (mode == CG_MODE_SOFT || mode == CG_MODE_DEFAULT || mode == CG_MODE_NONE)
				e->n_properties = 0;	/* left as they are (the image is ours) */
			if (mode != CG_MODE_NONE && strcmp(path, "/")) {
				if ((dirfd = open_cgroup(cg, ci, path)) < 0)
					return -1;
				ret = set_perms(dirfd, ".", e->dir_perms);
			}
		}
		if (dirfd >= 0)
			close(dirfd);
		if (ret < 0 || prepare_dirs(cg, ci, strcmp(path, "/") ? path : "", e->children, e->n_children) < 0)
			return -1;
	}
	return 0;
}

int cg_rst_prepare(struct cg_rst *cg)
{
	if (!cg->img || !cg->img->n_sets)
		return 0;
	size_t n = cg->img->n_controllers;
	cg->yard = malloc(n * sizeof(*cg->yard));
	if (!cg->yard)
		return -1;
	for (size_t i = 0; i < n; i++)
		cg->yard[i] = -1;
	for (size_t i = 0; i < n; i++) {
		CgControllerEntry *c = cg->img->controllers[i];
		char name[1024] = "";
		size_t off = 0;
		for (size_t k = 0; k < c->n_cnames && off < sizeof(name); k++)
			off += snprintf(name + off, sizeof(name) - off, "%s%s", k ? "," : "", c->cnames[k]);
		if ((cg->yard[i] = cg_open_hierarchy(name, cg->o->cgroup_yard)) < 0)
			return -1;
		if (prepare_dirs(cg, i, "", c->dirs, c->n_dirs) < 0)
			return -1;
	}
	return 0;
}

static CgSetEntry *find_set(const struct cg_rst *cg, uint32_t id)
{
	for (size_t i = 0; i < cg->img->n_sets; i++)
		if (cg->img->sets[i]->id == id)
			return cg->img->sets[i];
	return NULL;
}

/* Whether the task is in cgroup path of hierarchy name already (it
 * inherited ours): no write then, which a client may not be allowed
 * (the cgroup.procs of a cgroup of root's it is in all the same). */
static bool already_in(pid_t real, const char *name, const char *path)
{
	char file[64], line[PATH_MAX + 256];
	bool in = false;
	snprintf(file, sizeof(file), "/proc/%d/task/%d/cgroup", real, real);
	FILE *f = fopen(file, "re");
	while (f && !in && fgets(line, sizeof(line), f)) {
		char *n = strchr(line, ':'), *p = n ? strchr(n + 1, ':') : NULL;
		if (!p)
			break;
		*p++ = 0;
		p[strcspn(p, "\n")] = 0;
		in = !strcmp(n + 1, name) && !strcmp(p, path);
	}
	if (f)
		fclose(f);
	return in;
}

int cg_rst_move(struct cg_rst *cg, pid_t real, uint32_t set, bool thread)
{
	if (!cg->img || !set || set == cg->root_set)
		return 0;
	CgSetEntry *s = find_set(cg, set);
	if (!s) {
		pr_err("cgroup.img has no set %u (of pid %d)", set, real);
		return -1;
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d", real);
	for (size_t i = 0; i < s->n_ctls; i++) {
		int ci = ctl_of(cg, s->ctls[i]->name);
		if (!thread && already_in(real, s->ctls[i]->name, s->ctls[i]->path))
			continue;
		int dirfd = open_cgroup(cg, ci, s->ctls[i]->path);
		if (dirfd < 0)
			return -1;
		const char *file = !thread ? "cgroup.procs" : v2(cg->img->controllers[ci]) ? "cgroup.threads" : "tasks";
		int fd = fs_open_write(dirfd, file, false);
		int ret = fd < 0 ? -1 : write_all(fd, buf, len);
		if (ret < 0)
			pr_perror("can't move %s %d into cgroup %s of hierarchy '%s'", thread ? "thread" : "pid", real,
				  s->ctls[i]->path, s->ctls[i]->name);
		if (fd >= 0)
			close(fd);
		close(dirfd);
		if (ret < 0)
			return -1;
	}
	pr_debug("%s %d moved into cgroup set %u", thread ? "thread" : "pid", real, set);
	return 0;
}

int cg_rst_ns_prepare(struct cg_rst *cg, uint32_t root_task_set)
{
	if (!cg->img || !root_task_set || root_task_set == cg->root_set)
		return 0;
	CgSetEntry *s = find_set(cg, root_task_set);
	if (!s) {
		pr_err("cgroup.img has no set %u (of the tree's root)", root_task_set);
		return -1;
	}
	for (size_t i = 0; i < s->n_ctls; i++) {
		CgMemberEntry *m = s->ctls[i];
		if (!m->has_cgns_prefix || !m->cgns_prefix)
			continue;
		if (cg->o->unprivileged) {
			pr_err("the tree had a cgroup namespace of its own, which a non-root client can't make");
			return -1;
		}
		int *v = realloc(cg->ns_fds, (cg->nr_ns_fds + 1) * sizeof(*v));
		if (!v)
			return -1;
		cg->ns_fds = v;
		char root[PATH_MAX];
		snprintf(root, sizeof(root), "%.*s", (int)m->cgns_prefix, m->path);
		int dirfd = open_cgroup(cg, ctl_of(cg, m->name), root);
		if (dirfd < 0)
			return -1;
		v[cg->nr_ns_fds] = fs_open_write(dirfd, "cgroup.procs", false);
		close(dirfd);
		if (v[cg->nr_ns_fds] < 0) {
			pr_perror("can't open cgroup.procs of %s, the root of the tree's cgroup namespace", root);
			return -1;
		}
		cg->nr_ns_fds++;
		pr_info("the tree's cgroup namespace: rooted at %s in hierarchy '%s'", root, m->name);
	}
	return 0;
}

int cg_rst_ns_enter(struct cg_rst *cg)
{
	for (int i = 0; i < cg->nr_ns_fds; i++)
		if (write_all(cg->ns_fds[i], "0", 1) < 0) {
			pr_perror("can't join the root cgroup of the tree's cgroup namespace");
			return -1;
		}
	if (cg->nr_ns_fds && unshare(CLONE_NEWCGROUP) < 0) {
		pr_perror("can't make the tree's cgroup namespace");
		return -1;
	}
	cg_rst_ns_close(cg);
	return 0;
}

void cg_rst_ns_close(struct cg_rst *cg)
{
	for (int i = 0; i < cg->nr_ns_fds; i++)
		close(cg->ns_fds[i]);
	free(cg->ns_fds);
	cg->ns_fds = NULL;
	cg->nr_ns_fds = 0;
}

static int dir_props(struct cg_rst *cg, int ci, const char *base, CgroupDirEntry **d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		CgroupDirEntry *e = d[i];
		char path[PATH_MAX];
		const char *name = e->dir_name;
		while (*name == '/')
			name++;
		snprintf(path, sizeof(path), "%s%s%s", base, *name ? "/" : "", name);
		if (*name) {	/* a hierarchy's root is left as it is */
			int dirfd = -1;
			for (size_t k = 0; k < e->n_properties; k++) {
				CgroupPropEntry *p = e->properties[k];
				if (!strcmp(p->name, "freezer.state") || is_special(p->name))
					continue;
				if (dirfd < 0 && (dirfd = open_cgroup(cg, ci, path)) < 0)
					return -1;
				bool prio = !strcmp(p->name, "net_prio.ifpriomap");
				if (write_prop(dirfd, path, p->name, p->value, p->perms, prio, prio) < 0) {
					close(dirfd);
					return -1;
				}
			}
			if (dirfd >= 0)
				close(dirfd);
		}
		if (dir_props(cg, ci, path, e->children, e->n_children) < 0)
			return -1;
	}
	return 0;
}

int cg_rst_props(struct cg_rst *cg)
{
	if (!cg->img || !cg->yard || cg->o->cg_mode == CG_MODE_NONE)
		return 0;
	for (size_t i = 0; i < cg->img->n_controllers; i++)
		if (dir_props(cg, i, "", cg->img->controllers[i]->dirs, cg->img->controllers[i]->n_dirs) < 0)
			return -1;
	return 0;
}

void cg_rst_undo(struct cg_rst *cg)
{
	for (int i = cg->nr_made - 1; i >= 0; i--) {
		int ci = atoi(cg->made[i]);
		const char *path = strchr(cg->made[i], ':') + 1;
		/* its processes were just killed: give them a moment to go */
		for (int tries = 0; tries < 50; tries++) {
			if (unlinkat(cg->yard[ci], path + 1, AT_REMOVEDIR) == 0 || errno != EBUSY)
				break;
			usleep(20000);
		}
		if (faccessat(cg->yard[ci], path + 1, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			pr_perror("can't remove cgroup %s made by the failed restore", path);
	}
}

void cg_rst_free(struct cg_rst *cg)
{
	cg_rst_ns_close(cg);
	for (size_t i = 0; cg->yard && cg->img && i < cg->img->n_controllers; i++)
		if (cg->yard[i] >= 0)
			close(cg->yard[i]);
	for (int i = 0; i < cg->nr_made; i++)
		free(cg->made[i]);
	free(cg->made);
	free(cg->yard);
	if (cg->img)
		img_free(cg->img);
	memset(cg, 0, sizeof(*cg));
}
