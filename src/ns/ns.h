#ifndef STASIS_NS_NS_H
#define STASIS_NS_NS_H
/* The namespaces a tree has of its own, besides its pid namespace: those
 * of its root that are not the dumper's. As CRIU, a tree takes them with
 * it (their state in images, new ones made at restore), every process
 * of the tree must be in its root's (nested namespaces are refused, but
 * mount namespaces under a root with its own: each is saved), and
 * the inventory's root_ids name the dumper's, so that a restore (ours or
 * CRIU's) sees which kinds differ. Kinds stasis does not save yet are
 * left to the namespaces restore runs in, as before. */
#include <stdbool.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "inventory.pb-c.h"
#include "ipc-msg.pb-c.h"
#include "ipc-sem.pb-c.h"
#include "ipc-shm.pb-c.h"
#include "ipc-var.pb-c.h"
#include "mm.pb-c.h"
#include "utsns.pb-c.h"
#include "net/netns.h"
#include "ns/mnt.h"
#include "ns/user.h"
#include "util/opts.h"

/* Namespace kinds by CLONE_NEW* flag: the /proc/PID/ns name ("uts"), and
 * the word for messages ("UTS"). */
const char *ns_name(unsigned long cflag);
const char *ns_what(unsigned long cflag);

/* Runs fn(arg) in a thread of ours that joined pid's namespace of kind
 * cflag (UTS, IPC, network: kinds a thread may join alone); fn's return,
 * or -1 (reported) if the namespace could not be joined. */
int ns_in_thread(pid_t pid, unsigned long cflag, int (*fn)(void *), void *arg);

/* dump: refuses a process of the tree in a namespace not its root's (of
 * any kind but pid and mount); then saves each kind the root has of its
 * own and stasis takes (ns_taken_mask) into dirfd, naming it by
 * root_ids. A mount namespace: the root's and those nested in the tree
 * (mnt_ids: each process's, as ids-PID.img names them), allowed only
 * under a root with one of its own, as CRIU (in a tree with a user
 * namespace of its own, each owned by it). *taken: the kinds saved;
 * user: the tree's user namespace's maps (user->on: it has one);
 * unprivileged (a non-root client) may not take an IPC namespace, whose
 * objects need not be its own, nor a mount namespace. 0, or -1
 * (reported). */
int ns_dump(int dirfd, pid_t root, const pid_t *pids, const uint32_t *mnt_ids, int n,
	    const TaskKobjIdsEntry *root_ids, const struct opts *o, unsigned long *taken,
	    struct userns_maps *user);

/* The kinds a tree takes with it. */
#define NS_TAKEN_MASK (CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUSER)

/* An IPC namespace's objects as restore loads them: each entry, and the
 * bytes that followed it (a segment's, unless in pagemaps; a semaphore
 * set's values; a queue's messages). */
struct ipc_msg_item {
	IpcMsg *m;
	void *buf;		/* room for the type, then the bytes */
	void *data;		/* the bytes */
};

struct ipc_ns_obj {
	union {
		ProtobufCMessage *entry;
		IpcShmEntry *shm;
		IpcSemEntry *sem;
		IpcMsgEntry *msg;
	};
	void *data;
	struct ipc_msg_item *msgs;	/* a queue's */
	uint32_t nr_msgs;
};

struct ipc_ns_objs {
	struct ipc_ns_obj *o;
	int nr;
};

struct ipc_ns {
	IpcVarEntry *var;
	struct ipc_ns_objs shm, sem, msg;
};

/* restore: what the tree's own namespaces need. */
struct ns_restore {
	unsigned long flags;	/* CLONE_NEW* for the first process */
	int dirfd;		/* the images (a segment's pages) */
	UtsnsEntry *uts;
	struct ipc_ns ipc;
	struct mnt_ns mnt;
	const struct opts *o;	/* --root, the external mounts */
	/* a network namespace: what it holds, and the pipe on which the
	 * first process waits until stasis has filled it (ns_restore_net) */
	struct netns_rst net;
	int net_ready[2];
	/* a user namespace (CLONE_NEWUSER in flags): its maps, and the
	 * holder of the namespaces made in it (ns_restore_make) */
	struct userns_maps user;
	struct userns_rst urst;
	/* --join-ns net for a tree that had a network namespace of its own
	 * (its dump locked that whole namespace): restored into the one
	 * joined, which is to be unlocked as a whole */
	bool joined_own_net;
};

/* The kinds in which the root's ids differ from the inventory's
 * root_ids (the dumper's), and their images. 0, or -1 (reported). */
