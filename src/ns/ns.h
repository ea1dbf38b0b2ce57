#ifndef STASIS_NS_NS_H
#define STASIS_NS_NS_H
/* The namespaces a tree has of its own, besides its pid namespace: those
 * of its root that are not the dumper's. As CRIU, a tree takes them with
 * it (their state in images, new ones made at restore), every process
 * of the tree must be in its root's (nested namespaces are refused), and
 * the inventory's root_ids name the dumper's, so that a restore (ours or
 * CRIU's) sees which kinds differ. Kinds stasis does not save yet are
 * left to the namespaces restore runs in, as before. */
#include <stdbool.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "inventory.pb-c.h"
#include "utsns.pb-c.h"

/* Namespace kinds: the CLONE_NEW* flag of each, and its /proc/PID/ns name. */
const char *ns_name(unsigned long cflag);

/* dump: refuses a process of the tree in a namespace not its root's (of
 * any kind but pid); then saves each kind the root has of its own and
 * stasis takes (ns_taken_mask) into dirfd, naming it by root_ids. *taken:
 * the kinds saved. 0, or -1 (reported). */
int ns_dump(int dirfd, pid_t root, const pid_t *pids, int n, const TaskKobjIdsEntry *root_ids,
	    unsigned long *taken);

/* The kinds a tree takes with it (CLONE_NEWUTS). */
#define NS_TAKEN_MASK CLONE_NEWUTS

/* restore: what the tree's own namespaces need. */
struct ns_restore {
	unsigned long flags;	/* CLONE_NEW* for the first process */
	UtsnsEntry *uts;
};

/* The kinds in which the root's ids differ from the inventory's
 * root_ids (the dumper's), and their images. 0, or -1 (reported). */
int ns_restore_load(int dirfd, const InventoryEntry *inv, pid_t root, const TaskKobjIdsEntry *root_ids,
		    struct ns_restore *nr);
/* In the first process, inside its new namespaces: their state. */
int ns_restore_fill(const struct ns_restore *nr);
void ns_restore_free(struct ns_restore *nr);

/* uts.c */
int uts_dump(int dirfd, pid_t root, uint32_t id);
int uts_load(int dirfd, uint32_t id, UtsnsEntry **e);
int uts_fill(const UtsnsEntry *e);

#endif
