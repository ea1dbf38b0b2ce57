/*
 * memfd_exec: a program that made a memfd to run it (a script here) can
 * still execveat() it after restore. The kernel refuses to run a file
 * open for writing (ETXTBSY), and the memfd_create() fd itself does not
 * count as a writer: restore must give it back so, not a reopen for
 * writing. A shared writable mapping of the memfd (which holds it
 * read-write too) and a private one must not count either.
 *
 * test memfd_exec: plain restore chain
 */
#include "common.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char script[] = "#!/bin/true\n";
static int fd;
static char *shared;

static void check_exec(void)
{
	char *const argv[] = { "true", NULL }, *const envp[] = { NULL };
	int st;
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
		_exit(errno);
	}
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "execveat of the memfd: %s",
	      WIFEXITED(st) ? strerror(WEXITSTATUS(st)) : "killed");
	CHECK(!memcmp(shared, script, sizeof(script) - 1), "the shared mapping of the memfd lost the script");
}

int main(void)
{
	proto_init();
	fd = memfd_create("script", 0);
	if (fd < 0)
		die("memfd_create");
	if (write(fd, script, sizeof(script) - 1) != (ssize_t)sizeof(script) - 1)
		die("write");
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shared == MAP_FAILED || mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED)
		die("mmap");
	check_exec();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check_exec();
	return proto_finish();
}
