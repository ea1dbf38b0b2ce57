/*
 * unix_deleted: sockets whose file is gone. After restore each must talk
 * as before, and the file system must be as the program left it:
 *  - a datagram socket bound in a directory since removed (a relative
 *    name), its client connected by that name, with a message queued;
 *  - a listener bound in another removed directory (an absolute name),
 *    with a connection accepted and one waiting to be accepted;
 *  - two listeners bound to one name in turn, the first one's file
 *    moved away meanwhile and then back over the second's: a client
 *    connecting by name after restore reaches the first, the second
 *    still listens;
 *  - a datagram socket whose path now holds a FIFO, open in the program.
 * The removed directories stay removed, nothing is left beside the FIFO.
 * UNIX_LIKE_CRIU: the first name is absolute too (CRIU's restore leaves
 * behind the directory it makes for a relative one).
 *
 * test unix.deleted: plain restore chain leave_running
 */
#include "unix_common.h"

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>

static int dsrv, dcli, lsn, acc, cli, waiting, old_lsn, old_acc, old_cli, new_lsn, fsrv, fcli, fifo;
static char abs_dir[PATH_MAX], abs_name[PATH_MAX + 16];
static struct stat fifo_st;

static int listener(const char *name)
{
	int fd = un_socket(SOCK_STREAM, name, 0);
	if (listen(fd, 8) < 0)
		die("listen");
	return fd;
}

static int client_of(const char *name)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0 || un_connect(fd, name, 0) < 0)
		die("connect");
	return fd;
}

static void setup(void)
{
	char dg_name[PATH_MAX + 16] = "gone/dg.sock";
	if (!getcwd(abs_dir, sizeof(abs_dir) - 16))
		die("getcwd");
	if (getenv("UNIX_LIKE_CRIU"))	/* CRIU leaves the directory of a relative name */
		snprintf(dg_name, sizeof(dg_name), "%s/gone/dg.sock", abs_dir);
	if (strlen(dg_name) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		snprintf(dg_name, sizeof(dg_name), "%s", "gone/dg.sock");	/* a deep work dir */
	if (mkdir("gone", 0755) < 0 && errno != EEXIST)
		die("mkdir gone");
	dsrv = un_socket(SOCK_DGRAM, dg_name, 0);
	dcli = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (dcli < 0 || un_connect(dcli, dg_name, 0) < 0)
		die("connect gone/dg.sock");
	send_all(dcli, "queued", 6, "dgram in a removed directory");
	if (unlink(dg_name) < 0 || rmdir("gone") < 0)
		die("remove gone");

	strcat(abs_dir, "/gone-abs");
	snprintf(abs_name, sizeof(abs_name), "%s/st.sock", abs_dir);
	if (strlen(abs_name) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		snprintf(abs_name, sizeof(abs_name), "%s", "gone-abs/st.sock");	/* a deep work dir */
	if (mkdir(abs_dir, 0755) < 0 && errno != EEXIST)
		die("mkdir gone-abs");
	lsn = listener(abs_name);
	cli = client_of(abs_name);
	acc = accept(lsn, NULL, NULL);
	waiting = client_of(abs_name);
	if (acc < 0 || unlink(abs_name) < 0 || rmdir(abs_dir) < 0)
		die("remove gone-abs");

	old_lsn = listener("replaced.sock");
	old_cli = client_of("replaced.sock");
	old_acc = accept(old_lsn, NULL, NULL);
	if (old_acc < 0 || rename("replaced.sock", "tmp.sock") < 0)
		die("rename replaced.sock");
	new_lsn = listener("replaced.sock");
	if (rename("tmp.sock", "replaced.sock") < 0)	/* the first one's file back: the second's is gone */
		die("rename tmp.sock");

	fsrv = un_socket(SOCK_DGRAM, "fifo.path", 0);
	fcli = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fcli < 0 || un_connect(fcli, "fifo.path", 0) < 0)
		die("connect fifo.path");
	if (unlink("fifo.path") < 0 || mkfifo("fifo.path", 0640) < 0)
		die("mkfifo");
	fifo = open("fifo.path", O_RDWR);
	if (fifo < 0 || fstat(fifo, &fifo_st) < 0)
		die("open fifo");
}

static void expect_msg_text(int fd, const char *want, const char *what)
{
	char buf[32] = { 0 };
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	CHECK(n == (ssize_t)strlen(want) && !strcmp(buf, want), "%s: got '%s', want '%s'", what, buf, want);
}

static void expect_bytes(int fd, const char *want, const char *what)
{
	char buf[32] = { 0 };
	size_t n = strlen(want);
	CHECK(recv_all(fd, buf, n) == 0 && !memcmp(buf, want, n), "%s: got '%s', want '%s'", what, buf, want);
}

static void talk(int a, int b, const char *what)
{
	send_all(a, "ping", 4, what);
	expect_bytes(b, "ping", what);
	send_all(b, "pong", 4, what);
	expect_bytes(a, "pong", what);
}

static void check(void)
{
	struct stat st;
	expect_msg_text(dsrv, "queued", "dgram in a removed directory: the queued message");
	send_all(dcli, "after", 5, "dgram in a removed directory");
	expect_msg_text(dsrv, "after", "dgram in a removed directory: a message after restore");
	CHECK(stat("gone", &st) < 0 && errno == ENOENT, "the removed directory gone/ is back");

	talk(cli, acc, "the accepted connection of a listener in a removed directory");
	int w = accept4(lsn, NULL, NULL, SOCK_NONBLOCK);
	CHECK(w >= 0, "the waiting connection is not in the queue of the listener any more");
	if (w >= 0)
		talk(waiting, w, "the connection accepted after restore");
	CHECK(stat(abs_dir, &st) < 0 && errno == ENOENT, "the removed directory %s is back", abs_dir);

	talk(old_cli, old_acc, "the connection of the listener whose file was replaced");
	int c = client_of("replaced.sock");
	int a = accept4(old_lsn, NULL, NULL, SOCK_NONBLOCK);
	CHECK(a >= 0, "a connection to replaced.sock did not reach the listener whose file is there");
	if (a >= 0)
		talk(c, a, "the listener at replaced.sock");
	int v = 0;
	socklen_t l = sizeof(v);
	CHECK(!getsockopt(new_lsn, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) && v == 1,
	      "the listener whose file was replaced does not listen");

	send_all(fcli, "to-fsrv", 7, "dgram under a FIFO");
	expect_msg_text(fsrv, "to-fsrv", "dgram under a FIFO");
	CHECK(stat("fifo.path", &st) == 0 && S_ISFIFO(st.st_mode) && st.st_ino == fifo_st.st_ino,
	      "fifo.path is not the program's FIFO any more");
	write_all(fifo, "fifo", 4);
	char b[8] = { 0 };
	CHECK(read(fifo, b, 4) == 4 && !strcmp(b, "fifo"), "the FIFO reads '%s'", b);

	DIR *d = opendir(".");
	for (struct dirent *e; d && (e = readdir(d));)
		CHECK(!strstr(e->d_name, "ghost"), "%s left in the directory", e->d_name);
	if (d)
		closedir(d);
}

int main(void)
{
	proto_init();
	setup();
	proto_ready();
	proto_wait();
	check();
	return proto_finish();
}
