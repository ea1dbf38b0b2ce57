/* The file table (files.img), the per-task fd loop shared by all kinds,
 * and the table of kinds through which dump and restore reach them. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <unistd.h>

#include "files/fown.h"
#include "files/kind.h"
#include "image/img.h"
#include "util/log.h"
#include "util/grow.h"

/* The kinds, one row each. owns and owns_path are asked in this order:
 * memfds and namespaces before regular files (they are regular files
 * too), packet sockets too (a mapping of their rings is one of a path). */
extern const struct fd_kind fd_kind_memfd, fd_kind_reg, fd_kind_ghost, fd_kind_tty, fd_kind_pipe,
	fd_kind_eventfd, fd_kind_signalfd, fd_kind_timerfd, fd_kind_inotify, fd_kind_fanotify, fd_kind_epoll, fd_kind_fifo,
	fd_kind_unix, fd_kind_inet, fd_kind_pidfd, fd_kind_fsnotify, fd_kind_locks, fd_kind_fown, fd_kind_ns,
	fd_kind_link_remap, fd_kind_packet, fd_kind_netlink, fd_kind_tunfile;
static const struct fd_kind *const fd_kinds[] = {
	&fd_kind_memfd, &fd_kind_ns, &fd_kind_packet, &fd_kind_reg, &fd_kind_ghost, &fd_kind_tty, &fd_kind_pipe,
	&fd_kind_eventfd, &fd_kind_signalfd, &fd_kind_timerfd, &fd_kind_inotify, &fd_kind_fanotify, &fd_kind_epoll,
	&fd_kind_fifo, &fd_kind_unix, &fd_kind_inet, &fd_kind_netlink, &fd_kind_pidfd, &fd_kind_fsnotify,
	&fd_kind_locks, &fd_kind_fown, &fd_kind_link_remap, &fd_kind_tunfile,
};
#define NR_KINDS (sizeof(fd_kinds) / sizeof(fd_kinds[0]))
_Static_assert(NR_KINDS <= FILES_MAX_KINDS, "FILES_MAX_KINDS is too small for the table of kinds");

/* An fd already dumped, found by hash of pid and fd (a tree may have
 * 100,000 fds: scanning them all for each would be quadratic); the fds
 * sharing its open file description are found in t->descs. */
struct fd_seen {
	pid_t pid;
	int fd;
	uint32_t id;
	int next_fd;	/* the chain: the next index, or -1 */
};

static int kind_slot(const struct fd_kind *k)
{
	for (size_t i = 0; i < NR_KINDS; i++)
		if (fd_kinds[i] == k)
			return i;
	return -1;	/* not reached: every kind is a row */
}

void *files_dump_state(const struct file_table *t, const struct fd_kind *k)
{
	return t->kind[kind_slot(k)];
}

void *files_rst_state(const struct rst_files *rf, const struct fd_kind *k)
{
	return rf->kind[kind_slot(k)];
}

/* Each kind's zeroed state of size (dump_state or rst_state) in slots. */
static int make_states(void **slots, bool rst)
{
	for (size_t k = 0; k < NR_KINDS; k++) {
		size_t size = rst ? fd_kinds[k]->rst_state : fd_kinds[k]->dump_state;
		if (size && !slots[k] && !(slots[k] = calloc(1, size))) {
			pr_err("out of memory for the state of the %s files", fd_kinds[k]->name);
			return -1;
		}
	}
	return 0;
}

static FileEntry *append_entry(struct file_table *t, FdTypes type, uint32_t id)
{
	if (grow_array(t->e, t->cap, t->nr + 1, 32) < 0)
		goto oom;
	FileEntry *fe = calloc(1, sizeof(*fe));
	if (!fe)
		goto oom;
	file_entry__init(fe);
	fe->type = type;
	fe->id = id;
	t->e[t->nr++] = fe;
	return fe;
oom:
	pr_err("out of memory for entry %d of files.img", t->nr + 1);
	return NULL;
}

FileEntry *files_new_entry(struct file_table *t, FdTypes type)
{
	FileEntry *fe = append_entry(t, type, t->next_id + 1);
	if (fe)
		t->next_id++;
	return fe;
}

FileEntry *files_add_twin(struct file_table *t, FdTypes type, uint32_t id)
{
	return append_entry(t, type, id);
}

int files_dump_begin(struct file_table *t)
{
	return make_states(t->kind, false);
}

int files_dump_prepare(struct file_table *t, const struct opts *o, const pid_t *pids, int nr)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->dump_prepare && fd_kinds[k]->dump_prepare(t, o, pids, nr) < 0)
			return -1;
	return 0;
}

