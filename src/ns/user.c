/* A user namespace of the tree's own: both sides (see user.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "image/img.h"
#include "ns/ns.h"
#include "ns/user.h"
#include "proc/proc.h"
#include "userns.pb-c.h"
#include "util/log.h"

#ifndef NS_GET_USERNS
#define NS_GET_USERNS 0xb701
#define NS_GET_PARENT 0xb702
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define OVERFLOW_ID 65534u

static const char *const map_file[2] = { "uid_map", "gid_map" };

uint32_t userns_id_in(const struct userns_maps *m, int kind, uint32_t outside)
{
	if (!m || !m->on)
		return outside;
	for (int i = 0; i < m->n[kind]; i++) {
		const struct userns_extent *e = &m->e[kind][i];
		if (outside >= e->lower && outside - e->lower < e->count)
			return e->first + (outside - e->lower);
	}
	return OVERFLOW_ID;
}

uint32_t userns_id_out(const struct userns_maps *m, int kind, uint32_t inside)
{
	if (!m || !m->on)
		return inside;
	for (int i = 0; i < m->n[kind]; i++) {
		const struct userns_extent *e = &m->e[kind][i];
		if (inside >= e->first && inside - e->first < e->count)
			return e->lower + (inside - e->first);
	}
	return (uint32_t)-1;
}

/* ---- dump ---- */

static const struct userns_maps *dump_maps;	/* one dump per process */

uint32_t userns_dump_id(int kind, uint32_t outside)
{
	return userns_id_in(dump_maps, kind, outside);
}

static int ns_fd(pid_t pid, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* 1: fd's namespace is ours (the same kind as /proc/self/ns/name). */
static int is_ours(int fd, const char *name)
{
	int own = ns_fd(getpid(), name);
	if (own < 0)
		return -1;
	int ret = same_file(fd, own);
	close(own);
	return ret;
}

/* The user namespace must be a child of ours: one level. */
static int check_parent(pid_t root, int user)
{
	int parent = ioctl(user, NS_GET_PARENT);
	if (parent < 0) {
		pr_perror("pid %d: can't find the parent of its user namespace", root);
		return -1;
	}
	int ours = is_ours(parent, "user");
	close(parent);
	if (ours != 1) {
		pr_err("pid %d is in a user namespace nested in another one below the dumper's: stasis, as CRIU, "
		       "saves one level of user namespace", root);
		return -1;
	}
	return 0;
}

/* The namespace of fd is owned by the user namespace of user. */
static bool owned_by(int fd, int user)
{
	int owner = ioctl(fd, NS_GET_USERNS);
	bool owned = owner >= 0 && same_file(owner, user);
	if (owner >= 0)
		close(owner);
	return owned;
}

int userns_check_owns_mnt(pid_t root, pid_t pid)
{
	int user = ns_fd(root, "user"), mnt = ns_fd(pid, "mnt");
	bool owned = user >= 0 && mnt >= 0 && owned_by(mnt, user);
	if (user >= 0)
		close(user);
	if (mnt >= 0)
		close(mnt);
	if (!owned)
		pr_err("pid %d: its mount namespace is not owned by the user namespace of its root (pid %d): "
		       "stasis can't make that again", pid, root);
	return owned ? 0 : -1;
}

/* Each namespace of root not ours must be owned by its user namespace;
 * cgroup and time ones, which stasis makes from outside, can't be yet. */
static int check_owners(pid_t root, int user)
{
	static const unsigned long kinds[] = { CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWNET,
					       CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWTIME };
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		const char *name = ns_name(kinds[k]);
		int fd = ns_fd(root, name);
		if (fd < 0)
			continue;	/* a kind this kernel lacks */
		int ours = is_ours(fd, name);
		bool owned = ours == 0 && owned_by(fd, user);
		close(fd);
		if (ours != 0)
			continue;
		if (!owned) {
			pr_err("pid %d: its %s namespace is not owned by its user namespace: stasis can't make "
			       "that again", root, ns_what(kinds[k]));
			return -1;
		}
		if (kinds[k] == CLONE_NEWCGROUP || kinds[k] == CLONE_NEWTIME) {
			pr_err("pid %d has a %s namespace of its own in its user namespace: stasis can't make it "
			       "owned by the user namespace yet", root, ns_what(kinds[k]));
			return -1;
		}
	}
	return 0;
}

