/* treehog: process-tree target for bench.sh.
 *
 *   treehog [-n NPROCS] [-m MiB] [-w WIDTH]
 *
 * Builds a tree of NPROCS processes (default 100), the root included. The
 * root forks WIDTH children (default NPROCS - 1: a flat tree). When WIDTH is
 * smaller, the remaining NPROCS - 1 - WIDTH processes are spread evenly as
 * grandchildren under those children (a 2-level tree; -w 9 with 100
 * processes gives 9 children with 10 grandchildren each).
 *
 * Every process, the root included, forks its own children first and then
 * maps MiB (default 4) of private anonymous memory and fills every page with
 * non-zero data made of the page index and the process's number, so pages
 * are not shared copy-on-write between processes and no two processes hold
 * the same data. The root writes "READY\n" to stdout once every process of
 * the tree has finished that setup (each one closes its copy of the write
 * end of a pipe, and the root reads until EOF; the pipe is gone by READY).
 * Then every process sleeps in a pause() loop.
 *
 * On SIGUSR1 to the root, every process forwards SIGUSR1 to its children,
 * checks its own memory and that getpid()/getppid() are the values it had
 * before READY, waits for its children and exits 0 if it and its whole
 * subtree passed (1 otherwise). A process that finds a problem appends a
 * "VERIFY BAD ..." line to stdout. The root then appends "VERIFY OK N\n"
 * (N = processes checked) or "VERIFY BAD ...\n" and keeps sleeping: after a
 * check only the root is left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hog.h"

static volatile sig_atomic_t verify_requested;

/* per-process state; a child resets what it inherited */
static int my_index;		/* 0 = root */
static pid_t my_pid, my_ppid;
static pid_t *kids;		/* pids of my children */
static int *kid_sizes;		/* processes in each child's subtree */
static int nkids;
static unsigned char *mem;
static size_t mem_len, psz;
static int sync_pipe[2] = { -1, -1 };

static void on_usr1(int sig)
{
	(void)sig;
	verify_requested = 1;
}

static unsigned char page_byte(int idx, size_t i)
{
	return (unsigned char)((i * 131u + (size_t)idx * 17u) % 255u + 1u); /* never 0 */
}

static uint64_t page_tag(int idx, size_t i)
{
	return (uint64_t)i ^ ((uint64_t)idx << 40) ^ 0x5452454500000000ull; /* "TREE" */
}

static void die(const char *what)
{
	say("treehog: process %d: %s: %s\n", my_index, what, strerror(errno));
	_exit(1);
}

static void fill(void)
{
	size_t npages = mem_len / psz;

	mem = mmap(NULL, mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < npages; i++) {
		unsigned char *p = mem + i * psz;
		uint64_t tag = page_tag(my_index, i);

		memset(p, page_byte(my_index, i), psz);
		memcpy(p, &tag, sizeof(tag));
	}
}

/* 0 if my own memory and ids are as before READY */
static int check_self(void)
{
	size_t npages = mem_len / psz;

	if (getpid() != my_pid || (pid_t)syscall(SYS_gettid) != my_pid) {
		say("VERIFY BAD process %d: getpid() = %d, expected %d\n", my_index, getpid(), my_pid);
		return 1;
	}
	if (my_index && getppid() != my_ppid) {
		say("VERIFY BAD process %d (pid %d): getppid() = %d, expected %d\n", my_index, my_pid,
		    getppid(), my_ppid);
		return 1;
	}
	for (size_t i = 0; i < npages; i++) {
		unsigned char *p = mem + i * psz;
		unsigned char b = page_byte(my_index, i);
		uint64_t tag;

		memcpy(&tag, p, sizeof(tag));
		for (size_t j = sizeof(tag); tag == page_tag(my_index, i) && j < psz; j++)
			if (p[j] != b)
				tag = ~tag;
		if (tag != page_tag(my_index, i)) {
			say("VERIFY BAD process %d (pid %d) page %zu\n", my_index, my_pid, i);
			return 1;
		}
	}
	return 0;
}

/* Forward SIGUSR1, check myself, reap my children (10 s each at most).
 * Returns the number of processes of my subtree that failed or vanished. */
