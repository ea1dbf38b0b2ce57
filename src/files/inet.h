/* IPv4 and IPv6 sockets (TCP, UDP, UDP-lite, ICMP ping): what the
 * modules of the kind share (inet.c: the row and names for messages;
 * inet_dump.c; inet_restore.c). Only they include this. */
#ifndef STASIS_FILES_INET_H
#define STASIS_FILES_INET_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <netinet/tcp.h>

#include "files/kind.h"
#include "util/idmap.h"
#include "tcp-stream.pb-c.h"

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

/* A TCP connection being dumped (tcp_dump.c): our fd on it, in repair
 * mode until the dump ends; what its image will hold. */
struct tcp_conn {
	uint32_t ino;
	int fd;
	int reuseaddr;		/* SO_REUSEADDR before repair mode changed it */
	TcpStreamEntry *e;
	char *inq, *outq;	/* the queues' bytes */
	int state;
	uint32_t addr[2][4], port[2];	/* own, peer */
};

/* The kind's state in a dump. */
struct inet_dump {
	struct isk_diag_list lists[8];
	int nr_lists;
	const struct opts *o;
	struct netlock *netlock;	/* the dump's: each connection locked before repair */
	struct tcp_conn *conns;
	int nr_conns;
	struct idmap conn_by_ino;	/* conns' indexes by inode (stale ones too:
					 * checked) */
};

/* A saved TCP connection (tcp_restore.c): its tcp-stream image. */
struct tcp_stream {
	uint32_t ino;
	TcpStreamEntry *e;
	char *q;		/* receive queue's bytes, then send queue's */
};

/* The kind's state in a restore. */
struct inet_rst {
	struct tcp_stream *s;
	int nr;
	struct idmap by_ino;	/* s's indexes by inode */
};

/* TCP states (1 << state) with a FIN in the send queue, and in the
 * receive queue; and with that FIN acknowledged (CRIU's soccr). A
 * connection closed (CLOSE: reset, or both FINs acknowledged) is made
 * again as the end of the second way: both FINs, both acknowledged. */
#define TCPF(s) (1u << (s))
#define TCP_SNDQ_FIN (TCPF(TCP_FIN_WAIT1) | TCPF(TCP_FIN_WAIT2) | TCPF(TCP_CLOSING) | TCPF(TCP_LAST_ACK) | \
		      TCPF(TCP_CLOSE))
#define TCP_SNDQ_FIRST_FIN (TCPF(TCP_FIN_WAIT1) | TCPF(TCP_FIN_WAIT2) | TCPF(TCP_CLOSING))
#define TCP_SNDQ_SECOND_FIN (TCPF(TCP_LAST_ACK) | TCPF(TCP_CLOSE))
#define TCP_SNDQ_FIN_ACKED (TCPF(TCP_FIN_WAIT2) | TCPF(TCP_CLOSE))
#define TCP_RCVQ_FIN (TCPF(TCP_CLOSE_WAIT) | TCPF(TCP_LAST_ACK) | TCPF(TCP_CLOSING) | TCPF(TCP_CLOSE))
#define TCP_RCVQ_FIN_ACKED TCPF(TCP_CLOSE)

/* "ESTABLISHED", "FIN_WAIT1", ... */
const char *tcp_state_name(int state);
/* A connection TCP repair saves: established, half-closed, or opening. */
bool tcp_conn_state(int state);
/* Whether an entry is a TCP connection (a peer, not a listener): a
 * closed one with its peer too (dumped with --tcp-established, which
 * saves its unread data as CRIU does). */
bool tcp_conn_entry(const InetSkEntry *ie);

/* inet_dump.c */
int inet_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe);
int inet_write_images(struct file_table *t, int dirfd);
void inet_dump_failed(struct file_table *t);
void inet_free_images(struct file_table *t);
/* tcp_dump.c: every connection of the tree silenced first (repair mode),
 * then each saved (or refused). */
int tcp_dump_prepare(struct file_table *t, const struct opts *o, const pid_t *pids, int nr);
int tcp_conn_dump(struct file_table *t, const struct opts *o, int sk, const struct fd_facts *f, InetSkEntry *ie);
int tcp_write_streams(struct file_table *t, int dirfd);
/* The dump is over: repair mode left if the connections go on (resume),
 * else kept for them to end silently with the tree; fds closed. */
void tcp_dump_end(struct file_table *t, bool resume);
/* tcp_restore.c */
int tcp_load_streams(struct rst_files *rf, int dirfd);
void tcp_unload_streams(struct rst_files *rf);
/* The connection of ie made again on sk (new, bound nowhere yet), left
 * in repair mode; or, with --tcp-close, sk shut down. 0 or -1 (reported). */
int tcp_conn_restore(struct rst_files *rf, int sk, const InetSkEntry *ie, const char *what);
/* Repair mode left: the connection goes on; what it had not sent yet
 * is written now. where names the fd ("pid P: fd N"). */
int tcp_conn_resume(struct rst_files *rf, int fd, const InetSkEntry *ie, const char *where);
/* tcp_fin.c: a FIN (or a bare ACK, fin false) as from the peer, to put
 * it in a restored half-closed connection's receive queue. */
int tcp_send_fake(const InetSkEntry *ie, uint32_t seq, uint32_t ack, uint32_t win, bool fin);
/* inet_restore.c */
/* addr (image words) and port as a sockaddr of ie's family. */
socklen_t inet_sockaddr(const InetSkEntry *ie, const uint32_t *addr, uint32_t port, int ifindex,
			struct sockaddr_storage *ss);
/* sk bound to ie's address (and device), as it was; 0 or -1 (reported). */
int inet_bind(int sk, const InetSkEntry *ie);
int inet_open(struct rst_files *rf, const FileEntry *fe, int fdflags);
int inet_after_install(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid);
int inet_after_unlock(struct rst_files *rf, const FileEntry *fe, int fd, const char *where);

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
