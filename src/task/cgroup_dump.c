/* cgroups at dump: each thread's set, and the directories and properties
 * below the sets' cgroups (see cgroup.h). */
#include <dirent.h>
#include <sched.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/img.h"
#include "task/cgroup.h"
#include "util/log.h"
#include "proc/ns_ids.h"

struct cg_member {
	char *name;		/* "cpu,cpuacct", "name=x", "" */
	char *path;
	uint32_t cgns_prefix;
};

struct cg_dump_set {
	uint32_t id;
	struct cg_member *m;	/* sorted by name, as CRIU compares them */
	int nr;
};

struct cg_prop {
	char *name, *value;
	struct stat st;
};

struct cg_dir {
	char *path;		/* from the hierarchy's root: "/a/b" */
	struct stat st;
	struct cg_prop *props;
	int nr_props;
	struct cg_dir *kids;
	int nr_kids;
};

struct cg_dump_ctl {
	char **cnames;		/* the controllers; {"name=x"}; {""} for v2 */
	int nr_cnames;
	struct cg_dir *heads;
	int nr_heads;
	bool threaded;
};

/* ---- /proc/PID/task/TID/cgroup ---- */

static void set_free(struct cg_dump_set *s)
{
	for (int i = 0; i < s->nr; i++) {
		free(s->m[i].name);
		free(s->m[i].path);
	}
	free(s->m);
	s->m = NULL;
	s->nr = 0;
}

static int add_member(struct cg_dump_set *s, const char *name, const char *path)
{
	struct cg_member *v = realloc(s->m, (s->nr + 1) * sizeof(*v));
	if (!v)
		return -1;
	s->m = v;
	int at = 0;
	while (at < s->nr && strcmp(s->m[at].name, name) < 0)
		at++;
	memmove(&s->m[at + 1], &s->m[at], (s->nr - at) * sizeof(*v));
	s->m[at] = (struct cg_member){ strdup(name), strdup(path), 0 };
	s->nr++;
	return s->m[at].name && s->m[at].path ? 0 : -1;
}

/* "ID:NAME:PATH" lines; hierarchies --cgroup-dump-controller leaves out
 * are not members. */
static int parse_cgroups(const struct cg_dump *cg, FILE *f, const char *file, struct cg_dump_set *s)
{
	char line[PATH_MAX + 256];
	int ret = 0;
	while (ret == 0 && fgets(line, sizeof(line), f)) {
		char *name = strchr(line, ':'), *path = name ? strchr(name + 1, ':') : NULL;
		if (!path) {
			pr_err("%s: can't parse the line '%s'", file, line);
			ret = -1;
			break;
		}
		*path++ = 0;
		path[strcspn(path, "\n")] = 0;
		if (!cgp_skip_controller(&cg->props, ++name))
			ret = add_member(s, name, path);
	}
	if (ret < 0)
		set_free(s);
	return ret;
}

static int parse_cgroup_file(const struct cg_dump *cg, const char *file, struct cg_dump_set *s)
{
	FILE *f = fopen(file, "re");
	if (!f) {
		pr_perror("can't read %s", file);
		return -1;
	}
	int ret = parse_cgroups(cg, f, file, s);
	fclose(f);
	return ret;
}

/* ---- cgroup namespaces ---- */

static bool own_cgns(pid_t pid)
{
	return ns_same(pid, 0, "cgroup") != 0;
}

/* The thread's cgroups as it sees them itself: read by a child of ours
 * that joined its cgroup namespace (the kernel shows paths from the
 * reader's namespace root). */
static int ns_view(const struct cg_dump *cg, pid_t pid, pid_t tid, struct cg_dump_set *in)
{
	char file[64], buf[16384];
	int p[2];
	snprintf(file, sizeof(file), "/proc/%d/task/%d/cgroup", pid, tid);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t child = fork();
	if (child == 0) {
		char ns[64];
		snprintf(ns, sizeof(ns), "/proc/%d/ns/cgroup", pid);
		int nsfd = open(ns, O_RDONLY | O_CLOEXEC), fd = -1;
		ssize_t n = -1;
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWCGROUP) == 0 && (fd = open(file, O_RDONLY | O_CLOEXEC)) >= 0)
			n = read(fd, buf, sizeof(buf));
		_exit(n <= 0 || write(p[1], buf, n) != n);
	}
	close(p[1]);
	size_t len = 0;
	ssize_t n;
	while (child > 0 && len < sizeof(buf) && (n = read(p[0], buf + len, sizeof(buf) - len)) > 0)
		len += n;
	close(p[0]);
	int status;
	if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) || !len) {
		pr_err("can't read %s from inside the cgroup namespace of pid %d", file, pid);
		return -1;
	}
	FILE *f = fmemopen(buf, len, "r");
	if (!f)
		return -1;
	int ret = parse_cgroups(cg, f, file, in);
	fclose(f);
	return ret;
}

