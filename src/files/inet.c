/* IPv4 and IPv6 sockets, as CRIU saves them (an inet_sk_entry in
 * files.img): TCP sockets listening, bound or not yet bound; UDP,
 * UDP-lite and ICMP ping sockets, bound, connected, shut down; raw
 * sockets with their header and ICMP filter options. Dump reads
 * the socket (our own fd on it, from pidfd_getfd): its addresses, state,
 * options; the kernel's socket list (sock_diag) adds a listener's backlog
 * and the connections waiting in its queue, and shutdown bits. An
 * established TCP connection is refused (it needs TCP repair, CRIU's
 * --tcp-established), as is a listener with connections not yet accepted
 * (CRIU's --skip-in-flight): nothing is silently lost.
 *
 * Restore makes the socket anew in the restored process, with its
 * credentials (a privileged port needs what the process had), binds it,
 * listens or connects, and sets its options back. Every socket is bound
 * with SO_REUSEADDR and SO_REUSEPORT, so that sockets sharing a port all
 * bind again; their own values come back once every file is open
 * (after_install), as CRIU does. The modules: inet.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "files/inet.h"
#include "files/sock_diag.h"

const char *inet_proto_name(uint32_t family, uint32_t proto)
{
	bool v6 = family == AF_INET6;
	switch (proto) {
	case IPPROTO_TCP: return v6 ? "TCPv6" : "TCP";
	case IPPROTO_UDP: return v6 ? "UDPv6" : "UDP";
	case IPPROTO_UDPLITE: return v6 ? "UDPLITEv6" : "UDP-Lite";
	case IPPROTO_ICMP: return "PING";
	case IPPROTO_ICMPV6: return "PINGv6";
	}
	return v6 ? "IPv6" : "IPv4";
}

const char *inet_addr_str(uint32_t family, const uint32_t *addr, size_t n, uint32_t port, char *buf,
			  size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";
	bool v6 = family == AF_INET6;

	if (addr && n >= (v6 ? INET_ALEN6 : INET_ALEN4))
		inet_ntop(v6 ? AF_INET6 : AF_INET, addr, a, sizeof(a));
	snprintf(buf, size, v6 ? "[%s]:%u" : "%s:%u", a, port);
	return buf;
}

const char *tcp_state_name(int st)
{
	static const char *const n[] = { "?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
					 "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
					 "LISTEN", "CLOSING" };
	return st > 0 && st < (int)(sizeof(n) / sizeof(n[0])) ? n[st] : "?";
}

bool tcp_conn_state(int st)
{
	return st == TCP_ESTABLISHED || st == TCP_SYN_SENT || st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 ||
	       st == TCP_CLOSE_WAIT || st == TCP_LAST_ACK || st == TCP_CLOSING;
}

bool tcp_conn_entry(const InetSkEntry *ie)
{
	return ie->type == SOCK_STREAM && ie->proto == IPPROTO_TCP && ie->dst_port && ie->state != TCP_LISTEN;
}

/* The socket's protocol, as the kernel names it (net/ipv4/af_inet.c and
 * friends): the kinds we can dump. */
static bool inet_owns(const struct fd_facts *f)
{
	static const char *const ours[] = { "TCP", "TCPv6", "UDP", "UDPv6", "UDP-Lite", "UDPLITEv6",
					    "PING", "PINGv6", "RAW", "RAWv6" };
	if (!S_ISSOCK(f->st.st_mode))
		return false;
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		if (!strcmp(f->proto, ours[i]))
			return true;
	return false;
}

static bool inet_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	(void)rf;
	if (!fe->isk)
		return false;
	snprintf(buf, len, "socket:[%u]", fe->isk->ino);
	return true;
}

const struct fd_kind fd_kind_inet = {
	.name = "inet socket", .type = FD_TYPES__INETSK,
	.dump_state = sizeof(struct inet_dump), .rst_state = sizeof(struct inet_rst),
	.owns = inet_owns, .dump = inet_dump, .open = inet_open,
	.dump_prepare = tcp_dump_prepare, .write_images = inet_write_images, .free_images = inet_free_images, .dump_failed = inet_dump_failed,
	.load_images = tcp_load_streams, .unload_images = tcp_unload_streams,
	.after_install = inet_after_install, .after_unlock = inet_after_unlock, .inherit_name = inet_inherit_name,
};