int files_write(struct file_table *t, int dirfd)
{
	struct img img;
	/* The kinds' images first: a kind may still add or amend entries of
	 * files.img once every task is dumped (unix peers outside the tree). */
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->write_images && fd_kinds[k]->write_images(t, dirfd) < 0)
			return -1;
	if (img_create(dirfd, &img, IMG_FILES, 0) < 0)
		return -1;
	for (int i = 0; i < t->nr; i++)
		if (img_write(&img, &t->e[i]->base) < 0) {
			img_abort(&img);
			return -1;
		}
	return img_finish(&img);
}

void files_dump_failed(struct file_table *t)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->dump_failed && (t->kind[k] || !fd_kinds[k]->dump_state))
			fd_kinds[k]->dump_failed(t);
}

void files_restored(struct rst_files *rf)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->restored && (rf->kind[k] || !fd_kinds[k]->rst_state))
			fd_kinds[k]->restored(rf);
}

void files_free(struct file_table *t)
{
	for (int i = 0; i < t->nr_seen; i++)
		if (t->seen[i].pid == getpid())
			close(t->seen[i].fd);	/* files in flight (files_dump_in_flight) */
	for (int i = 0; i < t->nr; i++)
		protobuf_c_message_free_unpacked(&t->e[i]->base, NULL);
	for (size_t k = 0; k < NR_KINDS; k++) {
		if (fd_kinds[k]->free_images && (t->kind[k] || !fd_kinds[k]->dump_state))
			fd_kinds[k]->free_images(t);
		free(t->kind[k]);
	}
	free(t->seen);
	free(t->seen_by_fd);
	desc_free(&t->descs);
	free(t->lock_fds);
	files_census_free(t);
	free(t->e);
	memset(t, 0, sizeof(*t));
}

/* A socket asked itself (our own fd on it, kept in f->sk): its inode
 * and protocol. */
static int sock_facts(struct fd_facts *f)
{
	if ((f->sk = files_take(f)) < 0)
		return -1;
	if (fstat(f->sk, &f->st) < 0) {
		pr_perror("pid %d: can't inspect fd %d (%s)", f->pid, f->fd, f->path);
		return -1;
	}
	if (S_ISSOCK(f->st.st_mode) && sock_fd_proto_name(f->sk, f->proto, sizeof(f->proto)) < 0)
		f->proto[0] = 0;
	return 0;
}

static void fd_facts_done(struct fd_facts *f)
{
	if (f->sk >= 0)
		close(f->sk);
	f->sk = -1;
}

/* Notes fd as one whose locks locks.c reads; -1 if out of memory. */
static int note_lock_fd(struct file_table *t, int fd)
{
	if (grow_array(t->lock_fds, t->cap_lock_fds, t->nr_lock_fds + 1, 16) < 0) {
		pr_err("out of memory noting the locks of fd %d", fd);
		return -1;
	}
	t->lock_fds[t->nr_lock_fds++] = fd;
	return 0;
}

/* f of a socket the census saw as inode ino, if it still is that one
 * (its link is not read again): 1; 0 if not; -1 (reported). */
static int census_facts(struct fd_facts *f, uint64_t ino)
{
	if ((f->sk = files_take(f)) < 0)
		return -1;
	if (fstat(f->sk, &f->st) < 0 || !S_ISSOCK(f->st.st_mode) || f->st.st_ino != ino) {
		close(f->sk);
		f->sk = -1;
		return 0;
	}
	snprintf(f->path, sizeof(f->path), "socket:[%" PRIu64 "]", ino);	/* as sockfs names it */
	if (sock_fd_proto_name(f->sk, f->proto, sizeof(f->proto)) < 0)
		f->proto[0] = 0;
	return 1;
}

/* f's link, and then its stat: a socket's from the socket itself. */
static int link_facts(struct fd_facts *f)
{
	if (task_fds_link(f->tf, f->fd, f->path, sizeof(f->path)) < 0) {
		pr_perror("pid %d: can't inspect fd %d", f->pid, f->fd);
		return -1;
	}
	if (!strncmp(f->path, "socket:[", 8))
		return sock_facts(f);
	if (task_fds_stat(f->tf, f->fd, &f->st) < 0) {
		pr_perror("pid %d: can't inspect fd %d (%s)", f->pid, f->fd, f->path);
		return -1;
	}
	return 0;
}

/* The facts of fd of tf's task, each read once (sock_ino: the inode the
 * census saw if it is a socket, else 0). Its fd is noted in t if its
 * fdinfo shows locks (t NULL: not). fd_facts_done undoes it, also when
 * it failed. */
static int fd_facts_read(struct file_table *t, const struct task_fds *tf, int fd, uint64_t sock_ino,
			 struct fd_facts *f)
{
	char info[4096];

