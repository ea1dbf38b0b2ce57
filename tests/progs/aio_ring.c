/*
 * aio_ring: io_setup() contexts come back at their address, with the
 * head and tail of their rings where they were and the events not yet
 * read still there: a ring that went round (tail behind head) with two
 * events waiting, and a fresh one; both take new requests after restore.
 *
 * test aio_ring: plain restore chain
 */
#include "common.h"

#include <fcntl.h>
#include <stdint.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>

struct ring {
	unsigned id, nr, head, tail, magic, compat, incompat, header_length;
	struct io_event events[];
};

static aio_context_t used, fresh;
static unsigned head0, tail0;
static int fd;
static char byte;
static struct iocb cb;

static long submit(aio_context_t ctx, uint64_t data)
{
	struct iocb *p = &cb;
	cb.aio_data = data;
	return syscall(SYS_io_submit, ctx, 1, &p);
}

static void check(void)
{
	volatile struct ring *r = (struct ring *)used;
	struct io_event ev[2];
	CHECK(r->head == head0 && r->tail == tail0, "ring head/tail %u/%u, were %u/%u", r->head, r->tail, head0, tail0);
	CHECK(syscall(SYS_io_getevents, fresh, 0, 1, ev, NULL) == 0, "the fresh context is broken");
}

static void check_after(void)
{
	struct io_event ev[4];
	long n = syscall(SYS_io_getevents, used, 2, 2, ev, NULL);
	CHECK(n == 2 && ev[0].data == 1001 && ev[1].data == 1002, "the waiting events: %ld, data %llu %llu", n,
	      (unsigned long long)ev[0].data, (unsigned long long)ev[1].data);
	CHECK(submit(used, 7) == 1 && syscall(SYS_io_getevents, used, 1, 1, ev, NULL) == 1 && ev[0].data == 7,
	      "a new request on the restored context failed");
	CHECK(submit(fresh, 8) == 1 && syscall(SYS_io_getevents, fresh, 1, 1, ev, NULL) == 1 && ev[0].data == 8,
	      "a new request on the fresh context failed");
}

int main(void)
{
	struct io_event ev;
	proto_init();
	if (syscall(SYS_io_setup, 64, &used) < 0 || syscall(SYS_io_setup, 1, &fresh) < 0)
		die("io_setup");
	fd = open("/dev/null", O_WRONLY);
	if (fd < 0)
		die("/dev/null");
	cb.aio_fildes = fd;
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_buf = (uint64_t)&byte;
	cb.aio_nbytes = 1;
	/* round the ring once and more: each request read back at once */
	unsigned nr = ((struct ring *)used)->nr;
	for (unsigned i = 0; i < nr + 5; i++)
		if (submit(used, i) != 1 || syscall(SYS_io_getevents, used, 1, 1, &ev, NULL) != 1)
			die("aio round");
	if (submit(used, 1001) != 1 || submit(used, 1002) != 1)
		die("aio submit");
	head0 = ((struct ring *)used)->head;
	tail0 = ((struct ring *)used)->tail;
	check();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check();
	check_after();
	return proto_finish();
}
