/* Which properties of a cgroup a dump saves (CRIU's cgroup-props): a
 * list per controller, built in and changed by --cgroup-props and
 * --cgroup-props-file (CRIU's format: for each controller, a strategy,
 * "merge" or "replace", and the properties). --cgroup-dump-controller
 * narrows the controllers saved at all. */
#ifndef STASIS_CGROUP_PROPS_H
#define STASIS_CGROUP_PROPS_H

#include <stdbool.h>

#include "util/opts.h"

struct cgp_ctl {
	char *name;
	char **props;
	int nr;
};

struct cg_props {
	struct cgp_ctl *c;
	int nr;
	const char *const *dump_ctls;	/* --cgroup-dump-controller; none: all */
	int nr_dump_ctls;
};

/* The built-in lists, then --cgroup-props, then --cgroup-props-file (read
 * through util/fsop.h: a client's broker reads it). 0 or -1 (reported). */
int cgp_init(struct cg_props *p, const struct opts *o);
void cgp_free(struct cg_props *p);
/* The properties of a controller ("memory"), or NULL. */
const struct cgp_ctl *cgp_get(const struct cg_props *p, const char *ctl);
/* A hierarchy as /proc/PID/cgroup names it ("cpu,cpuacct", "name=x", "")
 * left out by --cgroup-dump-controller. */
bool cgp_skip_controller(const struct cg_props *p, const char *name);

/* Saved in every cgroup of a v1 hierarchy, and of the v2 one. */
extern const char *const cgp_global_v1[];
extern const char *const cgp_global_v2[];

#endif
