/* Creating the tree: every process is forked by its own parent with
 * clone3(set_tid), so parents, pids, sessions and groups come out as they
 * were. Each new process runs stasis code first: it joins its session and
 * group, forks its children, opens its fds and the files its mappings
 * need, reports ready over a socket (whose credentials tell us its pid in
 * our namespace) and waits for stasis to seize it. A zombie is forked and
 * exits at once with its old status. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sched.h>

#include "image/vma.h"
#include "restore/rst.h"
#include "task/timens.h"
#include "util/action.h"
#include "task/own_proc.h"
#include "image/img.h"
#include "proc/proc.h"
#include "util/log.h"
#include "util/progress.h"

#define READY_TIMEOUT_MS 30000

struct ready_msg {
	int idx;
	int ok;
};

/* pid 0: any pid. */
static long clone3_set_tid(pid_t pid, uint64_t flags)
{
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.flags = flags;
	/* with CLONE_PARENT the kernel takes ours (and wants 0 here) */
	args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
	args.set_tid = pid ? (uint64_t)&pid : 0;
	args.set_tid_size = pid ? 1 : 0;
	return syscall(SYS_clone3, &args, sizeof(args));
}

/* A pid number stays allocated while it is still some live process's
 * group or session id (children of a dumped task often are); those may be
 * about to exit, so retry for a while. */