	memset(f, 0, sizeof(*f));
	f->pid = tf->pid;
	f->fd = fd;
	f->tf = tf;
	f->sk = -1;
	int known = sock_ino ? census_facts(f, sock_ino) : 0;
	if (known < 0 || (!known && link_facts(f) < 0))
		return -1;
	ssize_t n = task_fds_fdinfo(tf, fd, info, sizeof(info));
	if (n <= 0) {
		pr_perror("pid %d: can't read fdinfo of fd %d", f->pid, fd);
		return -1;
	}
	if (proc_fdinfo_parse(info, &f->fi) < 0) {
		pr_err("pid %d: fdinfo of fd %d lacks pos/flags", f->pid, fd);
		return -1;
	}
	if (t && (strstr(info, "\nlock:") || (size_t)n == sizeof(info) - 1))
		return note_lock_fd(t, fd);
	return 0;
}

int files_oom(const struct fd_facts *f)
{
	pr_err("pid %d: fd %d (%s): out of memory recording it", f->pid, f->fd, f->path);
	return -1;
}

int files_take(const struct fd_facts *f)
{
	int ours = task_fds_take(f->tf, f->fd);
	if (ours < 0)
		pr_perror("pid %d: can't take fd %d (%s) to inspect it", f->pid, f->fd, f->path);
	return ours;
}

const char *files_mode_name(mode_t m)
{
	if (S_ISREG(m)) return "regular file";
	if (S_ISDIR(m)) return "directory";
	if (S_ISSOCK(m)) return "socket";
	if (S_ISFIFO(m)) return "FIFO";
	if (S_ISCHR(m)) return "character device";
	if (S_ISBLK(m)) return "block device";
	if (S_ISLNK(m)) return "symlink";
	return "special file";
}

/* Says which kind of thing an fd of no known kind is: the socket family
 * and type (asked of a copy of the fd, if one can be taken), the anon
 * inode's name, the device numbers. */
static void describe_unsupported(const struct fd_facts *f, char *buf, size_t len)
{
	static const char *const families[] = { [AF_INET] = "an IPv4", [AF_INET6] = "an IPv6",
						[AF_NETLINK] = "a netlink", [AF_PACKET] = "a packet",
						[AF_VSOCK] = "a vsock", [AF_XDP] = "an XDP" };
	if (S_ISSOCK(f->st.st_mode)) {
		int domain = -1, type = -1;
		socklen_t l = sizeof(int);
		if (f->sk >= 0) {
			getsockopt(f->sk, SOL_SOCKET, SO_DOMAIN, &domain, &l);
			l = sizeof(int);
			getsockopt(f->sk, SOL_SOCKET, SO_TYPE, &type, &l);
		}
		const char *fam = domain >= 0 && domain < (int)(sizeof(families) / sizeof(families[0])) &&
				  families[domain] ? families[domain] : "a";
		snprintf(buf, len, "%s %s socket", fam, type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ?
			 "datagram" : type == SOCK_RAW ? "raw" : "");
	} else if (!strncmp(f->path, "anon_inode:", 11)) {
		snprintf(buf, len, "a %s", f->path + 11);
	} else if (S_ISCHR(f->st.st_mode) || S_ISBLK(f->st.st_mode)) {
		snprintf(buf, len, "a %s (%u:%u)", files_mode_name(f->st.st_mode), major(f->st.st_rdev),
			 minor(f->st.st_rdev));
	} else {
		snprintf(buf, len, "a %s", files_mode_name(f->st.st_mode));
	}
}

FdTypes files_type(const struct file_table *t, uint32_t id)
{
	/* ids are handed out in order (files_new_entry) */
	if (id >= 1 && id <= (uint32_t)t->nr && t->e[id - 1]->id == id)
		return t->e[id - 1]->type;
	for (int i = 0; i < t->nr; i++)
		if (t->e[i]->id == id)
			return t->e[i]->type;
	return FD_TYPES__UND;
}

/* fds (of this task or one dumped before) that share an open file
 * description share an id: one file after restore, with one offset. */
static unsigned hash2(uint64_t a, uint64_t b, int cap)
{
	uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ (b + 0x7f4a7c159e3779b9ull + (a << 6) + (a >> 2));
	h ^= h >> 29;
	return (unsigned)(h * 0xbf58476d1ce4e5b9ull >> 32) & (unsigned)(cap * 2 - 1);
}

static unsigned fd_slot(const struct file_table *t, pid_t pid, int fd)
{
	return hash2((uint32_t)pid, (uint32_t)fd, t->cap_seen);
}

static uint32_t shared_with_earlier(const struct file_table *t, const struct fd_facts *f)
{
	return desc_find(&t->descs, f->pid, f->fd, f->st.st_dev, f->st.st_ino);
}