/* As CRIU: the part of each path above the namespace's root is its
 * prefix (restore makes the namespace there). */
static int cgns_prefixes(const struct cg_dump *cg, pid_t pid, pid_t tid, struct cg_dump_set *s)
{
	struct cg_dump_set in = { 0 };
	if (own_cgns(pid))
		return 0;
	if (ns_view(cg, pid, tid, &in) < 0)
		return -1;
	int ret = 0;
	for (int i = 0; i < in.nr && ret == 0; i++)
		for (int k = 0; k < s->nr; k++) {
			struct cg_member *ext = &s->m[k];
			const char *inner = in.m[i].path + 1;
			if (strcmp(ext->name, in.m[i].name) || !strcmp(ext->path, in.m[i].path))
				continue;
			size_t el = strlen(ext->path), il = strlen(inner);
			if (il > el || strcmp(ext->path + el - il, inner)) {
				pr_err("pid %d: cgroup %s is not below %s, its path in its cgroup namespace", pid,
				       ext->path, in.m[i].path);
				ret = -1;
				break;
			}
			ext->cgns_prefix = el - il;
			if (ext->cgns_prefix && ext->path[ext->cgns_prefix - 1] == '/')
				ext->cgns_prefix--;
		}
	set_free(&in);
	return ret;
}

/* A task below the root in one cgroup namespace (stasis saves one, the
 * root's): the root's prefixes. */
static int stray_prefixes(const struct cg_dump *cg, struct cg_dump_set *s)
{
	const struct cg_dump_set *root = &cg->sets[cg->root_set];
	for (int i = 0; i < root->nr; i++)
		for (int k = 0; k < s->nr; k++) {
			if (strcmp(root->m[i].name, s->m[k].name))
				continue;
			if (strlen(s->m[k].path) < root->m[i].cgns_prefix) {
				pr_err("cgroup %s is above the root's cgroup namespace (%.*s)", s->m[k].path,
				       (int)root->m[i].cgns_prefix, root->m[i].path);
				return -1;
			}
			s->m[k].cgns_prefix = root->m[i].cgns_prefix;
		}
	return 0;
}

static bool same_set(const struct cg_dump_set *a, const struct cg_dump_set *b)
{
	if (a->nr != b->nr)
		return false;
	for (int i = 0; i < a->nr; i++)
		if (strcmp(a->m[i].name, b->m[i].name) || strcmp(a->m[i].path, b->m[i].path) ||
		    a->m[i].cgns_prefix != b->m[i].cgns_prefix)
			return false;
	return true;
}

/* ---- hierarchies ---- */

static struct cg_dump_ctl *find_ctl(struct cg_dump *cg, const char *name)
{
	for (int i = 0; i < cg->nr_ctls; i++)
		if (cg_contains(cg->ctls[i].cnames, cg->ctls[i].nr_cnames, name))
			return &cg->ctls[i];
	return NULL;
}

static struct cg_dump_ctl *new_ctl(struct cg_dump *cg)
{
	struct cg_dump_ctl *v = realloc(cg->ctls, (cg->nr_ctls + 1) * sizeof(*v));
	if (!v)
		return NULL;
	cg->ctls = v;
	memset(&v[cg->nr_ctls], 0, sizeof(*v));
	return &v[cg->nr_ctls++];
}

static int add_cname(struct cg_dump_ctl *c, const char *name)
{
	char **v = realloc(c->cnames, (c->nr_cnames + 1) * sizeof(*v));
	if (!v)
		return -1;
	c->cnames = v;
	return (c->cnames[c->nr_cnames++] = strdup(name)) ? 0 : -1;
}

/* As CRIU: the hierarchies of our own /proc/self/cgroup, by controller
 * (named ones join when a task is found in one). */
