/*
 * locks: file locks of a parent and its child must come back held, with
 * the same owners, and still be theirs to release and take again.
 *
 *   flock.dat  one open file description, inherited by the child: an
 *              exclusive flock (taken by the parent) that the description
 *              holds, not either process;
 *   ofd.dat    an OFD write lock on bytes 100..199 (F_OFD_SETLK), on a
 *              description also shared with the child;
 *   posix.dat  one description shared too, but POSIX locks are per
 *              process: the parent reads-locks bytes 0..4, the child
 *              write-locks bytes 10..19.
 *
 * Prints "PIDS parent child" then READY. After SIGUSR1 (the harness
 * checks the locks from outside first) the parent checks, from a second
 * description of each file, that every lock is held and by whom, releases
 * and retakes its own, then passes SIGUSR1 to the child, which does the
 * same for the shared flock and its POSIX range.
 */
#include "common.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>

#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#endif

static int flock_fd, ofd_fd, posix_fd;
static pid_t parent_pid, child_pid;

static int open_file(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		die(name);
	if (ftruncate(fd, 4096))
		die("ftruncate");
	return fd;
}

static int range_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	return fcntl(fd, cmd, &fl);
}

/* Who (F_GETLK / F_OFD_GETLK) would stop a write lock on the range: the
 * holder's pid (-1 for an OFD lock), or 0 if the range is free. */
static pid_t range_holder(int fd, int cmd, off_t start, off_t len, short *type)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	if (fcntl(fd, cmd, &fl) < 0) {
		fail("F_GETLK: %s", strerror(errno));
		return 0;
	}
	if (type)
		*type = fl.l_type;
	return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

/* A new description of the same file can't take an exclusive flock. */
static void check_flock_held(const char *who)
{
	int other = open("flock.dat", O_RDWR);
	if (other < 0) {
		fail("%s: open flock.dat: %s", who, strerror(errno));
		return;
	}
	CHECK(flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK,
	      "%s: the flock on flock.dat is not held after restore", who);
	close(other);
}

/* Releases a flock, checks another description can take it then, and
 * takes it back. */
static void flock_cycle(const char *who)
{
	int other = open("flock.dat", O_RDWR);
	CHECK(flock(flock_fd, LOCK_UN) == 0, "%s: can't release the flock: %s", who, strerror(errno));
	CHECK(flock(other, LOCK_EX | LOCK_NB) == 0, "%s: flock still held after LOCK_UN", who);
	flock(other, LOCK_UN);
	close(other);
	CHECK(flock(flock_fd, LOCK_EX | LOCK_NB) == 0, "%s: can't take the flock again: %s", who,
	      strerror(errno));
	check_flock_held(who);
}

static void parent_checks(void)
{
	int ofd2 = open("ofd.dat", O_RDWR), posix2 = open("posix.dat", O_RDWR);
	short type = F_UNLCK;

	check_flock_held("parent");
	flock_cycle("parent");

	/* OFD: seen from another description, held by "-1" */
	CHECK(range_holder(ofd2, F_OFD_GETLK, 100, 100, NULL) == -1,
	      "the OFD lock on ofd.dat 100..199 is not held after restore");
	CHECK(range_lock(ofd_fd, F_OFD_SETLK, F_UNLCK, 100, 100) == 0, "can't release the OFD lock");
	CHECK(range_holder(ofd2, F_OFD_GETLK, 100, 100, NULL) == 0, "the OFD lock stayed after F_UNLCK");
	CHECK(range_lock(ofd_fd, F_OFD_SETLK, F_WRLCK, 100, 100) == 0, "can't take the OFD lock again: %s",
	      strerror(errno));
	CHECK(range_holder(ofd2, F_OFD_GETLK, 100, 100, NULL) == -1, "the OFD lock retaken is not held");

	/* POSIX: the child's range is the child's (F_GETLK names it) */
	pid_t h = range_holder(posix_fd, F_GETLK, 10, 10, &type);
	CHECK(h == child_pid && type == F_WRLCK,
	      "posix.dat 10..19: held by pid %d type %d, expected the child %d, write", h, type, child_pid);
	/* ours: an OFD probe from another description sees it */
	h = range_holder(posix2, F_OFD_GETLK, 0, 5, &type);
	CHECK(h == parent_pid && type == F_RDLCK,
	      "posix.dat 0..4: held by pid %d type %d, expected the parent %d, read", h, type, parent_pid);
	CHECK(range_lock(posix_fd, F_SETLK, F_UNLCK, 0, 5) == 0, "can't release the parent's POSIX lock");
	CHECK(range_holder(posix2, F_OFD_GETLK, 0, 5, NULL) == 0, "parent's POSIX lock stayed after F_UNLCK");
	CHECK(range_lock(posix_fd, F_SETLK, F_RDLCK, 0, 5) == 0, "can't retake the parent's POSIX lock: %s",
	      strerror(errno));
	/* posix2 stays open: closing any fd of posix.dat would drop all of
	 * this process's POSIX locks on it, before the child looks */
	close(ofd2);
}

