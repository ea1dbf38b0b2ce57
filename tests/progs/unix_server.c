/*
 * unix_server: a server (the root) listening on a path (srv.sock, a
 * relative name), on an abstract name and on a seqpacket path (seq.sock);
 * its child connects to each, the server accepts, and data is in flight
 * both ways on every connection. One more connection of the child waits
 * in srv.sock's accept queue, not accepted yet, behind one made from a
 * socket opened after it (the queue's order is not the fds' order). After
 * restore: the queued
 * data is read back exactly, the names are the same (getsockname,
 * getpeername), the waiting connection is accepted and talks, the old
 * connections still talk and new clients can connect to the three names.
 * A fourth listener (gone.sock) had its file removed after accepting a
 * connection: it keeps its name, the file stays away, the connection talks.
 */
#include "unix_common.h"

#define BIG 50000

static char abs_name[64];
static int like_criu;	/* CRIU's restore: connected stream sockets come back
			 * unnamed, waiting connections in its own order */
static int l_path, l_abs, l_seq, l_gone;	/* server */
static int a_path, a_abs, a_seq, a_gone;	/* server's accepted ends */
static int c_path, c_abs, c_seq, c_wait, c_wait2, c_gone;	/* client */

static void check_name(int fd, int peer, const char *want, int abstract, const char *what)
{
	struct sockaddr_un a, w;
	socklen_t l = sizeof(a), wl = un_addr(&w, want, abstract);
	if (like_criu)
		return;
	int r = peer ? getpeername(fd, (struct sockaddr *)&a, &l) : getsockname(fd, (struct sockaddr *)&a, &l);
	CHECK(r == 0 && l == wl && !memcmp(&a, &w, l), "%s: %s is not %s%s (len %u vs %u)", what,
	      peer ? "getpeername" : "getsockname", abstract ? "@" : "", want, l, wl);
}

static void new_client(const char *name, int abstract, int type, int listener, const char *what)
{
	int c = socket(AF_UNIX, type, 0);
	if (c < 0 || un_connect(c, name, abstract) < 0) {
		fail("%s: a new client can't connect: %s", what, strerror(errno));
		return;
	}
	int a = accept(listener, NULL, NULL);
	if (a < 0) {
		fail("%s: can't accept a new client: %s", what, strerror(errno));
		return;
	}
	send_all(c, "new-client", 10, what);
	char buf[16] = { 0 };
	CHECK(recv_all(a, buf, 10) == 0 && !memcmp(buf, "new-client", 10), "%s: the new client's bytes are lost", what);
	close(a);
	close(c);
}

static int child_main(int to_parent, int from_parent)
{
	c_path = un_socket(SOCK_STREAM, NULL, 0);
	c_abs = un_socket(SOCK_STREAM, NULL, 0);
	c_seq = un_socket(SOCK_SEQPACKET, NULL, 0);
	c_gone = un_socket(SOCK_STREAM, NULL, 0);
	if (un_connect(c_path, "srv.sock", 0) < 0 || un_connect(c_abs, abs_name, 1) < 0 ||
	    un_connect(c_seq, "seq.sock", 0) < 0 || un_connect(c_gone, "gone.sock", 0) < 0)
		die("connect");
	sync_write(to_parent, 'a');
	sync_read(from_parent, 'b');
	c_wait = un_socket(SOCK_STREAM, NULL, 0);
	c_wait2 = un_socket(SOCK_STREAM, NULL, 0);
	if ((!like_criu && un_connect(c_wait2, "srv.sock", 0) < 0) || un_connect(c_wait, "srv.sock", 0) < 0)
		die("connect (waiting)");
	send_pattern(c_path, BIG, 11, "client path");
	send_pattern(c_abs, 2000, 12, "client abstract");
	send_pattern(c_seq, 100, 13, "client seqpacket");
	send_pattern(c_seq, 4000, 14, "client seqpacket");
	sync_write(to_parent, 'c');
	proto_wait();

	expect_stream(c_path, BIG, 21, "client path queue");
	expect_stream(c_abs, 3000, 22, "client abstract queue");
	expect_msg(c_seq, 5, 23, "client seqpacket queue");
	expect_msg(c_seq, 60000, 24, "client seqpacket queue");
	check_name(c_path, 1, "srv.sock", 0, "client path");
	check_name(c_abs, 1, abs_name, 1, "client abstract");
	check_name(c_seq, 1, "seq.sock", 0, "client seqpacket");
	send_all(c_wait, "late", 4, "waiting connection");
	if (!like_criu)
		send_all(c_wait2, "late2", 5, "first waiting connection");
	char buf[8] = { 0 };
	CHECK(recv_all(c_wait, buf, 3) == 0 && !memcmp(buf, "ack", 3), "client: the waiting connection got no answer");
	CHECK(like_criu || (recv_all(c_wait2, buf, 3) == 0 && !memcmp(buf, "ack", 3)),
	      "client: the first waiting connection got no answer");
	send_pattern(c_path, 77, 31, "client path after");
	expect_stream(c_path, 88, 32, "client path after");
	send_pattern(c_seq, 99, 33, "client seqpacket after");
	expect_msg(c_seq, 111, 34, "client seqpacket after");
	expect_stream(c_gone, 9, 41, "client of the deleted listener");
	send_pattern(c_gone, 10, 42, "client of the deleted listener after");
	return failures ? 1 : 0;
}