/* Puts seen fd i at the head of its chain. */
static void chain_seen(struct file_table *t, int i)
{
	struct fd_seen *s = &t->seen[i];
	unsigned b = fd_slot(t, s->pid, s->fd);
	s->next_fd = t->seen_by_fd[b];
	t->seen_by_fd[b] = i;
}

/* Room for twice as many, the chains made again for the new size. */
static int grow_seen(struct file_table *t)
{
	int cap = t->cap_seen ? t->cap_seen * 2 : 64;
	struct fd_seen *n = realloc(t->seen, cap * sizeof(*n));
	int *hf = malloc(cap * 2 * sizeof(int));
	if (!n || !hf) {
		if (n)
			t->seen = n;
		free(hf);
		return -1;
	}
	t->seen = n;
	t->cap_seen = cap;
	free(t->seen_by_fd);
	t->seen_by_fd = hf;
	memset(hf, 0xff, cap * 2 * sizeof(int));
	for (int i = t->nr_seen - 1; i >= 0; i--)
		chain_seen(t, i);
	return 0;
}

static int remember_fd(struct file_table *t, const struct fd_facts *f, uint32_t id)
{
	if ((t->nr_seen == t->cap_seen && grow_seen(t) < 0) ||
	    desc_add(&t->descs, f->pid, f->fd, f->st.st_dev, f->st.st_ino, id) < 0) {
		pr_err("out of memory recording fd %d of pid %d", f->fd, f->pid);
		return -1;
	}
	t->seen[t->nr_seen] = (struct fd_seen){ f->pid, f->fd, id, -1 };
	/* every fd of a description has the description's id: which of
	 * them a lookup meets first does not matter */
	chain_seen(t, t->nr_seen++);
	return 0;
}

uint32_t files_id_of_fd(const struct file_table *t, pid_t pid, int fd)
{
	if (!t->nr_seen)
		return 0;
	for (int i = t->seen_by_fd[fd_slot(t, pid, fd)]; i >= 0; i = t->seen[i].next_fd)
		if (t->seen[i].pid == pid && t->seen[i].fd == fd)
			return t->seen[i].id;
	return 0;
}

static const struct fd_kind *kind_owning(const struct fd_facts *f)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->owns && fd_kinds[k]->owns(f))
			return fd_kinds[k];
	return NULL;
}

/* Its entry, remembered before the kind dumps it: a file found again
 * while it is dumped (a socket passed over itself) shares its id. */
static int dump_one_fd(struct file_table *t, const struct opts *o, const struct fd_facts *f,
		       uint32_t *id)
{
	const struct fd_kind *kind = kind_owning(f);
	if (kind) {
		FileEntry *fe = files_new_entry(t, kind->type);
		if (!fe)
			return -1;
		*id = fe->id;
		if (remember_fd(t, f, fe->id) < 0 || kind->dump(t, o, f, fe) < 0)
			return -1;
		return fown_dump(t, f, fe);
	}
	char what[96];
	describe_unsupported(f, what, sizeof(what));
	pr_err("pid %d: fd %d (%s) is %s, which stasis can't dump; close it before the dump "
	       "(or leave that process out of the tree)", f->pid, f->fd, f->path, what);
	return -1;
}

/* files.img entries for the task's fds + fdinfo-ID.img (unless the table
 * is shared with a process dumped before, which wrote it). */
static int dump_fds(struct file_table *t, const struct opts *o, pid_t pid, int dirfd, uint32_t files_id,
		    bool shared, int skip_fd)
{
	int *fds = NULL, nr = 0, ret = -1;
	uint32_t *ids = NULL;
	struct img img;
	struct task_fds tf;

	const struct files_census *census = files_census_of(t, pid);
	int at = 0;

	t->nr_lock_fds = 0;
	if (task_fds_open(&tf, pid) < 0) {
		pr_perror("pid %d: can't open its fds", pid);
		return -1;
	}
	if (proc_list_fds(pid, &fds, &nr) < 0)
		goto out;
	ids = calloc(nr ? nr : 1, sizeof(*ids));	/* per fd, this task */
	if (!ids) {
		pr_err("out of memory for the %d fds of pid %d", nr, pid);
		goto out;
	}
	if (!shared && img_create(dirfd, &img, IMG_FDINFO, files_id) < 0)
		goto out;
	for (int i = 0; i < nr; i++) {
		struct fd_facts f;
		if (fds[i] == skip_fd)
			continue;
		int err = fd_facts_read(t, &tf, fds[i], files_census_sock(census, fds[i], &at), &f);
		if (!err && !(ids[i] = shared_with_earlier(t, &f)))
			err = dump_one_fd(t, o, &f, &ids[i]);
		fd_facts_done(&f);
		if (err < 0)
			goto abort;
		if (!files_id_of_fd(t, pid, fds[i]) && remember_fd(t, &f, ids[i]) < 0)
			goto abort;
		FdinfoEntry fdi = FDINFO_ENTRY__INIT;
		fdi.id = ids[i];
		fdi.flags = (f.fi.flags & O_CLOEXEC) ? FD_CLOEXEC : 0;
		fdi.fd = fds[i];
		fdi.type = files_type(t, ids[i]);
		if (!shared && img_write(&img, &fdi.base) < 0)
			goto abort;
		pr_debug("pid %d: fd %d -> file %u (%s)", pid, fds[i], ids[i], f.path);
	}
	ret = shared ? 0 : img_finish(&img);
	goto out;
abort:
	if (!shared)
		img_abort(&img);
out:
	task_fds_close(&tf);
	free(ids);
	free(fds);
	return ret;
}

