/* Time namespaces: see timens.h. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image/img.h"
#include "task/timens.h"
#include "timens.pb-c.h"
#include "util/log.h"
#include "proc/ns_ids.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define NSEC 1000000000ll

struct offsets {
	struct timespec mono, boot;
};

bool timens_supported(void)
{
	return access("/proc/self/ns/time_for_children", F_OK) == 0 &&
	       access("/proc/self/timens_offsets", F_OK) == 0;
}

/* The inode of /proc/PID/ns/NAME (0: unreadable, reported). */
static ino_t ns_ino(pid_t pid, const char *name)
{
	struct ns_ident id;
	if (ns_ident(pid, name, &id) < 0) {
		if (pid)
			pr_perror("can't inspect /proc/%d/ns/%s", pid, name);
		else
			pr_perror("can't inspect /proc/self/ns/%s", name);
		return 0;
	}
	return id.ino;
}

int timens_dump_check(pid_t pid, pid_t root)
{
	if (!timens_supported())
		return 0;
	ino_t own = ns_ino(pid, "time"), kids = ns_ino(pid, "time_for_children"), tree = ns_ino(root, "time");
	if (!own || !kids || !tree)
		return -1;
	if (kids != own) {
		pr_err("pid %d: made a time namespace for its children to come (unshare(CLONE_NEWTIME)): "
		       "nested time namespaces can't be dumped", pid);
		return -1;
	}
	if (own != tree) {
		pr_err("pid %d: in a time namespace other than the root's (pid %d): nested time namespaces "
		       "can't be dumped", pid, root);
		return -1;
	}
	return 0;
}

/* /proc/PID/timens_offsets (0: ours): the offsets of the time namespace
 * its children get, added to the host's clocks. */
static int read_offsets(pid_t pid, struct offsets *o)
{
	char path[64], name[32];
	long long sec, nsec;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/timens_offsets", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/timens_offsets");
	FILE *f = fopen(path, "re");
	if (!f) {
		pr_perror("can't open %s", path);
		return -1;
	}
	memset(o, 0, sizeof(*o));
	while (fscanf(f, "%31s %lld %lld", name, &sec, &nsec) == 3) {
		struct timespec *t = !strcmp(name, "monotonic") ? &o->mono : !strcmp(name, "boottime") ? &o->boot : NULL;
		if (t) {
			t->tv_sec = sec;
			t->tv_nsec = nsec;
		}
	}
	fclose(f);
	return 0;
}

static long long ns_of(const struct timespec *t)
{
	return t->tv_sec * NSEC + t->tv_nsec;
}

static Timespec to_image(long long ns)
{
	Timespec t = TIMESPEC__INIT;
	t.tv_sec = ns / NSEC;
	t.tv_nsec = ns % NSEC;
	return t;
}

