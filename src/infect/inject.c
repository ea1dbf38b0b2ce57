/* The injection context (inject.h): threads, scratch, calls, undo. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "infect/arch.h"
#include "infect/inject.h"
#include "util/fault.h"
#include "util/log.h"

#define PAGE 4096ul
#define ARG_ALIGN 16

void inj_init(struct inj *ij, pid_t pid, const char *doing)
{
	memset(ij, 0, sizeof(*ij));
	ij->pid = pid;
	ij->doing = doing;
}

void inj_free(struct inj *ij)
{
	free(ij->th);
	ij->th = ij->cur = NULL;
	ij->nr_th = 0;
}

/* ---- threads ---- */

int inj_seize_thread(struct inj *ij, pid_t tid, bool interrupted)
{
	struct victim *n = realloc(ij->th, (ij->nr_th + 1) * sizeof(*n));
	if (!n) {
		pr_err("pid %d: out of memory seizing thread %d", ij->pid, tid);
		errno = ENOMEM;
		return -1;
	}
	ij->th = n;
	ij->cur = &ij->th[0];
	if ((interrupted ? infect_seize_interrupted : infect_seize)(&ij->th[ij->nr_th], tid) < 0)
		return -1;
	ij->nr_th++;
	return 0;
}

int inj_alloc_threads(struct inj *ij, int nr)
{
	ij->th = calloc(nr, sizeof(*ij->th));
	if (!ij->th) {
		pr_err("pid %d: out of memory for %d threads", ij->pid, nr);
		return -1;
	}
	ij->nr_th = nr;
	ij->cur = &ij->th[0];
	return 0;
}

void inj_use(struct inj *ij, int idx)
{
	ij->cur = &ij->th[idx];
}

int inj_adopt_clone(struct inj *ij, int idx)
{
	struct victim *main = &ij->th[0], *v = &ij->th[idx];
	pid_t tid = main->last_clone;

	if (!tid) {
		pr_err("pid %d: an injected clone made a thread that was not reported to us", ij->pid);
		return -1;
	}
	main->last_clone = 0;
	if (infect_attach_new_thread(v, tid) < 0)
		return -1;
	v->syscall_ip = main->syscall_ip;
	return 0;
}

/* ---- modes ---- */

/* The dump's scratch lies on the main thread's stack, where the ABI lets
 * a signal frame overwrite it at any moment: nothing lives there, and the
 * thread is stopped. No mapping is added to the task, so a dump killed at
 * any moment leaves none behind; what was there is put back all the same.
 * A part not mapped yet (the stack grows on the call's write) has nothing
 * to put back. */
static void scratch_borrow(struct inj *ij)
{
	uint64_t at = arch_stack_scratch(&ij->th[0].regs, INJ_STACK_SCRATCH);
	struct iovec local = { ij->scr_saved, INJ_STACK_SCRATCH }, remote = { (void *)at, INJ_STACK_SCRATCH };
	ssize_t n = process_vm_readv(ij->th[0].pid, &local, 1, &remote, 1, 0);

	ij->scr_saved_len = n > 0 ? n : 0;
	ij->scr_at = at;
	ij->scr_size = INJ_STACK_SCRATCH;
	ij->scr_base = ij->scr_used = 0;
	fault_point("scratch-taken");
}

static int scratch_give_back(struct inj *ij)
{
	if (!ij->scr_at || ij->scr_mapped)
		return 0;
	if (ij->scr_saved_len &&
	    infect_write(&ij->th[0], ij->scr_at, ij->scr_saved, ij->scr_saved_len) < 0) {
		pr_err("pid %d: can't put back the stack bytes under the scratch area", ij->pid);
		return -1;
	}
	ij->scr_at = 0;
	return 0;
}

int inj_start_careful(struct inj *ij, uint64_t vdso_start)
{
	ij->cur = &ij->th[0];
	if (infect_careful(ij->th, ij->nr_th, vdso_start) < 0)
		return -1;
	scratch_borrow(ij);
	return 0;
}

int inj_start_careful_at(struct inj *ij, uint64_t syscall_ip)
{
	ij->cur = &ij->th[0];
	if (infect_careful_at(ij->th, ij->nr_th, syscall_ip) < 0)
		return -1;
	scratch_borrow(ij);
	return 0;
}