static pid_t clone_retrying(pid_t pid, uint64_t flags)
{
	for (int ms = 0;; ms += 10) {
		long ret = clone3_set_tid(pid, flags);
		if (ret >= 0)
			return ret;
		if (errno != EEXIST) {
			pr_perror("can't create a process with pid %d", pid);
			return -1;
		}
		if (ms >= PID_FREE_WAIT_MS) {
			log_set_errno(EEXIST);
			pr_err("pid %d is busy: it is still the process group or session id of "
			       "other processes", pid);
			return -1;
		}
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
}

/* lend: the caller is a process of a non-root client's tree, whose
 * CAP_CHECKPOINT_RESTORE is raised for set_tid only (restore/unpriv.c);
 * NULL when it is stasis or its init. */
static pid_t clone_with_pid(pid_t pid, uint64_t flags, const struct opts *lend)
{
	if (rst_client_lend(lend, true) < 0)
		return -1;
	long ret = clone_retrying(pid, flags);
	if (ret == 0)
		return 0;	/* the child lowers its own (rst_client_become) */
	if (rst_client_lend(lend, false) < 0)
		return -1;	/* the child dies with us (PDEATHSIG) */
	return ret;
}

/* ---- in the new process ---- */

/* The file pool: every open file description several processes share
 * is opened once, at pool_base + its slot, by their common ancestor (or
 * the root: restore/pool_plan.c says which) before it forks them; they
 * inherit it. So fds shared across fork or dup stay one open file
 * description, with one offset, as they were. Each process walks the
 * files of itself and its descendants for the ones it opens, and closes
 * the slots none of them needs any more (pool_drop.c). A file only one
 * process uses has no slot: that process opens it itself (open_own). */
/* --inherit-fd: the fd of ours that stands for this file, or -1. A path
 * matches with or without its leading '/'. */
int rst_inherited_fd(const struct opts *o, const struct rst_files *rf, const FileEntry *fe)
{
	char name[PATH_MAX];

	if (!files_inherit_name(rf, fe, name, sizeof(name)))
		return -1;
	for (int i = 0; i < o->nr_inherit; i++) {
		const char *r = o->inherit[i].res;
		if (!strcmp(r, name) || (name[0] == '/' && !strcmp(r, name + 1)))
			return o->inherit[i].fd;
	}
	return -1;
}

static int task_index(const struct rst_tree *tr, pid_t pid)
{
	for (int i = 0; i < tr->nr; i++)
		if (tr->t[i].pid == pid)
			return i;
	return -1;
}

static bool in_tree(const struct rst_tree *tr, pid_t pid)
{
	return task_index(tr, pid) >= 0;
}

static const struct rst_helper *helper_of(const struct rst_tree *tr, pid_t pgid)
{
	for (int i = 0; i < tr->nr_helpers; i++)
		if (tr->helpers[i].pid == pgid)
			return &tr->helpers[i];
	return NULL;
}

/* The helper that forks task j into its session (one whose leader exited,
 * not its parent's), or -1: its parent forks it. */
static int session_forker(const struct rst_tree *tr, int j)
{
	const struct rst_ctx *rc = &tr->t[j];
	for (int h = 0; h < tr->nr_helpers; h++)
		if (tr->helpers[h].session && tr->helpers[h].pid == (pid_t)rc->pe->sid &&
		    tr->helpers[h].creator == rc->parent)
			return h;
	return -1;
}

/* A file of /proc/PID where PID is a process of the tree (or a helper
 * holding a dead one's pid): its PID, or 0. It can only be opened once
 * that process is there. */
static pid_t tree_proc_pid(const struct rst_tree *tr, const FileEntry *fe)
{
	char *end;

	if (fe->type != FD_TYPES__REG || !fe->reg || !fe->reg->name || strncmp(fe->reg->name, "/proc/", 6))
		return 0;
	long pid = strtol(fe->reg->name + 6, &end, 10);
	if (end == fe->reg->name + 6 || (*end && *end != '/') || pid <= 0 ||
	    (!in_tree(tr, pid) && !helper_of(tr, pid)))
		return 0;
	return pid;
}

/* The processes of the tree are all being made: one named by a file is
 * there soon (a grandchild is forked by its own parent, in parallel). */
static int wait_for_process(pid_t pid, const char *what)
{
	char dir[32];

	snprintf(dir, sizeof(dir), "/proc/%d", pid);
	for (int ms = 0; ms < READY_TIMEOUT_MS; ms++) {
		if (access(dir, F_OK) == 0)
			return 0;
		usleep(1000);
	}
	pr_err("%s: process %d of the tree, which it names, did not come", what, pid);
	return -1;
}

/* Opens the file of fdi into the pool, unless an ancestor did. The files
 * of /proc/PID of the tree's processes are opened late, once this task
 * forked its children (before, none else). */
static int pool_open_one(struct rst_tree *tr, int self, pid_t pid, const FdinfoEntry *fdi, int idx, bool late)
{
	if (idx < 0) {
		pr_err("image fdinfo: fd %u refers to a missing file %u", fdi->fd, fdi->id);
		return -1;
	}
	const FileEntry *fe = tr->files.e[idx];
	int at = files_pool_at(&tr->files, idx), opener = tr->pool_opener[idx];
	/* another's to open (a descendant's, or its own process's): a ghost
	 * it needs is made by the root, shared by all */
	if (opener != 0 && opener != self)
		return !late && self == 0 ? files_make_path(&tr->files, fdi->id) : 0;
	pid_t named = tree_proc_pid(tr, fe);
	if ((named != 0) != late)
		return 0;
	if (fcntl(at, F_GETFD) >= 0)
		return 0;	/* inherited from an ancestor, or opened already */
	snprintf(tr->files.who, sizeof(tr->files.who), "fd %u of pid %d", fdi->fd, pid);
	if (named && wait_for_process(named, tr->files.who) < 0)
		return -1;
	int inherited = rst_inherited_fd(tr->o, &tr->files, fe);
	if (inherited >= 0) {
		if (dup2(inherited, at) < 0) {
			pr_perror("can't place inherited fd %d for file %u", inherited, fdi->id);
			return -1;
		}
		return 0;
	}
	int fd = files_open(&tr->files, fe, fdi->flags);
	if (fd < 0)
		return -1;
	if (dup2(fd, at) < 0) {
		pr_perror("can't place file %u in the pool", fdi->id);
		close(fd);
		return -1;
	}
	/* opened right at its place (the lowest free fd was it) */
	if (fd != at)
		close(fd);
	const ProtobufCEnumValue *kind = protobuf_c_enum_descriptor_get_value(&fd_types__descriptor, fe->type);
	pr_debug("%s: file %u (%s) opened into the pool at %d", tr->files.who, fdi->id, kind ? kind->name : "?", at);
	return 0;
}

static int pool_open(struct rst_tree *tr, int idx, bool late)
{
	for (int j = 0; j < tr->nr; j++) {
		if (tr->t[j].zombie || !rst_in_subtree(tr, idx, j))
			continue;
		for (int i = 0; i < tr->t[j].nr_fdinfo; i++)
			if (pool_open_one(tr, idx, tr->t[j].pid, tr->t[j].fdinfo[i], rst_fd_file(&tr->t[j], i), late) < 0)
				return -1;
		if (late)
			continue;
		/* a deleted working directory, made once and shared the same way */
		if (tr->t[j].fs && files_make_path(&tr->files, tr->t[j].fs->cwd_id) < 0)
			return -1;
		/* files made for mappings (ghosts, memfds) are shared the same way */
		for (size_t v = 0; tr->t[j].mm && v < tr->t[j].mm->n_vmas; v++) {
			const VmaEntry *e = tr->t[j].mm->vmas[v];
			if ((e->status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) &&
			    files_make_path(&tr->files, e->shmid) < 0)
				return -1;
		}
	}
	return 0;
}

static int fd_in_range(const struct rst_ctx *rc, const FdinfoEntry *fdi)
{
	if (fdi->fd < (uint32_t)rc->service_base)
		return 0;
	pr_err("image fdinfo: fd %u out of range", fdi->fd);
	return -1;
}

/* A copy of from at fdi's number, with its fd flags. */
static int dup_to(int from, const FdinfoEntry *fdi)
{
	if (dup2(from, fdi->fd) < 0) {
		pr_perror("can't install fd %u", fdi->fd);
		return -1;
	}
	return fcntl(fdi->fd, F_SETFD, fdi->flags & FD_CLOEXEC);
}

/* fd moved to fdi's number (opened right there: only its flags). */
static int place_fd(int fd, const FdinfoEntry *fdi)
{
	if (fd == (int)fdi->fd)
		return fcntl(fd, F_SETFD, fdi->flags & FD_CLOEXEC);
	int ret = dup_to(fd, fdi);
	close(fd);
	return ret;
}

/* Own file fdi of rc, at its number: opened, or dup'ed from *first, its
 * first fd (-1: none yet). */
static int open_own_one(struct rst_tree *tr, struct rst_ctx *rc, const FdinfoEntry *fdi, int *first)
{
	if (*first >= 0)
		return dup_to(*first, fdi);
	snprintf(tr->files.who, sizeof(tr->files.who), "fd %u of pid %d", fdi->fd, rc->pid);
	int fd = files_open(&tr->files, files_find(&tr->files, fdi->id), fdi->flags);
	if (fd < 0 || place_fd(fd, fdi) < 0)
		return -1;
	*first = fdi->fd;
	return 0;
}

/* The files no other process uses, opened by this one straight to their
 * fds: before the others come from the pool, while the fds below the
 * service range hold nothing of ours (kinds keep what they make above
 * the pool: files_keep_fd), and before our root and working directory
 * change (the images' paths are the dumper's). A file with several fds
 * (dups) is opened at its first, the others dup'ed from it. */
static int open_own(struct rst_tree *tr, struct rst_ctx *rc)
{
	int *first = NULL, ret = 0;
	for (int i = 0; ret == 0 && i < rc->nr_fdinfo; i++) {
		const FdinfoEntry *fdi = rc->fdinfo[i];
		int idx = rst_fd_file(rc, i);
		if (idx < 0 || files_pool_at(&tr->files, idx) >= 0)
			continue;	/* the pool's (a missing file: reported there) */
		if (!first) {
			if (!(first = malloc(tr->files.nr * sizeof(*first)))) {
				pr_err("pid %d: out of memory opening its files", rc->pid);
				return -1;
			}
			memset(first, 0xff, tr->files.nr * sizeof(*first));	/* -1 */
		}
		ret = fd_in_range(rc, fdi) < 0 ? -1 : open_own_one(tr, rc, fdi, &first[idx]);
	}
	free(first);
	return ret;
}

static int install_fds(struct rst_tree *tr, struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_fdinfo; i++) {
		const FdinfoEntry *fdi = rc->fdinfo[i];
		int idx = rst_fd_file(rc, i);
		if (idx < 0) {
			pr_err("image fdinfo: fd %u refers to a missing file %u", fdi->fd, fdi->id);
			return -1;
		}
		int from = files_pool_at(&tr->files, idx);
		if (from < 0)
			continue;	/* opened already (open_own) */
		if (fd_in_range(rc, fdi) < 0 || dup_to(from, fdi) < 0)
			return -1;
	}
	return 0;
}

