/*
 * tree.h - helpers for test programs made of several processes.
 *
 * The protocol of common.h, stretched over a process tree:
 *
 *   - Only the root prints READY and PASS.  Every process prints its own
 *     FAIL lines (stdout is shared) and exits 0 if it and all of its
 *     descendants passed, 1 otherwise.
 *   - READY comes after every process of the tree finished its setup:
 *     tree_sync_init() makes a pipe before the first fork; each process
 *     closes both ends when its setup (including forking its own children)
 *     is done (tree_sync_done()); the root reads until EOF
 *     (tree_sync_wait()).  EOF means every copy of the write end is gone,
 *     i.e. every process is set up or dead.  No pipe is left open at
 *     READY (the tool need not dump pipes).
 *   - SIGUSR1 goes to the root only; every process forwards it to its own
 *     children (tree_forward()) as soon as it wakes, then checks itself and
 *     collects its children's results with tree_reap().
 *
 * Every process records its pid and parent pid before READY (tree_record())
 * and tree_check_ids() compares them afterwards: a restored tree must keep
 * pids and parents.
 */
#ifndef STASIS_TEST_TREE_H
#define STASIS_TEST_TREE_H

#include "common.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define TREE_MAX_KIDS 32

struct tree_kid {
	pid_t pid;
	int index;		/* the program's own numbering, for messages */
	int expect_status;	/* exit status tree_reap() expects (0: passed) */
};

static struct tree_kid tree_kids[TREE_MAX_KIDS];
static int tree_nkids;
static int tree_index;		/* this process's number (the root is 0) */
static pid_t tree_pid, tree_ppid;
static int tree_sync[2] = { -1, -1 };

static inline void tree_record(void)
{
	tree_pid = getpid();
	tree_ppid = getppid();
}

/*
 * The root's setup before the first fork: the SIGUSR1 handler, and
 * O_APPEND on stdout and stderr, so that the FAIL lines of every process
 * reach the file even if a restore gives each process its own file
 * description (and so its own offset) instead of the shared one: the
 * processes would then overwrite each other's lines.  (forktree checks
 * the sharing itself with kcmp.)
 */
static inline void tree_init(void)
{
	proto_init();
	for (int fd = 1; fd <= 2; fd++) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl | O_APPEND);
	}
	tree_index = 0;
	tree_record();
}

static inline void tree_sync_init(void)
{
	if (pipe2(tree_sync, O_CLOEXEC))
		die("pipe2");
}

/* In a child: setup done (children forked), let the root go on. */
static inline void tree_sync_done(void)
{
	if (tree_sync[0] >= 0)
		close(tree_sync[0]);
	if (tree_sync[1] >= 0)
		close(tree_sync[1]);
	tree_sync[0] = tree_sync[1] = -1;
}

/* In the root: wait until every descendant called tree_sync_done() (or
 * died).  A descendant that hangs in its setup makes the root hang: the
 * runner's READY timeout catches that. */
static inline void tree_sync_wait(void)
{
	char c;

	close(tree_sync[1]);
	for (;;) {
		ssize_t n = read(tree_sync[0], &c, 1);

		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	close(tree_sync[0]);
	tree_sync[0] = tree_sync[1] = -1;
}

/*
 * Fork child number `index`, which runs fn(index) and exits with its
 * return value (0 = passed).  Returns its pid in the parent.
 */
static inline pid_t tree_fork(int index, int (*fn)(int), int expect_status)
{
	pid_t p;

	if (tree_nkids >= TREE_MAX_KIDS) {
		errno = E2BIG;
		die("too many children");
	}
	p = fork();
	if (p < 0)
		die("fork");
	if (p == 0) {
		tree_nkids = 0;
		tree_index = index;
		tree_record();
		_exit(fn(index));
	}
	tree_kids[tree_nkids].pid = p;
	tree_kids[tree_nkids].index = index;
	tree_kids[tree_nkids].expect_status = expect_status;
	tree_nkids++;
	return p;
}

static inline void tree_forward(void)
{
	for (int i = 0; i < tree_nkids; i++)
		kill(tree_kids[i].pid, SIGUSR1);
}

/* pid and parent pid as recorded before READY. */
static inline void tree_check_ids(int check_ppid)
{
	pid_t p = getpid(), pp = getppid(), t = (pid_t)syscall(SYS_gettid);

	CHECK(p == tree_pid, "process %d: getpid() = %d, expected %d", tree_index, p, tree_pid);
	CHECK(t == tree_pid, "process %d: gettid() = %d, expected %d", tree_index, t, tree_pid);
	if (check_ppid)
		CHECK(pp == tree_ppid, "process %d (pid %d): getppid() = %d, expected %d (its parent)",
		      tree_index, tree_pid, pp, tree_ppid);
}

static inline const char *status_text(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "wait status %#x", st);
	return buf;
}

