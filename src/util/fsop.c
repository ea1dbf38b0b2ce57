/* Files made or read on someone's behalf (see fsop.h): the operations,
 * and the broker that makes them as a non-root client. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "util/fsop.h"
#include "util/scm.h"
#include "util/log.h"

enum fs_op { OP_OPEN_DIR, OP_CREATE, OP_APPEND, OP_READ, OP_PATH_READ,
	     OP_RENAME, OP_UNLINK, OP_SYMLINK, OP_LINK, OP_HELLO, OP_MKDIR, OP_OPEN_WRITE, OP_CHPERM,
	     OP_OPEN_DIR_IN };

/* Whether an operation's answer is a new fd. */
static bool op_gives_fd(int op)
{
	return op != OP_RENAME && op != OP_UNLINK && op != OP_SYMLINK && op != OP_LINK && op != OP_HELLO &&
	       op != OP_MKDIR && op != OP_CHPERM;
}

struct fs_req {
	int op;
	int flags;
	mode_t mode;
	uid_t uid;		/* OP_CHPERM */
	gid_t gid;
	char a[PATH_MAX];
	char b[PATH_MAX];
};

struct fs_rep {
	int ret;
	int err;
};

/* ---- the operations, in whichever process makes them ---- */

static int plain_name(const char *name)
{
	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* An fd opened O_NONBLOCK (a FIFO planted under the name can't hang the
 * open) is kept only if regular, and then made blocking. */
static int keep_regular(int fd, int flags)
{
	struct stat st = { 0 };
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, flags) < 0) {
		close(fd);
		errno = S_ISLNK(st.st_mode) ? ELOOP : EINVAL;
		return -1;
	}
	return fd;
}

static int op_open_dir(const char *path)
{
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* path resolved as if rootfd were "/": absolute symlinks and ".." stay
 * under it, /proc magic links are refused (openat2, RESOLVE_IN_ROOT). */
static int op_open_dir_in(int rootfd, const char *path)
{
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	return (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
}

static int op_create(int dirfd, const char *name, int flags, mode_t mode)
{
	if (plain_name(name) < 0)
		return -1;
	flags &= O_ACCMODE | O_APPEND | O_TRUNC;
	flags |= O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	/* what is in the way is removed only if there is something (a dump
	 * makes thousands of files in an empty directory) */
	int fd = openat(dirfd, name, flags, mode & 0777);
	if (fd >= 0 || errno != EEXIST)
		return fd;
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return -1;
	return openat(dirfd, name, flags, mode & 0777);
}

/* A log may also be a terminal or /dev/null (a character device): its
 * opener had the right to open it, as root or as the client. */
static int op_append(int dirfd, const char *name)
{
	struct stat st;
	if (plain_name(name) < 0)
		return -1;
	int fd = openat(dirfd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
			O_CLOEXEC, 0600);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode))
		return fcntl(fd, F_SETFL, O_APPEND) < 0 ? (close(fd), -1) : fd;
	return keep_regular(fd, O_APPEND);
}

/* O_PATH opens nothing: the file is opened for real only once it is
 * known to be a regular file of the directory itself. */
static int op_read(int dirfd, const char *name)
{
	struct stat st = { 0 };
	char self[64];
	if (plain_name(name) < 0)
		return -1;
	int p = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (p < 0)
		return -1;
	if (fstat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(p);
		errno = S_ISLNK(st.st_mode) ? ELOOP : EINVAL;
		return -1;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", p);
	int fd = open(self, O_RDONLY | O_CLOEXEC);
	int saved = errno;
	close(p);
	errno = saved;
	return fd;
}

static int op_path_read(const char *path)
{
	return keep_regular(open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC), 0);
}

static int op_two_names(int op, int dirfd, const char *a, const char *b)
{
	if (op != OP_SYMLINK && op != OP_LINK && plain_name(a) < 0)
		return -1;
	if (op != OP_UNLINK && plain_name(b) < 0)
		return -1;
	switch (op) {
	case OP_RENAME: return renameat(dirfd, a, dirfd, b);
	case OP_UNLINK: return unlinkat(dirfd, a, 0);
	/* a's file (a /proc link followed) gets the new name b */
	case OP_LINK: return linkat(AT_FDCWD, a, dirfd, b, AT_SYMLINK_FOLLOW);
	default: return symlinkat(a, dirfd, b);
	}
}

