/* Seizing a whole tree: every thread of every process under the root,
 * each stopped by ptrace. Threads are listed again until a listing brings
 * nothing new (a thread may be cloning while we seize its siblings); once a
 * process's threads are all stopped it can make no new children, so its
 * children list is final. Zombies are recorded, not seized. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dump/dump.h"
#include "task/mrelease.h"
#include "util/log.h"
#include "util/grow.h"

static struct dump_ctx *tree_add(struct dump_tree *tr, pid_t pid, int parent)
{
	if (grow_array(tr->t, tr->cap, tr->nr + 1, 16) < 0) {
		pr_err("out of memory listing the tree");
		return NULL;
	}
	struct dump_ctx *dc = &tr->t[tr->nr++];
	memset(dc, 0, sizeof(*dc));
	dc->o = tr->o;
	dc->dirfd = tr->dirfd;
	dc->files = &tr->files;
	dc->bufs = &tr->bufs;
	dc->cg = &tr->cg;
	dc->freezer = &tr->freezer;
	dc->stats = &tr->stats;
	dc->shmem = &tr->shmem;
	dc->ps_sk = tr->ps_sk;
	dc->parentfd = tr->parentfd;
	dc->ck = &tr->ck;
	dc->id = tr->nr;
	dc->pid = pid;
	inj_init(&dc->inj, pid, "get");
	dc->parent = parent;
	dc->track_task_fd = -1;
	dc->uffd = -1;
	return dc;
}

static bool have_thread(const struct dump_ctx *dc, pid_t tid)
{
	for (int i = 0; i < dc->inj.nr_th; i++)
		if (dc->inj.th[i].pid == tid)
			return true;
	return false;
}

static int seize_thread(struct dump_ctx *dc, pid_t tid)
{
	pid_t *ns = realloc(dc->ns_tid, (dc->inj.nr_th + 1) * sizeof(*ns));
	if (!ns) {
		pr_err("pid %d: out of memory seizing thread %d", dc->pid, tid);
		return -1;
	}
	dc->ns_tid = ns;
	bool frozen = freezer_take(dc->freezer, tid);
	if (inj_seize_thread(&dc->inj, tid, frozen) < 0) {
		/* a thread that exited under us is simply gone */
		if (tid != dc->pid && kill(tid, 0) < 0 && errno == ESRCH)
			return 0;
		return -1;
	}
	dc->seized = true;
	return 1;
}

/* Seizes threads until a fresh listing holds none we don't have. The main
 * thread (tid == pid) is seized first and stays first. */
static int seize_threads(struct dump_ctx *dc)
{
	int added;
	if (seize_thread(dc, dc->pid) <= 0)
		return -1;
	do {
		pid_t *tids;
		int nr;
		added = 0;
		if (proc_list_threads(dc->pid, &tids, &nr) < 0)
			return -1;
		for (int i = 0; i < nr; i++) {
			if (have_thread(dc, tids[i]))
				continue;
			int r = seize_thread(dc, tids[i]);
			if (r < 0) {
				free(tids);
				return -1;
			}
			added += r;
		}
		free(tids);
	} while (added);
	dc->stopped = dc->inj.th[0].group_stop_sig != 0;
	dc->stop_sig = dc->inj.th[0].group_stop_sig;
	for (int i = 1; i < dc->inj.nr_th && dc->stopped; i++)
		dc->inj.th[i].group_stop_sig = dc->stop_sig;
	return dc->stopped ? infect_unstop(dc->inj.th, dc->inj.nr_th, dc->pid) : 0;
}

/* Lets go of the threads of a process we could not seize whole. */
static void release_partial(struct dump_ctx *dc)
{
	if (dc->stopped)
		kill(dc->pid, dc->stop_sig);
	for (int i = 0; i < dc->inj.nr_th; i++)
		if (dc->inj.th[i].attached)
			infect_cure(&dc->inj.th[i]);
	dc->inj.nr_th = 0;
	dc->seized = false;
}

static int translate_ids(struct dump_tree *tr, struct dump_ctx *dc)
{
	int lvl = tr->ns_level;
	dc->ns_pid = proc_ns_pid(dc->pid, lvl);
	for (int i = 0; i < dc->inj.nr_th; i++)
		dc->ns_tid[i] = proc_ns_pid(dc->inj.th[i].pid, lvl);
	dc->ns_ppid = dc->parent >= 0 ? tr->t[dc->parent].ns_pid : 0;
	/* A group or session led from outside the namespace is 0 there, as
	 * getsid() inside tells; restore then leaves the task in its own. */
	dc->ns_pgid = lvl ? proc_ns_pid(dc->stat.pgid, lvl) : dc->stat.pgid;
	dc->ns_sid = lvl ? proc_ns_pid(dc->stat.sid, lvl) : dc->stat.sid;
	if (!dc->ns_pid) {
		pr_err("pid %d: can't tell its pid in the tree's namespace", dc->pid);
		return -1;
	}
	return 0;
}

static int seize_process(struct dump_tree *tr, pid_t pid, int parent);

static int seize_children(struct dump_tree *tr, int idx)
{
	for (int i = 0; i < tr->t[idx].inj.nr_th; i++) {
		pid_t *kids;
		int nr;
		if (proc_list_children(tr->t[idx].pid, tr->t[idx].inj.th[i].pid, &kids, &nr) < 0)
			return -1;
		for (int k = 0; k < nr; k++)
			if (seize_process(tr, kids[k], idx) < 0) {
				free(kids);
				return -1;
			}
		free(kids);
	}
	return 0;
}

