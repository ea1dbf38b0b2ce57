/* A task's fds through a pidfd and its /proc fd directories opened once
 * (task_fds.h). Nothing is reopened by a path: the links are only read,
 * the files reached through pidfd_getfd, as the task holds them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "proc/proc.h"
#include "proc/task_fds.h"

static int open_dir(pid_t pid, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int task_fds_open(struct task_fds *tf, pid_t pid)
{
	*tf = (struct task_fds){ .pid = pid, .pidfd = -1, .fd_dir = -1, .info_dir = -1 };
	tf->pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (tf->pidfd < 0 || (tf->fd_dir = open_dir(pid, "fd")) < 0 ||
	    (tf->info_dir = open_dir(pid, "fdinfo")) < 0) {
		int e = errno;
		task_fds_close(tf);
		errno = e;
		return -1;
	}
	return 0;
}

void task_fds_close(struct task_fds *tf)
{
	int fds[] = { tf->pidfd, tf->fd_dir, tf->info_dir };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	tf->pidfd = tf->fd_dir = tf->info_dir = -1;
}

int task_fds_take(const struct task_fds *tf, int fd)
{
	return syscall(SYS_pidfd_getfd, tf->pidfd, fd, 0);
}

ssize_t task_fds_link(const struct task_fds *tf, int fd, char *buf, size_t size)
{
	char name[16];
	snprintf(name, sizeof(name), "%d", fd);
	ssize_t n = readlinkat(tf->fd_dir, name, buf, size - 1);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

int task_fds_stat(const struct task_fds *tf, int fd, struct stat *st)
{
	char name[16];
	snprintf(name, sizeof(name), "%d", fd);
	return fstatat(tf->fd_dir, name, st, 0);
}

ssize_t task_fds_fdinfo(const struct task_fds *tf, int fd, char *buf, size_t size)
{
	char name[16];
	snprintf(name, sizeof(name), "%d", fd);
	int f = openat(tf->info_dir, name, O_RDONLY | O_CLOEXEC);
	return f < 0 ? -1 : proc_read_fd(f, buf, size);
}

int sock_fd_proto_name(int sk, char *buf, size_t len)
{
	ssize_t n = fgetxattr(sk, "system.sockprotoname", buf, len - 1);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return 0;
}
