/* Dump of a mount namespace of the tree's own: every mount of the root's
 * /proc/PID/mountinfo into mountpoints-ID.img (CRIU's mnt_entry), and
 * each tmpfs's files, by tar as CRIU runs it, into
 * tmpfs-dev-DEV.tar.gz.img. A mount restore could not make again (a file
 * system with contents of its own that is not given as external) fails
 * the dump in one line naming it and the options that would help. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/mount.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/img.h"
#include "ns/mnt.h"
#include "ns/ns.h"
#include "util/grow.h"
#include "util/log.h"

/* One line of mountinfo, and what the dump makes of it. */
struct mline {
	MntEntry e;
	unsigned maj, min;
	char *fsname;
	enum { ML_UNSAVED, ML_SKIP, ML_ROOT, ML_EXT, ML_FRESH, ML_BIND } how;
	char *line;		/* the buffer the strings point into */
	char *opts;		/* options rewritten with ids seen inside, or NULL */
	int ns;			/* its namespace's index (0: the root's) */
	pid_t pid;		/* a process in that namespace */
};

/* mountinfo's octal escapes (\040 for a space) undone in place. */
static void unescape(char *s)
{
	char *d = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
}

static const struct {
	const char *opt;
	unsigned flag;
} mnt_flags[] = {
	{ "ro", MS_RDONLY }, { "nosuid", MS_NOSUID }, { "nodev", MS_NODEV }, { "noexec", MS_NOEXEC },
	{ "noatime", MS_NOATIME }, { "nodiratime", MS_NODIRATIME }, { "relatime", MS_RELATIME },
}, sb_flags[] = {
	{ "ro", MS_RDONLY }, { "sync", MS_SYNCHRONOUS }, { "dirsync", MS_DIRSYNC }, { "mand", MS_MANDLOCK },
};

/* The per-mount options into flags ("rw" is none). */
static unsigned mount_flags(char *opts)
{
	unsigned f = 0;
	for (char *o = strtok(opts, ","); o; o = strtok(NULL, ","))
		for (size_t i = 0; i < sizeof(mnt_flags) / sizeof(mnt_flags[0]); i++)
			if (!strcmp(o, mnt_flags[i].opt))
				f |= mnt_flags[i].flag;
	return f;
}

/* The superblock's options: its flags into *flags, the rest (the file
 * system's own) kept in opts, comma-separated. */
static unsigned super_flags(char *opts)
{
	unsigned f = 0;
	char *out = opts, *save = NULL;
	for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		bool flag = !strcmp(o, "rw");
		for (size_t i = 0; i < sizeof(sb_flags) / sizeof(sb_flags[0]) && !flag; i++)
			if (!strcmp(o, sb_flags[i].opt)) {
				f |= sb_flags[i].flag;
				flag = true;
			}
		if (flag)
			continue;
		size_t n = strlen(o);
		if (out != opts)
			*out++ = ',';
		memmove(out, o, n);
		out += n;
	}
	*out = 0;
	return f;
}