int ns_restore_load(int dirfd, const InventoryEntry *inv, pid_t root, const TaskKobjIdsEntry *root_ids,
		    const struct opts *o, struct ns_restore *nr);
/* In stasis, before the first process is made, for a tree with a user
 * namespace of its own: the namespaces of flags made in it (user.h). The
 * first process is then made with none of those flags
 * (ns_restore_clone_flags), and its pid namespace, if the tree has one,
 * in the user namespace (userns_rst_clone_init). */
int ns_restore_make(struct ns_restore *nr, int (*keep)(int fd, void *arg), void *arg);
/* The CLONE_NEW* flags the first process is made with. */
unsigned long ns_restore_clone_flags(const struct ns_restore *nr);
/* In the first process, before anything else: into the namespaces made
 * for it (a user namespace's). 0, or -1 (reported). */
int ns_restore_enter(const struct ns_restore *nr);
/* In each process of the tree, once its children are forked: into the
 * tree's user namespace, if it has one. */
int ns_restore_join_user(const struct ns_restore *nr, const CredsEntry *c);
/* A mount namespace nested in the tree's (pid's, id; the root's is
 * root_id): its image, once. Refused in a tree whose root shares the
 * dumper's (CRIU's rule). 0, or -1 (reported). */
int ns_restore_load_mnt(int dirfd, pid_t pid, uint32_t id, uint32_t root_id, const struct opts *o,
			struct ns_restore *nr);
/* In process pid of the tree, before it opens anything: into its mount
 * namespace id, if not its parent's (parent_id), where it was born.
 * 0, or -1 (reported). */
int ns_restore_enter_mnt(struct ns_restore *nr, pid_t pid, uint32_t id, uint32_t parent_id);
/* rst_files's mnt_root (files.h): ctx is the ns_restore. */
int ns_mnt_root(const void *ctx, int mnt_id);
/* In stasis, once the first process is made in its new network
 * namespace (CLONE_NEWNET in flags): fills it (its devices' outer ends
 * in ours). 0, or -1 (reported). */
int ns_restore_net(struct ns_restore *nr, pid_t first);
/* Lets the first process go on (ok), or die (!ok): it waits for this. */
void ns_restore_net_release(struct ns_restore *nr, bool ok);
/* After a failed restore: what was made outside the tree's namespaces
 * (the outer ends of its veths) goes. */
void ns_restore_undo(struct ns_restore *nr);
/* In the first process, inside its new namespaces: their state. */
int ns_restore_fill(struct ns_restore *nr);
void ns_restore_free(struct ns_restore *nr);

/* uts.c */
int uts_dump(int dirfd, pid_t root, uint32_t id);
int uts_load(int dirfd, uint32_t id, UtsnsEntry **e);
int uts_fill(const UtsnsEntry *e);

/* mnt_dump.c, mnt_restore.c (mnt.h) */
int mnt_dump(int dirfd, const struct mnt_ns_ref *ns, int nr, const struct opts *o,
	     const struct userns_maps *user);
/* The files of the tmpfs mounts mnt_dump found, archived once the tree's
 * fds are saved (a link remap may be made in one); _drop forgets them
 * (a failed dump). */
int mnt_dump_tmpfs(int dirfd);
void mnt_dump_tmpfs_drop(void);
/* Appends the mounts of mountpoints-ID.img as one more namespace. */
int mnt_load(int dirfd, uint32_t id, struct mnt_ns *ns);
/* In the tree's first process, in its new mount namespace: its mounts
 * under o->root, which becomes its root; and the namespaces nested in
 * it, made from a yard of all their mounts (in the tree's user
 * namespace, user, if not -1: owned by it), whose fds land in ns->nsfd
 * (all of them, ours first, when there are nested ones). */
int mnt_fill(struct mnt_ns *ns, int dirfd, const struct opts *o, int user);
void mnt_free(struct mnt_ns *ns);

/* ipc.c */
int ipc_dump(int dirfd, pid_t root, uint32_t id);
int ipc_load(int dirfd, uint32_t id, struct ipc_ns *ns);
int ipc_fill(int dirfd, const struct ipc_ns *ns);
void ipc_free(struct ipc_ns *ns);
/* A task's attachment v of a segment of the IPC namespace: one of its
 * saved segments, whole. 0, or -1 (reported). */
int ns_ipc_check_shm(const struct ipc_ns *ns, pid_t pid, const VmaEntry *v);

#endif
