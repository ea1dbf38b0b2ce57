/* IPv4 and IPv6 sockets (TCP, UDP, UDP-lite, ICMP ping): what the
 * modules of the kind share (inet.c: the row and names for messages;
 * inet_dump.c; inet_restore.c). Only they include this. */
#ifndef STASIS_FILES_INET_H
#define STASIS_FILES_INET_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "files/kind.h"

#define INET_ALEN4 1	/* words of an address in the image */
#define INET_ALEN6 4

extern const struct fd_kind fd_kind_inet;

/* "TCP", "UDPv6", ... of an entry, for messages. */
const char *inet_proto_name(uint32_t family, uint32_t proto);
/* "[::1]:80", "127.0.0.1:80", "*:0" of addr (image words) and port. */
const char *inet_addr_str(uint32_t family, const uint32_t *addr, size_t n, uint32_t port, char *buf,
			  size_t size);
#define SRC_STR(ie) inet_addr_str((ie)->family, (ie)->src_addr, (ie)->n_src_addr, (ie)->src_port, \
				  (char[64]){ 0 }, 64)
#define DST_STR(ie) inet_addr_str((ie)->family, (ie)->dst_addr, (ie)->n_dst_addr, (ie)->dst_port, \
				  (char[64]){ 0 }, 64)

/* A socket as sock_diag lists it: what the socket itself doesn't tell. */
struct isk_diag {
	uint32_t ino;
	uint8_t state, shutdown;
	uint32_t rq, wq;	/* a listener: connections waiting, backlog */
};

/* The sockets of one family and protocol, listed once per dump. */
struct isk_diag_list {
	uint8_t family, proto;
	struct isk_diag *d;
	int nr;
};

/* The kind's state in a dump. */
struct inet_dump {
	struct isk_diag_list lists[8];
	int nr_lists;
};

/* inet_dump.c */
int inet_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe);
void inet_free_images(struct file_table *t);
/* inet_restore.c */
int inet_open(struct rst_files *rf, const FileEntry *fe, int fdflags);
int inet_after_install(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid);

/* Options older headers may lack (both sides use them). */
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef IP_NODEFRAG
#define IP_NODEFRAG 22
#endif
#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif
#ifndef SOL_ICMPV6
#define SOL_ICMPV6 58
#endif

#endif