int inj_start_plain(struct inj *ij)
{
	ij->cur = &ij->th[0];
	if (infect_set_vdso(ij->cur, getauxval(AT_SYSINFO_EHDR)) < 0)
		return -1;
	return infect_block_signals(ij->cur);
}

void inj_vdso_moved(struct inj *ij, int64_t delta)
{
	for (int i = 0; i < ij->nr_th; i++)
		if (ij->th[i].attached)
			ij->th[i].syscall_ip += delta;
}

/* ---- scratch ---- */

/* The batch code in the scratch's first page, made executable: where
 * that is refused (a W^X policy), calls go one by one. */
static int install_batch_code(struct inj *ij)
{
	size_t len;
	const uint8_t *code = arch_batch_code(&len);
	long ret;

	if (ij->scr_size < 2 * PAGE || inj_write(ij, ij->scr_at, code, len) < 0)
		return -1;
	if (inj_call(ij, &ret, INJ(SYS_mprotect, ij->scr_at, PAGE, PROT_READ | PROT_EXEC)) < 0)
		return -1;
	if (ret < 0) {
		pr_debug("pid %d: no batch code (%s): injected calls go one by one", ij->pid, strerror(-ret));
		return 0;
	}
	ij->batch_code = ij->scr_at;
	ij->scr_base = ij->scr_used = PAGE;
	return 0;
}

int inj_scratch_map(struct inj *ij, uint64_t at, size_t size)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
	long ret;

	if (inj_must(ij, "scratch mapping", &ret, INJ(SYS_mmap, at, size, PROT_READ | PROT_WRITE, flags, -1, 0)) < 0)
		return -1;
	ij->scr_at = ret;
	ij->scr_size = size;
	ij->scr_base = ij->scr_used = 0;
	ij->scr_mapped = true;
	return install_batch_code(ij);
}

int inj_scratch_unmap(struct inj *ij)
{
	if (inj_must(ij, "scratch unmap", NULL, INJ(SYS_munmap, ij->scr_at, ij->scr_size)) < 0)
		return -1;
	ij->scr_at = ij->batch_code = 0;
	ij->scr_mapped = false;
	return 0;
}

int inj_arg(struct inj *ij, const void *buf, size_t len, uint64_t *addr)
{
	size_t room = (len + ARG_ALIGN - 1) & ~(size_t)(ARG_ALIGN - 1);

	if (!ij->scr_at || ij->scr_size - ij->scr_used < room) {
		pr_err("pid %d: %zu bytes of syscall arguments don't fit the scratch area (%zu of %zu used)",
		       ij->pid, len, ij->scr_used, ij->scr_size);
		return -1;
	}
	*addr = ij->scr_at + ij->scr_used;
	if (buf && len && inj_write(ij, *addr, buf, len) < 0)
		return -1;
	ij->scr_used += room;
	return 0;
}

size_t inj_args_mark(const struct inj *ij)
{
	return ij->scr_used;
}

void inj_args_release(struct inj *ij, size_t mark)
{
	ij->scr_used = mark < ij->scr_base ? ij->scr_base : mark;
}

int inj_write(struct inj *ij, uint64_t addr, const void *buf, size_t len)
{
	return infect_write(&ij->th[0], addr, buf, len);
}

int inj_read(struct inj *ij, uint64_t addr, void *buf, size_t len)
{
	return infect_read(ij->cur, addr, buf, len);
}

/* ---- calls ---- */

int inj_call(struct inj *ij, long *ret, struct inj_call c)
{
	return infect_syscall(ij->cur, ret, c.nr, c.a);
}

static bool failed(long ret)
{
	return ret < 0 && ret > -4096;
}

static int report(const struct inj *ij, const char *what, long ret)
{
	errno = -ret;
	pr_perror("pid %d: can't %s %s", ij->pid, ij->doing, what);
	return -1;
}

int inj_must(struct inj *ij, const char *what, long *ret, struct inj_call c)
{
	long r;
	if (inj_call(ij, &r, c) < 0)
		return -1;
	if (ret)
		*ret = r;
	return failed(r) ? report(ij, what, r) : 0;
}