static int check_subtree(void)
{
	struct timespec ms10 = { 0, 10 * 1000 * 1000 };
	int bad;

	for (int k = 0; k < nkids; k++)
		kill(kids[k], SIGUSR1);
	bad = check_self();
	for (int k = 0; k < nkids; k++) {
		int st = 0, n;
		pid_t r = 0;

		for (n = 0; n < 1000; n++) {
			r = waitpid(kids[k], &st, WNOHANG);
			if (r != 0 && !(r < 0 && errno == EINTR))
				break;
			nanosleep(&ms10, NULL);
		}
		if (r <= 0) {
			say("VERIFY BAD process %d (pid %d): child pid %d %s\n", my_index, my_pid, kids[k],
			    r == 0 ? "did not exit within 10 s" : "is not my child");
			bad += kid_sizes[k];
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (WIFSIGNALED(st))
				say("VERIFY BAD process %d (pid %d): child pid %d killed by signal %d\n",
				    my_index, my_pid, kids[k], WTERMSIG(st));
			bad += WIFEXITED(st) && WEXITSTATUS(st) < 255 ? WEXITSTATUS(st) : kid_sizes[k];
		}
	}
	return bad;
}

static void sleep_until_verify(void)
{
	for (;;) {
		pause();
		if (verify_requested)
			return;
	}
}

/*
 * Fork a child numbered idx that itself forks ngrand children numbered
 * idx+1 .. idx+ngrand. Returns in the parent only.
 */
static void spawn(int idx, int ngrand)
{
	pid_t parent = getpid();
	pid_t p = fork();

	if (p < 0)
		die("fork");
	if (p > 0) {
		kids[nkids] = p;
		kid_sizes[nkids] = 1 + ngrand;
		nkids++;
		return;
	}
	/* child */
	close(sync_pipe[0]);
	sync_pipe[0] = -1;
	my_index = idx;
	my_pid = getpid();
	my_ppid = parent;
	nkids = 0;
	for (int g = 0; g < ngrand; g++)
		spawn(idx + 1 + g, 0);
	fill();
	close(sync_pipe[1]);
	sync_pipe[1] = -1;
	sleep_until_verify();
	{
		int bad = check_subtree();
		_exit(bad > 254 ? 254 : bad);
	}
}

static int parse(const char *s, long min, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > 1000000) {
		fprintf(stderr, "treehog: bad %s '%s'\n", what, s);
		fprintf(stderr, "usage: treehog [-n NPROCS] [-m MiB] [-w WIDTH]\n");
		exit(2);
	}
	return (int)v;
}

int main(int argc, char **argv)
{
	int nprocs = 100, mib = 4, width = -1, opt, next, rest;
	struct sigaction sa;
	char c;

	/* Only stdio: fds leaked by whoever started the bench are not ours to dump. */
	syscall(SYS_close_range, 3, ~0u, 0);

	while ((opt = getopt(argc, argv, "n:m:w:")) != -1) {
		switch (opt) {
		case 'n': nprocs = parse(optarg, 1, "process count"); break;
		case 'm': mib = parse(optarg, 1, "MiB"); break;
		case 'w': width = parse(optarg, 1, "width"); break;
		default:
			fprintf(stderr, "usage: treehog [-n NPROCS] [-m MiB] [-w WIDTH]\n");
			return 2;
		}
	}
	if (width < 0 || width > nprocs - 1)
		width = nprocs - 1;
	if (nprocs > 1 && width == 0)
		width = 1;

	psz = (size_t)sysconf(_SC_PAGESIZE);
	mem_len = (size_t)mib << 20;
	my_index = 0;
	my_pid = getpid();
	my_ppid = getppid();
	kids = calloc((size_t)nprocs, sizeof(*kids));
	kid_sizes = calloc((size_t)nprocs, sizeof(*kid_sizes));
	if (!kids || !kid_sizes)
		die("calloc");

	/* All processes append to the one stdout file, even if a restore were to
	 * give each its own file description. */
	for (int fd = 1; fd <= 2; fd++) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl | O_APPEND);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		die("sigaction");

	if (pipe2(sync_pipe, O_CLOEXEC) < 0)
		die("pipe2");

	/* width children; the other nprocs-1-width processes are grandchildren */
	next = 1;
	rest = nprocs - 1 - width;
	for (int k = 0; k < width; k++) {
		int ng = rest / width + (k < rest % width);

		spawn(next, ng);
		next += 1 + ng;
	}
	fill();

	close(sync_pipe[1]);
	for (;;) {
		ssize_t n = read(sync_pipe[0], &c, 1);

		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	close(sync_pipe[0]);
	say("READY %d\n", nprocs);

	sleep_until_verify();
	{
		int bad = check_subtree();

		if (bad)
			say("VERIFY BAD %d of %d processes\n", bad, nprocs);
		else
			say("VERIFY OK %d\n", nprocs);
	}
	for (;;)
		pause();
}