int main(void)
{
	int up[2], down[2];

	proto_init();
	like_criu = getenv("UNIX_LIKE_CRIU") != NULL;
	snprintf(abs_name, sizeof(abs_name), "stasis-test-unix-%d", getpid());
	l_path = un_socket(SOCK_STREAM, "srv.sock", 0);
	l_abs = un_socket(SOCK_STREAM, abs_name, 1);
	l_seq = un_socket(SOCK_SEQPACKET, "seq.sock", 0);
	l_gone = un_socket(SOCK_STREAM, "gone.sock", 0);
	if (listen(l_path, 5) < 0 || listen(l_abs, 3) < 0 || listen(l_seq, 4) < 0 || listen(l_gone, 2) < 0)
		die("listen");
	if (pipe(up) < 0 || pipe(down) < 0)
		die("pipe");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(up[0]);
		close(down[1]);
		close(l_path);
		close(l_abs);
		close(l_seq);
		close(l_gone);
		_exit(child_main(up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	sync_read(up[0], 'a');
	a_path = accept(l_path, NULL, NULL);
	a_abs = accept(l_abs, NULL, NULL);
	a_seq = accept(l_seq, NULL, NULL);
	a_gone = accept(l_gone, NULL, NULL);
	if (a_path < 0 || a_abs < 0 || a_seq < 0 || a_gone < 0 || unlink("gone.sock") < 0)
		die("accept");
	send_pattern(a_gone, 9, 41, "server of the deleted listener");
	send_pattern(a_path, BIG, 21, "server path");
	send_pattern(a_abs, 3000, 22, "server abstract");
	send_pattern(a_seq, 5, 23, "server seqpacket");
	send_pattern(a_seq, 60000, 24, "server seqpacket");
	sync_write(down[1], 'b');
	sync_read(up[0], 'c');
	close(up[0]);
	close(down[1]);
	proto_ready();
	proto_wait();

	kill(child, SIGUSR1);
	expect_stream(a_path, BIG, 11, "server path queue");
	expect_stream(a_abs, 2000, 12, "server abstract queue");
	expect_msg(a_seq, 100, 13, "server seqpacket queue");
	expect_msg(a_seq, 4000, 14, "server seqpacket queue");
	check_name(a_path, 0, "srv.sock", 0, "server's accepted path connection");
	check_name(a_abs, 0, abs_name, 1, "server's accepted abstract connection");
	check_name(l_path, 0, "srv.sock", 0, "path listener");
	static const char *const waiting[2] = { "late2", "late" };	/* queue order */
	for (int i = like_criu; i < 2; i++) {
		int w = accept(l_path, NULL, NULL);
		char buf[8] = { 0 };
		size_t n = strlen(waiting[i]);
		if (w < 0) {
			fail("server: waiting connection %d can't be accepted: %s", i, strerror(errno));
			continue;
		}
		CHECK(recv_all(w, buf, n) == 0 && !memcmp(buf, waiting[i], n),
		      "server: waiting connection %d says '%s', not '%s' (queue order lost?)", i, buf, waiting[i]);
		send_all(w, "ack", 3, "waiting connection");
	}
	expect_stream(a_path, 77, 31, "server path after");
	send_pattern(a_path, 88, 32, "server path after");
	expect_msg(a_seq, 99, 33, "server seqpacket after");
	send_pattern(a_seq, 111, 34, "server seqpacket after");
	expect_stream(a_gone, 10, 42, "server of the deleted listener after");
	check_name(l_gone, 0, "gone.sock", 0, "deleted listener");
	CHECK(access("gone.sock", F_OK) < 0 && errno == ENOENT, "gone.sock is back in the filesystem");
	new_client("srv.sock", 0, SOCK_STREAM, l_path, "path listener");
	new_client(abs_name, 1, SOCK_STREAM, l_abs, "abstract listener");
	new_client("seq.sock", 0, SOCK_SEQPACKET, l_seq, "seqpacket listener");
	reap(child);
	return proto_finish();
}
