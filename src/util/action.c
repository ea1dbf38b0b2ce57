/* Action scripts, run as CRIU runs them: each script is executed (not
 * through a shell) in the work directory (the images directory unless -W
 * says otherwise: a relative path, the script's own or one it writes,
 * lands there), with CRTOOLS_SCRIPT_ACTION naming the stage,
 * CRTOOLS_IMAGE_DIR the images directory and CRTOOLS_INIT_PID the root
 * of the tree once there is one. Every script runs, the last given first
 * (CRIU keeps them in a list it prepends to); any non-zero exit fails the
 * stage. Which stages run at all is the caller's business: CRIU skips the
 * namespace and network ones when there is nothing to set up or lock. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/action.h"
#include "util/log.h"

static int enter_work_dir(const struct opts *o)
{
	if (o->work_dirfd >= 0 || o->images_dirfd >= 0)
		return fchdir(o->work_dirfd >= 0 ? o->work_dirfd : o->images_dirfd);
	const char *dir = o->work_dir ? o->work_dir : o->images_dir;
	return dir ? chdir(dir) : 0;
}

static void script_child(const struct opts *o, const char *path, const char *stage, pid_t root)
{
	char dir[PATH_MAX], pid[16];
	if (o->images_dir && realpath(o->images_dir, dir))
		setenv("CRTOOLS_IMAGE_DIR", dir, 1);
	if (enter_work_dir(o) < 0) {
		fprintf(stderr, "Error: action script %s: can't enter the work directory: %m\n", path);
		_exit(127);
	}
	setenv("CRTOOLS_SCRIPT_ACTION", stage, 1);
	if (root > 0) {
		snprintf(pid, sizeof(pid), "%d", root);
		setenv("CRTOOLS_INIT_PID", pid, 1);
	}
	int null = open("/dev/null", O_RDONLY);
	if (null >= 0 && null != 0) {
		dup2(null, 0);
		close(null);
	}
	execl(path, path, (char *)NULL);
	fprintf(stderr, "Error: can't run action script %s: %m\n", path);
	_exit(127);
}

static int run_script(const struct opts *o, const char *path, const char *stage, pid_t root)
{
	int status;
	pid_t pid = fork();
	if (pid < 0) {
		pr_perror("can't start action script %s", path);
		return -1;
	}
	if (pid == 0)
		script_child(o, path, stage, root);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			pr_perror("can't wait for action script %s", path);
			return -1;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		pr_err("action script %s failed at %s (exit %d)", path, stage, WEXITSTATUS(status));
	else
		pr_err("action script %s failed at %s (signal %d)", path, stage, WTERMSIG(status));
	return -1;
}

int action_run(const struct opts *o, const char *stage, pid_t root_pid)
{
	if (o->notify) {
		pr_debug("notifying the RPC client of %s", stage);
		if (o->notify(o->notify_ctx, stage, root_pid) < 0)
			return -1;
	}
	int ret = 0;
	for (int i = o->nr_action_scripts - 1; i >= 0; i--) {
		pr_debug("running action script %s for %s", o->action_scripts[i], stage);
		if (run_script(o, o->action_scripts[i], stage, root_pid) < 0)
			ret = -1;
	}
	return ret;
}

int action_status_ready(const struct opts *o)
{
	if (action_run(o, ACT_STATUS_READY, 0) < 0)
		return -1;
	if (o->status_fd < 0)
		return 0;
	char ready = 0;
	int ret = write(o->status_fd, &ready, 1) == 1 ? 0 : -1;
	if (ret < 0)
		pr_perror("can't write to the status fd %d", o->status_fd);
	close(o->status_fd);
	return ret;
}
