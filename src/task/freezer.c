/* The cgroup freezer around the seize of a tree (freezer.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "infect/infect.h"
#include "task/freezer.h"
#include "util/fsop.h"
#include "util/log.h"
#include "util/grow.h"

enum fz_state { FZ_ERROR = -1, FZ_THAWED, FZ_FREEZING, FZ_FROZEN };

static enum fz_state read_v1(struct freezer *f)
{
	char buf[32] = "";
	ssize_t n = pread(f->statefd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		pr_perror("freeze-cgroup %s: can't read freezer.state", f->path);
		return FZ_ERROR;
	}
	buf[n] = 0;
	if (!strncmp(buf, "FROZEN", 6))
		return FZ_FROZEN;
	if (!strncmp(buf, "FREEZING", 8))
		return FZ_FREEZING;
	if (!strncmp(buf, "THAWED", 6))
		return FZ_THAWED;
	pr_err("freeze-cgroup %s: unknown freezer.state \"%.20s\"", f->path, buf);
	return FZ_ERROR;
}

/* v2: cgroup.freeze says what was asked, cgroup.events whether it is done. */
static enum fz_state read_v2(struct freezer *f)
{
	char buf[256] = "";
	int fd = fs_open_read(f->dirfd, "cgroup.events");
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		pr_perror("freeze-cgroup %s: can't read cgroup.events", f->path);
		return FZ_ERROR;
	}
	buf[n] = 0;
	char *l = strstr(buf, "frozen ");
	if (!l) {
		pr_err("freeze-cgroup %s: no \"frozen\" line in cgroup.events", f->path);
		return FZ_ERROR;
	}
	if (l[7] == '1')
		return FZ_FROZEN;
	char want = '0';
	if (pread(f->statefd, &want, 1, 0) != 1) {
		pr_perror("freeze-cgroup %s: can't read cgroup.freeze", f->path);
		return FZ_ERROR;
	}
	return want == '1' ? FZ_FREEZING : FZ_THAWED;
}

static enum fz_state read_state(struct freezer *f)
{
	return f->v2 ? read_v2(f) : read_v1(f);
}

static int write_state(struct freezer *f, bool frozen)
{
	const char *s = f->v2 ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");
	if (write(f->statefd, s, strlen(s)) == (ssize_t)strlen(s))
		return 0;
	pr_perror("freeze-cgroup %s: can't %s it", f->path, frozen ? "freeze" : "thaw");
	return -1;
}

static int open_freezer(struct freezer *f, const char *path)
{
	f->path = path;
	f->dirfd = fs_open_dir(path);
	if (f->dirfd < 0) {
		pr_perror("freeze-cgroup %s: can't open the cgroup", path);
		return -1;
	}
	f->statefd = fs_open_write(f->dirfd, "freezer.state", true);
	if (f->statefd < 0 && errno == ENOENT) {
		f->v2 = true;
		f->statefd = fs_open_write(f->dirfd, "cgroup.freeze", true);
	}
	if (f->statefd < 0) {
		pr_perror("freeze-cgroup %s: no freezer there (neither freezer.state nor cgroup.freeze "
			  "opens for writing)", path);
		return -1;
	}
	return 0;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Waits for the freeze to be complete: the threads listed before then may
 * still be exiting. A v1 freeze can stall on a task that does not reach
 * the refrigerator; asking again now and then gets it there (as CRIU). */
static int wait_frozen(struct freezer *f, unsigned timeout_s)
{
	struct timespec t0, nap = { 0, 1000 * 1000 };
	long limit = (timeout_s ? timeout_s : 10) * 1000L;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int round = 1;; round++) {
		enum fz_state s = read_state(f);
		if (s == FZ_ERROR)
			return -1;
		if (s == FZ_FROZEN)
			return 0;
		if (elapsed_ms(&t0) > limit) {
			pr_err("freeze-cgroup %s: not frozen after %ld s (a task that can't be frozen; "
			       "--timeout sets the wait)", f->path, limit / 1000);
			return -1;
		}
		if (!f->v2 && round % 20 == 0 && write_state(f, true) < 0)
			return -1;
		nanosleep(&nap, NULL);
		if (nap.tv_nsec < 50 * 1000 * 1000)
			nap.tv_nsec *= 2;
	}
}

