/* The kinds of image file a dump holds, one row each in img_kinds[]: the
 * one place an image is declared. Writers and readers name an image by
 * its kind (and id); its file name, magic, entry types and whether it may
 * be absent come from the row, and so do the lists of `stasis
 * image-kinds` (the fuzzer's seeds, the tests' decoding) and what `stasis
 * crit` knows of an image (its magic's name, its raw extras). */
#ifndef STASIS_IMAGE_KINDS_H
#define STASIS_IMAGE_KINDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

/* Kinds with an id in their name say here what the id is. */
enum img_kind {
	IMG_INVENTORY,
	IMG_PSTREE,
	IMG_CORE,		/* thread id */
	IMG_MM,			/* pid */
	IMG_FS,			/* pid */
	IMG_IDS,		/* pid */
	IMG_FDINFO,		/* files_id of ids-PID.img */
	IMG_PAGEMAP,		/* pid */
	IMG_PAGEMAP_SHMEM,	/* shmid of a memfd (memfd.img) */
	IMG_PAGES,		/* pages_id of a pagemap's head */
	IMG_FILES,
	IMG_TTY_INFO,
	IMG_TTY_DATA,
	IMG_PIPES_DATA,
	IMG_FIFO_DATA,
	IMG_FILE_LOCKS,
	IMG_REMAP_FPATH,
	IMG_GHOST_FILE,		/* remap_id of remap-fpath.img */
	IMG_MEMFD_INODE,
	IMG_SK_QUEUES,
	IMG_SECCOMP,
	IMG_UTSNS,		/* uts_ns_id of the root's ids-PID.img */
	IMG_USERNS,		/* user_ns_id of the root's ids-PID.img */
	IMG_IPC_VAR,		/* ipc_ns_id of the root's ids-PID.img, and the three below */
	IMG_IPCNS_SHM,
	IMG_IPCNS_SEM,
	IMG_IPCNS_MSG,
	IMG_CGROUP,
	IMG_TIMENS,		/* the root's time_ns_id, or 0: task/timens.h */
	IMG_TCP_STREAM,		/* inode of the socket */
	IMG_MNTS,		/* mnt_ns_id of the root's ids-PID.img */
	IMG_TMPFS_DEV,		/* a tmpfs's device (ns/mnt.h: mnt_kdev) */
	IMG_NETDEV,		/* net_ns_id of the root's ids-PID.img, and the eight below */
	IMG_NETNS,
	IMG_IFADDR,		/* raw: `ip addr save` */
	IMG_ROUTE,		/* raw: `ip route save` */
	IMG_ROUTE6,		/* raw: `ip -6 route save` */
	IMG_RULE,		/* raw: `ip rule save` */
	IMG_IPTABLES,		/* raw: iptables-save (the legacy one) */
	IMG_IP6TABLES,		/* raw: ip6tables-save */
	IMG_NFTABLES,		/* raw: `nft list ruleset` */
	IMG_NETNF_CT,		/* raw: ctnetlink's messages of the conntrack entries */
	IMG_NETNF_EXP,		/* raw: and of the expectations */
	IMG_STATS_DUMP,
	IMG_STATS_RESTORE,
	IMG_NR_KINDS
};

/* What a file of the kind starts with (CRIU's layouts). */
enum img_header {
	IMG_HDR_COMMON,		/* CRIU's common magic, then the kind's */
	IMG_HDR_OWN,		/* the kind's magic alone (the inventory) */
	IMG_HDR_SERVICE,	/* CRIU's service magic, then the kind's (stats) */
	IMG_HDR_NONE,		/* nothing: raw bytes, no entries (pages) */
};

/* Raw bytes an image holds besides its entries (crit shows them as an
 * entry's "extra"). */
enum img_extra {
	IMG_EXTRA_NONE,
	IMG_EXTRA_EACH,		/* after each entry, as many as its extra_len */
	/* A ghost file's: after each chunk entry (extra_len), or all the rest
	 * of the file after a head whose chunks is unset. */
	IMG_EXTRA_CHUNKS,
	/* System V objects of an IPC namespace (after a segment's entry its
	 * bytes, a semaphore set's values, a queue's messages, each padded):
	 * crit shows each kind its own way (crit/imgjson.c) */
	IMG_EXTRA_SYSV,
	/* A TCP stream's two queues after its entry (inq_len, then outq_len
	 * bytes): crit shows them as "inq" and "outq" of the extra. */
	IMG_EXTRA_QUEUES,
};

struct img_kind_desc {
	/* The file name; a printf format of one unsigned id when the kind
	 * has one (%u, or %x for ghost files). */
	const char *name;
	uint32_t magic;		/* CRIU's value, so crit and CRIU know the file */
	const char *magic_name;	/* and CRIU's name for it: crit's "magic" */
	enum img_header header;
	/* The type of its entries; the first one's in head when that differs
	 * (a pagemap's head, a ghost file's). NULL for raw kinds. */
	const ProtobufCMessageDescriptor *entry, *head;
	/* Absent means none of the kind (or an older dump): img_open leaves
	 * saying so to the reader (errno ENOENT, nothing reported). */
	bool optional;
	enum img_extra extra;
	const char *extra_len;	/* the field of an entry that counts its extra bytes */
};

extern const struct img_kind_desc img_kinds[IMG_NR_KINDS];

/* Long enough for every kind's name with any 32-bit id. */
#define IMG_NAME_MAX 64

/* The file name of kind's image with id (ignored when the name has none). */
void img_name(char *buf, size_t size, enum img_kind kind, uint32_t id);
/* The first kind with that magic (the two pagemaps share one); -1 if none. */
int img_kind_by_magic(uint32_t magic);

#endif