static void child_checks(void)
{
	int posix2 = open("posix.dat", O_RDWR);
	short type = F_UNLCK;

	/* the flock is the shared description's: ours too, no conflict */
	CHECK(flock(flock_fd, LOCK_EX | LOCK_NB) == 0, "child: the shared description lost its flock: %s",
	      strerror(errno));
	check_flock_held("child");

	pid_t h = range_holder(posix_fd, F_GETLK, 0, 5, &type);
	CHECK(h == parent_pid && type == F_RDLCK,
	      "posix.dat 0..4: held by pid %d type %d, expected the parent %d, read", h, type, parent_pid);
	h = range_holder(posix2, F_OFD_GETLK, 10, 10, &type);
	CHECK(h == getpid() && type == F_WRLCK, "posix.dat 10..19: held by pid %d, expected the child %d",
	      h, getpid());
	CHECK(range_lock(posix_fd, F_SETLK, F_UNLCK, 10, 10) == 0, "can't release the child's POSIX lock");
	CHECK(range_holder(posix2, F_OFD_GETLK, 10, 10, NULL) == 0, "child's POSIX lock stayed after F_UNLCK");
	CHECK(range_lock(posix_fd, F_SETLK, F_WRLCK, 10, 10) == 0, "can't retake the child's POSIX lock: %s",
	      strerror(errno));
	close(posix2);
}

int main(void)
{
	int sync[2];
	char c;

	proto_init();
	flock_fd = open_file("flock.dat");
	ofd_fd = open_file("ofd.dat");
	posix_fd = open_file("posix.dat");
	if (flock(flock_fd, LOCK_EX))
		die("flock");
	if (range_lock(ofd_fd, F_OFD_SETLK, F_WRLCK, 100, 100))
		die("F_OFD_SETLK");
	if (range_lock(posix_fd, F_SETLK, F_RDLCK, 0, 5))
		die("F_SETLK parent");
	parent_pid = getpid();
	if (pipe(sync))
		die("pipe");
	child_pid = fork();
	if (child_pid < 0)
		die("fork");
	if (child_pid == 0) {
		close(sync[0]);
		if (range_lock(posix_fd, F_SETLK, F_WRLCK, 10, 10))
			die("F_SETLK child");
		if (write(sync[1], "c", 1) != 1)
			die("sync");
		close(sync[1]);
		proto_wait();
		child_checks();
		_exit(failures ? 1 : 0);
	}
	close(sync[1]);
	if (read(sync[0], &c, 1) != 1)
		die("the child did not lock");
	close(sync[0]);
	sayf("PIDS %d %d\n", parent_pid, child_pid);
	proto_ready();
	proto_wait();
	parent_checks();
	kill(child_pid, SIGUSR1);
	int status;
	if (waitpid(child_pid, &status, 0) != child_pid)
		fail("waitpid: %s", strerror(errno));
	else
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (status %#x)", status);
	return proto_finish();
}