/* "36 35 98:0 /root /mnt rw,noatime shared:1 master:2 - ext4 /dev/sda rw,errors=remount-ro" */
static int parse_line(char *l, struct mline *m)
{
	char *f[6], *save = NULL, *tail;
	int n = 0;

	mnt_entry__init(&m->e);
	for (tail = l; n < 6; tail = NULL) {
		char *t = strtok_r(tail, " ", &save);
		if (!t)
			return -1;
		f[n++] = t;
	}
	tail = save;
	m->e.mnt_id = strtoul(f[0], NULL, 10);
	m->e.parent_mnt_id = strtoul(f[1], NULL, 10);
	if (sscanf(f[2], "%u:%u", &m->maj, &m->min) != 2)
		return -1;
	m->e.root_dev = mnt_kdev(m->maj, m->min);
	unescape(f[3]);
	unescape(f[4]);
	/* a bind whose root was removed since: "ROOT//deleted" (CRIU's deleted) */
	size_t rl = strlen(f[3]);
	if (rl > 9 && !strcmp(f[3] + rl - 9, "//deleted")) {
		f[3][rl - 9] = 0;
		m->e.has_deleted = m->e.deleted = true;
	}
	m->e.root = f[3];
	m->e.mountpoint = f[4];
	m->e.flags = mount_flags(f[5]);
	/* the optional fields, up to "-" */
	for (char *t = strtok_r(NULL, " ", &tail); t; t = strtok_r(NULL, " ", &tail)) {
		if (!strcmp(t, "-")) {
			char *type = strtok_r(NULL, " \n", &tail), *src = strtok_r(NULL, " \n", &tail);
			char *opts = strtok_r(NULL, " \n", &tail);
			if (!type || !src)
				return -1;
			if (!opts) {	/* an empty source */
				opts = src;
				src = opts + strlen(opts);	/* "" in the line's buffer */
			}
			unescape(src);
			m->fsname = type;
			m->e.source = src;
			m->e.sb_flags = super_flags(opts);
			m->e.has_sb_flags = true;
			m->e.options = opts;
			m->e.has_shared_id = m->e.has_master_id = true;
			return 0;
		}
		if (!strncmp(t, "shared:", 7)) {
			m->e.flags |= MS_SHARED;
			m->e.shared_id = strtoul(t + 7, NULL, 10);
		} else if (!strncmp(t, "master:", 7)) {
			m->e.flags |= MS_SLAVE;
			m->e.master_id = strtoul(t + 7, NULL, 10);
		} else if (!strcmp(t, "unbindable")) {
			m->e.flags |= MS_UNBINDABLE;
		}
	}
	return -1;
}

static void free_lines(struct mline *m, int nr)
{
	for (int i = 0; i < nr; i++)
		free(m[i].line), free(m[i].opts);
	free(m);
}

/* The mounts of pid's namespace (index ns) added to *out. */
static int read_mountinfo(pid_t pid, int ns, struct mline **out, int *nr)
{
	char path[64], *l = NULL;
	size_t cap = 0;
	int n = *nr;
	struct mline *m = *out;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		pr_perror("pid %d: can't read its mounts (%s)", pid, path);
		return -1;
	}
	while (getline(&l, &cap, f) > 0) {
		struct mline *g = realloc(m, (n + 1) * sizeof(*m));
		if (!g)
			goto oom;
		m = g;
		memset(&m[n], 0, sizeof(*m));
		m[n].line = l;
		m[n].ns = ns;
		m[n].pid = pid;
		l = NULL;
		cap = 0;
		if (parse_line(m[n].line, &m[n]) < 0) {
			pr_err("pid %d: a line of %s stasis can't read", pid, path);
			n++;
			goto err;
		}
		n++;
	}
	free(l);
	fclose(f);
	*out = m;
	*nr = n;
	return 0;
oom:
	pr_err("out of memory reading %s", path);
err:
	free(l);
	fclose(f);
	*out = m;
	*nr = n;
	return -1;
}