/* The facts of fd of pid, its fds opened for it alone in tf (closed by
 * the caller, also on failure). */
static int facts_alone(pid_t pid, int fd, struct task_fds *tf, struct fd_facts *f)
{
	f->sk = -1;	/* for fd_facts_done */
	if (task_fds_open(tf, pid) < 0) {
		pr_perror("pid %d: can't open its fds", pid);
		return -1;
	}
	return fd_facts_read(NULL, tf, fd, 0, f);
}

static int in_flight(struct file_table *t, const struct opts *o, struct fd_facts *f, const char *where,
		     uint32_t *id)
{
	*id = shared_with_earlier(t, f);
	if (*id) {
		close(f->fd);
		return 0;
	}
	if (!kind_owning(f)) {
		char what[96];
		describe_unsupported(f, what, sizeof(what));
		pr_err("%s holds in its queue a file in flight (passed with SCM_RIGHTS, %s) that is %s, "
		       "which stasis can't dump; dump once the message is read", where, f->path, what);
		close(f->fd);
		return -1;
	}
	pr_info("%s: a file in flight, %s, dumped from our fd %d", where, f->path, f->fd);
	if (dump_one_fd(t, o, f, id) == 0)
		return 0;
	if (!files_id_of_fd(t, getpid(), f->fd))
		close(f->fd);	/* else files_free closes it */
	return -1;
}

int files_dump_in_flight(struct file_table *t, const struct opts *o, int fd, pid_t via, const char *where,
			 uint32_t *id)
{
	struct fd_facts f;
	struct task_fds self;
	int ret = -1;

	if (facts_alone(getpid(), fd, &self, &f) < 0) {
		pr_err("can't inspect a file in flight in %s", where);
		close(fd);
	} else {
		f.via = via;
		f.fi.flags &= ~O_CLOEXEC;	/* ours; an fd's flag, not the file's */
		ret = in_flight(t, o, &f, where, id);
	}
	fd_facts_done(&f);
	task_fds_close(&self);
	return ret;
}

int files_dump_task_fd(struct file_table *t, const struct opts *o, pid_t pid, int fd, uint32_t *id)
{
	struct fd_facts f;
	struct task_fds tf;
	int ret = facts_alone(pid, fd, &tf, &f);

	if (ret == 0) {
		*id = shared_with_earlier(t, &f);
		ret = *id ? 0 : dump_one_fd(t, o, &f, id);
	}
	fd_facts_done(&f);
	task_fds_close(&tf);
	return ret;
}

int files_dump_fds(struct file_table *t, const struct opts *o, pid_t pid, pid_t ns_pid, int dirfd,
		   uint32_t files_id, bool shared, int skip_fd)
{
	if (dump_fds(t, o, pid, dirfd, files_id, shared, skip_fd) < 0)
		return -1;
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->dump_task && fd_kinds[k]->dump_task(t, o, pid, ns_pid) < 0)
			return -1;
	return 0;
}

int files_dump_path(struct file_table *t, const struct opts *o, const struct path_facts *p, uint32_t *id)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->owns_path && fd_kinds[k]->owns_path(p))
			return fd_kinds[k]->dump_path(t, o, p, id);
	pr_err("pid %d: %s is no file stasis can save", p->pid, p->path);
	return -1;
}

/* ---- restore side ---- */

static int by_id_cmp(const void *a, const void *b, void *arg)
{
	const struct rst_files *rf = arg;
	uint32_t x = rf->e[*(const int *)a]->id, y = rf->e[*(const int *)b]->id;
	if (x != y)
		return x < y ? -1 : 1;
	return *(const int *)a - *(const int *)b;	/* the first of equal ids first */
}

/* files_index finds an id by bisection, not by a scan of every entry
 * (for each of 100,000 fds that would be quadratic). */
