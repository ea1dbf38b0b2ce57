/* oom_score_adj and loginuid: see own_proc.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "infect/inject.h"
#include "proc/proc.h"
#include "task/own_proc.h"
#include "ns/user.h"
#include "util/log.h"

int own_proc_read(pid_t pid, const char *name, long long *v)
{
	char buf[32], *end;
	if (proc_read_file(pid, name, buf, sizeof(buf)) <= 0)
		return -1;
	errno = 0;
	*v = strtoll(buf, &end, 10);
	if (errno || end == buf) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int own_proc_open(const char *name, int min)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/%s", name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, min);
	close(fd);
	return moved;
}

/* The process writes value into its own file, open at fd: 0 or -errno. */
static long write_own(struct inj *ij, int fd, long long value)
{
	char text[24];
	size_t mark = inj_args_mark(ij);
	uint64_t at;
	long ret = -EIO;

	int len = snprintf(text, sizeof(text), "%lld", value);
	if (inj_arg(ij, text, len, &at) == 0 && inj_call(ij, &ret, INJ(SYS_write, fd, at, len)) == 0 && ret >= 0)
		ret = ret == len ? 0 : -EIO;
	inj_args_release(ij, mark);
	return ret;
}

static int restore_oom(struct inj *ij, pid_t real_pid, const TaskCoreEntry *tc, int fd)
{
	long long now;
	if (!tc->has_oom_score_adj)
		return 0;
	if (own_proc_read(real_pid, "oom_score_adj", &now) == 0 && now == tc->oom_score_adj)
		return 0;
	long ret = write_own(ij, fd, tc->oom_score_adj);
	if (ret < 0)
		pr_warn("pid %d: can't restore oom_score_adj %d: %s", ij->pid, tc->oom_score_adj,
			strerror(-ret));
	return 0;
}

static int restore_loginuid(struct inj *ij, pid_t real_pid, const TaskCoreEntry *tc, int fd, bool inside)
{
	long long now;
	if (!tc->has_loginuid)
		return 0;
	if (own_proc_read(real_pid, "loginuid", &now) < 0) {
		if (errno == ENOENT) {	/* CRIU too goes on */
			pr_warn("pid %d: loginuid %u not restored: the kernel has none", ij->pid, tc->loginuid);
			return 0;
		}
		pr_perror("pid %d: can't read its loginuid to restore %u", ij->pid, tc->loginuid);
		return -1;
	}
	/* we read it as ours; the task writes it as its user namespace's */
	if ((uint32_t)now == userns_rst_id(USERNS_UID, tc->loginuid))
		return 0;
	long ret = write_own(ij, fd, inside ? tc->loginuid : userns_rst_id(USERNS_UID, tc->loginuid));
	if (ret < 0) {
		pr_err("pid %d: can't restore loginuid %u (it has %lld; changing a set one takes "
		       "CAP_AUDIT_CONTROL): %s", ij->pid, tc->loginuid, now, strerror(-ret));
		return -1;
	}
	return 0;
}

int own_proc_restore(struct inj *ij, pid_t real_pid, const TaskCoreEntry *tc, int oom_fd, int loginuid_fd,
		     bool opened_inside)
{
	inj_use(ij, 0);
	if (restore_loginuid(ij, real_pid, tc, loginuid_fd, opened_inside) < 0)
		return -1;
	return restore_oom(ij, real_pid, tc, oom_fd);
}