/* Closes every fd below the service range that the image doesn't have
 * (the first of the fd table's, if it is shared). */
static void close_foreign_fds(const struct rst_ctx *rc)
{
	/* which to keep, marked once: a scan of the fdinfos for each fd was
	 * quadratic (10,000 fds: a second); without memory, the scan */
	char *keep = calloc(rc->fdt_base > 0 ? rc->fdt_base : 1, 1);
	for (int i = 0; keep && i < rc->nr_fdinfo; i++)
		if (rc->fdinfo[i]->fd < (uint32_t)rc->fdt_base)
			keep[rc->fdinfo[i]->fd] = 1;
	for (int fd = 0; fd < rc->fdt_base; fd++) {
		bool kept = keep && keep[fd];
		for (int i = 0; !keep && i < rc->nr_fdinfo && !kept; i++)
			kept = rc->fdinfo[i]->fd == (uint32_t)fd;
		if (!kept)
			close(fd);
	}
	free(keep);
}

static int open_service(const char *what, int fd, int at)
{
	if (fd < 0)
		return -1;
	if (dup2(fd, at) < 0) {
		pr_perror("can't place the %s fd", what);
		return -1;
	}
	if (fd != at)
		close(fd);
	return at;
}

/* Its own /proc files (task_main opened them), at their service fds. */
static int own_proc_fds(struct rst_ctx *rc)
{
	if ((rc->oom_open >= 0 && open_service("oom_score_adj", rc->oom_open, rc->oom_fd) < 0) ||
	    (rc->loginuid_open >= 0 && open_service("loginuid", rc->loginuid_open, rc->loginuid_fd) < 0))
		return -1;
	return 0;
}

/* The service fds of rc, made in this process: itself, or a member of
 * its fd table (then the log stays ours, which it shares). The sync
 * socket is taken from sync_src first, and kept clear of where the log
 * goes (it may be there now). */
static int service_fds(struct rst_tree *tr, struct rst_ctx *rc, int sync_src, bool own_log)
{
	int next = rc->log_fd;
	int sync = fcntl(sync_src, F_DUPFD_CLOEXEC, rc->service_end);
	if (sync < 0) {
		pr_perror("pid %d: can't keep the sync socket", rc->pid);
		return -1;
	}
	/* our own logging must survive the fds being replaced */
	if ((own_log && log_move_fds(&next) < 0) || open_service("sync", sync, rc->sync_fd) < 0)
		return -1;
	/* the images are stasis's to read, not the client's: opened before
	 * the fork (restore.c) */
	if (open_service("pages image", dup(rc->pages_img), rc->pages_fd) < 0)
		return -1;
	/* a member of our table opens its own /proc files itself (task_main) */
	if (own_log && own_proc_fds(rc) < 0)
		return -1;
	if (!files_find(rc->files, rc->mm->exe_file_id)) {
		pr_err("image mm-%d.img: its executable (file %u) is not in files.img", rc->pid,
		       rc->mm->exe_file_id);
		return -1;
	}
	snprintf(rc->files->who, sizeof(rc->files->who), "executable of pid %d", rc->pid);
	if (open_service("executable", files_open_path(rc->files, rc->mm->exe_file_id, O_RDONLY), rc->exe_fd) < 0)
		return -1;
	return rst_mem_open_fds(rc);
}

/* Our service fds. A parent sharing its fd table forked us once its fds
 * had the image's numbers, which may have replaced tr->sync[1]: our sync
 * socket comes from the parent's then. */
static int child_service_fds(struct rst_tree *tr, struct rst_ctx *rc)
{
	const struct rst_ctx *p = rc->parent >= 0 ? &tr->t[rc->parent] : NULL;
	return service_fds(tr, rc, p && p->shares_fdt ? p->sync_fd : tr->sync[1], true);
}

/* The first process of a shared fd table makes the service fds of the
 * others, before its fds take the image's numbers: they are forked into
 * the table after that, and find theirs in place. */
static int fdt_members_service_fds(struct rst_tree *tr, int idx)
{
	for (int j = 0; j < tr->nr; j++)
		if (j != idx && tr->t[j].shares_fdt && tr->t[j].fdt_root == idx &&
		    service_fds(tr, &tr->t[j], tr->sync[1], false) < 0)
			return -1;
	return 0;
}

/* Session first (it must come before children are made), then group. A
 * session or group led from outside the tree is not ours to recreate: the
 * task stays in stasis's. With --shell-job the root stays in stasis's
 * session (the user's terminal is its controlling terminal); a root that
 * led its group (a session leader did) leads it again there, as CRIU does,
 * so kill(0, sig) does not reach stasis's group (the terminal then gives
 * the root's group the foreground: tty_restore_ctty); one that didn't
 * stays in stasis's group. */
static int child_session(const struct rst_tree *tr, const struct rst_ctx *rc)
{
	pid_t sid = rc->pe->sid, pgid = rc->pe->pgid;
	bool job = rc->o->shell_job;

	if (job && rc->parent < 0) {
		if (pgid != rc->pid || getpgid(0) == rc->pid)
			return 0;
		if (setpgid(0, 0) < 0) {
			pr_perror("pid %d: can't lead its process group again", rc->pid);
			return -1;
		}
		return 0;
	}
	if (sid == rc->pid) {
		if (getsid(0) != rc->pid && setsid() < 0) {
			pr_perror("pid %d: can't become a session leader", rc->pid);
			return -1;
		}
		return 0;
	}
	if (getpgid(0) == pgid)
		return 0;
	if (setpgid(0, pgid) == 0)
		return 0;
	if (pgid == rc->pid || in_tree(tr, pgid) || helper_of(tr, pgid)) {
		pr_perror("pid %d: can't join process group %d", rc->pid, pgid);
		return -1;
	}
	/* a group led from outside, not in our session: keep stasis's */
	pr_debug("pid %d: stays out of process group %d (not reachable)", rc->pid, pgid);
	return 0;
}