static int seize_process(struct dump_tree *tr, pid_t pid, int parent)
{
	struct dump_ctx *dc = tree_add(tr, pid, parent);
	int idx = tr->nr - 1;

	if (!dc || proc_parse_stat(pid, &dc->stat) < 0)
		return -1;
	if (dc->stat.state != 'Z' && dc->stat.state != 'X' && seize_threads(dc) < 0) {
		/* It may have exited between the listing and the seize. */
		release_partial(dc);
		if (kill(pid, 0) < 0 && errno == ESRCH) {
			pr_info("pid %d exited during the dump; it is not part of the tree any more", pid);
			inj_free(&dc->inj);
			free(dc->ns_tid);
			tr->nr--;
			return 0;
		}
		if (proc_parse_stat(pid, &dc->stat) < 0)
			return -1;
		if (dc->stat.state != 'Z' && dc->stat.state != 'X')
			return -1;
	}
	if (dc->stat.state == 'Z' || dc->stat.state == 'X') {
		dc->zombie = true;
		dc->exit_code = dc->stat.exit_code;
	}
	/* re-read: the stat before the stop may be stale */
	dc = &tr->t[idx];
	if (!dc->zombie && (proc_parse_stat(pid, &dc->stat) < 0 || proc_parse_status(pid, &dc->status) < 0))
		return -1;
	if (translate_ids(tr, dc) < 0)
		return -1;
	if (dc->zombie)
		pr_debug("pid %d (%d in the tree): a zombie, exit status %#x", pid, dc->ns_pid, dc->exit_code);
	else
		pr_debug("pid %d (%d in the tree): seized with %d thread%s, parent %d, group %d, session %d%s",
			 pid, dc->ns_pid, dc->inj.nr_th, dc->inj.nr_th == 1 ? "" : "s", dc->ns_ppid,
			 dc->ns_pgid, dc->ns_sid, dc->stopped ? ", stopped" : "");
	return dc->zombie ? 0 : seize_children(tr, idx);
}

int tree_seize(struct dump_tree *tr, pid_t root)
{
	struct proc_status st;
	if (kill(root, 0) < 0 && errno == ESRCH) {
		pr_err("pid %d: no such process", root);
		return -1;
	}
	if (proc_parse_status(root, &st) < 0)
		return -1;
	tr->ns_level = st.nr_nspid ? st.nr_nspid - 1 : 0;
	if (seize_process(tr, root, -1) < 0)
		return -1;
	if (!tr->nr) {
		pr_err("pid %d: no such process", root);
		return -1;
	}
	pr_info("seized the tree of pid %d: %d processes (pid namespace level %d)", root, tr->nr, tr->ns_level);
	return 0;
}

static void reap_traced(struct dump_ctx *dc)
{
	int status;
	/* the leader's death is reported only after its threads' */
	for (int i = dc->inj.nr_th - 1; i >= 0; i--)
		while (waitpid(dc->inj.th[i].pid, &status, __WALL) < 0 && errno == EINTR)
			;
	dc->seized = false;
}

/* Below this, a killed process frees its memory in a few ms itself. */
#define MRELEASE_MIN_KB (64 << 10)

/* The seized process with the most anonymous memory (at least
 * MRELEASE_MIN_KB, as its status counted it), whose exit the dump would
 * wait for longest: its memory is freed from here too (mrelease.h).
 * -1: none. */
static int biggest(const struct dump_tree *tr)
{
	uint64_t most = MRELEASE_MIN_KB;
	int big = -1;
	for (int i = 0; i < tr->nr; i++)
		if (tr->t[i].seized && tr->t[i].status.anon_kb >= most) {
			most = tr->t[i].status.anon_kb;
			big = i;
		}
	return big;
}

void tree_release(struct dump_tree *tr, bool kill_tasks)
{
	if (!kill_tasks) {
		for (int i = 0; i < tr->nr; i++) {
			struct dump_ctx *dc = &tr->t[i];
			/* queued before we let go, so a stopped task never runs */
			if (dc->seized && dc->stopped)
				kill(dc->pid, dc->stop_sig);
			for (int t = 0; dc->seized && t < dc->inj.nr_th; t++)
				if (dc->inj.th[t].attached)
					infect_cure(&dc->inj.th[t]);
			dc->seized = false;
		}
		return;
	}
	struct mrelease m;
	int big = biggest(tr);
	bool helped = big >= 0 && mrelease_arm(&m, tr->t[big].pid);
	for (int i = 0; i < tr->nr; i++)
		if (tr->t[i].seized)
			kill(tr->t[i].pid, SIGKILL);
	if (helped)
		mrelease_killed(&m);
	/* Reap the trace links, children first: a dying namespace init
	 * waits for its children, which wait for us. */
	for (int i = tr->nr - 1; i >= 0; i--)
		if (tr->t[i].seized)
			reap_traced(&tr->t[i]);
	if (helped) {
		int r = mrelease_finish(&m);
		if (r)
			pr_debug("pid %d: its memory was not freed from here (%s)", tr->t[big].pid, strerror(r));
		else
			pr_info("pid %d: its memory was freed from here too while it died", tr->t[big].pid);
	}
}
