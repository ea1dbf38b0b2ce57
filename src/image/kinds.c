#include <stdio.h>

#include "image/kinds.h"
#include "cgroup.pb-c.h"
#include "core.pb-c.h"
#include "file-lock.pb-c.h"
#include "files.pb-c.h"
#include "ghost.pb-c.h"
#include "inventory.pb-c.h"
#include "ipc-msg.pb-c.h"
#include "ipc-sem.pb-c.h"
#include "ipc-shm.pb-c.h"
#include "ipc-var.pb-c.h"
#include "memfd.pb-c.h"
#include "mnt.pb-c.h"
#include "mm.pb-c.h"
#include "netdev.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"
#include "tcp-stream.pb-c.h"
#include "seccomp.pb-c.h"
#include "sk-unix.pb-c.h"
#include "stats.pb-c.h"
#include "timens.pb-c.h"
#include "tty.pb-c.h"
#include "userns.pb-c.h"
#include "utsns.pb-c.h"

/* A new image: a kind in kinds.h, a row here. Magics and their names
 * are CRIU's. Columns: name, magic, magic's name, header, entry type,
 * head type, then the optional ones by name. */
const struct img_kind_desc img_kinds[IMG_NR_KINDS] = {
	/* absent: no dump, which restore says itself */
	[IMG_INVENTORY] = { "inventory.img", 0x58313116, "INVENTORY", IMG_HDR_OWN, &inventory_entry__descriptor,
			    .optional = true },
	[IMG_PSTREE] = { "pstree.img", 0x50273030, "PSTREE", IMG_HDR_COMMON, &pstree_entry__descriptor },
	[IMG_CORE] = { "core-%u.img", 0x55053847, "CORE", IMG_HDR_COMMON, &core_entry__descriptor },
	[IMG_MM] = { "mm-%u.img", 0x57492820, "MM", IMG_HDR_COMMON, &mm_entry__descriptor },
	[IMG_FS] = { "fs-%u.img", 0x51403912, "FS", IMG_HDR_COMMON, &fs_entry__descriptor },
	[IMG_IDS] = { "ids-%u.img", 0x54432030, "IDS", IMG_HDR_COMMON, &task_kobj_ids_entry__descriptor },
	[IMG_FDINFO] = { "fdinfo-%u.img", 0x56213732, "FDINFO", IMG_HDR_COMMON, &fdinfo_entry__descriptor },
	[IMG_PAGEMAP] = { "pagemap-%u.img", 0x56084025, "PAGEMAP", IMG_HDR_COMMON, &pagemap_entry__descriptor,
			  &pagemap_head__descriptor },
	/* a memfd with no page but zeros has none */
	[IMG_PAGEMAP_SHMEM] = { "pagemap-shmem-%u.img", 0x56084025, "PAGEMAP", IMG_HDR_COMMON,
				&pagemap_entry__descriptor, &pagemap_head__descriptor, .optional = true },
	[IMG_PAGES] = { "pages-%u.img", 0, NULL, IMG_HDR_NONE },
	[IMG_FILES] = { "files.img", 0x56303138, "FILES", IMG_HDR_COMMON, &file_entry__descriptor },
	[IMG_TTY_INFO] = { "tty-info.img", 0x59453036, "TTY_INFO", IMG_HDR_COMMON, &tty_info_entry__descriptor,
			   .optional = true },
	[IMG_TTY_DATA] = { "tty-data.img", 0x59413026, "TTY_DATA", IMG_HDR_COMMON, &tty_data_entry__descriptor,
			   .optional = true },
	[IMG_PIPES_DATA] = { "pipes-data.img", 0x56453709, "PIPES_DATA", IMG_HDR_COMMON, &pipe_data_entry__descriptor,
			     .optional = true, .extra = IMG_EXTRA_EACH, .extra_len = "bytes" },
	[IMG_FIFO_DATA] = { "fifo-data.img", 0x59333054, "FIFO_DATA", IMG_HDR_COMMON, &pipe_data_entry__descriptor,
			    .optional = true, .extra = IMG_EXTRA_EACH, .extra_len = "bytes" },
	[IMG_FILE_LOCKS] = { "filelocks.img", 0x54323616, "FILE_LOCKS", IMG_HDR_COMMON, &file_lock_entry__descriptor,
			     .optional = true },
	[IMG_REMAP_FPATH] = { "remap-fpath.img", 0x59133954, "REMAP_FPATH", IMG_HDR_COMMON,
			      &remap_file_path_entry__descriptor, .optional = true },
	[IMG_GHOST_FILE] = { "ghost-file-%x.img", 0x52583605, "GHOST_FILE", IMG_HDR_COMMON,
			     &ghost_chunk_entry__descriptor, &ghost_file_entry__descriptor, .extra = IMG_EXTRA_CHUNKS,
			     .extra_len = "len" },
	[IMG_MEMFD_INODE] = { "memfd.img", 0x48453499, "MEMFD_INODE", IMG_HDR_COMMON, &memfd_inode_entry__descriptor,
			      .optional = true },
	[IMG_SK_QUEUES] = { "sk-queues.img", 0x56264026, "SK_QUEUES", IMG_HDR_COMMON, &sk_packet_entry__descriptor,
			    .optional = true, .extra = IMG_EXTRA_EACH, .extra_len = "length" },
	[IMG_SECCOMP] = { "seccomp.img", 0x64413049, "SECCOMP", IMG_HDR_COMMON, &seccomp_entry__descriptor,
			  .optional = true },
	[IMG_MNTS] = { "mountpoints-%u.img", 0x55563928, "MNTS", IMG_HDR_COMMON, &mnt_entry__descriptor },
	/* a tmpfs's files: a gzipped tar, as CRIU's tar makes it */
	[IMG_TMPFS_DEV] = { "tmpfs-dev-%u.tar.gz.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	[IMG_UTSNS] = { "utsns-%u.img", 0x54473203, "UTSNS", IMG_HDR_COMMON, &utsns_entry__descriptor },
	[IMG_USERNS] = { "userns-%u.img", 0x55474906, "USERNS", IMG_HDR_COMMON, &userns_entry__descriptor },
	[IMG_IPC_VAR] = { "ipcns-var-%u.img", 0x53115007, "IPC_VAR", IMG_HDR_COMMON, &ipc_var_entry__descriptor },
	[IMG_IPCNS_SHM] = { "ipcns-shm-%u.img", 0x46283044, "IPCNS_SHM", IMG_HDR_COMMON, &ipc_shm_entry__descriptor,
			    .optional = true, .extra = IMG_EXTRA_SYSV },
	[IMG_IPCNS_SEM] = { "ipcns-sem-%u.img", 0x59573019, "IPCNS_SEM", IMG_HDR_COMMON, &ipc_sem_entry__descriptor,
			    .optional = true, .extra = IMG_EXTRA_SYSV },
	[IMG_IPCNS_MSG] = { "ipcns-msg-%u.img", 0x55453737, "IPCNS_MSG", IMG_HDR_COMMON, &ipc_msg_entry__descriptor,
			    .optional = true, .extra = IMG_EXTRA_SYSV },
	[IMG_CGROUP] = { "cgroup.img", 0x59383330, "CGROUP", IMG_HDR_COMMON, &cgroup_entry__descriptor,
			 .optional = true },
	/* a dump before stasis saved clocks has none */
	[IMG_TIMENS] = { "timens-%u.img", 0x43114433, "TIMENS", IMG_HDR_COMMON, &timens_entry__descriptor,
			 .optional = true },
	/* the bytes of its receive queue, then of its send queue */
	[IMG_TCP_STREAM] = { "tcp-stream-%x.img", 0x51465506, "TCP_STREAM", IMG_HDR_COMMON,
			     &tcp_stream_entry__descriptor, .optional = true, .extra = IMG_EXTRA_QUEUES },
	/* a network namespace's (net/netns.h); the raw ones are the output
	 * of the tools CRIU runs, absent when it had none to run */
	[IMG_NETDEV] = { "netdev-%u.img", 0x57373951, "NETDEV", IMG_HDR_COMMON, &net_device_entry__descriptor },
	[IMG_NETNS] = { "netns-%u.img", 0x55933752, "NETNS", IMG_HDR_COMMON, &netns_entry__descriptor },
	[IMG_IFADDR] = { "ifaddr-%u.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	[IMG_ROUTE] = { "route-%u.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	[IMG_ROUTE6] = { "route6-%u.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	[IMG_RULE] = { "rule-%u.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	[IMG_IPTABLES] = { "iptables-%u.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	[IMG_IP6TABLES] = { "ip6tables-%u.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	[IMG_NFTABLES] = { "nftables-%u.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	[IMG_NETNF_CT] = { "netns-ct-%u.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	[IMG_NETNF_EXP] = { "netns-exp-%u.img", 0, NULL, IMG_HDR_NONE, .optional = true },
	/* no .img in their names, as CRIU's */
	[IMG_STATS_DUMP] = { "stats-dump", 0x57093306, "STATS", IMG_HDR_SERVICE, &stats_entry__descriptor,
			     .optional = true },
	[IMG_STATS_RESTORE] = { "stats-restore", 0x57093306, "STATS", IMG_HDR_SERVICE, &stats_entry__descriptor,
				.optional = true },
};

void img_name(char *buf, size_t size, enum img_kind kind, uint32_t id)
{
	snprintf(buf, size, img_kinds[kind].name, id);
}

int img_kind_by_magic(uint32_t magic)
{
	for (int k = 0; k < IMG_NR_KINDS; k++)
		if (magic && img_kinds[k].magic == magic)
			return k;
	return -1;
}
