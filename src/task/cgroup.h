/* cgroups, as CRIU saves them in cgroup.img (proto/cgroup.proto): each
 * task's and thread's cgroups by set, and, with a --manage-cgroups mode
 * other than ignore, the directories below each set's cgroups with their
 * properties (task/cgroup_props.h). Restore makes the missing ones (or
 * not, by mode), moves every process and thread into its set before it
 * runs, and writes the properties. A set equal to the dumper's own
 * (inventory.root_cg_set) is left out: such a task stays in the
 * restorer's cgroups.
 *
 * The hierarchies are mounted by stasis, detached (fsopen/fsmount), or
 * found under --cgroup-yard. For a non-root RPC client every directory
 * made, property written and process moved goes through the client's
 * broker (util/fsop.h): the kernel weighs it with the client's
 * credentials, so a client can make and join only cgroups it could itself. */
#ifndef STASIS_CGROUP_H
#define STASIS_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/opts.h"
#include "task/cgroup_props.h"
#include "cgroup.pb-c.h"

/* ---- dump (cgroup_dump.c) ---- */

struct cg_dump_set;
struct cg_dump_ctl;

struct cg_dump {
	const struct opts *o;
	struct cg_props props;
	struct cg_dump_set *sets;	/* sets[0]: ours, id 1 */
	int nr_sets;
	struct cg_dump_ctl *ctls;	/* the hierarchies, ours first */
	int nr_ctls;
	int root_set;			/* index of the tree root's set, -1 before it */
};

/* Our own set (id 1, the inventory's root_cg_set) and hierarchies. */
int cg_dump_begin(struct cg_dump *cg, const struct opts *o);
/* The set of thread tid of process pid (the tree's root first): *set_id
 * for its core. A new set's cgroups are walked for their directories. */
int cg_dump_thread(struct cg_dump *cg, pid_t pid, pid_t tid, bool root, uint32_t *set_id);
uint32_t cg_dump_own_set(const struct cg_dump *cg);
/* cgroup.img, unless every task is in our own set (as CRIU: nothing). */
int cg_dump_write(struct cg_dump *cg, int dirfd);
void cg_dump_free(struct cg_dump *cg);

/* ---- restore (cgroup_restore.c) ---- */

struct cg_rst {
	const struct opts *o;
	CgroupEntry *img;	/* NULL: no cgroup.img, or mode ignore */
	uint32_t root_set;	/* the dumper's own set: tasks in it stay where they are */
	int *yard;		/* per controller of img: its hierarchy's root, or -1 */
	char **made;		/* directories made, "CTL_INDEX:path", undone on failure */
	int nr_made;
	/* The root's cgroup namespace: the cgroup.procs of its root in each
	 * hierarchy (the set's paths up to their cgns_prefix). */
	int *ns_fds;
	int nr_ns_fds;
};

/* Loads cgroup.img (rewritten by --cgroup-root) and checks it; no process
 * touched. 0 or -1 (reported). */
int cg_rst_load(struct cg_rst *cg, const struct opts *o, int dirfd, uint32_t root_set);
/* Opens the hierarchies and makes the missing directories, by mode. */
int cg_rst_prepare(struct cg_rst *cg);
/* The root's cgroup namespace, if it had one of its own: opened by
 * stasis (ns_prepare), then made by the root itself, first thing in it
 * (ns_enter: it joins the namespace's root cgroups and unshares). */
int cg_rst_ns_prepare(struct cg_rst *cg, uint32_t root_task_set);
int cg_rst_ns_enter(struct cg_rst *cg);
void cg_rst_ns_close(struct cg_rst *cg);
/* Moves a process (thread false: all its threads) or one thread (real
 * ids) into set; no-op for 0 or the dumper's set. */
int cg_rst_move(struct cg_rst *cg, pid_t real, uint32_t set, bool thread);
/* The properties, once every task is in its cgroup. */
int cg_rst_props(struct cg_rst *cg);
/* After a failure: removes the directories it made (the tasks are gone). */
void cg_rst_undo(struct cg_rst *cg);
void cg_rst_free(struct cg_rst *cg);

/* ---- shared (cgroup_fs.c) ---- */

/* Whether every controller of cnames (n of them; one empty name: a v2
 * hierarchy) is in name, a comma list as /proc/PID/cgroup gives it. */
bool cg_contains(char *const *cnames, size_t n, const char *name);

/* The root of the hierarchy named as in /proc/PID/cgroup ("cpu,cpuacct",
 * "name=x", "" for v2): under yard if given, else mounted detached. */
int cg_open_hierarchy(const char *name, const char *yard);
/* The name of a hierarchy's directory in a yard, as CRIU names it. */
void cg_yard_name(const char *name, char *buf, size_t size);
/* Whether stasis can make cgroup namespaces (check --feature cgroupns). */
bool cg_ns_supported(void);

#endif
