/* A user namespace the tree's root has of its own (rootless podman,
 * `unshare -U -r`), in CRIU's format: userns-ID.img holds its uid and gid
 * maps; the tree's credentials (creds in core-PID.img) and the owners in
 * its images are ids as seen inside it.
 *
 * Dump (root only): one level, a child of the dumper's user namespace,
 * every process of the tree in it (ns.c), and each other namespace the
 * tree has of its own owned by it; anything else is refused by name.
 *
 * Restore: a holder process is made in a new user namespace with the
 * other namespaces the tree had of its own (so they are owned by it: the
 * kernel makes the user namespace first), stasis writes its maps from
 * outside, and the tree's processes are made by stasis, with our rights,
 * inside those other namespaces; each joins the user namespace last,
 * once it has forked its children (clone3 with set_tid into a pid
 * namespace that is not the user namespace's wants ours). Its ids and
 * capabilities are then set inside, from the image. */
#ifndef STASIS_NS_USER_H
#define STASIS_NS_USER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "util/opts.h"

#define USERNS_MAX_EXTENTS 340	/* the kernel's limit per map */

enum { USERNS_UID, USERNS_GID };

struct userns_extent {
	uint32_t first, lower, count;	/* inside, outside, how many */
};

struct userns_maps {
	bool on;			/* the tree has a user namespace of its own */
	bool setgroups_deny;
	int n[2];			/* USERNS_UID, USERNS_GID */
	struct userns_extent e[2][USERNS_MAX_EXTENTS];
};

/* An id outside (ours) as the namespace sees it: the kernel's overflow id
 * (65534) where it has none; ids as they are when m->on is false. */
uint32_t userns_id_in(const struct userns_maps *m, int kind, uint32_t outside);
/* An id inside as ours, or (uint32_t)-1 where the map has none. */
uint32_t userns_id_out(const struct userns_maps *m, int kind, uint32_t inside);

/* The dump's maps, once saved, for the owners the files' images hold
 * (a terminal's): an id outside as seen inside (ids as they are when the
 * tree has no user namespace of its own). */
uint32_t userns_dump_id(int kind, uint32_t outside);

/* restore: an owner from the images (as the tree's user namespace sees
 * it) as the calling process names it: as it is in a process of that
 * namespace (made in it, or joined: below), the id outside otherwise
 * ((uint32_t)-1, "no change" to chown, where the map has none).
 * userns_rst_ids sets the maps (NULL: none). */
void userns_rst_ids(const struct userns_maps *m);
uint32_t userns_rst_id(int kind, uint32_t inside);

/* Saves the user namespace of root (not the dumper's) as
 * userns-ID.img, after the checks above; m gets its maps. 0, or -1
 * (reported, one line). */
int userns_dump(int dirfd, pid_t root, uint32_t id, const struct opts *o, struct userns_maps *m);
/* A mount namespace nested in the tree's (pid's) must be owned by its
 * root's user namespace, as one made inside it is. 0, or -1 (reported). */
int userns_check_owns_mnt(pid_t root, pid_t pid);
/* userns-ID.img into m, checked. 0, or -1 (reported). */
int userns_load(int dirfd, uint32_t id, struct userns_maps *m);

/* restore: the holder of the tree's namespaces, and fds on them. */
struct userns_rst {
	pid_t holder;
	int user_fd;			/* the user namespace */
	int nr;
	int fds[4];			/* the other kinds, joined by the first process */
	unsigned long flags[4];
};

/* Makes the holder in a new user namespace with the kinds of flags
 * (CLONE_NEWUTS, IPC, NS, NET); writes m's maps. keep moves an fd of
 * ours where the tree's fds will not take it. 0, or -1 (reported; what
 * was made goes). */
int userns_rst_make(const struct userns_maps *m, unsigned long flags, int (*keep)(int fd, void *arg), void *arg,
		    struct userns_rst *u);
/* The holder's pid: its namespaces stand for the tree's. */
pid_t userns_rst_holder(const struct userns_rst *u);
/* In the first process: into the tree's namespaces but the user one. */
int userns_rst_enter(const struct userns_rst *u);
/* The tree's own pid namespace must be made in its user namespace (to
 * be owned by it): a process of ours joins that (groups set first, as
 * below) and makes the first process, pid 1 there, with flags, as our
 * child (CLONE_PARENT); it runs child(arg). Its pid here, or -1
 * (reported). */
pid_t userns_rst_clone_init(const struct userns_rst *u, const struct userns_maps *m, const CredsEntry *c,
			    unsigned long flags, void (*child)(void *), void *arg);
/* In each process of the tree, last (done if it is in already): its
 * supplementary groups (ours, mapped from c's: a namespace with
 * setgroups "deny" can't set them inside), then into the user
 * namespace. 0, or -1 (reported). */
int userns_rst_join(const struct userns_rst *u, const struct userns_maps *m, const CredsEntry *c);
/* Into the user namespace of user_fd (-1: none), unless in it already:
 * what it makes then is owned by it. 0, or -1 (reported). */
int userns_rst_be_in(int user_fd);
/* In a process of the namespace: its root there (uid and gid 0 inside),
 * as what the namespace owns wants its writer. 0, or -1 (reported). */
int userns_rst_root(void);
void userns_rst_free(struct userns_rst *u);

#endif
