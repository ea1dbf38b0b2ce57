/* The pages images' checksums, checked by a child process (ck_bg.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/checksum.h"
#include "image/ck_bg.h"
#include "util/log.h"

/* What the checker found, in memory it shares with stasis: its first
 * error, said by stasis (the RPC client gets stasis's first error). */
struct ck_bg_result {
	int err;
	char msg[1024];
};

static void checker_main(struct ck_bg *bg, int dirfd, const char *dirname, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	prctl(PR_SET_NAME, "stasis-ck");
	log_quiet_errors();
	int ret = ck_verify_chain(dirfd, dirname, CK_ONLY_PAGES);
	if (ret < 0) {
		snprintf(bg->res->msg, sizeof(bg->res->msg), "%s", log_first_error());
		bg->res->err = log_first_errno();
	}
	_exit(ret < 0 ? 1 : 0);
}

int ck_bg_start(struct ck_bg *bg, int dirfd, const char *dirname)
{
	pid_t parent = getpid();
	*bg = (struct ck_bg){ 0 };
	bg->res = mmap(NULL, sizeof(*bg->res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (bg->res == MAP_FAILED) {
		bg->res = NULL;
		return bg->ret = ck_verify_chain(dirfd, dirname, CK_ONLY_PAGES);
	}
	bg->pid = fork();
	if (bg->pid == 0)
		checker_main(bg, dirfd, dirname, parent);
	if (bg->pid > 0)
		return 0;
	bg->pid = 0;
	return bg->ret = ck_verify_chain(dirfd, dirname, CK_ONLY_PAGES);
}

bool ck_bg_holds(const struct ck_bg *bg, pid_t pid)
{
	return bg->pid > 0 && bg->pid == pid;
}

static void unmap_result(struct ck_bg *bg)
{
	if (bg->res)
		munmap(bg->res, sizeof(*bg->res));
	bg->res = NULL;
}

int ck_bg_wait(struct ck_bg *bg)
{
	int status;
	if (!bg->pid) {
		unmap_result(bg);
		return bg->ret;
	}
	pid_t p;
	while ((p = waitpid(bg->pid, &status, 0)) < 0 && errno == EINTR)
		;
	bg->pid = 0;
	bg->ret = -1;
	if (p < 0)
		pr_perror("can't learn whether the pages images are whole (their checker is lost)");
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		bg->ret = 0;
	else if (WIFEXITED(status) && bg->res->msg[0]) {
		log_set_errno(bg->res->err);
		pr_err("%s", bg->res->msg);
	} else
		pr_err("the check of the pages images' checksums failed (its process %s %d)",
		       WIFSIGNALED(status) ? "was killed by signal" : "exited with",
		       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	unmap_result(bg);
	return bg->ret;
}