static int child_fs(const struct rst_ctx *rc)
{
	const FileEntry *cwd = files_find(rc->files, rc->fs->cwd_id);
	const FileEntry *root = files_find(rc->files, rc->fs->root_id);
	if (!cwd || !cwd->reg || !root || !root->reg) {
		pr_err("image fs-%d.img refers to missing files", rc->pid);
		return -1;
	}
	/* By the files of the tree, which recreate a deleted directory; a
	 * path-only fd, as chdir needs no read permission. Opened before the
	 * chroot: the image's paths are the dumper's, outside the new root
	 * (a chrooted process's cwd may even lie outside its root). */
	int fd = files_open_path(rc->files, rc->fs->cwd_id, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (strcmp(root->reg->name, "/") && chroot(root->reg->name) < 0) {
		pr_perror("pid %d: can't change root to %s", rc->pid, root->reg->name);
		close(fd);
		return -1;
	}
	int ret = fchdir(fd);
	if (ret < 0)
		pr_perror("pid %d: can't change directory to %s", rc->pid, cwd->reg->name);
	close(fd);
	if (ret < 0)
		return -1;
	umask(rc->fs->has_umask ? rc->fs->umask : 022);
	return 0;
}

/* Tells stasis we are ready (or not); the kernel adds our pid as stasis
 * sees it. */
static void report(int fd, int idx, int ok)
{
	struct ready_msg m = { idx, ok };
	struct ucred cred = { getpid(), getuid(), getgid() };
	char cbuf[CMSG_SPACE(sizeof(cred))];
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(cred));
	memcpy(CMSG_DATA(c), &cred, sizeof(cred));
	ssize_t r;
	while ((r = sendmsg(fd, &mh, 0)) < 0 && errno == EINTR)
		;
	/* In the tree's user namespace our ids may have no name (the kernel
	 * takes none): it adds them itself, stasis's socket asks for them. */
	if (r < 0 && errno == EINVAL) {
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (sendmsg(fd, &mh, 0) < 0 && errno == EINTR)
			;
	}
}

static void task_main(struct rst_tree *tr, int idx);

/* The process that forked us, as it saw itself before the fork: if it
 * died before our parent-death signal was set, we would never get it. */
static pid_t forker;

static void die_with_parent(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (forker && getppid() != forker)
		_exit(1);
}

/* A session's helper: the session again, then the creator's children of
 * it, forked as the creator would have forked them (it is their parent:
 * CLONE_PARENT), from the copy of the creator this helper is. */
static int helper_session(struct rst_tree *tr, int h)
{
	if (setsid() < 0) {
		pr_perror("can't make session %d again", tr->helpers[h].pid);
		return -1;
	}
	forker = getppid();	/* their parent, as they check it */
	for (int j = 0; j < tr->nr; j++) {
		if (session_forker(tr, j) != h)
			continue;
		pid_t pid = clone_with_pid(tr->t[j].pid, CLONE_PARENT, tr->o);
		if (pid == 0)
			task_main(tr, j);
		if (pid < 0)
			return -1;
	}
	return 0;
}

static void helper_main(struct rst_tree *tr, int h)
{
	const struct rst_helper *hp = &tr->helpers[h];

	die_with_parent();
	/* a session's forks processes of the tree: it lends as they do */
	if (rst_client_become(tr, hp->session) < 0) {
		report(tr->sync[1], tr->nr + h, 0);
		_exit(1);
	}
	die_with_parent();	/* again: a change of ids resets it */
	int ret = 0;
	if (hp->session)
		ret = helper_session(tr, h);
	else if (!hp->dead_pid && (ret = setpgid(0, 0)) < 0)
		pr_perror("can't lead process group %d", hp->pid);
	if (ret < 0) {
		report(tr->sync[1], tr->nr + h, 0);
		_exit(1);
	}
	prctl(PR_SET_NAME, "stasis-helper");
	/* it uses no file: what it inherited of the pool is not its to hold */
	if (tr->files.keep_base > tr->pool_base)
		syscall(SYS_close_range, tr->pool_base, tr->files.keep_base - 1, 0);
	report(tr->sync[1], tr->nr + h, 1);
	for (;;)
		pause();	/* until stasis kills us */
}

/* Helpers go first: the creator's children may be members. */
static int fork_helpers(struct rst_tree *tr, int creator)
{
	for (int h = 0; h < tr->nr_helpers; h++) {
		if (tr->helpers[h].creator != creator)
			continue;
		forker = getpid();
		pid_t pid = clone_with_pid(tr->helpers[h].pid, 0, creator >= 0 ? tr->o : NULL);
		if (pid == 0)
			helper_main(tr, h);
		if (pid < 0)
			return -1;
		/* here too, so the group exists before any member looks for it;
		 * not for a session's, whose setsid() a group would forbid */
		if (!tr->helpers[h].dead_pid && !tr->helpers[h].session)
			setpgid(pid, pid);
	}
	return 0;
}

/* Our children with a table of their own (a copy of ours), or those that
 * share ours (CLONE_FILES). */
static int fork_children(struct rst_tree *tr, int idx, bool sharing)
{
	for (int j = 0; j < tr->nr; j++) {
		if (tr->t[j].parent != idx || tr->t[j].shares_fdt != sharing || session_forker(tr, j) >= 0 ||
		    tr->t[j].session_by >= 0)
			continue;
		forker = getpid();
		pid_t pid = clone_with_pid(tr->t[j].pid, sharing ? CLONE_FILES : 0, tr->o);
		if (pid == 0)
			task_main(tr, j);
		if (pid < 0)
			return -1;
		/* A new group is made here too (the child does the same), so a
		 * sibling forked next finds it; not for a future session leader,
		 * whose setsid() a group would forbid. */
		const PstreeEntry *pe = tr->t[j].pe;
		if (pe->pgid == pe->pid && pe->sid != pe->pid)
			setpgid(pid, pid);
	}
	return 0;
}