static int index_by_id(struct rst_files *rf)
{
	rf->by_id = malloc((rf->nr ? rf->nr : 1) * sizeof(int));
	if (!rf->by_id) {
		pr_err("out of memory indexing files.img");
		return -1;
	}
	for (int i = 0; i < rf->nr; i++)
		rf->by_id[i] = i;
	qsort_r(rf->by_id, rf->nr, sizeof(int), by_id_cmp, rf);
	return 0;
}

int files_load(struct rst_files *rf, int dirfd)
{
	if (make_states(rf->kind, true) < 0)
		return -1;
	if (img_load_all(dirfd, IMG_FILES, 0, (void ***)&rf->e, &rf->nr) < 0 || index_by_id(rf) < 0)
		return -1;
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->load_images && fd_kinds[k]->load_images(rf, dirfd) < 0)
			return -1;
	return 0;
}

void files_unload(struct rst_files *rf)
{
	for (int i = 0; i < rf->nr; i++)
		img_free(rf->e[i]);
	free(rf->e);
	rf->e = NULL;
	rf->nr = 0;
	free(rf->by_id);
	free(rf->slot);
	rf->slot = NULL;
	free(rf->unlocked);
	rf->unlocked = NULL;
	rf->by_id = NULL;
	free(rf->tasks);
	rf->tasks = NULL;
	rf->nr_tasks = 0;
	for (size_t k = 0; k < NR_KINDS; k++) {
		if (fd_kinds[k]->unload_images && (rf->kind[k] || !fd_kinds[k]->rst_state))
			fd_kinds[k]->unload_images(rf);
		free(rf->kind[k]);
		rf->kind[k] = NULL;
	}
}

const FileEntry *files_find(const struct rst_files *rf, uint32_t id)
{
	int i = files_index(rf, id);
	return i < 0 ? NULL : rf->e[i];
}

int files_note_task(struct rst_files *rf, pid_t pid, FdinfoEntry *const *fdi, int nr)
{
	struct files_task *n = realloc(rf->tasks, (rf->nr_tasks + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory noting the fds of pid %d", pid);
		return -1;
	}
	rf->tasks = n;
	rf->tasks[rf->nr_tasks++] = (struct files_task){ pid, fdi, nr };
	return 0;
}

static bool task_has(const struct files_task *t, bool by_id, uint32_t v)
{
	for (int i = 0; i < t->nr; i++)
		if ((by_id ? t->fdi[i]->id : t->fdi[i]->fd) == v)
			return true;
	return false;
}

bool files_earlier_holder_has(const struct rst_files *rf, uint32_t id, pid_t pid, int fd)
{
	for (int i = 0; i < rf->nr_tasks && rf->tasks[i].pid != pid; i++)
		if (task_has(&rf->tasks[i], true, id) && (fd < 0 || task_has(&rf->tasks[i], false, fd)))
			return true;
	return false;
}

int files_index(const struct rst_files *rf, uint32_t id)
{
	if (!rf->by_id) {	/* not loaded by files_load */
		for (int i = 0; i < rf->nr; i++)
			if (rf->e[i]->id == id)
				return i;
		return -1;
	}
	int lo = 0, hi = rf->nr;	/* the first with an id >= id */
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (rf->e[rf->by_id[mid]]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= rf->nr || rf->e[rf->by_id[lo]]->id != id)
		return -1;
	/* a file with a reg twin of its id (a tun file's /dev/net/tun): the file */
	if (rf->e[rf->by_id[lo]]->type == FD_TYPES__REG && lo + 1 < rf->nr && rf->e[rf->by_id[lo + 1]]->id == id)
		return rf->by_id[lo + 1];
	return rf->by_id[lo];
}

/* The kind of fd of entries of this type, or NULL. */
static const struct fd_kind *kind_of(FdTypes type)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->type == type && fd_kinds[k]->open)
			return fd_kinds[k];
	return NULL;
}

int files_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const struct fd_kind *kind = kind_of(fe->type);
	if (!kind) {
		pr_err("%s: file %u is of a type stasis can't restore (%d)", rf->who, fe->id, fe->type);
		return -1;
	}
	return kind->open(rf, fe, fdflags);
}

int files_pool_fd(struct rst_files *rf, uint32_t id, const char *where)
{
	int idx = files_index(rf, id);
	if (idx < 0) {
		pr_err("image: %s holds file %u in flight, which files.img lacks", where, id);
		return -1;
	}
	int at = files_pool_at(rf, idx);
	if (at < 0) {
		pr_err("file %u, in flight in %s, has no place in the pool", id, where);
		return -1;
	}
	if (fcntl(at, F_GETFD) >= 0)
		return at;
	char who[sizeof(rf->who)];
	memcpy(who, rf->who, sizeof(who));
	snprintf(rf->who, sizeof(rf->who), "file %u in flight in %s", id, where);
	int fd = files_open(rf, rf->e[idx], 0);
	memcpy(rf->who, who, sizeof(who));
	if (fd < 0)
		return -1;
	if (fd != at && dup2(fd, at) < 0) {
		pr_perror("can't place file %u, in flight in %s, in the pool", id, where);
		close(fd);
		return -1;
	}
	if (fd != at)
		close(fd);
	return at;
}

