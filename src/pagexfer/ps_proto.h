/* CRIU's page-server wire protocol (criu/page-xfer.c of CRIU 4.2): what
 * travels on the TCP connection between a dump and a page server, and
 * between a lazy restore and the dump side's server.
 *
 * Every request is one 32-byte header, in the host's byte order (CRIU
 * sends its C struct as it is in memory): a u32 command (its low 16 bits
 * the command, the high ones PE_* flags for PS_IOV_ADD_F), 4 bytes of
 * padding, then u64 nr_pages, u64 vaddr, u64 dst_id. dst_id names the
 * image a run belongs to: (id << 8) | type, type 1 a process's pagemap
 * (id its pid), 2 a shared memory pagemap (id its shmid).
 *
 *   OPEN2 dst          -> 1 byte: the server has a parent image for dst
 *   PARENT dst         -> int32: likewise, without opening anything
 *   ADD_F|flags<<16 dst vaddr nr  (PE_PRESENT: nr pages of bytes follow)
 *   ADD, HOLE          the old forms of ADD_F with PE_PRESENT, PE_PARENT
 *   GET dst vaddr nr   -> ADD_F header (nr: how many pages follow; 0:
 *                         none found), then the bytes (lazy restore)
 *   CLOSE, FORCE_CLOSE -> int32 0: all received and written; the
 *                         session is over */
#ifndef STASIS_PS_PROTO_H
#define STASIS_PS_PROTO_H

#include <stdint.h>

struct ps_iov {
	uint32_t cmd;
	uint32_t pad;		/* CRIU's struct padding: never read */
	uint64_t nr_pages;
	uint64_t vaddr;
	uint64_t dst_id;
};
_Static_assert(sizeof(struct ps_iov) == 32, "CRIU's page_server_iov is 32 bytes");

#define PS_IOV_ADD		1
#define PS_IOV_HOLE		2
#define PS_IOV_OPEN		3
#define PS_IOV_OPEN2		4
#define PS_IOV_PARENT		5
#define PS_IOV_ADD_F		6
#define PS_IOV_GET		7
#define PS_IOV_CLOSE		0x1023	/* PS_IOV_FLUSH of older CRIU */
#define PS_IOV_FORCE_CLOSE	0x1024	/* PS_IOV_FLUSH_N_PAGES of older CRIU */

#define PS_CMD_BITS	16
#define PS_CMD_MASK	((1u << PS_CMD_BITS) - 1)
#define PS_TYPE_BITS	8
#define PS_TYPE_MASK	((1u << PS_TYPE_BITS) - 1)

#define PS_TYPE_PID	1
#define PS_TYPE_SHMEM	2

static inline uint64_t ps_dst(int type, uint64_t id)
{
	return id << PS_TYPE_BITS | (uint64_t)type;
}

static inline uint32_t ps_cmd(uint32_t cmd, uint32_t flags)
{
	return flags << PS_CMD_BITS | cmd;
}

#endif
