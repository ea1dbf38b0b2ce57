/*
 * files: open file descriptors must come back pointing at the same files,
 * with the same offsets, status flags and fd flags, and sharing exactly what
 * they shared before.
 *
 *   rw     rw.dat O_RDWR, offset 12345
 *   dup    fd 100 = dup2(rw): shares rw's file description (and offset)
 *   rw2    rw.dat again, O_RDONLY, offset 777: an independent description
 *   app    append.dat O_WRONLY|O_APPEND
 *   ro     ro.dat O_RDONLY, offset 100
 *   null   /dev/null O_WRONLY
 *   zero   /dev/zero O_RDONLY|O_NONBLOCK
 *   cloex  cloexec.dat with FD_CLOEXEC
 *   plain  plain.dat without FD_CLOEXEC
 *   dir    "." as O_DIRECTORY
 *
 * The set of open fd numbers must also be unchanged (no leaked tool fds).
 *
 * test files: plain restore chain leave_running
 */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#define RW_SIZE 65536
#define HIGH_FD 100

enum { RW, DUP, RW2, APP, RO, NUL, ZERO, CLOEX, PLAIN, DIRFD, NFDS };

static const char *names[NFDS] = { "rw", "dup(100)", "rw2", "append", "ro",
				   "/dev/null", "/dev/zero", "cloexec", "plain", "dir" };
static const char *paths[NFDS] = { "rw.dat", "rw.dat", "rw.dat", "append.dat", "ro.dat",
				   "/dev/null", "/dev/zero", "cloexec.dat", "plain.dat", "." };

static struct fdstate {
	int fd, fl, fdfl;
	off_t pos;
	dev_t dev;
	ino_t ino;
} st[NFDS];

static char open_fds_before[4096];

static unsigned char pat(size_t i)
{
	return (unsigned char)((i * 7) ^ 0x5a);
}

static void make_file(const char *name, size_t len)
{
	unsigned char buf[RW_SIZE];
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	for (size_t i = 0; i < len; i++)
		buf[i] = pat(i);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		die(name);
	close(fd);
}

static int xopen(const char *path, int flags)
{
	int fd = open(path, flags, 0644);

	if (fd < 0)
		die(path);
	return fd;
}

/* Space-separated list of open fd numbers, from /proc/self/fd. */
static void list_fds(char *buf, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int self = d ? dirfd(d) : -1;
	int present[1024] = { 0 };

	buf[0] = 0;
	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] != '.' && fd != self && fd < 1024)
			present[fd] = 1;
	}
	closedir(d);
	for (int fd = 0; fd < 1024; fd++)
		if (present[fd])
			snprintf(buf + strlen(buf), len - strlen(buf), "%d ", fd);
}

static void snapshot(struct fdstate *s)
{
	struct stat sb;

	s->fl = fcntl(s->fd, F_GETFL);
	s->fdfl = fcntl(s->fd, F_GETFD);
	s->pos = lseek(s->fd, 0, SEEK_CUR);
	if (fstat(s->fd, &sb) == 0) {
		s->dev = sb.st_dev;
		s->ino = sb.st_ino;
	}
}

static void setup(void)
{
	char buf[100];

	make_file("rw.dat", RW_SIZE);
	make_file("ro.dat", 4096);

	st[RW].fd = xopen("rw.dat", O_RDWR);
	lseek(st[RW].fd, 12345, SEEK_SET);
	if (dup2(st[RW].fd, HIGH_FD) != HIGH_FD)
		die("dup2");
	st[DUP].fd = HIGH_FD;
	st[RW2].fd = xopen("rw.dat", O_RDONLY);
	lseek(st[RW2].fd, 777, SEEK_SET);
	st[APP].fd = xopen("append.dat", O_WRONLY | O_APPEND | O_CREAT | O_TRUNC);
	write_all(st[APP].fd, "line1\n", 6);
	st[RO].fd = xopen("ro.dat", O_RDONLY);
	if (read(st[RO].fd, buf, sizeof(buf)) != sizeof(buf))
		die("read ro.dat");
	st[NUL].fd = xopen("/dev/null", O_WRONLY);
	st[ZERO].fd = xopen("/dev/zero", O_RDONLY | O_NONBLOCK);
	st[CLOEX].fd = xopen("cloexec.dat", O_RDWR | O_CREAT | O_CLOEXEC);
	st[PLAIN].fd = xopen("plain.dat", O_RDWR | O_CREAT);
	st[DIRFD].fd = xopen(".", O_RDONLY | O_DIRECTORY);
	close(HIGH_FD - 1); /* must stay closed */

	for (int i = 0; i < NFDS; i++)
		snapshot(&st[i]);
	list_fds(open_fds_before, sizeof(open_fds_before));
}

