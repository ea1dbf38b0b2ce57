/*
 * unix_dgram: bound datagram sockets (dg.sock, a relative path, and an
 * abstract name) hold messages from a child's unbound and connected
 * senders; a named client socket of the child (cl.sock, connected to
 * dg.sock) holds messages from the server. After restore every message
 * comes back whole and in order, the connected sender still reaches
 * dg.sock, and new senders reach both names.
 */
#include "unix_common.h"

static const size_t sizes[] = { 1, 100, 5000, 60000, 17, 2 };
#define NS (sizeof(sizes) / sizeof(sizes[0]))
static char abs_name[64];

static void send_to(int fd, const char *name, int abstract, size_t len, unsigned seed, const char *what)
{
	static unsigned char b[70000];
	struct sockaddr_un a;
	socklen_t l = un_addr(&a, name, abstract);
	pattern(b, len, seed);
	if (sendto(fd, b, len, 0, (struct sockaddr *)&a, l) != (ssize_t)len)
		fail("%s: sendto %s: %s", what, name, strerror(errno));
}

static int child_main(int to_parent, int from_parent)
{
	int s_free = un_socket(SOCK_DGRAM, NULL, 0);
	int s_conn = un_socket(SOCK_DGRAM, NULL, 0);
	int s_named = un_socket(SOCK_DGRAM, "cl.sock", 0);
	if (un_connect(s_conn, "dg.sock", 0) < 0 || un_connect(s_named, "dg.sock", 0) < 0)
		die("connect");
	for (size_t i = 0; i < NS; i++)
		send_to(s_free, "dg.sock", 0, sizes[i], 100 + i, "unbound sender");
	send_pattern(s_conn, 300, 200, "connected sender");
	send_pattern(s_conn, 40000, 201, "connected sender");
	for (int i = 0; i < 3; i++)
		send_to(s_free, abs_name, 1, 1000 + i, 300 + i, "abstract sender");
	sync_write(to_parent, 'a');
	sync_read(from_parent, 'b');
	proto_wait();

	expect_msg(s_named, 4321, 400, "named client queue");
	expect_msg(s_named, 12, 401, "named client queue");
	send_pattern(s_conn, 55, 500, "connected sender after");
	send_to(s_free, "dg.sock", 0, 66, 501, "unbound sender after");
	int s_new = un_socket(SOCK_DGRAM, NULL, 0);
	send_to(s_new, abs_name, 1, 77, 502, "new sender after");
	send_pattern(s_named, 88, 503, "named client after");
	return failures ? 1 : 0;
}

int main(void)
{
	int up[2], down[2];

	proto_init();
	snprintf(abs_name, sizeof(abs_name), "stasis-test-dgram-%d", getpid());
	int d_path = un_socket(SOCK_DGRAM, "dg.sock", 0);
	int d_abs = un_socket(SOCK_DGRAM, abs_name, 1);
	if (pipe(up) < 0 || pipe(down) < 0)
		die("pipe");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(up[0]);
		close(down[1]);
		close(d_path);
		close(d_abs);
		_exit(child_main(up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	sync_read(up[0], 'a');
	send_to(d_path, "cl.sock", 0, 4321, 400, "server to named client");
	send_to(d_path, "cl.sock", 0, 12, 401, "server to named client");
	sync_write(down[1], 'b');
	proto_ready();
	proto_wait();

	kill(child, SIGUSR1);
	for (size_t i = 0; i < NS; i++)
		expect_msg(d_path, sizes[i], 100 + i, "dg.sock queue (unbound sender)");
	expect_msg(d_path, 300, 200, "dg.sock queue (connected sender)");
	expect_msg(d_path, 40000, 201, "dg.sock queue (connected sender)");
	for (int i = 0; i < 3; i++)
		expect_msg(d_abs, 1000 + i, 300 + i, "abstract queue");
	expect_msg(d_path, 55, 500, "dg.sock after (connected sender)");
	expect_msg(d_path, 66, 501, "dg.sock after (unbound sender)");
	expect_msg(d_abs, 77, 502, "abstract after (new sender)");
	expect_msg(d_path, 88, 503, "dg.sock after (named client)");
	reap(child);
	return proto_finish();
}
