/*
 * unix_ext: sockets connected to peers outside the tree, run next to a
 * helper (tests/cases/unix.sh) that binds ext-dg.sock (datagrams, logged
 * to ext-dg.log, like /dev/log) and serves ext-st.sock (a stream echo
 * server, like a daemon). After a restore with --ext-unix-sk the datagram
 * socket reaches ext-dg.sock again and the stream socket talks to the
 * echo server again (a new connection to its name).
 */
#include "unix_common.h"

static void echo(int st, const char *line, const char *what)
{
	char buf[32] = { 0 };
	size_t n = strlen(line);
	send_all(st, line, n, what);
	CHECK(recv_all(st, buf, n) == 0 && !memcmp(buf, line, n), "%s: no echo of %s", what, line);
}

int main(void)
{
	proto_init();
	int d = un_socket(SOCK_DGRAM, NULL, 0);
	int st = un_socket(SOCK_STREAM, NULL, 0);
	if (un_connect(d, "ext-dg.sock", 0) < 0 || un_connect(st, "ext-st.sock", 0) < 0)
		die("connect to the helper");
	send_all(d, "before", 6, "datagram to the outside");
	echo(st, "ping1\n", "stream to the outside");
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();

	send_all(d, "after-restore", 13, "datagram to the outside after restore");
	echo(st, "ping2\n", "stream to the outside after restore");
	return proto_finish();
}