/* Everything that is observable without changing state. */
static void check_static(void)
{
	char now[4096];

	for (int i = 0; i < NFDS; i++) {
		struct fdstate n = { .fd = st[i].fd };
		struct stat sb;

		snapshot(&n);
		if (n.fl < 0) {
			fail("%s: fd %d is not open", names[i], n.fd);
			continue;
		}
		CHECK(n.fl == st[i].fl, "%s: F_GETFL %#o, expected %#o", names[i], n.fl, st[i].fl);
		CHECK(n.fdfl == st[i].fdfl, "%s: F_GETFD %#x, expected %#x", names[i], n.fdfl, st[i].fdfl);
		CHECK(n.pos == st[i].pos, "%s: offset %lld, expected %lld", names[i],
		      (long long)n.pos, (long long)st[i].pos);
		CHECK(n.dev == st[i].dev && n.ino == st[i].ino, "%s: fd %d now refers to another file",
		      names[i], n.fd);
		CHECK(stat(paths[i], &sb) == 0 && sb.st_ino == n.ino && sb.st_dev == n.dev,
		      "%s: fd %d is not the file at '%s'", names[i], n.fd, paths[i]);
	}
	/* Guard against a bad snapshot: the flags we asked for. */
	CHECK((st[RW].fl & O_ACCMODE) == O_RDWR, "setup: rw not O_RDWR");
	CHECK((st[APP].fl & (O_ACCMODE | O_APPEND)) == (O_WRONLY | O_APPEND), "setup: append flags");
	CHECK((st[RO].fl & O_ACCMODE) == O_RDONLY, "setup: ro not O_RDONLY");
	CHECK(st[ZERO].fl & O_NONBLOCK, "setup: /dev/zero not O_NONBLOCK");
	CHECK(st[CLOEX].fdfl == FD_CLOEXEC && st[PLAIN].fdfl == 0, "setup: FD_CLOEXEC");
	CHECK(st[RW].pos == 12345 && st[RW2].pos == 777 && st[RO].pos == 100, "setup: offsets");

	CHECK(fcntl(HIGH_FD - 1, F_GETFD) < 0 && errno == EBADF, "fd %d is open but should not be",
	      HIGH_FD - 1);
	list_fds(now, sizeof(now));
	CHECK(strcmp(now, open_fds_before) == 0, "open fds are [%s], expected [%s]", now,
	      open_fds_before);
}

static void check_io(void)
{
	unsigned char buf[100];
	char text[64] = "";
	int fd;

	/* fd 100 and rw share one offset; rw2 has its own. */
	CHECK(read(HIGH_FD, buf, 10) == 10, "read via fd %d failed", HIGH_FD);
	for (int i = 0; i < 10; i++)
		if (buf[i] != pat(12345 + (size_t)i)) {
			fail("read via fd %d returned wrong data", HIGH_FD);
			break;
		}
	CHECK(lseek(st[RW].fd, 0, SEEK_CUR) == 12355,
	      "reading via fd %d did not move rw's offset (descriptions no longer shared)", HIGH_FD);
	CHECK(lseek(st[RW2].fd, 0, SEEK_CUR) == 777, "rw2's offset moved with rw's (wrongly shared)");

	/* A write through rw lands at its offset, visible via rw2. */
	CHECK(write(st[RW].fd, "XYZ", 3) == 3, "write via rw failed: %s", strerror(errno));
	CHECK(pread(st[RW2].fd, buf, 3, 12355) == 3 && memcmp(buf, "XYZ", 3) == 0,
	      "write via rw did not land at offset 12355");

	/* O_APPEND: even after seeking to 0 the write goes to the end. */
	lseek(st[APP].fd, 0, SEEK_SET);
	CHECK(write(st[APP].fd, "line2\n", 6) == 6, "write to append.dat failed: %s", strerror(errno));
	fd = open("append.dat", O_RDONLY);
	CHECK(fd >= 0 && read(fd, text, sizeof(text) - 1) == 12 && strcmp(text, "line1\nline2\n") == 0,
	      "append.dat is '%s', expected 'line1\\nline2\\n'", text);
	if (fd >= 0)
		close(fd);

	CHECK(read(st[RO].fd, buf, 10) == 10 && buf[0] == pat(100) && buf[9] == pat(109),
	      "read from ro.dat at offset 100 wrong");
	CHECK(write(st[RO].fd, "x", 1) < 0 && errno == EBADF, "write to O_RDONLY fd did not fail");

	memset(buf, 0xff, sizeof(buf));
	CHECK(read(st[ZERO].fd, buf, sizeof(buf)) == sizeof(buf) && buf[0] == 0 && buf[99] == 0,
	      "/dev/zero did not read zeros");
	CHECK(write(st[NUL].fd, "abc", 3) == 3, "/dev/null write failed");
	CHECK(write(st[PLAIN].fd, "p", 1) == 1 && write(st[CLOEX].fd, "c", 1) == 1,
	      "write to plain/cloexec failed");
}

int main(void)
{
	proto_init();
	setup();
	check_static();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check_static();
	check_io();
	return proto_finish();
}