static int read_map(pid_t root, int kind, struct userns_maps *m)
{
	char buf[USERNS_MAX_EXTENTS * 40];
	ssize_t len = proc_read_file(root, map_file[kind], buf, sizeof(buf));
	if (len < 0) {
		pr_perror("pid %d: can't read its %s", root, map_file[kind]);
		return -1;
	}
	m->n[kind] = 0;
	for (char *line = buf, *next; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		struct userns_extent *e = &m->e[kind][m->n[kind]];
		if (m->n[kind] == USERNS_MAX_EXTENTS || sscanf(line, "%u %u %u", &e->first, &e->lower, &e->count) != 3) {
			pr_err("pid %d: can't parse its %s", root, map_file[kind]);
			return -1;
		}
		m->n[kind]++;
	}
	return 0;
}

static int read_maps(pid_t root, struct userns_maps *m)
{
	char sg[16] = "";
	if (read_map(root, USERNS_UID, m) < 0 || read_map(root, USERNS_GID, m) < 0)
		return -1;
	if (proc_read_file(root, "setgroups", sg, sizeof(sg)) < 0) {
		pr_perror("pid %d: can't read its setgroups", root);
		return -1;
	}
	if (!m->n[USERNS_UID] || !m->n[USERNS_GID]) {
		pr_err("pid %d: its user namespace has no %s: stasis can't make it again", root,
		       map_file[m->n[USERNS_UID] ? USERNS_GID : USERNS_UID]);
		return -1;
	}
	m->setgroups_deny = !strncmp(sg, "deny", 4);
	m->on = true;
	return 0;
}

static UidGidExtent **extents_msg(const struct userns_maps *m, int kind, UidGidExtent *store)
{
	UidGidExtent **p = calloc(m->n[kind] + 1, sizeof(*p));
	for (int i = 0; p && i < m->n[kind]; i++) {
		uid_gid_extent__init(&store[i]);
		store[i].first = m->e[kind][i].first;
		store[i].lower_first = m->e[kind][i].lower;
		store[i].count = m->e[kind][i].count;
		p[i] = &store[i];
	}
	return p;
}

static int write_image(int dirfd, uint32_t id, const struct userns_maps *m)
{
	static UidGidExtent store[2][USERNS_MAX_EXTENTS];
	UsernsEntry e = USERNS_ENTRY__INIT;
	e.n_uid_map = m->n[USERNS_UID];
	e.n_gid_map = m->n[USERNS_GID];
	e.uid_map = extents_msg(m, USERNS_UID, store[USERNS_UID]);
	e.gid_map = extents_msg(m, USERNS_GID, store[USERNS_GID]);
	e.has_setgroups_deny = m->setgroups_deny;
	e.setgroups_deny = m->setgroups_deny;
	int ret = -1;
	if (e.uid_map && e.gid_map)
		ret = img_store_one(dirfd, IMG_USERNS, id, &e.base);
	else
		pr_err("out of memory");
	free(e.uid_map);
	free(e.gid_map);
	return ret;
}

int userns_dump(int dirfd, pid_t root, uint32_t id, const struct opts *o, struct userns_maps *m)
{
	/* its maps would be written by root at restore, from the image */
	if (o->unprivileged) {
		pr_err("pid %d has a user namespace of its own: only root may dump it (its uid and gid maps are "
		       "written by root at restore)", root);
		return -1;
	}
	int user = ns_fd(root, "user");
	if (user < 0) {
		pr_perror("pid %d: can't open its user namespace", root);
		return -1;
	}
	int ret = -1;
	if (check_parent(root, user) == 0 && check_owners(root, user) == 0 && read_maps(root, m) == 0)
		ret = write_image(dirfd, id, m);
	close(user);
	if (ret == 0)
		dump_maps = m;
	if (ret == 0)
		pr_info("pid %d has a user namespace of its own: its %d uid and %d gid map lines are saved%s", root,
			m->n[USERNS_UID], m->n[USERNS_GID], m->setgroups_deny ? " (setgroups deny)" : "");
	return ret;
}

/* ---- restore ---- */

static const struct userns_maps *rst_maps;	/* one restore per process */
static bool rst_inside;

void userns_rst_ids(const struct userns_maps *m)
{
	rst_maps = m;
}

uint32_t userns_rst_id(int kind, uint32_t inside)
{
	return rst_inside ? inside : userns_id_out(rst_maps, kind, inside);
}

