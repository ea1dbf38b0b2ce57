/* Reaching the cgroup hierarchies (see cgroup.h). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/mount.h>

#include "task/cgroup.h"
#include "util/fsop.h"
#include "util/log.h"

void cg_yard_name(const char *name, char *buf, size_t size)
{
	if (!strncmp(name, "name=", 5))
		snprintf(buf, size, "%s", name + 5);
	else
		snprintf(buf, size, "%s", *name ? name : "unified");
}

static int fsconfig(int fd, unsigned cmd, const char *key, const char *value)
{
	return syscall(SYS_fsconfig, fd, cmd, key, value, 0);
}

/* A cgroup v1 hierarchy of the same controllers (or name) is the one
 * there is: the kernel reuses it. Detached: nothing appears in any mount
 * table, and it goes away with the fd. */
static int mount_hierarchy(const char *name)
{
	int fs = syscall(SYS_fsopen, *name ? "cgroup" : "cgroup2", FSOPEN_CLOEXEC);
	if (fs < 0) {
		pr_perror("can't open a cgroup file system for hierarchy '%s'", name);
		return -1;
	}
	int ret = 0;
	if (!strncmp(name, "name=", 5)) {
		ret = fsconfig(fs, FSCONFIG_SET_STRING, "name", name + 5);
	} else if (*name) {
		char *list = strdup(name), *save = NULL;
		for (char *c = list ? strtok_r(list, ",", &save) : NULL; c && !ret; c = strtok_r(NULL, ",", &save))
			ret = fsconfig(fs, FSCONFIG_SET_FLAG, c, NULL);
		ret = list ? ret : -1;
		free(list);
	}
	int mnt = -1;
	if (ret == 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL) == 0)
		mnt = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0)
		pr_perror("can't mount the cgroup hierarchy '%s'", name);
	close(fs);
	return mnt;
}

int cg_open_hierarchy(const char *name, const char *yard)
{
	if (!yard)
		return mount_hierarchy(name);
	char dir[256], path[PATH_MAX];
	cg_yard_name(name, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", yard, dir);
	int fd = fs_open_dir(path);
	if (fd < 0)
		pr_perror("can't open %s, hierarchy '%s' of --cgroup-yard", path, name);
	return fd;
}

/* A child makes a cgroup namespace of its own: what a restore needs. */
bool cg_ns_supported(void)
{
	if (access("/proc/self/ns/cgroup", F_OK) < 0)
		return false;
	pid_t pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWCGROUP) < 0);
	int status;
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool cg_contains(char *const *cnames, size_t n, const char *name)
{
	if (n == 1 && !cnames[0][0])
		return !name[0];
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(cnames[i]);
		bool found = false;
		for (const char *at = name; (at = strstr(at, cnames[i])); at += len)
			if ((at == name || at[-1] == ',') && (at[len] == 0 || at[len] == ','))
				found = true;
		if (!found)
			return false;
	}
	return n > 0;
}
