/* The properties a dump saves per controller (see cgroup_props.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "task/cgroup_props.h"
#include "util/fsop.h"
#include "util/log.h"
#include "util/grow.h"

const char *const cgp_global_v1[] = { "cgroup.clone_children", "notify_on_release", "cgroup.procs", "tasks",
				      NULL };
const char *const cgp_global_v2[] = { "cgroup.subtree_control", "cgroup.max.descendants", "cgroup.max.depth",
				      "cgroup.freeze", "cgroup.type", NULL };

/* CRIU's built-in lists (the order matters: memory.limit_in_bytes before
 * memory.memsw.limit_in_bytes). Stasis adds the cgroup v2 names of the
 * same limits (memory.high, cpu.weight, ...): files a v1 hierarchy has
 * not got, so a v1 dump is CRIU's, while a v2 one keeps its limits (CRIU
 * saves none there; it restores them from our images all the same). */
static const char builtins[] =
	"\"cpu\":\n - \"strategy\": \"replace\"\n - \"properties\": [ \"cpu.shares\", \"cpu.cfs_period_us\", "
	"\"cpu.cfs_quota_us\", \"cpu.rt_period_us\", \"cpu.rt_runtime_us\", \"cpu.weight\", \"cpu.max\", "
	"\"cpu.idle\" ]\n"
	"\"memory\":\n - \"strategy\": \"replace\"\n - \"properties\": [ \"memory.limit_in_bytes\", "
	"\"memory.memsw.limit_in_bytes\", \"memory.swappiness\", \"memory.soft_limit_in_bytes\", "
	"\"memory.move_charge_at_immigrate\", \"memory.oom_control\", \"memory.use_hierarchy\", "
	"\"memory.kmem.limit_in_bytes\", \"memory.kmem.tcp.limit_in_bytes\", \"memory.min\", \"memory.low\", "
	"\"memory.high\", \"memory.max\", \"memory.swap.high\", \"memory.swap.max\", \"memory.oom.group\" ]\n"
	"\"cpuset\":\n - \"strategy\": \"replace\"\n - \"properties\": [ \"cpuset.cpus\", \"cpuset.mems\", "
	"\"cpuset.memory_migrate\", \"cpuset.cpu_exclusive\", \"cpuset.mem_exclusive\", \"cpuset.mem_hardwall\", "
	"\"cpuset.memory_spread_page\", \"cpuset.memory_spread_slab\", \"cpuset.sched_load_balance\", "
	"\"cpuset.sched_relax_domain_level\" ]\n"
	"\"blkio\":\n - \"strategy\": \"replace\"\n - \"properties\": [ \"blkio.weight\" ]\n"
	"\"io\":\n - \"strategy\": \"replace\"\n - \"properties\": [ \"io.weight\" ]\n"
	"\"freezer\":\n - \"strategy\": \"replace\"\n - \"properties\": [ ]\n"
	"\"perf_event\":\n - \"strategy\": \"replace\"\n - \"properties\": [ ]\n"
	"\"net_cls\":\n - \"strategy\": \"replace\"\n - \"properties\": [ \"net_cls.classid\" ]\n"
	"\"net_prio\":\n - \"strategy\": \"replace\"\n - \"properties\": [ \"net_prio.ifpriomap\" ]\n"
	"\"pids\":\n - \"strategy\": \"replace\"\n - \"properties\": [ \"pids.max\" ]\n"
	"\"devices\":\n - \"strategy\": \"replace\"\n - \"properties\": [ \"devices.list\" ]\n";

/* ---- the format: "NAME":  - "strategy": "S"  - "properties": [ "P", ... ] ---- */

struct lexer {
	const char *s, *end;
	const char *what;	/* for errors: where the text came from */
};

static void skip_space(struct lexer *l)
{
	while (l->s < l->end && (*l->s == ' ' || *l->s == '\t' || *l->s == '\n' || *l->s == '\r'))
		l->s++;
}

static bool eat(struct lexer *l, char c)
{
	skip_space(l);
	if (l->s < l->end && *l->s == c) {
		l->s++;
		return true;
	}
	return false;
}

/* A quoted string, or NULL (none there). */
static char *quoted(struct lexer *l)
{
	skip_space(l);
	if (l->s >= l->end || *l->s != '"')
		return NULL;
	const char *e = memchr(l->s + 1, '"', l->end - l->s - 1);
	if (!e)
		return NULL;
	char *r = strndup(l->s + 1, e - l->s - 1);
	l->s = e + 1;
	return r;
}

static bool keyword(struct lexer *l, const char *word)
{
	char *k;
	if (!eat(l, '-') || !(k = quoted(l)))
		return false;
	bool ok = !strcmp(k, word) && eat(l, ':');
	free(k);
	return ok;
}

