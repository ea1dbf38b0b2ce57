/* eventfd: its counter and mode. fdinfo shows the counter (hex) and,
 * since Linux 6.3, whether it counts as a semaphore. The mode is kept in
 * bit 0 of the entry's flags (EFD_SEMAPHORE): an eventfd is always
 * O_RDWR, so that bit is free, and CRIU ignores it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "files/anonfd.h"
#include "util/log.h"

static bool eventfd_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "[eventfd]");
}

static int eventfd_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
			FileEntry *fe)
{
	char buf[1024];
	const char *count, *sem;

	if (anon_fdinfo_read(f->pid, f->fd, buf, sizeof(buf)) < 0)
		return -1;
	count = anon_fdinfo_value(buf, "eventfd-count");
	sem = anon_fdinfo_value(buf, "eventfd-semaphore");
	if (!count) {
		pr_err("pid %d: fd %d (eventfd): fdinfo has no eventfd-count", f->pid, f->fd);
		return -1;
	}
	EventfdFileEntry *e = calloc(1, sizeof(*e));
	if (!e)
		return -1;
	eventfd_file_entry__init(e);
	fe->efd = e;
	if (!(e->fown = anon_fown_new()))
		return -1;
	e->id = fe->id;
	e->counter = strtoull(count, NULL, 16);
	e->flags = f->fi.flags & ~O_CLOEXEC;
	if (sem && atoi(sem))
		e->flags |= EFD_SEMAPHORE;
	else if (!sem)
		pr_warn("pid %d: fd %d (eventfd): this kernel does not tell whether it is a "
			"semaphore; restored as a plain counter", f->pid, f->fd);
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
	.owns = eventfd_owns, .dump = eventfd_dump, .open = eventfd_open,
};
