/* io_setup() rings (MmEntry.aios). The saved ring is back, as plain
 * memory, at its old address (mem.c maps it so and fills it); here the
 * task gets a new ring of the same size from io_setup(), whose head and
 * tail are brought where the old ones were, which takes as many
 * requests as the old tail counts (writes of one byte to /dev/null,
 * which complete at once); the old events are copied in, and the new
 * ring is moved over the old copy, at the address the program knows as
 * its context. Requests in flight at dump are not brought back (as in
 * CRIU). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/aio_abi.h>

#include "image/vma.h"
#include "restore/rst.h"
#include "util/log.h"

struct aio_ring_head {
	uint32_t id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};

#define SUBMIT_MAX 1024u

/* The ring the entry names must be one of the image's mappings. */
static bool ring_in_image(const struct rst_ctx *rc, const AioRingEntry *a)
{
	for (size_t i = 0; i < rc->mm->n_vmas; i++) {
		const VmaEntry *e = rc->mm->vmas[i];
		if ((e->status & VMA_AREA_AIORING) && e->start == a->id && e->end - e->start == a->ring_len)
			return true;
	}
	return false;
}

/* Requests until the new ring's tail has gone round to the old one;
 * its head follows (the program's side of the ring, written directly,
 * as io_getevents would move it), so slots are free for the next ones. */
static int move_tail(struct rst_ctx *rc, uint64_t ctx, const struct aio_ring_head *old)
{
	uint32_t count = old->tail < old->head ? old->nr + old->tail : old->tail;
	uint32_t batch = count < old->nr - 1 ? count : old->nr - 1;
	if (batch > SUBMIT_MAX)
		batch = SUBMIT_MAX;
	size_t mark = inj_args_mark(&rc->inj);
	uint64_t path_at, cb_at, ptrs_at;
	long fd = -1, closed;
	int ret = -1;

	if (inj_arg(&rc->inj, "/dev/null", 10, &path_at) < 0 ||
	    inj_must(&rc->inj, "open of /dev/null for an aio ring", &fd,
		     INJ(SYS_openat, AT_FDCWD, path_at, O_WRONLY | O_CLOEXEC)) < 0)
		goto out;
	struct iocb cb = { .aio_fildes = (uint32_t)fd, .aio_lio_opcode = IOCB_CMD_PWRITE,
			   .aio_buf = path_at, .aio_nbytes = 1 };
	uint64_t *ptrs = calloc(batch ? batch : 1, sizeof(*ptrs));
	if (!ptrs || inj_arg(&rc->inj, &cb, sizeof(cb), &cb_at) < 0) {
		free(ptrs);
		goto out;
	}
	for (uint32_t i = 0; i < batch; i++)
		ptrs[i] = cb_at;
	int failed = inj_arg(&rc->inj, ptrs, batch * sizeof(*ptrs), &ptrs_at) < 0;
	free(ptrs);
	for (uint32_t done = 0; !failed && done < count;) {
		long n;
		uint32_t want = count - done < batch ? count - done : batch;
		if (inj_must(&rc->inj, "aio requests (io_submit)", &n, INJ(SYS_io_submit, ctx, want, ptrs_at)) < 0)
			goto out;
		if (n <= 0) {
			pr_err("pid %d: io_submit took no request for the aio ring at %#lx", rc->pid,
			       (unsigned long)ctx);
			goto out;
		}
		done += n;
		uint32_t head = done < old->head ? done : old->head;
		if (inj_write(&rc->inj, ctx + offsetof(struct aio_ring_head, head), &head, sizeof(head)) < 0)
			goto out;
	}
	ret = failed ? -1 : 0;
out:
	if (fd >= 0)
		inj_call(&rc->inj, &closed, INJ(SYS_close, fd));
	inj_args_release(&rc->inj, mark);
	return ret;
}

static int restore_ring(struct rst_ctx *rc, const AioRingEntry *a)
{
	struct aio_ring_head old, now;
	uint64_t ctx = 0;

	if (!ring_in_image(rc, a) || a->ring_len <= sizeof(old)) {
		pr_err("image mm-%d.img: aio ring %#lx is not one of its mappings", rc->pid, (unsigned long)a->id);
		return -1;
	}
	uint32_t nr = (a->ring_len - sizeof(old)) / sizeof(struct io_event);
	if (inj_read(&rc->inj, a->id, &old, sizeof(old)) < 0)
		return -1;
	/* io_setup wants its context zero */
	size_t mark = inj_args_mark(&rc->inj);
	uint64_t ctx_at;
	int failed = inj_arg(&rc->inj, &ctx, sizeof(ctx), &ctx_at) < 0 ||
		     inj_must(&rc->inj, "aio ring (io_setup)", NULL, INJ(SYS_io_setup, a->nr_req, ctx_at)) < 0 ||
		     inj_read(&rc->inj, ctx_at, &ctx, sizeof(ctx)) < 0;
	inj_args_release(&rc->inj, mark);
	if (failed || inj_read(&rc->inj, ctx, &now, sizeof(now)) < 0)
		return -1;
	if (old.tail >= old.nr || old.head >= old.nr || old.nr != nr || now.nr != nr) {
		pr_err("pid %d: aio ring %#lx: head %u, tail %u of %u events, a new one has %u (expected %u)",
		       rc->pid, (unsigned long)a->id, old.head, old.tail, old.nr, now.nr, nr);
		return -1;
	}
	if ((old.head || old.tail) && move_tail(rc, ctx, &old) < 0)
		return -1;
	size_t len = a->ring_len - sizeof(old);
	char *events = malloc(len);
	failed = !events || inj_read(&rc->inj, a->id + sizeof(old), events, len) < 0 ||
		 inj_write(&rc->inj, ctx + sizeof(old), events, len) < 0;
	free(events);
	if (failed)
		return -1;
	long at;
	if (inj_must(&rc->inj, "aio ring move", &at,
		     INJ(SYS_mremap, ctx, a->ring_len, a->ring_len, MREMAP_FIXED | MREMAP_MAYMOVE, a->id)) < 0)
		return -1;
	if ((uint64_t)at != a->id) {
		pr_err("pid %d: aio ring landed at %#lx, not %#lx", rc->pid, at, (unsigned long)a->id);
		return -1;
	}
	return 0;
}

int rst_aio_rings(struct rst_ctx *rc)
{
	for (size_t i = 0; i < rc->mm->n_aios; i++)
		if (restore_ring(rc, rc->mm->aios[i]) < 0)
			return -1;
	return 0;
}