static struct cgp_ctl *find(struct cg_props *p, const char *name)
{
	for (int i = 0; i < p->nr; i++)
		if (!strcmp(p->c[i].name, name))
			return &p->c[i];
	return NULL;
}

static int add_prop(struct cgp_ctl *c, char *prop)
{
	char **v = realloc(c->props, (c->nr + 1) * sizeof(*v));
	if (!v) {
		free(prop);
		return -1;
	}
	c->props = v;
	c->props[c->nr++] = prop;
	return 0;
}

static void ctl_clear(struct cgp_ctl *c)
{
	for (int i = 0; i < c->nr; i++)
		free(c->props[i]);
	free(c->props);
	c->props = NULL;
	c->nr = 0;
}

/* One controller's entry, merged into or replacing what p has. */
static int parse_ctl(struct cg_props *p, struct lexer *l)
{
	char *name = quoted(l), *strategy = NULL, *prop;
	int ret = -1;
	if (!name || !eat(l, ':') || !keyword(l, "strategy") || !(strategy = quoted(l)) ||
	    (strcmp(strategy, "merge") && strcmp(strategy, "replace")) || !keyword(l, "properties") ||
	    !eat(l, '[')) {
		pr_err("%s: expected \"CONTROLLER\":, - \"strategy\": \"merge\" or \"replace\", - \"properties\": "
		       "[...] near \"%.20s\"", l->what, l->s);
		goto out;
	}
	struct cgp_ctl *c = find(p, name);
	if (!c) {
		struct cgp_ctl *v = realloc(p->c, (p->nr + 1) * sizeof(*v));
		if (!v)
			goto out;
		p->c = v;
		c = &p->c[p->nr++];
		*c = (struct cgp_ctl){ name, NULL, 0 };
		name = NULL;
	} else if (!strcmp(strategy, "replace")) {
		ctl_clear(c);
	}
	if (!eat(l, ']')) {
		do {
			if (!(prop = quoted(l)) || add_prop(c, prop) < 0) {
				pr_err("%s: expected a quoted property of %s near \"%.20s\"", l->what, c->name, l->s);
				goto out;
			}
		} while (eat(l, ','));
		if (!eat(l, ']')) {
			pr_err("%s: expected ']' after the properties of %s", l->what, c->name);
			goto out;
		}
	}
	ret = 0;
out:
	free(name);
	free(strategy);
	return ret;
}

static int parse(struct cg_props *p, const char *text, size_t len, const char *what)
{
	struct lexer l = { text, text + len, what };
	for (skip_space(&l); l.s < l.end; skip_space(&l))
		if (parse_ctl(p, &l) < 0)
			return -1;
	return 0;
}

static int parse_file(struct cg_props *p, const char *path)
{
	int fd = fs_open_path_read(path);
	if (fd < 0) {
		pr_perror("can't read --cgroup-props-file %s", path);
		return -1;
	}
	size_t len = 0, cap = 0;
	char *buf = NULL;
	ssize_t n;
	do {
		n = -1;
		if (len > (1 << 20) || grow_array(buf, cap, len + 1, 4096) < 0)
			break;
		n = read(fd, buf + len, cap - len);
		if (n > 0)
			len += n;
	} while (n > 0);
	close(fd);
	int ret = -1;
	if (n != 0)
		pr_err("can't read --cgroup-props-file %s (or it is over 1 MiB)", path);
	else
		ret = parse(p, buf, len, path);
	free(buf);
	return ret;
}

int cgp_init(struct cg_props *p, const struct opts *o)
{
	*p = (struct cg_props){ .dump_ctls = o->cgroup_dump_ctls, .nr_dump_ctls = o->nr_cgroup_dump_ctls };
	if (parse(p, builtins, strlen(builtins), "built-in cgroup properties") < 0 ||
	    (o->cgroup_props && parse(p, o->cgroup_props, strlen(o->cgroup_props), "--cgroup-props") < 0) ||
	    (o->cgroup_props_file && parse_file(p, o->cgroup_props_file) < 0)) {
		cgp_free(p);
		return -1;
	}
	return 0;
}

void cgp_free(struct cg_props *p)
{
	for (int i = 0; i < p->nr; i++) {
		ctl_clear(&p->c[i]);
		free(p->c[i].name);
	}
	free(p->c);
	p->c = NULL;
	p->nr = 0;
}

const struct cgp_ctl *cgp_get(const struct cg_props *p, const char *ctl)
{
	return find((struct cg_props *)p, ctl);
}

bool cgp_skip_controller(const struct cg_props *p, const char *name)
{
	if (!p->nr_dump_ctls)
		return false;
	for (int i = 0; i < p->nr_dump_ctls; i++)
		if (!strcmp(name, p->dump_ctls[i]))
			return false;
	return true;
}
