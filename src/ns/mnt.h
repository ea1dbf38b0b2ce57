#ifndef STASIS_NS_MNT_H
#define STASIS_NS_MNT_H
/* A mount namespace of the tree's own (CRIU's mountpoints-ID.img, one
 * mnt_entry per mount, and tmpfs-dev-DEV.tar.gz.img with a tmpfs's
 * files, made by tar as CRIU makes them). What both sides share: the
 * file system kinds by CRIU's numbers, and the external mounts given as
 * --external mnt[A]:B. */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mnt.pb-c.h"
#include "util/opts.h"

/* CRIU's fstype numbers (mnt.proto) that stasis uses by name. */
enum {
	MNT_FS_UNSUPPORTED = 0,
	MNT_FS_PROC = 1,
	MNT_FS_SYSFS = 2,
	MNT_FS_TMPFS = 5,
	MNT_FS_DEVPTS = 6,
	MNT_FS_MQUEUE = 14,
	MNT_FS_AUTO = 16,
};

/* The kernel's kind name of CRIU's number, or NULL (none, or one stasis
 * can't mount anew: its contents would be lost, as devtmpfs's). */
const char *mnt_fs_name(uint32_t code);
/* CRIU's number of a kernel kind name (0: unsupported); *fresh: a mount
 * of it can be made anew, nothing in it to save but a tmpfs's files. */
uint32_t mnt_fs_code(const char *name, bool *fresh);

/* The value B of the first --external mnt[A]:B whose A is key, or NULL. */
const char *mnt_ext_lookup(const struct opts *o, const char *key);

/* tar's environment for a child whose directory is a tmpfs (execvpe):
 * ours, with PWD naming that directory; NULL without memory. Free it. */
char **mnt_tar_env(void);

/* MKKDEV: the device number as CRIU writes it (20-bit minor). */
static inline uint32_t mnt_kdev(unsigned maj, unsigned min)
{
	return (maj << 20) | (min & 0xfffff);
}

/* dump: a mount namespace of the tree, by a process in it and its id
 * (mountpoints-ID.img). */
struct mnt_ns_ref {
	pid_t pid;
	uint32_t id;
};

/* The restore's view of the tree's mount namespaces: the mounts of all,
 * one image after the other (mount ids are the kernel's, unique across
 * namespaces, so a bind may be of a mount of another namespace). */
struct mnt_ns {
	MntEntry **e;
	int nr;
	/* filled by a process of the tree's user namespace (ns/user.h), whose
	 * ids outside have no name inside: new files are made as its root */
	bool inside_root;
	int *ns;		/* per mount: its namespace's index */
	uint32_t *ids;		/* per namespace: its id; [0] the root's */
	int *nsfd;		/* per namespace: an fd on it once made, or -1 */
	int *rootfd;		/* per namespace: its root directory, or -1 */
	int cur;		/* the namespace of the process we are */
	int nr_ns;
	int fd_floor;		/* nsfd are kept from here up (clear of the pool) */
};

#endif
