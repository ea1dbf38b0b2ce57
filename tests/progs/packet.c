/*
 * packet: packet sockets on lo. A SOCK_DGRAM one for IPv4 with a socket
 * filter (UDP to its own port), auxdata, original device, a timestamp
 * source, a multicast membership (all-multicast on lo) and a fanout group
 * with a flag; a SOCK_RAW one with a TPACKET_V3 receive ring mapped into
 * memory, a reserve and its own filter; an unbound ETH_P_ALL one. After
 * restore each has its options again, the ring is mapped where it was
 * (from the socket), and both receive a datagram sent to their port: the
 * first by recvfrom, the second in a block of its ring.
 *
 * With "criu" (the exchange with CRIU, whose dump reads no fanout flags)
 * the fanout's flag is not checked.
 *
 * test packet: plain restore chain leave_running
 */
#include "common.h"

#include <arpa/inet.h>
#include <linux/net_tstamp.h>
#include <stdbool.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define BLOCK 4096
#define NBLOCKS 4
#define FANOUT_ID 0x4d00

static int dgram, raw, any, udp;
static uint16_t port_dgram, port_raw;
static void *ring;
static int lo;
static uint32_t fanout_want;

static int set(int s, int opt, int val)
{
	return setsockopt(s, SOL_PACKET, opt, &val, sizeof(val));
}

static int get(int s, int opt)
{
	int v = -1;
	socklen_t l = sizeof(v);
	return getsockopt(s, SOL_PACKET, opt, &v, &l) < 0 ? -1 : v;
}

/* UDP to port (at IP offset off in what the socket sees): accepted. */
static int attach_filter(int s, int off, uint16_t port)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, off + 9),	/* protocol */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 3),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, off + 22),	/* destination port (no IP options) */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };
	return setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

static int bind_lo(int s, int proto)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto), .sll_ifindex = lo };
	return bind(s, (struct sockaddr *)&sll, sizeof(sll));
}

