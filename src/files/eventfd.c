/* eventfd: its counter and mode. fdinfo shows the counter (hex) and,
 * since Linux 6.5, whether it counts as a semaphore ("eventfd-semaphore";
 * 6.1 has no such line). The mode is kept in bit 0 of the entry's flags
 * (EFD_SEMAPHORE): an eventfd is always O_RDWR, so that bit is free, and
 * CRIU ignores it.
 *
 * Where fdinfo does not say, the mode is found by a probe on the task's
 * own open file (taken with pidfd_getfd while the tree is stopped): a
 * read of a count of 2 or more gives 1 in semaphore mode and the whole
 * count otherwise. A count of 0 or 1 is raised by 2 first (a read of 1
 * tells nothing). Then the probe gives back exactly what it took, so the
 * count is as it was: nobody in the tree can see the difference, as every
 * thread of it is stopped, out of any read or poll. Only a holder outside
 * the tree could, and would see a count that is briefly not the
 * program's: a probe is refused when another process holds the eventfd
 * (found by its eventfd-id in every fdinfo stasis can see), and so is a
 * count too close to the maximum to be put back for sure. Kernel users
 * (io_uring, aio, KVM) only add to the count, which the probe allows for.
 * Such a refusal fails the dump, naming the fd: an eventfd never comes
 * back in the wrong mode. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "files/anonfd.h"
#include "proc/proc.h"
#include "util/grow.h"
#include "util/log.h"

extern const struct fd_kind fd_kind_eventfd;

/* A count above this is not probed: a read takes all of it, and what
 * the kernel adds meanwhile must still fit when it is given back. */
#define PROBE_MAX_COUNT (1ull << 62)

static bool eventfd_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "[eventfd]");
}

/* The eventfd-id (5.2+) the kernel gives no eventfd: ids start at 0. */
#define NO_ID (~0ul)

/* The count and the eventfd-id (NO_ID if absent) of an fdinfo text. */
static int parse_fdinfo(const char *buf, uint64_t *count, unsigned long *id)
{
	const char *c = anon_fdinfo_value(buf, "eventfd-count"), *i = anon_fdinfo_value(buf, "eventfd-id");
	if (!c)
		return -1;
	*count = strtoull(c, NULL, 16);
	*id = i ? strtoul(i, NULL, 10) : NO_ID;
	return 0;
}

/* ---- who else holds it ---- */

/* Our pid as /proc numbers processes (stasis may run in a pid
 * namespace whose /proc is its parent's). */
static pid_t proc_self(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
	if (n <= 0)
		return getpid();
	buf[n] = 0;
	return atoi(buf);
}

/* Is pid stopped by this stasis (so: one of the tree)? Quiet. */
static bool traced_by_us(pid_t pid, pid_t self)
{
	char buf[4096];
	ssize_t n = proc_read_file(pid, "status", buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = 0;
	const char *t = strstr(buf, "\nTracerPid:");
	return t && atoi(t + 11) == self;
}

/* The eventfds held by processes outside the tree (not stopped by us,
 * not us), by id: indexed once per dump, at its first probe. A scan of
 * every process's fds for each eventfd was quadratic: 132 eventfds (the
 * test fdscale.tree) took a second here and over 30 s on 6.1 emulated. */
struct efd_outside {
	unsigned long id;
	pid_t pid;
	int fd;
};

struct efd_dump {
	bool indexed;
	struct efd_outside *v;
	int nr, cap;
};

/* pid's eventfds into the index. Quiet: processes come and go. */
static int index_process(struct efd_dump *s, pid_t pid)
{
	char path[64], link[32], buf[1024];
	struct dirent *de;
	int ret = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	while (d && !ret && (de = readdir(d))) {
		int n_fd = atoi(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, n_fd);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n < 0 || (size_t)n != strlen("anon_inode:[eventfd]") || memcmp(link, "anon_inode:[eventfd]", n))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, n_fd);
		int f = open(path, O_RDONLY | O_CLOEXEC);
		n = f >= 0 ? read(f, buf, sizeof(buf) - 1) : -1;
		if (f >= 0)
			close(f);
		uint64_t count;
		unsigned long id;
		if (n <= 0)
			continue;
		buf[n] = 0;
		if (parse_fdinfo(buf, &count, &id) < 0)
			continue;
		if (grow_array(s->v, s->cap, s->nr + 1, 16) < 0)
			ret = -1;
		else
			s->v[s->nr++] = (struct efd_outside){ id, pid, n_fd };
	}
	if (d)
		closedir(d);
	return ret;
}