int files_pool_at(const struct rst_files *rf, int idx)
{
	if (!rf->slot)
		return rf->pool_base + idx;	/* not planned: every file */
	return rf->slot[idx] < 0 ? -1 : rf->pool_base + rf->slot[idx];
}

bool kind_own_open_any(const struct rst_files *rf, const FileEntry *fe)
{
	(void)rf;
	(void)fe;
	return true;
}

bool files_own_open(const struct rst_files *rf, int idx)
{
	const struct fd_kind *kind = kind_of(rf->e[idx]->type);
	return kind && kind->own_open && kind->own_open(rf, rf->e[idx]);
}

void files_ties(const struct rst_files *rf, files_tie_fn tie, void *arg)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->ties)
			fd_kinds[k]->ties(rf, tie, arg);
}

bool files_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	const struct fd_kind *kind = kind_of(fe->type);
	return kind && kind->inherit_name && kind->inherit_name(rf, fe, buf, len);
}

int files_open_path(struct rst_files *rf, uint32_t id, uint32_t flags)
{
	const FileEntry *fe = files_find(rf, id);
	const struct fd_kind *kind = fe ? kind_of(fe->type) : NULL;
	if (!kind || !kind->open_path) {
		pr_err("%s: file %u is %s", rf->who, id, fe ? "not one a process can map" : "not in files.img");
		return -1;
	}
	return kind->open_path(rf, fe, flags);
}

int files_make_path(struct rst_files *rf, uint32_t id)
{
	const FileEntry *fe = files_find(rf, id);
	const struct fd_kind *kind = fe ? kind_of(fe->type) : NULL;
	if (!kind || !kind->make_path)
		return 0;	/* reported where it is opened */
	snprintf(rf->who, sizeof(rf->who), "mapping of file %u", id);
	return kind->make_path(rf, fe);
}

int files_before_fork(struct rst_files *rf, pid_t pid, pid_t sid, pid_t pgid)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->before_fork && fd_kinds[k]->before_fork(rf, pid, sid, pgid) < 0)
			return -1;
	return 0;
}

static int after_install(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid)
{
	for (int i = 0; i < nr; i++) {
		const FileEntry *fe = files_find(rf, fdi[i]->id);
		const struct fd_kind *kind = fe ? kind_of(fe->type) : NULL;
		if (kind && kind->after_install && kind->after_install(rf, fe, fdi[i]->fd, pid) < 0)
			return -1;
	}
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->after_install_task && fd_kinds[k]->after_install_task(rf, fdi, nr, pid) < 0)
			return -1;
	return 0;
}

int files_after_install(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid)
{
	rf->task_fdi = fdi;
	rf->task_nr_fdi = nr;
	int ret = after_install(rf, fdi, nr, pid);
	rf->task_fdi = NULL;
	rf->task_nr_fdi = 0;
	return ret;
}

/* rf->task_fdi names the process whose hooks run, and restore rebuilds
 * processes from two threads (restore.c): one process's hooks at a time. */
static pthread_mutex_t task_hooks = PTHREAD_MUTEX_INITIALIZER;

int files_before_creds(struct rst_files *rf, struct inj *ij, FdinfoEntry *const *fdi, int nr)
{
	int ret = 0;
	pthread_mutex_lock(&task_hooks);
	rf->task_fdi = fdi;
	rf->task_nr_fdi = nr;
	for (size_t k = 0; ret == 0 && k < NR_KINDS; k++)
		if (fd_kinds[k]->before_creds && fd_kinds[k]->before_creds(rf, ij) < 0)
			ret = -1;
	rf->task_fdi = NULL;
	rf->task_nr_fdi = 0;
	pthread_mutex_unlock(&task_hooks);
	return ret;
}

int files_after_service_close(struct rst_files *rf, struct inj *ij, FdinfoEntry *const *fdi, int nr)
{
	int ret = 0;
	pthread_mutex_lock(&task_hooks);
	rf->task_fdi = fdi;
	rf->task_nr_fdi = nr;
	for (size_t k = 0; ret == 0 && k < NR_KINDS; k++)
		if (fd_kinds[k]->after_service_close && fd_kinds[k]->after_service_close(rf, ij) < 0)
			ret = -1;
	rf->task_fdi = NULL;
	rf->task_nr_fdi = 0;
	pthread_mutex_unlock(&task_hooks);
	return ret;
}