static void setup(void)
{
	lo = if_nametoindex("lo");
	port_dgram = 20000 + getpid() % 20000;
	port_raw = port_dgram + 1;
	fanout_want = FANOUT_ID | (PACKET_FANOUT_HASH << 16) | (PACKET_FANOUT_FLAG_DEFRAG << 16);

	dgram = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	if (dgram < 0 || bind_lo(dgram, ETH_P_IP) < 0)
		die("packet SOCK_DGRAM on lo");
	if (attach_filter(dgram, 0, port_dgram) < 0 || set(dgram, PACKET_AUXDATA, 1) < 0 ||
	    set(dgram, PACKET_ORIGDEV, 1) < 0 || set(dgram, PACKET_TIMESTAMP, SOF_TIMESTAMPING_SOFTWARE) < 0)
		die("options of the SOCK_DGRAM socket");
	struct packet_mreq mr = { .mr_ifindex = lo, .mr_type = PACKET_MR_ALLMULTI };
	if (setsockopt(dgram, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
		die("PACKET_ADD_MEMBERSHIP");
	/* the fanout id of this process, so that tests side by side don't share it */
	fanout_want = (fanout_want & ~0xffffu) | ((FANOUT_ID + getpid()) & 0xffff);
	if (set(dgram, PACKET_FANOUT, fanout_want) < 0)
		die("PACKET_FANOUT");

	raw = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
	if (raw < 0 || bind_lo(raw, ETH_P_IP) < 0)
		die("packet SOCK_RAW on lo");
	if (attach_filter(raw, ETH_HLEN, port_raw) < 0 || set(raw, PACKET_VERSION, TPACKET_V3) < 0 ||
	    set(raw, PACKET_RESERVE, 32) < 0)
		die("options of the SOCK_RAW socket");
	struct tpacket_req3 req = { .tp_block_size = BLOCK, .tp_block_nr = NBLOCKS, .tp_frame_size = 2048,
				    .tp_frame_nr = BLOCK / 2048 * NBLOCKS, .tp_retire_blk_tov = 10 };
	if (setsockopt(raw, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		die("PACKET_RX_RING");
	ring = mmap(NULL, BLOCK * NBLOCKS, PROT_READ | PROT_WRITE, MAP_SHARED, raw, 0);
	if (ring == MAP_FAILED)
		die("mmap of the ring");

	any = socket(AF_PACKET, SOCK_RAW, 0);	/* unbound, no protocol: receives nothing */
	udp = socket(AF_INET, SOCK_DGRAM, 0);
	if (any < 0 || udp < 0)
		die("sockets");
}

static void send_to(uint16_t port, const char *msg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (sendto(udp, msg, strlen(msg), 0, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail("sendto port %u: %s", port, strerror(errno));
}

static bool ring_mapped_here(void)
{
	struct stat st;
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f || fstat(raw, &st) < 0)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long start;
		unsigned long long ino;
		if (sscanf(line, "%lx-%*x %*s %*s %*s %llu", &start, &ino) == 2)
			found = start == (unsigned long)ring && ino == st.st_ino;
	}
	fclose(f);
	return found;
}

/* The datagram's payload in a block of the ring the kernel handed over. */
static bool ring_has(const char *msg)
{
	for (int tries = 0; tries < 100; tries++) {
		struct pollfd p = { raw, POLLIN, 0 };
		poll(&p, 1, 50);
		for (int b = 0; b < NBLOCKS; b++) {
			struct tpacket_block_desc *bd = (void *)((char *)ring + b * BLOCK);
			if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
				continue;
			bool hit = memmem(bd, BLOCK, msg, strlen(msg)) != NULL;
			__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
			if (hit)
				return true;
		}
	}
	return false;
}

static void check_dgram_receives(const char *msg)
{
	char buf[256];
	struct pollfd p = { dgram, POLLIN, 0 };
	if (poll(&p, 1, 5000) != 1) {
		fail("the SOCK_DGRAM packet socket got nothing");
		return;
	}
	ssize_t n = recv(dgram, buf, sizeof(buf) - 1, 0);
	CHECK(n > 28 && memmem(buf, n, msg, strlen(msg)), "the SOCK_DGRAM packet socket got another packet");
}

static void check(bool fanout_flags, const char *when)
{
	char msg[64];
	uint32_t fanout = 0;
	socklen_t l = sizeof(fanout);

	CHECK(get(dgram, PACKET_AUXDATA) == 1, "%s: PACKET_AUXDATA is off", when);
	CHECK(get(dgram, PACKET_ORIGDEV) == 1, "%s: PACKET_ORIGDEV is off", when);
	CHECK(get(dgram, PACKET_TIMESTAMP) == SOF_TIMESTAMPING_SOFTWARE, "%s: PACKET_TIMESTAMP is %d", when,
	      get(dgram, PACKET_TIMESTAMP));
	CHECK(getsockopt(dgram, SOL_PACKET, PACKET_FANOUT, &fanout, &l) == 0, "%s: PACKET_FANOUT", when);
	uint32_t mask = fanout_flags ? ~0u : 0xffffffu;
	CHECK((fanout & mask) == (fanout_want & mask), "%s: fanout %#x, not %#x", when, fanout, fanout_want);
	CHECK(get(raw, PACKET_VERSION) == TPACKET_V3, "%s: PACKET_VERSION is %d", when, get(raw, PACKET_VERSION));
	CHECK(get(raw, PACKET_RESERVE) == 32, "%s: PACKET_RESERVE is %d", when, get(raw, PACKET_RESERVE));
	CHECK(ring_mapped_here(), "%s: the ring is not mapped from the socket at %p", when, ring);

	snprintf(msg, sizeof(msg), "stasis-packet-%s-dgram-%d", when, getpid());
	send_to(port_dgram, msg);
	check_dgram_receives(msg);
	snprintf(msg, sizeof(msg), "stasis-packet-%s-ring-%d", when, getpid());
	send_to(port_raw, msg);
	CHECK(ring_has(msg), "%s: the ring got no packet", when);
}

int main(int argc, char **argv)
{
	bool criu = argc > 1 && !strcmp(argv[1], "criu");

	proto_init();
	setup();
	check(true, "before");
	proto_ready();
	proto_wait();
	check(!criu, "after");
	return proto_finish();
}
