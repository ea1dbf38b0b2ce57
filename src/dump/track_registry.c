/* Stasis's notes of the userfaultfd trackers it made (TRACK_REGISTRY):
 * with them any later dump, with a parent or not, tells the task's
 * tracker from a copy fork gave it (which it closes) and from a
 * userfaultfd of the program (left alone). See track_uffd.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump/track_backend.h"
#include "dump/track_registry.h"
#include "util/io.h"
#include "util/log.h"

bool is_uffd(pid_t pid, int fd)
{
	char link[64], target[64];
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strcmp(target, UFFD_LINK);
}

static int registry_open(bool create)
{
	if (create && ((mkdir(TRACK_RUN_DIR, 0700) < 0 && errno != EEXIST) ||
		       (mkdir(TRACK_REGISTRY, 0700) < 0 && errno != EEXIST)))
		return -1;
	return open(TRACK_REGISTRY, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

/* One note: the file named by the tracker's inode holds "PIDNS PID FD
 * ARMED": ARMED is a random number drawn by the last dump that protected
 * the task's memory with it, which that dump records too. */
struct reg_note {
	unsigned long pidns;
	pid_t pid;
	int fd;
	unsigned long armed;
};

static bool registry_read(int dirfd, const char *name, struct reg_note *n)
{
	char buf[96];
	return read_note(dirfd, name, buf, sizeof(buf)) &&
	       sscanf(buf, "%lu %d %d %lu", &n->pidns, &n->pid, &n->fd, &n->armed) == 4;
}

/* Who the tracker with this inode was made for: its pid; 0 if it was
 * made from another pid namespace; -1 if stasis did not make it. *armed:
 * what its last arming dump drew. */
pid_t registry_lookup(uint64_t ino, uint64_t *armed)
{
	char name[32];
	struct reg_note n;
	int dirfd = registry_open(false);
	if (dirfd < 0)
		return -1;
	snprintf(name, sizeof(name), "%lu", (unsigned long)ino);
	bool found = registry_read(dirfd, name, &n);
	close(dirfd);
	if (!found)
		return -1;
	*armed = n.armed;
	return n.pidns == track_pidns_ino() ? n.pid : 0;
}

/* Does any fd of pid hold this userfaultfd? Quiet: the process may be
 * gone, which is an answer. */
static bool holds_uffd(pid_t pid, uint64_t ino)
{
	char path[64];
	struct stat st;
	struct dirent *de;
	bool found = false;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	while (d && !found && (de = readdir(d))) {
		int fd = atoi(de->d_name);
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		found = de->d_name[0] != '.' && stat(path, &st) == 0 && st.st_ino == ino && is_uffd(pid, fd);
	}
	if (d)
		closedir(d);
	return found;
}

/* Notes of trackers that are gone: their process ended (or a dump killed
 * it), or closed the tracker (copies that fork made elsewhere lose their
 * note with it). Any fd counts, not only the noted one: a stasis placing
 * a new tracker has it on a passing fd for a moment. */
void registry_prune(void)
{
	unsigned long ns = track_pidns_ino();
	int dirfd = registry_open(false);
	int fd = dirfd >= 0 ? fcntl(dirfd, F_DUPFD_CLOEXEC, 0) : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	if (!d) {
		if (fd >= 0)
			close(fd);
		if (dirfd >= 0)
			close(dirfd);
		return;
	}
	while ((de = readdir(d))) {
		char *end;
		struct reg_note n;
		unsigned long ino = strtoul(de->d_name, &end, 10);
		if (*end || !ino || !registry_read(dirfd, de->d_name, &n) || n.pidns != ns)
			continue;
		if (!holds_uffd(n.pid, ino))
			unlinkat(dirfd, de->d_name, 0);
	}
	closedir(d);
	close(dirfd);
}

/* Written whole or not at all (a rename): a half note would make the
 * tracker look like the program's. */
int registry_add(const struct dump_ctx *dc, uint64_t ino, int fd, uint64_t armed)
{
	char name[32], buf[96];
	unsigned long ns = track_pidns_ino();
	int dirfd = registry_open(true);
	if (dirfd < 0) {
		pr_perror("pid %d: can't note its memory tracker in %s", dc->pid, TRACK_REGISTRY);
		return -1;
	}
	snprintf(name, sizeof(name), "%lu", (unsigned long)ino);
	int len = snprintf(buf, sizeof(buf), "%lu %d %d %lu\n", ns, dc->pid, fd, (unsigned long)armed);
	int ret = write_note(dirfd, name, buf, len);
	if (ret < 0)
		pr_perror("pid %d: can't note its memory tracker in %s/%s", dc->pid, TRACK_REGISTRY, name);
	close(dirfd);
	return ret;
}

void registry_del(uint64_t ino)
{
	char path[sizeof(TRACK_REGISTRY) + 32];
	snprintf(path, sizeof(path), "%s/%lu", TRACK_REGISTRY, (unsigned long)ino);
	unlink(path);
}