static int load_map(const char *name, int kind, UidGidExtent **x, size_t n, struct userns_maps *m)
{
	if (n == 0 || n > USERNS_MAX_EXTENTS) {
		pr_err("image %s: %zu lines in its %s (1 to %d)", name, n, map_file[kind], USERNS_MAX_EXTENTS);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (x[i]->count == 0 || (uint64_t)x[i]->first + x[i]->count > 1ull << 32 ||
		    (uint64_t)x[i]->lower_first + x[i]->count > 1ull << 32) {
			pr_err("image %s: line %zu of its %s is out of range", name, i + 1, map_file[kind]);
			return -1;
		}
		m->e[kind][i] = (struct userns_extent){ x[i]->first, x[i]->lower_first, x[i]->count };
	}
	m->n[kind] = n;
	return 0;
}

int userns_load(int dirfd, uint32_t id, struct userns_maps *m)
{
	char name[IMG_NAME_MAX];
	UsernsEntry *e;

	img_name(name, sizeof(name), IMG_USERNS, id);
	if (img_load_one(dirfd, IMG_USERNS, id, (ProtobufCMessage **)&e) < 0)
		return -1;
	int ret = -1;
	if (load_map(name, USERNS_UID, e->uid_map, e->n_uid_map, m) == 0 &&
	    load_map(name, USERNS_GID, e->gid_map, e->n_gid_map, m) == 0) {
		m->setgroups_deny = e->has_setgroups_deny && e->setgroups_deny;
		m->on = true;
		ret = 0;
	}
	img_free(e);
	return ret;
}

/* The holder: in its namespaces until stasis is done (it dies with us).
 * It keeps none of our fds (a pipe's end held here would hide an EOF). */