static int own_controllers(struct cg_dump *cg, const struct cg_dump_set *own)
{
	for (int i = 0; i < own->nr; i++) {
		char *list = strdup(own->m[i].name), *save = NULL;
		struct cg_dump_ctl *c = NULL;
		if (!list)
			return -1;
		if (!*list && (!(c = new_ctl(cg)) || add_cname(c, "") < 0)) {
			free(list);
			return -1;
		}
		for (char *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
			if (!strncmp(n, "name=", 5))
				continue;
			if ((!c && !(c = new_ctl(cg))) || add_cname(c, n) < 0) {
				free(list);
				return -1;
			}
		}
		free(list);
	}
	return 0;
}

/* ---- directories and their properties ---- */

/* CRIU's reading: the perms always, the value up to 1 KiB without its
 * newline, LLONG_MAX as -1, none for the member lists. */
static int read_prop(int dirfd, const char *name, struct cg_prop *p)
{
	char buf[1024];
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = 0;
	if (fd < 0 || fstat(fd, &p->st) < 0) {
		pr_perror("can't read cgroup property %s", name);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (strcmp(name, "cgroup.procs") && strcmp(name, "tasks"))
		n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		pr_perror("can't read cgroup property %s", name);
		return -1;
	}
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	if (strtoll(buf, NULL, 10) == LLONG_MAX)
		strcpy(buf, "-1");
	int disable;
	if (!strcmp(name, "memory.oom_control")) {
		if (sscanf(buf, "oom_kill_disable %d", &disable) != 1) {
			pr_err("can't parse memory.oom_control '%s'", buf);
			return -1;
		}
		snprintf(buf, sizeof(buf), "%d", disable);
	}
	p->value = strdup(buf);
	p->name = strdup(name);
	return p->value && p->name ? 0 : -1;
}