static int index_outside(struct efd_dump *s)
{
	struct dirent *de;
	pid_t self = proc_self();
	int ret = 0;
	DIR *d = opendir("/proc");
	while (d && !ret && (de = readdir(d))) {
		pid_t pid = atoi(de->d_name);
		if (pid > 0 && pid != self && !traced_by_us(pid, self))
			ret = index_process(s, pid);
	}
	if (d)
		closedir(d);
	if (ret < 0)
		pr_err("out of memory listing the eventfds outside the tree");
	s->indexed = ret == 0;
	return ret;
}

/* A process outside the tree holding the eventfd (*fd: where), 0 if none
 * that we can see, -1 (reported) if they could not be listed. */
static pid_t outside_holder(struct efd_dump *s, unsigned long id, int *fd)
{
	if (!s->indexed && index_outside(s) < 0)
		return -1;
	for (int i = 0; i < s->nr; i++)
		if (s->v[i].id == id) {
			*fd = s->v[i].fd;
			return s->v[i].pid;
		}
	return 0;
}

static void eventfd_free_dump(struct file_table *t)
{
	struct efd_dump *s = files_dump_state(t, &fd_kind_eventfd);
	free(s->v);
	*s = (struct efd_dump){ 0 };
}

/* ---- the probe ---- */

/* On our copy of the task's file, O_NONBLOCK: what a read gives, then
 * the count put back. -1 (errno) before anything changed; -2 if the
 * count could not be put back. */
static int probe_io(int fd, uint64_t count, bool *sem)
{
	uint64_t raise = count < 2 ? 2 : 0, v;
	if (raise && write(fd, &raise, 8) != 8)
		return -1;
	if (read(fd, &v, 8) != 8)
		return raise ? -2 : -1;
	*sem = v == 1;
	if (*sem) {
		/* took 1: give it back, or take the rest of the raise */
		uint64_t one = 1;
		return (raise ? read(fd, &v, 8) : write(fd, &one, 8)) == 8 ? 0 : -2;
	}
	/* took everything: the count, the raise, whatever the kernel added */
	v -= raise;
	return !v || write(fd, &v, 8) == 8 ? 0 : -2;
}

static int probe_semaphore(const struct fd_facts *f, uint64_t count, bool *sem)
{
	int fd = files_take(f);
	if (fd < 0)
		return -1;
	/* the open file is the task's: its O_NONBLOCK goes back as it was */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		pr_perror("pid %d: fd %d (eventfd): can't make it non-blocking to find its mode", f->pid, f->fd);
		close(fd);
		return -1;
	}
	int r = probe_io(fd, count, sem), err = errno;
	if (fcntl(fd, F_SETFL, fl) < 0) {
		pr_perror("pid %d: fd %d (eventfd): can't put its flags back after finding its mode", f->pid, f->fd);
		r = r ? r : -1;
	}
	close(fd);
	errno = err;
	if (r == -2)
		pr_perror("pid %d: fd %d (eventfd): its count of %llu may have changed while stasis found its mode",
			  f->pid, f->fd, (unsigned long long)count);
	else if (r < 0)
		pr_perror("pid %d: fd %d (eventfd): can't find whether it is a semaphore", f->pid, f->fd);
	return r < 0 ? -1 : 0;
}

/* The probe must leave the count as it found it (or higher: the kernel
 * may add to it); checked, not assumed. */
static int check_count_kept(const struct fd_facts *f, uint64_t before)
{
	char buf[1024];
	uint64_t now;
	unsigned long id;
	if (anon_fdinfo_read(f->pid, f->fd, buf, sizeof(buf)) < 0 || parse_fdinfo(buf, &now, &id) < 0)
		return -1;
	if (now < before) {
		pr_err("pid %d: fd %d (eventfd): its count went from %llu to %llu while stasis found its mode",
		       f->pid, f->fd, (unsigned long long)before, (unsigned long long)now);
		return -1;
	}
	return 0;
}

