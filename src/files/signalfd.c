/* signalfd: the set of signals it reads (fdinfo "sigmask", one bit per
 * signal, bit N-1 for signal N, the same layout as a kernel sigset) and
 * O_NONBLOCK. The signals themselves are the process's pending signals,
 * restored with the process. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files/anonfd.h"
#include "util/log.h"

static bool signalfd_owns(const struct fd_facts *f)
{
	return anon_link_is(f, "[signalfd]");
}

static int signalfd_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f,
			 FileEntry *fe)
{
	char buf[1024];
	const char *mask;

	if (anon_fdinfo_read(f->pid, f->fd, buf, sizeof(buf)) < 0)
		return -1;
	if (!(mask = anon_fdinfo_value(buf, "sigmask"))) {
		pr_err("pid %d: fd %d (signalfd): fdinfo has no sigmask", f->pid, f->fd);
		return -1;
	}
	SignalfdEntry *s = calloc(1, sizeof(*s));
	if (!s)
		return files_oom(f);
	signalfd_entry__init(s);
	fe->sgfd = s;
	if (!(s->fown = anon_fown_new()))
		return files_oom(f);
	s->id = fe->id;
	s->flags = f->fi.flags & ~O_CLOEXEC;
	s->sigmask = strtoull(mask, NULL, 16);
	pr_debug("pid %d: fd %d: signalfd mask %#llx", f->pid, f->fd, (unsigned long long)s->sigmask);
	return 0;
}

static int signalfd_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const SignalfdEntry *s = fe->sgfd;
	if (!s) {
		pr_err("image files.img: signalfd entry %u is empty", fe->id);
		return -1;
	}
	/* The raw syscall takes the kernel's 64-bit sigset, which is what
	 * the image holds. */
	uint64_t mask = s->sigmask;
	int fd = syscall(SYS_signalfd4, -1, &mask, sizeof(mask), 0);
	if (fd < 0) {
		pr_perror("can't make signalfd %u for signal mask %#llx", fe->id,
			  (unsigned long long)s->sigmask);
		return -1;
	}
	if (anon_set_status_flags(fd, s->flags) < 0) {
		pr_perror("can't set the flags of signalfd %u", fe->id);
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_kind fd_kind_signalfd = {
	.name = "signalfd", .type = FD_TYPES__SIGNALFD,
	.owns = signalfd_owns, .dump = signalfd_dump, .open = signalfd_open,
	/* a mask: made alike by whichever process (what it reads is the
	 * reader's signals) */
	.own_open = kind_own_open_any,
};