/* A leader whose session has siblings of ours in it (reparented to our
 * parent): the session first, then they are forked into it as our parent
 * would have forked them (CLONE_PARENT), before we change anything of
 * what we have from it. Our ids are still our parent's, lent ones raised. */
static int fork_session_siblings(struct rst_tree *tr, int idx)
{
	for (int j = 0; j < tr->nr; j++) {
		if (tr->t[j].session_by != idx)
			continue;
		if (getsid(0) != tr->t[idx].pid && setsid() < 0) {
			pr_perror("pid %d: can't become a session leader", tr->t[idx].pid);
			return -1;
		}
		pid_t pid = clone_with_pid(tr->t[j].pid, CLONE_PARENT, NULL);
		if (pid == 0)
			task_main(tr, j);	/* forker is our parent still: theirs */
		if (pid < 0)
			return -1;
	}
	return 0;
}

static void zombie_main(struct rst_tree *tr, struct rst_ctx *rc)
{
	int status = rc->core[0]->tc->exit_code;
	child_session(tr, rc);
	if (rc->core[0]->tc->comm)
		prctl(PR_SET_NAME, rc->core[0]->tc->comm);
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		prctl(PR_SET_DUMPABLE, 0);	/* no core file for a replayed death */
		kill(getpid(), WTERMSIG(status));
	}
	_exit(WEXITSTATUS(status));
}

static void task_main(struct rst_tree *tr, int idx)
{
	struct rst_ctx *rc = &tr->t[idx];

	/* If our parent dies before the tree is complete, so do we. */
	die_with_parent();
	if (fork_session_siblings(tr, idx) < 0) {
		report(tr->sync[1], idx, 0);
		_exit(1);
	}
	/* The root joins the namespaces made for the tree in its user
	 * namespace (but for an init's, which did) */
	if (idx == 0 && !tr->has_init && ns_restore_enter(&tr->ns) < 0) {
		report(tr->sync[1], idx, 0);
		_exit(1);
	}
	/* The root makes the tree's cgroup namespace, before anything else:
	 * what it forks is in it. The others drop its fds. */
	if ((idx == 0 ? cg_rst_ns_enter(&tr->cg) : (cg_rst_ns_close(&tr->cg), 0)) < 0) {
		report(tr->sync[1], idx, 0);
		_exit(1);
	}
	/* Its own /proc files, where only the process may write (loginuid)
	 * or its rights are weighed (oom_score_adj), opened while it may
	 * still open them: a non-root client's process is not dumpable
	 * until the end, which makes them root's. Above the pool, where
	 * fds are taken as they come (restore.c, plan_pool). */
	rc->oom_open = own_proc_open("oom_score_adj", tr->files.keep_base);
	rc->loginuid_open = own_proc_open("loginuid", tr->files.keep_base);
	/* into our mount namespace, if it is not our parent's (nested in the
	 * tree's), before anything of ours is opened */
	if (idx > 0 && !rc->zombie &&
	    ns_restore_enter_mnt(&tr->ns, rc->pid, rc->mnt_ns_id, tr->t[rc->parent].mnt_ns_id) < 0) {
		report(tr->sync[1], idx, 0);
		_exit(1);
	}
	/* The root made the tree's own namespaces (but for an init's): their state */
	if (idx == 0 && !tr->has_init && ns_restore_fill(&tr->ns) < 0) {
		report(tr->sync[1], idx, 0);
		_exit(1);
	}
	/* A non-root client's process is the client before it does anything
	 * (restore/unpriv.c); a zombie needs nothing lent. */
	if (rst_client_become(tr, !rc->zombie) < 0) {
		report(tr->sync[1], idx, 0);
		_exit(1);
	}
	die_with_parent();	/* again: a change of ids resets it */
	if (rc->zombie)
		zombie_main(tr, rc);
	/* A member of a shared fd table finds its fds, and its service fds,
	 * in place (made by the table's first process before it forked the
	 * table's other members). */
	bool own_fdt = !rc->shares_fdt;
	int sync = own_fdt ? tr->sync[1] : rc->sync_fd;
	/* premap after the pool: a written private mapping of a deleted
	 * file needs its ghost, made there. The files of /proc/PID of the
	 * tree's processes are opened once our children are forked. */
	if ((!own_fdt && own_proc_fds(rc) < 0) || child_session(tr, rc) < 0 ||
	    (own_fdt && idx > 0 && rst_pool_drop(tr, idx, POOL_START) < 0) ||
	    pool_open(tr, idx, false) < 0 || rst_premap(tr, rc) < 0 ||
	    files_before_fork(rc->files, rc->pid, rc->pe->sid, rc->pe->pgid) < 0 ||
	    fork_helpers(tr, idx) < 0 || fork_children(tr, idx, false) < 0 || pool_open(tr, idx, true) < 0 ||
	    (own_fdt && (rst_pool_drop(tr, idx, POOL_FORKED) < 0 || child_service_fds(tr, rc) < 0 ||
			 fdt_members_service_fds(tr, idx) < 0 || open_own(tr, rc) < 0))) {
		report(sync, idx, 0);
		_exit(1);
	}
	/* From here our fds take the image's numbers, which may replace
	 * tr->sync[1]: failures are told through our own copy. */
	if (child_fs(rc) < 0 || (own_fdt && install_fds(tr, rc) < 0) ||
	    files_after_install(rc->files, rc->fdinfo, rc->nr_fdinfo, rc->pid) < 0 ||
	    (own_fdt && rst_pool_drop(tr, idx, POOL_INSTALLED) < 0)) {
		report(rc->sync_fd, idx, 0);
		_exit(1);
	}
	if (own_fdt)
		close_foreign_fds(rc);
	/* Last, once its children are forked (with our rights, into a pid
	 * namespace that may not be the tree's user namespace's): into it */
	if (fork_children(tr, idx, true) < 0 ||
	    ns_restore_join_user(&tr->ns, rc->core[0]->thread_core->creds) < 0) {
		report(rc->sync_fd, idx, 0);
		_exit(1);
	}
	report(rc->sync_fd, idx, 1);
	for (;;)
		pause();	/* stasis seizes us here and rebuilds us */
}

/* ---- in stasis ---- */

