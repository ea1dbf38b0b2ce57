/*
 * pty_kinds: terminals of kinds beyond a plain pty pair.
 *
 *   A  a pty pair in canonical mode with echo: "one\ntwo\nthr" typed into
 *      the master (two whole lines and one not ended yet), not read by
 *      the slave's reader; their echo "one\r\ntwo\r\nthr" not read at the
 *      master. After SIGUSR1 the master reads exactly that echo (no second
 *      one), the slave reads "one\n" and "two\n" as lines, and once "ee\n"
 *      is typed, "three\n".
 *   B  a pty slave given owner 12345:54321 and mode 0604 (as root), and
 *      special characters of its own ('A' + i for each c_cc[i] up to
 *      VEOL2, VMIN and VTIME too): all must hold. (CRIU's images hold
 *      c_cc as bytes packed four to an entry: read one to an entry, the
 *      characters from VSTART on were garbage, an XON/XOFF stop character
 *      among them.)
 *   C  a pty slave opened twice, then its master closed: both files are
 *      hung up (read gives 0, write EIO) and stay so.
 *   D  a console device node (5:1) made in the working directory and
 *      opened, and E  a virtual terminal node (4:5): the same device
 *      through the same path afterwards. A node that can't be opened here
 *      (no console, no VT) is left out, and the output says so.
 *
 * With the argument "nocanon" A is left out (CRIU writes input in flight
 * back with echo on, so the master reads the echo twice after its
 * restore): tests/cases/interop.sh runs it so.
 *
 * test pty_kinds: plain restore chain leave_running
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include "common.h"

#define OWNER_UID 12345
#define OWNER_GID 54321
#define OWNER_MODE 0604

static int mA, sA, sB, sC1, sC2, fdD = -1, fdE = -1;
static dev_t rdevD, rdevE;

static int open_pair(int *slave)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
		die("posix_openpt");
	*slave = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (*slave < 0)
		die("open the slave");
	return m;
}

/* Up to len bytes from fd within 2 s; the number read. */
static ssize_t read_wait(int fd, char *buf, size_t len)
{
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 2000) <= 0)
		return -1;
	return read(fd, buf, len);
}

static void wait_queued(int fd, int want)
{
	int n = 0;
	for (int i = 0; i < 200 && (ioctl(fd, FIONREAD, &n) < 0 || n < want); i++)
		usleep(10000);
}

static void setup_canon(void)
{
	mA = open_pair(&sA);
	write_all(mA, "one\ntwo\nthr", 11);
	wait_queued(mA, 13);	/* the echo, with ONLCR */
}

static void check_canon(void)
{
	char buf[64];
	int fl = fcntl(mA, F_GETFL);
	fcntl(mA, F_SETFL, fl | O_NONBLOCK);
	ssize_t n = read(mA, buf, sizeof(buf));
	fcntl(mA, F_SETFL, fl);
	CHECK(n == 13 && !memcmp(buf, "one\r\ntwo\r\nthr", 13),
	      "A: the master read %zd bytes '%.*s', expected the echo 'one\\r\\ntwo\\r\\nthr'", n,
	      n > 0 ? (int)n : 0, buf);
	n = read_wait(sA, buf, sizeof(buf));
	CHECK(n == 4 && !memcmp(buf, "one\n", 4), "A: first line %zd bytes '%.*s', expected 'one\\n'", n,
	      n > 0 ? (int)n : 0, buf);
	n = read_wait(sA, buf, sizeof(buf));
	CHECK(n == 4 && !memcmp(buf, "two\n", 4), "A: second line %zd bytes '%.*s', expected 'two\\n'", n,
	      n > 0 ? (int)n : 0, buf);
	write_all(mA, "ee\n", 3);
	n = read_wait(sA, buf, sizeof(buf));
	CHECK(n == 6 && !memcmp(buf, "three\n", 6), "A: third line %zd bytes '%.*s', expected 'three\\n'", n,
	      n > 0 ? (int)n : 0, buf);
}

