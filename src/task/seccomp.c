/* Seccomp, dump and restore side (see seccomp.h for when each runs).
 *
 * The kernel numbers a thread's filters from 0, the one installed first,
 * and ptrace reads them one by one (PTRACE_SECCOMP_GET_FILTER) with their
 * flags (PTRACE_SECCOMP_GET_METADATA). Filters are evaluated all together,
 * and among equal actions the one installed last gives its data (the errno
 * of SECCOMP_RET_ERRNO, say): order matters, and restore installs them
 * first to last.
 *
 * Threads that inherited one chain share the kernel's filter objects;
 * ptrace can't tell that from identical copies, and a later TSYNC install
 * by the program works only if the objects are shared. As CRIU does, when
 * every thread of a process has the same chain, the main thread's filters
 * are marked SECCOMP_FILTER_FLAG_TSYNC and the other threads are written
 * without a mode of their own: one install gives the chain to them all.
 * Other chains are restored per thread, as copies. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "image/img.h"
#include "infect/inject.h"
#include "proc/proc.h"
#include "task/seccomp.h"
#include "util/log.h"
#include "seccomp.pb-c.h"

/* What restore may install a filter with: TSYNC, LOG, SPEC_ALLOW. A new
 * listener fd, or anything newer, is not something an image can ask for. */
#define FLAGS_RESTORABLE (SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG | \
			  SECCOMP_FILTER_FLAG_SPEC_ALLOW)

static const char *mode_name(int mode)
{
	return mode == SECCOMP_MODE_STRICT ? "seccomp strict mode" : "a seccomp filter";
}

/* ---- dump ---- */

struct sc_filter {
	struct sock_filter *insns;
	uint32_t nr_insns;
	uint32_t flags;
};

struct sc_thread {
	int mode;			/* SECCOMP_MODE_* */
	bool nnp;			/* no_new_privs: per thread, like the mode */
	struct sc_filter *f;		/* installed first .. installed last */
	int nr;
	bool in_image;			/* its chain has entries of its own in seccomp.img */
	uint32_t first;			/* seccomp.img index of f[0] */
};

struct seccomp_task {
	struct sc_thread *th;		/* as the process's inj.th */
	int nr_th;
	struct seccomp_task *next;	/* the next process in seccomp_chains */
};

/* Seccomp and NoNewPrivs of one thread from /proc/PID/task/TID/status
 * (a kernel without seccomp has no Seccomp line: mode 0). */
static int read_thread_status(const struct inj *ij, int idx, struct sc_thread *t)
{
	char name[64], buf[8192];
	const char *s;

	snprintf(name, sizeof(name), "task/%d/status", ij->th[idx].pid);
	if (proc_read_file(ij->pid, name, buf, sizeof(buf)) <= 0) {
		pr_perror("pid %d: can't read /proc/%d/%s", ij->pid, ij->pid, name);
		return -1;
	}
	t->mode = (s = strstr(buf, "\nSeccomp:")) ? atoi(s + 9) : 0;
	t->nnp = (s = strstr(buf, "\nNoNewPrivs:")) && atoi(s + 12);
	return 0;
}

/* While every thread is stopped: each thread's mode can change no more
 * (a TSYNC install would need a running thread of the process). The
 * main thread's status was read once all were stopped. */
static int read_modes(const struct inj *ij, const struct proc_status *main_st,
		      struct seccomp_task *sc, bool *any)
{
	*any = false;
	for (int i = 0; i < sc->nr_th; i++) {
		struct sc_thread *t = &sc->th[i];
		if (i == 0) {
			t->mode = main_st->seccomp;
			t->nnp = main_st->no_new_privs;
		} else if (read_thread_status(ij, i, t) < 0) {
			return -1;
		}
		if (t->mode != SECCOMP_MODE_DISABLED && t->mode != SECCOMP_MODE_STRICT &&
		    t->mode != SECCOMP_MODE_FILTER) {
			pr_err("pid %d: thread %d is in seccomp mode %d, which stasis does not know",
			       ij->pid, ij->th[i].pid, t->mode);
			return -1;
		}
		*any |= t->mode != SECCOMP_MODE_DISABLED;
	}
	return 0;
}

/* Our injected calls must not meet the task's seccomp: suspended on every
 * thread (a call may go to any of them). */