static bool listed(const char **list, int nr, const char *s)
{
	for (int i = 0; i < nr; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

/* --enable-fs: comma-separated names, or "all". */
static bool fs_enabled(const struct opts *o, const char *name)
{
	for (int i = 0; i < o->nr_enable_fs; i++) {
		char buf[256];
		snprintf(buf, sizeof(buf), "%s", o->enable_fs[i]);
		for (char *s = NULL, *t = strtok_r(buf, ",", &s); t; t = strtok_r(NULL, ",", &s))
			if (!strcmp(t, "all") || !strcmp(t, name))
				return true;
	}
	return false;
}

/* The mount of that id in namespace ns. */
static int find_id(const struct mline *m, int nr, int ns, uint32_t id)
{
	for (int i = 0; i < nr; i++)
		if (m[i].e.mnt_id == id && m[i].ns == ns)
			return i;
	return -1;
}

static bool ns_root(const struct mline *m, int nr, int i)
{
	return find_id(m, nr, m[i].ns, m[i].e.parent_mnt_id) < 0 && !strcmp(m[i].e.mountpoint, "/");
}

/* 1: path is p or below it (both absolute). */
static bool under(const char *path, const char *p)
{
	size_t n = strlen(p);
	if (!strcmp(p, "/"))
		return true;
	return !strncmp(path, p, n) && (path[n] == 0 || path[n] == '/');
}

/* A mount that restore makes as a bind of another of the tree's: the
 * root, an external one, or one made anew whose root holds its root. */
static bool bind_source(const struct mline *m, int nr, int i)
{
	for (int j = 0; j < nr; j++) {
		if (j == i || m[j].e.root_dev != m[i].e.root_dev)
			continue;
		if ((m[j].how == ML_ROOT || m[j].how == ML_EXT || m[j].how == ML_FRESH) &&
		    under(m[i].e.root, m[j].e.root))
			return true;
	}
	return false;
}

/* The first mount of a kind made anew with its file system's root,
 * others of its device being its binds. */
static bool first_of_dev(const struct mline *m, int i)
{
	for (int j = 0; j < i; j++)
		if (m[j].how == ML_FRESH && m[j].e.root_dev == m[i].e.root_dev)
			return false;
	return true;
}

/* Each mount's way back (how), or -1 with the one that has none named.
 * The root of the root's namespace is --root at restore; those of nested
 * namespaces are binds of a mount of the tree (of the root, mostly) or
 * made anew, as any other mount. */
static int classify(struct mline *m, int nr, int nr_ns, const struct opts *o)
{
	int root = -1;
	for (int k = 0; k < nr_ns; k++) {
		int r = -1, any = -1;
		for (int i = 0; i < nr; i++) {
			if (m[i].ns == k && ns_root(m, nr, i))
				r = i;
			if (m[i].ns == k)
				any = i;
		}
		if (r < 0) {
			pr_err("pid %d: its mount namespace has no root mount in mountinfo", any >= 0 ? m[any].pid : 0);
			return -1;
		}
		if (k == 0)
			root = r;
	}
	m[root].how = ML_ROOT;
	/* skipped mounts and what is below them (parents may come later) */
	for (bool more = true; more;) {
		more = false;
		for (int i = 0; i < nr; i++) {
			int p = find_id(m, nr, m[i].ns, m[i].e.parent_mnt_id);
			if (i == root || m[i].how == ML_SKIP || ns_root(m, nr, i))
				continue;
			if (listed(o->skip_mnt, o->nr_skip_mnt, m[i].e.mountpoint) || p < 0 || m[p].how == ML_SKIP) {
				m[i].how = ML_SKIP;
				more = true;
			}
		}
	}
	for (int i = 0; i < nr; i++) {
		if (i == root || m[i].how == ML_SKIP || ns_root(m, nr, i))
			continue;
		/* --external names mount points of the root's namespace (as
		 * CRIU: a nested one's mount at the same path is its own) */
		const char *key = m[i].ns == 0 ? mnt_ext_lookup(o, m[i].e.mountpoint) : NULL;
		m[i].how = key ? ML_EXT : ML_UNSAVED;
		m[i].e.ext_key = (char *)key;
	}
	/* made anew: a kind stasis mounts fresh, from its own root */
	for (int i = 0; i < nr; i++) {
		bool fresh;
		if (m[i].how != ML_UNSAVED)
			continue;
		m[i].e.fstype = mnt_fs_code(m[i].fsname, &fresh);
		if (!fresh && fs_enabled(o, m[i].fsname)) {
			fresh = true;
			m[i].e.fstype = MNT_FS_AUTO;
			m[i].e.fsname = m[i].fsname;
		}
		if (fresh && !strcmp(m[i].e.root, "/") && first_of_dev(m, i))
			m[i].how = ML_FRESH;
	}
	/* the rest are binds of those, or of a kind with no contents of its
	 * own (proc, sysfs, cgroup, ...: made anew, then the subdirectory) */
	for (int i = 0; i < nr; i++) {
		bool fresh;
		if (m[i].how != ML_UNSAVED)
			continue;
		mnt_fs_code(m[i].fsname, &fresh);
		if (bind_source(m, nr, i) || (fresh && m[i].e.fstype != MNT_FS_TMPFS && m[i].e.fstype != MNT_FS_DEVPTS))
			m[i].how = ML_BIND;
	}
	for (int i = 0; i < nr; i++) {
		if (m[i].how != ML_UNSAVED)
			continue;
		pr_err("pid %d: mount %u at %s (%s from %s, root %s) can't be made again at restore: name it with "
		       "--external mnt[%s]:KEY, leave it out with --skip-mnt %s, or let it be mounted anew with "
		       "--enable-fs %s", m[i].pid, m[i].e.mnt_id, m[i].e.mountpoint, m[i].fsname, m[i].e.source,
		       m[i].e.root, m[i].e.mountpoint, m[i].e.mountpoint, m[i].fsname);
		return -1;
	}
	for (int i = 0; i < nr; i++) {
		bool fresh;
		if (m[i].how == ML_ROOT || m[i].how == ML_EXT || m[i].how == ML_BIND)
			m[i].e.fstype = m[i].e.fstype ? m[i].e.fstype : mnt_fs_code(m[i].fsname, &fresh);
		/* CRIU takes a name only with AUTO (its restore refuses others) */
		m[i].e.fsname = m[i].e.fstype == MNT_FS_AUTO ? m[i].fsname : NULL;
	}
	return 0;
}

/* An mqueue mount holds the namespace's POSIX queues, which stasis does
 * not save: one with any is refused. */
static int check_empty(pid_t pid, const struct mline *m)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/root%s", pid, m->e.mountpoint);
	DIR *d = opendir(path);
	if (!d) {
		pr_perror("pid %d: can't read %s", pid, m->e.mountpoint);
		return -1;
	}
	struct dirent *de;
	int ret = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			pr_err("pid %d: %s (mqueue) holds POSIX message queues (%s), which stasis does not save; "
			       "leave it out with --skip-mnt %s", pid, m->e.mountpoint, de->d_name, m->e.mountpoint);
			ret = -1;
			break;
		}
	closedir(d);
	return ret;
}