static void holder_main(int ready)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dup2(ready, 0) < 0)
		_exit(1);
	if (syscall(SYS_close_range, 1, ~0u, 0) < 0)
		for (int fd = 1; fd < 65536; fd++)
			close(fd);
	if (write(0, "y", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static int write_proc(pid_t pid, const char *file, const char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
		pr_perror("can't write the tree's user namespace's %s", file);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* One write per map, as the kernel wants it; setgroups before gid_map. */
static int write_maps(pid_t pid, const struct userns_maps *m)
{
	static char buf[USERNS_MAX_EXTENTS * 36];
	if (m->setgroups_deny && write_proc(pid, "setgroups", "deny", 4) < 0)
		return -1;
	for (int kind = USERNS_UID; kind <= USERNS_GID; kind++) {
		size_t off = 0;
		for (int i = 0; i < m->n[kind]; i++)
			off += snprintf(buf + off, sizeof(buf) - off, "%u %u %u\n", m->e[kind][i].first,
					m->e[kind][i].lower, m->e[kind][i].count);
		if (write_proc(pid, map_file[kind], buf, off) < 0)
			return -1;
	}
	return 0;
}

static int open_kept(pid_t pid, const char *name, int (*keep)(int, void *), void *arg)
{
	int fd = ns_fd(pid, name);
	if (fd < 0) {
		pr_perror("can't open the %s namespace made for the tree", name);
		return -1;
	}
	return keep(fd, arg);
}

static int open_all(struct userns_rst *u, unsigned long flags, int (*keep)(int, void *), void *arg)
{
	static const unsigned long kinds[] = { CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS };
	if ((u->user_fd = open_kept(u->holder, "user", keep, arg)) < 0)
		return -1;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if (!(flags & kinds[k]))
			continue;
		if ((u->fds[u->nr] = open_kept(u->holder, ns_name(kinds[k]), keep, arg)) < 0)
			return -1;
		u->flags[u->nr++] = kinds[k];
	}
	return 0;
}

int userns_rst_make(const struct userns_maps *m, unsigned long flags, int (*keep)(int fd, void *arg), void *arg,
		    struct userns_rst *u)
{
	int ready[2];
	char ok = 0;

	*u = (struct userns_rst){ .holder = -1, .user_fd = -1 };
	if (pipe2(ready, O_CLOEXEC) < 0) {
		pr_perror("can't make a pipe");
		return -1;
	}
	struct clone_args ca = { .flags = CLONE_NEWUSER | (flags & (CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS |
									CLONE_NEWNET)),
				 .exit_signal = SIGCHLD };
	u->holder = syscall(SYS_clone3, &ca, sizeof(ca));
	if (u->holder == 0) {
		close(ready[0]);
		holder_main(ready[1]);
	}
	close(ready[1]);
	if (u->holder < 0) {
		pr_perror("can't make a user namespace for the tree");
		close(ready[0]);
		return -1;
	}
	if (read(ready[0], &ok, 1) != 1 || ok != 'y') {
		pr_err("the holder of the tree's namespaces died");
		close(ready[0]);
		userns_rst_free(u);
		return -1;
	}
	close(ready[0]);
	if (write_maps(u->holder, m) < 0 || open_all(u, flags, keep, arg) < 0) {
		userns_rst_free(u);
		return -1;
	}
	pr_info("the tree's user namespace is made (%d uid, %d gid map lines%s)", m->n[USERNS_UID],
		m->n[USERNS_GID], m->setgroups_deny ? ", setgroups deny" : "");
	return 0;
}

pid_t userns_rst_holder(const struct userns_rst *u)
{
	return u->holder;
}

int userns_rst_enter(const struct userns_rst *u)
{
	for (int i = 0; i < u->nr; i++)
		if (setns(u->fds[i], u->flags[i]) < 0) {
			pr_perror("can't join the tree's %s namespace", ns_what(u->flags[i]));
			return -1;
		}
	return 0;
}

static bool in_userns(int user_fd)
{
	int self = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	bool in = self >= 0 && same_file(self, user_fd);
	if (self >= 0)
		close(self);
	return in;
}

int userns_rst_be_in(int user_fd)
{
	if (user_fd < 0 || in_userns(user_fd))
		return 0;
	if (setns(user_fd, CLONE_NEWUSER) < 0) {
		pr_perror("can't join the tree's user namespace");
		return -1;
	}
	rst_inside = true;
	return 0;
}

/* Groups first (ours: a namespace with setgroups "deny" can't set them
 * inside), then the user namespace, unless we are in it already. */
static int join(const struct userns_rst *u, const struct userns_maps *m, const CredsEntry *c)
{
	if (in_userns(u->user_fd))
		return 0;
	if (c && c->n_groups <= 65536) {
		gid_t *g = calloc(c->n_groups + 1, sizeof(*g));
		size_t n = 0;
		for (size_t i = 0; g && i < c->n_groups; i++) {
			uint32_t out = userns_id_out(m, USERNS_GID, c->groups[i]);
			if (out != (uint32_t)-1)
				g[n++] = out;
		}
		int ret = g ? setgroups(n, g) : -1;
		free(g);
		if (ret < 0) {
			pr_perror("can't set the supplementary groups");
			return -1;
		}
	}
	return userns_rst_be_in(u->user_fd);
}

pid_t userns_rst_clone_init(const struct userns_rst *u, const struct userns_maps *m, const CredsEntry *c,
			    unsigned long flags, void (*child)(void *), void *arg)
{
	int p[2];
	pid_t pid = -1;
	if (pipe2(p, O_CLOEXEC) < 0) {
		pr_perror("can't make a pipe");
		return -1;
	}
	pid_t f = fork();
	if (f == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		if (join(u, m, c) < 0)
			_exit(1);
		pid_t one = 1;
		struct clone_args ca = { .flags = CLONE_PARENT | CLONE_NEWPID | flags, .set_tid = (uint64_t)&one,
					 .set_tid_size = 1 };
		pid = syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid == 0) {
			rst_inside = true;
			child(arg);	/* does not return */
		}
		if (pid < 0)
			pr_perror("can't make the tree's pid namespace in its user namespace");
		_exit(write(p[1], &pid, sizeof(pid)) == sizeof(pid) && pid > 0 ? 0 : 1);
	}
	close(p[1]);
	if (f < 0)
		pr_perror("can't fork");
	else if (read(p[0], &pid, sizeof(pid)) != sizeof(pid))
		pid = -1;
	close(p[0]);
	if (f > 0)
		while (waitpid(f, NULL, 0) < 0 && errno == EINTR)
			;
	return pid;
}

int userns_rst_join(const struct userns_rst *u, const struct userns_maps *m, const CredsEntry *c)
{
	return join(u, m, c);
}

int userns_rst_root(void)
{
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
		pr_perror("can't be root in the tree's user namespace (does it map uid and gid 0?)");
		return -1;
	}
	return 0;
}

void userns_rst_free(struct userns_rst *u)
{
	if (u->holder > 0) {
		kill(u->holder, SIGKILL);
		while (waitpid(u->holder, NULL, 0) < 0 && errno == EINTR)
			;
	}
	u->holder = -1;
	if (u->user_fd >= 0)
		close(u->user_fd);
	for (int i = 0; i < u->nr; i++)
		close(u->fds[i]);
	u->user_fd = -1;
	u->nr = 0;
}
