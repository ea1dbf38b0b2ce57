/*
 * trackfork - a fork after a pre-dump, for the memory tracker tests.
 *
 *   trackfork MIB
 *
 * Maps MIB MiB of private anonymous memory, fills page i with (i + 1),
 * prints READY. On SIGUSR2 it forks: the child fills every page with
 * (i + 2) and prints CHILD PID; the parent rewrites every other page
 * with (i + 3). Both then keep rewriting a few pages (the parent with
 * the parent's pattern, the child with the child's) until SIGUSR1. The
 * parent passes SIGUSR1 on to the child and waits for it; each checks
 * every page, and the parent fails if the child did.
 *
 * On SIGHUP (before any fork) it puts /dev/null over every userfaultfd it
 * holds, as a program that dup2s over fds it does not know of would,
 * prints NULLED FD for each, and rewrites every page (i + 6): untracked
 * writes that a dump must not take from the pre-dump.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"

#define PAGE 4096

static uint8_t *mem;
static size_t pages;
static volatile sig_atomic_t fork_flag, hup_flag;
static int child_mode, nulled;

static uint8_t expect(size_t i)
{
	if (child_mode)
		return (uint8_t)(i + 2);
	return (uint8_t)((fork_flag && i % 2 ? i + 3 : i + 1) + 5 * nulled);
}

static void fill(size_t i)
{
	memset(mem + i * PAGE, expect(i), PAGE);
}

static void on_usr2(int sig)
{
	(void)sig;
	fork_flag = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	hup_flag = 1;
}

static void null_uffds(void)
{
	char path[64], target[64];
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	if (nul < 0 || !d)
		die("open");
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (!strcmp(target, "anon_inode:[userfaultfd]")) {
			if (dup2(nul, fd) != fd)
				die("dup2");
			sayf("NULLED %d\n", fd);
		}
	}
	closedir(d);
	close(nul);
}

static void check_all(const char *who)
{
	for (size_t i = 0; i < pages; i++) {
		const uint8_t *p = mem + i * PAGE;
		for (size_t b = 0; b < PAGE; b++)
			if (p[b] != expect(i)) {
				fail("%s: page %zu byte %zu is %u, want %u", who, i, b, p[b], expect(i));
				break;
			}
	}
}

/* Rewrites pages until SIGUSR1, so that the dumps have changes to find. */
static void churn(void)
{
	struct timespec nap = { 0, 500 * 1000 };
	for (size_t k = 0; !go_flag; k++) {
		if (fork_flag)
			fill((k * 7) % pages);
		nanosleep(&nap, NULL);
	}
}

int main(int argc, char **argv)
{
	pid_t child = -1;
	if (argc != 2)
		return 2;
	pages = (size_t)atoi(argv[1]) << 20 >> 12;
	proto_init();
	signal(SIGUSR2, on_usr2);
	signal(SIGHUP, on_hup);
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < pages; i++)
		fill(i);
	proto_ready();
	while (!fork_flag && !go_flag) {
		pause();
		if (hup_flag) {
			hup_flag = 0;
			null_uffds();
			nulled = 1;
			for (size_t i = 0; i < pages; i++)
				fill(i);
		}
	}
	if (fork_flag) {
		child = fork();
		if (child < 0)
			die("fork");
		child_mode = child == 0;
		for (size_t i = 0; i < pages; i++)
			if (child_mode || i % 2)
				fill(i);
		if (child_mode)
			sayf("CHILD %d\n", getpid());
	}
	churn();
	check_all(child_mode ? "child" : "parent");
	if (child_mode)
		_exit(failures ? 1 : 0);
	if (child > 0) {
		int st;
		kill(child, SIGUSR1);
		CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the child failed (status %#x)", st);
	}
	return proto_finish();
}
