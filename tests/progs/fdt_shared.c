/*
 * fdt_shared: processes sharing one fd table (CLONE_FILES) still share it
 * after restore, and those with a copy of their own still have their own.
 *
 *   root   opens data.txt at fd 128, then clones
 *   a      CLONE_FILES from the root, which clones
 *   a1     CLONE_FILES from a: the root's table too
 *   a2     a plain child of a: a copy of the table, then fd 129 its own
 *
 * After SIGUSR1 the root checks with kcmp(KCMP_FILES) that a and a1 share
 * its table and a2 does not, reads fd 128, and opens fd 140, which a and
 * a1 must see (through /proc) and a2 must not; a2 must still have fd 129,
 * which the root must not.
 *
 * test fdt_shared: plain restore chain leave_running
 */
#include "common.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/kcmp.h>

#define DATA_FD 128
#define OWN_FD 129
#define NEW_FD 140
#define STACK (64 << 10)

enum { A, A1, A2, NKIDS };
static const char *kid_names[NKIDS] = { "a", "a1", "a2" };
static volatile pid_t *kids;	/* shared: the pids, filled by whoever makes them */

static int idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

static pid_t clone_kid(int (*fn)(void *), int flags)
{
	char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack == MAP_FAILED)
		die("mmap stack");
	pid_t pid = clone(fn, stack + STACK, flags | SIGCHLD, NULL);
	if (pid < 0)
		die("clone");
	return pid;
}

static int plain_kid(void *arg)
{
	(void)arg;
	close(DATA_FD);	/* its own table: the root keeps it */
	if (dup2(2, OWN_FD) < 0)
		_exit(3);
	return idle(NULL);
}

static int kid_a(void *arg)
{
	(void)arg;
	kids[A1] = clone_kid(idle, CLONE_FILES);
	kids[A2] = clone_kid(plain_kid, 0);
	return idle(NULL);
}

static int shares(pid_t a, pid_t b)
{
	return syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0;
}

static int has_fd(pid_t pid, int fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	return access(path, F_OK) == 0;
}

int main(void)
{
	char buf[16] = "";

	proto_init();
	kids = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fd = open("data.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (kids == MAP_FAILED || fd < 0 || write(fd, "shared table", 12) != 12 || dup2(fd, DATA_FD) < 0)
		die("setup");
	close(fd);
	lseek(DATA_FD, 0, SEEK_SET);
	kids[A] = clone_kid(kid_a, CLONE_FILES);
	for (int i = 0; i < 500 && !(kids[A1] && kids[A2] && has_fd(kids[A2], OWN_FD)); i++)
		usleep(10000);
	if (!kids[A1] || !kids[A2] || !has_fd(kids[A2], OWN_FD))
		die("the children did not come up");
	proto_ready();
	proto_wait();

	CHECK(shares(getpid(), kids[A]), "a does not share the root's fd table");
	CHECK(shares(getpid(), kids[A1]), "a1 does not share the root's fd table");
	CHECK(!shares(getpid(), kids[A2]), "a2 shares the root's fd table");
	CHECK(read(DATA_FD, buf, 12) == 12 && !memcmp(buf, "shared table", 12), "fd %d does not read its file",
	      DATA_FD);
	CHECK(!has_fd(getpid(), OWN_FD), "the root has a2's fd %d", OWN_FD);
	CHECK(has_fd(kids[A2], OWN_FD), "a2 lost its fd %d", OWN_FD);
	CHECK(!has_fd(kids[A2], DATA_FD), "a2 has fd %d, which it closed", DATA_FD);
	if (dup2(DATA_FD, NEW_FD) < 0)
		fail("dup2: %s", strerror(errno));
	for (int i = A; i <= A1; i++)
		CHECK(has_fd(kids[i], NEW_FD), "%s does not see fd %d the root opened", kid_names[i], NEW_FD);
	CHECK(!has_fd(kids[A2], NEW_FD), "a2 sees fd %d the root opened", NEW_FD);

	for (int i = 0; i < NKIDS; i++)
		kill(kids[i], SIGKILL);
	waitpid(kids[A], NULL, 0);
	return proto_finish();
}