/* An existing file of dirfd itself, for writing (a cgroup's property). */
static int op_open_write(int dirfd, const char *name, int flags)
{
	if (plain_name(name) < 0)
		return -1;
	return openat(dirfd, name, (flags & O_ACCMODE) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

/* Owner, group and mode of a file or directory of dirfd, each changed
 * only if it differs (what the caller may change, the kernel says). */
static int op_chperm(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode)
{
	struct stat st;
	char self[64];
	if (strcmp(name, ".") && plain_name(name) < 0)	/* ".": dirfd itself */
		return -1;
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ret = fstat(fd, &st);
	if (ret == 0 && (st.st_uid != uid || st.st_gid != gid))
		ret = fchownat(fd, "", uid, gid, AT_EMPTY_PATH);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (ret == 0 && (st.st_mode & 07777) != (mode & 07777))
		ret = chmod(self, mode & 07777);
	int saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

static int op_run(const struct fs_req *r, int dirfd)
{
	switch (r->op) {
	case OP_OPEN_DIR: return op_open_dir(r->a);
	case OP_OPEN_DIR_IN: return op_open_dir_in(dirfd, r->a);
	case OP_CREATE: return op_create(dirfd, r->a, r->flags, r->mode);
	case OP_APPEND: return op_append(dirfd, r->a);
	case OP_READ: return op_read(dirfd, r->a);
	case OP_PATH_READ: return op_path_read(r->a);
	case OP_RENAME: case OP_UNLINK: case OP_SYMLINK: case OP_LINK:
		return op_two_names(r->op, dirfd, r->a, r->b);
	case OP_HELLO: return 0;
	case OP_MKDIR: return plain_name(r->a) < 0 ? -1 : mkdirat(dirfd, r->a, r->mode & 0777);
	case OP_OPEN_WRITE: return op_open_write(dirfd, r->a, r->flags);
	case OP_CHPERM: return op_chperm(dirfd, r->a, r->uid, r->gid, r->mode);
	}
	errno = EINVAL;
	return -1;
}

/* ---- one message with up to two fds ---- */

/* fds[0..1] get what came, in order, -1 for the rest. */
static ssize_t msg_recv(int sk, void *buf, size_t len, int fds[2])
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;
	fds[0] = fds[1] = -1;
	do
		n = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		size_t got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(fds, CMSG_DATA(c), (got > 2 ? 2 : got) * sizeof(int));
	}
	return n;
}

/* ---- the broker ---- */

static int broker_sk = -1;
static pid_t broker_pid;

/* Each request brings the socket its answer goes to (and the directory
 * it is about): processes forked from the one that started the broker
 * (restore's new tasks) share the request socket, never an answer. */
static void broker_serve(int sk)
{
	static struct fs_req r;	/* 8 KiB: not on the stack */
	for (;;) {
		int fds[2], fd;
		ssize_t n = msg_recv(sk, &r, sizeof(r), fds);
		if (n == 0)
			_exit(0);
		if (n == sizeof(r) && fds[0] >= 0) {
			r.a[PATH_MAX - 1] = r.b[PATH_MAX - 1] = 0;
			int ret = op_run(&r, fds[1]);
			struct fs_rep rep = { ret < 0 ? -1 : 0, ret < 0 ? errno : 0 };
			fd = ret >= 0 && op_gives_fd(r.op) ? ret : -1;
			scm_send(fds[0], &rep, sizeof(rep), &fd, fd >= 0);
			if (fd >= 0)
				close(fd);
		}
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
}

/* The client's ids and groups; giving up uid 0 without keep-caps drops
 * every capability. Not dumpable: the client may not ptrace it. */
static int become(uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	if (uid == 0 || setgroups(ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return -1;
	if (prctl(PR_SET_DUMPABLE, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return geteuid() == uid && getegid() == gid ? 0 : -1;
}

static int call(int op, int dirfd, const char *a, const char *b, int flags, mode_t mode);

int fs_broker_start(uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		pr_perror("can't make the file broker's socket");
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		pr_perror("can't fork the file broker");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		/* after the change of ids, which clears the death signal */
		if (dup2(sv[1], 3) < 0 || syscall(SYS_close_range, 4, ~0u, 0) < 0 ||
		    become(uid, gid, groups, ngroups) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(1);
		broker_serve(3);
	}
	close(sv[1]);
	broker_sk = sv[0];
	broker_pid = pid;
	if (call(OP_HELLO, -1, "", "", 0, 0) < 0) {
		pr_err("the file broker could not become uid %u", uid);
		fs_broker_stop();
		return -1;
	}
	return 0;
}

void fs_broker_stop(void)
{
	if (broker_sk < 0)
		return;
	close(broker_sk);
	broker_sk = -1;
	while (waitpid(broker_pid, NULL, 0) < 0 && errno == EINTR)
		;
}

bool fs_brokered(void)
{
	return broker_sk >= 0;
}

static int broker_call(const struct fs_req *r, int dirfd)
{
	struct fs_rep rep;
	int fds[2], answer[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, answer) < 0)
		return -1;
	int sent[2] = { answer[1], dirfd };
	bool ok = scm_send(broker_sk, r, sizeof(*r), sent, dirfd >= 0 ? 2 : 1) == sizeof(*r);
	close(answer[1]);
	ok = ok && msg_recv(answer[0], &rep, sizeof(rep), fds) == sizeof(rep);
	close(answer[0]);
	int fd = ok ? fds[0] : -1;
	if (!ok || rep.ret < 0) {
		if (fd >= 0)
			close(fd);
		errno = ok ? rep.err : EPIPE;	/* EPIPE: the broker is gone */
		return -1;
	}
	if (!op_gives_fd(r->op))
		return 0;
	if (fd < 0)
		errno = EPROTO;
	return fd;
}

static int call_ids(int op, int dirfd, const char *a, const char *b, int flags, mode_t mode, uid_t uid,
		    gid_t gid)
{
	static __thread struct fs_req r;
	if (strlen(a) >= PATH_MAX || strlen(b) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	r.op = op;
	r.flags = flags;
	r.mode = mode;
	r.uid = uid;
	r.gid = gid;
	strcpy(r.a, a);
	strcpy(r.b, b);
	return broker_sk < 0 ? op_run(&r, dirfd) : broker_call(&r, dirfd);
}

static int call(int op, int dirfd, const char *a, const char *b, int flags, mode_t mode)
{
	return call_ids(op, dirfd, a, b, flags, mode, 0, 0);
}

/* ---- the interface ---- */

int fs_mkdir(int dirfd, const char *name, mode_t mode)
{
	return call(OP_MKDIR, dirfd, name, "", 0, mode);
}

int fs_open_write(int dirfd, const char *name, bool rdwr)
{
	return call(OP_OPEN_WRITE, dirfd, name, "", rdwr ? O_RDWR : O_WRONLY, 0);
}

int fs_chperm(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode)
{
	return call_ids(OP_CHPERM, dirfd, name, "", 0, mode, uid, gid);
}

int fs_open_dir(const char *path)
{
	return call(OP_OPEN_DIR, -1, path, "", 0, 0);
}

int fs_open_dir_in(int rootfd, const char *path)
{
	return call(OP_OPEN_DIR_IN, rootfd, path, "", 0, 0);
}

int fs_create(int dirfd, const char *name, int flags, mode_t mode)
{
	return call(OP_CREATE, dirfd, name, "", flags, mode);
}

int fs_open_append(int dirfd, const char *name)
{
	return call(OP_APPEND, dirfd, name, "", 0, 0);
}

int fs_open_read(int dirfd, const char *name)
{
	return call(OP_READ, dirfd, name, "", 0, 0);
}

int fs_open_path_read(const char *path)
{
	return call(OP_PATH_READ, -1, path, "", 0, 0);
}

int fs_open_task_file(const char *src, bool readable)
{
	if (readable || broker_sk < 0)
		return op_path_read(src);
	return fs_open_path_read(src);
}

int fs_rename(int dirfd, const char *from, const char *to)
{
	return call(OP_RENAME, dirfd, from, to, 0, 0);
}

int fs_unlink(int dirfd, const char *name)
{
	return call(OP_UNLINK, dirfd, name, "", 0, 0);
}

int fs_symlink(const char *target, int dirfd, const char *name)
{
	return call(OP_SYMLINK, dirfd, target, name, 0, 0);
}

int fs_link(const char *src, int dirfd, const char *name)
{
	return call(OP_LINK, dirfd, src, name, 0, 0);
}

int fs_split(const char *path, char **dir, const char **name)
{
	const char *slash = strrchr(path, '/');
	*name = slash ? slash + 1 : path;
	if (plain_name(*name) < 0)
		return -1;
	*dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	return *dir ? 0 : -1;
}

int fs_create_path(const char *path, int flags, mode_t mode)
{
	char *dir;
	const char *name;
	if (fs_split(path, &dir, &name) < 0)
		return -1;
	int dirfd = fs_open_dir(dir);
	free(dir);
	if (dirfd < 0)
		return -1;
	int fd = fs_create(dirfd, name, flags, mode);
	int saved = errno;
	close(dirfd);
	errno = saved;
	return fd;
}