static void setup_owner(void)
{
	open_pair(&sB);
	if (fchown(sB, OWNER_UID, OWNER_GID) < 0 || fchmod(sB, OWNER_MODE) < 0)
		die("fchown/fchmod the slave");
	struct termios t;
	if (tcgetattr(sB, &t) < 0)
		die("tcgetattr B");
	for (int i = 0; i <= VEOL2; i++)
		t.c_cc[i] = 'A' + i;
	if (tcsetattr(sB, TCSANOW, &t) < 0)
		die("tcsetattr B");
}

static void check_owner(void)
{
	struct stat st;
	if (fstat(sB, &st) < 0)
		die("fstat B");
	CHECK(st.st_uid == OWNER_UID && st.st_gid == OWNER_GID, "B: the slave is owned by %u:%u, expected %u:%u",
	      st.st_uid, st.st_gid, OWNER_UID, OWNER_GID);
	CHECK((st.st_mode & 07777) == OWNER_MODE, "B: the slave's mode is %o, expected %o", st.st_mode & 07777,
	      OWNER_MODE);
	struct termios t;
	if (tcgetattr(sB, &t) < 0)
		die("tcgetattr B");
	for (int i = 0; i <= VEOL2; i++)
		CHECK(t.c_cc[i] == 'A' + i, "B: c_cc[%d] is %#x, expected %#x", i, t.c_cc[i], 'A' + i);
}

static void setup_hung(void)
{
	int m = open_pair(&sC1);
	sC2 = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (sC2 < 0)
		die("open the slave again");
	close(m);
}

static void check_hung_one(const char *name, int fd)
{
	char c;
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && major(st.st_rdev) >= 136 && major(st.st_rdev) <= 143,
	      "C: %s is no longer a pty slave", name);
	ssize_t n = read(fd, &c, 1);
	CHECK(n == 0, "C: read of %s gave %zd (%s), expected 0 (hung up)", name, n, n < 0 ? strerror(errno) : "");
	n = write(fd, "x", 1);
	CHECK(n < 0 && errno == EIO, "C: write to %s gave %zd (%s), expected EIO (hung up)", name, n,
	      n < 0 ? strerror(errno) : "");
}

static void check_hung(void)
{
	check_hung_one("the first slave", sC1);
	check_hung_one("the second slave", sC2);
}

/* A device node made here and opened; -1 if this machine can't open it. */
static int open_node(const char *path, dev_t rdev, dev_t *seen)
{
	struct stat st;
	unlink(path);
	if (mknod(path, S_IFCHR | 0600, rdev) < 0)
		die("mknod");
	int fd = open(path, O_RDONLY | O_NOCTTY);
	if (fd < 0) {
		sayf("note: %s (%u:%u) can't be opened here (%s): left out\n", path, major(rdev), minor(rdev),
		     strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0)
		die("fstat a node");
	*seen = st.st_rdev;
	return fd;
}

static void check_node(const char *name, const char *path, int fd, dev_t rdev)
{
	struct stat st;
	char link[64], target[4096];
	if (fd < 0)
		return;
	CHECK(fstat(fd, &st) == 0 && st.st_rdev == rdev, "%s: the fd is device %u:%u, expected %u:%u", name,
	      major(st.st_rdev), minor(st.st_rdev), major(rdev), minor(rdev));
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	size_t lp = strlen(path);
	CHECK(n > (ssize_t)lp && !strcmp(target + n - lp, path) && target[n - lp - 1] == '/',
	      "%s: the fd is %s, expected .../%s", name, target, path);
}

static void check(void)
{
	check_owner();
	check_hung();
	check_node("D (console)", "console.dev", fdD, rdevD);
	check_node("E (vt)", "vt.dev", fdE, rdevE);
}

int main(int argc, char **argv)
{
	bool canon = !(argc > 1 && !strcmp(argv[1], "nocanon"));
	proto_init();
	signal(SIGHUP, SIG_IGN);
	if (canon)
		setup_canon();
	setup_owner();
	setup_hung();
	fdD = open_node("console.dev", makedev(5, 1), &rdevD);
	fdE = open_node("vt.dev", makedev(4, 5), &rdevE);
	check();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check();
	if (canon)
		check_canon();
	return proto_finish();
}