static int recv_ready(struct rst_tree *tr, int *idx, pid_t *real)
{
	struct ready_msg m;
	struct ucred cred;
	char cbuf[CMSG_SPACE(sizeof(cred))];
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	if (recvmsg(tr->sync[0], &mh, MSG_DONTWAIT) != sizeof(m))
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_CREDENTIALS || m.idx < 0 || m.idx >= tr->nr + tr->nr_helpers)
		return -1;
	memcpy(&cred, CMSG_DATA(c), sizeof(cred));
	*idx = m.idx;
	*real = cred.pid;
	return m.ok ? 0 : -2;
}

/* A process that died before it said it was ready (killed, or crashed
 * while it was being made) would be waited for until the timeout. Its
 * parent, a process of the tree still being made, does not reap it: it
 * shows as a zombie under the pid it was made with, where that is the
 * pid stasis sees (not in a new pid namespace). -1: none seen. */
static int died_unready(const struct rst_tree *tr)
{
	if (tr->new_pidns || tr->has_init)
		return -1;
	for (int i = 0; i < tr->nr; i++) {
		const struct rst_ctx *rc = &tr->t[i];
		if (rc->zombie || rc->real_pid > 0)
			continue;
		char state = proc_state(rc->pid);
		if (state == 'Z' || state == 'X')
			return i;
	}
	return -1;
}

static int wait_all_ready(struct rst_tree *tr, pid_t root)
{
	int want = tr->nr_helpers, got = 0, status;
	for (int i = 0; i < tr->nr; i++)
		want += !tr->t[i].zombie;
	for (int ms = 0; got < want; ) {
		struct pollfd p = { tr->sync[0], POLLIN, 0 };
		int n = poll(&p, 1, 100);
		if (n > 0) {
			int idx;
			pid_t real;
			int r = recv_ready(tr, &idx, &real);
			if (r == -2)
				return -1;	/* the task said why */
			if (r == 0) {
				if (idx < tr->nr) {
					tr->t[idx].real_pid = real;
					pr_debug("pid %d: made, pid %d here", tr->t[idx].pid, real);
				} else {
					tr->helpers[idx - tr->nr].real_pid = real;
					pr_debug("group helper %d: made, pid %d here", tr->helpers[idx - tr->nr].pid, real);
				}
				got++;
			}
			continue;
		}
		ms += 100;
		if (waitpid(root, &status, WNOHANG) == root) {
			pr_err("pid %d: the %s died while the tree was being restored", tr->t[0].pid,
			       tr->has_init ? "init of its pid namespace" : "root of the tree");
			return -1;
		}
		int dead = died_unready(tr);
		if (dead >= 0) {
			pr_err("pid %d died while the tree was being restored, before it was made whole",
			       tr->t[dead].pid);
			return -1;
		}
		if (ms >= READY_TIMEOUT_MS) {
			pr_err("only %d of %d processes of the tree came up in %d s", got, want,
			       READY_TIMEOUT_MS / 1000);
			return -1;
		}
	}
	return 0;
}

int rst_reap_namespace(pid_t root)
{
	int status, root_status = -1;
	for (;;) {
		pid_t p = wait(&status);
		if (p == root)
			root_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (p < 0 && errno == ECHILD)
			return root_status < 0 ? 0 : root_status;
	}
}

/* The init of a --new-pidns restore (when the tree's root was not an
 * init itself): it forks the root, and once stasis says the restore is
 * done it stays as the namespace's reaper (see rst_reap_namespace). If
 * stasis dies first, so does it, and with it the whole namespace. */
static void init_main(struct rst_tree *tr)
{
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close(tr->init_ctl[1]);
	prctl(PR_SET_NAME, "stasis-init");
	if (ns_restore_enter(&tr->ns) < 0 || ns_restore_fill(&tr->ns) < 0 || fork_helpers(tr, -1) < 0)
		_exit(1);
	pid_t root = clone_with_pid(tr->t[0].pid, 0, NULL);
	if (root == 0)
		task_main(tr, 0);
	if (root < 0)
		_exit(1);
	/* The reaper of a non-root client's tree is the client too. */
	if (rst_client_become(tr, false) < 0)
		_exit(1);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (read(tr->init_ctl[0], &c, 1) != 1)
		_exit(1);
	prctl(PR_SET_PDEATHSIG, 0);
	if (write(tr->init_ctl[0], "a", 1) != 1)
		_exit(1);
	/* From here on: a plain reaper. Drop what stasis had open. */
	for (int fd = 0; fd < 1024; fd++)
		close(fd);
	_exit(rst_reap_namespace(root));
}

/* The tree's own network namespace, made by its first process: stasis
 * fills it (or, empty, the caller's setup-namespaces script does, after
 * which it is locked as the dump left it), and only then does the first
 * process go on to make the tree's sockets in it. As CRIU, the namespace
 * scripts run once the namespaces exist, with the first process's pid
 * (an init's under --new-pidns: the tree's root is not made yet; but for
 * a filled namespace they wait for it, as before, restore.c); the lock in
 * the namespace (restored with its firewall, or made here) goes at the
 * end. */
static int net_ready(struct rst_tree *tr)
{
	if (!(tr->ns.flags & CLONE_NEWNET))
		return 0;
	int ret = ns_restore_net(&tr->ns, tr->first);
	tr->netlock.netns_pid = tr->first;
	tr->netlock.locked = !tr->o->empty_net && tr->netlock.method != NETLOCK_SKIP;
	/* the whole namespace is locked: the dump made no rule per connection
	 * (the restore's TCP sockets noted theirs before it knew, and their
	 * removal failed, three errors on a good restore) */
	tr->netlock.nr_conns = 0;
	tr->ns_scripts_run = !tr->has_init || tr->o->empty_net;
	if (ret == 0 && tr->ns_scripts_run)
		ret = action_run(tr->o, ACT_SETUP_NS, tr->first);
	if (ret == 0 && tr->o->empty_net)
		ret = netlock_lock(&tr->netlock);
	if (ret == 0 && tr->ns_scripts_run)
		ret = action_run(tr->o, ACT_POST_SETUP_NS, tr->first);
	ns_restore_net_release(&tr->ns, ret == 0);
	return ret;
}