static int add_props(struct cg_dump_ctl *c, struct cg_dir *d, int dirfd, const char *const *names, int nr)
{
	for (int i = 0; i < nr; i++) {
		bool dup = false;
		for (int k = 0; k < d->nr_props; k++)
			dup |= !strcmp(d->props[k].name, names[i]);
		if (dup || faccessat(dirfd, names[i], F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			continue;	/* not a file of this kernel, or this cgroup */
		struct cg_prop *v = realloc(d->props, (d->nr_props + 1) * sizeof(*v));
		if (!v)
			return -1;
		d->props = v;
		memset(&v[d->nr_props], 0, sizeof(*v));
		if (read_prop(dirfd, names[i], &v[d->nr_props]) < 0)
			return -1;
		struct cg_prop *p = &v[d->nr_props++];
		if ((!strcmp(p->name, "cgroup.type") && !strcmp(p->value, "threaded")) || !strcmp(p->name, "tasks"))
			c->threaded = true;
		pr_debug("cgroup %s: %s = %s", d->path, p->name, p->value);
	}
	return 0;
}

static int add_ctl_props(const struct cg_dump *cg, struct cg_dump_ctl *c, struct cg_dir *d, int dirfd,
			 const char *ctl)
{
	const struct cgp_ctl *p = cgp_get(&cg->props, ctl);
	return p ? add_props(c, d, dirfd, (const char *const *)p->props, p->nr) : 0;
}

static int count(const char *const *v)
{
	int n = 0;
	while (v[n])
		n++;
	return n;
}

/* The controllers' lists, then the global ones. On v2 the controllers
 * are those the cgroup has (cgroup.controllers). */
static int dir_props(const struct cg_dump *cg, struct cg_dump_ctl *c, struct cg_dir *d, int dirfd)
{
	bool v2 = !c->cnames[0][0];
	for (int i = 0; !v2 && i < c->nr_cnames; i++)
		if (add_ctl_props(cg, c, d, dirfd, c->cnames[i]) < 0)
			return -1;
	if (v2) {
		char buf[1024], *save = NULL;
		int fd = openat(dirfd, "cgroup.controllers", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		for (char *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
			if (add_ctl_props(cg, c, d, dirfd, t) < 0)
				return -1;
	}
	const char *const *g = v2 ? cgp_global_v2 : cgp_global_v1;
	return add_props(c, d, dirfd, g, count(g));
}

static void dir_free(struct cg_dir *d)
{
	for (int i = 0; i < d->nr_props; i++) {
		free(d->props[i].name);
		free(d->props[i].value);
	}
	for (int i = 0; i < d->nr_kids; i++)
		dir_free(&d->kids[i]);
	free(d->props);
	free(d->kids);
	free(d->path);
}

static bool is_sub(const char *path, const char *parent)
{
	size_t n = strlen(parent);
	if (!strcmp(parent, "/"))
		return path[0] == '/' && path[1];
	return !strncmp(path, parent, n) && path[n] == '/';
}

/* Where path goes among the saved directories (CRIU's find_dir): 1 if
 * saved already, else 0 with the list it joins (its parent's children,
 * or the heads). */
static int find_slot(struct cg_dir **list, int *nr, const char *path, struct cg_dir ***out, int **out_nr)
{
	for (;;) {
		int i;
		for (i = 0; i < *nr; i++) {
			if (!strcmp((*list)[i].path, path))
				return 1;
			if (is_sub(path, (*list)[i].path))
				break;
		}
		if (i == *nr) {
			*out = list;
			*out_nr = nr;
			return 0;
		}
		nr = &(*list)[i].nr_kids;
		list = &(*list)[i].kids;
	}
}

/* The directory path (dirfd) and everything below it. */
static int walk(const struct cg_dump *cg, struct cg_dump_ctl *c, int dirfd, const char *path)
{
	struct cg_dir **list, d = { 0 };
	int *nr;
	if (find_slot(&c->heads, &c->nr_heads, path, &list, &nr) == 0) {
		if (fstat(dirfd, &d.st) < 0 || !(d.path = strdup(path)) || dir_props(cg, c, &d, dirfd) < 0) {
			dir_free(&d);
			return -1;
		}
		struct cg_dir *v = realloc(*list, (*nr + 1) * sizeof(*v));
		if (!v) {
			dir_free(&d);
			return -1;
		}
		*list = v;
		v[(*nr)++] = d;
		pr_debug("cgroup %s saved", path);
	}
	int fd = dup(dirfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		pr_perror("can't list cgroup %s", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct dirent *e;
	int ret = 0;
	while (ret == 0 && (e = readdir(dir))) {
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char sub[PATH_MAX];
		if (snprintf(sub, sizeof(sub), "%s/%s", strcmp(path, "/") ? path : "", e->d_name) >= (int)sizeof(sub)) {
			pr_err("cgroup path %s/%s is too long", path, e->d_name);
			ret = -1;
			break;
		}
		int kid = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (kid < 0) {
			if (errno == ENOENT)
				continue;	/* removed meanwhile */
			pr_perror("can't open cgroup %s", sub);
			ret = -1;
			break;
		}
		ret = walk(cg, c, kid, sub);
		close(kid);
	}
	closedir(dir);
	return ret;
}

/* The new root of a hierarchy at dump, by --cgroup-root (as CRIU). */
static const char *walk_root(const struct cg_dump *cg, const struct cg_member *m)
{
	const char *root = m->path;
	for (int i = 0; i < cg->o->nr_cg_roots; i++)
		if (!cg->o->cg_roots[i].ctl)
			root = cg->o->cg_roots[i].path;
	for (int i = 0; i < cg->o->nr_cg_roots; i++)
		if (cg->o->cg_roots[i].ctl && !strcmp(cg->o->cg_roots[i].ctl, m->name))
			root = cg->o->cg_roots[i].path;
	return root;
}

/* A new set of the tree's: its hierarchies known, and with a mode, the
 * directories below its cgroups. */
static int collect(struct cg_dump *cg, const struct cg_dump_set *s)
{
	for (int i = 0; i < s->nr; i++) {
		const struct cg_member *m = &s->m[i];
		struct cg_dump_ctl *c = find_ctl(cg, m->name);
		if (!c) {
			if (strncmp(m->name, "name=", 5)) {
				pr_err("cgroup controller %s of the tree is not one of ours", m->name);
				return -1;
			}
			if (!(c = new_ctl(cg)) || add_cname(c, m->name) < 0)
				return -1;
		}
		if (cg->o->cg_mode == CG_MODE_IGNORE)
			continue;
		int root = cg_open_hierarchy(m->name, cg->o->cgroup_yard);
		if (root < 0)
			return -1;
		const char *from = walk_root(cg, m);
		int dirfd = strcmp(from, "/") ? openat(root, from + 1, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : dup(root);
		close(root);
		if (dirfd < 0) {
			pr_perror("can't open cgroup %s of hierarchy '%s'", from, m->name);
			return -1;
		}
		int ret = walk(cg, c, dirfd, from);
		close(dirfd);
		if (ret < 0)
			return -1;
	}
	return 0;
}

/* ---- the interface ---- */

static int get_set(struct cg_dump *cg, struct cg_dump_set *s, bool tree)
{
	for (int i = 0; i < cg->nr_sets; i++)
		if (same_set(&cg->sets[i], s)) {
			set_free(s);
			return i;
		}
	struct cg_dump_set *v = realloc(cg->sets, (cg->nr_sets + 1) * sizeof(*v));
	if (!v) {
		set_free(s);
		return -1;
	}
	cg->sets = v;
	s->id = cg->nr_sets + 1;
	v[cg->nr_sets] = *s;
	pr_debug("cgroup set %u is new", s->id);
	if (tree && collect(cg, &v[cg->nr_sets]) < 0) {
		set_free(&v[cg->nr_sets]);
		return -1;
	}
	return cg->nr_sets++;
}

int cg_dump_begin(struct cg_dump *cg, const struct opts *o)
{
	struct cg_dump_set own = { 0 };
	*cg = (struct cg_dump){ .o = o, .root_set = -1 };
	if (cgp_init(&cg->props, o) < 0)
		return -1;
	if (parse_cgroup_file(cg, "/proc/self/cgroup", &own) < 0 || own_controllers(cg, &own) < 0) {
		set_free(&own);
		return -1;
	}
	return get_set(cg, &own, false) < 0 ? -1 : 0;
}

uint32_t cg_dump_own_set(const struct cg_dump *cg)
{
	return cg->nr_sets ? cg->sets[0].id : 0;
}

int cg_dump_thread(struct cg_dump *cg, pid_t pid, pid_t tid, bool root, uint32_t *set_id)
{
	char file[64];
	struct cg_dump_set s = { 0 };
	snprintf(file, sizeof(file), "/proc/%d/task/%d/cgroup", pid, tid);
	if (parse_cgroup_file(cg, file, &s) < 0)
		return -1;
	int ret = root ? cgns_prefixes(cg, pid, tid, &s) : cg->root_set >= 0 ? stray_prefixes(cg, &s) : 0;
	if (ret < 0) {
		set_free(&s);
		return -1;
	}
	int i = get_set(cg, &s, true);
	if (i < 0)
		return -1;
	if (root && cg->root_set < 0)
		cg->root_set = i;
	*set_id = cg->sets[i].id;
	return 0;
}

/* ---- cgroup.img ---- */

static CgroupPerms *perms(const struct stat *st)
{
	CgroupPerms *p = malloc(sizeof(*p));
	if (p) {
		cgroup_perms__init(p);
		p->mode = st->st_mode;
		p->uid = st->st_uid;
		p->gid = st->st_gid;
	}
	return p;
}

static void free_dir_entries(CgroupDirEntry **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free_dir_entries(v[i]->children, v[i]->n_children);
		for (size_t k = 0; k < v[i]->n_properties; k++) {
			free(v[i]->properties[k]->perms);
			free(v[i]->properties[k]);
		}
		free(v[i]->properties);
		free(v[i]->dir_perms);
		free(v[i]);
	}
	free(v);
}

static CgroupDirEntry **dir_entries(struct cg_dir *d, int n, size_t parent_len)
{
	CgroupDirEntry **v = calloc(n ? n : 1, sizeof(*v));
	for (int i = 0; v && i < n; i++) {
		CgroupDirEntry *e = v[i] = malloc(sizeof(*e));
		if (!e)
			goto fail;
		cgroup_dir_entry__init(e);
		/* a head: its path without the '/'; a child: its name */
		e->dir_name = d[i].path + parent_len + (parent_len != 1);
		e->dir_perms = perms(&d[i].st);
		e->properties = calloc(d[i].nr_props ? d[i].nr_props : 1, sizeof(*e->properties));
		if (!e->dir_perms || !e->properties)
			goto fail;
		for (int k = 0; k < d[i].nr_props; k++, e->n_properties++) {
			CgroupPropEntry *p = e->properties[k] = malloc(sizeof(*p));
			if (!p)
				goto fail;
			cgroup_prop_entry__init(p);
			p->name = d[i].props[k].name;
			p->value = d[i].props[k].value;
			if (!(p->perms = perms(&d[i].props[k].st))) {
				e->n_properties++;
				goto fail;
			}
		}
		e->n_children = d[i].nr_kids;
		if (!(e->children = dir_entries(d[i].kids, d[i].nr_kids, strlen(d[i].path))))
			goto fail;
	}
	return v;
fail:
	free_dir_entries(v, n);
	return NULL;
}

int cg_dump_write(struct cg_dump *cg, int dirfd)
{
	CgroupEntry e = CGROUP_ENTRY__INIT;
	int ret = -1;

	if (cg->root_set <= 0 && cg->nr_sets == 1) {
		pr_info("every task is in our cgroups: no cgroup.img");
		return 0;
	}
	e.n_sets = cg->nr_sets - 1;
	e.sets = calloc(cg->nr_sets, sizeof(*e.sets));
	e.n_controllers = cg->nr_ctls;
	e.controllers = calloc(cg->nr_ctls ? cg->nr_ctls : 1, sizeof(*e.controllers));
	if (!e.sets || !e.controllers)
		goto out;
	for (int i = 1; i < cg->nr_sets; i++) {
		CgSetEntry *s = e.sets[i - 1] = calloc(1, sizeof(*s));
		if (!s)
			goto out;
		cg_set_entry__init(s);
		s->id = cg->sets[i].id;
		s->ctls = calloc(cg->sets[i].nr ? cg->sets[i].nr : 1, sizeof(*s->ctls));
		if (!s->ctls)
			goto out;
		for (int k = 0; k < cg->sets[i].nr; k++, s->n_ctls++) {
			CgMemberEntry *m = s->ctls[k] = malloc(sizeof(*m));
			if (!m)
				goto out;
			cg_member_entry__init(m);
			m->name = cg->sets[i].m[k].name;
			m->path = cg->sets[i].m[k].path;
			m->has_cgns_prefix = cg->sets[i].m[k].cgns_prefix > 0;
			m->cgns_prefix = cg->sets[i].m[k].cgns_prefix;
		}
	}
	for (int i = 0; i < cg->nr_ctls; i++) {
		CgControllerEntry *c = e.controllers[i] = malloc(sizeof(*c));
		if (!c)
			goto out;
		cg_controller_entry__init(c);
		c->cnames = cg->ctls[i].cnames;
		c->n_cnames = cg->ctls[i].nr_cnames;
		c->has_is_threaded = true;
		c->is_threaded = cg->ctls[i].threaded;
		if (!(c->dirs = dir_entries(cg->ctls[i].heads, cg->ctls[i].nr_heads, 0)))
			goto out;
		c->n_dirs = cg->ctls[i].nr_heads;
	}
	ret = img_store_one(dirfd, IMG_CGROUP, 0, &e.base);
out:
	if (ret < 0 && errno == ENOMEM)
		pr_err("out of memory writing cgroup.img");
	for (size_t i = 0; e.sets && i < e.n_sets; i++) {
		if (!e.sets[i])
			continue;
		for (size_t k = 0; k < e.sets[i]->n_ctls; k++)
			free(e.sets[i]->ctls[k]);
		free(e.sets[i]->ctls);
		free(e.sets[i]);
	}
	for (size_t i = 0; e.controllers && i < e.n_controllers; i++)
		if (e.controllers[i]) {
			free_dir_entries(e.controllers[i]->dirs, e.controllers[i]->n_dirs);
			free(e.controllers[i]);
		}
	free(e.sets);
	free(e.controllers);
	return ret;
}

void cg_dump_free(struct cg_dump *cg)
{
	for (int i = 0; i < cg->nr_sets; i++)
		set_free(&cg->sets[i]);
	for (int i = 0; i < cg->nr_ctls; i++) {
		for (int k = 0; k < cg->ctls[i].nr_cnames; k++)
			free(cg->ctls[i].cnames[k]);
		for (int k = 0; k < cg->ctls[i].nr_heads; k++)
			dir_free(&cg->ctls[i].heads[k]);
		free(cg->ctls[i].cnames);
		free(cg->ctls[i].heads);
	}
	free(cg->sets);
	free(cg->ctls);
	cgp_free(&cg->props);
	memset(cg, 0, sizeof(*cg));
}
