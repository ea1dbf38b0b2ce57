/* fds on namespaces (nsfs: /proc/PID/ns/NAME opened, or a namespace fd
 * received), as CRIU saves them: the namespace by its id among those of
 * the tree's processes (ids-PID.img), its kind by its CLONE_NEW* flag.
 * One of no process of the tree is refused at dump, as CRIU does.
 *
 * On restore the file is reopened from /proc/self/ns of the process that
 * opens it: stasis restores every process of a tree into the namespaces
 * it restores in, so that is the namespace of that kind the tree's
 * processes have again. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files/kind.h"
#include "util/log.h"
#include "proc/ns_ids.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

extern const struct fd_kind fd_kind_ns;

/* In the order of files_task_ns_ids. */
static const struct ns_kind {
	const char *name;
	uint32_t cflag;
} ns_kinds[FILES_NR_NS] = {
	{ "pid", CLONE_NEWPID }, { "net", CLONE_NEWNET }, { "ipc", CLONE_NEWIPC },
	{ "uts", CLONE_NEWUTS }, { "mnt", CLONE_NEWNS }, { "user", CLONE_NEWUSER },
	{ "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME },
};

struct ns_seen {
	int kind;
	ino_t ino;
	uint32_t id;
	bool of_task;		/* a process of the tree is in it */
};

struct ns_fd {
	uint32_t ns_id;
	char *what;		/* names the fd in errors */
};

struct ns_dump {
	struct ns_seen *ns;
	int nr_ns;
	uint32_t next_id;
	struct ns_fd *fds;
	int nr_fds;
};

/* The kind of an nsfs link text "NAME:[INODE]"; -1 if it is none. */
static int kind_of_link(const char *path, ino_t *ino)
{
	for (int k = 0; k < FILES_NR_NS; k++) {
		size_t n = strlen(ns_kinds[k].name);
		char *end;
		if (strncmp(path, ns_kinds[k].name, n) || strncmp(path + n, ":[", 2))
			continue;
		unsigned long long v = strtoull(path + n + 2, &end, 10);
		if (end == path + n + 2 || strcmp(end, "]"))
			return -1;
		*ino = v;
		return k;
	}
	return -1;
}

static bool ns_owns(const struct fd_facts *f)
{
	ino_t ino;
	return kind_of_link(f->path, &ino) >= 0 && ino == f->st.st_ino;
}

/* The id of the namespace (kind, ino), given on first sight. */
static struct ns_seen *ns_lookup(struct ns_dump *s, int kind, ino_t ino)
{
	for (int i = 0; i < s->nr_ns; i++)
		if (s->ns[i].kind == kind && s->ns[i].ino == ino)
			return &s->ns[i];
	struct ns_seen *n = realloc(s->ns, (s->nr_ns + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory numbering namespaces");
		return NULL;
	}
	s->ns = n;
	n = &s->ns[s->nr_ns++];
	*n = (struct ns_seen){ kind, ino, ++s->next_id, false };
	return n;
}

static int ns_ids_of(struct file_table *t, pid_t pid, uint32_t ids[FILES_NR_NS], bool of_task)
{
	struct ns_dump *s = files_dump_state(t, &fd_kind_ns);
	struct ns_ident id;

	for (int k = 0; k < FILES_NR_NS; k++) {
		ids[k] = 0;
		if (ns_ident(pid, ns_kinds[k].name, &id) < 0)
			continue;	/* a kind this kernel lacks */
		struct ns_seen *n = ns_lookup(s, k, id.ino);
		if (!n)
			return -1;
		n->of_task |= of_task;
		ids[k] = n->id;
	}
	return 0;
}

int files_task_ns_ids(struct file_table *t, pid_t pid, uint32_t ids[FILES_NR_NS])
{
	return ns_ids_of(t, pid, ids, true);
}

int files_own_ns_ids(struct file_table *t, uint32_t ids[FILES_NR_NS])
{
	return ns_ids_of(t, getpid(), ids, false);
}

static int ns_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	struct ns_dump *s = files_dump_state(t, &fd_kind_ns);
	char what[PATH_MAX + 64];
	ino_t ino;
	int kind = kind_of_link(f->path, &ino);
	struct ns_seen *n = ns_lookup(s, kind, ino);
	NsFileEntry *e = calloc(1, sizeof(*e));
	struct ns_fd *fds = realloc(s->fds, (s->nr_fds + 1) * sizeof(*fds));

	snprintf(what, sizeof(what), "pid %d: fd %d (namespace %s)", f->pid, f->fd, f->path);
	if (fds)
		s->fds = fds;
	if (!n || !e || !fds || !(s->fds[s->nr_fds].what = strdup(what))) {
		free(e);
		return files_oom(f);
	}
	s->fds[s->nr_fds++].ns_id = n->id;
	ns_file_entry__init(e);
	e->id = fe->id;
	e->ns_id = n->id;
	e->ns_cflag = ns_kinds[kind].cflag;
	e->flags = f->fi.flags & ~O_CLOEXEC;	/* close-on-exec is the fd's */
	fe->nsf = e;
	return 0;
}

/* Once every process is dumped: each namespace an fd holds is one of a
 * process of the tree, or it could not be had again. */
static int ns_write_images(struct file_table *t, int dirfd)
{
	struct ns_dump *s = files_dump_state(t, &fd_kind_ns);
	for (int i = 0; i < s->nr_fds; i++)
		for (int j = 0; j < s->nr_ns; j++)
			if (s->ns[j].id == s->fds[i].ns_id && !s->ns[j].of_task) {
				pr_err("%s: no process of the tree is in that namespace; stasis "
				       "(as CRIU) can restore only a namespace of the tree", s->fds[i].what);
				return -1;
			}
	return 0;
}

static void ns_free(struct file_table *t)
{
	struct ns_dump *s = files_dump_state(t, &fd_kind_ns);
	for (int i = 0; i < s->nr_fds; i++)
		free(s->fds[i].what);
	free(s->fds);
	free(s->ns);
}

/* ---- restore ---- */

static int ns_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const NsFileEntry *e = fe->nsf;
	char path[64];

	if (!e) {
		pr_err("image files.img: namespace file %u has no entry", fe->id);
		return -1;
	}
	for (int k = 0; k < FILES_NR_NS; k++) {
		if (ns_kinds[k].cflag != e->ns_cflag)
			continue;
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_kinds[k].name);
		int fd = open(path, (e->flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_NOCTTY);
		if (fd < 0)
			pr_perror("%s: can't open %s", rf->who, path);
		return fd;
	}
	pr_err("image files.img: namespace file %u is of no kind stasis knows (flag %#x)", fe->id, e->ns_cflag);
	return -1;
}

const struct fd_kind fd_kind_ns = {
	.name = "ns", .type = FD_TYPES__NS, .dump_state = sizeof(struct ns_dump),
	.owns = ns_owns, .dump = ns_dump, .open = ns_open,
	.write_images = ns_write_images, .free_images = ns_free,
};