static bool have_tid(const struct freezer *f, pid_t tid)
{
	for (int i = 0; i < f->nr; i++)
		if (f->tids[i] == tid)
			return true;
	return false;
}

static int add_tid(struct freezer *f, pid_t tid)
{
	/* Both arrays hold f->cap; tids may hold more if taken could not grow. */
	int cap_tids = f->cap;
	if (grow_array(f->tids, cap_tids, f->nr + 1, 64) < 0 ||
	    grow_array(f->taken, f->cap, f->nr + 1, 64) < 0) {
		pr_err("freeze-cgroup %s: out of memory", f->path);
		return -1;
	}
	f->taken[f->nr] = false;
	f->tids[f->nr++] = tid;
	return 0;
}

/* What /proc/TID/stat says after the command's ')', in buf; NULL if the
 * thread is gone. Quiet: a thread that went is an answer. */
static const char *stat_after_comm(pid_t tid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p + 2 : NULL;
}

/* A thread that can't be seized because it is dying (a zombie, or gone)
 * is no thread to stop: the dump records zombies by itself. */
static bool dying(pid_t tid)
{
	char buf[512];
	const char *s = stat_after_comm(tid, buf, sizeof(buf));
	return !s || s[0] == 'Z' || s[0] == 'X';
}

/* A process that shares its parent's memory is vfork()'s child: its
 * parent sleeps in the kernel, where no interrupt reaches it, until the
 * child execs or exits. Interrupted here, the child would stop before
 * its exec and hold its parent there for good (the dump gave up on the
 * parent after 2 s: a shell that runs commands, caught by the freeze
 * between its vfork and the exec, failed the dump on a loaded machine).
 * Left alone it runs on to its exec once thawed, and the dump seizes it
 * as its parent's child, as without the freezer. */
static bool vfork_child(pid_t tid)
{
	char buf[512];
	char state;
	int ppid;
	const char *s = stat_after_comm(tid, buf, sizeof(buf));
	if (!s || sscanf(s, "%c %d", &state, &ppid) != 2 || ppid <= 0)
		return false;
	return syscall(SYS_kcmp, tid, ppid, KCMP_VM, 0, 0) == 0;
}

static int seize_one(struct freezer *f, pid_t tid)
{
	if (have_tid(f, tid))
		return 0;
	if (vfork_child(tid)) {
		pr_info("freeze-cgroup %s: thread %d is a vfork() child: left to run to its exec", f->path, tid);
		return 0;
	}
	if (ptrace(PTRACE_SEIZE, tid, NULL, PTRACE_O_TRACESYSGOOD) < 0) {
		if (errno == ESRCH || dying(tid))
			return 0;
		pr_perror("freeze-cgroup %s: can't seize thread %d", f->path, tid);
		return -1;
	}
	if (add_tid(f, tid) < 0) {
		ptrace(PTRACE_DETACH, tid, NULL, 0);	/* not interrupted: detaches while frozen */
		return -1;
	}
	/* stops as soon as it is thawed, before it runs */
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0 && errno != ESRCH) {
		pr_perror("freeze-cgroup %s: can't interrupt thread %d", f->path, tid);
		return -1;
	}
	return 0;
}