int timens_dump(int dirfd, pid_t root, uint32_t root_ns_id)
{
	struct offsets own, tree;
	struct timespec mono, boot;

	if (!timens_supported())
		return 0;
	ino_t ours = ns_ino(0, "time"), its = ns_ino(root, "time");
	if (!ours || !its)
		return -1;
	if (ours == its)
		return 0;	/* the restorer's clocks will do, as before the dump */
	if (read_offsets(0, &own) < 0 || read_offsets(root, &tree) < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	/* ours minus our offsets is the host's; plus the tree's is the tree's */
	Timespec m = to_image(ns_of(&mono) - ns_of(&own.mono) + ns_of(&tree.mono));
	Timespec b = to_image(ns_of(&boot) - ns_of(&own.boot) + ns_of(&tree.boot));
	TimensEntry e = TIMENS_ENTRY__INIT;
	e.monotonic = &m;
	e.boottime = &b;
	pr_info("pid %d: a time namespace of its own (monotonic %llu.%09llu s)", root,
		(unsigned long long)m.tv_sec, (unsigned long long)m.tv_nsec);
	if (img_store_one(dirfd, IMG_TIMENS, 0, &e.base) < 0)
		return -1;
	return img_store_one(dirfd, IMG_TIMENS, root_ns_id, &e.base);
}

static int check_entry(const TimensEntry *e, uint32_t id)
{
	if (!e->monotonic || !e->boottime || e->monotonic->tv_nsec >= NSEC || e->boottime->tv_nsec >= NSEC ||
	    e->monotonic->tv_sec > (1ull << 40) || e->boottime->tv_sec > (1ull << 40)) {
		pr_err("image timens-%u.img: bad clocks", id);
		return -1;
	}
	return 0;
}

/* The offsets that make our new namespace's clocks read what the image
 * holds; prev: the offsets it was made with (ours), written over. */
static int write_offsets(const TimensEntry *e, const struct offsets *prev)
{
	struct timespec mono, boot;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	long long m = (long long)(e->monotonic->tv_sec * NSEC + e->monotonic->tv_nsec) - (ns_of(&mono) - ns_of(&prev->mono));
	long long b = (long long)(e->boottime->tv_sec * NSEC + e->boottime->tv_nsec) - (ns_of(&boot) - ns_of(&prev->boot));
	int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't open /proc/self/timens_offsets");
		return -1;
	}
	/* floor division: the seconds may be negative, the nanoseconds not */
	long long ms = m / NSEC - (m % NSEC < 0), bs = b / NSEC - (b % NSEC < 0);
	int ret = dprintf(fd, "%d %lld %lld\n", CLOCK_MONOTONIC, ms, m - ms * NSEC) < 0 ||
		  dprintf(fd, "%d %lld %lld\n", CLOCK_BOOTTIME, bs, b - bs * NSEC) < 0 ? -1 : 0;
	if (ret < 0)
		pr_perror("can't set the clock offsets of the new time namespace (monotonic %lld ns, boottime %lld ns)",
			  m, b);
	close(fd);
	return ret;
}

int timens_restore_load(int dirfd, uint32_t root_ns_id, TimensEntry **out)
{
	TimensEntry **e = NULL;
	int nr = 0, ret = 0;

	*out = NULL;
	if (!root_ns_id)
		return 0;
	if (img_load_all(dirfd, IMG_TIMENS, root_ns_id, (void ***)&e, &nr) < 0)
		return -1;
	if (nr && check_entry(e[0], root_ns_id) < 0)
		ret = -1;
	else if (nr)
		*out = e[0];	/* the root had a time namespace of its own */
	for (int i = ret < 0 ? 0 : 1; i < nr; i++)
		img_free(e[i]);
	free(e);
	return ret;
}

int timens_restore_enter(const TimensEntry *e, bool unprivileged)
{
	struct offsets prev;
	int own;

	if (!e)
		return -2;	/* the root shared the dumper's */
	if (unprivileged) {
		pr_warn("the tree had a time namespace of its own: a non-root client's restore leaves it in its own");
		return -2;
	}
	if ((own = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC)) < 0) {
		pr_perror("can't open our own time namespace");
		return -1;
	}
	if (unshare(CLONE_NEWTIME) < 0) {
		pr_perror("can't make a time namespace for the tree");
		close(own);
		return -1;
	}
	if (read_offsets(0, &prev) < 0 || write_offsets(e, &prev) < 0) {
		timens_restore_leave(own);
		return -1;
	}
	pr_info("the tree comes back in a time namespace of its own (monotonic %llu.%09llu s at the dump)",
		(unsigned long long)e->monotonic->tv_sec, (unsigned long long)e->monotonic->tv_nsec);
	return own;
}

int timens_restore_leave(int own)
{
	if (own < 0)
		return 0;
	int ret = setns(own, CLONE_NEWTIME);
	if (ret < 0)
		pr_perror("can't go back to our own time namespace");
	close(own);
	return ret;
}