int files_reopen_kept(const struct rst_files *rf, int kept, uint32_t flags, uint64_t pos, const char *what)
{
	char self[64];

	snprintf(self, sizeof(self), "/proc/self/fd/%d", kept);
	/* without O_NOFOLLOW (mkstemp's, say), which would refuse the /proc link */
	int fd = open(self, (flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOFOLLOW)) | O_NOCTTY);
	if (fd < 0) {
		pr_perror("%s: can't reopen %s", rf->who, what);
		return -1;
	}
	if (pos && lseek(fd, pos, SEEK_SET) != (off_t)pos) {
		pr_perror("%s: can't seek %s to %llu", rf->who, what, (unsigned long long)pos);
		close(fd);
		return -1;
	}
	return fd;
}

/* 1 the first time file idx's after_unlock is asked for (by stasis,
 * files_after_unlock), then 0; -1 (reported) if out of memory. */
static int first_unlock(struct rst_files *rf, int idx)
{
	if (!rf->unlocked && !(rf->unlocked = calloc(rf->nr ? rf->nr : 1, sizeof(*rf->unlocked)))) {
		pr_err("out of memory");
		return -1;
	}
	if (rf->unlocked[idx])
		return 0;
	rf->unlocked[idx] = true;
	return 1;
}

int files_after_install_in_flight(struct rst_files *rf, uint32_t id, pid_t pid)
{
	int idx = files_index(rf, id);
	const struct fd_kind *kind = idx < 0 ? NULL : kind_of(rf->e[idx]->type);
	if (!kind)
		return 0;
	int fd = files_pool_at(rf, idx);
	if (fd < 0)
		return 0;	/* no file in flight: opened by its process (never) */
	if (kind->after_install && kind->after_install(rf, rf->e[idx], fd, pid) < 0)
		return -1;
	/* once it is in the queue, stasis can't reach it: now, lock or not
	 * (run by the process itself, like after_install) */
	char where[64];
	snprintf(where, sizeof(where), "file %u in flight in pid %d", id, pid);
	return kind->after_unlock ? kind->after_unlock(rf, rf->e[idx], fd, where) : 0;
}

/* Our own fd on fd of the process pidfd (opened first, on pid, if it
 * is -1: one for all its fds); -1 (reported) if it can't be taken. */
static int take_from(int *pidfd, pid_t pid, int fd, const char *what)
{
	if (*pidfd < 0 && (*pidfd = syscall(SYS_pidfd_open, pid, 0)) < 0) {
		pr_perror("pid %d: can't open a pidfd to take its fds", pid);
		return -1;
	}
	int ours = syscall(SYS_pidfd_getfd, *pidfd, fd, 0);
	if (ours < 0)
		pr_perror("pid %d: can't take fd %d (%s) to inspect it", pid, fd, what);
	return ours;
}

int files_take_fd(pid_t pid, int fd, const char *what)
{
	int pidfd = -1, ours = take_from(&pidfd, pid, fd, what);
	if (pidfd >= 0)
		close(pidfd);
	return ours;
}

int files_after_unlock(struct rst_files *rf, FdinfoEntry *const *fdi, int nr, pid_t pid)
{
	int pidfd = -1, ret = 0;

	for (int i = 0; ret == 0 && i < nr; i++) {
		int idx = files_index(rf, fdi[i]->id);
		const struct fd_kind *kind = idx < 0 ? NULL : kind_of(rf->e[idx]->type);
		int first = kind && kind->after_unlock ? first_unlock(rf, idx) : 0;
		if (first <= 0) {
			ret = first;
			continue;
		}
		char where[64];
		snprintf(where, sizeof(where), "pid %d: fd %u", pid, fdi[i]->fd);
		int fd = take_from(&pidfd, pid, fdi[i]->fd, kind->name);
		if (fd < 0) {
			ret = -1;
			break;
		}
		ret = kind->after_unlock(rf, rf->e[idx], fd, where);
		close(fd);
	}
	if (pidfd >= 0)
		close(pidfd);
	return ret < 0 ? -1 : 0;
}

int files_before_resume(struct rst_files *rf)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (fd_kinds[k]->before_resume && fd_kinds[k]->before_resume(rf) < 0)
			return -1;
	return 0;
}

bool files_task_has_fd(const struct rst_files *rf, int fd)
{
	for (int i = 0; i < rf->task_nr_fdi; i++)
		if (rf->task_fdi[i]->fd == (uint32_t)fd)
			return true;
	return false;
}

int files_keep_fd(const struct rst_files *rf, int fd, const char *what)
{
	if (fd < 0 || fd >= rf->keep_base)
		return fd;
	int high = fcntl(fd, F_DUPFD_CLOEXEC, rf->keep_base);
	if (high < 0)
		pr_perror("can't move the fd of %s above %d", what, rf->keep_base);
	close(fd);
	return high;
}