int inj_must_ins(struct inj *ij, const char *what, struct inj_call c, const struct inj_in *in, int n)
{
	size_t mark = inj_args_mark(ij);
	uint64_t at;
	int ret = 0;

	for (int i = 0; !ret && i < n; i++) {
		ret = inj_arg(ij, in[i].buf, in[i].len, &at);
		c.a[in[i].arg] = at;
	}
	if (!ret)
		ret = inj_must(ij, what, NULL, c);
	inj_args_release(ij, mark);
	return ret;
}

int inj_must_in(struct inj *ij, const char *what, struct inj_call c, int arg, const void *in, size_t len)
{
	return inj_must_ins(ij, what, c, &(struct inj_in){ arg, in, len }, 1);
}

int inj_must_out(struct inj *ij, const char *what, struct inj_call c, int arg, void *out, size_t len)
{
	size_t mark = inj_args_mark(ij);
	uint64_t at;
	int ret = inj_arg(ij, NULL, len, &at);

	if (!ret) {
		c.a[arg] = at;
		ret = inj_must(ij, what, NULL, c) < 0 || inj_read(ij, at, out, len) < 0 ? -1 : 0;
	}
	inj_args_release(ij, mark);
	return ret;
}

/* ---- batches ---- */

static int batch_one_by_one(struct inj *ij, const struct inj_batch *b, int n)
{
	for (int i = 0; i < n; i++)
		if (inj_must(ij, b->what[i], NULL, b->call[i]) < 0)
			return -1;
	return 0;
}

/* The table in the scratch, one round trip, the results back. */
static int batch_at_once(struct inj *ij, const struct inj_batch *b, int n)
{
	struct arch_batch_call t[INJ_BATCH_MAX];
	size_t mark = inj_args_mark(ij), code_len;
	uint64_t at;
	int ret = -1;

	arch_batch_code(&code_len);
	for (int i = 0; i < n; i++) {
		t[i].nr = b->call[i].nr;
		for (int a = 0; a < 6; a++)
			t[i].args[a] = b->call[i].a[a];
		t[i].ret = 0;
	}
	if (inj_arg(ij, t, n * sizeof(t[0]), &at) == 0 &&
	    infect_run_batch(ij->cur, ij->batch_code, code_len, at, n) == 0 &&
	    inj_read(ij, at, t, n * sizeof(t[0])) == 0)
		ret = 0;
	inj_args_release(ij, mark);
	for (int i = 0; !ret && i < n; i++)
		if (failed(t[i].ret))
			ret = report(ij, b->what[i], t[i].ret);
	return ret;
}

int inj_batch_run(struct inj *ij, struct inj_batch *b)
{
	int n = b->n;

	b->n = 0;
	if (n == 0)
		return 0;	/* the batch code would run garbage */
	if (n == 1 || !ij->batch_code || ij->cur->careful)
		return batch_one_by_one(ij, b, n);
	return batch_at_once(ij, b, n);
}

int inj_batch_add(struct inj *ij, struct inj_batch *b, const char *what, struct inj_call c)
{
	if (b->n == INJ_BATCH_MAX && inj_batch_run(ij, b) < 0)
		return -1;
	b->call[b->n] = c;
	b->what[b->n++] = what;
	return 0;
}

int inj_batch_add_in(struct inj *ij, struct inj_batch *b, const char *what, struct inj_call c, int arg,
		     const void *in, size_t len)
{
	uint64_t at;
	if (inj_arg(ij, in, len, &at) < 0)
		return -1;
	c.a[arg] = at;
	return inj_batch_add(ij, b, what, c);
}

/* ---- the end ---- */

int inj_let_go(struct inj *ij)
{
	for (int i = ij->nr_th - 1; i >= 0; i--)
		if (infect_detach(&ij->th[i]) < 0)
			return -1;
	return 0;
}

int inj_undo(struct inj *ij)
{
	int ret = scratch_give_back(ij);
	if (infect_careful_end(ij->th, ij->nr_th) < 0)
		ret = -1;
	return ret;
}