/* One of the mounts of the tmpfs m whose root is its file system's
 * root, alone (a clone without the mounts on it, open_tree
 * OPEN_TREE_CLONE), reached by its mount point where no mount hides it:
 * made by a child of ours that joins pid's mount namespace, and sent
 * back; -1 if none is reachable. */
static int clone_mount(pid_t pid, const struct mline *lines, int nr, const struct mline *m)
{
	int sk[2];
	char path[64];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sk) < 0) {
		pr_perror("can't make a socket pair");
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
	pid_t c = fork();
	if (c == 0) {
		int ns = open(path, O_RDONLY | O_CLOEXEC), fd = -1;
		if (ns < 0 || setns(ns, CLONE_NEWNS) < 0)
			_exit(1);
		for (int i = 0; i < nr && fd < 0; i++) {
			const MntEntry *e = &lines[i].e;
			struct statx sx;
			if (lines[i].ns != m->ns || e->root_dev != m->e.root_dev || strcmp(e->root, "/"))
				continue;
			int at = open(e->mountpoint, O_PATH | O_CLOEXEC);
			if (at >= 0 && statx(at, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) == 0 &&
			    (sx.stx_mask & STATX_MNT_ID) && sx.stx_mnt_id == e->mnt_id) {
				fd = (int)syscall(SYS_open_tree, at, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
				/* an unbindable mount can't be cloned: itself, whose
				 * mounts tar leaves out (--one-file-system) */
				if (fd < 0 && errno == EINVAL && (e->flags & MS_UNBINDABLE)) {
					fd = at;
					at = -1;
				}
			}
			if (at >= 0)
				close(at);
		}
		if (fd < 0)
			_exit(2);
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { "m", 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		_exit(sendmsg(sk[1], &mh, 0) == 1 ? 0 : 3);
	}
	close(sk[1]);
	int status = -1, fd = -1;
	if (c > 0)
		while (waitpid(c, &status, 0) < 0 && errno == EINTR)
			;
	if (c > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		char cbuf[CMSG_SPACE(sizeof(int))], b;
		struct iovec iov = { &b, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;
		if (recvmsg(sk[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) == 1 && (cm = CMSG_FIRSTHDR(&mh)) &&
		    cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	}
	close(sk[0]);
	if (fd < 0 && c > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 2)
		pr_err("pid %d: the tmpfs at %s is hidden by mounts on top of it; stasis can't save its files "
		       "(leave it out with --skip-mnt %s)", pid, m->e.mountpoint, m->e.mountpoint);
	else if (fd < 0)
		pr_err("pid %d: can't reach the tmpfs at %s in its mount namespace (status %#x)", pid,
		       m->e.mountpoint, status);
	return fd;
}

/* A tmpfs's files: tar of a clone of its mount (the files under the
 * mounts on it too, none of theirs), into the image CRIU names by the
 * device. */
/* In the tree's user namespace, as its root: the owners as seen inside
 * (what a restore inside it can give, as CRIU's tar has them). */
static int tar_inside(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWUSER) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return -1;
	close(fd);
	return 0;
}

/* A tmpfs whose files are saved once the tree's fds are (mnt_dump_tmpfs):
 * a link remap (--link-remap) made in it meanwhile must be in its
 * archive, as in CRIU's, which archives mounts after the tasks. The
 * clone of its mount is taken when the mounts are read; tar reads the
 * files through it later, as they are then. */
struct tmpfs_later {
	int dfd;
	pid_t pid;
	unsigned dev;
	bool inside;	/* tar as the tree's user namespace's root */
	char *mountpoint;
};
static struct tmpfs_later *later;
static int nr_later, cap_later;

static int keep_tmpfs(pid_t pid, const struct mline *lines, int nr, const struct mline *m,
		      const struct userns_maps *user)
{
	if (grow_array(later, cap_later, nr_later + 1, 4) < 0) {
		pr_err("out of memory");
		return -1;
	}
	struct tmpfs_later *t = &later[nr_later];
	t->mountpoint = strdup(m->e.mountpoint);
	t->dfd = t->mountpoint ? clone_mount(pid, lines, nr, m) : -1;
	if (t->dfd < 0) {
		free(t->mountpoint);
		return -1;
	}
	t->pid = pid;
	t->dev = m->e.root_dev;
	t->inside = user && user->on;
	nr_later++;
	return 0;
}

void mnt_dump_tmpfs_drop(void)
{
	for (int i = 0; i < nr_later; i++) {
		close(later[i].dfd);
		free(later[i].mountpoint);
	}
	free(later);
	later = NULL;
	nr_later = cap_later = 0;
}

static int dump_tmpfs(int dirfd, const struct tmpfs_later *t)
{
	char name[64];
	pid_t pid = t->pid;
	int dfd = t->dfd;

	snprintf(name, sizeof(name), "tmpfs-dev-%u.tar.gz.img", t->dev);
	int out = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		pr_perror("can't create %s", name);
		return -1;
	}
	char *const argv[] = { "tar", "--create", "--gzip", "--no-unquote", "--no-wildcards", "--one-file-system",
			       "--check-links", "--preserve-permissions", "--sparse", "--numeric-owner", "--directory",
			       ".", ".", NULL };
	char **env = mnt_tar_env();
	pid_t c = env ? fork() : -1;
	if (c == 0) {
		if (dup2(out, 1) < 0 || fchdir(dfd) < 0 || (t->inside && tar_inside(pid) < 0))
			_exit(126);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		execvpe(argv[0], argv, env);
		_exit(127);
	}
	free(env);
	close(out);
	int status = -1;
	if (c > 0)
		while (waitpid(c, &status, 0) < 0 && errno == EINTR)
			;
	if (c < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		pr_err("pid %d: tar could not save the tmpfs at %s (status %#x%s)", pid, t->mountpoint, status,
		       c > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ": no tar installed" : "");
		unlinkat(dirfd, name, 0);
		return -1;
	}
	pr_info("pid %d: the files of the tmpfs at %s saved in %s", pid, t->mountpoint, name);
	return 0;
}

int mnt_dump_tmpfs(int dirfd)
{
	int ret = 0;
	for (int i = 0; i < nr_later && !ret; i++)
		ret = dump_tmpfs(dirfd, &later[i]);
	mnt_dump_tmpfs_drop();
	return ret;
}

/* "uid=N" and "gid=N" options (tmpfs, devpts) with N as the tree's user
 * namespace sees it: what its mount would be given inside (as CRIU). */
static int ids_inside(struct mline *m, const struct userns_maps *u)
{
	if (!u || !u->on || !m->e.options || (!strstr(m->e.options, "uid=") && !strstr(m->e.options, "gid=")))
		return 0;
	size_t cap = strlen(m->e.options) * 2 + 32, len = 0;
	char *out = malloc(cap), *save = NULL, *in = strdup(m->e.options);
	if (!out || !in) {
		free(out);
		free(in);
		pr_err("out of memory");
		return -1;
	}
	out[0] = 0;
	for (char *o = strtok_r(in, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		unsigned v;
		int kind = !strncmp(o, "uid=", 4) ? USERNS_UID : !strncmp(o, "gid=", 4) ? USERNS_GID : -1;
		if (kind >= 0 && sscanf(o + 4, "%u", &v) == 1)
			len += snprintf(out + len, cap - len, "%s%.4s%u", len ? "," : "", o, userns_id_in(u, kind, v));
		else
			len += snprintf(out + len, cap - len, "%s%s", len ? "," : "", o);
	}
	free(in);
	m->opts = m->e.options = out;
	return 0;
}

/* One namespace's mounts into mountpoints-ID.img. */
static int write_ns(int dirfd, const struct mline *m, int nr, int ns, uint32_t id)
{
	struct img img;
	if (img_create(dirfd, &img, IMG_MNTS, id) < 0)
		return -1;
	for (int i = 0; i < nr; i++) {
		if (m[i].how == ML_SKIP || m[i].ns != ns)
			continue;
		pr_debug("mount %u (parent %u) %s at %s, root %s, from %s, %s%s", m[i].e.mnt_id, m[i].e.parent_mnt_id,
			 m[i].fsname, m[i].e.mountpoint, m[i].e.root, m[i].e.source,
			 (const char *[]){ "", "", "the root", "external ", "new", "a bind" }[m[i].how],
			 m[i].e.ext_key ? m[i].e.ext_key : "");
		if (img_write(&img, &m[i].e.base) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

int mnt_dump(int dirfd, const struct mnt_ns_ref *ns, int nr_ns, const struct opts *o,
	     const struct userns_maps *user)
{
	struct mline *m = NULL;
	int nr = 0, ret = -1;

	for (int k = 0; k < nr_ns; k++)
		if (read_mountinfo(ns[k].pid, k, &m, &nr) < 0)
			goto out;
	for (int i = 0; i < nr; i++)
		if (ids_inside(&m[i], user) < 0)
			goto out;
	if (classify(m, nr, nr_ns, o) < 0)
		goto out;
	for (int i = 0; i < nr; i++) {
		if (m[i].how == ML_FRESH && m[i].e.fstype == MNT_FS_TMPFS &&
		    keep_tmpfs(m[i].pid, m, nr, &m[i], user) < 0)
			goto out;
		if (m[i].how == ML_FRESH && m[i].e.fstype == MNT_FS_MQUEUE && check_empty(m[i].pid, &m[i]) < 0)
			goto out;
	}
	for (int k = 0; k < nr_ns; k++)
		if (write_ns(dirfd, m, nr, k, ns[k].id) < 0)
			goto out;
	ret = 0;
out:
	free_lines(m, nr);
	return ret;
}
