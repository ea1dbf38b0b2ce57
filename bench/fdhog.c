/* fdhog: many-fds target for bench.sh (case fds).
 *
 *   fdhog [-n FDS] [-p PROCS] -d DIR     (defaults 100000, 10)
 *
 * PROCS processes (the root and PROCS-1 children) hold FDS fds between
 * them, FDS/PROCS each: this VM's hard RLIMIT_NOFILE (~20,000) keeps one
 * process from holding 100,000, and the soft limit is raised to the hard
 * one. Each process's fds are, in turn:
 *   - a dup of one file opened in DIR (one open file, many fds),
 *   - a file of DIR opened on its own, at an offset of its number,
 *   - an end of a pipe (both ends kept), a byte of its number queued,
 *   - an eventfd whose counter is its number + 1.
 * Writes "READY FDS\n" once every process is set up, then every process
 * sleeps in a pause() loop.
 *
 * On SIGUSR1 to the root, each process checks each of its fds (the dups
 * share one file and offset, each own file's offset, each pipe's byte,
 * each eventfd's count), the children exit 0 or 1, and the root appends
 * "VERIFY OK FDS\n" or "VERIFY BAD ...\n". After a check only the root is
 * left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hog.h"

enum { DUP, OWN, PIPE_R, PIPE_W, EVENT, KINDS };

static volatile sig_atomic_t verify_requested;
static int me;			/* 0 = root */
static int *fds, *kind, nfds;
static int dup_base = -1;

static void on_usr1(int sig)
{
	(void)sig;
	verify_requested = 1;
}

static void die(const char *what)
{
	say("fdhog: process %d: %s: %s\n", me, what, strerror(errno));
	_exit(1);
}

/* the kind of the process's fd i: pipes take two fds in a row */
static int kind_of(int i)
{
	static const int order[] = { DUP, OWN, PIPE_R, PIPE_W, EVENT };
	return order[i % 5];
}

static void setup(const char *dir, int n)
{
	char path[4096];
	fds = calloc(n, sizeof(int));
	kind = calloc(n, sizeof(int));
	if (!fds || !kind)
		die("calloc");
	snprintf(path, sizeof(path), "%s/fdhog.%d", dir, me);
	dup_base = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (dup_base < 0 || ftruncate(dup_base, 1 << 20) < 0 || lseek(dup_base, me + 1, SEEK_SET) < 0)
		die(path);
	for (int i = 0; i < n; i++) {
		kind[i] = kind_of(i);	/* never PIPE_W: PIPE_R takes it */
		switch (kind[i]) {
		case DUP:
			fds[i] = dup(dup_base);
			break;
		case OWN:
			fds[i] = open(path, O_RDONLY);
			if (fds[i] >= 0 && lseek(fds[i], i, SEEK_SET) < 0)
				die("lseek");
			break;
		case PIPE_R: {
			int p[2];
			if (i == n - 1) {	/* the last fd: an eventfd instead */
				kind[i] = EVENT;
				fds[i] = eventfd(i + 1, 0);
				break;
			}
			if (pipe(p) < 0)
				die("pipe");
			unsigned char b = (unsigned char)i;
			if (write(p[1], &b, 1) != 1)
				die("write");
			fds[i] = p[0];
			fds[++i] = p[1];
			kind[i] = PIPE_W;
			break;
		}
		default:
			kind[i] = EVENT;
			fds[i] = eventfd(i + 1, 0);
		}
		if (fds[i] < 0)
			die("fd");
	}
	nfds = n;
}

static int check_fd(int i)
{
	struct stat a, b;
	off_t want;
	switch (kind[i]) {
	case DUP:
		want = me + 1;
		return fstat(fds[i], &a) || fstat(dup_base, &b) || a.st_ino != b.st_ino ||
		       lseek(fds[i], 0, SEEK_CUR) != want || (fcntl(fds[i], F_GETFL) & O_ACCMODE) != O_RDWR;
	case OWN:
		return fstat(fds[i], &a) || fstat(dup_base, &b) || a.st_ino != b.st_ino ||
		       lseek(fds[i], 0, SEEK_CUR) != i || (fcntl(fds[i], F_GETFL) & O_ACCMODE) != O_RDONLY;
	case PIPE_R: {
		unsigned char c = 0;
		if (read(fds[i], &c, 1) != 1 || c != (unsigned char)i || write(fds[i + 1], &c, 1) != 1)
			return 1;
		return read(fds[i], &c, 1) != 1 || c != (unsigned char)i;
	}
	case PIPE_W:
		return 0;	/* checked with its read end */
	default: {
		uint64_t v = 0;
		if (read(fds[i], &v, sizeof(v)) != sizeof(v) || v != (uint64_t)i + 1)
			return 1;
		return write(fds[i], &v, sizeof(v)) != sizeof(v);
	}
	}
}

static int verify(void)
{
	int bad = 0;
	/* dup_base shares its offset with the dups: the lseek checks it */
	for (int i = 0; i < nfds; i++)
		if (check_fd(i)) {
			if (!bad)
				say("VERIFY BAD process %d fd %d (kind %d)\n", me, fds[i], kind[i]);
			bad++;
		}
	return bad;
}

int main(int argc, char **argv)
{
	int n = 100000, procs = 10, opt;
	const char *dir = NULL;

	while ((opt = getopt(argc, argv, "n:p:d:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'p')
			procs = atoi(optarg);
		else if (opt == 'd')
			dir = optarg;
		else {
			say("usage: fdhog [-n FDS] [-p PROCS] -d DIR\n");
			return 2;
		}
	}
	if (n < procs || procs < 1 || !dir) {
		say("fdhog: bad -n/-p or no -d\n");
		return 2;
	}
	syscall(SYS_close_range, 3, ~0U, 0);
	int per = n / procs;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)per + n % procs + 16) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGUSR1, on_usr1);
	int sync[2];
	if (pipe(sync) < 0)
		die("pipe");
	pid_t *kids = calloc(procs, sizeof(pid_t));
	for (int k = 1; k < procs; k++) {
		kids[k] = fork();
		if (kids[k] < 0)
			die("fork");
		if (kids[k] == 0) {
			me = k;
			close(sync[0]);
			setup(dir, per);
			close(sync[1]);	/* set up: the root's read sees EOF once all are */
			for (;;) {
				pause();
				if (verify_requested)
					_exit(verify() ? 1 : 0);
			}
		}
	}
	close(sync[1]);
	setup(dir, per + n % procs);
	char c;
	while (read(sync[0], &c, 1) > 0)
		;
	close(sync[0]);
	say("READY %d\n", n);
	for (;;) {
		pause();
		if (!verify_requested)
			continue;
		verify_requested = 0;
		int bad = 0;
		for (int k = 1; k < procs; k++)
			if (kids[k])
				kill(kids[k], SIGUSR1);
		bad += verify() ? 1 : 0;
		for (int k = 1; k < procs; k++) {
			int st;
			if (!kids[k])
				continue;
			if (waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st) || WEXITSTATUS(st)) {
				if (!bad)
					say("VERIFY BAD process %d\n", k);
				bad++;
			}
			kids[k] = 0;
		}
		if (bad)
			say("VERIFY BAD %d of %d processes\n", bad, procs);
		else
			say("VERIFY OK %d\n", n);
	}
}