static int seize_listed(struct freezer *f, int dirfd, const char *where)
{
	const char *list = f->v2 ? "cgroup.threads" : "tasks";
	int fd = fs_open_read(dirfd, list);
	FILE *in = fd < 0 ? NULL : fdopen(fd, "r");
	char line[32];
	int ret = 0;

	if (!in) {
		pr_perror("freeze-cgroup %s: can't read %s/%s", f->path, where, list);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (ret == 0 && fgets(line, sizeof(line), in))
		ret = seize_one(f, atoi(line));
	fclose(in);
	return ret;
}

/* The threads of the cgroup and of every cgroup below it. */
static int seize_tree(struct freezer *f, int dirfd, const char *where, int depth)
{
	if (depth > 64) {
		pr_err("freeze-cgroup %s: cgroups nested deeper than 64 below it", f->path);
		return -1;
	}
	if (seize_listed(f, dirfd, where) < 0)
		return -1;
	int dfd = dup(dirfd);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		pr_perror("freeze-cgroup %s: can't list %s", f->path, where);
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	int ret = 0;
	struct dirent *de;
	while (ret == 0 && (de = readdir(d))) {
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char sub[4096];
		snprintf(sub, sizeof(sub), "%s/%s", where, de->d_name);
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", f->path, sub + 2);	/* where starts with "./" */
		int cfd = fs_open_dir(path);
		if (cfd < 0) {
			pr_perror("freeze-cgroup %s: can't open %s", f->path, path);
			ret = -1;
			break;
		}
		ret = seize_tree(f, cfd, sub, depth + 1);
		close(cfd);
	}
	closedir(d);
	return ret;
}

int freezer_seize(struct freezer *f, const char *path, unsigned timeout_s)
{
	*f = (struct freezer){ .statefd = -1, .dirfd = -1 };
	if (open_freezer(f, path) < 0)
		goto fail;
	enum fz_state s = read_state(f);
	if (s == FZ_ERROR)
		goto fail;
	f->was_frozen = s != FZ_THAWED;
	pr_info("freeze-cgroup %s: cgroup v%d freezer, %s", path, f->v2 ? 2 : 1,
		f->was_frozen ? "found frozen" : "freezing it");
	if ((!f->was_frozen && write_state(f, true) < 0) || wait_frozen(f, timeout_s) < 0)
		goto fail;
	if (seize_tree(f, f->dirfd, ".", 0) < 0)
		goto fail;
	/* the interrupts stop each thread on its way out of the freeze */
	if (write_state(f, false) < 0)
		goto fail;
	pr_info("freeze-cgroup %s: %d threads seized while frozen, cgroup thawed", path, f->nr);
	return 0;
fail:
	freezer_release(f);
	return -1;
}

bool freezer_take(struct freezer *f, pid_t tid)
{
	for (int i = 0; i < f->nr; i++)
		if (f->tids[i] == tid && !f->taken[i]) {
			f->taken[i] = true;
			return true;
		}
	return false;
}

/* A thread seized here that the dump did not take (not in the tree, or
 * the dump failed before it got there): let go once it stopped, with
 * what the stop caught put back. */
static void let_go(struct freezer *f, pid_t tid)
{
	struct victim v;
	if (infect_seize_interrupted(&v, tid) < 0) {
		if (errno != ESRCH)
			pr_warn("freeze-cgroup %s: thread %d did not stop; left to the kernel", f->path, tid);
		return;
	}
	if (v.group_stop_sig)
		syscall(SYS_tgkill, tid, tid, v.group_stop_sig);
	if (infect_cure(&v) < 0)
		pr_warn("freeze-cgroup %s: can't let go of thread %d", f->path, tid);
}

void freezer_release(struct freezer *f)
{
	if (f->statefd >= 0) {
		enum fz_state s = read_state(f);
		/* seized threads stop only once thawed: thawed first, always */
		if (s != FZ_THAWED && s != FZ_ERROR)
			write_state(f, false);
		for (int i = 0; i < f->nr; i++)
			if (!f->taken[i]) {
				f->taken[i] = true;
				let_go(f, f->tids[i]);
			}
		/* done only once every task is back in the freezer: who
		 * found it frozen finds it so the moment the dump returns */
		if (f->was_frozen && write_state(f, true) == 0 && wait_frozen(f, 0) == 0)
			pr_info("freeze-cgroup %s: frozen again, as it was found", f->path);
		close(f->statefd);
	}
	if (f->dirfd >= 0)
		close(f->dirfd);
	free(f->tids);
	free(f->taken);
	*f = (struct freezer){ .statefd = -1, .dirfd = -1 };
}
