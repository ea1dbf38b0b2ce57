/* The FIN a half-closed connection had received can't be put in its
 * receive queue through repair mode: it is sent to the restored socket
 * as a segment from its peer (a raw socket, ours, writing the IP header),
 * as CRIU does. Its mark is CRIU's, which a network lock lets through. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>

#include "files/inet.h"
#include "util/log.h"

#define SOCCR_MARK 0xC114	/* CRIU's SO_MARK for the segments it makes */

static uint32_t sum16(const void *p, size_t len, uint32_t sum)
{
	const uint8_t *b = p;
	for (; len > 1; len -= 2, b += 2)
		sum += (uint32_t)b[0] << 8 | b[1];
	if (len)
		sum += (uint32_t)b[0] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

/* The TCP header from the peer (dst) to the socket (src), its checksum
 * over the pseudo-header of the addresses. */
static void tcp_header(struct tcphdr *th, const InetSkEntry *ie, uint32_t seq, uint32_t ack, uint32_t win, bool fin)
{
	size_t alen = ie->family == AF_INET6 ? 16 : 4;
	uint32_t sum;

	memset(th, 0, sizeof(*th));
	th->source = htons(ie->dst_port);
	th->dest = htons(ie->src_port);
	th->seq = htonl(seq);
	th->ack_seq = htonl(ack);
	th->doff = sizeof(*th) / 4;
	th->ack = 1;
	th->fin = fin;
	th->window = htons(win > 0xffff ? 0xffff : win);
	sum = sum16(ie->dst_addr, alen, 0);
	sum = sum16(ie->src_addr, alen, sum);
	sum += IPPROTO_TCP + sizeof(*th);
	th->check = fold(sum16(th, sizeof(*th), sum));
}

/* An IPv4 address in an IPv6 socket's words (::ffff:a.b.c.d). */
static bool v4_mapped(const uint32_t *a)
{
	return !a[0] && !a[1] && a[2] == htonl(0xffff);
}

int tcp_send_fake(const InetSkEntry *ie, uint32_t seq, uint32_t ack, uint32_t win, bool fin)
{
	if (ie->family == AF_INET6 && v4_mapped(ie->src_addr) && v4_mapped(ie->dst_addr)) {
		/* an IPv6 socket talking IPv4: the segment is IPv4 */
		InetSkEntry v4 = *ie;
		v4.family = AF_INET;
		v4.src_addr = (uint32_t *)ie->src_addr + 3;
		v4.dst_addr = (uint32_t *)ie->dst_addr + 3;
		v4.n_src_addr = v4.n_dst_addr = 1;
		return tcp_send_fake(&v4, seq, ack, win, fin);
	}
	bool v6 = ie->family == AF_INET6;
	union {
		struct { struct iphdr ip; struct tcphdr th; } v4;
		struct { struct ip6_hdr ip; struct tcphdr th; } v6;
	} pkt;
	struct sockaddr_storage to = { .ss_family = ie->family };
	socklen_t tolen;
	size_t len;
	int mark = SOCCR_MARK;

	memset(&pkt, 0, sizeof(pkt));
	if (v6) {
		struct sockaddr_in6 *a = (void *)&to;
		memcpy(&a->sin6_addr, ie->src_addr, 16);
		tolen = sizeof(*a);
		pkt.v6.ip.ip6_flow = htonl(6u << 28);
		pkt.v6.ip.ip6_plen = htons(sizeof(struct tcphdr));
		pkt.v6.ip.ip6_nxt = IPPROTO_TCP;
		pkt.v6.ip.ip6_hlim = 64;
		memcpy(&pkt.v6.ip.ip6_src, ie->dst_addr, 16);
		memcpy(&pkt.v6.ip.ip6_dst, ie->src_addr, 16);
		tcp_header(&pkt.v6.th, ie, seq, ack, win, fin);
		len = sizeof(pkt.v6);
	} else {
		struct sockaddr_in *a = (void *)&to;
		memcpy(&a->sin_addr, ie->src_addr, 4);
		tolen = sizeof(*a);
		pkt.v4.ip.version = 4;
		pkt.v4.ip.ihl = 5;
		pkt.v4.ip.tot_len = htons(sizeof(pkt.v4));
		pkt.v4.ip.ttl = 64;
		pkt.v4.ip.protocol = IPPROTO_TCP;
		memcpy(&pkt.v4.ip.saddr, ie->dst_addr, 4);
		memcpy(&pkt.v4.ip.daddr, ie->src_addr, 4);
		tcp_header(&pkt.v4.th, ie, seq, ack, win, fin);
		len = sizeof(pkt.v4);	/* the kernel fills in the IP checksum and id */
	}
	int rs = socket(ie->family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (rs < 0 || setsockopt(rs, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0 ||
	    sendto(rs, &pkt, len, 0, (struct sockaddr *)&to, tolen) != (ssize_t)len) {
		pr_perror("can't send the %s of the half-closed TCP connection %s -> %s back to it%s",
			  fin ? "FIN" : "acknowledgement", SRC_STR(ie), DST_STR(ie),
			  errno == EPERM ? " (a raw socket needs CAP_NET_RAW)" : "");
		if (rs >= 0)
			close(rs);
		return -1;
	}
	close(rs);
	return 0;
}

/* A loopback connection with its client's side shut down (FIN_WAIT2,
 * its peer CLOSE_WAIT): repair mode takes the half-closed socket (4.11+),
 * and a raw socket can carry the FIN back on restore. */
bool files_tcp_half_closed(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int on = 1, mark = SOCCR_MARK, acc = -1, rs = -1;
	bool ok = false;
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (ls < 0 || c < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &l) < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    (acc = accept(ls, NULL, NULL)) < 0 || shutdown(c, SHUT_WR) < 0)
		goto out;
	ok = setsockopt(c, SOL_TCP, TCP_REPAIR, &on, sizeof(on)) == 0;
	rs = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	ok = ok && rs >= 0 && setsockopt(rs, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0;
out:
	for (int *fd = (int[]){ ls, c, acc, rs }, i = 0; i < 4; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	return ok;
}
