/* One task's fds, each reached by its number without walking /proc/PID
 * again: a dump reads thousands of them (a server's connections), and
 * each walk of /proc/PID/fd/N looked the task up anew. */
#ifndef STASIS_PROC_TASK_FDS_H
#define STASIS_PROC_TASK_FDS_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

struct task_fds {
	pid_t pid;
	int pidfd;	/* pidfd_getfd takes an fd through it */
	int fd_dir;	/* /proc/PID/fd */
	int info_dir;	/* /proc/PID/fdinfo */
};

/* tf opened on pid: 0, or -1 with errno (not reported; tf closed). */
int task_fds_open(struct task_fds *tf, pid_t pid);
void task_fds_close(struct task_fds *tf);
/* Our own fd on the open file description of fd (pidfd_getfd), to ask
 * the file itself; -1 with errno, not reported. */
int task_fds_take(const struct task_fds *tf, int fd);
/* What /proc/PID/fd/N links to, NUL-terminated: its length, or -1. */
ssize_t task_fds_link(const struct task_fds *tf, int fd, char *buf, size_t size);
/* stat of the file fd is open on (through the link, which it follows). */
int task_fds_stat(const struct task_fds *tf, int fd, struct stat *st);
/* /proc/PID/fdinfo/N, NUL-terminated: its length (size - 1 if it did not
 * fit), or -1. */
ssize_t task_fds_fdinfo(const struct task_fds *tf, int fd, char *buf, size_t size);

/* The protocol a socket names itself (sockfs's system.sockprotoname:
 * "TCP", "UNIX-STREAM", ...) into buf; 0, or -1 if sk is no socket. */
int sock_fd_proto_name(int sk, char *buf, size_t len);

#endif
