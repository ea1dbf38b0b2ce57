/*
 * seccomp.h - seccomp filters for the seccomp test programs: a rule is a
 * syscall number and the action the filter returns for it; every other
 * syscall is allowed.
 */
#ifndef STASIS_TEST_SECCOMP_H
#define STASIS_TEST_SECCOMP_H

#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

struct rule {
	int nr;
	unsigned int action;	/* SECCOMP_RET_* | data */
};

#define MAX_RULES 8

/* Installs a filter of rules with seccomp(2) and flags; returns what the
 * syscall returned (0, or a tid for a failed TSYNC, or -1 with errno). */
static inline long install_rules(const struct rule *r, int n, unsigned int flags)
{
	struct sock_filter prog[4 + 2 * MAX_RULES];
	int k = 0;

	/* another architecture's syscall numbers mean other syscalls: kill */
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (int i = 0; i < n && i < MAX_RULES; i++) {
		prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, r[i].nr, 0, 1);
		prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, r[i].action);
	}
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog fp = { .len = (unsigned short)k, .filter = prog };
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fp);
}

/* A field of /proc/self/task/TID/status ("Seccomp", "Seccomp_filters",
 * "NoNewPrivs"), -1 if missing. open/read only: the filters kill mmap, so
 * no stdio (its buffers are malloc'd). */
static inline long status_field(pid_t tid, const char *key)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	size_t kl = strlen(key);
	for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ':')
			return strtol(p + kl + 1, NULL, 10);
	return -1;
}

#endif