/* The root, made in the tree's pid namespace by userns_rst_clone_init. */
static void root_main(void *tr)
{
	task_main(tr, 0);
}

static int keep_fd(int fd, void *files)
{
	return files_keep_fd(files, fd, "a namespace of the tree");
}

int rst_tree_fork(struct rst_tree *tr)
{
	int one = 1;
	if (rst_premap_plan(tr) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, tr->sync) < 0 ||
	    setsockopt(tr->sync[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		pr_perror("can't make the restore's sync socket");
		return -1;
	}
	/* above the pool: made after it was planned, the pair would take the
	 * lowest free fds, which may be pool slots, and a slot found open
	 * counts as its file opened (a container's console came back as
	 * this socket) */
	for (int i = 0; i < 2; i++)
		if ((tr->sync[i] = files_keep_fd(&tr->files, tr->sync[i], "the sync socket")) < 0)
			return -1;
	/* a user namespace of the tree's, with its other namespaces in it */
	if (ns_restore_make(&tr->ns, keep_fd, &tr->files) < 0)
		return -1;
	/* the tree's time namespace, if it had one, is made for it now */
	int own_timens = timens_restore_enter(tr->timens, tr->o->unprivileged);
	if (own_timens == -1)
		return -1;
	if (own_timens >= 0 && (own_timens = files_keep_fd(&tr->files, own_timens, "our time namespace")) < 0)
		return -1;	/* (the process ends with the failed restore) */
	if (tr->has_init) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tr->init_ctl) < 0) {
			pr_perror("can't make the init's control socket");
			timens_restore_leave(own_timens);
			return -1;
		}
		for (int i = 0; i < 2; i++)
			if ((tr->init_ctl[i] = files_keep_fd(&tr->files, tr->init_ctl[i], "the init's socket")) < 0) {
				timens_restore_leave(own_timens);
				return -1;
			}
		tr->first = clone3_set_tid(0, CLONE_NEWPID | ns_restore_clone_flags(&tr->ns));
		if (tr->first == 0)
			init_main(tr);
		close(tr->init_ctl[0]);
		if (tr->first < 0)
			pr_perror("can't create a pid namespace");
	} else {
		if (fork_helpers(tr, -1) < 0) {
			timens_restore_leave(own_timens);
			return -1;
		}
		/* swrk's rst_sibling: the root is our client's child, not ours */
		uint64_t flags = tr->new_pidns ? CLONE_NEWPID : tr->o->restore_sibling ? CLONE_PARENT : 0;
		flags |= ns_restore_clone_flags(&tr->ns);
		forker = 0;	/* its parent may not be us (CLONE_PARENT, CLONE_NEWPID) */
		if ((flags & CLONE_NEWPID) && (tr->ns.flags & CLONE_NEWUSER)) {
			tr->ns.mnt.inside_root = true;	/* the tree is born in it */
			for (int i = 0; i < tr->nr; i++)
				tr->t[i].born_inside = true;
			tr->first = userns_rst_clone_init(&tr->ns.urst, &tr->ns.user, tr->t[0].core[0]->thread_core->creds,
							  0, root_main, tr);
		} else
			tr->first = clone_with_pid(tr->t[0].pid, flags, NULL);
		if (tr->first == 0)
			task_main(tr, 0);
		tr->t[0].real_pid = tr->first;
	}
	if (timens_restore_leave(own_timens) < 0 || tr->first < 0 || net_ready(tr) < 0)
		return -1;
	/* The progress line's thread only now: a process with threads can't
	 * go back to its time namespace (setns wants a single thread). The
	 * processes fill their memory from here on (premap.c). */
	progress_show();
	return wait_all_ready(tr, tr->first);
}

int rst_tree_done(struct rst_tree *tr)
{
	char c;
	if (!tr->has_init)
		return 0;
	if (write(tr->init_ctl[1], "g", 1) != 1 || read(tr->init_ctl[1], &c, 1) != 1) {
		pr_err("the init of the new pid namespace died");
		return -1;
	}
	close(tr->init_ctl[1]);
	return 0;
}

/* Waits for the killed threads of a task we still trace. Only the thread
 * that seized them may do it: once a rebuild thread has exited, a wait
 * by another thread on its former tracees can sleep forever (the kernel
 * hands them to their real parents without waking us). */
void rst_task_reap_traced(struct rst_ctx *rc)
{
	int status;
	for (int t = rc->inj.nr_th - 1; t >= 0; t--) {
		if (!rc->inj.th || !rc->inj.th[t].attached)
			continue;
		while (waitpid(rc->inj.th[t].pid, &status, __WALL) < 0 && errno == EINTR)
			;
		rc->inj.th[t].attached = false;
	}
}

void rst_tree_kill(struct rst_tree *tr)
{
	int status;
	for (int h = 0; h < tr->nr_helpers; h++)
		if (tr->helpers[h].real_pid > 0) {
			kill(tr->helpers[h].real_pid, SIGKILL);
			if (tr->helpers[h].creator < 0 && !tr->has_init)
				waitpid(tr->helpers[h].real_pid, &status, 0);
		}
	/* Children die with their parents (PDEATHSIG) until they are rebuilt;
	 * the ones already rebuilt are killed one by one. */
	for (int i = tr->nr - 1; i >= 0; i--)
		if (tr->t[i].real_pid > 0)
			kill(tr->t[i].real_pid, SIGKILL);
	for (int i = 0; i < tr->nr; i++)
		rst_task_reap_traced(&tr->t[i]);
	if (tr->first > 0) {
		kill(tr->first, SIGKILL);
		while (waitpid(tr->first, &status, 0) < 0 && errno == EINTR)
			;
	}
}

/* ---- helpers for groups whose leader exited ---- */

static bool number_in_use(pid_t n)
{
	return kill(n, 0) == 0 || errno != ESRCH || kill(-n, 0) == 0;
}

static int add_helper(struct rst_tree *tr, struct rst_helper h)
{
	struct rst_helper *n = realloc(tr->helpers, (tr->nr_helpers + 1) * sizeof(*n));
	if (!n) {
		pr_err("out of memory planning helper processes");
		return -1;
	}
	tr->helpers = n;
	tr->helpers[tr->nr_helpers++] = h;
	return 0;
}