static int suspend_threads(struct inj *ij, int mode, const char *doing)
{
	for (int i = 0; i < ij->nr_th; i++) {
		struct victim *v = &ij->th[i];
		if (!(v->options & PTRACE_O_SUSPEND_SECCOMP) &&
		    infect_set_options(v, v->options | PTRACE_O_SUSPEND_SECCOMP) < 0) {
			pr_err("pid %d uses %s, which stasis can %s only with CAP_SYS_ADMIN: the calls it injects "
			       "must bypass seccomp (PTRACE_O_SUSPEND_SECCOMP on thread %d: %s)",
			       ij->pid, mode_name(mode), doing, v->pid, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* A filter that passes syscalls to a supervisor (SECCOMP_RET_USER_NOTIF)
 * works only with the supervisor's listener fd, which is not the task's
 * and which a filter installed again can't have. */
static bool asks_supervisor(const struct sc_filter *f)
{
	for (uint32_t i = 0; i < f->nr_insns; i++) {
		const struct sock_filter *in = &f->insns[i];
		if (BPF_CLASS(in->code) == BPF_RET && BPF_RVAL(in->code) == BPF_K &&
		    (in->k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
			return true;
	}
	return false;
}

/* Filter number i of the thread (0: installed first), with its flags;
 * 1 past the last one. */
static int copy_filter(pid_t pid, pid_t tid, unsigned long i, struct sc_filter *f)
{
	struct __ptrace_seccomp_metadata md = { .filter_off = i };
	long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, NULL);	/* its length */

	if (n < 0 && errno == ENOENT && i > 0)
		return 1;
	if (n <= 0 || n > BPF_MAXINSNS) {
		if (n >= 0)
			errno = EINVAL;
		pr_perror("pid %d: can't read seccomp filter %lu of thread %d", pid, i, tid);
		return -1;
	}
	f->insns = calloc(n, sizeof(*f->insns));
	if (!f->insns) {
		pr_err("pid %d: out of memory for its seccomp filters", pid);
		return -1;
	}
	f->nr_insns = n;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, f->insns) != n ||
	    ptrace(PTRACE_SECCOMP_GET_METADATA, tid, sizeof(md), &md) < 0) {
		pr_perror("pid %d: can't read seccomp filter %lu of thread %d", pid, i, tid);
		return -1;
	}
	f->flags = md.flags;
	return 0;
}

static int copy_chain(const struct inj *ij, int idx, struct sc_thread *t)
{
	pid_t pid = ij->pid, tid = ij->th[idx].pid;

	for (unsigned long i = 0;; i++) {
		struct sc_filter *n = realloc(t->f, (t->nr + 1) * sizeof(*n));
		if (!n) {
			pr_err("pid %d: out of memory for its seccomp filters", pid);
			return -1;
		}
		t->f = n;
		memset(&t->f[t->nr], 0, sizeof(*n));
		int r = copy_filter(pid, tid, i, &t->f[t->nr]);
		if (r)
			return r < 0 ? -1 : 0;
		if (asks_supervisor(&t->f[t->nr++])) {
			pr_err("pid %d: seccomp filter %lu of thread %d passes syscalls to a supervisor "
			       "(SECCOMP_RET_USER_NOTIF), which stasis can't dump", pid, i, tid);
			return -1;
		}
	}
}

static bool same_chain(const struct sc_thread *a, const struct sc_thread *b)
{
	if (a->mode != SECCOMP_MODE_FILTER || b->mode != SECCOMP_MODE_FILTER || a->nr != b->nr)
		return false;
	for (int i = 0; i < a->nr; i++)
		if (a->f[i].nr_insns != b->f[i].nr_insns || a->f[i].flags != b->f[i].flags ||
		    memcmp(a->f[i].insns, b->f[i].insns, a->f[i].nr_insns * sizeof(struct sock_filter)))
			return false;
	return true;
}

/* One chain for the whole process: the main thread installs it with
 * TSYNC, the others get it from there (see the top of this file). */
static void share_by_tsync(struct seccomp_task *sc)
{
	if (sc->nr_th < 2)
		return;
	for (int i = 1; i < sc->nr_th; i++)
		if (!same_chain(&sc->th[0], &sc->th[i]))
			return;
	for (int i = 0; i < sc->th[0].nr; i++)
		sc->th[0].f[i].flags |= SECCOMP_FILTER_FLAG_TSYNC;
	for (int i = 1; i < sc->nr_th; i++)
		sc->th[i].in_image = false;
}

/* A new seccomp_task for the process, owned by the list from now on
 * (freed with it, even if the collect fails). */
static struct seccomp_task *append_task(struct seccomp_chains *all, const struct inj *ij)
{
	struct seccomp_task *sc = calloc(1, sizeof(*sc));

	if (!sc || !(sc->th = calloc(ij->nr_th, sizeof(*sc->th)))) {
		free(sc);
		pr_err("pid %d: out of memory", ij->pid);
		return NULL;
	}
	sc->nr_th = ij->nr_th;
	if (all->last)
		all->last->next = sc;
	else
		all->first = sc;
	all->last = sc;
	return sc;
}

/* seccomp.img order: process by process as collected, thread by thread,
 * each chain from its first filter to its last. Write walks it alike. */
static void number_chains(struct seccomp_chains *all, struct seccomp_task *sc)
{
	for (int t = 0; t < sc->nr_th; t++)
		if (sc->th[t].in_image) {
			sc->th[t].first = all->nr_filters;
			all->nr_filters += sc->th[t].nr;
		}
}

static int copy_chains(struct inj *ij, struct seccomp_task *sc)
{
	int mode = SECCOMP_MODE_DISABLED;

	for (int i = 0; i < sc->nr_th; i++)
		if (sc->th[i].mode > mode)
			mode = sc->th[i].mode;
	if (suspend_threads(ij, mode, "dump") < 0)
		return -1;
	for (int i = 0; i < sc->nr_th; i++) {
		sc->th[i].in_image = sc->th[i].mode == SECCOMP_MODE_FILTER;
		if (sc->th[i].in_image && copy_chain(ij, i, &sc->th[i]) < 0)
			return -1;
	}
	share_by_tsync(sc);
	pr_info("pid %d uses %s: suspended for the dump", ij->pid, mode_name(mode));
	return 0;
}

int seccomp_dump_collect(struct seccomp_chains *all, struct inj *ij, const struct proc_status *main_st,
			 struct seccomp_task **out)
{
	struct seccomp_task *sc = append_task(all, ij);
	bool any;

	*out = sc;
	if (!sc || read_modes(ij, main_st, sc, &any) < 0)
		return -1;
	if (any && copy_chains(ij, sc) < 0)
		return -1;
	number_chains(all, sc);
	return 0;
}

void seccomp_dump_thread(const struct seccomp_task *sc, int idx, ThreadCoreEntry *th)
{
	const struct sc_thread *t = sc ? &sc->th[idx] : NULL;

	if (!t)
		return;
	/* a thread whose chain comes with the main thread's TSYNC has, in
	 * the image, no mode of its own (CRIU reads it so too) */
	th->has_seccomp_mode = 1;
	th->seccomp_mode = t->mode == SECCOMP_MODE_FILTER && !t->in_image ? SECCOMP_MODE_DISABLED : t->mode;
	if (t->in_image) {
		th->has_seccomp_filter = 1;
		th->seccomp_filter = t->first;
	}
	if (th->creds) {
		th->creds->has_no_new_privs = 1;
		th->creds->no_new_privs = t->nnp;
	}
}

int seccomp_dump_write(const struct seccomp_chains *all, int dirfd)
{
	SeccompEntry se = SECCOMP_ENTRY__INIT;
	uint32_t nr = all->nr_filters, k = 0;
	int ret = -1;

	if (!nr)
		return 0;
	SeccompFilter *f = calloc(nr, sizeof(*f));
	se.seccomp_filters = calloc(nr, sizeof(*se.seccomp_filters));
	if (!f || !se.seccomp_filters) {
		pr_err("out of memory writing seccomp.img");
		goto out;
	}
	se.n_seccomp_filters = nr;
	for (const struct seccomp_task *sc = all->first; sc; sc = sc->next) {
		for (int t = 0; t < sc->nr_th; t++) {
			const struct sc_thread *th = &sc->th[t];
			for (int j = 0; th->in_image && j < th->nr; j++, k++) {
				seccomp_filter__init(&f[k]);
				f[k].filter.data = (uint8_t *)th->f[j].insns;
				f[k].filter.len = th->f[j].nr_insns * sizeof(struct sock_filter);
				f[k].has_flags = 1;
				f[k].flags = th->f[j].flags;
				f[k].has_prev = j + 1 < th->nr;	/* the next one installed */
				f[k].prev = k + 1;
				se.seccomp_filters[k] = &f[k];
			}
		}
	}
	ret = img_store_one(dirfd, IMG_SECCOMP, 0, &se.base);
out:
	free(f);
	free(se.seccomp_filters);
	return ret;
}

static void free_task(struct seccomp_task *sc)
{
	for (int t = 0; t < sc->nr_th; t++) {
		for (int j = 0; j < sc->th[t].nr; j++)
			free(sc->th[t].f[j].insns);
		free(sc->th[t].f);
	}
	free(sc->th);
	free(sc);
}

void seccomp_dump_free(struct seccomp_chains *all)
{
	for (struct seccomp_task *sc = all->first, *next; sc; sc = next) {
		next = sc->next;
		free_task(sc);
	}
	*all = (struct seccomp_chains){ 0 };
}

/* ---- restore ---- */

/* A thread's mode and first filter. CRIU images from before per-thread
 * seccomp carry them in the process's core, for every thread: the main
 * thread then installs the chain with TSYNC. */
struct sc_plan {
	uint32_t mode;
	uint32_t first;
	bool force_tsync;
	bool nnp;			/* no_new_privs, from its creds */
};

struct seccomp_plan {
	const SeccompEntry *img;	/* the tree's seccomp.img, or NULL */
	struct sc_plan *th;		/* per thread, the main one first */
	int nr_th;
};

static struct sc_plan thread_plan(CoreEntry *const *core, int idx)
{
	const ThreadCoreEntry *th = core[idx]->thread_core;
	const TaskCoreEntry *tc = core[0]->tc;
	struct sc_plan p = { 0 };

	if (th->has_seccomp_mode) {
		p.mode = th->seccomp_mode;
		p.first = th->seccomp_filter;
	} else if (idx == 0 && tc->has_old_seccomp_mode) {
		p.mode = tc->old_seccomp_mode;
		p.first = tc->old_seccomp_filter;
		p.force_tsync = true;
	}
	p.nnp = th->creds && th->creds->has_no_new_privs && th->creds->no_new_privs;
	return p;
}

/* Every index, length and flag of a chain, before anything is forked;
 * a loop in the links is an error, not a hang. */
static int check_chain(const SeccompEntry *se, pid_t pid, pid_t tid, uint32_t i)
{
	size_t steps = 0;
	for (;;) {
		if (!se || i >= se->n_seccomp_filters) {
			pr_err("image core-%d.img: seccomp filter %u of thread %d is not in seccomp.img", pid, i, tid);
			return -1;
		}
		if (++steps > se->n_seccomp_filters) {
			pr_err("seccomp.img: the filter chain of thread %d (pid %d) loops", tid, pid);
			return -1;
		}
		const SeccompFilter *f = se->seccomp_filters[i];
		size_t len = f->filter.len;
		if (!len || len % sizeof(struct sock_filter) || len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
			pr_err("seccomp.img: filter %u has a bad length %zu", i, len);
			return -1;
		}
		if (f->flags & ~(uint32_t)FLAGS_RESTORABLE) {
			pr_err("seccomp.img: filter %u has flags %#x, which stasis does not restore", i, f->flags);
			return -1;
		}
		if (!f->has_prev)
			return 0;
		i = f->prev;
	}
}

static int check_thread(const SeccompEntry *se, pid_t pid, pid_t tid, const struct sc_plan *p)
{
	if (p->mode > SECCOMP_MODE_FILTER) {
		pr_err("image core-%d.img: thread %d has seccomp mode %u, which stasis does not know",
		       pid, tid, p->mode);
		return -1;
	}
	if (p->mode == SECCOMP_MODE_FILTER && check_chain(se, pid, tid, p->first) < 0)
		return -1;
	return 0;
}

int seccomp_restore_load(int dirfd, SeccompEntry **img)
{
	SeccompEntry **e = NULL;
	int nr = 0;

	*img = NULL;
	if (img_load_all(dirfd, IMG_SECCOMP, 0, (void ***)&e, &nr) < 0)
		return -1;
	for (int i = 1; i < nr; i++)
		img_free(e[i]);
	*img = nr ? e[0] : NULL;
	free(e);
	if (nr > 1) {
		pr_err("seccomp.img holds %d entries; one is expected", nr);
		return -1;
	}
	return 0;
}

void seccomp_restore_unload(SeccompEntry *img)
{
	if (img)
		img_free(img);
}

int seccomp_restore_plan(const SeccompEntry *img, pid_t pid, CoreEntry *const *core, const uint32_t *tids,
			 int nr_th, struct seccomp_plan **out)
{
	struct seccomp_plan *p = calloc(1, sizeof(*p));

	*out = p;
	if (!p || !(p->th = calloc(nr_th, sizeof(*p->th)))) {
		pr_err("pid %d: out of memory", pid);
		return -1;
	}
	p->img = img;
	p->nr_th = nr_th;
	for (int t = 0; t < nr_th; t++) {
		p->th[t] = thread_plan(core, t);
		if (check_thread(img, pid, tids[t], &p->th[t]) < 0)
			return -1;
	}
	return 0;
}

void seccomp_plan_free(struct seccomp_plan *p)
{
	if (p)
		free(p->th);
	free(p);
}

/* Any thread of the process with a mode: all its threads are suspended
 * (a TSYNC install reaches all of them). */
static int suspend_for_restore(const struct seccomp_plan *p, struct inj *ij)
{
	for (int t = 0; t < p->nr_th; t++)
		if (p->th[t].mode != SECCOMP_MODE_DISABLED)
			return suspend_threads(ij, p->th[t].mode, "restore");
	return 0;
}

/* The program (at most BPF_MAXINSNS * 8 = 32 KiB: restore's
 * RST_SCRATCH_SIZE has room), then the sock_fprog that points to it. */
static int install_filter(struct inj *ij, const SeccompFilter *f, uint32_t flags)
{
	struct sock_fprog prog = { .len = f->filter.len / sizeof(struct sock_filter) };
	size_t mark = inj_args_mark(ij);
	uint64_t insns, at;
	long ret;

	int failed = inj_arg(ij, f->filter.data, f->filter.len, &insns) < 0;
	prog.filter = (struct sock_filter *)(uintptr_t)insns;
	failed = failed || inj_arg(ij, &prog, sizeof(prog), &at) < 0 ||
		 inj_must(ij, "seccomp filter", &ret,
			  INJ(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f->flags | flags, at)) < 0;
	inj_args_release(ij, mark);
	if (failed)
		return -1;
	/* a TSYNC install that a thread can't follow names that thread */
	if (ret > 0) {
		pr_err("pid %d: thread %ld can't take the seccomp filter its thread %d installs with TSYNC",
		       ij->pid, ret, ij->cur->pid);
		return -1;
	}
	return 0;
}

static int install_mode(const SeccompEntry *img, struct inj *ij, const struct sc_plan *p)
{
	if (p->mode == SECCOMP_MODE_STRICT)
		return inj_must(ij, "seccomp strict mode", NULL,
				INJ(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_STRICT));
	if (p->mode != SECCOMP_MODE_FILTER)
		return 0;
	/* checked by the plan: every index is in range and the chain ends */
	for (uint32_t i = p->first;; i = img->seccomp_filters[i]->prev) {
		const SeccompFilter *f = img->seccomp_filters[i];
		if (install_filter(ij, f, p->force_tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0) < 0)
			return -1;
		if (!f->has_prev)
			return 0;
	}
}

int seccomp_restore_thread(const struct seccomp_plan *p, struct inj *ij, int idx)
{
	const struct sc_plan *t = &p->th[idx];

	if (idx == 0 && suspend_for_restore(p, ij) < 0)
		return -1;
	/* no_new_privs first: a filter of a task without CAP_SYS_ADMIN was
	 * installed under it, and it can't be taken back anyway */
	if (t->nnp && inj_must(ij, "no_new_privs", NULL, INJ(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1)) < 0)
		return -1;
	if (t->mode != SECCOMP_MODE_DISABLED)
		pr_debug("pid %d: thread %d gets %s back", ij->pid, ij->cur->pid, mode_name(t->mode));
	return install_mode(p->img, ij, t);
}