/* Where fdinfo does not say: the probe, if it can't be seen. */
static int find_semaphore(struct file_table *t, const struct fd_facts *f, uint64_t count, unsigned long id,
			  bool *sem)
{
	static const char *why = "this kernel (before 6.5) does not show whether an eventfd is a semaphore";
	pid_t other;
	int ofd = -1;

	if (count > PROBE_MAX_COUNT) {
		pr_err("pid %d: fd %d (eventfd): %s, and its count %#llx is too close to the maximum to find out "
		       "safely", f->pid, f->fd, why, (unsigned long long)count);
		return -1;
	}
	if (id == NO_ID) {
		pr_err("pid %d: fd %d (eventfd): %s, nor which other processes hold it", f->pid, f->fd, why);
		return -1;
	}
	other = outside_holder(files_dump_state(t, &fd_kind_eventfd), id, &ofd);
	if (other < 0)
		return -1;
	if (other) {
		pr_err("pid %d: fd %d (eventfd): %s, and pid %d (fd %d), outside the tree, holds it too: stasis "
		       "can't find out without that process seeing it; dump it with the tree, or close that fd",
		       f->pid, f->fd, why, other, ofd);
		return -1;
	}
	if (probe_semaphore(f, count, sem) < 0 || check_count_kept(f, count) < 0)
		return -1;
	pr_info("pid %d: fd %d: eventfd mode found by a probe: %s", f->pid, f->fd, *sem ? "semaphore" : "counter");
	return 0;
}

static int eventfd_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
			FileEntry *fe)
{
	char buf[1024];
	uint64_t count;
	unsigned long id;
	bool sem;

	if (anon_fdinfo_read(f->pid, f->fd, buf, sizeof(buf)) < 0)
		return -1;
	if (parse_fdinfo(buf, &count, &id) < 0) {
		pr_err("pid %d: fd %d (eventfd): fdinfo has no eventfd-count", f->pid, f->fd);
		return -1;
	}
	/* STASIS_EVENTFD_PROBE: what a kernel before 6.5 makes us do, for the
	 * tests on newer ones */
	const char *line = getenv("STASIS_EVENTFD_PROBE") ? NULL : anon_fdinfo_value(buf, "eventfd-semaphore");
	if (line)
		sem = atoi(line) != 0;
	else if (find_semaphore(t, f, count, id, &sem) < 0)
		return -1;

	EventfdFileEntry *e = calloc(1, sizeof(*e));
	if (!e)
		return files_oom(f);
	eventfd_file_entry__init(e);
	fe->efd = e;
	if (!(e->fown = anon_fown_new()))
		return files_oom(f);
	e->id = fe->id;
	e->counter = count;
	e->flags = (f->fi.flags & ~O_CLOEXEC) | (sem ? EFD_SEMAPHORE : 0);
	pr_debug("pid %d: fd %d: eventfd counter %llu flags %#x", f->pid, f->fd,
		 (unsigned long long)e->counter, e->flags);
	return 0;
}

static int eventfd_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const EventfdFileEntry *e = fe->efd;
	if (!e) {
		pr_err("image files.img: eventfd entry %u is empty", fe->id);
		return -1;
	}
	/* eventfd() takes an unsigned int; a larger counter is written in. */
	int fd = eventfd(0, e->flags & EFD_SEMAPHORE);
	if (fd < 0) {
		pr_perror("can't make eventfd %u", fe->id);
		return -1;
	}
	if (e->counter && write(fd, &e->counter, sizeof(e->counter)) != sizeof(e->counter)) {
		pr_perror("can't set eventfd %u's counter to %llu", fe->id,
			  (unsigned long long)e->counter);
		close(fd);
		return -1;
	}
	if (anon_set_status_flags(fd, e->flags) < 0) {
		pr_perror("can't set the flags of eventfd %u", fe->id);
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_kind fd_kind_eventfd = {
	.name = "eventfd", .type = FD_TYPES__EVENTFD,
	.owns = eventfd_owns, .dump = eventfd_dump, .open = eventfd_open, .own_open = kind_own_open_any,
	.dump_state = sizeof(struct efd_dump), .free_images = eventfd_free_dump,
};