/*
 * Reap every child (each within `secs` seconds) and check its exit
 * status.  A child that fails prints its own FAIL lines; this adds one
 * line naming it.
 */
static inline void tree_reap(int secs)
{
	struct timespec ms10 = { 0, 10 * 1000 * 1000 };
	char buf[64];

	for (int i = 0; i < tree_nkids; i++) {
		struct tree_kid *k = &tree_kids[i];
		int st = 0, n;
		pid_t r = 0;

		for (n = 0; n < secs * 100; n++) {
			r = waitpid(k->pid, &st, WNOHANG);
			if (r != 0 && !(r < 0 && errno == EINTR))
				break;
			nanosleep(&ms10, NULL);
		}
		if (r == 0) {
			fail("process %d (pid %d): child %d (pid %d) did not exit within %ds",
			     tree_index, tree_pid, k->index, k->pid, secs);
			continue;
		}
		if (r < 0) {
			fail("process %d (pid %d): waitpid(%d) for child %d: %s", tree_index, tree_pid,
			     k->pid, k->index, strerror(errno));
			continue;
		}
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == k->expect_status,
		      "process %d (pid %d): child %d (pid %d) ended with %s, expected exit status %d",
		      tree_index, tree_pid, k->index, k->pid, status_text(st, buf, sizeof(buf)),
		      k->expect_status);
	}
}

/* Nothing but the expected children: waitpid(-1) must say ECHILD. */
static inline void tree_check_no_more_children(void)
{
	int st;
	pid_t r = waitpid(-1, &st, WNOHANG);

	CHECK(r < 0 && errno == ECHILD, "process %d (pid %d): unexpected child: waitpid(-1) = %d (%s)",
	      tree_index, tree_pid, r, r < 0 ? strerror(errno) : "a child we never forked");
}

/* A private anonymous area filled with a pattern made of (pid, index). */
static inline uint64_t tree_word(pid_t pid, int index, size_t i)
{
	return ((uint64_t)pid << 40) ^ ((uint64_t)index << 32) ^ (i * 0x9e3779b97f4a7c15ULL);
}

static inline uint64_t *tree_fill(size_t bytes, pid_t pid, int index)
{
	uint64_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < bytes / 8; i++)
		p[i] = tree_word(pid, index, i);
	return p;
}

static inline void tree_check_fill(const uint64_t *p, size_t bytes, pid_t pid, int index)
{
	for (size_t i = 0; i < bytes / 8; i++)
		if (p[i] != tree_word(pid, index, i)) {
			fail("process %d (pid %d): word %zu of its %zu-byte area is %#llx, expected %#llx",
			     index, pid, i, bytes, (unsigned long long)p[i],
			     (unsigned long long)tree_word(pid, index, i));
			return;
		}
}

/* Exit of a non-root process: 0 if it and its subtree passed. */
static inline int tree_child_result(void)
{
	return failures ? 1 : 0;
}

/* Session and process group, for programs that set them up: recorded with
 * pid and parent once they are final, and checked with them. */
static pid_t tree_sid, tree_pgid;

static inline void tree_record_session(void)
{
	tree_record();
	tree_sid = getsid(0);
	tree_pgid = getpgid(0);
}

static inline void tree_check_session(int check_ppid)
{
	pid_t s = getsid(0), g = getpgid(0);

	tree_check_ids(check_ppid);
	CHECK(s == tree_sid, "process %d (pid %d): getsid(0) = %d, expected %d", tree_index, tree_pid, s,
	      tree_sid);
	CHECK(g == tree_pgid, "process %d (pid %d): getpgid(0) = %d, expected %d", tree_index, tree_pid, g,
	      tree_pgid);
}

/* The root of such a program, its setup checked: READY, and once SIGUSR1
 * came, forwarded it and checked its own ids. False if the setup failed. */
static inline int tree_root_session_wait(void)
{
	if (failures)
		return 0;
	proto_ready();
	proto_wait();
	tree_forward();
	tree_check_session(0);
	return 1;
}

/* The pid of a leader that had exited is free again after the restore. */
static inline void tree_check_gone(pid_t pid, const char *what)
{
	CHECK(kill(pid, 0) < 0 && errno == ESRCH, "the %s's pid %d is a process after the restore (a helper "
	      "left behind?)", what, pid);
}

/* The end of a non-root process whose setup is done: the protocol, its
 * ids checked, its children reaped; returns its exit status. */
static inline int tree_child_session_end(void)
{
	tree_sync_done();
	proto_wait();
	tree_forward();
	tree_check_session(1);
	tree_reap(20);
	tree_check_no_more_children();
	return tree_child_result();
}

#endif