/* A dead process whose /proc entry a file of the tree is: a helper of
 * the root holds its pid while the files are opened, and dies with the
 * other helpers, leaving the entry unhashed as it was (as CRIU). */
static int plan_dead_pids(struct rst_tree *tr)
{
	const pid_t *dead;
	int n = files_dead_pids(&tr->files, &dead);

	for (int i = 0; i < n; i++) {
		pid_t pid = dead[i];
		if (in_tree(tr, pid))
			continue;	/* the pid is a process of the tree's again */
		if (helper_of(tr, pid)) {
			pr_err("pid %d: a dead process whose /proc entry is open, and a process "
			       "group: stasis can't hold both", pid);
			return -1;
		}
		if (!tr->new_pidns && number_in_use(pid)) {
			pr_err("pid %d, a dead process whose /proc entry the tree has open, is in use "
			       "now: its entry can't be opened again (restore with --new-pidns)", pid);
			return -1;
		}
		if (add_helper(tr, (struct rst_helper){ pid, tr->has_init ? -1 : 0, 0, true, false }) < 0)
			return -1;
		pr_info("pid %d: a helper holds it for its /proc entry", pid);
	}
	return 0;
}

/* A process in a session other than its parent's, whose leader exited (a
 * daemon's double fork, under a subreaper): a helper forked by its parent
 * makes the session again and forks it there. One helper has one parent:
 * the session's other such processes must be children of the same one. */
static int plan_session(struct rst_tree *tr, int i)
{
	const struct rst_ctx *rc = &tr->t[i];
	pid_t s = rc->pe->sid;

	/* the root's session is stasis's; a leader makes its own; an heir of
	 * its parent's is in it by the fork */
	if (rc->parent < 0 || !s || s == rc->pid || s == (pid_t)tr->t[rc->parent].pe->sid)
		return 0;
	int l = task_index(tr, s);
	if (l >= 0) {
		const struct rst_ctx *lc = &tr->t[l];
		if (lc->parent != rc->parent || lc->zombie || lc->shares_fdt || rc->shares_fdt) {
			pr_err("pid %d: its session %d is not its parent's, and its leader %d is a process of the "
			       "tree but no sibling of its that has an fd table of its own: stasis can't make "
			       "that again", rc->pid, s, s);
			return -1;
		}
		pr_info("pid %d: its session's leader %d, a sibling, forks it into it", rc->pid, s);
		tr->t[i].session_by = l;
		return 0;
	}
	if (!tr->new_pidns && number_in_use(s))
		return 0;	/* led from outside: it stays in its parent's */
	const struct rst_helper *h = helper_of(tr, s);
	if (h && h->creator == rc->parent)
		return 0;
	if (h || rc->shares_fdt) {
		pr_err("pid %d: its session %d, whose leader exited, %s: stasis can't make that again",
		       rc->pid, s, h ? "has processes under other parents too" : "is not that of the parent "
		       "whose fd table it shares");
		return -1;
	}
	pr_info("session %d lost its leader: a helper forked by pid %d makes it again", s,
		tr->t[rc->parent].pid);
	return add_helper(tr, (struct rst_helper){ s, rc->parent, 0, false, true });
}

/* A group number no tree process has: if it is free here, a helper takes
 * it; if it is in use (a live group outside the tree), members try to
 * join it as they are. A session's helper holds its group too. */
int rst_helpers_plan(struct rst_tree *tr)
{
	tr->has_init = tr->new_pidns && tr->t[0].pid != 1;
	for (int i = 0; i < tr->nr; i++)
		tr->t[i].session_by = -1;
	for (int i = 0; i < tr->nr; i++)
		if (plan_session(tr, i) < 0)
			return -1;
	for (int i = 0; i < tr->nr; i++) {
		pid_t g = tr->t[i].pe->pgid;
		if (!g || in_tree(tr, g) || helper_of(tr, g) || (tr->o->shell_job && i == 0))
			continue;
		if (!tr->new_pidns && number_in_use(g))
			continue;
		if (tr->t[i].parent < 0 && tr->new_pidns && !tr->has_init) {
			pr_warn("pid %d: its process group %d can't be recreated", tr->t[i].pid, g);
			continue;
		}
		if (session_forker(tr, i) >= 0 || tr->t[i].session_by >= 0) {
			pr_err("pid %d: its process group %d lost its leader, in a session other than its "
			       "parent's: stasis can't make that again", tr->t[i].pid, g);
			return -1;
		}
		if (add_helper(tr, (struct rst_helper){ g, tr->t[i].parent, 0, false, false }) < 0)
			return -1;
		pr_info("process group %d lost its leader: a helper will hold it", g);
	}
	return plan_dead_pids(tr);
}

/* Helpers die before their creators are seized, so the SIGCHLD finds a
 * creator still running stasis code (and ignoring it). */
int rst_helpers_kill(struct rst_tree *tr)
{
	for (int h = 0; h < tr->nr_helpers; h++)
		kill(tr->helpers[h].real_pid, SIGKILL);
	for (int h = 0; h < tr->nr_helpers; h++) {
		for (int ms = 0; ms < PID_FREE_WAIT_MS; ms++) {
			char state = proc_state(tr->helpers[h].real_pid);
			if (!state || state == 'Z')
				break;
			nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
		}
		if (tr->helpers[h].creator < 0 && !tr->has_init)
			waitpid(tr->helpers[h].real_pid, NULL, 0);
	}
	return 0;
}

/* The creator reaps its helper's zombie itself, by an injected wait4. */
int rst_helpers_reap(struct rst_tree *tr, struct rst_ctx *rc)
{
	int idx = rc - tr->t;
	for (int h = 0; h < tr->nr_helpers; h++) {
		if (tr->helpers[h].creator != idx)
			continue;
		struct inj_call c = INJ(SYS_wait4, tr->helpers[h].pid, 0, __WALL);
		if (inj_must(&rc->inj, "reap of a group helper", NULL, c) < 0)
			return -1;
	}
	return 0;
}
